//! # What it checks
//!
//! A keyword requirement over a window of the speaker's speech. `keywords` lists terms; a term
//! is a phrase or a list of synonyms (`["办理", "受理", "处理"]`: any of them counts as the
//! term). `regex` adds one more term: a regular expression tried on each sentence as recognised
//! (Simplified, punctuation and digits kept — write `[0-9一二三四五六七八九零幺]` for a digit),
//! which does not count when `exclude_regex` matches the same sentence. `mode` says what a
//! compliant call looks like:
//!
//! - `"any"`: at least one term is heard;
//! - `"all"`: every term is heard;
//! - `"at_least"`: at least `n` different terms are heard;
//! - `"none"`: no term is heard (one finding per hit, like a forbidden phrase without
//!   exceptions).
//!
//! The window (`position`, `within_s`, `within_segments`) works as for `required_phrase`. For
//! the first three modes, one finding names the terms that were missing.
//!
//! # Why QC cares
//!
//! Not every script point is one fixed phrase. Centres check that the agent stated a work number
//! (工号 followed by digits — a regex), confirmed the caller's address or phone number (any of
//! several wordings), or covered all the steps of a procedure (all of several terms). Synonyms
//! keep agents who use their own words from being marked down; the exclusion regex removes known
//! false hits.
//!
//! # Example
//!
//! ```toml
//! [[items]]
//! id = "work_number"
//! description = "开场报工号"
//! dimension = "服务规范"
//! points = 1
//! [items.rule]
//! kind = "keywords"
//! mode = "any"
//! regex = "工号[0-9一二三四五六七八九零幺]{3,6}"
//! exclude_regex = "没有工号"
//! position = "start"
//! within_s = 15
//! ```

use std::collections::BTreeSet;

use regex::Regex;
use serde::Deserialize;

use super::{Compile, RuleError, RuleKind, quoted_list};
use crate::rubric::matcher::PhraseSet;
use crate::rubric::scope::{self, Position, Window};
use crate::rubric::{CallFacts, Finding, Item};
use crate::text::to_simplified;

