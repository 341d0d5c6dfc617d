//! Live calls and the warnings pushed while they ran.

use serde::{Deserialize, Serialize};

use super::db::{DbError, args};
use super::types::{AlertKind, EndReason, IngestProtocol};
use super::{Store, StoreError};
use crate::audio::frames::FrameEncoding;

/// How one streamed call went (its analysis is the `calls` row with the same key). Also written
/// into the recording's sidecar when the call ends, so a server stopped before the final pass
/// stores it at its next start as it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveCallRecord {
    pub call_key: String,
    pub agent_id: Option<String>,
    pub protocol: IngestProtocol,
    pub peer: String,
    pub started_ms: i64,
    pub ended_ms: i64,
    pub end_reason: EndReason,
    pub error: Option<String>,
    pub recording: String,
    pub sample_rate: u32,
    pub encoding: FrameEncoding,
    pub samples_received: Vec<u64>,
    pub samples_stored: Vec<u64>,
    pub shed_utterances: usize,
    pub alerts: usize,
}

impl LiveCallRecord {
    /// Whether the stream ended the way a PBX ends a call.
    pub fn complete(&self) -> bool {
        self.end_reason == EndReason::Hangup
    }
}

/// One warning pushed while a call ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRecord {
    pub call_key: String,
    pub agent_id: Option<String>,
    pub kind: AlertKind,
    pub item_id: String,
    pub message: String,
    pub evidence: String,
    pub evidence_start_s: f64,
    pub evidence_end_s: f64,
    pub frame_ms: i64,
    pub sent_ms: i64,
    pub agent_pages: usize,
    pub supervisor_pages: usize,
    pub pbx_links: usize,
}

impl AlertRecord {
    pub fn latency_ms(&self) -> i64 {
        self.sent_ms - self.frame_ms
    }
}

fn json(v: &[u64]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

impl Store {
    /// Record how a live call went (replacing an earlier record of the same key).
    pub fn save_live_call(&mut self, r: &LiveCallRecord) -> Result<(), StoreError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO live_calls (call_key, agent_id, protocol, peer, started_ms, ended_ms,
                    end_reason, complete, error, recording, sample_rate, encoding, samples_received,
                    samples_stored, shed_utterances, alerts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
                 ON CONFLICT (call_key) DO UPDATE SET agent_id = excluded.agent_id,
                    protocol = excluded.protocol, peer = excluded.peer,
                    started_ms = excluded.started_ms, ended_ms = excluded.ended_ms,
                    end_reason = excluded.end_reason, complete = excluded.complete,
                    error = excluded.error, recording = excluded.recording,
                    sample_rate = excluded.sample_rate, encoding = excluded.encoding,
                    samples_received = excluded.samples_received,
                    samples_stored = excluded.samples_stored,
                    shed_utterances = excluded.shed_utterances, alerts = excluded.alerts",
                args![
                    r.call_key,
                    r.agent_id,
                    r.protocol,
                    r.peer,
                    r.started_ms,
                    r.ended_ms,
                    r.end_reason,
                    r.complete(),
                    r.error,
                    r.recording,
                    r.sample_rate,
                    r.encoding,
                    json(&r.samples_received),
                    json(&r.samples_stored),
                    r.shed_utterances,
                    r.alerts,
                ],
            )?;
            Ok(())
        })
    }

    /// Record a pushed warning.
    pub fn save_alert(&mut self, a: &AlertRecord) -> Result<(), StoreError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO alerts (call_key, agent_id, kind, item_id, message, evidence,
                    evidence_start_s, evidence_end_s, frame_ms, sent_ms, latency_ms, agent_pages,
                    supervisor_pages, pbx_links)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                args![
                    a.call_key,
                    a.agent_id,
                    a.kind,
                    a.item_id,
                    a.message,
                    a.evidence,
                    a.evidence_start_s,
                    a.evidence_end_s,
                    a.frame_ms,
                    a.sent_ms,
                    a.latency_ms(),
                    a.agent_pages,
                    a.supervisor_pages,
                    a.pbx_links,
                ],
            )?;
            Ok(())
        })
    }

    /// The live record of a call, if it was streamed.
    pub fn live_call(&self, call_key: &str) -> Result<Option<LiveCallRecord>, StoreError> {
        self.with(|db| {
            let Some(r) = db.query_opt(
                "SELECT call_key, agent_id, protocol, peer, started_ms, ended_ms, end_reason, error,
                    recording, sample_rate, encoding, samples_received, samples_stored,
                    shed_utterances, alerts
                 FROM live_calls WHERE call_key = ?1",
                args![call_key],
            )?
            else {
                return Ok(None);
            };
            let counts = |s: String| serde_json::from_str(&s).unwrap_or_default();
            Ok(Some(LiveCallRecord {
                call_key: r.get(0)?,
                agent_id: r.get(1)?,
                protocol: r.get(2)?,
                peer: r.get(3)?,
                started_ms: r.get(4)?,
                ended_ms: r.get(5)?,
                end_reason: r.get(6)?,
                error: r.get(7)?,
                recording: r.get(8)?,
                sample_rate: r.get(9)?,
                encoding: r.get(10)?,
                samples_received: counts(r.get(11)?),
                samples_stored: counts(r.get(12)?),
                shed_utterances: r.get(13)?,
                alerts: r.get(14)?,
            }))
        })
    }

    /// The warnings pushed during a call, in the order they were sent.
    pub fn alerts(&self, call_key: &str) -> Result<Vec<AlertRecord>, StoreError> {
        self.with(|db| {
            Ok(db
                .query(
                    "SELECT call_key, agent_id, kind, item_id, message, evidence, evidence_start_s,
                        evidence_end_s, frame_ms, sent_ms, agent_pages, supervisor_pages, pbx_links
                     FROM alerts WHERE call_key = ?1 ORDER BY sent_ms, id",
                    args![call_key],
                )?
                .iter()
                .map(|r| {
                    Ok(AlertRecord {
                        call_key: r.get(0)?,
                        agent_id: r.get(1)?,
                        kind: r.get(2)?,
                        item_id: r.get(3)?,
                        message: r.get(4)?,
                        evidence: r.get(5)?,
                        evidence_start_s: r.get(6)?,
                        evidence_end_s: r.get(7)?,
                        frame_ms: r.get(8)?,
                        sent_ms: r.get(9)?,
                        agent_pages: r.get(10)?,
                        supervisor_pages: r.get(11)?,
                        pbx_links: r.get(12)?,
                    })
                })
                .collect::<Result<_, DbError>>()?)
        })
    }
}
