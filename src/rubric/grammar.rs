//! # 禁语 patterns: constructions with slots
//!
//! A `forbidden_phrase` item may list `[[items.rule.patterns]]`: constructions an agent builds
//! with words of their own, matched over the (lexicon-corrected) transcript one sentence at a
//! time. Each character is matched by sound (characters whose usual readings agree match, so
//! 推委 matches 推诿, but 会 does not match 快 through its rare reading kuai), never by edits; at
//! least half of a match's characters must be the ones written (all of them in a match of one or
//! two), and numbers and the particle 着 match only themselves. The notation:
//!
//! | notation | matches |
//! | --- | --- |
//! | `跟我们没关系` | these characters, each by sound |
//! | `(这边\|那边)` | one of the alternatives (any notation inside) |
//! | `(这边)?`, `们?` | optionally the group or the single character |
//! | `[你您]` | one of the characters |
//! | `…` (or `...`) | a gap of 0–8 characters inside the sentence |
//! | `{X}` | a slot: 1–4 characters; a later `{X}` must repeat them ("上不了就是上不了") |
//! | `{#}` | a number: 1–6 digits or 一二三…十百千点半 |
//! | `^`, `$` | the start, the end of the sentence (the end may carry particles: 吧 啊 呢 了 …) |
//! | `<` | the start of a clause: of the sentence, or right after a comma, a colon or a space |
//!
//! A pattern table has `pattern` (the construction), `what` (what it catches), `example` (a
//! sentence it must catch) and may have `unless` (constructions that, anywhere in the same
//! sentence, excuse it — a transfer, an alternative), `requires` (constructions of which one
//! must also be in the sentence — e.g. `[你您]`, an address to the caller, for words that in
//! other mouths describe a book or a hotel) and `not` (sentences it must not catch).
//! The examples and counter-examples are checked whenever the rubric loads, so a centre's
//! pattern that does not catch its own example is an error, not a silent miss. Matches are
//! further excused like phrases: right after a negator, inside quotes, or in reported speech.

use super::matcher::{Token, tokenize};

/// How many characters a `…` may skip.
pub const GAP: usize = 8;
/// How many characters a `{X}` slot may hold.
const SLOT_MAX: usize = 4;
/// How many characters a `{#}` number may hold.
const NUMBER_MAX: usize = 6;
/// Characters that form numbers (after normalisation digits are 一二三).
const NUMBER_CHARS: &str = "零一二两三四五六七八九十百千万点半幺";
/// What may follow the end of a sentence's words (`$`).
const PARTICLES: &str = "啊呀吧呢嘛了的哦噢哈呗啦么嗯";

#[derive(Debug, Clone)]
enum Elem {
    Lit(Token),
    Group {
        alts: Vec<Vec<Elem>>,
        optional: bool,
    },
    Gap,
    Slot(usize),
    Number,
    Start,
    ClauseStart,
    End,
}

/// A compiled construction.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The notation as written in the rubric.
    pub source: String,
    seq: Vec<Elem>,
    slots: usize,
}

/// What remains to be matched after the current sequence (a continuation list).
enum Rest<'a> {
    Nil,
    Then(&'a [Elem], &'a Rest<'a>),
}

impl Pattern {
    /// Parse the notation; the error says what is wrong and where.
    pub fn parse(source: &str) -> Result<Pattern, String> {
        let chars: Vec<char> = source.chars().collect();
        let mut slots: Vec<String> = Vec::new();
        let mut pos = 0;
        let seq = parse_seq(&chars, &mut pos, &mut slots, 0)?;
        if pos < chars.len() {
            return Err(format!(
                "unmatched '{}' at character {}",
                chars[pos],
                pos + 1
            ));
        }
        if min_len(&seq) == 0 {
            return Err(
                "a pattern must need at least one character (this one matches nothing)".into(),
            );
        }
        Ok(Pattern {
            source: source.to_string(),
            seq,
            slots: slots.len(),
        })
    }

    /// The first (leftmost, then shortest) match inside `tokens[from..to]`, as a token range.
    pub fn find(&self, tokens: &[Token], from: usize, to: usize) -> Option<(usize, usize)> {
        let mut caps = vec![None; self.slots];
        let span = Span {
            tokens,
            from,
            limit: to,
        };
        (from..to).find_map(|start| {
            caps.iter_mut().for_each(|c| *c = None);
            let st = State {
                free: true,
                exact: 0,
                literals: 0,
            };
            match_seq(&self.seq, &Rest::Nil, &span, start, st, &mut caps).map(|end| (start, end))
        })
    }

