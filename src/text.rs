//! Chinese text normalisation shared by ASR post-processing, evaluation and (later) rubric matching.
//!
//! Whisper writes the same words many ways: Traditional or Simplified characters, "12345" or
//! "一二三四五" or "幺二三四五", with or without punctuation. Every comparison in callqc goes
//! through [`normalize_for_compare`] so that these differences never count as errors or misses.

use zhconv::{Variant, zhconv};

/// Convert any Traditional characters to Simplified (whisper base often answers in Traditional).
pub fn to_simplified(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    zhconv(text, Variant::ZhHans)
}

/// The digit words a telephone agent reads digit by digit ("工号二零五一"), indexed by value.
const DIGIT_WORDS: [char; 10] = ['零', '一', '二', '三', '四', '五', '六', '七', '八', '九'];

/// Map one character to its comparable form: Arabic and full-width digits to 一二三…,
/// 幺 (the telephone reading of 1) to 一, ○ to 零, ASCII letters to lower case.
fn fold_char(c: char) -> Option<char> {
    match c {
        '0'..='9' => Some(DIGIT_WORDS[(c as u32 - '0' as u32) as usize]),
        '０'..='９' => Some(DIGIT_WORDS[(c as u32 - '０' as u32) as usize]),
        '幺' => Some('一'),
        '〇' | '○' => Some('零'),
        c if c.is_ascii_alphabetic() => Some(c.to_ascii_lowercase()),
        c if is_ignorable(c) => None,
        c => Some(c),
    }
}

/// Punctuation, symbols and whitespace: never part of a comparison.
fn is_ignorable(c: char) -> bool {
    c.is_whitespace()
        || c.is_ascii_punctuation()
        || matches!(
            c,
            '，' | '。'
                | '、'
                | '；'
                | '：'
                | '？'
                | '！'
                | '“'
                | '”'
                | '‘'
                | '’'
                | '（'
                | '）'
                | '《'
                | '》'
                | '【'
                | '】'
                | '…'
                | '—'
                | '－'
                | '·'
                | '～'
                | '「'
                | '」'
                | '『'
                | '』'
                | '\u{FFFD}'
        )
}

/// The form two texts are compared in: Simplified, no punctuation or spaces, digits as 一二三.
pub fn normalize_for_compare(text: &str) -> String {
    to_simplified(text).chars().filter_map(fold_char).collect()
}

/// Levenshtein distance over characters.
pub fn edit_distance(a: &[char], b: &[char]) -> usize {
    if a.is_empty() {
        return b.len();
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Character error counts of `hypothesis` against `reference`, both normalised first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CerCount {
    pub edits: usize,
    pub reference_chars: usize,
}

impl CerCount {
    pub fn of(reference: &str, hypothesis: &str) -> Self {
        let r: Vec<char> = normalize_for_compare(reference).chars().collect();
        let h: Vec<char> = normalize_for_compare(hypothesis).chars().collect();
        CerCount {
            edits: edit_distance(&r, &h),
            reference_chars: r.len(),
        }
    }
    pub fn add(&mut self, other: CerCount) {
        self.edits += other.edits;
        self.reference_chars += other.reference_chars;
    }
    /// Character error rate; `None` when there is no reference text.
    pub fn rate(&self) -> Option<f64> {
        (self.reference_chars > 0).then(|| self.edits as f64 / self.reference_chars as f64)
    }
}

/// Count the characters that carry speech (Han characters, letters, digits) — the unit of the
/// characters-per-second plausibility check.
pub fn spoken_char_count(text: &str) -> usize {
    text.chars().filter(|c| c.is_alphanumeric()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traditional_becomes_simplified() {
        assert_eq!(
            to_simplified("您好，請問有什麼可以幫您？"),
            "您好，请问有什么可以帮您？"
        );
        assert_eq!(to_simplified("熱線"), "热线");
    }

    #[test]
    fn number_forms_compare_equal() {
        let a = normalize_for_compare("12345热线，工号2051");
        assert_eq!(a, normalize_for_compare("一二三四五熱線 工號二零五一"));
        assert_eq!(a, normalize_for_compare("幺二三四五热线。工号二〇五幺"));
        assert_eq!(a, "一二三四五热线工号二零五一");
    }

    #[test]
    fn edit_distance_counts_substitutions_insertions_deletions() {
        let c = |s: &str| s.chars().collect::<Vec<_>>();
        assert_eq!(edit_distance(&c("便民热线"), &c("变明热线")), 2);
        assert_eq!(edit_distance(&c("热线"), &c("热线电话")), 2);
        assert_eq!(edit_distance(&c("您好"), &c("")), 2);
        assert_eq!(edit_distance(&c(""), &c("好")), 1);
    }

    #[test]
    fn cer_is_computed_on_normalised_text() {
        let c = CerCount::of("您好，12345热线。", "您好 一二三四五熱線");
        assert_eq!(
            c,
            CerCount {
                edits: 0,
                reference_chars: 9
            }
        );
        let c = CerCount::of("请稍等", "请稍");
        assert_eq!(c.rate(), Some(1.0 / 3.0));
        assert_eq!(CerCount::of("", "什么").rate(), None);
    }
}
