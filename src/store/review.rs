//! Trainers' verdicts on findings: review (real hit / false hit), the agent's appeal (申诉) and
//! its final ruling, calibration rounds, and the history of every one of them.
//!
//! The finding row holds the current state (review, appeal, who, note, when); `verdicts` holds
//! every step, never rewritten. Each step is one transaction that also recomputes the call's
//! score, so the score a trainer sees always matches the verdicts stored with it.

use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;

use super::read::{FINDING_COLUMNS, FINDING_FIELDS, StoredFinding, finding_row};
use super::types::{AppealState, ReviewState, VerdictAction};
use super::{Store, StoreError};
use crate::rubric::{Counted, tally, total_of};

/// One step of a finding's history.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictRecord {
    pub id: i64,
    pub finding_id: i64,
    pub call_key: String,
    pub rubric: String,
    pub item_id: String,
    pub action: VerdictAction,
    pub by: String,
    pub note: Option<String>,
    /// Set when the verdict was given in a calibration round (it changes no finding).
    pub calibration_id: Option<i64>,
    pub at: String,
}

/// A finding with the call it belongs to.
#[derive(Debug, Clone, Serialize)]
pub struct FindingOfCall {
    pub finding: StoredFinding,
    pub call_key: String,
    pub agent_id: Option<String>,
}

/// A calibration round: calls that several reviewers judge independently.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationRecord {
    pub id: i64,
    pub name: String,
    pub requested_by: String,
    pub reviewers: Vec<String>,
    pub call_keys: Vec<String>,
    pub created_at: String,
    /// Every finding of the round's calls.
    pub findings: Vec<FindingOfCall>,
    /// The verdicts given in the round, oldest first.
    pub verdicts: Vec<VerdictRecord>,
}

const VERDICT_COLUMNS: &str =
    "id, finding_id, call_key, rubric, item_id, action, by_name, note, calibration_id, at";

fn verdict_row(r: &rusqlite::Row) -> rusqlite::Result<VerdictRecord> {
    Ok(VerdictRecord {
        id: r.get(0)?,
        finding_id: r.get(1)?,
        call_key: r.get(2)?,
        rubric: r.get(3)?,
        item_id: r.get(4)?,
        action: r.get(5)?,
        by: r.get(6)?,
        note: r.get(7)?,
        calibration_id: r.get(8)?,
        at: r.get(9)?,
    })
}

/// Turns a SQLite error into the store's, naming the database.
fn sqlite_at(path: &std::path::Path) -> impl Fn(rusqlite::Error) -> StoreError + Copy + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

fn refused(id: i64, reason: impl Into<String>) -> StoreError {
    StoreError::Refused {
        id,
        reason: reason.into(),
    }
}

/// Recompute one rubric's score of a call from its findings that still count (not dismissed),
/// keeping the machine's score beside it.
pub(crate) fn rescore_reviewed(
    tx: &Transaction,
    call_id: i64,
    rubric: &str,
) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare(
        "SELECT item_id, start_s, coalesce(item_points, points),
            CASE WHEN observation THEN 0 ELSE coalesce(item_max_count, 1000000) END,
            veto FROM findings WHERE call_id = ?1 AND rubric = ?2 AND review != 'dismissed'",
    )?;
    let rows: Vec<(String, f64, f64, u32, bool)> = stmt
        .query_map(params![call_id, rubric], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let counted: Vec<Counted> = rows
        .iter()
        .map(|(item_id, start, item_points, max_count, veto)| Counted {
            item_id,
            start: *start,
            item_points: *item_points,
            max_count: *max_count,
            veto: *veto,
        })
        .collect();
    let (deductions, vetoed, _) = tally(&counted);
    tx.execute(
        "UPDATE scores SET total = ?3, deductions = ?4, vetoed = ?5,
            scored_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')
         WHERE call_id = ?1 AND rubric = ?2",
        params![
            call_id,
            rubric,
            total_of(deductions, vetoed),
            deductions,
            vetoed
        ],
    )?;
    Ok(())
}

