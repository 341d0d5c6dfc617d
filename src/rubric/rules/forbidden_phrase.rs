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
//! Real agents seldom repeat the textbook, so an item can also judge sentences by what they do
//! (see *禁语 by meaning* below): `patterns` — constructions with slots (`[[items.rule.patterns]]`
//! tables with `pattern`, `what`, `example`, optional `unless`, `requires`, `not`); `scorer =
//! { min = 0.9 }` — the rubric's learned sentence scorer fires when the item's category is the
//! most probable label of a sentence and at least `min`; `category` — the scorer label and
//! corpus label the item answers for (default: its id); `excused_by` — constructions that,
//! anywhere in the speaker's turn, excuse every hit of the item (an offer to transfer, an
//! alternative: "这个不归我们管，我帮您转给街道" is a referral, not 推诿). A sentence gets at most
//! one finding per item, phrase hits first; construction and scorer hits are excused like phrases
//! (negated, quoted, reported) and also when the sentence relays someone's words ("您说物业让您
//! 自己去找，是吗") or is the caller's complaint to the hotline ("你们每次都说办不了"). The evidence
//! names the construction, or the scorer's probability and the nearest training example.
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

use std::sync::Arc;

use serde::Deserialize;

use super::{Compile, RuleError, RuleKind};
use crate::rubric::grammar::Pattern;
use crate::rubric::matcher::{PhraseSet, Token, Tolerance};
use crate::rubric::scope::{self, Window};
use crate::rubric::sentence::SentenceScorer;
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
    #[serde(default)]
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
    /// Constructions with slots (see [`crate::rubric::grammar`]).
    #[serde(default)]
    patterns: Vec<PatternSpec>,
    /// The learned sentence scorer's part in this item.
    scorer: Option<ScorerSpec>,
    /// Constructions that, anywhere in the speaker's turn, excuse pattern and scorer hits (an
    /// offer to transfer, an alternative).
    #[serde(default)]
    excused_by: Vec<String>,
    /// The 禁语 category this item answers for: the scorer's label and the corpus label of
    /// `callqc rules check-text` (default: the item's id).
    category: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternSpec {
    pattern: String,
    what: String,
    example: String,
    #[serde(default)]
    unless: Vec<String>,
    #[serde(default)]
    requires: Vec<String>,
    #[serde(default)]
    not: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScorerSpec {
    min: f64,
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
    /// Constructions matched sentence by sentence.
    pub patterns: Vec<Construction>,
    /// Constructions that excuse pattern and scorer hits anywhere in the turn.
    pub excused_by: Vec<Pattern>,
    /// The category this item answers for (scorer label, corpus label).
    pub category: String,
    /// The sentence scorer, the index of this item's label in it, and the least probability.
    pub scorer: Option<ScorerUse>,
}

/// A documented construction of an item.
#[derive(Debug, Clone)]
pub struct Construction {
    pub pattern: Pattern,
    pub what: String,
    pub example: String,
    pub unless: Vec<Pattern>,
    /// The sentence must also hold one of these (e.g. an address to the caller, 你 / 您).
    pub requires: Vec<Pattern>,
    pub not: Vec<String>,
}

/// How an item uses the sentence scorer.
#[derive(Debug, Clone)]
pub struct ScorerUse {
    pub model: Arc<SentenceScorer>,
    pub label: usize,
    pub min: f32,
}

impl ForbiddenPhrase {
    pub(crate) fn compile(table: toml::Table, cx: &Compile) -> Result<Self, RuleError> {
        let s: Settings = super::settings(table)?;
        if s.phrases.is_empty()
            && s.standalone.is_empty()
            && s.patterns.is_empty()
            && s.scorer.is_none()
        {
            super::non_empty("phrases", &s.phrases)?;
        }
        let category = s.category.clone().unwrap_or_else(|| cx.item_id.clone());
        let compile_pattern = |key: &str, text: &str| {
            Pattern::parse(text).map_err(|e| RuleError::new(format!("{key} 「{text}」: {e}"), key))
        };
        let mut patterns = Vec::with_capacity(s.patterns.len());
        for spec in &s.patterns {
            let c = Construction {
                pattern: compile_pattern("patterns", &spec.pattern)?,
                what: spec.what.clone(),
                example: spec.example.clone(),
                unless: spec
                    .unless
                    .iter()
                    .map(|u| compile_pattern("patterns", u))
                    .collect::<Result<_, _>>()?,
                requires: spec
                    .requires
                    .iter()
                    .map(|u| compile_pattern("patterns", u))
                    .collect::<Result<_, _>>()?,
                not: spec.not.clone(),
            };
            // The documented behaviour is checked at load: an example the pattern misses (or a
            // counter-example it catches) is a mistake in the rubric, said at once.
            if c.sentence_hit(&c.example).is_none() {
                return Err(RuleError::new(
                    format!(
                        "pattern 「{}」 does not catch its own example 「{}」",
                        spec.pattern, spec.example
                    ),
                    "patterns",
                ));
            }
            if let Some(n) = c.not.iter().find(|n| c.sentence_hit(n).is_some()) {
                return Err(RuleError::new(
                    format!(
                        "pattern 「{}」 catches its counter-example 「{n}」",
                        spec.pattern
                    ),
                    "patterns",
                ));
            }
            patterns.push(c);
        }
        let excused_by = s
            .excused_by
            .iter()
            .map(|u| compile_pattern("excused_by", u))
            .collect::<Result<_, _>>()?;
        let scorer = match (&s.scorer, &cx.scorer) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(RuleError::new(
                    "scorer needs the rubric's sentence_model (the trained model's path, \
                     relative to the rubric)",
                    "scorer",
                ));
            }
            (Some(spec), Some(model)) => {
                if !(0.0..=1.0).contains(&spec.min) {
                    return Err(RuleError::new(
                        format!("scorer.min is a probability in 0..1, not {}", spec.min),
                        "scorer",
                    ));
                }
                let label = model.label(&category).ok_or_else(|| {
                    RuleError::new(
                        format!(
                            "the sentence model {} has no label '{category}' (it has {:?}); \
                             set `category`",
                            model.path.display(),
                            model.card.labels
                        ),
                        "scorer",
                    )
                })?;
                Some(ScorerUse {
                    model: Arc::clone(model),
                    label,
                    min: spec.min as f32,
                })
            }
        };
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
            patterns,
            excused_by,
            category,
            scorer,
        })
    }
}

