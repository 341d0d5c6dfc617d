//! Which part of a call a phrase rule looks at: role scope, time window, and runs of speech.
//!
//! Rules that listen for words need the same three steps: keep the segments of the roles the item
//! covers ([`RoleScope`]), keep the ones in the item's window ([`Window`]: the first / last N
//! seconds or sentences of that role's speech), and join consecutive segments of one speaker into
//! [`Run`]s, so a phrase that whisper split over two segments ("请问还有其他" | "可以帮您的吗")
//! is still found. A run never spans the other party's speech or a pause longer than
//! [`JOIN_GAP_S`], so words from two different turns are never glued into a false phrase.

use serde::{Deserialize, Serialize};

use crate::asr::Segment;
use crate::audio::Role;

use super::matcher::{self, Token};

/// Consecutive segments of one speaker closer than this are searched as one text.
pub const JOIN_GAP_S: f64 = 1.5;

/// Whose speech an item looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleScope {
    Agent,
    Caller,
    Both,
}

impl RoleScope {
    /// Does speech of `role` count? Speech of a mono recording whose voices could not be told
    /// apart ([`Role::Mixed`], see [`crate::speakers`]) has no known speaker, so it counts for
    /// every scope: the findings carry role `mixed`, telling reviewers
    /// to check who said it.
    pub fn includes(self, role: Role) -> bool {
        matches!(
            (self, role),
            (RoleScope::Both, _)
                | (_, Role::Mixed)
                | (RoleScope::Agent, Role::Agent)
                | (RoleScope::Caller, Role::Caller)
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RoleScope::Agent => "agent",
            RoleScope::Caller => "caller",
            RoleScope::Both => "both",
        }
    }

    /// How evidence names the speaker ("agent speech").
    pub fn speech(self) -> &'static str {
        match self {
            RoleScope::Agent => "agent speech",
            RoleScope::Caller => "caller speech",
            RoleScope::Both => "speech",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<RoleScope> {
        match s {
            "agent" => Some(RoleScope::Agent),
            "caller" => Some(RoleScope::Caller),
            "both" => Some(RoleScope::Both),
            _ => None,
        }
    }
}

/// Where in the call a window lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Position {
    /// The beginning of the scoped role's speech.
    Start,
    /// The end of the scoped role's speech.
    End,
    /// The whole call.
    #[default]
    Anywhere,
}

/// A stretch of the scoped role's speech: the first or last `within_s` seconds and/or
/// `within_segments` sentences, or the whole call.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Window {
    pub position: Position,
    pub within_s: Option<f64>,
    pub within_segments: Option<usize>,
}

impl Window {
    /// Check the settings; the message names the offending key.
    pub(crate) fn validate(&self) -> Result<(), (String, &'static str)> {
        if let Some(s) = self.within_s
            && !(s.is_finite() && s > 0.0)
        {
            return Err((format!("within_s must be > 0 seconds, not {s}"), "within_s"));
        }
        if self.within_segments == Some(0) {
            return Err((
                "within_segments must be at least 1".into(),
                "within_segments",
            ));
        }
        if self.position != Position::Anywhere
            && self.within_s.is_none()
            && self.within_segments.is_none()
        {
            return Err((
                "position \"start\" / \"end\" needs within_s or within_segments".into(),
                "position",
            ));
        }
        Ok(())
    }