    /// Does the pattern match somewhere in `text` (one sentence)?
    pub fn matches_text(&self, text: &str) -> bool {
        let tokens = tokenize(text);
        self.find(&tokens, 0, tokens.len()).is_some()
    }
}

fn parse_seq(
    chars: &[char],
    pos: &mut usize,
    slots: &mut Vec<String>,
    depth: usize,
) -> Result<Vec<Elem>, String> {
    let mut seq = Vec::new();
    while *pos < chars.len() {
        let c = chars[*pos];
        match c {
            ')' | '|' if depth > 0 => break,
            '(' => {
                *pos += 1;
                let mut alts = vec![parse_seq(chars, pos, slots, depth + 1)?];
                while *pos < chars.len() && chars[*pos] == '|' {
                    *pos += 1;
                    alts.push(parse_seq(chars, pos, slots, depth + 1)?);
                }
                if *pos >= chars.len() || chars[*pos] != ')' {
                    return Err("a '(' is never closed".into());
                }
                *pos += 1;
                if alts.iter().any(|a| a.is_empty()) {
                    return Err("an empty alternative inside (…|…): use (…)? instead".into());
                }
                let optional = take(chars, pos, '?');
                seq.push(Elem::Group { alts, optional });
            }
            '[' => {
                *pos += 1;
                let mut alts = Vec::new();
                while *pos < chars.len() && chars[*pos] != ']' {
                    alts.push(literal(chars[*pos])?);
                    *pos += 1;
                }
                if *pos >= chars.len() {
                    return Err("a '[' is never closed".into());
                }
                *pos += 1;
                if alts.is_empty() {
                    return Err("an empty [ ]".into());
                }
                let optional = take(chars, pos, '?');
                seq.push(Elem::Group { alts, optional });
            }
            '{' => {
                let close = chars[*pos..]
                    .iter()
                    .position(|&c| c == '}')
                    .ok_or("a '{' is never closed")?;
                let name: String = chars[*pos + 1..*pos + close].iter().collect();
                *pos += close + 1;
                if name == "#" {
                    seq.push(Elem::Number);
                } else if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphabetic()) {
                    let idx = match slots.iter().position(|s| *s == name) {
                        Some(i) => i,
                        None => {
                            slots.push(name);
                            slots.len() - 1
                        }
                    };
                    seq.push(Elem::Slot(idx));
                } else {
                    return Err(format!(
                        "{{{name}}}: a slot is named by ASCII letters, or {{#}}"
                    ));
                }
            }
            '…' => {
                *pos += 1;
                seq.push(Elem::Gap);
            }
            '^' => {
                *pos += 1;
                seq.push(Elem::Start);
            }
            '$' => {
                *pos += 1;
                seq.push(Elem::End);
            }
            '<' => {
                *pos += 1;
                seq.push(Elem::ClauseStart);
            }
            '.' if chars[*pos..].starts_with(&['.', '.', '.']) => {
                *pos += 3;
                seq.push(Elem::Gap);
            }
            '?' => {
                // Optional single character: the element just parsed.
                let Some(Elem::Lit(t)) = seq.pop() else {
                    return Err(format!(
                        "'?' at character {} follows no character",
                        *pos + 1
                    ));
                };
                *pos += 1;
                seq.push(Elem::Group {
                    alts: vec![vec![Elem::Lit(t)]],
                    optional: true,
                });
            }
            c if c.is_whitespace() => *pos += 1,
            c => {
                seq.extend(literal(c)?);
                *pos += 1;
            }
        }
    }
    Ok(seq)
}

fn take(chars: &[char], pos: &mut usize, want: char) -> bool {
    let yes = *pos < chars.len() && chars[*pos] == want;
    if yes {
        *pos += 1;
    }
    yes
}

/// One written character as the tokens it normalises to (punctuation is an error: sentences are
/// matched without it).
fn literal(c: char) -> Result<Vec<Elem>, String> {
    let tokens = tokenize(&c.to_string());
    if tokens.is_empty() {
        return Err(format!(
            "'{c}' is not matched (punctuation is ignored in transcripts; leave it out)"
        ));
    }
    Ok(tokens.into_iter().map(Elem::Lit).collect())
}

/// The fewest characters a sequence can match.
fn min_len(seq: &[Elem]) -> usize {
    seq.iter()
        .map(|e| match e {
            Elem::Lit(_) | Elem::Slot(_) | Elem::Number => 1,
            Elem::Gap | Elem::Start | Elem::ClauseStart | Elem::End => 0,
            Elem::Group { optional: true, .. } => 0,
            Elem::Group { alts, .. } => alts.iter().map(|a| min_len(a)).min().unwrap_or(0),
        })
        .sum()
}

