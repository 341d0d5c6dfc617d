//! Voice activity detection: silero VAD (ONNX, through ort) → speech regions per role.
//!
//! Whisper must only ever hear speech: on silence it invents captions, and on long stretches it
//! drops speech (see docs). Silence and dead air are also measured from these regions, never from
//! ASR timestamps, because whisper's segment times stretch across pauses.
//!
//! Silero VAD v6 takes 512 new samples at 16 kHz plus the 64 samples before them, and a recurrent
//! state; it returns one speech probability per 32 ms frame. [`VadStream`] runs the model over audio
//! as it arrives (a whole file is one push), [`RegionTracker`] turns frame probabilities into
//! regions with hysteresis, one frame at a time.

use std::path::Path;

use ndarray::{Array2, Array3, arr0};
use ort::session::Session;
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};

use crate::audio::{Role, RoleAudio, TARGET_RATE};
use crate::onnx::{self, OnnxError};

/// Samples per VAD frame at 16 kHz (32 ms).
pub const FRAME: usize = 512;
/// Samples of left context silero v6 expects before each frame.
const CONTEXT: usize = 64;
/// Seconds per VAD frame.
pub const FRAME_S: f64 = FRAME as f64 / TARGET_RATE as f64;

/// How frame probabilities become regions.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct VadParams {
    /// A region starts when the probability reaches this.
    pub onset: f32,
    /// A region ends when the probability stays below this for `min_silence_s`.
    pub offset: f32,
    /// Pauses shorter than this stay inside a region (breaths between phrases).
    pub min_silence_s: f64,
    /// Regions shorter than this are dropped (clicks, coughs).
    pub min_speech_s: f64,
    /// Padding added on each side of a region so word edges are not cut.
    pub pad_s: f64,
    /// Longer regions are split at their quietest frame (whisper's window is 30 s).
    pub max_region_s: f64,
}

impl Default for VadParams {
    fn default() -> Self {
        VadParams {
            onset: 0.5,
            offset: 0.35,
            min_silence_s: 0.4,
            min_speech_s: 0.25,
            pad_s: 0.1,
            max_region_s: 25.0,
        }
    }
}

/// One stretch of speech on one role's channel, on the call's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpeechRegion {
    #[serde(serialize_with = "crate::time::round_ms")]
    pub start: f64,
    #[serde(serialize_with = "crate::time::round_ms")]
    pub end: f64,
}

impl SpeechRegion {
    pub fn duration(&self) -> f64 {
        self.end - self.start
    }
}

/// All speech regions of one role, in time order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpeechRegions {
    pub role: Role,
    pub regions: Vec<SpeechRegion>,
}

impl SpeechRegions {
    /// The agent's and the caller's regions from known `(role, start, end)` spans, e.g. labelled
    /// utterances or transcript segments (tests and benchmarks that need speech facts without
    /// running the VAD). Spans keep their order.
    pub fn of_stereo_spans(spans: impl IntoIterator<Item = (Role, f64, f64)>) -> Vec<Self> {
        let mut out = [Role::Agent, Role::Caller].map(|role| SpeechRegions {
            role,
            regions: Vec::new(),
        });
        for (role, start, end) in spans {
            if let Some(r) = out.iter_mut().find(|r| r.role == role) {
                r.regions.push(SpeechRegion { start, end });
            }
        }
        out.into()
    }
}

/// A loaded silero VAD model (one per worker: `Session::run` needs `&mut`).
pub struct Vad {
    session: Session,
    pub params: VadParams,
}

impl Vad {
    /// Load `silero_vad.onnx` from the models directory.
    pub fn load(models_dir: &Path, params: VadParams) -> Result<Self, OnnxError> {
        let session = onnx::session(models_dir, &models_dir.join("silero_vad.onnx"), 1)?;
        Ok(Vad { session, params })
    }

    /// Speech regions of several roles' audio (the channels of one call), in one batched pass.
    pub fn detect_many(&mut self, audio: &[RoleAudio]) -> Result<Vec<SpeechRegions>, OnnxError> {
        let mut stream = VadStream::new(audio.iter().map(|a| a.role).collect(), self.params);
        for (c, a) in audio.iter().enumerate() {
            stream.buffer(c, &a.samples);
        }
        let mut out: Vec<SpeechRegions> = audio
            .iter()
            .map(|a| SpeechRegions {
                role: a.role,
                regions: Vec::new(),
            })
            .collect();
        for (c, region) in stream.finish(self)? {
            out[c].regions.push(region);
        }
        Ok(out)
    }

