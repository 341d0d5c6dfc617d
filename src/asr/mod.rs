//! Speech recognition: speech regions → whisper → a speaker-attributed, Simplified transcript.
//!
//! - [`pack`] turns a role's VAD regions into whisper windows (≤ 30 s of audio each) and keeps the
//!   map from window time back to call time;
//! - [`whisper`] runs whisper.cpp (through whisper-rs) on a window — one context and one state per
//!   worker, loaded once;
//! - [`guard`] post-processes raw segments: Traditional → Simplified, hallucination and
//!   implausibility filters (each drop is kept with its reason, so nothing disappears silently).

pub mod guard;
pub mod pack;
pub mod whisper;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::audio::Role;

pub use whisper::{AsrParams, Recognizer};

/// One recognised stretch of speech, on the call's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub role: Role,
    #[serde(serialize_with = "crate::time::round_ms")]
    pub start: f64,
    #[serde(serialize_with = "crate::time::round_ms")]
    pub end: f64,
    pub text: String,
    /// Mean token probability (0–1) of the text tokens.
    pub confidence: f32,
    /// Mean token log-probability (whisper's `avg_logprob`).
    pub avg_logprob: f32,
    /// Whisper's probability that the window held no speech.
    pub no_speech_prob: f32,
}

/// A segment the guards removed, with why (kept for audit: `--json` shows them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DroppedSegment {
    pub segment: Segment,
    pub reason: String,
}

/// Everything recognised in one call, sorted by start time.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Transcript {
    pub segments: Vec<Segment>,
    pub dropped: Vec<DroppedSegment>,
}

impl Transcript {
    /// Merge per-role results into call order.
    pub fn sort(&mut self) {
        self.segments.sort_by(|a, b| a.start.total_cmp(&b.start));
        self.dropped
            .sort_by(|a, b| a.segment.start.total_cmp(&b.segment.start));
    }

    /// All text of one role, in time order.
    pub fn role_text(&self, role: Role) -> String {
        self.segments
            .iter()
            .filter(|s| s.role == role)
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join("")
    }
}

/// Errors from the speech-recognition stage.
#[derive(Debug, thiserror::Error)]
pub enum AsrError {
    #[error(
        "whisper model not found: {0} (run scripts/setup.sh, or pass --model PATH to a ggml-*.bin)"
    )]
    ModelMissing(PathBuf),
    #[error("could not load whisper model {path}: {reason}")]
    ModelLoad { path: PathBuf, reason: String },
    #[error("whisper failed: {0}")]
    Decode(String),
}
