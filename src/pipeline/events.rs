//! The seam between the analysis and everything that consumes it.
//!
//! A [`CallSession`](super::session::CallSession) pushes typed [`CallEvent`]s into a
//! caller-supplied [`CallSink`], the way ripgrep's searcher pushes matches into a `Sink`: the
//! analysis keeps control of audio, models and buffers, and each consumer decides what to keep.
//! One analysis path feeds every consumer — the SQLite writer (`store::sink`), the progress bar
//! and the JSON printer of the CLI, the live broadcaster, and [`VecSink`] in tests.
//!
//! Events of one call arrive in order: [`CallEvent::Began`], then regions, segments, tone windows
//! and findings as they are known, then exactly one of [`CallEvent::Ended`] or
//! [`CallEvent::Failed`]. Events of different calls may interleave (a batch runs calls in
//! parallel), so every event comes with the [`CallSeq`] its session was given.

use std::path::PathBuf;

use serde::Serialize;

use crate::asr::{DroppedSegment, Segment};
use crate::audio::AudioFormat;
use crate::audio::{ChannelMap, Role};
use crate::error::Stage;
use crate::rubric::{Finding, Score};
pub use crate::speakers::RoleSeparation;
pub use crate::store::Source;
use crate::time::round_ms;
use crate::tone::{Baseline, ToneSummary, ToneWindow};
use crate::vad::{SpeechRegion, SpeechRegions};

/// Which call of a run an event belongs to (assigned by whoever starts the sessions).
pub type CallSeq = u64;

/// Which analysis produced a result: the quick one while the call runs, or the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pass {
    /// While the call runs: one whisper decode per finished utterance, the running tone stream,
    /// the rules that can judge a call in progress. Shown to agents; never stored as the record.
    Live,
    /// At the end of the call, over all of it: packed whisper windows, whole-call tone, every
    /// rule. This is what the store keeps and the score counts.
    Final,
}

/// Who a call is, as known when it begins.
#[derive(Debug, Clone, Serialize)]
pub struct CallInfo {
    /// The call's identity in the store (see [`super::identity::CallKey`]).
    pub key: String,
    pub path: PathBuf,
    /// sha256 of the recording's bytes (empty for live calls until their WAV is written).
    pub audio_hash: String,
    pub agent_id: Option<String>,
    pub channel_map: ChannelMap,
    pub source: Source,
    /// When the call took place (ISO 8601 UTC), if known.
    pub started_at: Option<String>,
    /// One role per analysed channel, in channel order (empty if the file could not be decoded).
    pub roles: Vec<Role>,
    /// How the audio is stored (none if the file could not be decoded).
    pub format: Option<AudioFormat>,
}

/// Wall time per stage of one call.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StageTimings {
    /// Decoding, channel split and resampling.
    pub decode_s: f64,
    pub vad_s: f64,
    pub asr_s: f64,
    pub tone_s: f64,
    pub rules_s: f64,
    /// The channels were decoded side by side on a core another worker left idle.
    pub asr_spread: bool,
}

/// What a finished call adds to the events before it.
#[derive(Debug, Clone, Serialize)]
pub struct CallEnd {
    #[serde(serialize_with = "round_ms")]
    pub duration_s: f64,
    pub score: Score,
    pub tone_summary: ToneSummary,
    /// The tone model's p(agitated) threshold the call was judged with.
    pub tone_threshold: f64,
    /// The agent's in-call voice baseline (the store merges it into the agent's history).
    pub tone_baseline: Option<Baseline>,
    pub timings: StageTimings,
}

/// One thing the analysis found out about a call.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CallEvent {
    Began(CallInfo),
    /// A stretch of speech on one role's channel closed (the VAD's hang-over passed).
    RegionClosed {
        role: Role,
        region: SpeechRegion,
        /// Seconds of the call's audio that had arrived when this was known.
        #[serde(serialize_with = "round_ms")]
        at_audio_s: f64,
    },
    /// A mono recording's speech was given to the agent and the caller (or left mixed): `speech`
    /// replaces the regions closed so far (which were the mixed track's).
    RolesSeparated {
        separation: RoleSeparation,
        speech: Vec<SpeechRegions>,
    },
    Segment {
        pass: Pass,
        segment: Segment,
        #[serde(serialize_with = "round_ms")]
        at_audio_s: f64,
    },
    /// The next [`CallEvent::Segment`]'s text had lexicon terms corrected (热线 for 任县):
    /// `raw_text` is what the recogniser wrote.
    TermsCorrected {
        pass: Pass,
        raw_text: String,
        text: String,
    },
    /// A segment the hallucination guards removed, with the reason.
    SegmentDropped {
        pass: Pass,
        dropped: DroppedSegment,
    },
    ToneScored {
        pass: Pass,
        window: ToneWindow,
    },
    /// A finding: [`Pass::Live`] ones are provisional (shown while the call runs), the
    /// [`Pass::Final`] ones are the call's deductions.
    Finding {
        pass: Pass,
        finding: Finding,
        #[serde(serialize_with = "round_ms")]
        at_audio_s: f64,
    },
    Ended(CallEnd),
    /// The call could not be analysed; the error names the file or peer and the stage.
    Failed {
        error: String,
        /// The stage that failed, when a stage did (not for unreadable queue jobs or sessions
        /// used wrongly).
        stage: Option<Stage>,
    },
}

/// A consumer of call events.
pub trait CallSink {
    /// Take one event. An error stops the session that sent it (the store could not write, the
    /// client went away); it is reported to whoever runs the session.
    fn event(&mut self, call: CallSeq, event: &CallEvent) -> Result<(), crate::Error>;
}

impl<S: CallSink + ?Sized> CallSink for &mut S {
    fn event(&mut self, call: CallSeq, event: &CallEvent) -> Result<(), crate::Error> {
        (**self).event(call, event)
    }
}