fn is_number(t: &Token) -> bool {
    NUMBER_CHARS.contains(t.ch)
}

/// The sentence being matched: `tokens[from..limit]`.
struct Span<'t> {
    tokens: &'t [Token],
    from: usize,
    limit: usize,
}

/// Where a match stands: may the next character follow punctuation (at the match's start and
/// after a gap), and how many of the literal characters so far were the very character written.
#[derive(Debug, Clone, Copy)]
struct State {
    free: bool,
    exact: u32,
    literals: u32,
}

/// Was punctuation (or a space) dropped between tokens `pos - 1` and `pos`?
fn break_before(tokens: &[Token], pos: usize) -> bool {
    pos > 0 && tokens[pos].source > tokens[pos - 1].source + 1
}

/// Can `len` tokens from `pos` be taken as one unit (a slot, a number): inside the sentence, the
/// first may follow punctuation only when `free`, and none of the others does?
fn unit(tokens: &[Token], pos: usize, len: usize, limit: usize, free: bool) -> bool {
    pos + len <= limit
        && (free || !break_before(tokens, pos))
        && (pos + 1..pos + len).all(|k| !break_before(tokens, k))
}

/// Enough of the literal characters were written as such: at least half, and all of them when
/// there are only one or two (误解 and 无结 are not 无解 — a two-character match with one
/// homophone is as likely chance as a mishearing).
fn enough_exact(st: State) -> bool {
    if st.literals <= 2 {
        st.exact == st.literals
    } else {
        st.exact * 2 >= st.literals
    }
}

/// A transcript character heard as a pattern's: by sound, except that numbers match only
/// themselves (a date's 9 is 九, never 就), and so does 着, a particle in nearly every
/// description (看着都不像 is not 这都不).
fn sounds_as(heard: &Token, written: &Token) -> bool {
    if is_number(heard) || heard.ch == '着' {
        heard.ch == written.ch
    } else {
        heard.heard_as(written)
    }
}