/// Frames that relay someone else's words, for constructions and the scorer (which judge whole
/// sentences, so the clause check of phrases is not enough): the agent confirming what the
/// caller reported ("您说物业让您自己去找，是吗"), the caller's own complaints about the hotline
/// ("你们每次都说办不了"), and a third party's words ("医院说挂不上号就是挂不上号").
const RELAY_FRAMES: &[&str] = &[
    "[你您](是|刚才|刚刚|之前|上次)?(说|讲|提到|反映|反应)",
    "[你您]的意思是",
    "复述",
    "(他|她|他们|她们|人家|对方|那边|物业|社区|街道|居委会|村委会|城管|单位|领导|部门|工作人员|别人|有人|邻居|公司|客服|派出所|医院|商家|房东|师傅|保安|接线员|施工方|供电所|学校|开发商|那个人|的人)…(说|讲|告诉|承诺|答复|表示|骂|让)",
];

/// Words that mark a sentence as the caller's, wherever they are in it: complaints addressed to
/// the hotline as 你们, a caller asking for a guarantee. Text judged without roles (the corpus,
/// a mono call nobody can split) still must not turn them into the agent's 禁语.
const CALLER_MARKERS: &[&str] = &[
    "你们(上次|每次|上回|就|都|总|老|是不是|到底|能不能|怎么|这|凭什么|保证|说|的说法|的人|那个|接线员|热线)",
    "(给我|跟我)(保证|打包票|个准话)",
    "我(就|只)?想知道",
];

