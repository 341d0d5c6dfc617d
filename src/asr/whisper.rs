//! whisper.cpp through whisper-rs: one loaded model per worker, and decoding states.
//!
//! Loading a model takes ~0.2 s and ~150 MB, once per worker ([`Recognizer::load`]). A state
//! holds the KV caches and compute buffers (~200 MB once used); a worker keeps its states for
//! its whole life (one, plus one per channel it decodes side by side), so its memory does not
//! swing call by call.
//!
//! A window's transcript depends on its audio only — not on the windows or calls decoded before
//! it on the same state, nor on whether channels ran one after the other or side by side. At
//! temperature 0 whisper.cpp's decoding is a pure function of the audio; only its temperature
//! fallback samples, from a generator seeded once per state, so a fallback result would depend on
//! the state's history. [`Attempts`] counts whisper.cpp's decoding attempts during a window; a
//! window that fell back is decoded again on a fresh state (seeded as every fresh state is) and
//! that result is kept. Fallbacks are rare (counted in [`AsrStats::fallback_redos`]).

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use super::guard::{self, GuardParams, RawSegment, RawToken};
use super::pack::{self, PackPolicy, Window};
use super::{AsrError, Transcript};
use crate::audio::{RoleAudio, TARGET_RATE};
use crate::vad::{SpeechRegion, SpeechRegions};

/// Decoding settings (the defaults are what the measurements in the README support).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AsrParams {
    /// Language code given to whisper (no detection: a hotline's language is known).
    pub language: String,
    /// 0 or 1 = greedy; otherwise beam width.
    pub beam_size: u32,
    /// Optional initial prompt: a domain sentence or hot words (e.g. "12345热线 工号 您好").
    pub prompt: Option<String>,
    /// How VAD regions become whisper windows.
    pub pack: PackPolicy,
    /// Shrink the encoder's context for short windows (faster; see the performance notes).
    pub shrink_audio_ctx: bool,
    /// Encoder frames (20 ms each) added after the window's audio when the context is shrunk,
    /// so the decoder sees the end of the last word and a little silence after it.
    pub ctx_margin_frames: u32,
    /// The shrunk context never goes below this many frames (whisper.cpp's encoder was trained
    /// on 1500; very short contexts make it guess). Left out of the models key at its default,
    /// so stores made before the setting existed keep their key.
    #[serde(
        default = "default_min_ctx_frames",
        skip_serializing_if = "is_default_min_ctx"
    )]
    pub min_ctx_frames: u32,
    /// Re-decode a window at a higher temperature when the result looks like a loop or has a
    /// low log-probability (whisper's temperature fallback).
    pub temperature_fallback: bool,
    pub guard: GuardParams,
}

/// The defaults are the measured production settings (README, Performance; the CLI's defaults
/// come from here): greedy decoding, utterances packed into windows of up to 28 s with 0.5 s
/// pauses, the encoder context shrunk to the window plus 32 frames, temperature fallback on.
impl Default for AsrParams {
    fn default() -> Self {
        AsrParams {
            language: "zh".into(),
            beam_size: 1,
            prompt: None,
            pack: PackPolicy::Packed {
                max_window_s: 28.0,
                gap_s: 0.5,
            },
            shrink_audio_ctx: true,
            ctx_margin_frames: 32,
            min_ctx_frames: default_min_ctx_frames(),
            temperature_fallback: true,
            guard: GuardParams::default(),
        }
    }
}

fn default_min_ctx_frames() -> u32 {
    384
}

fn is_default_min_ctx(n: &u32) -> bool {
    *n == default_min_ctx_frames()
}