    /// Speech regions of one role's audio.
    pub fn detect(&mut self, audio: &RoleAudio) -> Result<SpeechRegions, OnnxError> {
        Ok(self.detect_many(std::slice::from_ref(audio))?.remove(0))
    }

    /// One model run: `inputs` holds one row per channel (64 context + 512 new samples),
    /// `state` their recurrent states (updated in place); the probabilities go to `probs`.
    fn run_batch(
        &mut self,
        inputs: &Array2<f32>,
        state: &mut Array3<f32>,
        probs: &mut Vec<f32>,
    ) -> Result<(), OnnxError> {
        let err = |e: ort::Error| OnnxError::Run {
            model: "silero_vad.onnx".into(),
            reason: e.to_string(),
        };
        let sr = arr0(TARGET_RATE as i64);
        let outputs = self
            .session
            .run(ort::inputs![
                "input" => TensorRef::from_array_view(inputs).map_err(err)?,
                "state" => TensorRef::from_array_view(&*state).map_err(err)?,
                "sr" => TensorRef::from_array_view(&sr).map_err(err)?,
            ])
            .map_err(err)?;
        let (_, p) = outputs["output"].try_extract_tensor::<f32>().map_err(err)?;
        let batch = inputs.nrows();
        if p.len() != batch {
            return Err(OnnxError::Run {
                model: "silero_vad.onnx".into(),
                reason: format!("expected {batch} speech probabilities, got {}", p.len()),
            });
        }
        probs.clear();
        probs.extend_from_slice(p);
        let (_, new_state) = outputs["stateN"].try_extract_tensor::<f32>().map_err(err)?;
        check_state_len(new_state.len(), state.len())?;
        state
            .as_slice_mut()
            .expect("contiguous")
            .copy_from_slice(new_state);
        Ok(())
    }
}

/// A recurrent state of the wrong size means the model is not the silero v6 callqc was built
/// for; carrying on with a zero state would silently degrade every region after it.
fn check_state_len(got: usize, want: usize) -> Result<(), OnnxError> {
    if got == want {
        Ok(())
    } else {
        Err(OnnxError::Run {
            model: "silero_vad.onnx".into(),
            reason: format!(
                "recurrent state has {got} values, expected {want} (shape 2 × batch × 128): \
                 not a silero v6 model?"
            ),
        })
    }
}

/// Channels a stream lets one role run ahead of the others by, in frames (~0.8 s), before it
/// runs that role on its own: the batch gain is kept when roles arrive together, and a stalled
/// role (a PBX leg that stops sending) never holds the other's warnings back.
const MAX_SKEW_FRAMES: usize = 25;

/// One channel of a [`VadStream`].
struct ChannelVad {
    /// Samples not run yet start at `pending[next..]` (compacted after each run).
    pending: Vec<f32>,
    next: usize,
    tracker: RegionTracker,
    samples_in: usize,
}

impl ChannelVad {
    fn ready(&self, flush: bool) -> bool {
        let left = self.pending.len() - self.next;
        left >= FRAME || (flush && left > 0)
    }
}

/// Voice activity over audio that arrives in pieces, for the channels of one call.
///
/// Each channel keeps silero's recurrent state and its last 64 samples between pushes, so
/// pushing a call in 20 ms frames gives the same frame probabilities as the whole file. Frames
/// of all channels go through the model as one batch when every channel has one ready (half the
/// model runs for a stereo call). A region closes after `min_silence_s` of non-speech (the
/// hang-over) and is cut at `max_region_s` at the quietest frame of its second half, so no
/// region waits on audio that has not arrived yet.
pub struct VadStream {
    channels: Vec<ChannelVad>,
    /// Model input, one row per channel: the previous frame's last 64 samples, then the frame.
    /// Kept between runs, so a row's first 64 samples are always its channel's context.
    input: Array2<f32>,
    /// Recurrent state, 2 × channels × 128, updated in place by every all-channel run.
    state: Array3<f32>,
    probs: Vec<f32>,
}

impl VadStream {
    /// A stream for channels carrying `roles` (index = channel).
    pub fn new(roles: Vec<Role>, params: VadParams) -> VadStream {
        let n = roles.len();
        VadStream {
            channels: roles
                .into_iter()
                .map(|_| ChannelVad {
                    pending: Vec::new(),
                    next: 0,
                    tracker: RegionTracker::new(params),
                    samples_in: 0,
                })
                .collect(),
            input: Array2::zeros((n, CONTEXT + FRAME)),
            state: Array3::zeros((2, n, 128)),
            probs: Vec::with_capacity(n),
        }
    }