static CALLER: std::sync::LazyLock<Vec<Pattern>> = std::sync::LazyLock::new(|| {
    CALLER_MARKERS
        .iter()
        .map(|f| Pattern::parse(f).expect("built-in caller markers parse (tested)"))
        .collect()
});

static RELAY: std::sync::LazyLock<Vec<Pattern>> = std::sync::LazyLock::new(|| {
    RELAY_FRAMES
        .iter()
        .map(|f| Pattern::parse(f).expect("built-in relay frames parse (tested)"))
        .collect()
});

/// Does a relay frame end, inside sentence `s..e`, at or before token `at` (`at = e`: anywhere
/// in the sentence), or a caller marker occur anywhere in it?
fn relayed(tokens: &[Token], s: usize, e: usize, at: usize) -> bool {
    RELAY.iter().any(|f| {
        f.find(tokens, s, e)
            .is_some_and(|(_, end)| end <= at.max(s + 1))
    }) || CALLER.iter().any(|f| f.find(tokens, s, e).is_some())
}

/// Characters that end a sentence: patterns and the scorer judge one sentence at a time.
const SENTENCE_ENDS: &[char] = &['。', '.', '！', '!', '？', '?', '；', ';', '\n'];

impl Construction {
    /// Where the construction is in one written sentence, unless excused there (a test of the
    /// pattern alone: negation, quotes and reported speech are the rule's checks).
    pub fn sentence_hit(&self, text: &str) -> Option<(usize, usize)> {
        let tokens = crate::rubric::matcher::tokenize(text);
        self.find(&tokens, 0, tokens.len())
    }

    /// The construction in `tokens[from..to]`, unless one of its `unless` is there too or none
    /// of its `requires` is.
    fn find(&self, tokens: &[Token], from: usize, to: usize) -> Option<(usize, usize)> {
        let hit = self.pattern.find(tokens, from, to)?;
        let excused = self
            .unless
            .iter()
            .any(|u| u.find(tokens, from, to).is_some());
        let required = self.requires.is_empty()
            || self
                .requires
                .iter()
                .any(|r| r.find(tokens, from, to).is_some());
        (!excused && required).then_some(hit)
    }
}

/// The sentences of a written text, split where [`sentences`] splits a run (for training the
/// scorer on the sentences it will judge, not on whole paragraphs).
pub fn split_sentences(text: &str) -> impl Iterator<Item = &str> {
    text.split(SENTENCE_ENDS)
        .map(str::trim)
        .filter(|s| s.chars().any(char::is_alphanumeric))
}

/// The sentences of a run as token ranges: split at sentence-ending punctuation and where one
/// recognised segment ends and the next begins.
pub fn sentences(run: &scope::Run) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..run.tokens.len() {
        let (a, b) = (run.tokens[i - 1].source, run.tokens[i].source);
        let punct = run.text[a + 1..b].iter().any(|c| SENTENCE_ENDS.contains(c));
        if punct || run.locate(i - 1).0 != run.locate(i).0 {
            out.push((start, i));
            start = i;
        }
    }
    if start < run.tokens.len() {
        out.push((start, run.tokens.len()));
    }
    out
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

impl ForbiddenPhrase {
    /// Is a construction hit at token `at` (or, with `at = None`, a scorer hit on the whole
    /// sentence `s..e`) excused: negated, quoted, or relayed?
    fn excused_at(&self, run: &scope::Run, (s, e): (usize, usize), at: Option<usize>) -> bool {
        let at_token = at.unwrap_or(s);
        if at.is_some() && self.negated(&run.tokens, at_token) {
            return true;
        }
        let c = run.tokens[at_token].source;
        if self.ignore_quoted && run.is_quoted(c) {
            return true;
        }
        self.ignore_reported
            && (Self::reported(run, c) || relayed(&run.tokens, s, e, at.unwrap_or(e)))
    }

