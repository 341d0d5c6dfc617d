//! # What it checks
//!
//! The tone model's per-window scores for the item's role (the agent, by default): stretches
//! where p(agitated) is at least `threshold` (default: the tone model's own threshold, 0.5) for
//! at least `min_s` seconds (default 2). Stretches are formed as the tone module forms them for
//! its warnings (`tone::agitated_stretches`): overlapping windows are averaged, calm or tense
//! speech ends a stretch, and pauses of up to 2 s without scored speech (the caller talking)
//! do not. One finding per stretch, with its span, length and highest p(agitated).
//!
//! # Why QC cares
//!
//! Impatience, a raised voice and losing one's temper are the attitude items of every hotline
//! sheet — agents who lose their temper twice can be dismissed — and they are exactly what a
//! transcript cannot show: "行行行，我给你登记" reads as compliant. Requiring a minimum length
//! keeps a single loud word from counting as losing one's temper.
//!
//! # Example
//!
//! ```toml
//! [[items]]
//! id = "agent_tone"
//! description = "服务态度：坐席语气激动持续2秒以上"
//! dimension = "服务态度"
//! points = 3
//! max_count = 2
//! [items.rule]
//! kind = "agent_tone"
//! threshold = 0.5
//! min_s = 2
//! ```

use serde::Deserialize;

use super::{Compile, RuleError, RuleKind};
use crate::rubric::scope::fmt_num;
use crate::rubric::{CallFacts, Finding, Item};
use crate::tone::{DEFAULT_THRESHOLD, ToneTrack, agitated_stretches};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default = "default_threshold")]
    threshold: f64,
    #[serde(default = "default_min_s")]
    min_s: f64,
}

fn default_threshold() -> f64 {
    DEFAULT_THRESHOLD
}

fn default_min_s() -> f64 {
    2.0
}

/// A compiled `agent_tone` rule.
#[derive(Debug, Clone)]
pub struct AgentTone {
    pub threshold: f64,
    pub min_s: f64,
}

impl AgentTone {
    pub(crate) fn compile(table: toml::Table, _cx: &Compile) -> Result<Self, RuleError> {
        let s: Settings = super::settings(table)?;
        if !(s.threshold > 0.0 && s.threshold <= 1.0) {
            return Err(RuleError::new(
                format!(
                    "threshold must be a probability in (0, 1], not {}",
                    s.threshold
                ),
                "threshold",
            ));
        }
        if !(s.min_s.is_finite() && s.min_s >= 0.0) {
            return Err(RuleError::new(
                format!("min_s must be ≥ 0 seconds, not {}", s.min_s),
                "min_s",
            ));
        }
        Ok(AgentTone {
            threshold: s.threshold,
            min_s: s.min_s,
        })
    }
}

impl RuleKind for AgentTone {
    fn check(&self, item: &Item, facts: &CallFacts) -> Vec<Finding> {
        let mut out = Vec::new();
        // One track per role: stretches never join two speakers' windows.
        let mut roles: Vec<crate::audio::Role> = facts
            .tone
            .iter()
            .map(|w| w.role)
            .filter(|&r| item.role.includes(r))
            .collect();
        roles.sort();
        roles.dedup();
        for role in roles {
            let mut windows: Vec<_> = facts
                .tone
                .iter()
                .filter(|w| w.role == role)
                .cloned()
                .collect();
            windows.sort_by(|a, b| a.start.total_cmp(&b.start));
            let track = ToneTrack {
                windows,
                baseline: None,
            };
            for (start, end) in agitated_stretches(&track, self.threshold) {
                let length = end - start;
                // A hair of tolerance: the stretch grid is 10 ms.
                if length + 0.005 < self.min_s {
                    continue;
                }
                let peak = track
                    .windows
                    .iter()
                    .filter(|w| w.start < end && w.end > start)
                    .map(|w| w.p_agitated)
                    .fold(0.0, f64::max);
                let evidence = format!(
                    "{role} agitated (p={peak:.2}) for {length:.1} s (threshold {}, at least {} s)",
                    self.threshold,
                    fmt_num(self.min_s)
                );
                out.push(Finding::new(item, Some(role), start, end, evidence));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::run_with;
    use crate::audio::Role;
    use crate::tone::ToneWindow;

    const ITEM: &str = r#"
id = "agent_tone"
description = "tone"
points = 3
max_count = 2
[items.rule]
kind = "agent_tone"
min_s = 2
"#;

    /// Sliding 2 s windows every 0.5 s over [start, end) with p(agitated) `p`.
    fn windows(role: Role, start: f64, end: f64, p: f64) -> Vec<ToneWindow> {
        let mut out = Vec::new();
        let mut t = start;
        while t + 2.0 <= end + 1e-9 {
            out.push(ToneWindow {
                role,
                start: t,
                end: t + 2.0,
                p_calm: 1.0 - p,
                p_tense: 0.0,
                p_agitated: p,
                features: None,
            });
            t += 0.5;
        }
        out
    }

    #[test]
    fn agitated_stretch_is_found_with_span_and_peak() {
        let mut tone = windows(Role::Agent, 0.0, 10.0, 0.05);
        tone.extend(windows(Role::Agent, 24.4, 28.7, 0.83));
        tone.extend(windows(Role::Agent, 30.0, 40.0, 0.1));
        let f = run_with(ITEM, &[], &[], &tone);
        assert_eq!(f.len(), 1);
        assert!(
            (f[0].start - 24.4).abs() < 0.02 && (f[0].end - 28.4).abs() < 0.2,
            "{f:?}"
        );
        assert!(
            f[0].evidence.starts_with("agent agitated (p=0.83) for 4."),
            "{}",
            f[0].evidence
        );
        assert_eq!(f[0].role, Some(Role::Agent));
    }

    #[test]
    fn short_bursts_calm_agents_and_agitated_callers_are_not_findings() {
        let mut tone = windows(Role::Agent, 0.0, 10.0, 0.05);
        // A single agitated 1.5 s window: shorter than min_s.
        tone.push(ToneWindow {
            role: Role::Agent,
            start: 11.0,
            end: 12.5,
            p_calm: 0.3,
            p_tense: 0.0,
            p_agitated: 0.7,
            features: None,
        });
        tone.extend(windows(Role::Caller, 12.0, 30.0, 0.95));
        assert!(run_with(ITEM, &[], &[], &tone).is_empty());
    }
}
