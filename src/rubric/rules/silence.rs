//! # What it checks
//!
//! Dead air: stretches longer than `max_gap_s` seconds in which neither party speaks, between
//! the first and the last speech of the call. Gaps are measured on the voice-activity regions of
//! the roles in scope (both, by default), never on ASR segment times, which stretch across
//! pauses. A gap is explained — no finding — when the last sentence either party said before it
//! (ending at most `lookback_s` seconds, default 15, before the gap) contains one of
//! `exceptions` ("请稍等", "我帮您查一下": an announced hold; the agent's last sentence counts
//! even when the caller answered "好" after it). An explained hold longer than
//! `hold_max_s` (when set) is still a finding, and so is one the agent comes back from without
//! any of `return_phrases` (感谢您的耐心等待 / 让您久等了) in their first sentence after it, when
//! that list is given (a pause shorter than `max_gap_s` needs none). One finding per gap.
//!
//! With `observe_from_s` set, every other gap at least that long — an announced hold within the
//! rules, or a pause below `max_gap_s` — is recorded as an **observation**: a finding with 0
//! points that never counts in the score, so trainers see every hold and every long silence.
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
//! return_phrases = ["感谢您的耐心等待", "让您久等了"]
//! observe_from_s = 5
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
    #[serde(default)]
    return_phrases: Vec<String>,
    observe_from_s: Option<f64>,
    max_distance: Option<f64>,
}