fn finding_in(tx: &rusqlite::Connection, id: i64) -> rusqlite::Result<Option<FindingOfCall>> {
    let sql = format!(
        "SELECT {cols}, c.call_key, c.agent_id FROM findings f JOIN calls c ON c.id = f.call_id
         WHERE f.id = ?1",
        cols = FINDING_COLUMNS
            .split(',')
            .map(|c| format!("f.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    tx.query_row(&sql, params![id], |r| {
        Ok(FindingOfCall {
            finding: finding_row(r)?,
            call_key: r.get(FINDING_FIELDS)?,
            agent_id: r.get(FINDING_FIELDS + 1)?,
        })
    })
    .optional()
}

fn record(
    tx: &Transaction,
    f: &FindingOfCall,
    action: VerdictAction,
    by: &str,
    note: Option<&str>,
    calibration: Option<i64>,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO verdicts (finding_id, call_key, rubric, item_id, action, by_name, note,
            calibration_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            f.finding.id,
            f.call_key,
            f.finding.rubric,
            f.finding.item_id,
            action,
            by,
            note,
            calibration
        ],
    )?;
    Ok(())
}

fn set_state(
    tx: &Transaction,
    f: &FindingOfCall,
    review: ReviewState,
    appeal: AppealState,
    by: &str,
    note: Option<&str>,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE findings SET review = ?2, appeal = ?3, reviewer = ?4, review_note = ?5,
            reviewed_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?1",
        params![f.finding.id, review, appeal, by, note],
    )?;
    rescore_reviewed(tx, f.finding.call_id, &f.finding.rubric)
}

fn non_empty(id: i64, what: &str, text: &str) -> Result<(), StoreError> {
    if text.trim().is_empty() {
        return Err(refused(id, format!("{what} must not be empty")));
    }
    Ok(())
}

impl Store {
    /// Run `step` on finding `id` in one transaction; a missing finding is an error naming it.
    fn with_finding<T>(
        &mut self,
        id: i64,
        step: impl FnOnce(&Transaction, &FindingOfCall) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let path = self.path.clone();
        let sql = sqlite_at(&path);
        let tx = self.conn.transaction().map_err(sql)?;
        let f = finding_in(&tx, id)
            .map_err(sql)?
            .ok_or(StoreError::NoSuchFinding {
                path: path.clone(),
                id,
            })?;
        let out = step(&tx, &f)?;
        tx.commit().map_err(sql)?;
        Ok(out)
    }

    /// A finding by id, with its call.
    pub fn finding(&self, id: i64) -> Result<FindingOfCall, StoreError> {
        finding_in(&self.conn, id)
            .map_err(|e| self.err(e))?
            .ok_or(StoreError::NoSuchFinding {
                path: self.path.clone(),
                id,
            })
    }

    /// A reviewer's verdict: `Confirm` (real hit), `Dismiss` (false hit: it leaves the score) or
    /// `Note` (a remark, no change). A finding under appeal is decided by the ruling, and a
    /// ruled one is final.
    pub fn review_finding(
        &mut self,
        id: i64,
        action: VerdictAction,
        by: &str,
        note: Option<&str>,
    ) -> Result<FindingOfCall, StoreError> {
        non_empty(id, "the reviewer's name", by)?;
        let path = self.path.clone();
        self.with_finding(id, |tx, f| {
            let sql = sqlite_at(&path);
            let review = match action {
                VerdictAction::Confirm => ReviewState::Confirmed,
                VerdictAction::Dismiss => ReviewState::Dismissed,
                VerdictAction::Note => {
                    let text = note.unwrap_or_default();
                    non_empty(id, "a note", text)?;
                    record(tx, f, action, by, Some(text), None).map_err(sql)?;
                    return Ok(f.clone());
                }
                other => {
                    return Err(refused(
                        id,
                        format!("'{other}' is not a review verdict (confirm, dismiss or note)"),
                    ));
                }
            };
            match f.finding.appeal {
                AppealState::Pending => {
                    return Err(refused(
                        id,
                        "the agent's appeal is pending: rule on it (callqc appeal --uphold | --reject)",
                    ));
                }
                AppealState::Upheld | AppealState::Rejected => {
                    return Err(refused(
                        id,
                        format!(
                            "the appeal was ruled on ({}): the verdict is final",
                            f.finding.appeal
                        ),
                    ));
                }
                AppealState::None => {}
            }
            record(tx, f, action, by, note, None).map_err(sql)?;
            set_state(tx, f, review, AppealState::None, by, note).map_err(sql)?;
            finding_in(tx, id).map_err(sql)?.ok_or_else(|| refused(id, "vanished"))
        })
    }

