//! Personal data in transcripts: mobile and landline numbers, 身份证 numbers (their check digit
//! verified), bank card numbers (Luhn-valid) and the numbers of an address (门牌号, 栋, 单元, 室),
//! in every form a recogniser writes them — 13812345678, 138-1234-5678, 一三八一二三四五六七八,
//! 幺三八…, ０-９ — masked like `138****5678`.
//!
//! Callers give these to the hotline all day; a trainer reviewing a 禁语 does not need them, and
//! an exported folder or a report page travels. Masking is applied where text leaves the store
//! (`export` by default, `show --mask`, the trainer pages of `serve`); the store keeps what was
//! said, so an authorised reviewer can still find a work order by phone number.

use serde::Serialize;

/// What kind of personal data a span is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Phone,
    IdCard,
    BankCard,
    Address,
}

/// A span of personal data, in chars of the text it was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PiiSpan {
    pub start: usize,
    pub end: usize,
    pub kind: PiiKind,
}

/// The digit a character stands for, in the forms recognisers write.
fn digit(c: char) -> Option<u8> {
    Some(match c {
        '0'..='9' => c as u8 - b'0',
        '０'..='９' => (c as u32 - '０' as u32) as u8,
        '零' | '〇' | 'O' | 'o' => 0,
        '一' | '幺' | '壹' => 1,
        '二' | '两' | '贰' => 2,
        '三' | '叁' => 3,
        '四' | '肆' => 4,
        '五' | '伍' => 5,
        '六' | '陆' => 6,
        '七' | '柒' => 7,
        '八' | '捌' => 8,
        '九' | '玖' => 9,
        _ => return None,
    })
}

/// Separators a number may be written with between its digits.
fn separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '－' | '—' | ',' | '，' | '、' | '.')
}

/// Units after a number that make it part of an address.
const ADDRESS_UNITS: &[&str] = &[
    "号楼", "号院", "号", "栋", "幢", "单元", "室", "楼", "弄", "巷",
];

/// A run of digits: its chars (start..end in the text) and the digit of each digit char.
struct Run {
    start: usize,
    end: usize,
    /// (char index, digit) of each digit; an ID number's final X is digit 10.
    digits: Vec<(usize, u8)>,
}

fn runs(chars: &[char]) -> Vec<Run> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if digit(chars[i]).is_none() {
            i += 1;
            continue;
        }
        let mut run = Run {
            start: i,
            end: i,
            digits: Vec::new(),
        };
        let mut j = i;
        while j < chars.len() {
            if let Some(d) = digit(chars[j]) {
                run.digits.push((j, d));
                run.end = j + 1;
                j += 1;
            } else if separator(chars[j])
                && j + 1 < chars.len()
                && digit(chars[j + 1]).is_some()
                && !run.digits.is_empty()
            {
                j += 1;
            } else if matches!(chars[j], 'X' | 'x' | 'Ｘ') && run.digits.len() == 17 {
                // An ID number's check digit: the run ends with it.
                run.digits.push((j, 10));
                run.end = j + 1;
                break;
            } else {
                break;
            }
        }
        i = run.end.max(i + 1);
        out.push(run);
    }
    out
}

/// The check digit (10 for X) of a mainland 身份证 number from its first 17 digits (GB 11643).
pub fn id_check_digit(first17: &[u8]) -> u8 {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [u8; 11] = [1, 0, 10, 9, 8, 7, 6, 5, 4, 3, 2];
    let sum: u32 = first17.iter().zip(W).map(|(&x, w)| u32::from(x) * w).sum();
    CHECK[(sum % 11) as usize]
}

/// Is this a mainland 身份证 number with its right check digit?
fn id_check_ok(d: &[u8]) -> bool {
    d.len() == 18 && d[..17].iter().all(|&x| x <= 9) && id_check_digit(&d[..17]) == d[17]
}