/// How long after a hold the agent's thank-you may come (their first sentence, within this).
const RETURN_WITHIN_S: f64 = 15.0;

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
    pub return_phrases: PhraseSet,
    pub observe_from_s: Option<f64>,
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
        if let Some(o) = s.observe_from_s
            && !(o.is_finite() && o > 0.0)
        {
            return Err(RuleError::new(
                format!("observe_from_s must be > 0 seconds, not {o}"),
                "observe_from_s",
            ));
        }
        let tolerance = super::tolerance(s.max_distance)?;
        Ok(Silence {
            max_gap_s: s.max_gap_s,
            exceptions: cx.phrases("exceptions", &s.exceptions, tolerance)?,
            lookback_s: s.lookback_s,
            hold_max_s: s.hold_max_s,
            return_phrases: cx.phrases("return_phrases", &s.return_phrases, tolerance)?,
            observe_from_s: s.observe_from_s,
        })
    }

    /// The agent's first sentence after a hold ending at `gap_end`, and whether it thanks or
    /// apologises: None when the agent said nothing within [`RETURN_WITHIN_S`].
    fn returned_with<'a>(&self, facts: &'a CallFacts, gap_end: f64) -> Option<(&'a str, bool)> {
        facts
            .segments
            .iter()
            .filter(|s| s.role != crate::audio::Role::Caller)
            .filter(|s| s.end > gap_end && s.start < gap_end + RETURN_WITHIN_S)
            .min_by(|a, b| a.start.total_cmp(&b.start))
            .map(|s| {
                let thanked = !self
                    .return_phrases
                    .find(&matcher::tokenize(&s.text))
                    .is_empty();
                (s.text.as_str(), thanked)
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

impl Silence {
    /// The finding (deduction or observation) of a gap from `t` to `start`, if it gets one.
    fn judge_gap(&self, item: &Item, facts: &CallFacts, t: f64, start: f64) -> Option<Finding> {
        let gap = start - t;
        let limit = fmt_num(self.max_gap_s);
        let observed = self.observe_from_s.is_some_and(|o| gap >= o);
        let observation =
            |e: String| observed.then(|| Finding::observation(item, None, t, start, e));
        let Some(said) = self.explanation(item, facts, t) else {
            if gap > self.max_gap_s {
                let e = format!("neither party spoke for {gap:.1} s (limit {limit} s)");
                return Some(Finding::new(item, None, t, start, e));
            }
            return observation(format!(
                "silence of {gap:.1} s (within the {limit} s limit)"
            ));
        };
        if let Some(h) = self.hold_max_s.filter(|&h| gap > h) {
            let e = format!(
                "hold of {gap:.1} s after \"{said}\" is longer than {} s",
                fmt_num(h)
            );
            return Some(Finding::new(item, None, t, start, e));
        }
        let back = if self.return_phrases.is_empty() {
            None
        } else {
            self.returned_with(facts, start)
        };
        match back {
            // A pause shorter than the dead-air limit needs no thank-you.
            Some((first, false)) if gap > self.max_gap_s => {
                let e = format!(
                    "hold of {gap:.1} s after \"{said}\" ended without a thank-you or apology (came back with \"{first}\")"
                );
                Some(Finding::new(item, None, t, start, e))
            }
            Some((first, _)) => observation(format!(
                "announced hold of {gap:.1} s after \"{said}\", came back with \"{first}\" (within the rules)"
            )),
            None => observation(format!(
                "announced hold of {gap:.1} s after \"{said}\" (within the rules)"
            )),
        }
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
                let observe = self.observe_from_s.is_some_and(|o| gap >= o);
                if (gap > self.max_gap_s || observe)
                    && let Some(f) = self.judge_gap(item, facts, t, start)
                {
                    out.push(f);
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

    const HOLDS: &str = r#"
id = "dead_air"
description = "dead air"
points = 2
max_count = 1
[items.rule]
kind = "silence"
max_gap_s = 10
exceptions = ["请稍等", "我帮您查询"]
hold_max_s = 60
return_phrases = ["感谢您的耐心等待", "让您久等了"]
observe_from_s = 5
"#;

    #[test]
    fn a_hold_within_the_rules_is_an_observation_and_one_without_thanks_a_deduction() {
        // The 15 s announced hold of the issue: no deduction, but on the record.
        let s = [
            agent(20.0, 23.0, "请您稍等，我帮您查询一下"),
            agent(38.0, 41.0, "感谢您的耐心等待，查到了"),
        ];
        let f = run(HOLDS, &s);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert!(f[0].observation && f[0].points == 0.0, "{f:#?}");
        assert!(
            f[0].evidence.starts_with("announced hold of 15.0 s"),
            "{}",
            f[0].evidence
        );
        // The same hold, back without a thank-you or apology: a deduction.
        let s = [
            agent(20.0, 23.0, "请您稍等，我帮您查询一下"),
            agent(38.0, 41.0, "查到了，您这个要去区里办"),
        ];
        let f = run(HOLDS, &s);
        assert_eq!(f.len(), 1);
        assert!(!f[0].observation && f[0].points == 2.0);
        assert!(
            f[0].evidence.contains("without a thank-you"),
            "{}",
            f[0].evidence
        );
        // A short pause after 请稍等 needs no thank-you: an observation.
        let s = [
            agent(20.0, 22.0, "请稍等"),
            agent(28.0, 30.0, "好的，查到了"),
        ];
        let f = run(HOLDS, &s);
        assert_eq!(f.len(), 1);
        assert!(f[0].observation);
    }

    #[test]
    fn pauses_below_the_limit_are_observations_that_never_count() {
        let s = [
            agent(0.0, 2.0, "您好"),
            caller(8.0, 10.0, "喂"), // 6 s: observed
            agent(10.5, 12.0, "请讲"),
            caller(13.0, 14.0, "嗯"),  // 1 s: nothing
            agent(30.0, 31.0, "喂？"), // 16 s unexplained: deduction
            caller(45.0, 46.0, "在"),  // 14 s unexplained: deduction past max_count
        ];
        let f = run(HOLDS, &s);
        let kinds: Vec<(bool, f64)> = f.iter().map(|f| (f.observation, f.points)).collect();
        assert_eq!(
            kinds,
            vec![(true, 0.0), (false, 2.0), (false, 0.0)],
            "{f:#?}"
        );
        // The observation took no place in the item's count: the first deduction has points.
        let r = super::super::testing::rubric(HOLDS);
        let regions = regions_of(&s);
        let facts = crate::rubric::CallFacts {
            duration_s: 47.0,
            segments: &s,
            speech: &regions,
            tone: &[],
        };
        let (_, score) = crate::rubric::check(&r, &facts);
        assert_eq!(score.deductions, 2.0);
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
