//! Trainers' verdicts on findings: review (real hit / false hit), the agent's appeal (申诉) and
//! its final ruling, calibration rounds, and the history of every one of them.
//!
//! The finding row holds the current state (review, appeal, who, note, when); `verdicts` holds
//! every step, never rewritten. Each step is one transaction that also recomputes the call's
//! score, so the score a trainer sees always matches the verdicts stored with it.

use serde::Serialize;

use super::db::{Db, DbError, Row, args};
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

fn verdict_row(r: &Row) -> Result<VerdictRecord, DbError> {
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

fn refused(id: i64, reason: impl Into<String>) -> StoreError {
    StoreError::Refused {
        id,
        reason: reason.into(),
    }
}

/// Recompute one rubric's score of a call from its findings that still count (not dismissed),
/// keeping the machine's score beside it.
pub(crate) fn rescore_reviewed(db: &mut Db, call_id: i64, rubric: &str) -> Result<(), DbError> {
    let rows: Vec<(String, f64, f64, u32, bool)> = db
        .query(
            "SELECT item_id, start_s, coalesce(item_points, points),
                CASE WHEN observation != 0 THEN 0 ELSE coalesce(item_max_count, 1000000) END,
                veto FROM findings WHERE call_id = ?1 AND rubric = ?2 AND review != 'dismissed'",
            args![call_id, rubric],
        )?
        .iter()
        .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .collect::<Result<_, DbError>>()?;
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
    db.execute(
        "UPDATE scores SET total = ?3, deductions = ?4, vetoed = ?5,
            scored_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')
         WHERE call_id = ?1 AND rubric = ?2",
        args![
            call_id,
            rubric,
            total_of(deductions, vetoed),
            deductions,
            vetoed
        ],
    )?;
    Ok(())
}

fn finding_in(db: &mut Db, id: i64) -> Result<Option<FindingOfCall>, DbError> {
    let sql = format!(
        "SELECT {cols}, c.call_key, c.agent_id FROM findings f JOIN calls c ON c.id = f.call_id
         WHERE f.id = ?1",
        cols = FINDING_COLUMNS
            .split(',')
            .map(|c| format!("f.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    db.query_opt(&sql, args![id])?
        .map(|r| {
            Ok(FindingOfCall {
                finding: finding_row(&r)?,
                call_key: r.get(FINDING_FIELDS)?,
                agent_id: r.get(FINDING_FIELDS + 1)?,
            })
        })
        .transpose()
}

fn record(
    db: &mut Db,
    f: &FindingOfCall,
    action: VerdictAction,
    by: &str,
    note: Option<&str>,
    calibration: Option<i64>,
) -> Result<(), DbError> {
    db.execute(
        "INSERT INTO verdicts (finding_id, call_key, rubric, item_id, action, by_name, note,
            calibration_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        args![
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
    db: &mut Db,
    f: &FindingOfCall,
    review: ReviewState,
    appeal: AppealState,
    by: &str,
    note: Option<&str>,
) -> Result<(), DbError> {
    db.execute(
        "UPDATE findings SET review = ?2, appeal = ?3, reviewer = ?4, review_note = ?5,
            reviewed_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?1",
        args![f.finding.id, review, appeal, by, note],
    )?;
    rescore_reviewed(db, f.finding.call_id, &f.finding.rubric)
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
        step: impl FnOnce(&mut Db, &FindingOfCall) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let at = self.location();
        self.transaction(|db| {
            let f = finding_in(db, id)?.ok_or(StoreError::NoSuchFinding { at, id })?;
            step(db, &f)
        })
    }

    /// A finding by id, with its call.
    pub fn finding(&self, id: i64) -> Result<FindingOfCall, StoreError> {
        let at = self.location();
        self.with(|db| finding_in(db, id)?.ok_or(StoreError::NoSuchFinding { at, id }))
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
        self.with_finding(id, |db, f| {
            let review = match action {
                VerdictAction::Confirm => ReviewState::Confirmed,
                VerdictAction::Dismiss => ReviewState::Dismissed,
                VerdictAction::Note => {
                    let text = note.unwrap_or_default();
                    non_empty(id, "a note", text)?;
                    record(db, f, action, by, Some(text), None)?;
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
            record(db, f, action, by, note, None)?;
            set_state(db, f, review, AppealState::None, by, note)?;
            finding_in(db, id)?.ok_or_else(|| refused(id, "vanished"))
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
        self.with_finding(id, |db, f| {
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
            record(db, f, VerdictAction::Appeal, agent, Some(reason), None)?;
            db.execute(
                "UPDATE findings SET appeal = 'pending' WHERE id = ?1",
                args![id],
            )?;
            finding_in(db, id)?.ok_or_else(|| refused(id, "vanished"))
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
        self.with_finding(id, |db, f| {
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
            record(db, f, action, by, note, None)?;
            set_state(db, f, review, appeal, by, note)?;
            finding_in(db, id)?.ok_or_else(|| refused(id, "vanished"))
        })
    }

    /// Every step of a finding's history, oldest first (calibration verdicts included).
    pub fn verdict_history(&self, finding_id: i64) -> Result<Vec<VerdictRecord>, StoreError> {
        let sql =
            format!("SELECT {VERDICT_COLUMNS} FROM verdicts WHERE finding_id = ?1 ORDER BY id");
        self.with(|db| {
            Ok(db
                .query(&sql, args![finding_id])?
                .iter()
                .map(verdict_row)
                .collect::<Result<_, _>>()?)
        })
    }

    /// Start a calibration round: these calls, judged independently by these reviewers.
    pub fn create_calibration(
        &mut self,
        name: &str,
        requested_by: &str,
        reviewers: &[String],
        call_keys: &[String],
    ) -> Result<i64, StoreError> {
        self.transaction(|db| {
            let id: i64 = db
                .query_one(
                    "INSERT INTO calibrations (name, requested_by, reviewers) VALUES (?1, ?2, ?3)
                     RETURNING id",
                    args![
                        name,
                        requested_by,
                        serde_json::to_string(reviewers).unwrap_or_default()
                    ],
                )?
                .get(0)?;
            for key in call_keys {
                db.execute(
                    "INSERT INTO calibration_calls (calibration_id, call_key) VALUES (?1, ?2)
                     ON CONFLICT DO NOTHING",
                    args![id, key],
                )?;
            }
            Ok(id)
        })
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
        self.with_finding(finding_id, |db, f| {
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
            Ok(record(db, f, action, by, note, Some(calibration_id))?)
        })
    }

    fn calibration_header(&self, id: i64) -> Result<CalibrationRecord, StoreError> {
        let at = self.location();
        self.with(|db| {
            let head = db
                .query_opt(
                    "SELECT name, requested_by, reviewers, created_at FROM calibrations
                     WHERE id = ?1",
                    args![id],
                )?
                .ok_or_else(|| StoreError::NoSuchCall {
                    at,
                    query: format!("calibration {id}"),
                })?;
            let reviewers: String = head.get(2)?;
            let call_keys = db.column(
                "SELECT call_key FROM calibration_calls WHERE calibration_id = ?1 ORDER BY call_key",
                args![id],
            )?;
            Ok(CalibrationRecord {
                id,
                name: head.get(0)?,
                requested_by: head.get(1)?,
                reviewers: serde_json::from_str(&reviewers).unwrap_or_default(),
                call_keys,
                created_at: head.get(3)?,
                findings: Vec::new(),
                verdicts: Vec::new(),
            })
        })
    }

    /// A calibration round with its calls' findings and the verdicts given in it.
    pub fn calibration(&self, id: i64) -> Result<CalibrationRecord, StoreError> {
        let mut round = self.calibration_header(id)?;
        let cols = FINDING_COLUMNS
            .split(',')
            .map(|c| format!("f.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let findings_sql = format!(
            "SELECT {cols}, c.call_key, c.agent_id FROM findings f JOIN calls c ON c.id = f.call_id
             WHERE c.call_key IN (SELECT call_key FROM calibration_calls WHERE calibration_id = ?1)
             ORDER BY c.call_key, f.start_s, f.item_id"
        );
        let verdicts_sql =
            format!("SELECT {VERDICT_COLUMNS} FROM verdicts WHERE calibration_id = ?1 ORDER BY id");
        self.with(|db| {
            round.findings = db
                .query(&findings_sql, args![id])?
                .iter()
                .map(|r| {
                    Ok(FindingOfCall {
                        finding: finding_row(r)?,
                        call_key: r.get(FINDING_FIELDS)?,
                        agent_id: r.get(FINDING_FIELDS + 1)?,
                    })
                })
                .collect::<Result<_, DbError>>()?;
            round.verdicts = db
                .query(&verdicts_sql, args![id])?
                .iter()
                .map(verdict_row)
                .collect::<Result<_, _>>()?;
            Ok(())
        })?;
        Ok(round)
    }
}