/// What a compliant call looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Any,
    All,
    AtLeast,
    None,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Term {
    One(String),
    Synonyms(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    mode: Mode,
    n: Option<usize>,
    #[serde(default)]
    keywords: Vec<Term>,
    regex: Option<String>,
    exclude_regex: Option<String>,
    #[serde(default)]
    position: Position,
    within_s: Option<f64>,
    within_segments: Option<usize>,
    max_distance: Option<f64>,
}

/// A compiled `keywords` rule.
#[derive(Debug, Clone)]
pub struct Keywords {
    pub mode: Mode,
    /// How many different terms must be heard (`all`: every term; `any`: 1).
    pub required: usize,
    /// One phrase set per term, labelled by the term's first phrase.
    pub terms: Vec<PhraseSet>,
    pub regex: Option<Regex>,
    pub exclude_regex: Option<Regex>,
    pub window: Window,
}

fn compile_regex(key: &str, pattern: &str) -> Result<Regex, RuleError> {
    Regex::new(pattern).map_err(|e| {
        // The regex crate's message spans lines (it draws a caret); keep the last line.
        let why = e.to_string();
        let why = why
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("invalid")
            .trim()
            .trim_start_matches("error: ")
            .to_string();
        RuleError::new(
            format!("{key} {pattern:?} is not a valid regex: {why}"),
            key,
        )
    })
}

impl Keywords {
    pub(crate) fn compile(table: toml::Table, cx: &Compile) -> Result<Self, RuleError> {
        let s: Settings = super::settings(table)?;
        let tolerance = super::tolerance(s.max_distance)?;
        let mut terms = Vec::new();
        for t in &s.keywords {
            let group = match t {
                Term::One(p) => std::slice::from_ref(p),
                Term::Synonyms(g) => g.as_slice(),
            };
            terms.push(cx.term("keywords", group, tolerance)?);
        }
        let regex = s
            .regex
            .as_deref()
            .map(|r| compile_regex("regex", r))
            .transpose()?;
        let exclude_regex = s
            .exclude_regex
            .as_deref()
            .map(|r| compile_regex("exclude_regex", r))
            .transpose()?;
        if exclude_regex.is_some() && regex.is_none() {
            return Err(RuleError::new(
                "exclude_regex needs a regex to exclude from",
                "exclude_regex",
            ));
        }
        let count = terms.len() + usize::from(regex.is_some());
        if count == 0 {
            return Err(RuleError {
                message: "give keywords, a regex or both".into(),
                key: None,
            });
        }
        let required = match (s.mode, s.n) {
            (Mode::AtLeast, Some(n)) if (1..=count).contains(&n) => n,
            (Mode::AtLeast, Some(n)) => {
                return Err(RuleError::new(
                    format!("n must be between 1 and the number of terms ({count}), not {n}"),
                    "n",
                ));
            }
            (Mode::AtLeast, None) => {
                return Err(RuleError::new("mode \"at_least\" needs n", "mode"));
            }
            (_, Some(_)) => {
                return Err(RuleError::new("n is only used with mode \"at_least\"", "n"));
            }
            (Mode::Any, None) => 1,
            (Mode::All, None) => count,
            (Mode::None, None) => 0,
        };
        Ok(Keywords {
            mode: s.mode,
            required,
            terms,
            regex,
            exclude_regex,
            window: super::window(s.position, s.within_s, s.within_segments)?,
        })
    }

    fn term_label(&self, t: usize) -> String {
        match self.terms.get(t) {
            Some(set) => set.phrases[0].label.clone(),
            None => format!("/{}/", self.regex.as_ref().map_or("", |r| r.as_str())),
        }
    }
}

/// One heard term: which term, where, and the evidence.
struct TermHit {
    term: usize,
    role: crate::audio::Role,
    start: f64,
    end: f64,
    excerpt: String,
}

impl RuleKind for Keywords {
    fn check(&self, item: &Item, facts: &CallFacts) -> Vec<Finding> {
        let segs = facts.segments;
        let selected = self.window.select(segs, item.role);
        let mut hits: Vec<TermHit> = Vec::new();
        for run in scope::runs(segs, &selected) {
            for (t, set) in self.terms.iter().enumerate() {
                for h in set.find(&run.tokens) {
                    let (start, end) = run.span(segs, h.hit.start, h.hit.end);
                    hits.push(TermHit {
                        term: t,
                        role: run.role,
                        start,
                        end,
                        excerpt: run.excerpt(h.hit.start, h.hit.end),
                    });
                }
            }
        }
        if let Some(re) = &self.regex {
            for &i in &selected {
                let sentence = to_simplified(&segs[i].text);
                if self
                    .exclude_regex
                    .as_ref()
                    .is_some_and(|x| x.is_match(&sentence))
                {
                    continue;
                }
                for m in re.find_iter(&sentence) {
                    hits.push(TermHit {
                        term: self.terms.len(),
                        role: segs[i].role,
                        start: segs[i].start,
                        end: segs[i].end,
                        excerpt: format!(
                            "{}【{}】{}",
                            &sentence[..m.start()],
                            m.as_str(),
                            &sentence[m.end()..]
                        ),
                    });
                }
            }
        }
        hits.sort_by(|a, b| a.start.total_cmp(&b.start));
        let where_ = self.window.describe(item.role);
        if self.mode == Mode::None {
            return hits
                .into_iter()
                .map(|h| {
                    let evidence = format!(
                        "said \"{}\" (keyword 「{}」 must not be said)",
                        h.excerpt,
                        self.term_label(h.term)
                    );
                    Finding::new(item, Some(h.role), h.start, h.end, evidence)
                })
                .collect();
        }
        let heard: BTreeSet<usize> = hits.iter().map(|h| h.term).collect();
        if heard.len() >= self.required {
            return Vec::new();
        }
        let count = self.terms.len() + usize::from(self.regex.is_some());
        let missing: Vec<String> = (0..count)
            .filter(|t| !heard.contains(t))
            .map(|t| self.term_label(t))
            .collect();
        let evidence = format!(
            "{} of {} required keywords heard {where_} (missing {})",
            heard.len(),
            self.required,
            quoted_list(missing.iter().map(String::as_str))
        );
        let (start, end, role) = match (selected.first(), selected.last()) {
            (Some(&a), Some(&b)) => (segs[a].start, segs[b].end, Some(segs[a].role)),
            _ => (0.0, facts.duration_s, None),
        };
        vec![Finding::new(item, role, start, end, evidence)]
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{agent, caller, run};

    fn item(rule: &str) -> String {
        format!(
            "id = \"k\"\ndescription = \"k\"\npoints = 1\n[items.rule]\nkind = \"keywords\"\n{rule}"
        )
    }

    #[test]
    fn any_all_at_least_none() {
        let s = [agent(0.0, 5.0, "请问您的联系电话是多少？您的地址在哪里？")];
        let any = item("mode = \"any\"\nkeywords = [\"联系电话\", \"身份证号\"]");
        assert!(run(&any, &s).is_empty());
        let all = item("mode = \"all\"\nkeywords = [\"联系电话\", \"身份证号\", \"地址\"]");
        let f = run(&all, &s);
        assert_eq!(f.len(), 1);
        assert!(f[0].evidence.contains("2 of 3"), "{}", f[0].evidence);
        assert!(f[0].evidence.contains("「身份证号」"), "{}", f[0].evidence);
        let at_least =
            item("mode = \"at_least\"\nn = 2\nkeywords = [\"联系电话\", \"身份证号\", \"地址\"]");
        assert!(run(&at_least, &s).is_empty());
        let none = item("mode = \"none\"\nkeywords = [\"地址\", \"电话\"]");
        assert_eq!(run(&none, &s).len(), 2);
    }

    #[test]
    fn synonyms_count_as_their_term() {
        let s = [agent(0.0, 5.0, "已经为您受理")];
        let rule = item("mode = \"all\"\nkeywords = [[\"登记\", \"受理\", \"记录\"]]");
        assert!(run(&rule, &s).is_empty());
        // Rubric-level synonyms expand phrases everywhere.
        let text = "name = \"t\"\nversion = \"1\"\nsynonyms = [[\"登记\", \"受理\", \"记录\"]]\n[[items]]\n"
            .to_string()
            + &item("mode = \"any\"\nkeywords = [\"登记\"]");
        let r = crate::rubric::parse(&text, std::path::Path::new("t.toml")).unwrap();
        let regions = super::super::testing::regions_of(&s);
        let facts = crate::rubric::CallFacts {
            duration_s: 6.0,
            segments: &s,
            speech: &regions,
            tone: &[],
        };
        assert!(crate::rubric::check(&r, &facts).0.is_empty());
    }

    #[test]
    fn regex_with_exclusion() {
        let rule = item(
            "mode = \"any\"\nregex = \"工号[0-9一二三四五六七八九零幺]{3,6}\"\nexclude_regex = \"没有工号\"\nposition = \"start\"\nwithin_s = 15",
        );
        assert!(
            run(
                &rule,
                &[agent(0.5, 6.0, "您好，12345热线，工号2051为您服务")]
            )
            .is_empty()
        );
        assert!(run(&rule, &[agent(0.5, 6.0, "您好，工号幺零五一为您服务")]).is_empty());
        assert_eq!(run(&rule, &[agent(0.5, 6.0, "您好，12345热线")]).len(), 1);
        assert_eq!(
            run(&rule, &[agent(0.5, 6.0, "我没有工号2051这个说法")]).len(),
            1
        );
        // The caller's words do not count for an agent item.
        let s = [caller(0.5, 3.0, "工号2051是吧"), agent(3.5, 5.0, "对")];
        assert_eq!(run(&rule, &s).len(), 1);
    }

    #[test]
    fn none_mode_quotes_each_hit() {
        let rule = item("mode = \"none\"\nregex = \"[0-9]{11}\"");
        let f = run(&rule, &[agent(1.0, 4.0, "您的电话是13807311234对吧")]);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].evidence.contains("【13807311234】"),
            "{}",
            f[0].evidence
        );
    }
}