    /// Indices into `segments` of the scoped segments inside the window, in time order.
    pub fn select(&self, segments: &[Segment], scope: RoleScope) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..segments.len())
            .filter(|&i| scope.includes(segments[i].role))
            .collect();
        idx.sort_by(|&a, &b| segments[a].start.total_cmp(&segments[b].start));
        match self.position {
            Position::Anywhere => idx,
            Position::Start => {
                let Some(&first) = idx.first() else {
                    return idx;
                };
                let t0 = segments[first].start;
                idx.into_iter()
                    .enumerate()
                    .filter(|&(n, i)| {
                        self.within_s.is_none_or(|w| segments[i].start < t0 + w)
                            && self.within_segments.is_none_or(|k| n < k)
                    })
                    .map(|(_, i)| i)
                    .collect()
            }
            Position::End => {
                let Some(t1) = idx.iter().map(|&i| segments[i].end).reduce(f64::max) else {
                    return idx;
                };
                let count = idx.len();
                idx.into_iter()
                    .enumerate()
                    .filter(|&(n, i)| {
                        self.within_s.is_none_or(|w| segments[i].end > t1 - w)
                            && self.within_segments.is_none_or(|k| n + k >= count)
                    })
                    .map(|(_, i)| i)
                    .collect()
            }
        }
    }

    /// The window in words, for evidence: "in the first 15 s of agent speech".
    pub fn describe(&self, scope: RoleScope) -> String {
        let limit = match (self.within_s, self.within_segments) {
            (Some(s), Some(k)) => format!("{} s / {k} sentences", fmt_num(s)),
            (Some(s), None) => format!("{} s", fmt_num(s)),
            (None, Some(k)) => format!("{k} sentences"),
            (None, None) => String::new(),
        };
        match self.position {
            Position::Anywhere => format!("anywhere in {}", scope.speech()),
            Position::Start => format!("in the first {limit} of {}", scope.speech()),
            Position::End => format!("in the last {limit} of {}", scope.speech()),
        }
    }
}

/// A number without a useless ".0".
pub fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e12 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// Consecutive segments of one speaker, searched as one text.
#[derive(Debug, Clone)]
pub struct Run {
    pub role: Role,
    /// Indices into the call's segments.
    pub segments: Vec<usize>,
    /// The segments' texts joined (original characters, punctuation kept).
    pub text: Vec<char>,
    /// For each char of `text`, the index into the call's segments it came from.
    char_segment: Vec<usize>,
    /// For each char of `text`, its char offset within its own segment's text.
    char_offset: Vec<usize>,
    pub tokens: Vec<Token>,
}

impl Run {
    /// Time span (start of the first, end of the last segment) of tokens `start..end`.
    pub fn span(&self, segments: &[Segment], start: usize, end: usize) -> (f64, f64) {
        let a = self.char_segment[self.tokens[start].source];
        let b = self.char_segment[self.tokens[end - 1].source];
        (segments[a].start, segments[b].end)
    }

    /// Char range in `text` of tokens `start..end`.
    pub fn char_range(&self, start: usize, end: usize) -> (usize, usize) {
        (self.tokens[start].source, self.tokens[end - 1].source + 1)
    }

    /// The segment and offset within it where tokens `start..` begin (for callers that want to
    /// point into one segment's text).
    pub fn locate(&self, token: usize) -> (usize, usize) {
        let c = self.tokens[token].source;
        (self.char_segment[c], self.char_offset[c])
    }

    /// The recognised words of tokens `start..end`, as written.
    pub fn quote(&self, start: usize, end: usize) -> String {
        let (a, b) = self.char_range(start, end);
        self.text[a..b].iter().collect()
    }

    /// The hit in context, marked: "…这事【不归我们管】，你自己去找物业！".
    pub fn excerpt(&self, start: usize, end: usize) -> String {
        const CONTEXT: usize = 12;
        let (a, b) = self.char_range(start, end);
        let from = a.saturating_sub(CONTEXT);
        let to = (b + CONTEXT).min(self.text.len());
        let mut s = String::new();
        if from > 0 {
            s.push('…');
        }
        s.extend(&self.text[from..a]);
        s.push('【');
        s.extend(&self.text[a..b]);
        s.push('】');
        s.extend(&self.text[b..to]);
        if to < self.text.len() {
            s.push('…');
        }
        s
    }

    /// Is char `pos` of the text inside quotation marks (the agent quoting someone)?
    pub fn is_quoted(&self, pos: usize) -> bool {
        let mut open_cjk = 0i32;
        let mut open_ascii = false;
        for &c in &self.text[..pos] {
            match c {
                '“' | '「' | '『' | '‘' => open_cjk += 1,
                '”' | '」' | '』' | '’' => open_cjk -= 1,
                '"' => open_ascii = !open_ascii,
                _ => {}
            }
        }
        open_cjk > 0 || open_ascii
    }
}

