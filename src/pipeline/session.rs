//! One call: frames in, events out. The only place that knows the order of the stages.
//!
//! ```text
//! push(channel, samples) ─▶ StreamResampler ─▶ VadStream ─▶ RegionClosed
//!                                   │              └─ Live: whisper on the finished utterance ─▶ Segment(Live)
//!                                   └─ Live: ToneStream (agent) ─▶ ToneScored(Live)
//!                           Live: rules that judge a call in progress ─▶ Finding(Live)
//! finish() ─▶ flush ─▶ whisper over all regions (packed windows) ─▶ Segment(Final)
//!          ─▶ tone over the agent's utterances ─▶ ToneScored(Final)
//!          ─▶ every rubric item ─▶ Finding(Final) ─▶ Ended(score)
//! ```
//!
//! A recording is "push the file, finish" ([`analyze_recording`]); a live call pushes 20 ms
//! frames as they arrive. Both run the same resampler, VAD and final pass, so a live call's
//! record equals the batch's analysis of the same audio. [`SessionMode::Recording`] skips the
//! live work (nobody is watching a recording being analysed, and per-utterance decoding costs
//! ~3× the packed windows).

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::call::{VadMode, Worker};
use super::events::{
    CallEnd, CallEvent, CallInfo, CallSeq, CallSink, Pass, RoleSeparation, Source, StageTimings,
};
use super::identity;
use crate::asr::pack::{self, PackPolicy, Window};
use crate::asr::{Segment, Transcript};
use crate::audio::bleed::BleedCanceller;
use crate::audio::frames::FrameEncoding;
use crate::audio::resample::StreamResampler;
use crate::audio::roles::into_role_channels;
use crate::audio::{AudioFormat, ChannelMap, Role, RoleAudio};
use crate::error::{Error, Stage};
use crate::rubric::{CallFacts, Finding, Rubric};
use crate::speakers::{self, TwoVoices, VoiceSplit};
use crate::tone::live::ToneStream;
use crate::tone::{self, Baseline, ToneWindow};
use crate::vad::{SpeechRegion, SpeechRegions, VadStream};

/// Seconds of the agent's speech a live call needs before its tone is judged live (see
/// `score_utterance_tone`).
pub const LIVE_TONE_WARMUP_S: f64 = 5.0;

/// A mono call's agent voice says at least this many phrases of the agent script…
const MIN_AGENT_SCRIPT: usize = 2;
/// …and the caller's voice at most this many.
const MAX_CALLER_SCRIPT: usize = 1;

/// What a session does while audio arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SessionMode {
    /// Only buffer, resample and run the VAD; everything else at [`CallSession::finish`].
    Recording,
    /// Also decode each finished agent utterance, stream the agent's tone and run the live
    /// rules, emitting provisional results.
    Live,
}

/// How much of the call's 16 kHz audio a session keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AudioRetention {
    /// All of it, for [`CallSession::finish`]'s final pass.
    WholeCall,
    /// Only what the live analysis can still read: the utterances not closed yet, and a margin.
    /// For a live server whose final pass reads the recording it wrote instead
    /// ([`CallSession::end_live`]); a call then holds a few seconds of audio however long it
    /// lasts, where the whole call costs 64 KB per channel per second (460 MB for a stereo hour).
    OpenUtterances,
}

/// Seconds of audio kept before the earliest start of a region that has not closed yet: more
/// than the tone analysis's margin around an utterance (0.2 s, `tone::features`).
const KEEP_BEFORE_OPEN_S: usize = 1;
/// Kept audio is trimmed in steps of this many seconds, not on every frame (each trim moves
/// what is kept).
const TRIM_STEP_S: usize = 5;

/// Provisional results of a live session.
#[derive(Default)]
struct LiveState {
    /// The agent's running tone stream (2 s windows every 0.5 s): a trend to show while the
    /// agent speaks.
    tone: Option<(usize, ToneStream)>,
    segments: Vec<Segment>,
    /// Tone of each finished agent utterance, scored as the batch scores it (against the call
    /// so far and the agent's history): what the live `agent_tone` rule judges.
    utterance_tone: Vec<ToneWindow>,
    /// Provisional findings already emitted (a finding is emitted once, when its evidence is
    /// complete, not again as it grows).
    shown: Vec<Finding>,
    /// Which channels had an open region at the last rules run.
    open: Vec<bool>,
    /// Raw tone features of every agent window so far, and the frame levels of the agent's
    /// utterances (for the active-speech gate): live tone analyses each utterance once.
    tone_raws: Vec<tone::features::RawFeatures>,
    tone_levels: Vec<f64>,
    /// Skip live decoding for now (see [`CallSession::set_shedding`]) and how often it did.
    shedding: bool,
    shed: usize,
    /// See [`CallSession::set_deferred_decoding`].
    defer_decoding: bool,
    undecoded: Vec<LiveUtterance>,
}

/// A finished utterance to decode live: its window, cut from the call's audio (with the map back
/// to call time), and how much audio the call had when it closed.
pub struct LiveUtterance {
    pub windows: Vec<Window>,
    pub at_audio_s: f64,
}

