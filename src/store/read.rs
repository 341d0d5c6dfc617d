//! Reads: a stored call back as typed values (for `rescore` and `show`), and listings.

use serde::Serialize;

use super::db::{DbError, Row, args};
use super::types::{AppealState, CallStatus, Kind, ReviewState, Source};
use super::{Store, StoreError};
use crate::asr::Segment;
use crate::audio::Role;
use crate::speakers::RoleSeparation;
use crate::tone::{Baseline, ToneWindow};
use crate::vad::{SpeechRegion, SpeechRegions};

/// One stored call with everything the analysis produced.
#[derive(Debug, Clone, Serialize)]
pub struct StoredCall {
    pub id: i64,
    pub call_key: String,
    pub path: String,
    pub agent_id: Option<String>,
    pub status: CallStatus,
    pub source: Source,
    pub error: Option<String>,
    pub duration_s: Option<f64>,
    /// The tone model's threshold the call was judged with (None before schema 2).
    pub tone_threshold: Option<f64>,
    /// A mono recording: how its voices were attributed to agent and caller, or why not.
    pub speakers: Option<RoleSeparation>,
    pub segments: Vec<Segment>,
    /// Segments whose text the lexicon corrected, with what the recogniser wrote.
    pub raw_texts: Vec<RawText>,
    pub speech: Vec<SpeechRegions>,
    pub tone: Vec<ToneWindow>,
}

/// What the recogniser wrote for a segment the lexicon corrected.
#[derive(Debug, Clone, Serialize)]
pub struct RawText {
    /// Index into the call's segments.
    pub segment: usize,
    pub raw_text: String,
}

/// One stored finding, with its review state.
#[derive(Debug, Clone, Serialize)]
pub struct StoredFinding {
    pub id: i64,
    pub call_id: i64,
    pub rubric: String,
    pub item_id: String,
    pub kind: Kind,
    pub description: String,
    pub dimension: String,
    pub points: f64,
    pub veto: bool,
    pub role: Option<Role>,
    #[serde(serialize_with = "crate::time::round_ms")]
    pub start: f64,
    #[serde(serialize_with = "crate::time::round_ms")]
    pub end: f64,
    pub evidence: String,
    pub review: ReviewState,
    pub appeal: AppealState,
    /// Who gave the current verdict, their note and when (the history is in `verdicts`).
    pub reviewer: Option<String>,
    pub review_note: Option<String>,
    pub reviewed_at: Option<String>,
    /// Within the rules, recorded for trainers: 0 points, never in the score.
    pub observation: bool,
}

/// One stored agent tone window with its model input (for `tone fit`).
#[derive(Debug, Clone)]
pub struct ToneFeatureRow {
    pub call_id: i64,
    pub call_key: String,
    pub start: f64,
    pub end: f64,
    /// JSON array of the relative features.
    pub features: String,
}

/// One stored score.
#[derive(Debug, Clone, Serialize)]
pub struct StoredScore {
    pub rubric: String,
    pub rubric_version: String,
    /// The score after trainers' verdicts (a dismissed finding does not count).
    pub total: f64,
    pub deductions: f64,
    pub vetoed: bool,
    /// The score the analysis gave, before any verdict.
    pub machine_total: f64,
}

/// How many columns [`FINDING_COLUMNS`] selects: a query adding its own after them reads those
/// from this index on.
pub(crate) const FINDING_FIELDS: usize = 19;

pub(crate) const FINDING_COLUMNS: &str = "id, call_id, rubric, item_id, description, dimension,
    points, veto, role, start_s, end_s, evidence, review, kind, appeal, reviewer, review_note,
    reviewed_at, observation";

pub(crate) fn finding_row(r: &Row) -> Result<StoredFinding, DbError> {
    Ok(StoredFinding {
        id: r.get(0)?,
        call_id: r.get(1)?,
        rubric: r.get(2)?,
        item_id: r.get(3)?,
        description: r.get(4)?,
        dimension: r.get(5)?,
        points: r.get(6)?,
        veto: r.get(7)?,
        role: r.get(8)?,
        start: r.get(9)?,
        end: r.get(10)?,
        evidence: r.get(11)?,
        review: r.get(12)?,
        kind: r.get(13)?,
        appeal: r.get(14)?,
        reviewer: r.get(15)?,
        review_note: r.get(16)?,
        reviewed_at: r.get(17)?,
        observation: r.get(18)?,
    })
}

impl Store {
    /// Ids of all calls analysed successfully, in id order.
    pub fn done_call_ids(&self) -> Result<Vec<i64>, StoreError> {
        self.with(|db| {
            Ok(db.column(
                "SELECT id FROM calls WHERE status = 'done' ORDER BY id",
                args![],
            )?)
        })
    }

