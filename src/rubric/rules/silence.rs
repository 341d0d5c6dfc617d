//! # What it checks
//!
//! Dead air: stretches longer than `max_gap_s` seconds in which neither party speaks, between
//! the first and the last speech of the call. Gaps are measured on the voice-activity regions of
//! the roles in scope (both, by default), never on ASR segment times, which stretch across
//! pauses. A gap is explained — no finding — when the last sentence either party said before it
//! (ending at most `lookback_s` seconds, default 15, before the gap) contains one of
//! `exceptions` ("请稍等", "我帮您查一下": an announced hold; the agent's last sentence counts
//! even when the caller answered "好" after it). An explained hold longer than
//! `hold_max_s` (when set) is still a finding. One finding per gap.
//!
//! # Why QC cares
//!
//! Unexplained silence leaves the caller wondering whether anyone is still there ("喂？还在吗？"),
//! and long holds are a standard QC item next to talk-over and speed. An agent who says "请稍等，
//! 我帮您查一下" and then looks something up is doing the job; the exception list keeps that hold
//! from being marked as dead air, while `hold_max_s` still catches holds that go on too long.
//!
//! # Example
//!
//! ```toml
//! [[items]]
//! id = "dead_air"
//! description = "静音：双方超过10秒无人说话（已告知稍等的除外）"
//! dimension = "通话管理"
//! points = 2
//! role = "both"
//! [items.rule]
//! kind = "silence"
//! max_gap_s = 10
//! exceptions = ["请稍等", "稍等一下", "我帮您查一下", "正在为您查询"]
//! hold_max_s = 60
//! ```

use serde::Deserialize;

use super::{Compile, RuleError, RuleKind};
use crate::rubric::matcher::{self, PhraseSet};
use crate::rubric::scope::fmt_num;
use crate::rubric::{CallFacts, Finding, Item};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    max_gap_s: f64,
    #[serde(default)]
    exceptions: Vec<String>,
    #[serde(default = "default_lookback")]
    lookback_s: f64,
    hold_max_s: Option<f64>,
    max_distance: Option<f64>,
}

fn default_lookback() -> f64 {
    15.0
}

/// A compiled `silence` rule.
#[derive(Debug, Clone)]
pub struct Silence {
    pub max_gap_s: f64,
    pub exceptions: PhraseSet,
    pub lookback_s: f64,
    pub hold_max_s: Option<f64>,
}

impl Silence {
    pub(crate) fn compile(table: toml::Table, cx: &Compile) -> Result<Self, RuleError> {
        let s: Settings = super::settings(table)?;
        for (v, key) in [(s.max_gap_s, "max_gap_s"), (s.lookback_s, "lookback_s")] {
            if !(v.is_finite() && v > 0.0) {
                return Err(RuleError::new(
                    format!("{key} must be > 0 seconds, not {v}"),
                    key,
                ));
            }
        }
        if let Some(h) = s.hold_max_s
            && !(h.is_finite() && h >= s.max_gap_s)
        {
            return Err(RuleError::new(
                format!(
                    "hold_max_s ({h}) must be at least max_gap_s ({})",
                    s.max_gap_s
                ),
                "hold_max_s",
            ));
        }
        let tolerance = super::tolerance(s.max_distance)?;
        Ok(Silence {
            max_gap_s: s.max_gap_s,
            exceptions: cx.phrases("exceptions", &s.exceptions, tolerance)?,
            lookback_s: s.lookback_s,
            hold_max_s: s.hold_max_s,
        })
    }

    /// The sentence that explains a gap starting at `gap_start`, if any.
    fn explanation<'a>(
        &self,
        item: &Item,
        facts: &'a CallFacts,
        gap_start: f64,
    ) -> Option<&'a str> {
        if self.exceptions.is_empty() {
            return None;
        }
        // The last sentence before the gap, per speaker: the agent's "请稍等" is often followed
        // by the caller's "好", which must not hide it.
        let mut last: Vec<&crate::asr::Segment> = Vec::new();
        for s in facts.segments.iter().filter(|s| item.role.includes(s.role)) {
            if s.start >= gap_start || s.end < gap_start - self.lookback_s {
                continue;
            }
            match last.iter_mut().find(|l| l.role == s.role) {
                Some(l) if l.start < s.start => *l = s,
                Some(_) => {}
                None => last.push(s),
            }
        }
        last.into_iter()
            .find(|s| !self.exceptions.find(&matcher::tokenize(&s.text)).is_empty())
            .map(|s| s.text.as_str())
    }
}