/// whisper.cpp's decoding parameters for one window of `n_samples` (16 kHz) with callqc's
/// settings — one place, so the benchmarks measure exactly what the batch runs.
pub fn full_params(
    params: &AsrParams,
    threads: usize,
    n_samples: usize,
    token_timestamps: bool,
) -> FullParams<'_, '_> {
    let strategy = if params.beam_size <= 1 {
        SamplingStrategy::Greedy { best_of: 1 }
    } else {
        SamplingStrategy::BeamSearch {
            beam_size: params.beam_size as i32,
            patience: -1.0,
        }
    };
    let mut fp = FullParams::new(strategy);
    fp.set_n_threads(threads.max(1) as i32);
    fp.set_language(Some(&params.language));
    fp.set_translate(false);
    // Each window stands alone: carrying text over lets one bad window poison the next.
    fp.set_no_context(true);
    fp.set_print_special(false);
    fp.set_print_progress(false);
    fp.set_print_realtime(false);
    fp.set_print_timestamps(false);
    // Non-speech tokens are where "(音乐)"-style captions come from.
    fp.set_suppress_nst(true);
    fp.set_suppress_blank(true);
    fp.set_no_speech_thold(0.6);
    fp.set_logprob_thold(-1.0);
    fp.set_entropy_thold(2.4);
    fp.set_temperature(0.0);
    // 0 switches the fallback off in whisper.cpp.
    fp.set_temperature_inc(if params.temperature_fallback {
        0.2
    } else {
        0.0
    });
    fp.set_token_timestamps(token_timestamps);
    if let Some(prompt) = params.prompt.as_deref().filter(|p| !p.is_empty()) {
        fp.set_initial_prompt(prompt);
    }
    fp.set_audio_ctx(audio_ctx(params, n_samples));
    fp
}

/// The encoder context (in 20 ms frames) for a window of `n_samples`: 0 = whisper's full 30 s,
/// or, with `shrink_audio_ctx`, the window's length plus the margin (at least `min_ctx_frames`).
pub fn audio_ctx(params: &AsrParams, n_samples: usize) -> i32 {
    if !params.shrink_audio_ctx {
        return 0;
    }
    let secs = n_samples as f64 / TARGET_RATE as f64;
    let margin = params.ctx_margin_frames.min(1500) as i32;
    let min = params.min_ctx_frames.clamp(1, 1500) as i32;
    ((secs / 30.0 * 1500.0).ceil() as i32 + margin).clamp(min, 1500)
}

/// Time spent in whisper, for the run's statistics.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct AsrStats {
    pub windows: usize,
    pub window_audio_s: f64,
    pub decode_time: Duration,
    /// Windows whisper decoded again at a higher temperature, and so again on a fresh state.
    pub fallback_redos: usize,
}

impl AsrStats {
    fn add(&mut self, o: &AsrStats) {
        self.windows += o.windows;
        self.window_audio_s += o.window_audio_s;
        self.decode_time += o.decode_time;
        self.fallback_redos += o.fallback_redos;
    }
}

/// whisper.cpp's decoding attempts during one `whisper_full` call: its encoder passes (one per
/// 30 s seek) and the starts of a decoding at some temperature (the first decoder's logits with
/// no token yet: once per temperature tried, greedy or beam). More starts than encoder passes
/// means it fell back to sampling. Atomic because whisper.cpp runs beam decoders' logits on
/// threads of its own (those calls always have tokens, so they never count).
#[derive(Debug, Default)]
struct Attempts {
    encodes: AtomicU32,
    starts: AtomicU32,
    /// Clear the first row of the state's logits before the first encoder pass (see [`full`]).
    clear_first_logits: bool,
}

impl Attempts {
    fn fell_back(&self) -> bool {
        self.starts.load(Ordering::Relaxed) > self.encodes.load(Ordering::Relaxed)
    }
}

/// whisper.cpp calls this before each encoder pass; `user` is the `Attempts` of the call.
/// Before the first, it clears the first row of a used state's logits (see [`full`]).
unsafe extern "C" fn count_encode(
    ctx: *mut whisper_rs_sys::whisper_context,
    state: *mut whisper_rs_sys::whisper_state,
    user: *mut std::ffi::c_void,
) -> bool {
    // SAFETY: `user` is the `Attempts` that `full` keeps alive for the whole `whisper_full` call
    // that invokes this callback; it is only read through a shared reference (atomics).
    let Some(a) = (unsafe { user.cast::<Attempts>().as_ref() }) else {
        return true;
    };
    if a.encodes.fetch_add(1, Ordering::Relaxed) == 0 && a.clear_first_logits {
        // SAFETY: `ctx` and `state` are the live pointers whisper.cpp passes; `clear_first_logits`
        // is set only for a state that has completed a decode, whose logits buffer therefore
        // holds at least one row of `n_vocab` floats (whisper.cpp never shrinks it).
        unsafe {
            let n_vocab = whisper_rs_sys::whisper_n_vocab(ctx).max(0) as usize;
            let logits = whisper_rs_sys::whisper_get_logits_from_state(state);
            if !logits.is_null() {
                std::ptr::write_bytes(logits, 0, n_vocab);
            }
        }
    }
    true
}