    /// Find a call by id, call key, audio hash prefix, or path (or its file name, `.wav`
    /// optional).
    pub fn find_call(&self, query: &str) -> Result<i64, StoreError> {
        let by_id = query.parse::<i64>().ok();
        let found: Option<i64> = self.with(|db| {
            Ok(db
                .column(
                    "SELECT id FROM calls WHERE id = ?1 OR call_key = ?2 OR path = ?2
                        OR path LIKE '%/' || ?2 OR path LIKE '%/' || ?2 || '.wav'
                        OR (length(CAST(?2 AS TEXT)) >= 8 AND audio_hash LIKE ?2 || '%')
                     ORDER BY id DESC LIMIT 1",
                    args![by_id.unwrap_or(-1), query],
                )?
                .into_iter()
                .next())
        })?;
        found.ok_or_else(|| StoreError::NoSuchCall {
            at: self.location(),
            query: query.to_string(),
        })
    }

    /// The sha256 of a stored call's audio.
    pub fn audio_hash(&self, id: i64) -> Result<String, StoreError> {
        self.with(|db| {
            Ok(db
                .query_one("SELECT audio_hash FROM calls WHERE id = ?1", args![id])?
                .get(0)?)
        })
    }

    /// Load a call's stored analysis.
    pub fn load_call(&self, id: i64) -> Result<StoredCall, StoreError> {
        self.with(|db| {
            let r = db
                .query_opt(
                    "SELECT id, call_key, path, agent_id, status, error, duration_s, source,
                        tone_threshold, speakers FROM calls WHERE id = ?1",
                    args![id],
                )?
                .ok_or_else(|| StoreError::NoSuchCall {
                    at: String::new(),
                    query: id.to_string(),
                })?;
            let mut call = StoredCall {
                id: r.get(0)?,
                call_key: r.get(1)?,
                path: r.get(2)?,
                agent_id: r.get(3)?,
                status: r.get(4)?,
                error: r.get(5)?,
                duration_s: r.get(6)?,
                source: r.get(7)?,
                tone_threshold: r.get(8)?,
                speakers: r
                    .get::<Option<String>>(9)?
                    .and_then(|j| serde_json::from_str(&j).ok()),
                segments: Vec::new(),
                raw_texts: Vec::new(),
                speech: Vec::new(),
                tone: Vec::new(),
            };
            call.segments = db
                .query(
                    "SELECT role, start_s, end_s, text, confidence, avg_logprob, no_speech_prob
                     FROM segments WHERE call_id = ?1 ORDER BY idx",
                    args![id],
                )?
                .iter()
                .map(|r| {
                    Ok(Segment {
                        role: r.get(0)?,
                        start: r.get(1)?,
                        end: r.get(2)?,
                        text: r.get(3)?,
                        confidence: r.get(4)?,
                        avg_logprob: r.get(5)?,
                        no_speech_prob: r.get(6)?,
                    })
                })
                .collect::<Result<_, DbError>>()?;
            call.raw_texts = db
                .query(
                    "SELECT idx, raw_text FROM segments WHERE call_id = ?1 AND raw_text IS NOT NULL
                     ORDER BY idx",
                    args![id],
                )?
                .iter()
                .map(|r| {
                    Ok(RawText {
                        segment: r.get(0)?,
                        raw_text: r.get(1)?,
                    })
                })
                .collect::<Result<_, DbError>>()?;
            let regions = db.query(
                "SELECT role, start_s, end_s FROM speech_regions WHERE call_id = ?1 ORDER BY rowid",
                args![id],
            )?;
            for r in &regions {
                let role: Role = r.get(0)?;
                let region = SpeechRegion {
                    start: r.get(1)?,
                    end: r.get(2)?,
                };
                match call.speech.iter_mut().find(|s| s.role == role) {
                    Some(s) => s.regions.push(region),
                    None => call.speech.push(SpeechRegions {
                        role,
                        regions: vec![region],
                    }),
                }
            }
            call.tone = db
                .query(
                    "SELECT role, start_s, end_s, p_calm, p_tense, p_agitated, features
                     FROM tone_windows WHERE call_id = ?1 ORDER BY rowid",
                    args![id],
                )?
                .iter()
                .map(|r| {
                    let features: Option<String> = r.get(6)?;
                    Ok(ToneWindow {
                        role: r.get(0)?,
                        start: r.get(1)?,
                        end: r.get(2)?,
                        p_calm: r.get(3)?,
                        p_tense: r.get(4)?,
                        p_agitated: r.get(5)?,
                        features: features.and_then(|f| serde_json::from_str(&f).ok()),
                    })
                })
                .collect::<Result<_, DbError>>()?;
            Ok(call)
        })
    }