    /// The call's agent appeals a finding (申诉), giving a reason. Only the call's own agent may,
    /// only once, and not against a finding already dismissed.
    pub fn appeal_finding(
        &mut self,
        id: i64,
        agent: &str,
        reason: &str,
    ) -> Result<FindingOfCall, StoreError> {
        non_empty(id, "the appeal's reason", reason)?;
        let path = self.path.clone();
        self.with_finding(id, |tx, f| {
            let sql = sqlite_at(&path);
            if f.agent_id.as_deref() != Some(agent) {
                return Err(refused(
                    id,
                    format!(
                        "only the call's agent ({}) may appeal it, not '{agent}'",
                        f.agent_id.as_deref().unwrap_or("unknown")
                    ),
                ));
            }
            if f.finding.appeal != AppealState::None {
                return Err(refused(
                    id,
                    format!(
                        "already appealed ({}): one appeal per finding",
                        f.finding.appeal
                    ),
                ));
            }
            if f.finding.review == ReviewState::Dismissed {
                return Err(refused(id, "it is dismissed: nothing to appeal"));
            }
            record(tx, f, VerdictAction::Appeal, agent, Some(reason), None).map_err(sql)?;
            tx.execute(
                "UPDATE findings SET appeal = 'pending' WHERE id = ?1",
                params![id],
            )
            .map_err(sql)?;
            finding_in(tx, id)
                .map_err(sql)?
                .ok_or_else(|| refused(id, "vanished"))
        })
    }

    /// A reviewer's final ruling on a pending appeal: upheld (the finding is dismissed and leaves
    /// the score) or rejected (the finding is confirmed). The appellant cannot rule.
    pub fn rule_on_appeal(
        &mut self,
        id: i64,
        uphold: bool,
        by: &str,
        note: Option<&str>,
    ) -> Result<FindingOfCall, StoreError> {
        non_empty(id, "the reviewer's name", by)?;
        let path = self.path.clone();
        self.with_finding(id, |tx, f| {
            let sql = sqlite_at(&path);
            if f.finding.appeal != AppealState::Pending {
                return Err(refused(
                    id,
                    format!("no appeal is pending (appeal: {})", f.finding.appeal),
                ));
            }
            if f.agent_id.as_deref() == Some(by) {
                return Err(refused(id, "the appellant cannot rule on their own appeal"));
            }
            let (action, review, appeal) = if uphold {
                (
                    VerdictAction::Uphold,
                    ReviewState::Dismissed,
                    AppealState::Upheld,
                )
            } else {
                (
                    VerdictAction::Reject,
                    ReviewState::Confirmed,
                    AppealState::Rejected,
                )
            };
            record(tx, f, action, by, note, None).map_err(sql)?;
            set_state(tx, f, review, appeal, by, note).map_err(sql)?;
            finding_in(tx, id)
                .map_err(sql)?
                .ok_or_else(|| refused(id, "vanished"))
        })
    }

    /// Every step of a finding's history, oldest first (calibration verdicts included).
    pub fn verdict_history(&self, finding_id: i64) -> Result<Vec<VerdictRecord>, StoreError> {
        let e = |e| self.err(e);
        let sql =
            format!("SELECT {VERDICT_COLUMNS} FROM verdicts WHERE finding_id = ?1 ORDER BY id");
        let mut stmt = self.conn.prepare(&sql).map_err(e)?;
        stmt.query_map(params![finding_id], verdict_row)
            .and_then(|rows| rows.collect())
            .map_err(e)
    }

