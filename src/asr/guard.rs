//! Guards between whisper and the transcript: script normalisation and hallucination filters.
//!
//! Whisper base on telephone Mandarin fails in known ways (docs/… and the field notes):
//! Traditional characters, captions invented over silence ("字幕由Amara.org社群提供"), repetition
//! loops ending in a broken character, one character stretched over 46 s with a good log-prob,
//! and text time-stamped after the end of the audio. Each rule here answers one of them; every
//! dropped segment is returned with its reason so the transcript can be audited.

use serde::{Deserialize, Serialize};

use super::pack::Window;
use super::{DroppedSegment, Segment};
use crate::text::{spoken_char_count, to_simplified};
use crate::vad::SpeechRegion;

/// A segment as whisper returned it: window-relative times, raw text.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSegment {
    pub t0: f64,
    pub t1: f64,
    pub text: String,
    pub confidence: f32,
    pub avg_logprob: f32,
    pub no_speech_prob: f32,
    /// The text tokens with their times (empty when token timestamps were off).
    pub tokens: Vec<RawToken>,
}

/// One text token: its bytes (a token may hold part of a UTF-8 character) and window times.
#[derive(Debug, Clone, PartialEq)]
pub struct RawToken {
    pub bytes: Vec<u8>,
    pub t0: f64,
    pub t1: f64,
}

/// Split segments that run across several packed utterances back into one segment per
/// utterance: each token goes to the utterance (piece) it was spoken in ([`token_owners`]), and
/// consecutive tokens of one piece form a segment. Whisper, given utterances separated by a
/// short pause, often writes them as one segment; without this split the segment's times would
/// cover the other speaker's turns in between.
pub fn split_at_pieces(raw: Vec<RawSegment>, window: &Window) -> Vec<RawSegment> {
    if window.pieces.len() < 2 {
        return raw;
    }
    // (piece index, part); None = a segment without token times, left as it is.
    let mut parts: Vec<(Option<usize>, RawSegment)> = Vec::new();
    for seg in raw {
        if seg.tokens.is_empty() {
            parts.push((None, seg));
            continue;
        }
        let owners = token_owners(&seg.tokens, window);
        let mut groups: Vec<(usize, Vec<u8>, f64, f64)> = Vec::new();
        for (tok, &idx) in seg.tokens.iter().zip(&owners) {
            match groups.last_mut() {
                // A token that finishes a split UTF-8 character stays with its start.
                Some(last) if last.0 == idx || std::str::from_utf8(&last.1).is_err() => {
                    last.1.extend_from_slice(&tok.bytes);
                    last.3 = tok.t1;
                }
                _ => groups.push((idx, tok.bytes.clone(), tok.t0, tok.t1)),
            }
        }
        // Even a segment whose tokens all fall in one utterance is cut to that utterance's
        // bounds: whisper's segment end often runs on into the pause and the next utterance.
        for (idx, bytes, t0, t1) in groups {
            let p = &window.pieces[idx];
            let (ps, pe) = (p.window_start, p.window_start + p.region.duration());
            let part = RawSegment {
                t0: t0.clamp(ps, pe),
                t1: t1.clamp(ps, pe),
                text: String::from_utf8_lossy(&bytes).into_owned(),
                tokens: Vec::new(),
                ..seg.clone()
            };
            parts.push((Some(idx), part));
        }
    }
    merge_slivers(parts)
}

/// Where a token's mid-time falls relative to the window's pieces.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    /// Inside piece i (before the first piece counts as the first, after the last as the last).
    Inside(usize),
    /// In the inserted silence between piece i and piece i + 1.
    Gap(usize),
}

fn place_of(t: f64, window: &Window) -> Place {
    let last = window.pieces.len() - 1;
    for (i, p) in window.pieces.iter().enumerate() {
        if t < p.window_start {
            return if i == 0 {
                Place::Inside(0)
            } else {
                Place::Gap(i - 1)
            };
        }
        if t <= p.window_start + p.region.duration() {
            return Place::Inside(i);
        }
    }
    Place::Inside(last)
}

