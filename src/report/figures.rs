//! The figures behind `callqc report` (also its `--json`): computed from the store's plain
//! rows, so the page and the JSON can never disagree.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::{Kind, Period, ReviewState, RuleStats, Store};

/// Score buckets: [0, 10), [10, 20) … [90, 100].
pub const BUCKETS: usize = 10;

#[derive(Debug, Clone, Serialize)]
pub struct AgentFigures {
    pub agent_id: String,
    pub calls: usize,
    pub mean_score: f64,
    pub mean_machine_score: f64,
    pub vetoed: usize,
    pub findings: usize,
    /// Mean score per day of the report's days (None: no call that day).
    pub trend: Vec<Option<f64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Deduction {
    /// Item id, or dimension name.
    pub key: String,
    pub description: String,
    /// Findings still counting (not dismissed).
    pub findings: usize,
    pub points: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ToneDay {
    pub day: String,
    /// Tone warnings pushed live to agents that day.
    pub live_warnings: usize,
    /// agent_tone findings of that day's calls (not dismissed).
    pub findings: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportFigures {
    pub period: Period,
    pub calls: usize,
    pub live_calls: usize,
    pub mean_score: Option<f64>,
    /// Every day from the first call to the last.
    pub days: Vec<String>,
    pub calls_per_day: Vec<usize>,
    /// Calls per score bucket (see [`BUCKETS`]).
    pub score_distribution: Vec<usize>,
    pub agents: Vec<AgentFigures>,
    pub top_items: Vec<Deduction>,
    pub top_dimensions: Vec<Deduction>,
    pub tone: Vec<ToneDay>,
    pub rules: Vec<RuleStats>,
}

/// Every day from `first` to `last` (YYYY-MM-DD), inclusive.
fn days_between(first: &str, last: &str) -> Vec<String> {
    let parse = |d: &str| -> Option<i64> {
        let at = crate::time::parse_date(d)?;
        Some(crate::time::days_from_civil(
            at[0..4].parse().ok()?,
            at[5..7].parse().ok()?,
            at[8..10].parse().ok()?,
        ))
    };
    let (Some(a), Some(b)) = (parse(first), parse(last)) else {
        return vec![first.to_string()];
    };
    // A report over years of calls still lists days, but not unboundedly.
    (a..=b.min(a + 3660))
        .map(|d| crate::time::iso_utc(d * 86_400_000)[..10].to_string())
        .collect()
}

impl ReportFigures {
    pub fn compute(store: &Store, period: &Period) -> crate::Result<ReportFigures> {
        let calls = store.scored_calls(period)?;
        let facts = store.finding_facts(period)?;
        let alerts = store.alert_days(period)?;
        let rules = store.rule_stats(period)?;
        let days = match (calls.first(), calls.last()) {
            (Some(a), Some(b)) => days_between(&a.day, &b.day),
            _ => Vec::new(),
        };
        let day_index: BTreeMap<&str, usize> = days
            .iter()
            .enumerate()
            .map(|(i, d)| (d.as_str(), i))
            .collect();
        let mut calls_per_day = vec![0; days.len()];
        let mut score_distribution = vec![0; BUCKETS];
        for c in &calls {
            if let Some(&i) = day_index.get(c.day.as_str()) {
                calls_per_day[i] += 1;
            }
            let b = ((c.score / 100.0 * BUCKETS as f64).floor() as usize).min(BUCKETS - 1);
            score_distribution[b] += 1;
        }
        let mut by_agent: BTreeMap<String, Vec<&crate::store::ScoredCall>> = BTreeMap::new();
        for c in &calls {
            by_agent
                .entry(c.agent_id.clone().unwrap_or_else(|| "-".into()))
                .or_default()
                .push(c);
        }
        let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let agents = by_agent
            .into_iter()
            .map(|(agent_id, cs)| {
                let trend = days
                    .iter()
                    .map(|d| {
                        let s: Vec<f64> =
                            cs.iter().filter(|c| &c.day == d).map(|c| c.score).collect();
                        mean(&s)
                    })
                    .collect();
                let scores: Vec<f64> = cs.iter().map(|c| c.score).collect();
                let machine: Vec<f64> = cs.iter().map(|c| c.machine_score).collect();
                AgentFigures {
                    agent_id,
                    calls: cs.len(),
                    mean_score: mean(&scores).unwrap_or(0.0),
                    mean_machine_score: mean(&machine).unwrap_or(0.0),
                    vetoed: cs.iter().filter(|c| c.vetoed).count(),
                    findings: cs.iter().map(|c| c.findings).sum(),
                    trend,
                }
            })
            .collect();
        let counting: Vec<_> = facts
            .iter()
            .filter(|f| f.review != ReviewState::Dismissed)
            .collect();
        let rank = |key: &dyn Fn(&crate::store::FindingFact) -> (String, String)| {
            let mut m: BTreeMap<String, Deduction> = BTreeMap::new();
            for f in &counting {
                let (k, d) = key(f);
                let e = m.entry(k.clone()).or_insert(Deduction {
                    key: k,
                    description: d,
                    findings: 0,
                    points: 0.0,
                });
                e.findings += 1;
                e.points += f.points;
            }
            let mut v: Vec<Deduction> = m.into_values().collect();
            v.sort_by(|a, b| {
                b.points
                    .total_cmp(&a.points)
                    .then(b.findings.cmp(&a.findings))
                    .then(a.key.cmp(&b.key))
            });
            v.truncate(10);
            v
        };
        let top_items = rank(&|f| (f.item_id.clone(), f.description.clone()));
        let top_dimensions = rank(&|f| (f.dimension.clone(), String::new()));
        let tone = days
            .iter()
            .map(|d| ToneDay {
                day: d.clone(),
                live_warnings: alerts
                    .iter()
                    .filter(|a| &a.day == d && a.kind == crate::store::AlertKind::Tone)
                    .map(|a| a.count)
                    .sum(),
                findings: counting
                    .iter()
                    .filter(|f| &f.day == d && f.kind == Kind::AgentTone)
                    .count(),
            })
            .collect();
        let scores: Vec<f64> = calls.iter().map(|c| c.score).collect();
        Ok(ReportFigures {
            period: period.clone(),
            calls: calls.len(),
            live_calls: calls
                .iter()
                .filter(|c| c.source == crate::store::Source::Live)
                .count(),
            mean_score: mean(&scores),
            days,
            calls_per_day,
            score_distribution,
            agents,
            top_items,
            top_dimensions,
            tone,
            rules,
        })
    }
}
