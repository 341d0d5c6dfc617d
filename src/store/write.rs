//! Writes. Each call is written in ONE transaction (delete the old rows of the call, insert the
//! new), so an interrupted batch never leaves half a call, and a rerun replaces rather than
//! duplicates. Trainers' verdicts on findings survive a re-run or a rescore when the same item
//! fires again over an overlapping span.

use super::db::{Db, DbError, args};

use super::types::{AppealState, CallStatus, ReviewState, Source};
use super::{RunTotals, Store, StoreError};
use crate::asr::Segment;
use crate::audio::{ChannelMap, Encoding};
use crate::rubric::{Finding, Score};
use crate::speakers::RoleSeparation;
use crate::tone::{Baseline, ToneWindow};
use crate::vad::SpeechRegions;

/// Who a call is and what produced its analysis.
#[derive(Debug, Clone)]
pub struct CallMeta {
    pub call_key: String,
    pub path: String,
    pub audio_hash: String,
    pub agent_id: Option<String>,
    pub channel_map: ChannelMap,
    pub source: Source,
    pub models_key: String,
    pub run_id: Option<i64>,
    /// When the call took place (ISO 8601 UTC); None: when it is stored.
    pub started_at: Option<String>,
}

/// The analysis of one call, as stored.
#[derive(Debug, Clone)]
pub struct CallRows<'a> {
    pub duration_s: f64,
    pub sample_rate: u32,
    pub channels: usize,
    pub encoding: Encoding,
    pub segments: &'a [Segment],
    /// (segment index, what the recogniser wrote) where the lexicon corrected the text.
    pub raw_texts: &'a [(usize, String)],
    pub speech: &'a [SpeechRegions],
    pub tone: &'a [ToneWindow],
    pub findings: &'a [Finding],
    /// How a mono recording's voices were attributed (none for stereo).
    pub speakers: Option<&'a RoleSeparation>,
    /// The agent's voice baseline in this call.
    pub tone_baseline: Option<&'a Baseline>,
    /// The tone model's threshold the call was judged with.
    pub tone_threshold: f64,
    pub score: &'a Score,
    pub rubric_hash: &'a str,
}

/// How an encoding is written in the `calls.encoding` column.
fn encoding_text(e: Encoding) -> String {
    serde_json::to_string(&e)
        .unwrap_or_default()
        .trim_matches('"')
        .to_string()
}

/// A stored finding's id and trainer state, carried over re-analysis and rescoring to the new
/// finding of the same item over the same span: links and pages keep pointing at it, and its
/// verdict history stays attached.
struct Carried {
    id: i64,
    item_id: String,
    start: f64,
    end: f64,
    review: ReviewState,
    appeal: AppealState,
    reviewer: Option<String>,
    note: Option<String>,
    at: Option<String>,
}

fn reviewed_of(db: &mut Db, call_id: i64, rubric: &str) -> Result<Vec<Carried>, DbError> {
    let rows = db.query(
        "SELECT id, item_id, start_s, end_s, review, appeal, reviewer, review_note, reviewed_at
         FROM findings WHERE call_id = ?1 AND rubric = ?2",
        args![call_id, rubric],
    )?;
    rows.iter()
        .map(|r| {
            Ok(Carried {
                id: r.get(0)?,
                item_id: r.get(1)?,
                start: r.get(2)?,
                end: r.get(3)?,
                review: r.get(4)?,
                appeal: r.get(5)?,
                reviewer: r.get(6)?,
                note: r.get(7)?,
                at: r.get(8)?,
            })
        })
        .collect()
}

/// The next finding id: above every finding and every id the verdict history names, so a new
/// finding never inherits the history of one that is gone.
fn next_finding_id(db: &mut Db) -> Result<i64, DbError> {
    db.lock_finding_ids()?;
    let findings: i64 = db
        .query_one("SELECT coalesce(max(id), 0) FROM findings", args![])?
        .get(0)?;
    let history: i64 = db
        .query_one("SELECT coalesce(max(finding_id), 0) FROM verdicts", args![])?
        .get(0)?;
    Ok(findings.max(history) + 1)
}