    /// Findings of a call (of one rubric, or of all), in time order.
    pub fn findings(
        &self,
        call_id: i64,
        rubric: Option<&str>,
    ) -> Result<Vec<StoredFinding>, StoreError> {
        let sql = format!(
            "SELECT {FINDING_COLUMNS} FROM findings WHERE call_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR rubric = ?2)
             ORDER BY start_s, item_id"
        );
        self.with(|db| {
            Ok(db
                .query(&sql, args![call_id, rubric])?
                .iter()
                .map(finding_row)
                .collect::<Result<_, _>>()?)
        })
    }

    /// Reviewed (confirmed or dismissed) findings of one rule kind, over all calls.
    pub fn reviewed_findings(&self, kind: Kind) -> Result<Vec<StoredFinding>, StoreError> {
        let sql = format!(
            "SELECT {FINDING_COLUMNS} FROM findings WHERE kind = ?1 AND review IN (?2, ?3)
             ORDER BY call_id, start_s"
        );
        self.with(|db| {
            Ok(db
                .query(
                    &sql,
                    args![kind, ReviewState::Confirmed, ReviewState::Dismissed],
                )?
                .iter()
                .map(finding_row)
                .collect::<Result<_, _>>()?)
        })
    }

    /// Agent tone windows with their model input, over all analysed calls.
    pub fn agent_tone_features(&self) -> Result<Vec<ToneFeatureRow>, StoreError> {
        self.with(|db| {
            Ok(db
                .query(
                    "SELECT c.id, c.call_key, w.start_s, w.end_s, w.features
                     FROM tone_windows w JOIN calls c ON c.id = w.call_id
                     WHERE w.role = 'agent' AND w.features IS NOT NULL AND c.status = 'done'
                     ORDER BY c.id, w.start_s",
                    args![],
                )?
                .iter()
                .map(|r| {
                    Ok(ToneFeatureRow {
                        call_id: r.get(0)?,
                        call_key: r.get(1)?,
                        start: r.get(2)?,
                        end: r.get(3)?,
                        features: r.get(4)?,
                    })
                })
                .collect::<Result<_, DbError>>()?)
        })
    }

    /// The analysed call of this audio made with these models and scored with this rubric.
    pub fn find_analysis(
        &self,
        audio_hash: &str,
        models_key: &str,
        rubric_hash: &str,
    ) -> Result<Option<i64>, StoreError> {
        self.with(|db| {
            Ok(db
                .column(
                    "SELECT c.id FROM calls c JOIN scores s ON s.call_id = c.id
                     WHERE c.audio_hash = ?1 AND c.models_key = ?2 AND s.rubric_hash = ?3
                       AND c.status = 'done'
                     ORDER BY c.id DESC LIMIT 1",
                    args![audio_hash, models_key, rubric_hash],
                )?
                .into_iter()
                .next())
        })
    }

    /// Failed attempts logged for a call key, newest first: (error, when).
    pub fn failures(&self, call_key: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|db| {
            Ok(db
                .query(
                    "SELECT error, failed_at FROM failures WHERE call_key = ?1 ORDER BY id DESC",
                    args![call_key],
                )?
                .iter()
                .map(|r| Ok((r.get(0)?, r.get(1)?)))
                .collect::<Result<_, DbError>>()?)
        })
    }

    /// Scores of a call, one per rubric.
    pub fn scores(&self, call_id: i64) -> Result<Vec<StoredScore>, StoreError> {
        self.with(|db| {
            Ok(db
                .query(
                    "SELECT rubric, rubric_version, total, deductions, vetoed,
                        coalesce(machine_total, total) FROM scores
                     WHERE call_id = ?1 ORDER BY rubric",
                    args![call_id],
                )?
                .iter()
                .map(|r| {
                    Ok(StoredScore {
                        rubric: r.get(0)?,
                        rubric_version: r.get(1)?,
                        total: r.get(2)?,
                        deductions: r.get(3)?,
                        vetoed: r.get(4)?,
                        machine_total: r.get(5)?,
                    })
                })
                .collect::<Result<_, DbError>>()?)
        })
    }

    /// The per-call voice baselines of an agent's analysed calls (call key, baseline), oldest
    /// first. The batch leaves out the calls it is itself processing, so that a batch killed
    /// half-way and run again sees the same history as an uninterrupted one (and gives the same
    /// scores). A baseline that does not parse is skipped.
    pub fn agent_history(&self, agent_id: &str) -> Result<Vec<(String, Baseline)>, StoreError> {
        let rows: Vec<(String, String)> = self.with(|db| {
            Ok(db
                .query(
                    "SELECT call_key, tone_baseline FROM calls
                     WHERE agent_id = ?1 AND status = 'done' AND tone_baseline IS NOT NULL
                     ORDER BY id",
                    args![agent_id],
                )?
                .iter()
                .map(|r| Ok((r.get(0)?, r.get(1)?)))
                .collect::<Result<_, DbError>>()?)
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, json)| serde_json::from_str(&json).ok().map(|b| (k, b)))
            .collect())
    }
}
