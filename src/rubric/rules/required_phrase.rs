//! # What it checks
//!
//! That the speaker says the listed phrases within a window of their speech: at least
//! `min_matches` different phrases of `phrases` (default 1, i.e. any one of them) must be heard.
//! The window is `position = "start"` (the first `within_s` seconds and/or `within_segments`
//! sentences, counted from the speaker's first words, so ringing or a slow pick-up does not
//! count), `"end"` (the last ones, counted back from their last words) or `"anywhere"`.
//! Phrases match through ASR errors: homophones, near-homophones, dropped characters up to
//! `max_distance`, digits or number words, Traditional characters. One finding when the
//! requirement is not met, spanning the window and quoting what was heard instead; a call in
//! which the speaker said nothing recognisable is a finding too.
//!
//! # Why QC cares
//!
//! The scripted greeting ("您好，XX市12345热线，工号XXXX为您服务，请问有什么可以帮您？") and the
//! closing ("请问还有其他可以帮您的吗？感谢您的来电，再见") head every 12345 QC sheet; a missing
//! greeting is a standard −2. The script has parts that recognition garbles (city, work number),
//! so list the parts separately and require, say, two of them: a misheard work number then never
//! costs the agent points, while "喂，什么事？" still does.
//!
//! # Example
//!
//! ```toml
//! [[items]]
//! id = "greeting"
//! description = "开场白：您好 + 12345热线 + 工号为您服务"
//! dimension = "服务规范"
//! points = 2
//! role = "agent"
//! [items.rule]
//! kind = "required_phrase"
//! phrases = ["您好", "12345热线", "为您服务", "有什么可以帮您"]
//! min_matches = 2
//! position = "start"
//! within_s = 15
//! ```

use std::collections::BTreeSet;

use serde::Deserialize;

use super::{Compile, RuleError, RuleKind, quoted_list};
use crate::rubric::matcher::PhraseSet;
use crate::rubric::scope::{self, Position, Window};
use crate::rubric::{CallFacts, Finding, Item};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    phrases: Vec<String>,
    #[serde(default = "one")]
    min_matches: usize,
    #[serde(default)]
    position: Position,
    within_s: Option<f64>,
    within_segments: Option<usize>,
    max_distance: Option<f64>,
}

fn one() -> usize {
    1
}

/// A compiled `required_phrase` rule.
#[derive(Debug, Clone)]
pub struct RequiredPhrase {
    pub phrases: PhraseSet,
    /// The phrases as written (what `min_matches` counts).
    pub labels: Vec<String>,
    pub min_matches: usize,
    pub window: Window,
}

impl RequiredPhrase {
    pub(crate) fn compile(table: toml::Table, cx: &Compile) -> Result<Self, RuleError> {
        let s: Settings = super::settings(table)?;
        super::non_empty("phrases", &s.phrases)?;
        if s.min_matches == 0 || s.min_matches > s.phrases.len() {
            return Err(RuleError::new(
                format!(
                    "min_matches must be between 1 and the number of phrases ({}), not {}",
                    s.phrases.len(),
                    s.min_matches
                ),
                "min_matches",
            ));
        }
        let tolerance = super::tolerance(s.max_distance)?;
        Ok(RequiredPhrase {
            phrases: cx.phrases("phrases", &s.phrases, tolerance)?,
            labels: s.phrases,
            min_matches: s.min_matches,
            window: super::window(s.position, s.within_s, s.within_segments)?,
        })
    }
}

/// How much of what was heard instead the evidence quotes.
const HEARD_CHARS: usize = 40;