    /// Queue 16 kHz samples of channel `c` without running the model.
    pub fn buffer(&mut self, c: usize, samples: &[f32]) {
        let ch = &mut self.channels[c];
        ch.pending.extend_from_slice(samples);
        ch.samples_in += samples.len();
    }

    /// Queue samples of channel `c` and run every frame that is ready; returns the regions this
    /// closed, as (channel, region).
    pub fn push(
        &mut self,
        vad: &mut Vad,
        c: usize,
        samples: &[f32],
    ) -> Result<Vec<(usize, SpeechRegion)>, OnnxError> {
        self.buffer(c, samples);
        self.run_ready(vad, false)
    }

    /// The region being spoken now on channel `c` (from its start to what has been judged).
    pub fn open_region(&self, c: usize) -> Option<SpeechRegion> {
        let t = &self.channels[c].tracker;
        let start = t.open_start()?;
        Some(SpeechRegion {
            start,
            end: t.seen_s().max(start),
        })
    }

    /// The earliest call time a region of channel `c` that has not closed yet can start: the
    /// open region's start, or (none open) the frames judged so far less the start padding.
    /// Audio before it is read by no region to come.
    pub fn unsettled_from_s(&self, c: usize) -> f64 {
        let t = &self.channels[c].tracker;
        t.open_start()
            .unwrap_or_else(|| (t.seen_s() - t.params.pad_s).max(0.0))
    }

    /// Run the rest (the last partial frame padded with silence) and close open regions.
    pub fn finish(&mut self, vad: &mut Vad) -> Result<Vec<(usize, SpeechRegion)>, OnnxError> {
        let mut out = self.run_ready(vad, true)?;
        for (c, ch) in self.channels.iter_mut().enumerate() {
            let duration = ch.samples_in as f64 / TARGET_RATE as f64;
            if let Some(r) = ch.tracker.finish(duration) {
                out.push((c, r));
            }
        }
        Ok(out)
    }

    fn run_ready(
        &mut self,
        vad: &mut Vad,
        flush: bool,
    ) -> Result<Vec<(usize, SpeechRegion)>, OnnxError> {
        let mut closed = Vec::new();
        loop {
            let n_ready = self.channels.iter().filter(|c| c.ready(flush)).count();
            if n_ready == 0 {
                break;
            }
            if n_ready == self.channels.len() {
                // The usual case: every channel has a frame; run them in place.
                for b in 0..self.channels.len() {
                    self.load_row(b);
                }
                vad.run_batch(&self.input, &mut self.state, &mut self.probs)?;
                for b in 0..self.channels.len() {
                    self.judge(b, self.probs[b], &mut closed);
                }
                continue;
            }
            let ahead = self
                .channels
                .iter()
                .map(|c| (c.pending.len() - c.next) / FRAME)
                .max()
                .unwrap_or(0);
            if !flush && ahead <= MAX_SKEW_FRAMES {
                break;
            }
            // Some channels only (one ran ahead, or the stream ends): gather their rows.
            let rows: Vec<usize> = (0..self.channels.len())
                .filter(|&c| self.channels[c].ready(flush))
                .collect();
            for &c in &rows {
                self.load_row(c);
            }
            let mut input = Array2::<f32>::zeros((rows.len(), CONTEXT + FRAME));
            let mut state = Array3::<f32>::zeros((2, rows.len(), 128));
            for (b, &c) in rows.iter().enumerate() {
                input.row_mut(b).assign(&self.input.row(c));
                for layer in 0..2 {
                    state
                        .slice_mut(ndarray::s![layer, b, ..])
                        .assign(&self.state.slice(ndarray::s![layer, c, ..]));
                }
            }
            let mut probs = Vec::with_capacity(rows.len());
            vad.run_batch(&input, &mut state, &mut probs)?;
            for (b, &c) in rows.iter().enumerate() {
                for layer in 0..2 {
                    self.state
                        .slice_mut(ndarray::s![layer, c, ..])
                        .assign(&state.slice(ndarray::s![layer, b, ..]));
                }
                self.judge(c, probs[b], &mut closed);
            }
        }
        for ch in &mut self.channels {
            ch.pending.drain(..ch.next);
            ch.next = 0;
        }
        Ok(closed)
    }