/// whisper.cpp calls this for each decoder at each step; a step with no tokens yet starts a
/// sequence. Leaves the logits as they are.
unsafe extern "C" fn count_start(
    _ctx: *mut whisper_rs_sys::whisper_context,
    _state: *mut whisper_rs_sys::whisper_state,
    _tokens: *const whisper_rs_sys::whisper_token_data,
    n_tokens: std::os::raw::c_int,
    _logits: *mut f32,
    user: *mut std::ffi::c_void,
) {
    // SAFETY: as in `count_encode`.
    if n_tokens == 0
        && let Some(a) = unsafe { user.cast::<Attempts>().as_ref() }
    {
        a.starts.fetch_add(1, Ordering::Relaxed);
    }
}

/// A loaded whisper model plus its decoding states.
pub struct Recognizer {
    // Kept alive for the states (which also hold a reference count of it).
    _context: WhisperContext,
    /// Kept for the worker's life: `[0]` for one channel or utterance at a time, one more per
    /// channel decoded side by side.
    states: Vec<KeptState>,
    params: AsrParams,
    threads: usize,
    pub model_path: PathBuf,
    pub stats: AsrStats,
}

static SILENCE_WHISPER_LOGS: Once = Once::new();

impl Recognizer {
    /// Load the ggml model at `model` for a worker that may use `threads` threads.
    pub fn load(model: &Path, params: AsrParams, threads: usize) -> Result<Self, AsrError> {
        SILENCE_WHISPER_LOGS.call_once(whisper_rs::install_logging_hooks);
        if !model.is_file() {
            return Err(AsrError::ModelMissing(model.to_path_buf()));
        }
        let path_str = model.to_str().ok_or_else(|| AsrError::ModelLoad {
            path: model.to_path_buf(),
            reason: "path is not UTF-8".into(),
        })?;
        let context =
            WhisperContext::new_with_params(path_str, WhisperContextParameters::default())
                .map_err(|e| AsrError::ModelLoad {
                    path: model.to_path_buf(),
                    reason: format!("{e} (is it a whisper.cpp ggml file?)"),
                })?;
        let state = context.create_state().map_err(|e| AsrError::ModelLoad {
            path: model.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(Recognizer {
            _context: context,
            states: vec![KeptState { state, used: false }],
            params,
            threads: threads.max(1),
            model_path: model.to_path_buf(),
            stats: AsrStats::default(),
        })
    }

    pub fn params(&self) -> &AsrParams {
        &self.params
    }

    /// At least `n` states (the new ones are kept).
    fn ensure_states(&mut self, n: usize) -> Result<(), AsrError> {
        while self.states.len() < n {
            let state = fresh_state(&self._context, &self.model_path)?;
            self.states.push(KeptState { state, used: false });
        }
        Ok(())
    }

    fn decoder<'a>(&'a mut self) -> Decoder<'a> {
        Decoder {
            context: &self._context,
            model_path: &self.model_path,
            state: &mut self.states[0],
            params: &self.params,
            threads: self.threads,
            stats: &mut self.stats,
        }
    }

