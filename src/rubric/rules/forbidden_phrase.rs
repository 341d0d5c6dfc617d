//! # What it checks
//!
//! That the speaker never says any of `phrases` (禁语). Every occurrence is one finding, quoting
//! the sentence with the phrase marked 【…】. A hit is ignored when it lies inside a match of one
//! of `exceptions` ("不是管不了" excuses its "管不了"; exceptions are matched strictly, allowing
//! homophones and one near-homophone, so that a loose match never excuses a real violation), when
//! `negation = true` (the default) and it comes right after a negator (不是, 并不是, 并非, 不是说,
//! 没有说, 没说, 不会说, 没有, or a bare 不, which is what a recogniser leaves of 不是) that is
//! not part of an A-not-A question (是不是, 有没有), when `ignore_quoted = true` (the default) and
//! it is inside quotation marks, or when `ignore_reported = true` (the default) and its clause
//! reports what a third party said ("物业说他们管不了": a subject such as 他 / 他们 / 物业 / 社区 /
//! 对方 / 那边, then 说 / 讲 / 告诉 / 表示 / 称, before the phrase and after the last comma or
//! stop). Matching tolerates ASR errors like every phrase rule, but never edits a negation
//! character, so "我也有办法" does not match "我也没办法".
//!
//! Generic words (不行, 不懂, 不对, 不知道 …) are 禁语 only as a curt reply, never inside a
//! sentence ("不行的话我们再帮您联系" is fine): list them under `standalone`, and they fire only
//! when they are the whole of a speaker's turn, allowing fillers (啊 吧 呢 嘛 了 的 哦 嗯 …) and a
//! leading 我 / 我们. They are matched as homophones only.
//!
//! # Why QC cares
//!
//! Flat refusals and buck-passing ("这事政府管不了", "不归我们管", "我也没办法", "你自己去找…")
//! are the 禁语 every 12345 centre deducts for, and insulting a caller is usually a veto item
//! (一票否决). Keyword spotting alone is known to misfire on negated forms ("我们不是管不了")
//! and on the caller's own words; exceptions, the negation check and role scope (agent only by
//! default) keep those from becoming false deductions.
//!
//! # Example
//!
//! ```toml
//! [[items]]
//! id = "refusal"
//! description = "禁语：推诿、拒绝来电人"
//! dimension = "服务用语"
//! points = 5
//! max_count = 3
//! [items.rule]
//! kind = "forbidden_phrase"
//! phrases = ["管不了", "不归我们管", "我也没办法", "你自己去找"]
//! exceptions = ["不是管不了"]
//! standalone = ["不行", "不知道"]
//! ```

use serde::Deserialize;

use super::{Compile, RuleError, RuleKind};
use crate::rubric::matcher::{PhraseSet, Token, Tolerance};
use crate::rubric::scope::{self, Window};
use crate::rubric::{CallFacts, Finding, Item};

/// Words that, right before a forbidden phrase, deny it ("我们不是管不了").
/// A bare 不 is on the list because recognisers drop the 是 of 不是 ("我们不管不了"), and 不
/// right before a 禁语 is otherwise not Chinese ("不不归我们管").
/// 不会 / 不用 / 不必 / 无需 / 不需要 promise the opposite ("不会让您自己去找", "不用您自己去找").
pub const NEGATORS: &[&str] = &[
    "不是",
    "并不是",
    "并非",
    "不是说",
    "没有说",
    "没说",
    "不会说",
    "不会让",
    "不会",
    "不用",
    "不必",
    "无需",
    "不需要",
    "没有",
    "不",
];

/// Who a reported sentence is about: a third party whose words the agent relays.
const REPORTING_SUBJECTS: &[&str] = &[
    "他们",
    "她们",
    "他",
    "她",
    "人家",
    "对方",
    "那边",
    "物业",
    "社区",
    "街道",
    "居委会",
    "城管",
    "单位",
    "领导",
    "部门",
    "工作人员",
    "别人",
    "有人",
    "邻居",
    "公司",
    "客服",
    "派出所",
];

/// The verbs of reported speech.
const REPORTING_VERBS: &[&str] = &["说", "讲", "告诉", "表示", "称", "答复"];

/// Characters that end a clause (a reported clause does not reach past them).
const CLAUSE_ENDS: &[char] = &[
    '，', ',', '。', '.', '！', '!', '？', '?', '；', ';', '：', ':', '、', '\n',
];

/// Fillers a curt reply may carry besides its word ("不行啊", "不知道呢", "我不懂").
const FILLERS: &[char] = &[
    '啊', '呀', '吧', '呢', '嘛', '了', '的', '哦', '噢', '嗯', '哎', '唉', '呃', '哈', '喔',
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    phrases: Vec<String>,
    #[serde(default)]
    exceptions: Vec<String>,
    #[serde(default = "yes")]
    negation: bool,
    #[serde(default = "yes")]
    ignore_quoted: bool,
    #[serde(default = "yes")]
    ignore_reported: bool,
    #[serde(default)]
    standalone: Vec<String>,
    max_distance: Option<f64>,
}