    /// Put channel `c`'s next frame in its input row: the last frame's tail becomes the
    /// context, then up to 512 new samples (silence past the end of the stream).
    fn load_row(&mut self, c: usize) {
        let ch = &mut self.channels[c];
        let mut row = self.input.row_mut(c);
        let row = row.as_slice_mut().expect("contiguous row");
        row.copy_within(FRAME.., 0);
        let n = (ch.pending.len() - ch.next).min(FRAME);
        row[CONTEXT..CONTEXT + n].copy_from_slice(&ch.pending[ch.next..ch.next + n]);
        row[CONTEXT + n..].fill(0.0);
        ch.next += n;
    }

    fn judge(&mut self, c: usize, prob: f32, closed: &mut Vec<(usize, SpeechRegion)>) {
        if let Some(r) = self.channels[c].tracker.push(prob) {
            closed.push((c, r));
        }
    }
}

/// Frame probabilities → regions, one frame at a time: hysteresis (onset / offset), bridging
/// pauses shorter than the hang-over, dropping short blips, padding, and a forced cut of regions
/// that reach `max_region_s`. Whole files and live streams use the same tracker, so they give the
/// same regions for the same audio.
#[derive(Debug, Clone)]
pub struct RegionTracker {
    params: VadParams,
    min_silence_frames: usize,
    max_frames: usize,
    /// Frames seen.
    frames: usize,
    /// First frame of the open region, if one is open.
    start: Option<usize>,
    /// Frames since the region start that were not speech-like (trailing).
    quiet: usize,
    /// Probabilities since the open region's start (for the forced cut).
    region_probs: Vec<f32>,
    /// The region being cut was itself a continuation of a cut (no start padding).
    continued: bool,
    /// End of the last emitted region (padding never reaches back over it).
    last_end: f64,
}

impl RegionTracker {
    pub fn new(params: VadParams) -> RegionTracker {
        RegionTracker {
            params,
            min_silence_frames: (params.min_silence_s / FRAME_S).ceil() as usize,
            max_frames: ((params.max_region_s / FRAME_S) as usize).max(2),
            frames: 0,
            start: None,
            quiet: 0,
            region_probs: Vec::new(),
            continued: false,
            last_end: 0.0,
        }
    }

    /// The next frame's probability; returns a region if this frame closed (or cut) one.
    pub fn push(&mut self, prob: f32) -> Option<SpeechRegion> {
        let i = self.frames;
        self.frames += 1;
        let now = self.frames as f64 * FRAME_S;
        match self.start {
            None => {
                if prob >= self.params.onset {
                    self.start = Some(i);
                    self.quiet = 0;
                    self.region_probs.clear();
                    self.region_probs.push(prob);
                }
                None
            }
            Some(s) => {
                self.region_probs.push(prob);
                if prob < self.params.offset {
                    self.quiet += 1;
                    if self.quiet >= self.min_silence_frames {
                        let end = i + 1 - self.quiet;
                        self.start = None;
                        let continued = std::mem::take(&mut self.continued);
                        return self.emit(s, end, continued, true, now);
                    }
                } else {
                    self.quiet = 0;
                }
                if i + 1 - s >= self.max_frames {
                    // Cut at the least speech-like frame of the second half (a pause between
                    // phrases, if there is one); the rest carries on as a new region.
                    let half = self.region_probs.len() / 2;
                    let cut_rel = (half..self.region_probs.len())
                        .min_by(|&a, &b| self.region_probs[a].total_cmp(&self.region_probs[b]))
                        .unwrap_or(half)
                        .max(1);
                    let cut = s + cut_rel;
                    let region = self.emit(s, cut, self.continued, false, now);
                    self.region_probs.drain(..cut_rel);
                    self.start = Some(cut);
                    self.continued = true;
                    return region;
                }
                None
            }
        }
    }

    /// Start (padded) of the region being spoken now, if one is open: live rules treat it as
    /// speech already, so a caller talking for a long time is not a silence.
    pub fn open_start(&self) -> Option<f64> {
        let s = self.start? as f64 * FRAME_S;
        Some(if self.continued {
            s
        } else {
            (s - self.params.pad_s).max(self.last_end)
        })
    }

    /// Seconds of frames seen.
    pub fn seen_s(&self) -> f64 {
        self.frames as f64 * FRAME_S
    }

    /// The stream ended at `duration_s`: close the open region, if any.
    pub fn finish(&mut self, duration_s: f64) -> Option<SpeechRegion> {
        let s = self.start.take()?;
        let end = self.frames - self.quiet;
        let continued = std::mem::take(&mut self.continued);
        self.emit(s, end, continued, true, duration_s)
    }