impl LiveUtterance {
    /// Decode the utterance with a worker's whisper: its transcript and the seconds it took.
    /// `call` names the call in an error.
    pub fn decode(&self, worker: &mut Worker, call: &str) -> crate::Result<(Transcript, f64)> {
        let t = Instant::now();
        let part = worker
            .recognizer()?
            .recognize_windows(&self.windows)
            .map_err(|e| Error::in_call(call, Stage::Asr, e))?;
        Ok((part, t.elapsed().as_secs_f64()))
    }
}

/// One call being analysed. Created by [`CallSession::begin`], fed with [`CallSession::push`],
/// ended by [`CallSession::finish`]; every result goes to the sink as it is known.
///
/// A session borrows a worker's models and a sink; what it knows about the call is a
/// [`CallState`], which [`CallSession::suspend`] hands back and [`CallSession::resume`] takes, so a
/// live server can run many calls over a few workers (a call is on one worker at a time).
pub struct CallSession<'a> {
    worker: &'a mut Worker,
    rubric: &'a Rubric,
    sink: &'a mut dyn CallSink,
    call: CallState,
}

/// Everything a session knows about its call, without the borrowed worker, rubric and sink.
pub struct CallState {
    seq: CallSeq,
    /// The file or peer, for messages.
    label: String,
    mode: SessionMode,
    history: Option<Baseline>,
    format: AudioFormat,
    resamplers: Vec<StreamResampler>,
    /// Source samples pushed per channel.
    pushed: Vec<usize>,
    /// 16 kHz audio per channel, from sample `audio_start[c]` of the call on (see
    /// [`AudioRetention`]).
    audio: Vec<RoleAudio>,
    audio_start: Vec<usize>,
    retention: AudioRetention,
    /// Cancels each channel's copy of the other party before the VAD (two-party calls).
    bleed: Option<BleedCanceller>,
    vad: VadStream,
    speech: Vec<SpeechRegions>,
    live: LiveState,
    timings: StageTimings,
}