/// Punctuation whisper writes at the end of a clause or sentence.
fn ends_clause(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    text.trim_end()
        .chars()
        .last()
        .is_some_and(|c| "，。？！、；：,.?!;:".contains(c))
}

/// The piece each token of one segment belongs to.
///
/// Whisper's token times are heuristic: near a pause they drift into it from both sides — the
/// first words of an utterance are stamped early, and with short pauses the last word and its
/// full stop are stamped late. So a run of tokens in the pause between pieces i and i + 1 is
/// split by what the text says:
/// - the token before the run ended a clause (…哪里？ | 好的，): utterance i is complete, the run
///   starts utterance i + 1;
/// - otherwise the run up to its first clause-ending punctuation finishes utterance i (…位置 |
///   ？我们 → 位置？ | 我们), the rest starts utterance i + 1;
/// - a run without punctuation goes where the segment continues (a segment that starts in the
///   pause starts the next utterance; one that ends there finishes the previous), and where the
///   segment has tokens on both sides, to the nearer edge of the pause.
fn token_owners(tokens: &[RawToken], window: &Window) -> Vec<usize> {
    let places: Vec<Place> = tokens
        .iter()
        .map(|t| place_of((t.t0 + t.t1) / 2.0, window))
        .collect();
    let mut owners = vec![0usize; tokens.len()];
    let mut k = 0;
    while k < tokens.len() {
        let gap = match places[k] {
            Place::Inside(i) => {
                owners[k] = i;
                k += 1;
                continue;
            }
            Place::Gap(g) => g,
        };
        let run_end = (k..tokens.len())
            .find(|&j| places[j] != Place::Gap(gap))
            .unwrap_or(tokens.len());
        let after_clause_end = k > 0 && ends_clause(&tokens[k - 1].bytes);
        let first_punct = (k..run_end).find(|&j| ends_clause(&tokens[j].bytes));
        let (prev, next) = (gap, gap + 1);
        let has_before = k > 0;
        let has_after = run_end < tokens.len();
        let gap_start = window.pieces[prev].window_start + window.pieces[prev].region.duration();
        let gap_end = window.pieces[next].window_start;
        for j in k..run_end {
            owners[j] = match first_punct {
                _ if after_clause_end => next,
                Some(fp) if j <= fp => prev,
                Some(_) => next,
                None if !has_before => next,
                None if !has_after => prev,
                None => {
                    let mid = (tokens[j].t0 + tokens[j].t1) / 2.0;
                    if mid - gap_start < gap_end - mid {
                        prev
                    } else {
                        next
                    }
                }
            };
        }
        k = run_end;
    }
    owners
}

/// A part squeezed to (almost) no time by the clamping above is a word whose time whisper put
/// in the pause: join it to its utterance's neighbouring part instead of keeping a sliver
/// segment with no duration (it would distort speech-rate and overlap measures).
fn merge_slivers(parts: Vec<(Option<usize>, RawSegment)>) -> Vec<RawSegment> {
    const SLIVER_S: f64 = 0.05;
    let mut out: Vec<(Option<usize>, RawSegment)> = Vec::with_capacity(parts.len());
    let mut pending_head: Option<(usize, RawSegment)> = None;
    for (idx, mut part) in parts {
        if let (Some(i), Some((hi, head))) = (idx, pending_head.as_ref())
            && *hi == i
        {
            part.text = format!("{}{}", head.text, part.text);
            part.t0 = part.t0.min(head.t0);
            pending_head = None;
        } else if let Some((hi, head)) = pending_head.take() {
            out.push((Some(hi), head));
        }
        let is_sliver = part.t1 - part.t0 < SLIVER_S;
        if let (true, Some(i)) = (is_sliver, idx) {
            if let Some((Some(pi), prev)) = out.last_mut()
                && *pi == i
            {
                prev.text.push_str(&part.text);
                prev.t1 = prev.t1.max(part.t1);
                continue;
            }
            pending_head = Some((i, part));
            continue;
        }
        out.push((idx, part));
    }
    if let Some((hi, head)) = pending_head {
        out.push((Some(hi), head));
    }
    out.into_iter().map(|(_, part)| part).collect()
}

