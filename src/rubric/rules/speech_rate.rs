//! # What it checks
//!
//! The speaker's average speaking rate over the call, in characters per minute: the recognised
//! characters (Han characters, letters and digits, each digit one syllable) of their sentences
//! divided by the sentences' total duration. One finding when the rate is below `min_cpm` or
//! above `max_cpm`. Calls with less than `min_speech_s` seconds of the speaker's speech
//! (default 20) are not judged: a few words say nothing about a pace.
//!
//! # Why QC cares
//!
//! Agents who rush ("speaking too fast") lose callers, especially the elderly, and force them to
//! ask again; dragging is the opposite complaint. Relaxed Mandarin conversation runs at roughly
//! 200–300 characters per minute. Sentence times come from recognition and include short pauses,
//! so measured rates are a little lower than the true articulation rate; set the bounds with that
//! in mind (and check them against a few of your own calls).
//!
//! # Example
//!
//! ```toml
//! [[items]]
//! id = "speech_rate"
//! description = "语速：每分钟120–330字"
//! dimension = "通话管理"
//! points = 1
//! [items.rule]
//! kind = "speech_rate"
//! min_cpm = 120
//! max_cpm = 330
//! ```

use serde::Deserialize;

use super::{Compile, RuleError, RuleKind};
use crate::rubric::scope::{Window, fmt_num};
use crate::rubric::{CallFacts, Finding, Item};
use crate::text::spoken_char_count;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    min_cpm: Option<f64>,
    max_cpm: Option<f64>,
    #[serde(default = "default_min_speech")]
    min_speech_s: f64,
}

fn default_min_speech() -> f64 {
    20.0
}

/// A compiled `speech_rate` rule.
#[derive(Debug, Clone)]
pub struct SpeechRate {
    pub min_cpm: Option<f64>,
    pub max_cpm: Option<f64>,
    pub min_speech_s: f64,
}

impl SpeechRate {
    pub(crate) fn compile(table: toml::Table, _cx: &Compile) -> Result<Self, RuleError> {
        let s: Settings = super::settings(table)?;
        super::bounds(s.min_cpm, s.max_cpm, "min_cpm", "max_cpm")?;
        if !(s.min_speech_s.is_finite() && s.min_speech_s >= 0.0) {
            return Err(RuleError::new(
                format!("min_speech_s must be ≥ 0, not {}", s.min_speech_s),
                "min_speech_s",
            ));
        }
        Ok(SpeechRate {
            min_cpm: s.min_cpm,
            max_cpm: s.max_cpm,
            min_speech_s: s.min_speech_s,
        })
    }
}

impl RuleKind for SpeechRate {
    fn check(&self, item: &Item, facts: &CallFacts) -> Vec<Finding> {
        let segs = facts.segments;
        let selected = Window::default().select(segs, item.role);
        let seconds: f64 = selected
            .iter()
            .map(|&i| (segs[i].end - segs[i].start).max(0.0))
            .sum();
        if seconds < self.min_speech_s || seconds <= 0.0 {
            return Vec::new();
        }
        let chars: usize = selected
            .iter()
            .map(|&i| spoken_char_count(&segs[i].text))
            .sum();
        let cpm = chars as f64 / seconds * 60.0;
        let too = if self.min_cpm.is_some_and(|lo| cpm < lo) {
            "slowly"
        } else if self.max_cpm.is_some_and(|hi| cpm > hi) {
            "fast"
        } else {
            return Vec::new();
        };
        let limits = match (self.min_cpm, self.max_cpm) {
            (Some(lo), Some(hi)) => format!("{}–{}", fmt_num(lo), fmt_num(hi)),
            (Some(lo), None) => format!("at least {}", fmt_num(lo)),
            (None, Some(hi)) => format!("at most {}", fmt_num(hi)),
            (None, None) => String::new(),
        };
        let evidence = format!(
            "{} spoke too {too}: {cpm:.0} characters per minute (allowed {limits}) over {seconds:.1} s of speech",
            item.role.as_str()
        );
        let first = selected[0];
        let last = selected[selected.len() - 1];
        vec![Finding::new(
            item,
            Some(segs[first].role),
            segs[first].start,
            segs[last].end,
            evidence,
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{agent, caller, run};

    const ITEM: &str = r#"
id = "speech_rate"
description = "speech rate"
points = 1
[items.rule]
kind = "speech_rate"
min_cpm = 120
max_cpm = 330
"#;

    /// `n` sentences of 10 characters, each lasting `secs`.
    fn agent_talk(n: usize, secs: f64) -> Vec<crate::asr::Segment> {
        (0..n)
            .map(|k| {
                let t = k as f64 * (secs + 1.0);
                agent(t, t + secs, "一二三四五六七八九十")
            })
            .collect()
    }

    #[test]
    fn normal_pace_passes() {
        // 10 characters in 2.4 s = 250 cpm.
        assert!(run(ITEM, &agent_talk(10, 2.4)).is_empty());
    }

    #[test]
    fn too_fast_and_too_slow_are_found() {
        // 10 characters in 1.5 s = 400 cpm.
        let f = run(ITEM, &agent_talk(20, 1.5));
        assert_eq!(f.len(), 1);
        assert!(
            f[0].evidence.contains("400 characters per minute"),
            "{}",
            f[0].evidence
        );
        assert!(f[0].evidence.contains("too fast"));
        // 10 characters in 6 s = 100 cpm.
        let f = run(ITEM, &agent_talk(5, 6.0));
        assert_eq!(f.len(), 1);
        assert!(f[0].evidence.contains("too slowly"));
    }

    #[test]
    fn short_speech_and_caller_speech_are_not_judged() {
        assert!(run(ITEM, &agent_talk(3, 1.5)).is_empty());
        let s = [caller(0.0, 30.0, "好"), agent(31.0, 32.0, "好的")];
        assert!(run(ITEM, &s).is_empty());
    }
}
