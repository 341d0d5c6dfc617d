//! Ground truth vs callqc's output: character error rate per call and role.
//!
//! A labelled call is `NAME.wav` with `NAME.json` beside it (schema: docs/ground-truth.md, the
//! format centres use for their own labelled calls). CER is computed on text normalised by
//! [`crate::text::normalize_for_compare`]: no punctuation or spaces, Simplified, digits as 一二三.
//! Per role, the reference is the role's `spoken` utterances in time order and the hypothesis is
//! the role's transcript segments in time order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::asr::Transcript;
use crate::audio::{ChannelMap, Role};
use crate::rubric::rules::Rule;
use crate::rubric::scope::Position;
use crate::rubric::{Kind, Rubric};
use crate::text::CerCount;

/// One labelled utterance.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TruthUtterance {
    pub channel: Role,
    pub start: f64,
    pub end: f64,
    pub text: String,
    #[serde(default)]
    pub spoken: Option<String>,
    #[serde(default)]
    pub style: Option<String>,
}

impl TruthUtterance {
    /// What was actually said (falls back to the written text).
    pub fn spoken(&self) -> &str {
        self.spoken.as_deref().unwrap_or(&self.text)
    }
}

/// A labelled dead-air stretch.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TruthSpan {
    pub start: f64,
    pub end: f64,
}

/// One forbidden phrase the agent said.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TruthForbidden {
    pub phrase: String,
    #[serde(default)]
    pub start: Option<f64>,
    #[serde(default)]
    pub end: Option<f64>,
}

/// QC labels of a call.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct TruthLabels {
    #[serde(default)]
    pub greeting_ok: Option<bool>,
    #[serde(default)]
    pub closing_ok: Option<bool>,
    #[serde(default)]
    pub forbidden: Vec<String>,
    #[serde(default)]
    pub forbidden_detail: Vec<TruthForbidden>,
    #[serde(default)]
    pub agent_tone: Option<String>,
    #[serde(default)]
    pub agitated_spans: Vec<(f64, f64)>,
    #[serde(default)]
    pub dead_air: Vec<TruthSpan>,
    /// Announced holds (within the rules: no deduction, but they should be seen).
    #[serde(default)]
    pub holds: Vec<TruthSpan>,
    /// The agent talking over the caller (a fault; absent: none).
    #[serde(default)]
    pub talk_over: Vec<TruthSpan>,
}

/// A ground-truth file.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct GroundTruth {
    pub call_id: String,
    pub audio: String,
    #[serde(default)]
    pub channel_map: Option<BTreeMap<String, Role>>,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub labels: TruthLabels,
    pub utterances: Vec<TruthUtterance>,
}

impl GroundTruth {
    /// The stereo channel map the file declares (default: left agent, right caller).
    pub fn channel_map(&self) -> ChannelMap {
        let mut map = ChannelMap::default();
        if let Some(m) = &self.channel_map {
            if let Some(&r) = m.get("left") {
                map.left = r;
            }
            if let Some(&r) = m.get("right") {
                map.right = r;
            }
        }
        map
    }

    /// The reference text of one role, in time order.
    pub fn role_reference(&self, role: Role) -> String {
        let mut utts: Vec<&TruthUtterance> = self
            .utterances
            .iter()
            .filter(|u| role == Role::Mixed || u.channel == role)
            .collect();
        utts.sort_by(|a, b| a.start.total_cmp(&b.start));
        utts.iter().map(|u| u.spoken()).collect::<Vec<_>>().join("")
    }
}

/// Errors reading ground truth.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a ground-truth file: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{0}: no labelled calls (NAME.wav + NAME.json) found")]
    NoCalls(PathBuf),
}

/// A labelled call found in a directory.
#[derive(Debug, Clone)]
pub struct LabelledCall {
    pub json_path: PathBuf,
    pub audio_path: PathBuf,
    pub truth: GroundTruth,
}

/// Every `NAME.json` in `dir` whose audio file exists, sorted by name.
pub fn find_labelled_calls(dir: &Path) -> Result<Vec<LabelledCall>, EvalError> {
    let io = |source| EvalError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut calls = Vec::new();
    for json_path in paths {
        let text = std::fs::read_to_string(&json_path).map_err(|source| EvalError::Io {
            path: json_path.clone(),
            source,
        })?;
        let truth: GroundTruth =
            serde_json::from_str(&text).map_err(|source| EvalError::Parse {
                path: json_path.clone(),
                source,
            })?;
        let audio_path = json_path.with_file_name(&truth.audio);
        if audio_path.exists() {
            calls.push(LabelledCall {
                json_path,
                audio_path,
                truth,
            });
        }
    }
    if calls.is_empty() {
        return Err(EvalError::NoCalls(dir.to_path_buf()));
    }
    Ok(calls)
}

