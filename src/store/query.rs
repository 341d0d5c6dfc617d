//! What trainers and QC leads ask of the store: flagged calls under filters, per-rule review
//! figures, and the figures behind the report. Dates compare as ISO 8601 text (the form every
//! date column holds); a call's date is when it took place (`calls.started_at`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::db::{DbError, ToValue, Value, args};
use super::read::{FINDING_COLUMNS, FINDING_FIELDS, StoredFinding, finding_row};
use super::types::{AlertKind, Kind, ReviewState, Source};
use super::{Store, StoreError};

/// How flagged calls are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlaggedOrder {
    /// Lowest score first (vetoed calls at the top).
    #[default]
    Score,
    /// Newest call first.
    Date,
}

/// Filters of `callqc flagged` (and of the trainer pages). Every filter is optional; finding
/// filters (item, dimension, points, veto, review) choose which findings count, and a call is
/// listed when at least one of its findings passes them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlaggedQuery {
    /// Calls that took place at or after this ISO date.
    pub from: Option<String>,
    /// Calls that took place before this ISO date.
    pub to: Option<String>,
    pub agent: Option<String>,
    pub item: Option<String>,
    pub dimension: Option<String>,
    pub min_points: Option<f64>,
    /// Calls whose (reviewed) score is at most this.
    pub max_score: Option<f64>,
    pub veto_only: bool,
    pub review: Option<ReviewState>,
    pub source: Option<Source>,
    /// Calls whose transcript contains this text.
    pub text: Option<String>,
    /// Count observations (holds and pauses within the rules) as findings too.
    pub observations: bool,
    pub order: FlaggedOrder,
    pub limit: Option<usize>,
}

/// One flagged call with the findings that made it so.
#[derive(Debug, Clone, Serialize)]
pub struct FlaggedCall {
    pub call_id: i64,
    pub call_key: String,
    pub agent_id: Option<String>,
    pub source: Source,
    pub started_at: Option<String>,
    pub path: String,
    pub duration_s: Option<f64>,
    pub rubric: String,
    /// The score after trainers' verdicts, and the machine's.
    pub score: f64,
    pub machine_score: f64,
    pub vetoed: bool,
    pub findings: Vec<StoredFinding>,
}

/// Review figures of one rubric item.
#[derive(Debug, Clone, Serialize)]
pub struct RuleStats {
    pub rubric: String,
    pub item_id: String,
    pub description: String,
    pub dimension: String,
    pub kind: Kind,
    pub findings: usize,
    pub reviewed: usize,
    pub confirmed: usize,
    pub dismissed: usize,
    /// confirmed / reviewed (None before any review).
    pub precision: Option<f64>,
    pub appeals: usize,
    pub appeals_upheld: usize,
    /// Points deducted by the findings still counting (not dismissed).
    pub points: f64,
}

/// A date range for figures: [from, to).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Period {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// One call's score and when, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct ScoredCall {
    pub call_key: String,
    pub agent_id: Option<String>,
    /// YYYY-MM-DD of the call.
    pub day: String,
    pub source: Source,
    pub score: f64,
    pub machine_score: f64,
    pub vetoed: bool,
    pub findings: usize,
}

/// A finding's contribution to the report: its item, dimension, day and state.
#[derive(Debug, Clone, Serialize)]
pub struct FindingFact {
    pub item_id: String,
    pub description: String,
    pub dimension: String,
    pub kind: Kind,
    pub day: String,
    pub points: f64,
    pub review: ReviewState,
}

/// Warnings pushed live, per day and kind.
#[derive(Debug, Clone, Serialize)]
pub struct AlertDay {
    pub day: String,
    pub kind: AlertKind,
    pub count: usize,
}

const CALL_DAY: &str = "substr(coalesce(c.started_at, c.processed_at), 1, 10)";
const CALL_DATE: &str = "coalesce(c.started_at, c.processed_at)";

/// SQL conditions on calls `c` for a period, with their parameters.
fn period_sql(p: &Period, clauses: &mut Vec<String>, values: &mut Vec<Value>) {
    if let Some(from) = &p.from {
        clauses.push(format!("{CALL_DATE} >= ?"));
        values.push(Value::Text(from.clone()));
    }
    if let Some(to) = &p.to {
        clauses.push(format!("{CALL_DATE} < ?"));
        values.push(Value::Text(to.clone()));
    }
}

/// Dynamic parameters as the seam takes them.
fn dyn_args(values: &[Value]) -> Vec<&dyn ToValue> {
    values.iter().map(|v| v as &dyn ToValue).collect()
}

