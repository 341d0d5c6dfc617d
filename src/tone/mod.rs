//! Agent tone: does the agent's voice drift from their own calm self (raised voice, faster and
//! higher speech, pressed vocal effort)?
//!
//! No speech-emotion model ships in any package callqc can install, so callqc brings its own and
//! is open about what it is (docs/tone.md):
//!
//! - [`features`]: prosodic features of each agent speech window in pure Rust (F0 median and
//!   range, active-speech level and peak, speaking rate, spectral centroid and tilt, pause ratio),
//!   each relative to the agent's own baseline (this call, blended with earlier calls).
//! - [`model`]: the tone model is an ONNX file run through `ort`: relative features in, calm /
//!   tense / agitated probabilities out. Its first weights are a documented prior
//!   ([`model::LinearToneParams::prior`]), written by [`model::write_prior_model`], a committed and
//!   reproducible step ([`crate::onnx::writer`] encodes the ONNX protobuf).
//! - The same [`ToneScorer::score_role`] path also runs a centre's own waveform-in speech-emotion
//!   model (the drop-in contract: 16 kHz f32 `[1, samples]` in, label probabilities out, labels in
//!   a sidecar JSON).
//! - Output: per-window [`ToneWindow`]s (stored with the call, or streamed by [`live::ToneStream`])
//!   and a call-level [`ToneSummary`].

pub mod features;
pub mod live;
pub mod model;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::audio::Role;
use crate::onnx::OnnxError;

pub use features::{Baseline, RawFeatures, RelativeFeatures};
pub use model::{DEFAULT_THRESHOLD, ToneModel, ToneScorer, ToneSidecar, WaveformModel};

/// One scored window of one role's speech.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToneWindow {
    pub role: Role,
    /// Seconds from the start of the call.
    #[serde(serialize_with = "crate::time::round_ms")]
    pub start: f64,
    #[serde(serialize_with = "crate::time::round_ms")]
    pub end: f64,
    pub p_calm: f64,
    pub p_tense: f64,
    pub p_agitated: f64,
    /// The model input (relative features, [`features::FEATURE_NAMES`] order) for feature models:
    /// stored so `tone fit` can refit from trainers' verdicts without the audio. `None` for
    /// waveform models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<f32>>,
}

/// All scored windows of one role in one call, in time order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToneTrack {
    pub windows: Vec<ToneWindow>,
    /// The agent's in-call baseline (before any blend with history), for the database to merge
    /// into the agent's stored baseline with [`Baseline::merge_history`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
}

/// Call-level summary of a [`ToneTrack`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ToneSummary {
    /// Share of scored speech time that was tense (not agitated, but p_tense + p_agitated ≥ threshold).
    pub tense_share: f64,
    /// Share of scored speech time with p_agitated ≥ threshold.
    pub agitated_share: f64,
    /// Longest agitated stretch, seconds from its first to its last agitated moment; gaps without
    /// scored speech of up to [`STRETCH_GAP_S`] (the caller talking) do not break a stretch, calm
    /// or tense speech does.
    pub longest_agitated_s: f64,
    /// Highest window p_agitated.
    pub max_agitated: f64,
    /// Seconds of scored speech (union of the windows).
    pub speech_s: f64,
}

/// Gaps without scored speech up to this long do not end an agitated stretch.
pub const STRETCH_GAP_S: f64 = 2.0;

