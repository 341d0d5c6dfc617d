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
/// utterance: each token goes to the piece its mid-time falls in (or the next one), and
/// consecutive tokens of one piece form a segment. Whisper, given utterances separated by a
/// short pause, often writes them as one segment; without this split the segment's times would
/// cover the other speaker's turns in between.
pub fn split_at_pieces(raw: Vec<RawSegment>, window: &Window) -> Vec<RawSegment> {
    if window.pieces.len() < 2 {
        return raw;
    }
    // A token in the pause between two utterances belongs to the next one: whisper stamps the
    // first tokens of an utterance early (into the pause), rarely the last ones late.
    let piece_of = |t: f64| -> usize {
        window
            .pieces
            .iter()
            .position(|p| t < p.window_start + p.region.duration())
            .unwrap_or(window.pieces.len() - 1)
    };
    let mut out = Vec::new();
    for seg in raw {
        if seg.tokens.is_empty() {
            out.push(seg);
            continue;
        }
        let mut parts: Vec<(usize, Vec<u8>, f64, f64)> = Vec::new();
        for tok in &seg.tokens {
            let idx = piece_of((tok.t0 + tok.t1) / 2.0);
            match parts.last_mut() {
                // A token that finishes a split UTF-8 character stays with its start.
                Some(last) if last.0 == idx || std::str::from_utf8(&last.1).is_err() => {
                    last.1.extend_from_slice(&tok.bytes);
                    last.3 = tok.t1;
                }
                _ => parts.push((idx, tok.bytes.clone(), tok.t0, tok.t1)),
            }
        }
        // Even a segment whose tokens all fall in one utterance is cut to that utterance's
        // bounds: whisper's segment end often runs on into the pause and the next utterance.
        for (idx, bytes, t0, t1) in parts {
            let p = &window.pieces[idx];
            let (ps, pe) = (p.window_start, p.window_start + p.region.duration());
            out.push(RawSegment {
                t0: t0.clamp(ps, pe),
                t1: t1.clamp(ps, pe),
                text: String::from_utf8_lossy(&bytes).into_owned(),
                tokens: Vec::new(),
                ..seg.clone()
            });
        }
    }
    out
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
        let w = Window {
            role: Role::Agent,
            samples: vec![0.0; 16000 * 6],
            pieces: vec![
                Piece {
                    window_start: 0.0,
                    region: SpeechRegion {
                        start: 10.0,
                        end: 12.0,
                    },
                },
                Piece {
                    window_start: 3.0,
                    region: SpeechRegion {
                        start: 20.0,
                        end: 23.0,
                    },
                },
            ],
        };
        let tok = |s: &str, t0: f64, t1: f64| RawToken {
            bytes: s.as_bytes().to_vec(),
            t0,
            t1,
        };
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