fn insert_findings(
    db: &mut Db,
    call_id: i64,
    findings: &[Finding],
    score: &Score,
    rubric_hash: &str,
    carried: &[Carried],
) -> Result<(), DbError> {
    db.execute(
        "DELETE FROM findings WHERE call_id = ?1 AND rubric = ?2",
        args![call_id, score.rubric],
    )?;
    db.execute(
        "DELETE FROM scores WHERE call_id = ?1 AND rubric = ?2",
        args![call_id, score.rubric],
    )?;
    let insert =
        "INSERT INTO findings (id, call_id, rubric, rubric_version, item_id, kind, description,
            dimension, points, veto, role, start_s, end_s, evidence, review, reviewer, review_note,
            reviewed_at, appeal, item_points, item_max_count, observation)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
            ?19, ?20, ?21, ?22)";
    let mut next_id = next_finding_id(db)?;
    let mut used = vec![false; carried.len()];
    for f in findings {
        // The same item over an overlapping span (within half a second) is the same finding.
        let old = carried.iter().enumerate().position(|(i, r)| {
            !used[i] && r.item_id == f.item_id && r.start < f.end + 0.5 && f.start < r.end + 0.5
        });
        let old = old.map(|i| {
            used[i] = true;
            &carried[i]
        });
        let id = match old {
            Some(r) => r.id,
            None => {
                next_id += 1;
                next_id - 1
            }
        };
        db.execute(
            insert,
            args![
                id,
                call_id,
                score.rubric,
                score.version,
                f.item_id,
                f.kind,
                f.description,
                f.dimension,
                f.points,
                f.veto,
                f.role,
                f.start,
                f.end,
                f.evidence,
                old.map_or(ReviewState::Open, |r| r.review),
                old.and_then(|r| r.reviewer.clone()),
                old.and_then(|r| r.note.clone()),
                old.and_then(|r| r.at.clone()),
                old.map_or(AppealState::None, |r| r.appeal),
                f.item_points,
                f.max_count,
                f.observation,
            ],
        )?;
    }
    db.execute(
        "INSERT INTO scores (call_id, rubric, rubric_version, rubric_hash, total, deductions, vetoed,
            machine_total, machine_deductions, machine_vetoed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?5, ?6, ?7)",
        args![
            call_id,
            score.rubric,
            score.version,
            rubric_hash,
            score.total,
            score.deductions,
            score.vetoed
        ],
    )?;
    // Verdicts carried over may take findings out of the count.
    super::review::rescore_reviewed(db, call_id, &score.rubric)
}