/// CER of one call.
#[derive(Debug, Clone, Serialize)]
pub struct CallCer {
    pub call_id: String,
    pub per_role: BTreeMap<Role, CerCount>,
    pub total: CerCount,
}

/// Compare a transcript with its ground truth.
pub fn call_cer(truth: &GroundTruth, transcript: &Transcript, roles: &[Role]) -> CallCer {
    let mut per_role = BTreeMap::new();
    let mut total = CerCount::default();
    for &role in roles {
        let c = CerCount::of(&truth.role_reference(role), &transcript.role_text(role));
        total.add(c);
        per_role.insert(role, c);
    }
    CallCer {
        call_id: truth.call_id.clone(),
        per_role,
        total,
    }
}

/// CER over a set of calls: per call, per role and overall (character-weighted).
#[derive(Debug, Clone, Serialize)]
pub struct CerReport {
    pub calls: Vec<CallCer>,
    pub per_role: BTreeMap<Role, CerCount>,
    pub overall: CerCount,
}

impl CerReport {
    pub fn from_calls(calls: Vec<CallCer>) -> Self {
        let mut per_role: BTreeMap<Role, CerCount> = BTreeMap::new();
        let mut overall = CerCount::default();
        for c in &calls {
            for (&role, &count) in &c.per_role {
                per_role.entry(role).or_default().add(count);
            }
            overall.add(c.total);
        }
        CerReport {
            calls,
            per_role,
            overall,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::Segment;

    fn seg(role: Role, start: f64, text: &str) -> Segment {
        Segment {
            role,
            start,
            end: start + 1.0,
            text: text.into(),
            confidence: 1.0,
            avg_logprob: 0.0,
            no_speech_prob: 0.0,
        }
    }

    #[test]
    fn cer_per_role_uses_spoken_forms_and_time_order() {
        let truth: GroundTruth = serde_json::from_str(
            r#"{"call_id":"c","audio":"c.wav","utterances":[
              {"channel":"caller","start":3.0,"end":4.0,"text":"我家停水了"},
              {"channel":"agent","start":0.5,"end":2.0,"text":"您好，12345热线","spoken":"您好，一二三四五热线"},
              {"channel":"agent","start":5.0,"end":6.0,"text":"好的"}]}"#,
        )
        .unwrap();
        let t = Transcript {
            segments: vec![
                seg(Role::Agent, 0.5, "您好 12345熱線"),
                seg(Role::Caller, 3.0, "我家停水"),
                seg(Role::Agent, 5.0, "好的"),
            ],
            dropped: vec![],
        };
        let c = call_cer(&truth, &t, &[Role::Agent, Role::Caller]);
        assert_eq!(c.per_role[&Role::Agent].edits, 0);
        assert_eq!(c.per_role[&Role::Caller].edits, 1);
        assert_eq!(c.total.reference_chars, 9 + 2 + 5);
    }
}

// ------------------------------------------------------------------------------------------------
// QC labels: did the rubric find what the labels say, and nothing else?

/// A finding as evaluation needs it.
#[derive(Debug, Clone)]
pub struct FoundIssue {
    pub kind: Kind,
    pub item_id: String,
    pub start: f64,
    pub end: f64,
    pub points: f64,
    /// Within the rules, recorded for trainers (never a deduction).
    pub observation: bool,
    /// Where the item's rule looks (`required_phrase`: the greeting looks at the start, the
    /// closing at the end); `Anywhere` for other kinds.
    pub position: Position,
}

impl FoundIssue {
    /// A finding of `rubric`'s item `item_id`, with the position its rule looks at.
    pub fn new(
        rubric: &Rubric,
        kind: Kind,
        item_id: &str,
        (start, end): (f64, f64),
        points: f64,
        observation: bool,
    ) -> FoundIssue {
        let position = rubric
            .items
            .iter()
            .find(|i| i.id == item_id)
            .and_then(|i| match &i.rule {
                Rule::RequiredPhrase(r) => Some(r.window.position),
                _ => None,
            })
            .unwrap_or_default();
        FoundIssue {
            kind,
            item_id: item_id.to_string(),
            start,
            end,
            points,
            observation,
            position,
        }
    }
}

