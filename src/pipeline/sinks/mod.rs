//! The consumers of call events, on the consumer side of the seam: every sink a session's
//! [`CallEvent`]s can be pushed into.
//!
//! - [`store`]: [`StoreSink`], one stored call per finished call (the batch's and the final
//!   pass's record);
//! - here: [`VecSink`] (keeps every event: `eval`, tests), [`ChannelSink`] (to another thread),
//!   [`Tee`] (to several sinks in order).
//!
//! The live server's sink (warnings to pages and alerts) is `live::engine::LiveSink`; the batch's
//! run totals are `pipeline::batch`'s.

pub mod store;

use std::sync::mpsc;

pub use store::StoreSink;

use super::events::{CallEnd, CallEvent, CallSeq, CallSink, Pass};
use crate::asr::Segment;
use crate::audio::Role;
use crate::rubric::Finding;
use crate::vad::SpeechRegion;

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