/// Errors of the tone stage.
#[derive(Debug, thiserror::Error)]
pub enum ToneError {
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error(
        "tone model sidecar not found: {0} (run scripts/setup.sh, or `callqc tone init`, to write the prior model)"
    )]
    SidecarMissing(PathBuf),
    #[error("tone model sidecar {path}: {reason}")]
    Sidecar { path: PathBuf, reason: String },
    #[error("tone model {model} does not follow its contract: {reason}")]
    Contract { model: PathBuf, reason: String },
    #[error("tone model {model} failed: {reason}")]
    Run { model: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Agitated / tense / scored time on a 10 ms grid; a cell covered by several (sliding) windows
/// takes their mean probabilities, so overlapping windows are not counted twice.
struct Grid {
    t0: f64,
    /// Per cell: (Σ p_tense, Σ p_agitated, windows covering).
    cells: Vec<(f64, f64, u32)>,
}

const GRID_S: f64 = 0.01;

impl Grid {
    fn new(track: &ToneTrack) -> Option<Grid> {
        let t0 = track
            .windows
            .iter()
            .map(|w| w.start)
            .fold(f64::INFINITY, f64::min);
        let t1 = track
            .windows
            .iter()
            .map(|w| w.end)
            .fold(f64::NEG_INFINITY, f64::max);
        if !(t0.is_finite() && t1.is_finite()) || t1 <= t0 {
            return None;
        }
        let n = ((t1 - t0) / GRID_S).ceil() as usize;
        let mut cells = vec![(0.0, 0.0, 0u32); n];
        for w in &track.windows {
            let a = ((w.start - t0) / GRID_S).round() as usize;
            let b = (((w.end - t0) / GRID_S).round() as usize).min(n);
            for c in &mut cells[a.min(b)..b] {
                c.0 += w.p_tense;
                c.1 += w.p_agitated;
                c.2 += 1;
            }
        }
        Some(Grid { t0, cells })
    }
}

/// What each grid cell was.
#[derive(Clone, Copy, PartialEq)]
enum Cell {
    Unscored,
    Calm,
    Tense,
    Agitated,
}

fn classify(cell: (f64, f64, u32), threshold: f64) -> Cell {
    if cell.2 == 0 {
        return Cell::Unscored;
    }
    let (t, a) = (cell.0 / cell.2 as f64, cell.1 / cell.2 as f64);
    if a >= threshold {
        Cell::Agitated
    } else if t + a >= threshold {
        Cell::Tense
    } else {
        Cell::Calm
    }
}

/// Agitated stretches (start, end seconds) at `threshold`: runs of agitated speech, bridging gaps
/// without scored speech up to [`STRETCH_GAP_S`]. What a finding points at.
pub fn agitated_stretches(track: &ToneTrack, threshold: f64) -> Vec<(f64, f64)> {
    let Some(grid) = Grid::new(track) else {
        return Vec::new();
    };
    let mut out: Vec<(f64, f64)> = Vec::new();
    let mut current: Option<(usize, usize)> = None; // first, last agitated cell
    let max_gap = (STRETCH_GAP_S / GRID_S).round() as usize;
    for (i, &c) in grid.cells.iter().enumerate() {
        match classify(c, threshold) {
            Cell::Agitated => {
                current = match current {
                    Some((a, last)) if i - last <= max_gap + 1 => Some((a, i)),
                    Some((a, last)) => {
                        out.push((a, last + 1).into_times(grid.t0));
                        Some((i, i))
                    }
                    None => Some((i, i)),
                }
            }
            Cell::Calm | Cell::Tense => {
                if let Some((a, last)) = current.take() {
                    out.push((a, last + 1).into_times(grid.t0));
                }
            }
            Cell::Unscored => {}
        }
    }
    if let Some((a, last)) = current {
        out.push((a, last + 1).into_times(grid.t0));
    }
    out
}

trait IntoTimes {
    fn into_times(self, t0: f64) -> (f64, f64);
}

impl IntoTimes for (usize, usize) {
    fn into_times(self, t0: f64) -> (f64, f64) {
        (t0 + self.0 as f64 * GRID_S, t0 + self.1 as f64 * GRID_S)
    }
}

/// Call-level summary at `threshold` (on p_agitated; see [`ToneSummary`] for each field).
pub fn summarize(track: &ToneTrack, threshold: f64) -> ToneSummary {
    let Some(grid) = Grid::new(track) else {
        return ToneSummary::default();
    };
    let (mut scored, mut tense, mut agitated) = (0usize, 0usize, 0usize);
    for &c in &grid.cells {
        match classify(c, threshold) {
            Cell::Unscored => continue,
            Cell::Calm => {}
            Cell::Tense => tense += 1,
            Cell::Agitated => agitated += 1,
        }
        scored += 1;
    }
    let share = |n: usize| {
        if scored == 0 {
            0.0
        } else {
            n as f64 / scored as f64
        }
    };
    ToneSummary {
        tense_share: share(tense),
        agitated_share: share(agitated),
        longest_agitated_s: agitated_stretches(track, threshold)
            .iter()
            .map(|(a, b)| b - a)
            .fold(0.0, f64::max),
        max_agitated: track
            .windows
            .iter()
            .map(|w| w.p_agitated)
            .fold(0.0, f64::max),
        speech_s: scored as f64 * GRID_S,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(start: f64, end: f64, p_tense: f64, p_agitated: f64) -> ToneWindow {
        ToneWindow {
            role: Role::Agent,
            start,
            end,
            p_calm: 1.0 - p_tense - p_agitated,
            p_tense,
            p_agitated,
            features: None,
        }
    }

    #[test]
    fn summary_of_utterance_windows() {
        let track = ToneTrack {
            windows: vec![
                w(0.0, 2.0, 0.1, 0.05),
                w(3.0, 5.0, 0.2, 0.7),
                // A 1.5 s pause (the caller talking) does not break the stretch…
                w(6.5, 8.0, 0.2, 0.6),
                // …calm speech does.
                w(8.0, 9.0, 0.6, 0.1),
                w(9.0, 10.0, 0.1, 0.8),
            ],
            baseline: None,
        };
        let s = summarize(&track, 0.5);
        assert!((s.speech_s - 7.5).abs() < 0.02);
        assert!((s.agitated_share - 4.5 / 7.5).abs() < 0.01, "{s:?}");
        assert!((s.tense_share - 1.0 / 7.5).abs() < 0.01, "{s:?}");
        assert!((s.longest_agitated_s - 5.0).abs() < 0.02, "{s:?}");
        assert_eq!(s.max_agitated, 0.8);
        let st = agitated_stretches(&track, 0.5);
        assert_eq!(st.len(), 2);
        assert!((st[0].0 - 3.0).abs() < 1e-6 && (st[0].1 - 8.0).abs() < 1e-6);
    }

    #[test]
    fn overlapping_windows_average_and_count_once() {
        let track = ToneTrack {
            windows: vec![w(0.0, 2.0, 0.0, 0.9), w(1.0, 3.0, 0.0, 0.1)],
            baseline: None,
        };
        let s = summarize(&track, 0.5);
        assert!((s.speech_s - 3.0).abs() < 0.02);
        // [0,1): 0.9 agitated; [1,2): mean 0.5 → agitated; [2,3): 0.1 calm.
        assert!((s.agitated_share - 2.0 / 3.0).abs() < 0.01, "{s:?}");
        assert_eq!(
            summarize(&ToneTrack::default(), 0.5),
            ToneSummary::default()
        );
    }

    #[test]
    fn windows_serialise_with_lowercase_roles() {
        let json = serde_json::to_string(&w(1.0, 2.0, 0.25, 0.5)).unwrap();
        assert!(json.contains("\"role\":\"agent\""), "{json}");
        assert!(!json.contains("features"));
        let back: ToneWindow = serde_json::from_str(&json).unwrap();
        assert_eq!(back, w(1.0, 2.0, 0.25, 0.5));
    }
}