/// Thresholds of the guards.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GuardParams {
    /// Drop when `no_speech_prob` is above this AND `avg_logprob` below `logprob_floor`
    /// (whisper's own rule for silent windows).
    pub no_speech_prob: f32,
    pub logprob_floor: f32,
    /// Drop regardless of no-speech probability below this log-probability.
    pub logprob_hard_floor: f32,
    /// Plausible Mandarin speech: at most this many characters per second…
    pub max_chars_per_s: f64,
    /// …and, for segments longer than `min_rate_check_s`, at least this many.
    pub min_chars_per_s: f64,
    pub min_rate_check_s: f64,
    /// Known hallucinated phrases (subtitle credits etc.), matched after Simplified conversion.
    pub phrases: Vec<String>,
}

impl Default for GuardParams {
    fn default() -> Self {
        GuardParams {
            no_speech_prob: 0.6,
            logprob_floor: -1.0,
            logprob_hard_floor: -2.0,
            max_chars_per_s: 12.0,
            min_chars_per_s: 0.5,
            min_rate_check_s: 4.0,
            phrases: [
                "字幕由Amara.org社群提供",
                "请不吝点赞订阅转发打赏支持明镜与点点栏目",
                "请不吝点赞订阅转发打赏",
                "明镜与点点栏目",
                "中文字幕提供",
                "优优独播剧场",
                "YoYo Television Series Exclusive",
                "谢谢观看",
                "感谢观看",
                "字幕志愿者",
                "本字幕由",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        }
    }
}

/// Post-process one window's raw segments into kept and dropped segments on call time.
pub fn apply(
    raw: Vec<RawSegment>,
    window: &Window,
    p: &GuardParams,
) -> (Vec<Segment>, Vec<DroppedSegment>) {
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    let content_end = window.content_s();
    for r in split_at_pieces(raw, window) {
        let text = clean_text(&to_simplified(&r.text), p);
        let mut seg = Segment {
            role: window.role,
            start: window.to_call_time(r.t0.max(0.0)),
            end: window.to_call_time(r.t1.min(content_end)),
            text,
            confidence: r.confidence,
            avg_logprob: r.avg_logprob,
            no_speech_prob: r.no_speech_prob,
        };
        snap_to_regions(&mut seg, window);
        if seg.end < seg.start {
            seg.end = seg.start;
        }
        let reason = if r.t0 >= content_end {
            Some(format!(
                "starts at {:.2}s, after the end of the audio in its window ({content_end:.2}s)",
                r.t0
            ))
        } else {
            judge(&seg, &r, p)
        };
        match reason {
            Some(reason) => dropped.push(DroppedSegment {
                segment: seg,
                reason,
            }),
            None => kept.push(seg),
        }
    }
    (kept, dropped)
}

/// Whisper's timestamps drift by a few hundred ms; VAD's region edges do not. A segment edge
/// within [`SNAP_S`] of the edge of the speech region it falls in is moved onto that edge.
fn snap_to_regions(seg: &mut Segment, window: &Window) {
    let nearest = |t: f64, edge: fn(&SpeechRegion) -> f64| {
        window
            .pieces
            .iter()
            .map(|p| edge(&p.region))
            .min_by(|a, b| (a - t).abs().total_cmp(&(b - t).abs()))
            .filter(|e| (e - t).abs() <= SNAP_S)
    };
    if let Some(s) = nearest(seg.start, |r| r.start) {
        seg.start = s;
    }
    if let Some(e) = nearest(seg.end, |r| r.end) {
        seg.end = e;
    }
}

/// How far a segment edge may be moved onto a VAD region edge (seconds).
const SNAP_S: f64 = 0.6;

/// Why a segment should not be kept, if it should not.
fn judge(seg: &Segment, raw: &RawSegment, p: &GuardParams) -> Option<String> {
    let chars = spoken_char_count(&seg.text);
    if chars == 0 {
        return Some(format!("no speech characters in {:?}", raw.text));
    }
    if raw.no_speech_prob > p.no_speech_prob && raw.avg_logprob < p.logprob_floor {
        return Some(format!(
            "no-speech probability {:.2} with log-probability {:.2}",
            raw.no_speech_prob, raw.avg_logprob
        ));
    }
    if raw.avg_logprob < p.logprob_hard_floor {
        return Some(format!("log-probability {:.2} too low", raw.avg_logprob));
    }
    // Rates use the raw window span: call-time mapping may snap edges across gaps.
    let dur = (raw.t1 - raw.t0).max(0.01);
    let rate = chars as f64 / dur;
    if dur >= 0.5 && rate > p.max_chars_per_s {
        return Some(format!(
            "{chars} characters in {dur:.2}s is faster than anyone speaks"
        ));
    }
    if dur >= p.min_rate_check_s && rate < p.min_chars_per_s {
        return Some(format!(
            "{chars} characters over {dur:.2}s: implausibly slow"
        ));
    }
    None
}

/// Remove known hallucinated phrases, bracketed captions, broken characters and repetition loops.
fn clean_text(text: &str, p: &GuardParams) -> String {
    let mut t: String = text.chars().filter(|&c| c != '\u{FFFD}').collect();
    for phrase in &p.phrases {
        let phrase = to_simplified(phrase);
        while let Some(i) = t.find(&phrase) {
            t.replace_range(i..i + phrase.len(), "");
        }
    }
    t = strip_bracketed(&t);
    collapse_repetitions(t.trim())
}

/// Drop "(音乐)"-style captions: anything inside ASCII or full-width brackets.
fn strip_bracketed(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' | '（' | '[' | '【' => depth += 1,
            ')' | '）' | ']' | '】' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Collapse a unit repeated many times in a row (a decoding loop) to a single copy. Natural
/// repetition ("好的好的", "对对对") is kept: units of 1 char need 6+ copies, longer units 4+.
pub fn collapse_repetitions(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<char> = Vec::with_capacity(chars.len());
    let mut i = 0;
    'outer: while i < chars.len() {
        for unit in 1..=10usize {
            if i + unit > chars.len() {
                break;
            }
            let min_copies = if unit == 1 { 6 } else { 4 };
            let mut copies = 1;
            while i + (copies + 1) * unit <= chars.len()
                && chars[i + copies * unit..i + (copies + 1) * unit] == chars[i..i + unit]
            {
                copies += 1;
            }
            if copies >= min_copies {
                out.extend_from_slice(&chars[i..i + unit]);
                i += copies * unit;
                continue 'outer;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::pack::Piece;
    use crate::audio::Role;

    fn window(start: f64, len: f64) -> Window {
        Window {
            role: Role::Agent,
            samples: vec![0.0; (len * 16000.0) as usize],
            pieces: vec![Piece {
                window_start: 0.0,
                region: SpeechRegion {
                    start,
                    end: start + len,
                },
            }],
        }
    }

    fn raw(t0: f64, t1: f64, text: &str) -> RawSegment {
        RawSegment {
            t0,
            t1,
            text: text.into(),
            confidence: 0.8,
            avg_logprob: -0.3,
            no_speech_prob: 0.05,
            tokens: Vec::new(),
        }
    }

    #[test]
    fn segments_across_packed_utterances_are_split_per_utterance() {
        let w = two_piece_window();
        let mut r = raw(0.0, 6.0, "好的请稍等");
        // "稍" split over two tokens mid-character, both in the second utterance.
        let shao = "稍".as_bytes();
        r.tokens = vec![
            tok("好的", 0.1, 1.5),
            tok("请", 3.1, 3.5),
            RawToken {
                bytes: shao[..1].to_vec(),
                t0: 3.5,
                t1: 3.7,
            },
            RawToken {
                bytes: shao[1..].to_vec(),
                t0: 3.7,
                t1: 3.9,
            },
            tok("等", 3.9, 5.8),
        ];
        let (k, d) = apply(vec![r], &w, &GuardParams::default());
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(k.len(), 2, "{k:?}");
        assert_eq!(k[0].text, "好的");
        assert_eq!(k[1].text, "请稍等");
        assert!(
            (k[0].start - 10.0).abs() < 1e-9 && (k[1].start - 20.0).abs() < 1e-9,
            "{k:?}"
        );
        assert!(
            (k[1].end - 23.0).abs() < 1e-9,
            "snapped to the region end: {k:?}"
        );
    }

    /// Two utterances (10–12 s and 20–23 s of the call) packed with a 1 s pause: window
    /// 0–2 s, pause 2–3 s, 3–6 s.
    fn two_piece_window() -> Window {
        let piece = |window_start: f64, start: f64, end: f64| Piece {
            window_start,
            region: SpeechRegion { start, end },
        };
        Window {
            role: Role::Agent,
            samples: vec![0.0; 16000 * 6],
            pieces: vec![piece(0.0, 10.0, 12.0), piece(3.0, 20.0, 23.0)],
        }
    }

    fn tok(s: &str, t0: f64, t1: f64) -> RawToken {
        RawToken {
            bytes: s.as_bytes().to_vec(),
            t0,
            t1,
        }
    }

    #[test]
    fn a_sentence_end_stamped_into_the_pause_stays_with_its_utterance() {
        let mut r = raw(0.0, 6.0, "请问具体位置？我们会处理");
        r.tokens = vec![
            tok("请问具体", 0.2, 1.5),
            tok("位置", 1.9, 2.3),
            tok("？", 2.3, 2.4),
            tok("我们", 2.6, 2.9),
            tok("会处理", 3.1, 5.5),
        ];
        let (k, _) = apply(vec![r], &two_piece_window(), &GuardParams::default());
        let texts: Vec<&str> = k.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["请问具体位置？", "我们会处理"], "{k:?}");
        assert!((k[1].start - 20.0).abs() < 1e-9, "{k:?}");
    }

    #[test]
    fn words_after_a_finished_sentence_start_the_next_utterance() {
        // "好的，" is stamped in the pause, after the question that ends utterance 1.
        let mut r = raw(0.0, 6.0, "请问具体位置？好的，我们会处理");
        r.tokens = vec![
            tok("请问具体位置", 0.2, 1.8),
            tok("？", 1.8, 1.9),
            tok("好的", 2.2, 2.5),
            tok("，", 2.5, 2.6),
            tok("我们会处理", 3.1, 5.5),
        ];
        let (k, _) = apply(vec![r], &two_piece_window(), &GuardParams::default());
        let texts: Vec<&str> = k.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["请问具体位置？", "好的，我们会处理"], "{k:?}");
    }

    #[test]
    fn words_in_the_pause_without_punctuation_follow_the_segment() {
        // A segment that starts in the pause starts the next utterance…
        let mut head = raw(2.5, 6.0, "您好请讲");
        head.tokens = vec![tok("您好", 2.5, 2.8), tok("请讲", 3.2, 4.0)];
        // …and one that ends in the pause finishes the previous one.
        let mut tail = raw(0.0, 2.6, "好的物业");
        tail.tokens = vec![tok("好的", 0.2, 1.0), tok("物业", 2.1, 2.6)];
        let (k, _) = apply(
            vec![tail, head],
            &two_piece_window(),
            &GuardParams::default(),
        );
        let texts: Vec<&str> = k.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["好的物业", "您好请讲"], "{k:?}");
    }

    #[test]
    fn a_segment_made_only_of_a_late_word_joins_its_utterance() {
        // Whisper wrote the last word of utterance 2 as its own segment, stamped after the
        // audio's end: no zero-length segment, the word joins the utterance's text.
        let mut body = raw(3.0, 5.9, "我们会处理");
        body.tokens = vec![tok("我们会", 3.1, 4.5), tok("处理", 4.5, 5.9)];
        let mut late = raw(6.0, 6.0, "的。");
        late.tokens = vec![tok("的。", 6.0, 6.0)];
        let mut first = raw(0.0, 2.0, "好的");
        first.tokens = vec![tok("好的", 0.2, 1.8)];
        let (k, _) = apply(
            vec![first, body, late],
            &two_piece_window(),
            &GuardParams::default(),
        );
        let texts: Vec<&str> = k.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["好的", "我们会处理的。"], "{k:?}");
        assert!(k.iter().all(|s| s.end - s.start > 0.5), "{k:?}");
    }

    #[test]
    fn keeps_good_speech_in_simplified_on_call_time() {
        let (k, d) = apply(
            vec![raw(0.0, 3.0, "您好，請問有什麼可以幫您？")],
            &window(10.0, 3.2),
            &GuardParams::default(),
        );
        assert!(d.is_empty());
        assert_eq!(k[0].text, "您好，请问有什么可以帮您？");
        // The end is 0.2 s from the VAD region's edge: snapped onto it.
        assert!((k[0].start - 10.0).abs() < 1e-9 && (k[0].end - 13.2).abs() < 1e-9);
    }

    #[test]
    fn drops_known_hallucinations_and_captions() {
        let p = GuardParams::default();
        let (k, d) = apply(
            vec![
                raw(0.0, 2.0, "字幕由Amara.org社群提供"),
                raw(2.0, 3.0, "（音樂）"),
            ],
            &window(0.0, 3.0),
            &p,
        );
        assert!(k.is_empty(), "{k:?}");
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn drops_implausible_rates_and_text_after_the_audio() {
        let p = GuardParams::default();
        let w = window(0.0, 46.0);
        let (k, d) = apply(vec![raw(0.0, 46.0, "嗯")], &w, &p);
        assert!(k.is_empty() && d[0].reason.contains("slow"), "{d:?}");
        let (k, d) = apply(
            vec![raw(0.0, 1.0, "一二三四五六七八九十一二三四五六")],
            &w,
            &p,
        );
        assert!(k.is_empty() && d[0].reason.contains("faster"), "{d:?}");
        let (k, d) = apply(vec![raw(5.0, 6.0, "再见")], &window(0.0, 3.0), &p);
        assert!(
            k.is_empty() && d[0].reason.contains("after the end"),
            "{d:?}"
        );
    }

    #[test]
    fn drops_silence_windows_by_whisper_rule() {
        let mut r = raw(0.0, 2.0, "嗯嗯");
        r.no_speech_prob = 0.9;
        r.avg_logprob = -1.4;
        let (k, _) = apply(vec![r], &window(0.0, 2.0), &GuardParams::default());
        assert!(k.is_empty());
    }

    #[test]
    fn repetition_loops_collapse_but_natural_repeats_stay() {
        assert_eq!(collapse_repetitions("好的好的"), "好的好的");
        assert_eq!(collapse_repetitions("对对对"), "对对对");
        assert_eq!(
            collapse_repetitions("我们会处理我们会处理我们会处理我们会处理我们会处理"),
            "我们会处理"
        );
        assert_eq!(collapse_repetitions("啊啊啊啊啊啊啊啊"), "啊");
    }
}