    /// A recording's final pass: each channel's regions in turn, or with `spread` the channels
    /// after the first at once on threads (and states) of their own, each with the worker's
    /// thread count. The transcripts are the same either way (see the module doc), only sooner
    /// when a core is idle.
    pub fn recognize_channels(
        &mut self,
        channels: &[(&RoleAudio, &SpeechRegions)],
        spread: bool,
    ) -> Result<Vec<Transcript>, AsrError> {
        let spread = spread && channels.len() > 1;
        self.ensure_states(if spread { channels.len() } else { 1 })?;
        let (context, model_path, params, threads) =
            (&self._context, &self.model_path, &self.params, self.threads);
        let decode = |state: &mut KeptState,
                      stats: &mut AsrStats,
                      (audio, regions): &(&RoleAudio, &SpeechRegions)| {
            Decoder {
                context,
                model_path,
                state,
                params,
                threads,
                stats,
            }
            .recognize_with(audio, &regions.regions, params.pack)
        };
        let results: Vec<(Result<Transcript, AsrError>, AsrStats)> = if spread {
            std::thread::scope(|scope| {
                let mut states = self.states.iter_mut();
                let first = states.next();
                let others: Vec<_> = states
                    .zip(&channels[1..])
                    .map(|(state, ch)| {
                        scope.spawn(move || {
                            let mut stats = AsrStats::default();
                            (decode(state, &mut stats, ch), stats)
                        })
                    })
                    .collect();
                let mut out = Vec::with_capacity(channels.len());
                if let Some(state) = first {
                    let mut stats = AsrStats::default();
                    out.push((decode(state, &mut stats, &channels[0]), stats));
                }
                for h in others {
                    out.push(h.join().unwrap_or_else(|_| {
                        (
                            Err(AsrError::Decode("a decoding thread panicked".into())),
                            AsrStats::default(),
                        )
                    }));
                }
                out
            })
        } else {
            let state = &mut self.states[0];
            channels
                .iter()
                .map(|ch| {
                    let mut stats = AsrStats::default();
                    (decode(state, &mut stats, ch), stats)
                })
                .collect()
        };
        let mut transcripts = Vec::with_capacity(results.len());
        for (t, stats) in results {
            self.stats.add(&stats);
            transcripts.push(t?);
        }
        Ok(transcripts)
    }

    /// Recognise one role's speech regions with the configured packing; returns kept and
    /// dropped segments on call time.
    pub fn recognize(
        &mut self,
        audio: &RoleAudio,
        regions: &SpeechRegions,
    ) -> Result<Transcript, AsrError> {
        self.recognize_with(audio, &regions.regions, self.params.pack)
    }

    /// Recognise `regions` of `audio` with an explicit packing policy: live sessions decode each
    /// finished utterance on its own ([`PackPolicy::PerRegion`]), with the encoder context cut
    /// to its length.
    pub fn recognize_with(
        &mut self,
        audio: &RoleAudio,
        regions: &[SpeechRegion],
        policy: PackPolicy,
    ) -> Result<Transcript, AsrError> {
        self.decoder().recognize_with(audio, regions, policy)
    }

    /// Recognise windows already cut from a call's audio (a live server cuts a finished
    /// utterance's window on its stream thread and decodes it on another).
    pub fn recognize_windows(&mut self, windows: &[Window]) -> Result<Transcript, AsrError> {
        self.decoder().recognize_windows(windows)
    }
}