fn yes() -> bool {
    true
}

/// A compiled `forbidden_phrase` rule.
#[derive(Debug, Clone)]
pub struct ForbiddenPhrase {
    pub phrases: PhraseSet,
    pub exceptions: PhraseSet,
    /// Present when the negation check is on.
    pub negators: Option<PhraseSet>,
    pub ignore_quoted: bool,
    pub ignore_reported: bool,
    /// Words that are 禁语 only as the whole of a turn.
    pub standalone: PhraseSet,
}

impl ForbiddenPhrase {
    pub(crate) fn compile(table: toml::Table, cx: &Compile) -> Result<Self, RuleError> {
        let s: Settings = super::settings(table)?;
        if s.phrases.is_empty() && s.standalone.is_empty() {
            super::non_empty("phrases", &s.phrases)?;
        }
        let tolerance = super::tolerance(s.max_distance)?;
        let negators = if s.negation {
            let list: Vec<String> = NEGATORS.iter().map(|n| n.to_string()).collect();
            // Negators must be heard as they are (homophones only) right before the hit.
            Some(Compile::default().phrases("negation", &list, Tolerance::Max(0.0))?)
        } else {
            None
        };
        Ok(ForbiddenPhrase {
            phrases: cx.phrases("phrases", &s.phrases, tolerance)?,
            // Strictly (homophones and one near-homophone): a loose exception would excuse real
            // violations ("管不了，管不了" is one edit from the exception "不是管不了").
            exceptions: cx.phrases("exceptions", &s.exceptions, Tolerance::Max(0.5))?,
            negators,
            ignore_quoted: s.ignore_quoted,
            ignore_reported: s.ignore_reported,
            standalone: cx.phrases("standalone", &s.standalone, Tolerance::Max(0.0))?,
        })
    }
}

impl ForbiddenPhrase {
    /// Does a negator end right before token `at`? Not when it is the second half of an
    /// A-not-A question ("你是不是神经病", "有没有…"): that asks, it does not deny.
    fn negated(&self, tokens: &[Token], at: usize) -> bool {
        let Some(negators) = &self.negators else {
            return false;
        };
        negators.phrases.iter().any(|n| {
            if !n.ends_at(tokens, at) {
                return false;
            }
            let start = at - n.len();
            let verb = n.tokens().last().expect("negators are not empty");
            !(start > 0 && tokens[start - 1].sounds_like(verb))
        })
    }
}

impl ForbiddenPhrase {
    /// Does the clause holding char `at` of the run report a third party's words before it?
    fn reported(run: &scope::Run, at: usize) -> bool {
        let begin = run.text[..at]
            .iter()
            .rposition(|c| CLAUSE_ENDS.contains(c))
            .map_or(0, |p| p + 1);
        let clause: String = run.text[begin..at].iter().collect();
        REPORTING_SUBJECTS.iter().any(|s| {
            clause.match_indices(s).any(|(i, _)| {
                let rest = &clause[i + s.len()..];
                REPORTING_VERBS.iter().any(|v| rest.contains(v))
            })
        })
    }

    /// The standalone word this turn consists of, if it is one: the turn's tokens less fillers
    /// and a leading 我 / 我们 sound like the word, all of it.
    fn standalone_hit(&self, run: &scope::Run) -> Option<usize> {
        let mut core: Vec<&crate::rubric::matcher::Token> = run
            .tokens
            .iter()
            .filter(|t| !FILLERS.contains(&t.ch))
            .collect();
        if core.first().is_some_and(|t| t.ch == '我') {
            core.remove(0);
            if core.first().is_some_and(|t| t.ch == '们') {
                core.remove(0);
            }
        }
        self.standalone.phrases.iter().position(|p| {
            p.len() == core.len() && p.tokens().iter().zip(&core).all(|(a, b)| b.sounds_like(a))
        })
    }
}