impl RuleKind for RequiredPhrase {
    fn check(&self, item: &Item, facts: &CallFacts) -> Vec<Finding> {
        let selected = self.window.select(facts.segments, item.role);
        let where_ = self.window.describe(item.role);
        let Some((&first, &last)) = selected.first().zip(selected.last()) else {
            return vec![Finding::new(
                item,
                None,
                0.0,
                facts.duration_s,
                format!("no {} recognised", item.role.speech()),
            )];
        };
        let mut heard: BTreeSet<&str> = BTreeSet::new();
        for run in scope::runs(facts.segments, &selected) {
            for h in self.phrases.find(&run.tokens) {
                heard.insert(&self.phrases.phrases[h.phrase].label);
            }
        }
        if heard.len() >= self.min_matches {
            return Vec::new();
        }
        let segs = facts.segments;
        let mut said: String = selected
            .iter()
            .map(|&i| segs[i].text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        if said.chars().count() > HEARD_CHARS {
            said = said.chars().take(HEARD_CHARS).collect::<String>() + "…";
        }
        let missing = self
            .labels
            .iter()
            .filter(|l| !heard.contains(l.as_str()))
            .map(String::as_str);
        let evidence = if self.min_matches == 1 {
            format!(
                "none of {} heard {where_}; heard: \"{said}\"",
                quoted_list(missing)
            )
        } else {
            format!(
                "{} of {} required phrases heard {where_} (missing {}); heard: \"{said}\"",
                heard.len(),
                self.min_matches,
                quoted_list(missing)
            )
        };
        let (start, end) = (segs[first].start, segs[last].end);
        vec![Finding::new(
            item,
            Some(segs[first].role),
            start,
            end,
            evidence,
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{agent, caller, run};

    const GREETING: &str = r#"
id = "greeting"
description = "greeting"
points = 2
[items.rule]
kind = "required_phrase"
phrases = ["您好", "12345热线", "为您服务", "有什么可以帮您"]
min_matches = 2
position = "start"
within_s = 15
"#;

    #[test]
    fn scripted_greeting_passes() {
        let s = [agent(
            0.8,
            7.0,
            "您好，成都市12345热线，工号2051为您服务，请问有什么可以帮您？",
        )];
        assert!(run(GREETING, &s).is_empty());
    }

    #[test]
    fn missing_greeting_is_found_with_what_was_said() {
        let s = [
            agent(0.6, 1.5, "喂，什么事？"),
            caller(2.0, 6.0, "你好，我想问一下"),
        ];
        let f = run(GREETING, &s);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].start, f[0].end, f[0].points), (0.6, 1.5, 2.0));
        assert!(f[0].evidence.contains("0 of 2"), "{}", f[0].evidence);
        assert!(f[0].evidence.contains("喂，什么事？"), "{}", f[0].evidence);
    }

    #[test]
    fn asr_errors_in_the_greeting_do_not_cost_points() {
        for heard in [
            // Homophones and Traditional characters.
            "您好，成都市一二三四五熱線，工號二零五一為您服務",
            // 你 for 您, 幺 for 1, 惹线 for 热线 (homophone), the work number garbled.
            "你好成都市幺二三四五惹线工号而灵五衣为您服务",
            // Dropped characters.
            "您好成都一二三四热线，工号二零五一为您服，请问有什么可以帮您",
        ] {
            let s = [agent(0.8, 7.0, heard)];
            assert!(run(GREETING, &s).is_empty(), "{heard}");
        }
    }

    #[test]
    fn greeting_after_the_window_is_too_late() {
        let s = [
            agent(0.5, 1.0, "喂"),
            agent(20.0, 26.0, "您好，12345热线，为您服务"),
        ];
        assert_eq!(run(GREETING, &s).len(), 1);
    }

    #[test]
    fn the_caller_saying_it_does_not_count() {
        let s = [
            caller(0.5, 3.0, "您好，是12345热线吗，为您服务的那个"),
            agent(3.5, 4.5, "嗯，说吧"),
        ];
        assert_eq!(run(GREETING, &s).len(), 1);
    }

    #[test]
    fn no_agent_speech_is_a_finding() {
        let f = run(GREETING, &[caller(0.5, 3.0, "喂？喂？")]);
        assert_eq!(f.len(), 1);
        assert!(f[0].evidence.contains("no agent speech"));
    }

    #[test]
    fn closing_in_the_last_seconds() {
        let item = r#"
id = "closing"
description = "closing"
points = 2
[items.rule]
kind = "required_phrase"
phrases = ["还有其他可以帮您", "感谢您的来电", "再见"]
position = "end"
within_s = 20
"#;
        let ok = [
            agent(0.5, 5.0, "您好，12345热线"),
            agent(40.0, 42.0, "请问还有其它可以帮您的吗"),
            caller(42.5, 43.0, "没有了"),
            agent(43.5, 45.0, "感谢您的来电，再见"),
        ];
        assert!(run(item, &ok).is_empty());
        let missing = [
            agent(0.5, 5.0, "感谢您的来电"),
            agent(40.0, 44.0, "新单位给您办理增员就可以了"),
            caller(44.5, 45.0, "哦，好的"),
        ];
        let f = run(item, &missing);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].start, 40.0);
    }
}