    /// A region over frames [s, e); `pad_start` is false after a forced cut, `pad_end` false
    /// before one (the two pieces stay contiguous). `limit` is the latest time known to exist.
    fn emit(
        &mut self,
        s: usize,
        e: usize,
        continued: bool,
        pad_end: bool,
        limit: f64,
    ) -> Option<SpeechRegion> {
        let (start, end) = (s as f64 * FRAME_S, e as f64 * FRAME_S);
        if end - start < self.params.min_speech_s && !continued && pad_end {
            return None;
        }
        let start = if continued {
            start
        } else {
            (start - self.params.pad_s).max(self.last_end)
        };
        let end = if pad_end {
            (end + self.params.pad_s).min(limit)
        } else {
            end
        };
        if end <= start {
            return None;
        }
        self.last_end = end;
        Some(SpeechRegion { start, end })
    }
}

/// Turn per-frame speech probabilities into regions with the streaming [`RegionTracker`].
pub fn regions_from_probabilities(
    probs: &[f32],
    duration_s: f64,
    p: &VadParams,
) -> Vec<SpeechRegion> {
    let mut tracker = RegionTracker::new(*p);
    let mut out: Vec<SpeechRegion> = probs.iter().filter_map(|&x| tracker.push(x)).collect();
    out.extend(tracker.finish(duration_s));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(pattern: &[(f32, f64)]) -> Vec<f32> {
        let mut v = Vec::new();
        for &(p, secs) in pattern {
            v.extend(std::iter::repeat_n(p, (secs / FRAME_S).round() as usize));
        }
        v
    }

    #[test]
    fn hysteresis_bridges_short_pauses_and_splits_long_ones() {
        let p = VadParams {
            pad_s: 0.0,
            ..VadParams::default()
        };
        let probs = frames(&[
            (0.0, 1.0),
            (0.9, 2.0),
            (0.1, 0.2),
            (0.9, 1.0),
            (0.0, 1.0),
            (0.8, 1.0),
        ]);
        let r = regions_from_probabilities(&probs, 10.0, &p);
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(
            (r[0].start - 1.0).abs() < 0.05 && (r[0].end - 4.2).abs() < 0.05,
            "{r:?}"
        );
        assert!((r[1].start - 5.2).abs() < 0.05, "{r:?}");
    }

    #[test]
    fn blips_are_dropped_and_pads_stay_inside_the_call() {
        let p = VadParams::default();
        let probs = frames(&[(0.9, 0.1), (0.0, 1.0), (0.9, 0.064)]);
        let r = regions_from_probabilities(&probs, 1.2, &p);
        assert!(r.is_empty(), "{r:?}");
        let probs = frames(&[(0.9, 1.0)]);
        let r = regions_from_probabilities(&probs, 1.0, &p);
        assert_eq!(r.len(), 1);
        assert!(r[0].start >= 0.0 && r[0].end <= 1.0);
    }

    #[test]
    fn a_wrong_sized_state_is_an_error_not_a_silent_reset() {
        let e = check_state_len(128, 256).unwrap_err().to_string();
        assert!(e.contains("silero_vad.onnx") && e.contains("128"), "{e}");
        assert!(check_state_len(256, 256).is_ok());
    }

    #[test]
    fn the_tracker_closes_a_region_after_the_hang_over_not_at_the_end() {
        let p = VadParams::default();
        let mut t = RegionTracker::new(p);
        let probs = frames(&[(0.0, 0.5), (0.9, 1.0), (0.0, 2.0)]);
        let mut closed_at = None;
        for (i, &x) in probs.iter().enumerate() {
            if let Some(r) = t.push(x) {
                closed_at = Some((i, r));
                break;
            }
        }
        let (i, r) = closed_at.expect("closed before the stream ended");
        let when = (i + 1) as f64 * FRAME_S;
        assert!((r.end - 1.6).abs() < 0.05, "{r:?}");
        assert!(
            when - 1.5 <= p.min_silence_s + 2.0 * FRAME_S,
            "closed at {when}"
        );
    }

    #[test]
    fn long_speech_is_split_under_the_maximum_at_a_dip() {
        let p = VadParams {
            max_region_s: 10.0,
            pad_s: 0.0,
            ..VadParams::default()
        };
        let probs = frames(&[(0.9, 8.0), (0.4, 0.2), (0.9, 8.0)]);
        let r = regions_from_probabilities(&probs, 16.2, &p);
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(r.iter().all(|x| x.duration() <= 10.0));
        assert!((r[0].end - 8.0).abs() < 0.1, "cut at the dip: {r:?}");
    }
}