impl RuleKind for ForbiddenPhrase {
    fn check(&self, item: &Item, facts: &CallFacts) -> Vec<Finding> {
        let selected = Window::default().select(facts.segments, item.role);
        let mut out = Vec::new();
        for run in scope::runs(facts.segments, &selected) {
            if let Some(p) = self.standalone_hit(&run) {
                let (start, end) = run.span(facts.segments, 0, run.tokens.len());
                let text: String = run.text.iter().collect();
                let evidence = format!(
                    "replied only \"{}\" (禁语「{}」 as a curt reply)",
                    text.trim(),
                    self.standalone.phrases[p].label
                );
                out.push(Finding::new(item, Some(run.role), start, end, evidence));
                continue;
            }
            let excused = self.exceptions.find(&run.tokens);
            for h in self.phrases.find(&run.tokens) {
                let hit = h.hit;
                let len = hit.end - hit.start;
                if excused.iter().any(|e| e.hit.overlap(&hit) * 2 >= len) {
                    continue;
                }
                if self.negated(&run.tokens, hit.start) {
                    continue;
                }
                let at = run.char_range(hit.start, hit.end).0;
                if self.ignore_quoted && run.is_quoted(at) {
                    continue;
                }
                if self.ignore_reported && Self::reported(&run, at) {
                    continue;
                }
                let phrase = &self.phrases.phrases[h.phrase];
                let mut evidence = format!(
                    "said \"{}\" (禁语「{}」",
                    run.excerpt(hit.start, hit.end),
                    phrase.label
                );
                if hit.cost > 0 {
                    evidence.push_str(&format!(", heard as 「{}」", run.quote(hit.start, hit.end)));
                }
                evidence.push(')');
                let (start, end) = run.span(facts.segments, hit.start, hit.end);
                out.push(Finding::new(item, Some(run.role), start, end, evidence));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{agent, caller, run};

    const REFUSAL: &str = r#"
id = "refusal"
description = "refusal"
points = 5
max_count = 3
[items.rule]
kind = "forbidden_phrase"
phrases = ["管不了", "不归我们管", "我也没办法", "你自己去找"]
exceptions = ["不是管不了"]
"#;

    #[test]
    fn every_occurrence_is_a_finding_with_the_phrase_marked() {
        let s = [
            agent(24.6, 26.9, "这事不归我们管，你自己去找物业！"),
            caller(27.0, 29.0, "你这是什么态度？"),
            agent(29.8, 32.3, "我也没办法，这种事情我们处理不了！"),
        ];
        let f = run(REFUSAL, &s);
        assert_eq!(f.len(), 3, "{f:#?}");
        assert_eq!(
            f[0].evidence,
            "said \"这事【不归我们管】，你自己去找物业！\" (禁语「不归我们管」)"
        );
        assert!(f[1].evidence.contains("【你自己去找】"));
        assert_eq!((f[2].start, f[2].end), (29.8, 32.3));
        assert!(f.iter().all(|f| f.points == 5.0));
    }

    #[test]
    fn findings_past_max_count_deduct_nothing() {
        let s = [agent(0.0, 9.0, "管不了，管不了，管不了，管不了")];
        let f = run(REFUSAL, &s);
        assert_eq!(f.len(), 4);
        let points: Vec<f64> = f.iter().map(|f| f.points).collect();
        assert_eq!(points, vec![5.0, 5.0, 5.0, 0.0]);
    }

    #[test]
    fn negated_and_excepted_forms_are_not_violations() {
        for said in [
            "您别着急，这个问题我们不是管不了，需要转给市场监管部门",
            "这个问题我们不似管不聊", // exception heard with a near-homophone and a homophone
            "我们并不是管不了",
            "我们不管不了", // 是 lost in recognition
            "没有说不归我们管",
            "您说的“不归我们管”是哪个部门说的？",
        ] {
            assert!(run(REFUSAL, &[agent(0.0, 5.0, said)]).is_empty(), "{said}");
        }
    }

    #[test]
    fn the_caller_saying_it_is_not_a_violation() {
        let s = [caller(
            0.0,
            5.0,
            "上次打电话问，那边说这事不归我们管。我也没办法了。",
        )];
        assert!(run(REFUSAL, &s).is_empty());
    }

    #[test]
    fn asr_errors_still_match() {
        for heard in [
            "這事不歸我們管",     // Traditional
            "这事不规我们管",     // homophone 规 for 归
            "我也没半法",         // homophone 半 for 办
            "你自己去照物业",     // homophone 照 for 找
            "我也没法，这种事情", // dropped 办: one edit in five syllables
        ] {
            assert_eq!(run(REFUSAL, &[agent(0.0, 3.0, heard)]).len(), 1, "{heard}");
        }
    }

    #[test]
    fn opposite_meaning_does_not_match() {
        for said in [
            "我也有办法",
            "这个归我们管",
            "您不用自己去找",
            "他自己去找了物业",
        ] {
            assert!(run(REFUSAL, &[agent(0.0, 3.0, said)]).is_empty(), "{said}");
        }
    }

    #[test]
    fn veto_item_zeroes_the_score() {
        let r = super::super::testing::rubric(
            r#"
id = "insult"
description = "辱骂"
points = 10
veto = true
[items.rule]
kind = "forbidden_phrase"
phrases = ["神经病"]
max_distance = 0
"#,
        );
        // "是不是" asks; it does not negate.
        let s = [agent(0.0, 3.0, "你是不是神经病啊")];
        let regions = super::super::testing::regions_of(&s);
        let facts = crate::rubric::CallFacts {
            duration_s: 5.0,
            segments: &s,
            speech: &regions,
            tone: &[],
        };
        let (f, score) = crate::rubric::check(&r, &facts);
        assert_eq!(f.len(), 1);
        assert!(score.vetoed);
        assert_eq!((score.total, score.deductions), (0.0, 10.0));
    }
}