impl Store {
    /// Has this call already been analysed from the same audio, models and rubric?
    pub fn is_done(
        &self,
        call_key: &str,
        audio_hash: &str,
        models_key: &str,
        rubric_hash: &str,
    ) -> Result<bool, StoreError> {
        self.with(|db| {
            Ok(db
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM calls c JOIN scores s ON s.call_id = c.id
                     WHERE c.call_key = ?1 AND c.audio_hash = ?2 AND c.models_key = ?3
                       AND c.status = ?5 AND s.rubric_hash = ?4)",
                    args![
                        call_key,
                        audio_hash,
                        models_key,
                        rubric_hash,
                        CallStatus::Done
                    ],
                )?
                .get(0)?)
        })
    }

    /// Store a fully analysed call in one transaction (replacing an earlier analysis of the
    /// same key, carrying trainers' verdicts over); returns its id. A queue worker's call is
    /// fenced on its lease: if the lease is gone, nothing is written.
    pub fn save_call(&mut self, meta: &CallMeta, rows: &CallRows) -> Result<i64, StoreError> {
        let fence = self.fence().cloned();
        self.transaction(|db| {
            if let Some(lease) = &fence {
                super::queue::complete(db, lease, rows.duration_s)?;
            }
            let old: Option<i64> = db
                .query_opt(
                    "SELECT id FROM calls WHERE call_key = ?1",
                    args![meta.call_key],
                )?
                .map(|r| r.get(0))
                .transpose()?;
            let reviews = match old {
                Some(id) => reviewed_of(db, id, &rows.score.rubric)?,
                None => Vec::new(),
            };
            if let Some(id) = old {
                db.execute("DELETE FROM calls WHERE id = ?1", args![id])?;
            }
            let call_id: i64 = db
                .query_one(
                    "INSERT INTO calls (call_key, path, audio_hash, agent_id, channel_map, status,
                        duration_s, sample_rate, channels, encoding, models_key, run_id,
                        tone_baseline, source, tone_threshold, started_at, speakers)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?13, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?14, ?15,
                        coalesce(CAST(?16 AS TEXT), strftime('%Y-%m-%dT%H:%M:%SZ','now')), ?17)
                     RETURNING id",
                    args![
                        meta.call_key,
                        meta.path,
                        meta.audio_hash,
                        meta.agent_id,
                        meta.channel_map.to_string(),
                        rows.duration_s,
                        rows.sample_rate,
                        rows.channels,
                        encoding_text(rows.encoding),
                        meta.models_key,
                        meta.run_id,
                        rows.tone_baseline
                            .and_then(|b| serde_json::to_string(b).ok()),
                        CallStatus::Done,
                        meta.source,
                        rows.tone_threshold,
                        meta.started_at,
                        rows.speakers.and_then(|s| serde_json::to_string(s).ok()),
                    ],
                )?
                .get(0)?;
            for (i, s) in rows.segments.iter().enumerate() {
                let raw = rows.raw_texts.iter().find(|(k, _)| *k == i).map(|(_, r)| r);
                db.execute(
                    "INSERT INTO segments (call_id, idx, role, start_s, end_s, text, confidence,
                        avg_logprob, no_speech_prob, raw_text)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    args![
                        call_id,
                        i,
                        s.role,
                        s.start,
                        s.end,
                        s.text,
                        s.confidence,
                        s.avg_logprob,
                        s.no_speech_prob,
                        raw
                    ],
                )?;
            }
            for sr in rows.speech {
                for r in &sr.regions {
                    db.execute(
                        "INSERT INTO speech_regions (call_id, role, start_s, end_s)
                         VALUES (?1, ?2, ?3, ?4)",
                        args![call_id, sr.role, r.start, r.end],
                    )?;
                }
            }
            for w in rows.tone {
                let features = w
                    .features
                    .as_ref()
                    .map(|f| serde_json::to_string(f).unwrap_or_default());
                db.execute(
                    "INSERT INTO tone_windows (call_id, role, start_s, end_s, p_calm, p_tense,
                        p_agitated, features) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    args![
                        call_id,
                        w.role,
                        w.start,
                        w.end,
                        w.p_calm,
                        w.p_tense,
                        w.p_agitated,
                        features
                    ],
                )?;
            }
            insert_findings(
                db,
                call_id,
                rows.findings,
                rows.score,
                rows.rubric_hash,
                &reviews,
            )?;
            Ok(call_id)
        })
    }

    /// Record a call that could not be analysed. The attempt always goes into `failures`; a
    /// call row is written only if the key has none, or its row is itself a failure. An analysed
    /// call keeps its transcript, findings and trainers' reviews: a file that was moved or
    /// archived after analysis must not take its QC record with it. A queue worker's failure
    /// is fenced on its lease like a stored call.
    pub fn save_failure(&mut self, meta: &CallMeta, error: &str) -> Result<(), StoreError> {
        let fence = self.fence().cloned();
        self.transaction(|db| {
            if let Some(lease) = &fence
                && !super::queue::fail_attempt(db, lease, error)?
            {
                // Attempts remain: the job goes back to the queue and the failure is logged
                // only in the queue's own error log (the call row is written at the last).
                return Ok(());
            }
            db.execute(
                "INSERT INTO failures (call_key, path, error, run_id) VALUES (?1, ?2, ?3, ?4)",
                args![meta.call_key, meta.path, error, meta.run_id],
            )?;
            // A new key gets a failed row; an earlier failure is updated; an analysed call is
            // left as it is (the WHERE of the upsert).
            db.execute(
                "INSERT INTO calls (call_key, path, audio_hash, agent_id, channel_map, status,
                    error, models_key, run_id, source)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?9, ?6, ?7, ?8, ?10)
                 ON CONFLICT (call_key) DO UPDATE SET path = excluded.path,
                    audio_hash = excluded.audio_hash, agent_id = excluded.agent_id,
                    channel_map = excluded.channel_map, error = excluded.error,
                    models_key = excluded.models_key, run_id = excluded.run_id,
                    processed_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')
                 WHERE calls.status = ?9",
                args![
                    meta.call_key,
                    meta.path,
                    meta.audio_hash,
                    meta.agent_id,
                    meta.channel_map.to_string(),
                    error,
                    meta.models_key,
                    meta.run_id,
                    CallStatus::Failed,
                    meta.source,
                ],
            )?;
            Ok(())
        })
    }

    /// Replace one rubric's findings and score of a stored call (rescore), keeping reviews.
    pub fn replace_scoring(
        &mut self,
        call_id: i64,
        findings: &[Finding],
        score: &Score,
        rubric_hash: &str,
    ) -> Result<(), StoreError> {
        self.transaction(|db| {
            let reviews = reviewed_of(db, call_id, &score.rubric)?;
            insert_findings(db, call_id, findings, score, rubric_hash, &reviews)?;
            Ok(())
        })
    }

    /// Start a run record; returns its id.
    pub fn begin_run(
        &mut self,
        command: &str,
        models_json: &str,
        rubric: Option<(&str, &str, &str)>,
        settings_json: &str,
    ) -> Result<i64, StoreError> {
        let (name, version, hash) = match rubric {
            Some((n, v, h)) => (Some(n), Some(v), Some(h)),
            None => (None, None, None),
        };
        self.with(|db| {
            Ok(db
                .query_one(
                    "INSERT INTO runs (command, models, rubric_name, rubric_version, rubric_hash,
                        settings) VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                    args![command, models_json, name, version, hash, settings_json],
                )?
                .get(0)?)
        })
    }

    /// Close a run record with its totals.
    pub fn finish_run(&mut self, run_id: i64, t: &RunTotals) -> Result<(), StoreError> {
        self.with(|db| {
            db.execute(
                "UPDATE runs SET finished_at = strftime('%Y-%m-%dT%H:%M:%fZ','now'),
                    calls_done = ?2, calls_skipped = ?3, calls_failed = ?4, audio_s = ?5,
                    wall_s = ?6, stage_s = ?7
                 WHERE id = ?1",
                args![
                    run_id,
                    t.done,
                    t.skipped,
                    t.failed,
                    t.audio_s,
                    t.wall_s,
                    t.stages_json
                ],
            )?;
            Ok(())
        })
    }
}
