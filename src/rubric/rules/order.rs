//! # What it checks
//!
//! That one of the `first` phrases is said before one of the `then` phrases. When a `then`
//! phrase is heard and none of `first` was heard earlier in the call (by the item's role), one
//! finding points at that `then` phrase. A call where no `then` phrase is heard has nothing to
//! order and no finding: whether a phrase must be said at all is `required_phrase`'s job.
//!
//! # Why QC cares
//!
//! Scripts have a sequence: ask "还有其他可以帮您的吗" before saying goodbye, verify who is
//! calling before reading out a case's details, warn an abusive caller ("请使用文明用语") before
//! hanging up on them. Saying the right words in the wrong order — "再见" without first asking
//! whether the caller needs anything else — cuts callers off, and is what this kind catches.
//!
//! # Example
//!
//! ```toml
//! [[items]]
//! id = "ask_before_goodbye"
//! description = "道别前先询问是否还有其他需求"
//! dimension = "服务规范"
//! points = 1
//! [items.rule]
//! kind = "order"
//! first = ["还有其他可以帮您", "还有其他问题吗"]
//! then = ["再见"]
//! ```

use serde::Deserialize;

use super::{Compile, RuleError, RuleKind, quoted_list};
use crate::rubric::matcher::PhraseSet;
use crate::rubric::scope::{self, Window};
use crate::rubric::{CallFacts, Finding, Item};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    first: Vec<String>,
    then: Vec<String>,
    max_distance: Option<f64>,
}

/// A compiled `order` rule.
#[derive(Debug, Clone)]
pub struct Order {
    pub first: PhraseSet,
    pub then: PhraseSet,
    first_labels: Vec<String>,
}

impl Order {
    pub(crate) fn compile(table: toml::Table, cx: &Compile) -> Result<Self, RuleError> {
        let s: Settings = super::settings(table)?;
        super::non_empty("first", &s.first)?;
        super::non_empty("then", &s.then)?;
        let tolerance = super::tolerance(s.max_distance)?;
        Ok(Order {
            first: cx.phrases("first", &s.first, tolerance)?,
            then: cx.phrases("then", &s.then, tolerance)?,
            first_labels: s.first,
        })
    }
}

impl RuleKind for Order {
    fn check(&self, item: &Item, facts: &CallFacts) -> Vec<Finding> {
        let segs = facts.segments;
        let selected = Window::default().select(segs, item.role);
        // Runs are in time order, so (run, token) orders hits in time.
        let runs = scope::runs(segs, &selected);
        let earliest = |set: &PhraseSet| {
            runs.iter().enumerate().find_map(|(r, run)| {
                set.find(&run.tokens)
                    .first()
                    .map(|h| ((r, h.hit.start), h.phrase, h.hit.end))
            })
        };
        let Some(((r, start), phrase, end)) = earliest(&self.then) else {
            return Vec::new();
        };
        if earliest(&self.first).is_some_and(|(at, _, _)| at < (r, start)) {
            return Vec::new();
        }
        let run = &runs[r];
        let (t0, t1) = run.span(segs, start, end);
        let evidence = format!(
            "said \"{}\" (「{}」) without {} before it",
            run.excerpt(start, end),
            self.then.phrases[phrase].label,
            quoted_list(self.first_labels.iter().map(String::as_str))
        );
        vec![Finding::new(item, Some(run.role), t0, t1, evidence)]
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{agent, caller, run};

    const ITEM: &str = r#"
id = "ask_before_goodbye"
description = "ask before goodbye"
points = 1
[items.rule]
kind = "order"
first = ["还有其他可以帮您"]
then = ["再见"]
"#;

    #[test]
    fn right_order_passes() {
        let s = [
            agent(30.0, 32.0, "请问还有其他可以帮您的吗？"),
            caller(32.5, 33.0, "没有了"),
            agent(33.5, 35.0, "感谢您的来电，再见。"),
        ];
        assert!(run(ITEM, &s).is_empty());
    }

    #[test]
    fn goodbye_without_asking_is_found() {
        let s = [agent(33.5, 35.0, "好的，再见。")];
        let f = run(ITEM, &s);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].start, f[0].end), (33.5, 35.0));
        assert!(f[0].evidence.contains("【再见】"), "{}", f[0].evidence);
    }

    #[test]
    fn wrong_order_is_found_and_within_one_sentence_too() {
        let s = [
            agent(30.0, 31.0, "再见"),
            agent(31.2, 33.0, "还有其他可以帮您的吗"),
        ];
        assert_eq!(run(ITEM, &s).len(), 1);
        let s = [agent(30.0, 33.0, "还有其他可以帮您的吗？没有的话再见")];
        assert!(run(ITEM, &s).is_empty());
    }

    #[test]
    fn nothing_to_order_is_no_finding() {
        assert!(run(ITEM, &[agent(0.0, 2.0, "您好")]).is_empty());
    }
}
