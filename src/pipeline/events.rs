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
use std::sync::mpsc;

use serde::Serialize;

use super::session::AudioFormat;
use crate::asr::{DroppedSegment, Segment};
use crate::audio::{ChannelMap, Role};
use crate::rubric::{Finding, Score};
use crate::time::round_ms;
use crate::tone::{Baseline, ToneSummary, ToneWindow};
use crate::vad::{SpeechRegion, SpeechRegions};

/// Which call of a run an event belongs to (assigned by whoever starts the sessions).
pub type CallSeq = u64;

/// Where a call's audio came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A recording analysed by `batch`, `eval` or `transcribe`.
    Batch,
    /// A call streamed in while it ran (`serve`).
    Live,
}

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

/// How the speakers of a mono recording were attributed ([`crate::speakers`]): two voices, one
/// named the agent because it says the script, or one mixed speaker and why.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RoleSeparation {
    /// The agent's and the caller's turns are known; else the call stays one mixed speaker.
    pub separated: bool,
    /// For people: the evidence for the attribution, or the reason there is none.
    pub note: String,
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

/// Keeps every event (tests, `eval`).
#[derive(Debug, Default)]
pub struct VecSink {
    pub events: Vec<(CallSeq, CallEvent)>,
}

impl CallSink for VecSink {
    fn event(&mut self, call: CallSeq, event: &CallEvent) -> Result<(), crate::Error> {
        self.events.push((call, event.clone()));
        Ok(())
    }
}

impl VecSink {
    /// The events, without their call numbers.
    pub fn iter(&self) -> impl Iterator<Item = &CallEvent> {
        self.events.iter().map(|(_, e)| e)
    }

    /// Findings of one pass, with the audio time they were emitted at.
    pub fn findings(&self, pass: Pass) -> Vec<(&Finding, f64)> {
        self.iter()
            .filter_map(|e| match e {
                CallEvent::Finding {
                    pass: p,
                    finding,
                    at_audio_s,
                } if *p == pass => Some((finding, *at_audio_s)),
                _ => None,
            })
            .collect()
    }

    /// Segments of one pass.
    pub fn segments(&self, pass: Pass) -> Vec<&Segment> {
        self.iter()
            .filter_map(|e| match e {
                CallEvent::Segment {
                    pass: p, segment, ..
                } if *p == pass => Some(segment),
                _ => None,
            })
            .collect()
    }

    /// Closed speech regions per role, in the order they closed.
    pub fn regions(&self, role: Role) -> Vec<SpeechRegion> {
        self.iter()
            .filter_map(|e| match e {
                CallEvent::RegionClosed {
                    role: r, region, ..
                } if *r == role => Some(*region),
                _ => None,
            })
            .collect()
    }

    /// The call's end, if it ended.
    pub fn end(&self) -> Option<&CallEnd> {
        self.iter().find_map(|e| match e {
            CallEvent::Ended(end) => Some(end),
            _ => None,
        })
    }
}

/// Sends events to another thread (batch workers → the thread that owns the store).
pub struct ChannelSink(pub mpsc::Sender<(CallSeq, CallEvent)>);

impl CallSink for ChannelSink {
    fn event(&mut self, call: CallSeq, event: &CallEvent) -> Result<(), crate::Error> {
        self.0
            .send((call, event.clone()))
            .map_err(|_| crate::Error::SinkClosed)
    }
}

/// Passes every event to each of several sinks, in order.
pub struct Tee<'a>(pub Vec<&'a mut dyn CallSink>);

impl CallSink for Tee<'_> {
    fn event(&mut self, call: CallSeq, event: &CallEvent) -> Result<(), crate::Error> {
        for sink in &mut self.0 {
            sink.event(call, event)?;
        }
        Ok(())
    }
}