fn prefixed(columns: &str, alias: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Calls with findings under the query's filters, each with its matching findings.
    pub fn flagged(&self, q: &FlaggedQuery) -> Result<Vec<FlaggedCall>, StoreError> {
        let mut clauses = vec!["c.status = 'done'".to_string()];
        let mut values: Vec<Value> = Vec::new();
        period_sql(
            &Period {
                from: q.from.clone(),
                to: q.to.clone(),
            },
            &mut clauses,
            &mut values,
        );
        let mut text = |clause: &str, v: &Option<String>| {
            if let Some(v) = v {
                clauses.push(clause.to_string());
                values.push(Value::Text(v.clone()));
            }
        };
        text("c.agent_id = ?", &q.agent);
        text("f.item_id = ?", &q.item);
        text("f.dimension = ?", &q.dimension);
        text("f.review = ?", &q.review.map(|r| r.as_str().to_string()));
        text(
            "c.source = ?",
            &q.source.map(|s| match s {
                Source::Batch => "batch".to_string(),
                Source::Live => "live".to_string(),
            }),
        );
        text(
            "EXISTS (SELECT 1 FROM segments g WHERE g.call_id = c.id AND instr(g.text, ?) > 0)",
            &q.text,
        );
        if let Some(p) = q.min_points {
            clauses.push("f.points >= ?".into());
            values.push(Value::Real(p));
        }
        if let Some(s) = q.max_score {
            clauses.push("s.total <= ?".into());
            values.push(Value::Real(s));
        }
        if q.veto_only {
            clauses.push("f.veto = 1".into());
        }
        if !q.observations {
            clauses.push("f.observation = 0".into());
        }
        let sql = format!(
            "SELECT {fcols}, c.call_key, c.agent_id, c.source, {CALL_DATE}, c.path, c.duration_s,
                s.total, coalesce(s.machine_total, s.total), s.vetoed
             FROM findings f JOIN calls c ON c.id = f.call_id
                JOIN scores s ON s.call_id = c.id AND s.rubric = f.rubric
             WHERE {where_}
             ORDER BY c.id, f.start_s, f.item_id",
            fcols = prefixed(FINDING_COLUMNS, "f"),
            where_ = clauses.join(" AND "),
        );
        let rows = self.with(|db| {
            Ok(db
                .query(&sql, &dyn_args(&values))?
                .iter()
                .map(|r| {
                    let finding = finding_row(r)?;
                    Ok(FlaggedCall {
                        call_id: finding.call_id,
                        rubric: finding.rubric.clone(),
                        call_key: r.get(FINDING_FIELDS)?,
                        agent_id: r.get(FINDING_FIELDS + 1)?,
                        source: r.get(FINDING_FIELDS + 2)?,
                        started_at: r.get(FINDING_FIELDS + 3)?,
                        path: r.get(FINDING_FIELDS + 4)?,
                        duration_s: r.get(FINDING_FIELDS + 5)?,
                        score: r.get(FINDING_FIELDS + 6)?,
                        machine_score: r.get(FINDING_FIELDS + 7)?,
                        vetoed: r.get(FINDING_FIELDS + 8)?,
                        findings: vec![finding],
                    })
                })
                .collect::<Result<Vec<_>, DbError>>()?)
        })?;
        // One entry per call and rubric, findings in time order.
        let mut calls: Vec<FlaggedCall> = Vec::new();
        for row in rows {
            match calls
                .iter_mut()
                .rev()
                .find(|c| c.call_id == row.call_id && c.rubric == row.rubric)
            {
                Some(c) => c.findings.extend(row.findings),
                None => calls.push(row),
            }
        }
        match q.order {
            FlaggedOrder::Score => calls.sort_by(|a, b| {
                (!a.vetoed, a.score, &a.call_key)
                    .partial_cmp(&(!b.vetoed, b.score, &b.call_key))
                    .unwrap_or(std::cmp::Ordering::Equal)
            }),
            FlaggedOrder::Date => calls
                .sort_by(|a, b| (&b.started_at, &b.call_key).cmp(&(&a.started_at, &a.call_key))),
        }
        if let Some(n) = q.limit {
            calls.truncate(n);
        }
        Ok(calls)
    }

    /// Per rubric item: findings, reviews, precision, appeals, over calls in the period.
    pub fn rule_stats(&self, period: &Period) -> Result<Vec<RuleStats>, StoreError> {
        let mut clauses = vec!["c.status = 'done'".to_string()];
        let mut values = Vec::new();
        period_sql(period, &mut clauses, &mut values);
        let sql = format!(
            "SELECT f.rubric, f.item_id, max(f.description), max(f.dimension), max(f.kind),
                count(*),
                sum(CASE WHEN f.review != 'open' THEN 1 ELSE 0 END),
                sum(CASE WHEN f.review = 'confirmed' THEN 1 ELSE 0 END),
                sum(CASE WHEN f.review = 'dismissed' THEN 1 ELSE 0 END),
                sum(CASE WHEN f.appeal != 'none' THEN 1 ELSE 0 END),
                sum(CASE WHEN f.appeal = 'upheld' THEN 1 ELSE 0 END),
                coalesce(sum(CASE WHEN f.review != 'dismissed' THEN f.points ELSE 0.0 END), 0.0)
             FROM findings f JOIN calls c ON c.id = f.call_id
             WHERE {} AND f.observation = 0
             GROUP BY f.rubric, f.item_id ORDER BY f.rubric, f.item_id",
            clauses.join(" AND ")
        );
        self.with(|db| {
            Ok(db
                .query(&sql, &dyn_args(&values))?
                .iter()
                .map(|r| {
                    let reviewed: usize = r.get(6)?;
                    let confirmed: usize = r.get(7)?;
                    Ok(RuleStats {
                        rubric: r.get(0)?,
                        item_id: r.get(1)?,
                        description: r.get(2)?,
                        dimension: r.get(3)?,
                        kind: r.get(4)?,
                        findings: r.get(5)?,
                        reviewed,
                        confirmed,
                        dismissed: r.get(8)?,
                        precision: (reviewed > 0).then(|| confirmed as f64 / reviewed as f64),
                        appeals: r.get(9)?,
                        appeals_upheld: r.get(10)?,
                        points: r.get(11)?,
                    })
                })
                .collect::<Result<_, DbError>>()?)
        })
    }

    /// Every analysed call of the period with its (first rubric's) score, oldest first.
    pub fn scored_calls(&self, period: &Period) -> Result<Vec<ScoredCall>, StoreError> {
        let mut clauses = vec!["c.status = 'done'".to_string()];
        let mut values = Vec::new();
        period_sql(period, &mut clauses, &mut values);
        let sql = format!(
            "SELECT c.call_key, c.agent_id, {CALL_DAY}, c.source, s.total,
                coalesce(s.machine_total, s.total), s.vetoed,
                (SELECT count(*) FROM findings f
                  WHERE f.call_id = c.id AND f.rubric = s.rubric AND f.observation = 0)
             FROM calls c JOIN scores s ON s.call_id = c.id
             WHERE {} AND s.rubric = (SELECT min(rubric) FROM scores WHERE call_id = c.id)
             ORDER BY {CALL_DATE}, c.call_key",
            clauses.join(" AND ")
        );
        self.with(|db| {
            Ok(db
                .query(&sql, &dyn_args(&values))?
                .iter()
                .map(|r| {
                    Ok(ScoredCall {
                        call_key: r.get(0)?,
                        agent_id: r.get(1)?,
                        day: r.get(2)?,
                        source: r.get(3)?,
                        score: r.get(4)?,
                        machine_score: r.get(5)?,
                        vetoed: r.get(6)?,
                        findings: r.get(7)?,
                    })
                })
                .collect::<Result<_, DbError>>()?)
        })
    }

    /// Every finding of the period's calls, with its day.
    pub fn finding_facts(&self, period: &Period) -> Result<Vec<FindingFact>, StoreError> {
        let mut clauses = vec!["c.status = 'done'".to_string()];
        let mut values = Vec::new();
        period_sql(period, &mut clauses, &mut values);
        let sql = format!(
            "SELECT f.item_id, f.description, f.dimension, f.kind, {CALL_DAY}, f.points, f.review
             FROM findings f JOIN calls c ON c.id = f.call_id WHERE {} AND f.observation = 0
             ORDER BY {CALL_DATE}, f.start_s",
            clauses.join(" AND ")
        );
        self.with(|db| {
            Ok(db
                .query(&sql, &dyn_args(&values))?
                .iter()
                .map(|r| {
                    Ok(FindingFact {
                        item_id: r.get(0)?,
                        description: r.get(1)?,
                        dimension: r.get(2)?,
                        kind: r.get(3)?,
                        day: r.get(4)?,
                        points: r.get(5)?,
                        review: r.get(6)?,
                    })
                })
                .collect::<Result<_, DbError>>()?)
        })
    }

    /// Live warnings per day and kind (by when they were sent), in the period.
    pub fn alert_days(&self, period: &Period) -> Result<Vec<AlertDay>, StoreError> {
        let rows: Vec<(i64, AlertKind)> = self.with(|db| {
            Ok(db
                .query("SELECT sent_ms, kind FROM alerts ORDER BY sent_ms", args![])?
                .iter()
                .map(|r| Ok((r.get(0)?, r.get(1)?)))
                .collect::<Result<_, DbError>>()?)
        })?;
        let mut days: BTreeMap<(String, AlertKind), usize> = BTreeMap::new();
        for (ms, kind) in rows {
            let at = crate::time::iso_utc(ms);
            let inside = period.from.as_ref().is_none_or(|f| at >= *f)
                && period.to.as_ref().is_none_or(|t| at < *t);
            if inside {
                *days.entry((at[..10].to_string(), kind)).or_default() += 1;
            }
        }
        Ok(days
            .into_iter()
            .map(|((day, kind), count)| AlertDay { day, kind, count })
            .collect())
    }
}
