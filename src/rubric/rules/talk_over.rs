//! # What it checks
//!
//! Interruptions: the item's role (the agent, by default) starts speaking while the other party
//! is speaking, and both keep talking together for more than `min_ms` milliseconds. Measured on
//! the voice-activity regions of the two channels, so it needs a two-channel recording (a mono
//! mix has no finding). One finding per interruption, spanning the overlap; use `max_count` to
//! deduct per occurrence up to a cap. The other party interrupting the agent is not the agent's
//! fault and is not counted (use `role = "caller"` to count that instead, `"both"` for either).
//!
//! # Why QC cares
//!
//! Talking over a caller — cutting into their complaint before they finish — is one of the
//! standard timing items next to dead air and speed, and a common trigger of complaints. Short
//! overlaps are normal in conversation ("嗯", "好的" while the other is finishing) and voice
//! activity is padded by about 0.1 s, so only overlaps longer than `min_ms` count.
//!
//! # Example
//!
//! ```toml
//! [[items]]
//! id = "talk_over"
//! description = "抢话：坐席打断来电人超过1秒"
//! dimension = "通话管理"
//! points = 1
//! max_count = 3
//! role = "agent"
//! [items.rule]
//! kind = "talk_over"
//! min_ms = 1000
//! ```

use serde::Deserialize;

use super::{Compile, RuleError, RuleKind};
use crate::audio::Role;
use crate::rubric::scope::RoleScope;
use crate::rubric::{CallFacts, Finding, Item};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    min_ms: f64,
}

/// A compiled `talk_over` rule.
#[derive(Debug, Clone)]
pub struct TalkOver {
    pub min_ms: f64,
}

impl TalkOver {
    pub(crate) fn compile(table: toml::Table, _cx: &Compile) -> Result<Self, RuleError> {
        let s: Settings = super::settings(table)?;
        if !(s.min_ms.is_finite() && s.min_ms >= 0.0) {
            return Err(RuleError::new(
                format!("min_ms must be ≥ 0, not {}", s.min_ms),
                "min_ms",
            ));
        }
        Ok(TalkOver { min_ms: s.min_ms })
    }

    /// Interruptions of `listener` by `speaker`: (start, overlap seconds).
    fn interruptions(&self, facts: &CallFacts, speaker: Role, listener: Role) -> Vec<(f64, f64)> {
        let regions = |role: Role| -> Vec<(f64, f64)> {
            facts
                .speech
                .iter()
                .filter(|r| r.role == role)
                .flat_map(|r| r.regions.iter().map(|g| (g.start, g.end)))
                .collect()
        };
        let theirs = regions(listener);
        let mut out = Vec::new();
        for (start, end) in regions(speaker) {
            let overlap = theirs
                .iter()
                .filter(|&&(a, b)| a < start && start < b)
                .map(|&(_, b)| b.min(end) - start)
                .fold(0.0, f64::max);
            if overlap * 1000.0 > self.min_ms {
                out.push((start, overlap));
            }
        }
        out
    }
}

impl RuleKind for TalkOver {
    fn check(&self, item: &Item, facts: &CallFacts) -> Vec<Finding> {
        let pairs: &[(Role, Role)] = match item.role {
            RoleScope::Agent => &[(Role::Agent, Role::Caller)],
            RoleScope::Caller => &[(Role::Caller, Role::Agent)],
            RoleScope::Both => &[(Role::Agent, Role::Caller), (Role::Caller, Role::Agent)],
        };
        let mut out = Vec::new();
        for &(speaker, listener) in pairs {
            for (start, overlap) in self.interruptions(facts, speaker, listener) {
                let evidence = format!(
                    "{speaker} started while the {listener} was speaking and talked over them for \
                     {overlap:.1} s (limit {} ms)",
                    self.min_ms
                );
                out.push(Finding::new(
                    item,
                    Some(speaker),
                    start,
                    start + overlap,
                    evidence,
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{agent, caller, run};

    const ITEM: &str = r#"
id = "talk_over"
description = "talk over"
points = 1
max_count = 2
[items.rule]
kind = "talk_over"
min_ms = 1000
"#;

    #[test]
    fn each_interruption_is_a_finding_and_deductions_are_capped() {
        let s = [
            caller(0.0, 10.0, "我跟你说这个事情已经很久了"),
            agent(4.0, 12.0, "你先听我说"),
            caller(13.0, 20.0, "你听我说完"),
            agent(15.0, 17.0, "不是"),
            caller(21.0, 30.0, "总之就是"),
            agent(25.0, 27.0, "行行行"),
        ];
        let f = run(ITEM, &s);
        assert_eq!(f.len(), 3);
        assert_eq!((f[0].start, f[0].end), (4.0, 10.0));
        assert!(f[0].evidence.contains("6.0 s"), "{}", f[0].evidence);
        let points: Vec<f64> = f.iter().map(|f| f.points).collect();
        assert_eq!(points, vec![1.0, 1.0, 0.0]);
    }

    #[test]
    fn short_overlaps_and_the_caller_interrupting_are_not_counted() {
        let s = [
            caller(0.0, 5.0, "就是这样"),
            agent(4.6, 8.0, "好的"),
            caller(7.0, 9.0, "还有"),
        ];
        assert!(run(ITEM, &s).is_empty());
    }
}