/// The Luhn check of a bank card number's digits.
pub fn luhn_ok(d: &[u8]) -> bool {
    if d.iter().any(|&x| x > 9) {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x);
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn classify(run: &Run, chars: &[char]) -> Option<PiiKind> {
    let d: Vec<u8> = run.digits.iter().map(|&(_, d)| d).collect();
    let n = d.len();
    if n == 11 && d[0] == 1 && (3..=9).contains(&d[1]) {
        return Some(PiiKind::Phone);
    }
    if n == 18 && id_check_ok(&d) {
        return Some(PiiKind::IdCard);
    }
    if (16..=19).contains(&n) && luhn_ok(&d) {
        return Some(PiiKind::BankCard);
    }
    // A landline with its area code (010…, 0755…), or a local 7–8 digit number said as one.
    if (10..=12).contains(&n) && d[0] == 0 {
        return Some(PiiKind::Phone);
    }
    let after: String = chars[run.end..].iter().take(2).collect();
    if ADDRESS_UNITS.iter().any(|u| after.starts_with(u)) {
        return Some(PiiKind::Address);
    }
    None
}

/// Every span of personal data in `text`.
pub fn find(text: &str) -> Vec<PiiSpan> {
    let chars: Vec<char> = text.chars().collect();
    runs(&chars)
        .iter()
        .filter_map(|r| {
            classify(r, &chars).map(|kind| PiiSpan {
                start: r.start,
                end: r.end,
                kind,
            })
        })
        .collect()
}

/// `text` with its personal data masked, and the spans masked. A phone keeps its first 3 and
/// last 4 digits (138****5678), an ID number its first 3 and last 4, a bank card its last 4, an
/// address none; separators stay.
pub fn mask(text: &str) -> (String, Vec<PiiSpan>) {
    let mut chars: Vec<char> = text.chars().collect();
    let spans = find(text);
    let all_runs = runs(&chars.clone());
    for s in &spans {
        let Some(run) = all_runs.iter().find(|r| r.start == s.start) else {
            continue;
        };
        let n = run.digits.len();
        let (keep_head, keep_tail) = match s.kind {
            PiiKind::Phone => (3, 4),
            PiiKind::IdCard => (3, 4),
            PiiKind::BankCard => (0, 4),
            PiiKind::Address => (0, 0),
        };
        for (k, &(at, _)) in run.digits.iter().enumerate() {
            if k >= keep_head && k + keep_tail < n {
                chars[at] = '*';
            }
        }
    }
    (chars.into_iter().collect(), spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid 身份证 number built from its first 17 digits.
    fn id_number(first17: &str) -> String {
        let d: Vec<u8> = first17.bytes().map(|b| b - b'0').collect();
        match id_check_digit(&d) {
            10 => format!("{first17}X"),
            c => format!("{first17}{c}"),
        }
    }

    /// Digits spoken as a recogniser writes them.
    fn spoken(digits: &str, one: char) -> String {
        digits
            .chars()
            .map(|c| match c {
                '0' => '零',
                '1' => one,
                '2' => '二',
                '3' => '三',
                '4' => '四',
                '5' => '五',
                '6' => '六',
                '7' => '七',
                '8' => '八',
                '9' => '九',
                other => other,
            })
            .collect()
    }

    /// A Luhn-valid card number from its first 15 digits.
    fn card(first15: &str) -> String {
        for last in 0..10 {
            let c = format!("{first15}{last}");
            let d: Vec<u8> = c.bytes().map(|b| b - b'0').collect();
            if luhn_ok(&d) {
                return c;
            }
        }
        unreachable!()
    }

    #[test]
    fn phones_in_every_form_are_masked_to_the_first_three_and_last_four() {
        for (said, masked) in [
            ("我的电话是13812345678", "我的电话是138****5678"),
            ("电话138-1234-5678谢谢", "电话138-****-5678谢谢"),
            ("手机 138 1234 5678", "手机 138 **** 5678"),
        ] {
            assert_eq!(mask(said).0, masked, "{said}");
        }
        for one in ['一', '幺'] {
            let text = format!("电话是{}，对", spoken("13812345678", one));
            let (m, spans) = mask(&text);
            assert_eq!(spans.len(), 1, "{text}");
            assert_eq!(spans[0].kind, PiiKind::Phone);
            assert!(m.contains("****"), "{m}");
            assert!(m.ends_with("五六七八，对"), "{m}");
        }
        // Said in groups with pauses.
        let (m, _) = mask("幺三八，一二三四，五六七八");
        assert_eq!(m, "幺三八，****，五六七八");
        // A landline with its area code.
        assert_eq!(mask("座机0755-12345678").0, "座机075*-****5678");
    }

    #[test]
    fn id_numbers_need_their_check_digit_and_bank_cards_the_luhn_check() {
        let id = id_number("11010519491231002");
        let (m, spans) = mask(&format!("身份证号{id}"));
        assert_eq!(spans[0].kind, PiiKind::IdCard);
        assert_eq!(m.chars().filter(|&c| c == '*').count(), 11, "{m}");
        // Spoken, with X as its check digit where it has one.
        let id_x = (0..1000)
            .map(|n| id_number(&format!("44030419850101{n:03}")))
            .find(|s| s.ends_with('X'))
            .unwrap();
        let text = format!("身份证{}", spoken(&id_x, '幺'));
        assert_eq!(find(&text)[0].kind, PiiKind::IdCard, "{text}");
        // One digit off: not an ID number (and not a card either: 18 digits, Luhn fails).
        let mut wrong: Vec<char> = id.chars().collect();
        wrong[17] = if wrong[17] == '1' { '2' } else { '1' };
        let wrong: String = wrong.into_iter().collect();
        let d: Vec<u8> = wrong.bytes().map(|b| b - b'0').collect();
        if !luhn_ok(&d) {
            assert!(find(&wrong).is_empty(), "{wrong}");
        }
        let c = card("622202100012345");
        let (m, spans) = mask(&format!("卡号是{c}"));
        assert_eq!(spans[0].kind, PiiKind::BankCard);
        assert!(m.ends_with(&c[12..]), "{m}");
        assert_eq!(m.chars().filter(|&c| c == '*').count(), 12);
        let spoken_card = spoken(&c, '幺');
        assert_eq!(find(&spoken_card)[0].kind, PiiKind::BankCard);
    }

    #[test]
    fn address_numbers_are_masked_and_ordinary_numbers_are_not() {
        assert_eq!(
            mask("住在幸福路18号3栋2单元502室").0,
            "住在幸福路**号*栋*单元***室"
        );
        assert_eq!(mask("三号楼二单元").0, "*号楼*单元");
        for ordinary in [
            "等了三个月了",
            "12345热线",
            "工号2051为您服务",
            "一共二三十户",
            "2026年12月1日下午3点",
            "要交200元",
        ] {
            assert!(
                find(ordinary).is_empty(),
                "{ordinary}: {:?}",
                find(ordinary)
            );
        }
    }
}