fn fresh_state(context: &WhisperContext, model_path: &Path) -> Result<WhisperState, AsrError> {
    context.create_state().map_err(|e| AsrError::ModelLoad {
        path: model_path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// A decoding state kept across windows, and whether it has decoded one yet.
struct KeptState {
    state: WhisperState,
    used: bool,
}

/// `whisper_full` on `kept` with callqc's parameters, counting its decoding attempts.
///
/// whisper.cpp computes a window's no-speech probability from the first row of the state's
/// logits buffer, which its prompt decode never writes (it writes the prompt's last row): on a
/// fresh state that row is zeros (p = 1/n_vocab), on a used one whatever an earlier decode left
/// there. So the row is cleared first on a used state, and every window sees what a fresh state
/// sees — the stored value then depends on the window only (it is still not a real no-speech
/// probability; callqc's VAD decides what is speech).
fn full(
    kept: &mut KeptState,
    params: &AsrParams,
    threads: usize,
    samples: &[f32],
    token_timestamps: bool,
) -> Result<Attempts, AsrError> {
    let attempts = Attempts {
        clear_first_logits: kept.used,
        ..Attempts::default()
    };
    let mut fp = full_params(params, threads, samples.len(), token_timestamps);
    let user = (&attempts as *const Attempts)
        .cast_mut()
        .cast::<std::ffi::c_void>();
    // SAFETY: both callbacks only count into `attempts` (atomics, through a shared reference),
    // which outlives the `full` call below, the only call that uses these parameters.
    unsafe {
        fp.set_start_encoder_callback(Some(count_encode));
        fp.set_start_encoder_callback_user_data(user);
        fp.set_filter_logits_callback(Some(count_start));
        fp.set_filter_logits_callback_user_data(user);
    }
    kept.state
        .full(fp, samples)
        .map_err(|e| AsrError::Decode(e.to_string()))?;
    kept.used |= attempts.starts.load(Ordering::Relaxed) > 0;
    Ok(attempts)
}

/// One decoding state and what decoding on it needs: what one thread decodes with.
struct Decoder<'a> {
    context: &'a WhisperContext,
    model_path: &'a Path,
    state: &'a mut KeptState,
    params: &'a AsrParams,
    threads: usize,
    stats: &'a mut AsrStats,
}

impl Decoder<'_> {
    fn recognize_with(
        &mut self,
        audio: &RoleAudio,
        regions: &[SpeechRegion],
        policy: PackPolicy,
    ) -> Result<Transcript, AsrError> {
        self.recognize_windows(&pack::pack(audio, regions, policy))
    }

    fn recognize_windows(&mut self, windows: &[Window]) -> Result<Transcript, AsrError> {
        let mut out = Transcript::default();
        for window in windows {
            let raw = self.decode_window(window)?;
            let (kept, dropped) = guard::apply(raw, window, &self.params.guard);
            out.segments.extend(kept);
            out.dropped.extend(dropped);
        }
        out.sort();
        Ok(out)
    }

    /// Run whisper on one window; times are window-relative, text is as whisper wrote it.
    fn decode_window(&mut self, window: &Window) -> Result<Vec<RawSegment>, AsrError> {
        let started = Instant::now();
        // whisper.cpp refuses input under one second: pad short windows with silence.
        let min_len = TARGET_RATE as usize + TARGET_RATE as usize / 10;
        let mut padded;
        let mut samples = window.samples.as_slice();
        if samples.len() < min_len {
            padded = samples.to_vec();
            padded.resize(min_len, 0.0);
            samples = &padded;
        }
        // Token times let a segment that runs across packed utterances be split back at the
        // utterance boundaries (asr::guard::split_at_pieces).
        let token_timestamps = window.pieces.len() > 1;
        let attempts = full(
            self.state,
            self.params,
            self.threads,
            samples,
            token_timestamps,
        )?;
        let mut fresh = None;
        if attempts.fell_back() {
            // The fallback sampled from this state's generator, which earlier windows advanced:
            // decode again on a fresh state, whose generator starts where every fresh one does.
            let mut state = KeptState {
                state: fresh_state(self.context, self.model_path)?,
                used: false,
            };
            full(
                &mut state,
                self.params,
                self.threads,
                samples,
                token_timestamps,
            )?;
            self.stats.fallback_redos += 1;
            fresh = Some(state);
        }
        let state: &WhisperState = &fresh.as_ref().unwrap_or(self.state).state;

        let eot = self.context.token_eot();
        let mut segments = Vec::new();
        for seg in state.as_iter() {
            let bytes = seg.to_bytes().unwrap_or_default();
            // Repetition loops can end inside a multi-byte character: keep what decodes.
            let text = String::from_utf8_lossy(bytes).into_owned();
            let (mut sum_p, mut sum_logp, mut n) = (0.0f32, 0.0f32, 0usize);
            let mut tokens = Vec::new();
            for i in 0..seg.n_tokens() {
                if let Some(tok) = seg.get_token(i) {
                    let data = tok.token_data();
                    if data.id < eot {
                        sum_p += data.p;
                        sum_logp += data.plog;
                        n += 1;
                        tokens.push(RawToken {
                            bytes: tok.to_bytes().map(<[u8]>::to_vec).unwrap_or_default(),
                            t0: data.t0 as f64 / 100.0,
                            t1: data.t1 as f64 / 100.0,
                        });
                    }
                }
            }
            let n_f = n.max(1) as f32;
            segments.push(RawSegment {
                // whisper timestamps are in units of 10 ms, relative to the window start.
                t0: seg.start_timestamp() as f64 / 100.0,
                t1: seg.end_timestamp() as f64 / 100.0,
                text,
                confidence: sum_p / n_f,
                avg_logprob: sum_logp / n_f,
                no_speech_prob: seg.no_speech_probability(),
                tokens,
            });
        }
        self.stats.windows += 1;
        self.stats.window_audio_s += window.samples.len() as f64 / TARGET_RATE as f64;
        self.stats.decode_time += started.elapsed();
        Ok(segments)
    }
}