impl RuleKind for Silence {
    fn check(&self, item: &Item, facts: &CallFacts) -> Vec<Finding> {
        let mut spans: Vec<(f64, f64)> = facts
            .speech
            .iter()
            .filter(|r| item.role.includes(r.role))
            .flat_map(|r| r.regions.iter().map(|g| (g.start, g.end)))
            .collect();
        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut out = Vec::new();
        let mut spoken_until: Option<f64> = None;
        for (start, end) in spans {
            if let Some(t) = spoken_until {
                let gap = start - t;
                if gap > self.max_gap_s {
                    let evidence = match self.explanation(item, facts, t) {
                        None => Some(format!(
                            "neither party spoke for {gap:.1} s (limit {} s)",
                            fmt_num(self.max_gap_s)
                        )),
                        Some(said) => self.hold_max_s.filter(|&h| gap > h).map(|h| {
                            format!(
                                "hold of {gap:.1} s after \"{said}\" is longer than {} s",
                                fmt_num(h)
                            )
                        }),
                    };
                    if let Some(e) = evidence {
                        out.push(Finding::new(item, None, t, start, e));
                    }
                }
            }
            spoken_until = Some(spoken_until.map_or(end, |t: f64| t.max(end)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{agent, caller, regions_of, run, run_with};

    const ITEM: &str = r#"
id = "dead_air"
description = "dead air"
points = 2
[items.rule]
kind = "silence"
max_gap_s = 10
exceptions = ["请稍等", "我帮您查一下"]
hold_max_s = 60
"#;

    #[test]
    fn unexplained_silence_is_found_with_its_length() {
        let s = [
            agent(18.0, 20.2, "嗯，好的。"),
            caller(34.2, 35.5, "喂？喂？还在吗？"),
        ];
        let f = run(ITEM, &s);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].start, f[0].end, f[0].role), (20.2, 34.2, None));
        assert_eq!(f[0].evidence, "neither party spoke for 14.0 s (limit 10 s)");
    }

    #[test]
    fn announced_hold_is_not_dead_air_even_after_the_callers_reply() {
        let s = [
            agent(20.0, 22.0, "好的，请稍等，我帮您查一下。"),
            caller(22.4, 22.8, "好。"),
            agent(34.8, 40.0, "让您久等了。"),
        ];
        assert!(run(ITEM, &s).is_empty());
        // Recognised with errors, still an announced hold.
        let s = [
            agent(20.0, 22.0, "好的，請稍等，我幫您差一下。"),
            agent(34.8, 40.0, "让您久等了。"),
        ];
        assert!(run(ITEM, &s).is_empty());
    }

    #[test]
    fn too_long_a_hold_is_still_found() {
        let s = [agent(20.0, 22.0, "请稍等"), agent(92.0, 94.0, "让您久等了")];
        let f = run(ITEM, &s);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].evidence.starts_with("hold of 70.0 s"),
            "{}",
            f[0].evidence
        );
    }

    #[test]
    fn silence_is_measured_on_speech_regions_not_segment_times() {
        // Whisper stretched the first segment over the pause; VAD knows better.
        let s = [agent(0.0, 20.0, "嗯，好的。"), caller(21.0, 22.0, "喂？")];
        let mut regions = regions_of(&s);
        regions[0].regions[0].end = 5.0;
        assert_eq!(run_with(ITEM, &s, &regions, &[]).len(), 1);
        assert!(run(ITEM, &s).is_empty());
    }

    #[test]
    fn overlapping_speech_and_short_pauses_are_not_silence() {
        let s = [
            agent(0.0, 5.0, "您好"),
            caller(4.0, 12.0, "我想问一下"),
            agent(6.0, 8.0, "嗯"),
            agent(21.0, 23.0, "好的"),
        ];
        assert!(run(ITEM, &s).is_empty());
    }
}