    /// Start a calibration round: these calls, judged independently by these reviewers.
    pub fn create_calibration(
        &mut self,
        name: &str,
        requested_by: &str,
        reviewers: &[String],
        call_keys: &[String],
    ) -> Result<i64, StoreError> {
        let path = self.path.clone();
        let sql = sqlite_at(&path);
        let tx = self.conn.transaction().map_err(sql)?;
        tx.execute(
            "INSERT INTO calibrations (name, requested_by, reviewers) VALUES (?1, ?2, ?3)",
            params![
                name,
                requested_by,
                serde_json::to_string(reviewers).unwrap_or_default()
            ],
        )
        .map_err(sql)?;
        let id = tx.last_insert_rowid();
        for key in call_keys {
            tx.execute(
                "INSERT OR IGNORE INTO calibration_calls (calibration_id, call_key) VALUES (?1, ?2)",
                params![id, key],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        Ok(id)
    }

    /// A reviewer's verdict in a calibration round: recorded in the history with the round's id;
    /// the finding's own verdict and the call's score do not change.
    pub fn calibration_verdict(
        &mut self,
        calibration_id: i64,
        finding_id: i64,
        confirm: bool,
        by: &str,
        note: Option<&str>,
    ) -> Result<(), StoreError> {
        let round = self.calibration_header(calibration_id)?;
        if !round.reviewers.iter().any(|r| r == by) {
            return Err(refused(
                finding_id,
                format!(
                    "'{by}' is not a reviewer of calibration {calibration_id} ({})",
                    round.reviewers.join(", ")
                ),
            ));
        }
        let path = self.path.clone();
        self.with_finding(finding_id, |tx, f| {
            if !round.call_keys.contains(&f.call_key) {
                return Err(refused(
                    finding_id,
                    format!(
                        "its call {} is not in calibration {calibration_id}",
                        f.call_key
                    ),
                ));
            }
            let action = if confirm {
                VerdictAction::Confirm
            } else {
                VerdictAction::Dismiss
            };
            record(tx, f, action, by, note, Some(calibration_id)).map_err(sqlite_at(&path))
        })
    }

    fn calibration_header(&self, id: i64) -> Result<CalibrationRecord, StoreError> {
        let e = |e| self.err(e);
        let head: Option<(String, String, String, String)> = self
            .conn
            .query_row(
                "SELECT name, requested_by, reviewers, created_at FROM calibrations WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(e)?;
        let (name, requested_by, reviewers, created_at) =
            head.ok_or_else(|| StoreError::NoSuchCall {
                path: self.path.clone(),
                query: format!("calibration {id}"),
            })?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT call_key FROM calibration_calls WHERE calibration_id = ?1 ORDER BY call_key",
            )
            .map_err(e)?;
        let call_keys = stmt
            .query_map(params![id], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(e)?;
        Ok(CalibrationRecord {
            id,
            name,
            requested_by,
            reviewers: serde_json::from_str(&reviewers).unwrap_or_default(),
            call_keys,
            created_at,
            findings: Vec::new(),
            verdicts: Vec::new(),
        })
    }

    /// A calibration round with its calls' findings and the verdicts given in it.
    pub fn calibration(&self, id: i64) -> Result<CalibrationRecord, StoreError> {
        let mut round = self.calibration_header(id)?;
        let e = |e| self.err(e);
        let cols = FINDING_COLUMNS
            .split(',')
            .map(|c| format!("f.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {cols}, c.call_key, c.agent_id FROM findings f JOIN calls c ON c.id = f.call_id
             WHERE c.call_key IN (SELECT call_key FROM calibration_calls WHERE calibration_id = ?1)
             ORDER BY c.call_key, f.start_s, f.item_id"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(e)?;
        round.findings = stmt
            .query_map(params![id], |r| {
                Ok(FindingOfCall {
                    finding: finding_row(r)?,
                    call_key: r.get(FINDING_FIELDS)?,
                    agent_id: r.get(FINDING_FIELDS + 1)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(e)?;
        let sql =
            format!("SELECT {VERDICT_COLUMNS} FROM verdicts WHERE calibration_id = ?1 ORDER BY id");
        let mut stmt = self.conn.prepare(&sql).map_err(e)?;
        round.verdicts = stmt
            .query_map(params![id], verdict_row)
            .and_then(|rows| rows.collect())
            .map_err(e)?;
        Ok(round)
    }
}