/// Match `elems` then `rest` at `pos`; the end of the match. Literals and slots never reach
/// across punctuation (only a gap does), and at least half of the literal characters must be
/// the very characters written: homophones cover a misheard character or two, but a match made
/// of homophones alone (午结 for 无解, 高的了 for 告得了) is chance, not what the agent said.
fn match_seq(
    elems: &[Elem],
    rest: &Rest,
    span: &Span,
    pos: usize,
    st: State,
    caps: &mut [Option<(usize, usize)>],
) -> Option<usize> {
    let (tokens, limit) = (span.tokens, span.limit);
    let Some((first, tail)) = elems.split_first() else {
        return match rest {
            Rest::Nil => enough_exact(st).then_some(pos),
            Rest::Then(next, after) => match_seq(next, after, span, pos, st, caps),
        };
    };
    let took = |exact: u32, literals: u32| State {
        free: false,
        exact: st.exact + exact,
        literals: st.literals + literals,
    };
    match first {
        Elem::Lit(t) => (unit(tokens, pos, 1, limit, st.free) && sounds_as(&tokens[pos], t))
            .then(|| {
                let exact = u32::from(tokens[pos].ch == t.ch);
                match_seq(tail, rest, span, pos + 1, took(exact, 1), caps)
            })
            .flatten(),
        Elem::Gap => (0..=GAP).take_while(|k| pos + k <= limit).find_map(|k| {
            let st = State { free: true, ..st };
            match_seq(tail, rest, span, pos + k, st, caps)
        }),
        Elem::Number => {
            let run = (1..=NUMBER_MAX)
                .take_while(|&len| {
                    unit(tokens, pos, len, limit, st.free) && is_number(&tokens[pos + len - 1])
                })
                .count();
            (1..=run)
                .rev()
                .find_map(|len| match_seq(tail, rest, span, pos + len, took(0, 0), caps))
        }
        Elem::Slot(i) => match caps[*i] {
            Some((s, e)) => {
                let len = e - s;
                // A repeat is the same characters, one homophone allowed in three (半不了 for
                // 办不了): 的就是地 is not a reduplication.
                let same = unit(tokens, pos, len, limit, st.free)
                    && (0..len).all(|k| tokens[pos + k].heard_as(&tokens[s + k]))
                    && 2 * (0..len)
                        .filter(|&k| tokens[pos + k].ch == tokens[s + k].ch)
                        .count()
                        > len;
                same.then(|| match_seq(tail, rest, span, pos + len, took(0, 0), caps))
                    .flatten()
            }
            None => {
                for len in 1..=SLOT_MAX {
                    if !unit(tokens, pos, len, limit, st.free) {
                        break;
                    }
                    caps[*i] = Some((pos, pos + len));
                    if let Some(end) = match_seq(tail, rest, span, pos + len, took(0, 0), caps) {
                        return Some(end);
                    }
                }
                caps[*i] = None;
                None
            }
        },
        Elem::Start => (pos == span.from)
            .then(|| match_seq(tail, rest, span, pos, st, caps))
            .flatten(),
        // A clause starts the sentence or follows dropped punctuation ("性价比，不用说了").
        Elem::ClauseStart => (pos == span.from || (pos < limit && break_before(tokens, pos)))
            .then(|| match_seq(tail, rest, span, pos, st, caps))
            .flatten(),
        Elem::End => tokens[pos..limit]
            .iter()
            .all(|t| PARTICLES.contains(t.ch))
            .then(|| match_seq(tail, rest, span, pos, st, caps))
            .flatten(),
        Elem::Group { alts, optional } => {
            let after = Rest::Then(tail, rest);
            alts.iter()
                .find_map(|alt| match_seq(alt, &after, span, pos, st, caps))
                .or_else(|| {
                    optional
                        .then(|| match_seq(tail, rest, span, pos, st, caps))
                        .flatten()
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(p: &str, text: &str) -> bool {
        Pattern::parse(p).unwrap().matches_text(text)
    }

    #[test]
    fn slots_repeat_what_they_caught() {
        let p = "{X}不了就是{X}不了";
        assert!(hit(p, "上不了就是上不了"));
        assert!(hit(p, "这个办不了就是办不了啊"));
        assert!(!hit(p, "上不了就是办不了"));
        assert!(hit("{X}就是{X}", "办不了就是半不了"));
        assert!(!hit("{X}就是{X}", "最糟糕的就是地下车库"));
    }

    #[test]
    fn groups_options_gaps_and_numbers() {
        assert!(hit("跟我们(这边)?没(有)?关系", "这个跟我们这边没关系"));
        assert!(hit("跟我们(这边)?没(有)?关系", "跟我们没有关系"));
        assert!(hit("[你您]爱…就…", "你爱上哪儿投诉就上哪儿投诉"));
        assert!(hit(
            "(保证|打包票)…{#}点(之前|以前)",
            "我跟您打包票，今天晚上八点之前肯定来水"
        ));
        assert!(hit("(保证|打包票)…{#}点(之前|以前)", "保证晚上8点之前来水"));
        assert!(!hit("[你您]爱…就…", "你就爱吃这个"));
        assert!(hit("(找|问)…去$", "你找物业去吧"));
        assert!(!hit("(找|问)…去$", "你找物业去的时候带上证件"));
        assert!(hit("^不行", "不行就是不行"));
        assert!(!hit("^不行", "这样不行"));
        assert!(hit("<不用说了", "好的，不用说了"));
        assert!(!hit("<不用说了", "性价比不用说了"));
        assert!(!hit("^不用说了", "好的，不用说了"));
    }

    #[test]
    fn short_matches_numbers_and_particles_must_be_written() {
        // Two literal characters: both as written (误解 is not 无解).
        assert!(hit("无解", "这个问题无解"));
        assert!(!hit("无解", "造成了双方的误解"));
        // A date's 9 is never 就; 着 is never 这.
        assert!(!hit("想…就…去", "原来我本想去1912的"));
        assert!(!hit("这都不", "看着都不通顺"));
        assert!(hit("这都不", "这都不会"));
    }

    #[test]
    fn homophones_match_and_edits_do_not() {
        assert!(hit("互相推诿", "你们就是互相推委"));
        assert!(!hit("跟我们没关系", "跟我们有关系"));
        // Homophones alone are chance, not a mishearing.
        assert!(!hit("无解", "15日上午结帐"));
        assert!(hit("无解", "这事儿无解"));
    }

    #[test]
    fn only_gaps_reach_across_punctuation() {
        assert!(!hit("{X}就是{X}", "没什么感觉,就是觉得"));
        assert!(!hit("快说", "二十块，说我们"));
        assert!(hit("打包票…之前", "我跟您打包票，今天晚上八点之前肯定来水"));
    }

    #[test]
    fn bad_notation_is_an_error_that_says_why() {
        for (p, want) in [
            ("(这边", "never closed"),
            ("{1}不了", "slot"),
            ("(|这边)", "empty alternative"),
            ("?不了", "follows no character"),
            ("(不)?…", "matches nothing"),
            ("不了，", "punctuation"),
        ] {
            let e = Pattern::parse(p).unwrap_err();
            assert!(e.contains(want), "{p}: {e}");
        }
    }
}