impl<'a> CallSession<'a> {
    /// Start a call whose channels carry `info.roles` at `format.sample_rate`; emits
    /// [`CallEvent::Began`]. `history` is the agent's stored voice baseline, if any.
    pub fn begin(
        worker: &'a mut Worker,
        rubric: &'a Rubric,
        sink: &'a mut dyn CallSink,
        seq: CallSeq,
        info: CallInfo,
        mode: SessionMode,
        history: Option<Baseline>,
    ) -> crate::Result<CallSession<'a>> {
        let label = info.path.display().to_string();
        let format = info.format.ok_or_else(|| Error::IncompleteCall {
            call: label.clone(),
            missing: "a session needs the audio format",
        })?;
        let roles = info.roles.clone();
        if roles.is_empty() {
            return Err(Error::IncompleteCall {
                call: label,
                missing: "a call needs at least one channel",
            });
        }
        sink.event(seq, &CallEvent::Began(info))?;
        let resamplers = roles
            .iter()
            .map(|_| StreamResampler::new(Path::new(&label), format.sample_rate))
            .collect::<Result<Vec<_>, _>>()?;
        // Whisper's transcript of a window depends on that window's audio only (asr::whisper),
        // so a call's transcript does not depend on the calls its worker handled before — live
        // decoding workers interleave many calls' utterances on one state.
        let vad = VadStream::new(roles.clone(), worker.vad.params);
        let two_party =
            roles.len() == 2 && roles.contains(&Role::Agent) && roles.contains(&Role::Caller);
        let bleed = (two_party && !worker.keep_bleed).then(BleedCanceller::default);
        let mut live = LiveState {
            open: vec![false; roles.len()],
            ..LiveState::default()
        };
        if mode == SessionMode::Live
            && let Some(c) = roles.iter().position(|&r| r == Role::Agent)
        {
            live.tone = Some((c, ToneStream::new(Role::Agent, history.clone())));
        }
        let call = CallState {
            seq,
            label,
            mode,
            history,
            format,
            resamplers,
            pushed: vec![0; roles.len()],
            audio_start: vec![0; roles.len()],
            retention: AudioRetention::WholeCall,
            bleed,
            audio: roles
                .iter()
                .map(|&role| RoleAudio {
                    role,
                    samples: Vec::new(),
                })
                .collect(),
            speech: roles
                .iter()
                .map(|&role| SpeechRegions {
                    role,
                    regions: Vec::new(),
                })
                .collect(),
            vad,
            live,
            timings: StageTimings::default(),
        };
        Ok(CallSession {
            worker,
            rubric,
            sink,
            call,
        })
    }

    /// Put the call aside (its worker and sink are free for others until [`CallSession::resume`]).
    pub fn suspend(self) -> CallState {
        self.call
    }

    /// Go on with a call on `worker` (any worker loaded with the same models).
    pub fn resume(
        worker: &'a mut Worker,
        rubric: &'a Rubric,
        sink: &'a mut dyn CallSink,
        call: CallState,
    ) -> CallSession<'a> {
        CallSession {
            worker,
            rubric,
            sink,
            call,
        }
    }

    /// How much of the audio to keep (default: the whole call). A session that keeps only
    /// [`AudioRetention::OpenUtterances`] can end with [`CallSession::end_live`], not
    /// [`CallSession::finish`].
    pub fn set_audio_retention(&mut self, retention: AudioRetention) {
        self.call.retention = retention;
    }

    /// Seconds of 16 kHz audio held now, over all channels (what [`AudioRetention`] bounds).
    pub fn audio_held_s(&self) -> f64 {
        let n: usize = self.call.audio.iter().map(|a| a.samples.len()).sum();
        n as f64 / f64::from(crate::audio::TARGET_RATE)
    }

    /// While set, finished utterances are not decoded live (the live server sets it when a call's
    /// audio waits longer than its budget: a late warning is no warning). Counted in
    /// [`CallSession::shed_utterances`]; the final pass still decodes everything.
    pub fn set_shedding(&mut self, shed: bool) {
        self.call.live.shedding = shed;
    }

    /// Utterances not decoded live because of [`CallSession::set_shedding`].
    pub fn shed_utterances(&self) -> usize {
        self.call.live.shed
    }

    /// End a live call without the final pass (the live server analyses the written recording
    /// as a batch would): flush the resampler and VAD, decode and judge the last utterances.
    /// Returns the seconds of audio received.
    pub fn end_live(&mut self) -> crate::Result<f64> {
        self.close_input(true)?;
        if self.worker.vad_mode == VadMode::Silero && self.call.mode == SessionMode::Live {
            self.call.live.open.iter_mut().for_each(|o| *o = false);
            self.run_live_rules()?;
        }
        Ok(self.audio_s())
    }

    /// Seconds of audio received so far (the longest channel).
    pub fn audio_s(&self) -> f64 {
        let n = self.call.pushed.iter().copied().max().unwrap_or(0);
        n as f64 / f64::from(self.call.format.sample_rate.max(1))
    }

    /// Time spent decoding the source before it was pushed (counted with resampling).
    pub fn add_decode_time(&mut self, seconds: f64) {
        self.call.timings.decode_s += seconds;
    }

    /// Room for `source_samples` per channel at the session's rate, when the length is known
    /// (a recording): the 16 kHz copy then grows in place instead of doubling its buffer, which
    /// on a four-hour call would briefly hold twice the audio.
    pub fn reserve(&mut self, source_samples: usize) {
        let rate = f64::from(self.call.format.sample_rate.max(1));
        let n = (source_samples as f64 * f64::from(crate::audio::TARGET_RATE) / rate) as usize;
        for a in &mut self.call.audio {
            a.samples
                .reserve_exact((n + 4096).saturating_sub(a.samples.len()));
        }
    }

    /// Samples of `channel` in [-1, 1] at the session's sample rate.
    pub fn push(&mut self, channel: usize, samples: &[f32]) -> crate::Result<()> {
        let Some(resampler) = self.call.resamplers.get_mut(channel) else {
            return Err(Error::NoChannel {
                call: self.call.label.clone(),
                channel,
                channels: self.call.resamplers.len(),
            });
        };
        let t = Instant::now();
        let out = resampler.push(samples)?;
        self.call.pushed[channel] += samples.len();
        self.call.timings.decode_s += t.elapsed().as_secs_f64();
        self.accept(channel, &out)
    }

    /// One telephony frame of `channel` (PCM16 / μ-law / A-law bytes, mono).
    pub fn push_frame(
        &mut self,
        channel: usize,
        encoding: FrameEncoding,
        bytes: &[u8],
    ) -> crate::Result<()> {
        let samples = encoding.decode(bytes);
        self.push(channel, &samples)
    }

    /// Resampled audio of a channel: through the bleed stage, then [`Self::accept_clean`].
    fn accept(&mut self, channel: usize, samples: &[f32]) -> crate::Result<()> {
        let Some(bleed) = self.call.bleed.as_mut() else {
            return self.accept_clean(channel, samples);
        };
        let t = Instant::now();
        let released = bleed.push(channel, samples);
        self.call.timings.vad_s += t.elapsed().as_secs_f64();
        for (c, chunk) in released.iter().enumerate() {
            if !chunk.is_empty() {
                self.accept_clean(c, chunk)?;
            }
        }
        Ok(())
    }

    /// The end of the input: the resamplers' and the bleed stage's last samples in, the VAD
    /// finished, its last regions closed (decoded live when `live_asr`, as they close).
    fn close_input(&mut self, live_asr: bool) -> crate::Result<()> {
        self.flush_input()?;
        if self.worker.vad_mode != VadMode::Silero {
            return Ok(());
        }
        let t = Instant::now();
        let closed = self
            .call
            .vad
            .finish(&mut self.worker.vad)
            .map_err(|e| Error::in_call(&self.call.label, Stage::Vad, e))?;
        self.call.timings.vad_s += t.elapsed().as_secs_f64();
        for (c, region) in closed {
            self.region_closed(c, region, live_asr)?;
        }
        Ok(())
    }

    /// The resamplers' last samples, through the bleed stage, into the call's audio and the
    /// VAD's buffer (the caller then finishes the VAD).
    fn flush_input(&mut self) -> crate::Result<()> {
        let mut tails = Vec::with_capacity(self.call.resamplers.len());
        for c in 0..self.call.resamplers.len() {
            let t = Instant::now();
            tails.push(self.call.resamplers[c].finish()?);
            self.call.timings.decode_s += t.elapsed().as_secs_f64();
        }
        if let Some(bleed) = self.call.bleed.as_mut() {
            let mut out = vec![Vec::new(), Vec::new()];
            for (c, tail) in tails.iter().enumerate() {
                for (o, r) in out.iter_mut().zip(bleed.push(c, tail)) {
                    o.extend(r);
                }
            }
            for (o, r) in out.iter_mut().zip(bleed.flush()) {
                o.extend(r);
            }
            tails = out;
        }
        for (c, chunk) in tails.iter().enumerate() {
            self.call.audio[c].samples.extend_from_slice(chunk);
            if self.worker.vad_mode == VadMode::Silero {
                self.call.vad.buffer(c, chunk);
            }
        }
        Ok(())
    }

    /// Resampled (and de-bled) audio of a channel: VAD, and in live mode the tone stream and
    /// live rules.
    fn accept_clean(&mut self, channel: usize, samples: &[f32]) -> crate::Result<()> {
        self.call.audio[channel].samples.extend_from_slice(samples);
        let mut changed = false;
        if self.worker.vad_mode == VadMode::Silero {
            let t = Instant::now();
            let closed = self
                .call
                .vad
                .push(&mut self.worker.vad, channel, samples)
                .map_err(|e| Error::in_call(&self.call.label, Stage::Vad, e))?;
            self.call.timings.vad_s += t.elapsed().as_secs_f64();
            changed |= !closed.is_empty();
            for (c, region) in closed {
                self.region_closed(c, region, true)?;
            }
        }
        if self.call.mode == SessionMode::Live {
            if let Some((c, stream)) = self.call.live.tone.as_mut()
                && *c == channel
            {
                let t = Instant::now();
                let windows = stream
                    .push(&mut self.worker.tone, samples)
                    .map_err(|e| Error::in_call(&self.call.label, Stage::Tone, e))?;
                self.call.timings.tone_s += t.elapsed().as_secs_f64();
                for window in windows {
                    self.emit(CallEvent::ToneScored {
                        pass: Pass::Live,
                        window,
                    })?;
                }
            }
            for c in 0..self.call.live.open.len() {
                let open = self.call.vad.open_region(c).is_some();
                changed |= open && !self.call.live.open[c];
                self.call.live.open[c] = open;
            }
            if changed {
                self.run_live_rules()?;
            }
        }
        self.trim_audio();
        Ok(())
    }

    /// Under [`AudioRetention::OpenUtterances`], drop the audio no region to come can read
    /// (regions that closed were decoded and scored when they closed, from copies).
    fn trim_audio(&mut self) {
        if self.call.retention != AudioRetention::OpenUtterances {
            return;
        }
        let rate = crate::audio::TARGET_RATE as usize;
        for c in 0..self.call.audio.len() {
            let start = self.call.audio_start[c];
            let held_to = start + self.call.audio[c].samples.len();
            let needed_s = match self.worker.vad_mode {
                VadMode::Silero => self.call.vad.unsettled_from_s(c),
                // No VAD: nothing live reads the audio.
                VadMode::Off => held_to as f64 / rate as f64,
            };
            // Whole seconds, so kept audio starts on the tone analysis's 10 ms grid.
            let keep_from = ((needed_s.floor() as usize).saturating_sub(KEEP_BEFORE_OPEN_S) * rate)
                .min(held_to);
            if keep_from >= start + TRIM_STEP_S * rate {
                self.call.audio[c].samples.drain(..keep_from - start);
                self.call.audio_start[c] = keep_from;
            }
        }
    }

    fn emit(&mut self, event: CallEvent) -> crate::Result<()> {
        self.sink.event(self.call.seq, &event)
    }

    /// A region closed: record it, and in live mode decode it if it is the agent's.
    fn region_closed(
        &mut self,
        channel: usize,
        region: SpeechRegion,
        live_asr: bool,
    ) -> crate::Result<()> {
        let role = self.call.speech[channel].role;
        self.call.speech[channel].regions.push(region);
        let at_audio_s = self.audio_s();
        self.emit(CallEvent::RegionClosed {
            role,
            region,
            at_audio_s,
        })?;
        if live_asr && self.call.mode == SessionMode::Live && role != Role::Caller {
            // Tone first: it needs no transcript (see `score_utterance_tone`), so its warning
            // goes out before the utterance's decode, and even when that decode is shed.
            if role == Role::Agent {
                self.score_utterance_tone(region)?;
                self.run_live_rules()?;
            }
            if self.call.live.shedding {
                self.call.live.shed += 1;
                return Ok(());
            }
            let utterance = LiveUtterance {
                windows: pack::pack_from(
                    &self.call.audio[channel],
                    self.call.audio_start[channel],
                    &[region],
                    PackPolicy::PerRegion,
                ),
                at_audio_s,
            };
            if self.call.live.defer_decoding {
                self.call.live.undecoded.push(utterance);
            } else {
                let (part, decode_s) = utterance.decode(self.worker, &self.call.label)?;
                self.call.timings.asr_s += decode_s;
                self.emit_transcript(Pass::Live, part, at_audio_s)?;
            }
        }
        Ok(())
    }

    /// Leave live decoding to the caller: each finished utterance's window waits in
    /// [`CallSession::take_undecoded`] and its transcript comes back through
    /// [`CallSession::utterance_decoded`]. A live server does this so that one call's decode never
    /// holds up the VAD and tone of the others (their tone warnings need no transcript).
    pub fn set_deferred_decoding(&mut self, defer: bool) {
        self.call.live.defer_decoding = defer;
    }

    /// Finished utterances waiting to be decoded (deferred decoding only), oldest first.
    pub fn take_undecoded(&mut self) -> Vec<LiveUtterance> {
        std::mem::take(&mut self.call.live.undecoded)
    }

    /// The transcript of a deferred utterance: emitted, then the live rules run over it.
    pub fn utterance_decoded(
        &mut self,
        part: Transcript,
        at_audio_s: f64,
        decode_s: f64,
    ) -> crate::Result<()> {
        self.call.timings.asr_s += decode_s;
        self.emit_transcript(Pass::Live, part, at_audio_s)?;
        self.run_live_rules()
    }

    /// The call time at which the agent's closed utterances reach `seconds` of speech
    /// (infinity if they do not yet).
    fn agent_speech_reaching(&self, seconds: f64) -> f64 {
        let mut total = 0.0;
        for s in self.call.speech.iter().filter(|s| s.role == Role::Agent) {
            for r in &s.regions {
                let len = r.end - r.start;
                if total + len >= seconds {
                    return r.start + (seconds - total);
                }
                total += len;
            }
        }
        f64::INFINITY
    }

    /// Score a finished agent utterance with the final pass's windows and model, against the
    /// call so far (the one difference, the speaking rate, is explained below). Measured on the samples: the running
    /// 2 s stream alone missed one of the four labelled agitated spans (its baseline had already
    /// absorbed an earlier outburst); utterance windows found all four.
    fn score_utterance_tone(&mut self, region: SpeechRegion) -> crate::Result<()> {
        let t = Instant::now();
        let Some(c) = self.call.audio.iter().position(|a| a.role == Role::Agent) else {
            return Ok(());
        };
        // Only this utterance is analysed (its features never change once it has closed); the
        // baseline comes from every agent window so far, less those already judged agitated:
        // measured on the samples, call03's first outburst otherwise raised the baseline enough
        // to hide its second.
        // The speaking rate is the syllable rate from the audio, not characters per second from
        // the transcript as in the final pass: waiting for the utterance's decode cost every tone
        // warning ~0.5 s on one call and more under load (measured by `cargo bench --bench
        // live`), and every labelled agitated span is still warned (tests/session.rs).
        let span = (region.start, region.end);
        let rate = None;
        let live = &mut self.call.live;
        let first_sample = self.call.audio_start[c];
        let new = tone::features::utterance_windows(
            &self.call.audio[c].samples,
            first_sample,
            span,
            rate,
            &mut live.tone_levels,
        );
        live.tone_raws.extend_from_slice(&new);
        let threshold = self.worker.tone.threshold();
        let flagged: Vec<(f64, f64)> = live
            .utterance_tone
            .iter()
            .filter(|w| w.p_agitated >= threshold)
            .map(|w| (w.start, w.end))
            .collect();
        let kept: Vec<tone::features::RawFeatures> = live
            .tone_raws
            .iter()
            .filter(|r| !flagged.iter().any(|&(s, e)| r.start < e && s < r.end))
            .copied()
            .collect();
        let baseline = match (Baseline::from_windows(&kept), self.call.history.as_ref()) {
            (Some(b), Some(h)) => Some(b.blend(h)),
            (b, _) => b,
        };
        let windows = self
            .worker
            .tone
            .score_windows(
                Role::Agent,
                &self.call.audio[c].samples,
                first_sample,
                &new,
                baseline.as_ref(),
            )
            .map_err(|e| Error::in_call(&self.call.label, Stage::Tone, e))?;
        self.call.timings.tone_s += t.elapsed().as_secs_f64();
        // The call's own baseline is what windows are judged against; over the first seconds of
        // the agent's speech it is those seconds themselves, and a calm greeting looks like a
        // change: measured on the samples, call01's greeting window scored p = 0.51–0.54 live
        // (with and without the agent's stored history) against 0.05 in the final pass. So the
        // live rule judges windows only after LIVE_TONE_WARMUP_S of the agent's speech (the
        // earliest labelled outburst, call03's, comes after 5.7 s); the final pass judges all.
        let warm_from = self.agent_speech_reaching(LIVE_TONE_WARMUP_S);
        for window in windows {
            if window.start >= warm_from - 1e-6 {
                self.call.live.utterance_tone.push(window.clone());
                self.emit(CallEvent::ToneScored {
                    pass: Pass::Live,
                    window,
                })?;
            }
        }
        Ok(())
    }

    /// Mask personal data (when the rubric says so) and correct the rubric's lexicon terms in a
    /// part of the transcript, and emit it; returns the segments as emitted, for the stages after.
    fn emit_transcript(
        &mut self,
        pass: Pass,
        mut part: Transcript,
        at_audio_s: f64,
    ) -> crate::Result<Vec<crate::asr::Segment>> {
        let mask = self.rubric.mask_personal_data;
        let raws: Vec<Option<String>> = part
            .segments
            .iter_mut()
            .map(|s| {
                if mask {
                    s.text = crate::redact::mask(&s.text).0;
                }
                let fixed = self.rubric.lexicon.correct(&s.text)?;
                Some(std::mem::replace(&mut s.text, fixed))
            })
            .collect();
        let emitted = part.segments.clone();
        for (segment, raw) in part.segments.into_iter().zip(raws) {
            if pass == Pass::Live {
                self.call.live.segments.push(segment.clone());
            }
            if let Some(raw_text) = raw {
                self.emit(CallEvent::TermsCorrected {
                    pass,
                    raw_text,
                    text: segment.text.clone(),
                })?;
            }
            self.emit(CallEvent::Segment {
                pass,
                segment,
                at_audio_s,
            })?;
        }
        for mut dropped in part.dropped {
            if mask {
                dropped.segment.text = crate::redact::mask(&dropped.segment.text).0;
            }
            self.emit(CallEvent::SegmentDropped { pass, dropped })?;
        }
        Ok(emitted)
    }

    /// Run the items whose rules judge a call in progress over what is known so far; emit the
    /// findings not shown yet.
    fn run_live_rules(&mut self) -> crate::Result<()> {
        let t = Instant::now();
        let now = self.audio_s();
        // Speech still going on counts as speech: a long caller turn is not a silence.
        let mut speech = self.call.speech.clone();
        for (c, s) in speech.iter_mut().enumerate() {
            if let Some(open) = self.call.vad.open_region(c) {
                s.regions.push(open);
            }
        }
        let facts = CallFacts {
            duration_s: now,
            segments: &self.call.live.segments,
            speech: &speech,
            tone: &self.call.live.utterance_tone,
        };
        let mut new = Vec::new();
        for item in self.rubric.items.iter().filter(|i| {
            // A call in progress is as long as it has been so far.
            i.rule.judges_live() && i.applies_if.holds(&facts)
        }) {
            for f in item.rule.as_kind().check(item, &facts) {
                let seen = self.call.live.shown.iter().chain(&new).any(|s: &Finding| {
                    s.item_id == f.item_id
                        && s.observation == f.observation
                        && s.start < f.end
                        && f.start < s.end
                });
                if !seen {
                    new.push(f);
                }
            }
        }
        self.call.timings.rules_s += t.elapsed().as_secs_f64();
        for finding in new {
            self.call.live.shown.push(finding.clone());
            self.emit(CallEvent::Finding {
                pass: Pass::Live,
                finding,
                at_audio_s: now,
            })?;
        }
        Ok(())
    }

    /// A lone mixed track's speech split into two voices (voice 0, the lower, and voice 1; which
    /// is the agent is decided from their transcripts), or `None` (stereo, no VAD, or one voice —
    /// then the call stays mixed and a warning says why).
    fn mono_voices(&mut self) -> crate::Result<Option<TwoVoices>> {
        let lone_mixed = self.call.audio.len() == 1 && self.call.audio[0].role == Role::Mixed;
        if !lone_mixed || self.worker.vad_mode != VadMode::Silero {
            return Ok(None);
        }
        let t = Instant::now();
        let split =
            speakers::split_two_voices(&self.call.audio[0].samples, &self.call.speech[0].regions);
        self.call.timings.vad_s += t.elapsed().as_secs_f64();
        match split {
            VoiceSplit::Two(two) => Ok(Some(two)),
            VoiceSplit::OneVoice { reason } => {
                self.keep_mixed(reason)?;
                Ok(None)
            }
        }
    }

    /// The voices are decoded: the one saying at least [`MIN_AGENT_SCRIPT`] phrases of the
    /// rubric's agent script, while the other says at most [`MAX_CALLER_SCRIPT`], is the agent's;
    /// else the call stays mixed. Relabels the transcripts and replaces the speech.
    fn attribute_voices(
        &mut self,
        voices: TwoVoices,
        parts: &mut [Transcript],
    ) -> crate::Result<()> {
        let hits = [0, 1].map(|v| {
            parts
                .get(v)
                .map_or(0, |p| self.rubric.script_phrases_heard(&p.segments))
        });
        // The agent says the script; a caller says at most a "您好" or a "再见". Anything else
        // (neither voice, both, or a caller cluster saying the script) means the split is not
        // the two parties: measured on the samples' channels alone, one voice split in two gave
        // script phrases to both halves.
        let agent = if hits[0] >= hits[1] { 0 } else { 1 };
        if hits[agent] < MIN_AGENT_SCRIPT || hits[1 - agent] > MAX_CALLER_SCRIPT {
            return self.keep_mixed(format!(
                "two voices, but the script does not single out the agent: {} and {} phrase(s) of it ({MIN_AGENT_SCRIPT} and at most {MAX_CALLER_SCRIPT} needed)",
                hits[agent],
                hits[1 - agent]
            ));
        }
        let caller = 1 - agent;
        for (v, part) in parts.iter_mut().enumerate() {
            let role = if v == agent {
                Role::Agent
            } else {
                Role::Caller
            };
            part.segments.iter_mut().for_each(|s| s.role = role);
            part.dropped.iter_mut().for_each(|d| d.segment.role = role);
        }
        let pitch = voices.pitch_hz;
        let [v0, v1] = voices.turns;
        let (agent_turns, caller_turns) = if agent == 0 { (v0, v1) } else { (v1, v0) };
        let speech = vec![
            SpeechRegions {
                role: Role::Agent,
                regions: agent_turns,
            },
            SpeechRegions {
                role: Role::Caller,
                regions: caller_turns,
            },
        ];
        let seconds = |s: &SpeechRegions| s.regions.iter().map(|r| r.duration()).sum::<f64>();
        let note = format!(
            "two voices on one channel, {:.1} semitones apart: the agent ({:.0} Hz, {:.1} s of speech) says {} phrase(s) of the agent script, the caller ({:.0} Hz, {:.1} s) {}",
            voices.apart_st,
            pitch[agent],
            seconds(&speech[0]),
            hits[agent],
            pitch[caller],
            seconds(&speech[1]),
            hits[caller]
        );
        // The one track now stands for the agent's voice in the agent's turns (tone reads the
        // agent's audio at the agent's spans); the caller's turns are on it too, never read as
        // the agent's.
        self.call.audio[0].role = Role::Agent;
        self.call.speech = speech.clone();
        self.emit(CallEvent::RolesSeparated {
            separation: RoleSeparation {
                separated: true,
                note,
            },
            speech,
        })
    }

    /// Say why a mono call stays one mixed speaker (a warning, and a record in the store).
    fn keep_mixed(&mut self, reason: String) -> crate::Result<()> {
        tracing::warn!(
            "{}: mono recording, speakers not separated ({reason}): analysed as one mixed speaker, findings may be the caller's",
            self.call.label
        );
        self.emit(CallEvent::RolesSeparated {
            separation: RoleSeparation {
                separated: false,
                note: reason,
            },
            speech: self.call.speech.clone(),
        })
    }

    /// The call is over: flush, run the final pass, emit [`CallEvent::Ended`]. On error the
    /// session emits [`CallEvent::Failed`] (naming the call and stage) and returns the error.
    pub fn finish(mut self) -> crate::Result<CallEnd> {
        match self.final_pass() {
            Ok(end) => {
                self.emit(CallEvent::Ended(end.clone()))?;
                Ok(end)
            }
            Err(e) => {
                self.fail(&e)?;
                Err(e)
            }
        }
    }

    /// Report a failure that happened while pushing (the caller stops pushing after this).
    pub fn fail(&mut self, error: &Error) -> crate::Result<()> {
        self.emit(CallEvent::Failed {
            error: error.to_string(),
            stage: error.stage(),
        })
    }

    fn final_pass(&mut self) -> crate::Result<CallEnd> {
        if self.call.retention != AudioRetention::WholeCall {
            return Err(Error::AudioNotKept {
                call: self.call.label.clone(),
            });
        }
        self.close_input(false)?;
        // Without a VAD, each channel is one region.
        if self.worker.vad_mode == VadMode::Off {
            for c in 0..self.call.audio.len() {
                let region = SpeechRegion {
                    start: 0.0,
                    end: self.call.audio[c].duration_s(),
                };
                self.region_closed(c, region, false)?;
            }
        }
        let duration_s = self.audio_s();

        // A mono recording carries both parties on one track: tell the two voices apart first
        // (crate::speakers), decode each voice's turns, then name the agent by the script.
        let voices = self.mono_voices()?;

        // Whisper over every region, packed into shared windows.
        let t = Instant::now();
        let mut transcript = Transcript::default();
        // Agent-only mode leaves the caller's channel to VAD (silence, talk-over) and whisper
        // never hears it (a mono call's voices are both decoded: which one is the agent's is
        // known only from what they say).
        let agent_only = self.worker.agent_only;
        // A mono call's two voices are decoded as two channels of the one track.
        let voice_turns = voices.as_ref().map(|v| {
            v.turns.clone().map(|regions| SpeechRegions {
                role: Role::Mixed,
                regions,
            })
        });
        let channels: Vec<(&RoleAudio, &SpeechRegions)> = match &voice_turns {
            Some(v) => v.iter().map(|s| (&self.call.audio[0], s)).collect(),
            None => self
                .call
                .audio
                .iter()
                .zip(&self.call.speech)
                .filter(|(_, speech)| !(agent_only && speech.role == Role::Caller))
                .collect(),
        };
        // A core left idle by another worker (the batch's tail, one long call) decodes the
        // second channel beside the first: the same transcripts, sooner.
        let spare = self.worker.spare.as_ref().and_then(|s| s.try_borrow());
        let Some(recognizer) = self.worker.recognizer.as_mut() else {
            return Err(Error::NoRecognizer {
                call: self.call.label.clone(),
            });
        };
        let mut parts = recognizer
            .recognize_channels(&channels, spare.is_some())
            .map_err(|e| Error::in_call(&self.call.label, Stage::Asr, e))?;
        self.call.timings.asr_spread = spare.is_some() && channels.len() > 1;
        drop(spare);
        if let Some(voices) = voices {
            self.attribute_voices(voices, &mut parts)?;
        }
        for part in parts {
            transcript.segments.extend(part.segments);
            transcript.dropped.extend(part.dropped);
        }
        transcript.sort();
        self.call.timings.asr_s += t.elapsed().as_secs_f64();
        let segments = self.emit_transcript(Pass::Final, transcript, duration_s)?;

        let t = Instant::now();
        let track = super::analyze::score_tone(
            &mut self.worker.tone,
            &self.call.audio,
            &self.call.speech,
            &segments,
            self.call.history.as_ref(),
        )
        .map_err(|e| Error::in_call(&self.call.label, Stage::Tone, e))?;
        self.call.timings.tone_s += t.elapsed().as_secs_f64();
        for window in &track.windows {
            self.emit(CallEvent::ToneScored {
                pass: Pass::Final,
                window: window.clone(),
            })?;
        }

        let t = Instant::now();
        let (findings, score) = super::analyze::score_call(
            self.rubric,
            duration_s,
            &segments,
            &self.call.speech,
            &track.windows,
        );
        self.call.timings.rules_s += t.elapsed().as_secs_f64();
        for finding in findings {
            self.emit(CallEvent::Finding {
                pass: Pass::Final,
                finding,
                at_audio_s: duration_s,
            })?;
        }
        Ok(CallEnd {
            duration_s,
            score,
            tone_summary: tone::summarize(&track, self.worker.tone.threshold()),
            tone_threshold: self.worker.tone.threshold(),
            tone_baseline: track.baseline,
            timings: self.call.timings,
        })
    }
}

