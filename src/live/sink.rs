//! The live pass's consumer of events: [`LiveSink`] turns a call's live findings, transcript and
//! tone into what the agent's and supervisors' pages see (through the [`Hub`]) and records every
//! warning it sends (an [`AlertRecord`], stored by the engine's alert writer).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use super::hub::{Hub, LiveMessage, Warning};
use crate::error::Error;
use crate::pipeline::events::{CallEvent, CallSeq, CallSink, Pass};
use crate::rubric::{Finding, Kind};
use crate::store::{AlertKind, AlertRecord};
use crate::sync::lock;
use crate::time::now_ms;

/// When audio arrived: (samples received on the longest channel, Unix ms), one entry per push.
pub type Arrivals = Arc<Mutex<Vec<(u64, i64)>>>;

/// Turns a live session's events into what pages see, and records every warning.
pub struct LiveSink {
    pub hub: Arc<Hub>,
    pub call_id: String,
    pub agent_id: String,
    pub rate: u32,
    pub arrivals: Arrivals,
    pub next_warning: Arc<AtomicU64>,
    pub alerts: Option<mpsc::Sender<AlertRecord>>,
    /// The engine's count of warnings sent.
    pub warnings: Arc<AtomicU64>,
    pub sent: usize,
}

impl LiveSink {
    /// When the frame carrying audio time `t` arrived (Unix ms).
    fn arrival_ms(&self, t: f64) -> i64 {
        let arrivals = lock(&self.arrivals);
        let sample = (t.max(0.0) * f64::from(self.rate)).ceil() as u64;
        let i = arrivals.partition_point(|&(n, _)| n < sample);
        arrivals
            .get(i)
            .or(arrivals.last())
            .map_or_else(now_ms, |&(_, ms)| ms)
    }

    fn warn(&mut self, f: &Finding) {
        let Some((kind, title, text)) = warning_text(f) else {
            return;
        };
        let w = Warning {
            id: self.next_warning.fetch_add(1, Ordering::Relaxed),
            call_id: self.call_id.clone(),
            agent_id: self.agent_id.clone(),
            kind,
            item_id: f.item_id.clone(),
            title,
            text,
            evidence: f.evidence.clone(),
            evidence_start_s: f.start,
            evidence_end_s: f.end,
            frame_ms: self.arrival_ms(f.end),
            sent_ms: now_ms(),
        };
        let record = AlertRecord {
            call_key: w.call_id.clone(),
            agent_id: Some(w.agent_id.clone()),
            kind: w.kind,
            item_id: w.item_id.clone(),
            message: format!("{}：{}", w.title, w.text),
            evidence: w.evidence.clone(),
            evidence_start_s: w.evidence_start_s,
            evidence_end_s: w.evidence_end_s,
            frame_ms: w.frame_ms,
            sent_ms: w.sent_ms,
            agent_pages: 0,
            supervisor_pages: 0,
            pbx_links: 0,
        };
        let d = self.hub.warning(w);
        self.sent += 1;
        self.warnings.fetch_add(1, Ordering::Relaxed);
        if let Some(tx) = &self.alerts {
            let _ = tx.send(AlertRecord {
                agent_pages: d.agent_pages,
                supervisor_pages: d.supervisor_pages,
                pbx_links: d.pbx_links,
                ..record
            });
        }
    }
}

/// The pop-up for a provisional finding: its kind's live heading (`rule_kinds!`) and the text
/// (禁语 with the phrase, tone, silence with its length); kinds with no live heading pop up none.
fn warning_text(f: &Finding) -> Option<(AlertKind, String, String)> {
    let title = f.kind.info().live_title?.to_string();
    let (kind, text) = match f.kind {
        Kind::ForbiddenPhrase => {
            let phrase = bracketed(&f.evidence).unwrap_or_else(|| f.description.clone());
            (AlertKind::Forbidden, format!("「{phrase}」"))
        }
        Kind::AgentTone => (AlertKind::Tone, "请注意语气".into()),
        Kind::Silence => (
            AlertKind::Silence,
            format!("已静音 {:.0} 秒，请及时回应来电人", f.end - f.start),
        ),
        _ => return None,
    };
    Some((kind, title, text))
}

/// The text inside the first 【…】 of an evidence string.
fn bracketed(evidence: &str) -> Option<String> {
    let start = evidence.find('【')? + '【'.len_utf8();
    let len = evidence[start..].find('】')?;
    Some(evidence[start..start + len].to_string())
}

impl CallSink for LiveSink {
    fn event(&mut self, _call: CallSeq, event: &CallEvent) -> Result<(), Error> {
        match event {
            // Observations (a hold within the rules) warn nobody.
            CallEvent::Finding {
                pass: Pass::Live,
                finding,
                ..
            } if !finding.observation => self.warn(finding),
            CallEvent::Segment {
                pass: Pass::Live,
                segment,
                ..
            } => self.hub.transcript(LiveMessage::Transcript {
                call_id: self.call_id.clone(),
                agent_id: self.agent_id.clone(),
                role: segment.role,
                start_s: segment.start,
                end_s: segment.end,
                text: segment.text.clone(),
            }),
            CallEvent::ToneScored {
                pass: Pass::Live,
                window,
            } => self
                .hub
                .tone(&self.call_id, &self.agent_id, window.end, window.p_agitated),
            CallEvent::Failed { error, .. } => {
                tracing::warn!("call {}: {error}", self.call_id);
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_phrases() {
        assert_eq!(
            bracketed("坐席：这个【不归我们管】你去找别人").as_deref(),
            Some("不归我们管")
        );
        assert_eq!(bracketed("no brackets"), None);
        assert_eq!(bracketed("【unclosed"), None);
    }
}
