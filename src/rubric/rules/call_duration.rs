//! # What it checks
//!
//! The length of the whole recording: one finding when it is shorter than `min_s` or longer
//! than `max_s` seconds (either bound may be left out).
//!
//! # Why QC cares
//!
//! Very short calls are often abandoned, cut off or hung up by the agent (abnormal hang-up);
//! very long ones point at a caller who could not be helped, an agent stuck in a system, or a
//! call that should have been transferred. Neither is necessarily the agent's fault, so centres
//! usually give this item few or no points (`points = 0` flags the call for review without a
//! deduction).
//!
//! # Example
//!
//! ```toml
//! [[items]]
//! id = "call_duration"
//! description = "通话时长异常（少于20秒或超过20分钟），提示复核"
//! dimension = "通话管理"
//! points = 0
//! role = "both"
//! [items.rule]
//! kind = "call_duration"
//! min_s = 20
//! max_s = 1200
//! ```

use serde::Deserialize;

use super::{Compile, RuleError, RuleKind};
use crate::rubric::scope::fmt_num;
use crate::rubric::{CallFacts, Finding, Item};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    min_s: Option<f64>,
    max_s: Option<f64>,
}

/// A compiled `call_duration` rule.
#[derive(Debug, Clone)]
pub struct CallDuration {
    pub min_s: Option<f64>,
    pub max_s: Option<f64>,
}

impl CallDuration {
    pub(crate) fn compile(table: toml::Table, _cx: &Compile) -> Result<Self, RuleError> {
        let s: Settings = super::settings(table)?;
        super::bounds(s.min_s, s.max_s, "min_s", "max_s")?;
        Ok(CallDuration {
            min_s: s.min_s,
            max_s: s.max_s,
        })
    }
}

impl RuleKind for CallDuration {
    fn check(&self, item: &Item, facts: &CallFacts) -> Vec<Finding> {
        let d = facts.duration_s;
        let evidence = if let Some(lo) = self.min_s.filter(|&lo| d < lo) {
            format!("call lasted {d:.1} s, shorter than {} s", fmt_num(lo))
        } else if let Some(hi) = self.max_s.filter(|&hi| d > hi) {
            format!("call lasted {d:.1} s, longer than {} s", fmt_num(hi))
        } else {
            return Vec::new();
        };
        vec![Finding::new(item, None, 0.0, d, evidence)]
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::rubric;
    use crate::rubric::{CallFacts, check};

    fn findings(duration_s: f64) -> Vec<crate::rubric::Finding> {
        let r = rubric(
            r#"
id = "call_duration"
description = "duration"
points = 0
[items.rule]
kind = "call_duration"
min_s = 20
max_s = 1200
"#,
        );
        let facts = CallFacts {
            duration_s,
            segments: &[],
            speech: &[],
            tone: &[],
        };
        check(&r, &facts).0
    }

    #[test]
    fn outside_the_bounds_is_flagged() {
        assert!(findings(180.0).is_empty());
        assert_eq!(
            findings(12.3)[0].evidence,
            "call lasted 12.3 s, shorter than 20 s"
        );
        let f = findings(1500.0);
        assert_eq!(f[0].evidence, "call lasted 1500.0 s, longer than 1200 s");
        assert_eq!((f[0].start, f[0].end, f[0].points), (0.0, 1500.0, 0.0));
    }
}