/// Join the selected segments (indices, time order) into runs of one speaker.
pub fn runs(segments: &[Segment], selected: &[usize]) -> Vec<Run> {
    // Order of all segments, to see whether the other party spoke between two selected ones.
    let mut order: Vec<usize> = (0..segments.len()).collect();
    order.sort_by(|&a, &b| segments[a].start.total_cmp(&segments[b].start));
    let mut rank = vec![0; segments.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r;
    }
    let mut out: Vec<Run> = Vec::new();
    let mut last: Option<usize> = None;
    for &i in selected {
        let seg = &segments[i];
        let joins = last.is_some_and(|l| {
            let prev = &segments[l];
            prev.role == seg.role
                && seg.start - prev.end <= JOIN_GAP_S
                && order[rank[l] + 1..rank[i]]
                    .iter()
                    .all(|&k| segments[k].role == seg.role)
        });
        if !joins {
            out.push(Run {
                role: seg.role,
                segments: Vec::new(),
                text: Vec::new(),
                char_segment: Vec::new(),
                char_offset: Vec::new(),
                tokens: Vec::new(),
            });
        }
        let run = out.last_mut().expect("a run was just pushed");
        run.segments.push(i);
        for (k, c) in seg.text.chars().enumerate() {
            run.text.push(c);
            run.char_segment.push(i);
            run.char_offset.push(k);
        }
        last = Some(i);
    }
    for run in &mut out {
        let text: String = run.text.iter().collect();
        run.tokens = matcher::tokenize(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(role: Role, start: f64, end: f64, text: &str) -> Segment {
        Segment {
            role,
            start,
            end,
            text: text.into(),
            confidence: 0.9,
            avg_logprob: -0.2,
            no_speech_prob: 0.01,
        }
    }

    #[test]
    fn start_window_counts_from_the_first_scoped_segment() {
        let s = vec![
            seg(Role::Caller, 0.0, 3.0, "喂"),
            seg(Role::Agent, 5.0, 9.0, "您好"),
            seg(Role::Agent, 18.0, 20.0, "请讲"),
            seg(Role::Agent, 21.0, 22.0, "好的"),
        ];
        let w = Window {
            position: Position::Start,
            within_s: Some(15.0),
            within_segments: None,
        };
        assert_eq!(w.select(&s, RoleScope::Agent), vec![1, 2]);
        let w = Window {
            within_segments: Some(1),
            ..w
        };
        assert_eq!(w.select(&s, RoleScope::Agent), vec![1]);
        let w = Window {
            position: Position::End,
            within_s: Some(2.5),
            within_segments: None,
        };
        assert_eq!(w.select(&s, RoleScope::Agent), vec![2, 3]);
    }

    #[test]
    fn runs_join_one_speaker_but_not_across_the_other() {
        let s = vec![
            seg(Role::Agent, 0.0, 2.0, "请问还有其他"),
            seg(Role::Agent, 2.5, 4.0, "可以帮您的吗"),
            seg(Role::Caller, 4.5, 5.0, "没有"),
            seg(Role::Agent, 5.2, 6.0, "再见"),
        ];
        let sel = Window::default().select(&s, RoleScope::Agent);
        let r = runs(&s, &sel);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].segments, vec![0, 1]);
        assert_eq!(
            r[0].text.iter().collect::<String>(),
            "请问还有其他可以帮您的吗"
        );
        assert_eq!(r[0].span(&s, 2, 8), (0.0, 4.0));
        assert_eq!(r[0].locate(6), (1, 0));
        assert_eq!(r[0].excerpt(2, 6), "请问【还有其他】可以帮您的吗");
    }

    #[test]
    fn quotes_are_detected() {
        let s = vec![seg(
            Role::Agent,
            0.0,
            2.0,
            "您说的“不归我们管”是哪个部门说的",
        )];
        let r = runs(&s, &[0]);
        assert!(r[0].is_quoted(5));
        assert!(!r[0].is_quoted(2));
        assert!(!r[0].is_quoted(12));
    }
}