    /// Does one of `excused_by` occur in the sentence `s..e` of the run? (A sentence, not the
    /// whole turn: a mono call's turn can hold many utterances, and a later offer to help does not
    /// excuse an earlier refusal.)
    fn excused_in(&self, run: &scope::Run, (s, e): (usize, usize)) -> bool {
        self.excused_by
            .iter()
            .any(|p| p.find(&run.tokens, s, e).is_some())
    }

    /// Findings of the constructions and the scorer, one at most per sentence, in sentences
    /// without a phrase finding (`taken`: token ranges already reported).
    fn by_meaning(
        &self,
        item: &Item,
        facts: &CallFacts,
        run: &scope::Run,
        taken: &[(usize, usize)],
        out: &mut Vec<Finding>,
    ) {
        if self.patterns.is_empty() && self.scorer.is_none() {
            return;
        }
        for (s, e) in sentences(run) {
            if self.excused_in(run, (s, e)) {
                continue;
            }
            if taken.iter().any(|&(a, b)| a < e && s < b) {
                continue;
            }
            let hit = self.patterns.iter().find_map(|c| {
                let (a, b) = c.find(&run.tokens, s, e)?;
                (!self.excused_at(run, (s, e), Some(a))).then_some((c, a, b))
            });
            let sentence = run.quote(s, e);
            let judged =
                self.scorer
                    .as_ref()
                    .and_then(|u| match u.model.judge(&sentence, u.label) {
                        Ok(j) => j.map(|j| (u, j)),
                        Err(err) => {
                            tracing::warn!("sentence scorer: {err}");
                            None
                        }
                    });
            let scored = |(u, j): &(&ScorerUse, crate::rubric::sentence::Judgement)| {
                format!("scorer {} p {:.2}", self.category, j.probability)
                    + &if j.probability >= u.min {
                        format!(" ≥ {:.2}", u.min)
                    } else {
                        String::new()
                    }
            };
            if let Some((c, a, b)) = hit {
                let mut evidence = format!(
                    "said \"{}\" (construction 「{}」: {}",
                    run.excerpt(a, b),
                    c.pattern.source,
                    c.what
                );
                if let Some(j) = &judged {
                    evidence.push_str("; ");
                    evidence.push_str(&scored(j));
                }
                evidence.push(')');
                let (start, end) = run.span(facts.segments, a, b);
                out.push(Finding::new(item, Some(run.role), start, end, evidence));
                continue;
            }
            let Some(j) = judged else { continue };
            let (u, judgement) = &j;
            if !(judgement.top && judgement.probability >= u.min)
                || self.excused_at(run, (s, e), None)
            {
                continue;
            }
            let mut evidence = format!("said \"{}\" ({}", run.excerpt(s, e), scored(&j));
            if let Some((example, sim)) = u.model.nearest(u.label, &sentence) {
                evidence.push_str(&format!("; nearest example 「{example}」 {sim:.2}"));
            }
            evidence.push(')');
            let (start, end) = run.span(facts.segments, s, e);
            out.push(Finding::new(item, Some(run.role), start, end, evidence));
        }
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
            let mut taken = Vec::new();
            // A transfer or an alternative offered in the turn makes a stated limit a referral.
            let sentences = sentences(&run);
            for h in self.phrases.find(&run.tokens) {
                let hit = h.hit;
                let sentence = sentences
                    .iter()
                    .copied()
                    .find(|&(s, e)| s <= hit.start && hit.start < e)
                    .unwrap_or((0, run.tokens.len()));
                if self.excused_in(&run, sentence) {
                    continue;
                }
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
                taken.push((hit.start, hit.end));
            }
            self.by_meaning(item, facts, &run, &taken, &mut out);
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
