//! Voice activity detection: silero VAD (ONNX, through ort) → speech regions per role.
//!
//! Whisper must only ever hear speech: on silence it invents captions, and on long stretches it
//! drops speech (see docs). Silence and dead air are also measured from these regions, never from
//! ASR timestamps, because whisper's segment times stretch across pauses.
//!
//! Silero VAD v6 takes 512 new samples at 16 kHz plus the 64 samples before them, and a recurrent
//! state; it returns one speech probability per 32 ms frame. [`Vad::probabilities`] runs the model,
//! [`regions_from_probabilities`] turns frame probabilities into regions with hysteresis.

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
    pub start: f64,
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

    /// Speech probability of every 32 ms frame of `samples` (16 kHz).
    pub fn probabilities(&mut self, samples: &[f32]) -> Result<Vec<f32>, OnnxError> {
        Ok(self.probabilities_many(&[samples])?.remove(0))
    }

    /// Frame probabilities of several channels at once: the channels go through the model as
    /// one batch (each row keeps its own recurrent state), which halves the number of model
    /// runs for a stereo call — per-run overhead is most of silero's cost at 32 ms frames.
    pub fn probabilities_many(&mut self, channels: &[&[f32]]) -> Result<Vec<Vec<f32>>, OnnxError> {
        let err = |e: ort::Error| OnnxError::Run {
            model: "silero_vad.onnx".into(),
            reason: e.to_string(),
        };
        let batch = channels.len();
        if batch == 0 {
            return Ok(Vec::new());
        }
        let frames_of = |c: &[f32]| c.len().div_ceil(FRAME);
        let n_frames = channels.iter().map(|c| frames_of(c)).max().unwrap_or(0);
        let mut state = Array3::<f32>::zeros((2, batch, 128));
        let sr = arr0(TARGET_RATE as i64);
        let mut input = Array2::<f32>::zeros((batch, CONTEXT + FRAME));
        let mut probs: Vec<Vec<f32>> = channels
            .iter()
            .map(|c| Vec::with_capacity(frames_of(c)))
            .collect();
        for i in 0..n_frames {
            for (b, samples) in channels.iter().enumerate() {
                let mut row = input.row_mut(b);
                let row = row.as_slice_mut().expect("contiguous row");
                // Context = the last 64 samples of the previous frame (zeros at the start);
                // a channel shorter than the others is fed silence past its end.
                let at = |k: usize| samples.get(k).copied().unwrap_or(0.0);
                let base = i * FRAME;
                for (j, x) in row.iter_mut().enumerate() {
                    *x = if base + j < CONTEXT {
                        0.0
                    } else {
                        at(base + j - CONTEXT)
                    };
                }
            }
            let outputs = self
                .session
                .run(ort::inputs![
                    "input" => TensorRef::from_array_view(&input).map_err(err)?,
                    "state" => TensorRef::from_array_view(&state).map_err(err)?,
                    "sr" => TensorRef::from_array_view(&sr).map_err(err)?,
                ])
                .map_err(err)?;
            let (_, p) = outputs["output"].try_extract_tensor::<f32>().map_err(err)?;
            for (b, out) in probs.iter_mut().enumerate() {
                if i < frames_of(channels[b]) {
                    out.push(p.get(b).copied().unwrap_or(0.0));
                }
            }
            let (_, new_state) = outputs["stateN"].try_extract_tensor::<f32>().map_err(err)?;
            if new_state.len() == state.len() {
                state
                    .as_slice_mut()
                    .expect("contiguous")
                    .copy_from_slice(new_state);
            }
        }
        Ok(probs)
    }

    /// Speech regions of several roles' audio (the channels of one call), in one batched pass.
    pub fn detect_many(&mut self, audio: &[RoleAudio]) -> Result<Vec<SpeechRegions>, OnnxError> {
        let channels: Vec<&[f32]> = audio.iter().map(|a| a.samples.as_slice()).collect();
        let probs = self.probabilities_many(&channels)?;
        Ok(audio
            .iter()
            .zip(probs)
            .map(|(a, p)| SpeechRegions {
                role: a.role,
                regions: regions_from_probabilities(&p, a.duration_s(), &self.params),
            })
            .collect())
    }

    /// Speech regions of one role's audio.
    pub fn detect(&mut self, audio: &RoleAudio) -> Result<SpeechRegions, OnnxError> {
        let probs = self.probabilities(&audio.samples)?;
        Ok(SpeechRegions {
            role: audio.role,
            regions: regions_from_probabilities(&probs, audio.duration_s(), &self.params),
        })
    }
}

/// Turn per-frame speech probabilities into regions: hysteresis (onset / offset), bridging short
/// pauses, dropping short blips, padding, and splitting regions longer than `max_region_s` at
/// their least speech-like frame.
pub fn regions_from_probabilities(
    probs: &[f32],
    duration_s: f64,
    p: &VadParams,
) -> Vec<SpeechRegion> {
    let min_silence_frames = (p.min_silence_s / FRAME_S).ceil() as usize;
    // Raw runs of speech frames, as [start_frame, end_frame).
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut start: Option<usize> = None;
    let mut quiet = 0usize;
    for (i, &prob) in probs.iter().enumerate() {
        match start {
            None if prob >= p.onset => {
                start = Some(i);
                quiet = 0;
            }
            None => {}
            Some(s) => {
                if prob < p.offset {
                    quiet += 1;
                    if quiet >= min_silence_frames {
                        runs.push((s, i + 1 - quiet));
                        start = None;
                    }
                } else {
                    quiet = 0;
                }
            }
        }
    }
    if let Some(s) = start {
        runs.push((s, probs.len() - quiet));
    }

    let max_frames = ((p.max_region_s / FRAME_S) as usize).max(1);
    let mut split: Vec<(usize, usize)> = Vec::new();
    for (s, e) in runs {
        split_long(probs, s, e, max_frames, &mut split);
    }

    let mut out: Vec<SpeechRegion> = Vec::new();
    for (s, e) in split {
        let (start, end) = (s as f64 * FRAME_S, e as f64 * FRAME_S);
        if end - start < p.min_speech_s {
            continue;
        }
        let start = (start - p.pad_s).max(0.0);
        let end = (end + p.pad_s).min(duration_s);
        // Padding may make neighbours touch; keep them apart at the midpoint.
        if let Some(last) = out.last_mut()
            && start < last.end
        {
            let mid = (start + last.end) / 2.0;
            last.end = mid;
            out.push(SpeechRegion { start: mid, end });
            continue;
        }
        if end > start {
            out.push(SpeechRegion { start, end });
        }
    }
    out
}

/// Split [s, e) into pieces of at most `max` frames, cutting at the lowest-probability frame
/// of the middle half of each too-long piece (a pause between phrases, if there is one).
fn split_long(probs: &[f32], s: usize, e: usize, max: usize, out: &mut Vec<(usize, usize)>) {
    if e - s <= max {
        out.push((s, e));
        return;
    }
    let lo = s + (e - s) / 4;
    let hi = (s + 3 * (e - s) / 4).min(s + max);
    let cut = (lo..hi.max(lo + 1))
        .min_by(|&a, &b| probs[a].total_cmp(&probs[b]))
        .unwrap_or(s + max);
    split_long(probs, s, cut, max, out);
    split_long(probs, cut, e, max, out);
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
