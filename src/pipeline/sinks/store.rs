//! The store as a [`CallSink`]: it gathers a call's [`Pass::Final`] results as they arrive and
//! writes the call in one transaction when it ends ([`CallEvent::Ended`]), or logs the failure
//! ([`CallEvent::Failed`]). Live results are not the record and are not stored here. A process
//! killed before a call's end leaves no trace of that call, never half of it.

use std::collections::HashMap;

use crate::asr::Segment;
use crate::pipeline::events::{CallEvent, CallInfo, CallSeq, CallSink, Pass};
use crate::rubric::Finding;
use crate::speakers::RoleSeparation;
use crate::store::{CallMeta, CallRows, Store};
use crate::tone::ToneWindow;
use crate::vad::SpeechRegions;

/// One call's results so far.
struct Pending {
    info: CallInfo,
    speech: Vec<SpeechRegions>,
    segments: Vec<Segment>,
    /// (segment index, what the recogniser wrote) of segments the lexicon corrected.
    raw_texts: Vec<(usize, String)>,
    tone: Vec<ToneWindow>,
    findings: Vec<Finding>,
    /// How a mono recording's voices were attributed.
    speakers: Option<RoleSeparation>,
}

/// Writes each finished call into a [`Store`].
pub struct StoreSink<'a> {
    store: &'a mut Store,
    models_key: String,
    run_id: Option<i64>,
    rubric_hash: String,
    pending: HashMap<CallSeq, Pending>,
}

impl<'a> StoreSink<'a> {
    /// A sink writing calls made with `models_key`, under run `run_id`, scored with the rubric
    /// of `rubric_hash`.
    pub fn new(
        store: &'a mut Store,
        models_key: String,
        run_id: Option<i64>,
        rubric_hash: String,
    ) -> StoreSink<'a> {
        StoreSink {
            store,
            models_key,
            run_id,
            rubric_hash,
            pending: HashMap::new(),
        }
    }

    fn meta(&self, info: &CallInfo) -> CallMeta {
        CallMeta {
            call_key: info.key.clone(),
            // Absolute, so export, the trainer pages and clips find the recording from any
            // working directory (a live call's path is its peer until its WAV exists).
            path: std::fs::canonicalize(&info.path)
                .unwrap_or_else(|_| info.path.clone())
                .display()
                .to_string(),
            audio_hash: info.audio_hash.clone(),
            agent_id: info.agent_id.clone(),
            channel_map: info.channel_map,
            source: info.source,
            models_key: self.models_key.clone(),
            run_id: self.run_id,
            started_at: info.started_at.clone(),
        }
    }
}

impl CallSink for StoreSink<'_> {
    fn event(&mut self, call: CallSeq, event: &CallEvent) -> Result<(), crate::Error> {
        match event {
            CallEvent::Began(info) => {
                let speech = info
                    .roles
                    .iter()
                    .map(|&role| SpeechRegions {
                        role,
                        regions: Vec::new(),
                    })
                    .collect();
                self.pending.insert(
                    call,
                    Pending {
                        info: info.clone(),
                        speech,
                        segments: Vec::new(),
                        raw_texts: Vec::new(),
                        tone: Vec::new(),
                        findings: Vec::new(),
                        speakers: None,
                    },
                );
            }
            CallEvent::Ended(end) => {
                // Regions of a channel arrive in time order, as they close.
                let Some(p) = self.pending.remove(&call) else {
                    return Ok(());
                };
                let format = p.info.format.ok_or_else(|| crate::Error::IncompleteCall {
                    call: p.info.path.display().to_string(),
                    missing: "the call ended without its audio format",
                })?;
                let meta = self.meta(&p.info);
                self.store.save_call(
                    &meta,
                    &CallRows {
                        duration_s: end.duration_s,
                        sample_rate: format.sample_rate,
                        channels: format.channels,
                        encoding: format.encoding,
                        segments: &p.segments,
                        raw_texts: &p.raw_texts,
                        speech: &p.speech,
                        tone: &p.tone,
                        findings: &p.findings,
                        speakers: p.speakers.as_ref(),
                        tone_baseline: end.tone_baseline.as_ref(),
                        tone_threshold: end.tone_threshold,
                        score: &end.score,
                        rubric_hash: &self.rubric_hash,
                    },
                )?;
            }
            CallEvent::Failed { error, .. } => {
                if let Some(p) = self.pending.remove(&call) {
                    let meta = self.meta(&p.info);
                    self.store.save_failure(&meta, error)?;
                }
            }
            other => {
                if let Some(p) = self.pending.get_mut(&call) {
                    p.add(other);
                }
            }
        }
        Ok(())
    }
}

impl Pending {
    /// Keep what the record needs: regions, and the final pass's segments, tone and findings.
    fn add(&mut self, event: &CallEvent) {
        match event {
            CallEvent::RegionClosed { role, region, .. } => {
                if let Some(s) = self.speech.iter_mut().find(|s| s.role == *role) {
                    s.regions.push(*region);
                }
            }
            CallEvent::RolesSeparated { separation, speech } => {
                self.speech = speech.clone();
                self.speakers = Some(separation.clone());
            }
            CallEvent::Segment {
                pass: Pass::Final,
                segment,
                ..
            } => self.segments.push(segment.clone()),
            CallEvent::TermsCorrected {
                pass: Pass::Final,
                raw_text,
                ..
            } => self.raw_texts.push((self.segments.len(), raw_text.clone())),
            CallEvent::ToneScored {
                pass: Pass::Final,
                window,
            } => self.tone.push(window.clone()),
            CallEvent::Finding {
                pass: Pass::Final,
                finding,
                ..
            } => self.findings.push(finding.clone()),
            _ => {}
        }
    }
}