/// One recording to analyse.
#[derive(Debug, Clone, PartialEq)]
pub struct CallJob {
    pub path: std::path::PathBuf,
    pub agent_id: Option<String>,
    pub call_id: Option<String>,
    pub channel_map: ChannelMap,
    /// Where the recording came from (a live call's recording is analysed like any other).
    pub source: Source,
    /// When the call took place (ISO 8601 UTC), if known; the store falls back to now.
    pub started_at: Option<String>,
}

impl CallJob {
    /// What the call's [`CallEvent::Began`] says before its audio is read: the job's own facts
    /// (no audio hash, roles or format yet).
    pub fn call_info(&self, key: String) -> CallInfo {
        CallInfo {
            key,
            path: self.path.clone(),
            audio_hash: String::new(),
            agent_id: self.agent_id.clone(),
            channel_map: self.channel_map,
            source: self.source,
            started_at: self.started_at.clone(),
            roles: Vec::new(),
            format: None,
        }
    }
}

/// Analyse one recording: read, decode, push it through a [`CallSession`] and finish. Every
/// outcome reaches the sink — [`CallEvent::Ended`], or [`CallEvent::Failed`] naming the file
/// (a file that cannot be read or decoded still gets a [`CallEvent::Began`] first).
#[allow(clippy::too_many_arguments)]
pub fn analyze_recording(
    worker: &mut Worker,
    rubric: &Rubric,
    sink: &mut dyn CallSink,
    seq: CallSeq,
    job: &CallJob,
    history: Option<Baseline>,
    mode: SessionMode,
) -> crate::Result<CallEnd> {
    let t = Instant::now();
    let mut info = job.call_info(String::new());
    let fail = |sink: &mut dyn CallSink, mut info: CallInfo, e: Error| -> crate::Result<CallEnd> {
        info.key = identity::call_key(job.call_id.as_deref(), Some(&info.audio_hash), &job.path);
        sink.event(seq, &CallEvent::Began(info))?;
        sink.event(
            seq,
            &CallEvent::Failed {
                error: e.to_string(),
                stage: e.stage(),
            },
        )?;
        Err(e)
    };
    let bytes = match crate::audio::read_recording(&job.path) {
        Ok(b) => b,
        Err(e) => return fail(sink, info, e.into()),
    };
    info.audio_hash = identity::bytes_hash(&bytes);
    // Memory, for long recordings: the file's bytes go once decoded, the decoded samples move
    // into the role tracks, and those go once pushed (the session keeps its 16 kHz copy).
    let decoded = crate::audio::decode::decode_bytes(&job.path, &bytes).and_then(|rec| {
        let format = AudioFormat {
            sample_rate: rec.sample_rate,
            channels: rec.channels.len(),
            encoding: rec.encoding,
        };
        into_role_channels(rec, job.channel_map).map(|ch| (format, ch))
    });
    drop(bytes);
    let (format, channels) = match decoded {
        Ok(x) => x,
        Err(e) => return fail(sink, info, e.into()),
    };
    info.key = identity::call_key(job.call_id.as_deref(), Some(&info.audio_hash), &job.path);
    info.roles = channels.iter().map(|(r, _)| *r).collect();
    info.format = Some(format);
    let decode_s = t.elapsed().as_secs_f64();
    let mut session = CallSession::begin(worker, rubric, sink, seq, info, mode, history)?;
    session.add_decode_time(decode_s);
    if let Err(e) = push_channels(&mut session, &channels) {
        session.fail(&e)?;
        return Err(e);
    }
    drop(channels);
    session.finish()
}

/// Push whole channels in quarter-second pieces, channel after channel, so the VAD runs the
/// channels of a call as one batch (a piece stays under the VAD's skew allowance, so no channel
/// is ever run on its own while the other's piece is on its way).
fn push_channels(session: &mut CallSession, channels: &[(Role, Vec<f32>)]) -> crate::Result<()> {
    let piece = (session.call.format.sample_rate as usize / 4).max(1);
    let longest = channels.iter().map(|(_, s)| s.len()).max().unwrap_or(0);
    session.reserve(longest);
    let mut at = 0;
    while at < longest {
        for (c, (_, samples)) in channels.iter().enumerate() {
            let end = (at + piece).min(samples.len());
            if at < end {
                session.push(c, &samples[at..end])?;
            }
        }
        at += piece;
    }
    Ok(())
}
