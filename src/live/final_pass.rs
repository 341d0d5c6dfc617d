//! What a live call's final pass works on: the finished recording with its live record, queued
//! when the call ends ([`FinalJob::new`]) or found again at the next start after a stop
//! ([`recovered_jobs`]). The engine's final worker analyses each one exactly as `batch` would.

use std::path::{Path, PathBuf};

use super::recording::Left;
use crate::audio::ChannelMap;
use crate::pipeline::events::Source;
use crate::pipeline::session::CallJob;
use crate::store::{EndReason, LiveCallRecord, Store};

/// A recording waiting for its final pass.
pub struct FinalJob {
    pub job: CallJob,
    pub record: LiveCallRecord,
}

impl FinalJob {
    /// The final pass of the call `record` describes, whose recording is `path`: the job names
    /// the call, its agent and its start as the record does.
    pub fn new(record: LiveCallRecord, path: PathBuf, channel_map: ChannelMap) -> FinalJob {
        let job = CallJob {
            path,
            agent_id: record.agent_id.clone(),
            call_id: Some(record.call_key.clone()),
            channel_map,
            source: Source::Live,
            started_at: Some(crate::time::iso_utc(record.started_ms)),
        };
        FinalJob { job, record }
    }
}

/// The final passes of the calls a stopped server left without a stored call (see
/// [`super::recording::recover`]): a call that was in progress is stored as one that ended with
/// the server (`shutdown`), with the audio up to its recording's last checkpoint; a call that had
/// ended is stored with the live record written at its end (or, if the server stopped before
/// that too, as `shutdown` with the whole recording). Either way with the warnings it got.
pub fn recovered_jobs(recordings: &Path, store: &Store) -> Vec<FinalJob> {
    let stored = |call_key: &str| store.live_call(call_key).is_ok_and(|r| r.is_some());
    super::recording::recover(recordings, stored)
        .into_iter()
        .map(|r| {
            let alerts = store.alerts(&r.call_id).map_or(0, |a| a.len());
            let samples = vec![r.frames; r.channels];
            let why = match r.left {
                Left::InProgress => {
                    "callqc stopped before the call ended; recovered at the next start with the \
                     audio up to its recording's last checkpoint"
                }
                Left::Ended => {
                    "callqc stopped after the call ended, before its final pass was stored; \
                     stored at the next start"
                }
            };
            let record = match r.end {
                Some(end) => LiveCallRecord { alerts, ..end },
                None => LiveCallRecord {
                    call_key: r.call_id.clone(),
                    agent_id: Some(r.agent_id.clone()),
                    protocol: r.protocol,
                    peer: r.peer,
                    started_ms: r.started_ms,
                    ended_ms: r.ended_ms,
                    end_reason: EndReason::Shutdown,
                    error: Some(why.into()),
                    recording: r.path.display().to_string(),
                    sample_rate: r.sample_rate,
                    encoding: r.encoding,
                    samples_received: samples.clone(),
                    samples_stored: samples,
                    shed_utterances: 0,
                    alerts,
                },
            };
            FinalJob::new(record, r.path, r.channel_map)
        })
        .collect()
}