/// The label categories of the ground truth. `hold` is recall only: a labelled announced hold
/// is found when a silence finding (an observation, or a deduction for a hold too long or
/// without a thank-you) covers it.
pub const LABEL_KINDS: [&str; 7] = [
    "greeting",
    "closing",
    "forbidden",
    "dead_air",
    "agitation",
    "talk_over",
    "hold",
];

/// Which label category a finding speaks to. A `required_phrase` finding is a greeting when its
/// rule looks at the start of the call, a closing when it looks at the end; a rule that looks
/// anywhere is judged by where the finding lies (first half: greeting).
fn category(f: &FoundIssue, duration_s: f64) -> Option<&'static str> {
    if f.observation {
        return None;
    }
    match f.kind {
        Kind::RequiredPhrase if f.position == Position::Start => Some("greeting"),
        Kind::RequiredPhrase if f.position == Position::End => Some("closing"),
        Kind::RequiredPhrase if f.start < duration_s / 2.0 => Some("greeting"),
        Kind::RequiredPhrase => Some("closing"),
        Kind::ForbiddenPhrase => Some("forbidden"),
        Kind::Silence => Some("dead_air"),
        Kind::AgentTone => Some("agitation"),
        Kind::TalkOver => Some("talk_over"),
        _ => None,
    }
}

/// Counts for one label category.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Detection {
    /// Labelled cases (calls for greeting/closing, spans otherwise).
    pub labelled: usize,
    /// Labelled cases that were found.
    pub found: usize,
    /// Findings made.
    pub findings: usize,
    /// Findings that match a labelled case.
    pub correct: usize,
}

impl Detection {
    fn add(&mut self, o: Detection) {
        self.labelled += o.labelled;
        self.found += o.found;
        self.findings += o.findings;
        self.correct += o.correct;
    }
    pub fn precision(&self) -> Option<f64> {
        (self.findings > 0).then(|| self.correct as f64 / self.findings as f64)
    }
    pub fn recall(&self) -> Option<f64> {
        (self.labelled > 0).then(|| self.found as f64 / self.labelled as f64)
    }
}

/// Label evaluation of one call.
#[derive(Debug, Clone, Serialize)]
pub struct CallLabels {
    pub call_id: String,
    pub per_kind: BTreeMap<String, Detection>,
    /// True when the labels say nothing is wrong with the call.
    pub clean: bool,
    /// Deductions (points > 0) of any kind made on a clean call: each one is false.
    pub false_deductions_on_clean: usize,
    /// Those deductions, as `item start–end`.
    pub false_on_clean: Vec<String>,
}

fn overlaps(a: (f64, f64), b: (f64, f64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// Compare a call's findings with its labels.
pub fn call_labels(truth: &GroundTruth, found: &[FoundIssue], duration_s: f64) -> CallLabels {
    let l = &truth.labels;
    let by_kind = |k: &str| -> Vec<&FoundIssue> {
        found
            .iter()
            .filter(|f| category(f, duration_s) == Some(k))
            .collect()
    };
    let mut per_kind = BTreeMap::new();
    for (kind, ok) in [("greeting", l.greeting_ok), ("closing", l.closing_ok)] {
        let n = by_kind(kind).len();
        let missing = ok == Some(false);
        per_kind.insert(
            kind.to_string(),
            Detection {
                labelled: usize::from(missing),
                found: usize::from(missing && n > 0),
                findings: n,
                correct: if missing { n } else { 0 },
            },
        );
    }
    let forbidden: Vec<(f64, f64)> = l
        .forbidden_detail
        .iter()
        .filter_map(|d| Some((d.start?, d.end?)))
        .collect();
    let dead: Vec<(f64, f64)> = l.dead_air.iter().map(|d| (d.start, d.end)).collect();
    let talk_over: Vec<(f64, f64)> = l.talk_over.iter().map(|d| (d.start, d.end)).collect();
    for (kind, spans) in [
        ("forbidden", forbidden),
        ("dead_air", dead),
        ("agitation", l.agitated_spans.clone()),
        ("talk_over", talk_over),
    ] {
        let fs = by_kind(kind);
        per_kind.insert(
            kind.to_string(),
            Detection {
                labelled: spans.len(),
                found: spans
                    .iter()
                    .filter(|&&s| fs.iter().any(|f| overlaps(s, (f.start, f.end))))
                    .count(),
                findings: fs.len(),
                correct: fs
                    .iter()
                    .filter(|f| spans.iter().any(|&s| overlaps(s, (f.start, f.end))))
                    .count(),
            },
        );
    }
    let silences: Vec<&FoundIssue> = found.iter().filter(|f| f.kind == Kind::Silence).collect();
    let holds_found = l
        .holds
        .iter()
        .filter(|h| {
            silences
                .iter()
                .any(|f| overlaps((h.start, h.end), (f.start, f.end)))
        })
        .count();
    per_kind.insert(
        "hold".to_string(),
        Detection {
            labelled: l.holds.len(),
            found: holds_found,
            findings: holds_found,
            correct: holds_found,
        },
    );
    let clean = l.greeting_ok != Some(false)
        && l.closing_ok != Some(false)
        && l.forbidden.is_empty()
        && l.dead_air.is_empty()
        && l.agitated_spans.is_empty()
        && l.talk_over.is_empty();
    CallLabels {
        call_id: truth.call_id.clone(),
        per_kind,
        clean,
        false_deductions_on_clean: if clean {
            found.iter().filter(|f| f.points > 0.0).count()
        } else {
            0
        },
        false_on_clean: if clean {
            found
                .iter()
                .filter(|f| f.points > 0.0)
                .map(|f| format!("{} {:.1}–{:.1} s", f.item_id, f.start, f.end))
                .collect()
        } else {
            Vec::new()
        },
    }
}

/// Label evaluation over a set of calls.
#[derive(Debug, Clone, Serialize)]
pub struct LabelReport {
    pub calls: Vec<CallLabels>,
    pub per_kind: BTreeMap<String, Detection>,
    pub clean_calls: usize,
    pub false_deductions_on_clean: usize,
}

impl LabelReport {
    pub fn from_calls(calls: Vec<CallLabels>) -> Self {
        let mut per_kind: BTreeMap<String, Detection> = BTreeMap::new();
        for c in &calls {
            for (k, d) in &c.per_kind {
                per_kind.entry(k.clone()).or_default().add(*d);
            }
        }
        LabelReport {
            clean_calls: calls.iter().filter(|c| c.clean).count(),
            false_deductions_on_clean: calls.iter().map(|c| c.false_deductions_on_clean).sum(),
            calls,
            per_kind,
        }
    }
}

#[cfg(test)]
mod label_tests {
    use super::*;

    fn issue(kind: &str, id: &str, start: f64, end: f64) -> FoundIssue {
        FoundIssue {
            observation: false,
            kind: Kind::from_name(kind).expect("a known kind"),
            item_id: id.into(),
            start,
            end,
            points: 2.0,
            // As the default rubric's greeting and closing look.
            position: match id {
                "greeting" => Position::Start,
                "closing" => Position::End,
                _ => Position::Anywhere,
            },
        }
    }

    #[test]
    fn findings_are_matched_to_labelled_spans_by_overlap() {
        let truth: GroundTruth = serde_json::from_str(
            r#"{"call_id":"c","audio":"c.wav","utterances":[],
              "labels":{"greeting_ok":false,"closing_ok":true,
                "forbidden":["我也没办法"],
                "forbidden_detail":[{"phrase":"我也没办法","start":20.0,"end":24.0}],
                "agitated_spans":[[20.0,24.0],[30.0,33.0]],"dead_air":[]}}"#,
        )
        .unwrap();
        let found = vec![
            issue("required_phrase", "greeting", 0.0, 15.0),
            issue("forbidden_phrase", "refusal", 21.0, 23.0),
            issue("agent_tone", "agent_tone", 29.0, 31.0),
            issue("silence", "dead_air", 40.0, 52.0),
        ];
        let r = call_labels(&truth, &found, 60.0);
        let d = |k: &str| r.per_kind[k];
        assert_eq!((d("greeting").found, d("greeting").correct), (1, 1));
        assert_eq!((d("forbidden").found, d("forbidden").correct), (1, 1));
        assert_eq!((d("agitation").labelled, d("agitation").found), (2, 1));
        assert_eq!((d("dead_air").findings, d("dead_air").correct), (1, 0));
        assert!(!r.clean);
    }

    #[test]
    fn any_deduction_on_a_clean_call_is_false() {
        let truth: GroundTruth = serde_json::from_str(
            r#"{"call_id":"c","audio":"c.wav","utterances":[],
              "labels":{"greeting_ok":true,"closing_ok":true,"forbidden":[],"agitated_spans":[],"dead_air":[]}}"#,
        )
        .unwrap();
        let r = call_labels(&truth, &[issue("talk_over", "talk_over", 5.0, 6.0)], 40.0);
        assert!(r.clean);
        assert_eq!(r.false_deductions_on_clean, 1);
    }
}
