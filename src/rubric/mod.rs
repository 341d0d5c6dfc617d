//! Rubrics: what a call is inspected for, and the deductions it earns.
//!
//! A rubric is a TOML file (see `docs/rubric.md`, generated from these sources, and the shipped
//! `rubrics/12345.toml`): a named, versioned list of items, each with points, an optional veto
//! (一票否决) and one rule of a known kind. [`check`] runs every item over one call's
//! [`CallFacts`] and returns the [`Finding`]s (with time span and quoted evidence) and the
//! [`Score`].
//!
//! Layout:
//! - [`mod@parse`]: TOML → [`Rubric`], with errors that name file, line and column ([`RubricError`]);
//!   its module doc is the file-format part of the reference;
//! - [`matcher`]: the phrase matcher every word-based rule uses — pinyin, edit distance, number
//!   normalisation, so that ASR errors do not cause false deductions;
//! - [`scope`]: role scope, time windows and runs of one speaker's segments;
//! - [`rules`]: one file per rule kind, each documented as *What it checks / Why QC cares /
//!   Example*; [`reference_markdown`] turns those docs into `docs/rubric.md`.
//!
//! Scoring: each finding deducts its item's `points`; an item deducts for at most `max_count`
//! findings (default 1: a checklist item such as "no greeting −2" is deducted once per call);
//! findings past the cap are still listed, with `points` 0, so reviewers see every occurrence and
//! the findings' points always add up to the deductions. A finding of a `veto` item sets the
//! total to 0.

pub mod corpus;
pub mod grammar;
pub mod lexicon;
pub mod matcher;
pub mod parse;
mod reference;
pub mod rules;
pub mod scope;
pub mod sentence;

use serde::{Deserialize, Serialize};

use crate::asr::Segment;
use crate::audio::Role;
use crate::tone::ToneWindow;
use crate::vad::SpeechRegions;

pub use parse::{RubricError, load, parse};
pub use reference::reference_markdown;
pub use rules::{Kind, Rule, RuleKind};
pub use scope::{Position, RoleScope, Window};

/// The score a call starts from.
pub const FULL_MARKS: f64 = 100.0;

/// A loaded rubric.
#[derive(Debug, Clone)]
pub struct Rubric {
    pub name: String,
    pub version: String,
    pub items: Vec<Item>,
    /// Domain terms corrected in transcripts by sound, in context (see [`lexicon`]).
    pub lexicon: lexicon::Lexicon,
    /// Mask personal data in transcripts as they are recognised, so the store, the pages and
    /// every finding's evidence only ever hold the masked text (see [`crate::redact`]).
    pub mask_personal_data: bool,
    /// SHA-256 (hex) of the file's bytes: stored with each score, so a score can always be traced
    /// to the exact rubric text that produced it.
    pub source_hash: String,
}

/// One inspected item.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: String,
    pub description: String,
    /// Score dimension (服务规范, 服务态度, …) for per-dimension reports.
    pub dimension: String,
    /// Deducted per finding (up to `max_count` findings).
    pub points: f64,
    /// 一票否决: any finding sets the call's total to 0.
    pub veto: bool,
    pub role: RoleScope,
    /// At most this many findings of the item deduct points.
    pub max_count: u32,
    /// When the item is judged at all (`applies_if`).
    pub applies_if: AppliesIf,
    pub rule: Rule,
    /// Line of the item's `id` in the rubric file (for messages that point back at the file).
    pub line: usize,
}

/// An item's `applies_if`: the calls it is judged on (all, by default).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AppliesIf {
    /// Only calls at least this long (a wrong number has no closing to miss).
    pub min_duration_s: f64,
}

impl AppliesIf {
    pub fn holds(&self, facts: &CallFacts) -> bool {
        facts.duration_s >= self.min_duration_s
    }
}

/// What the rules look at: one call's transcript, speech regions and tone windows.
#[derive(Debug, Clone, Copy)]
pub struct CallFacts<'a> {
    pub duration_s: f64,
    /// Recognised speech, any order (rules sort what they need).
    pub segments: &'a [Segment],
    /// Voice-activity regions per role: silence and talk-over are measured from these, never
    /// from ASR segment times (whisper's times stretch across pauses).
    pub speech: &'a [SpeechRegions],
    /// Tone-model windows of any role (agent_tone keeps its own role's).
    pub tone: &'a [ToneWindow],
}

/// One deduction (or flag) with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub item_id: String,
    /// The rule kind that produced it.
    pub kind: Kind,
    pub description: String,
    pub dimension: String,
    /// Points deducted by this finding (0 past the item's `max_count`).
    pub points: f64,
    pub veto: bool,
    /// Whose speech the evidence is (none for call-level facts such as silence or duration).
    pub role: Option<Role>,
    /// Seconds from the start of the call.
    #[serde(serialize_with = "crate::time::round_ms")]
    pub start: f64,
    #[serde(serialize_with = "crate::time::round_ms")]
    pub end: f64,
    /// What was heard or measured, for the reviewer: quoted transcript with the hit in 【】,
    /// or the measurement against the limit.
    pub evidence: String,
    /// The item's points and how many of its findings count ([`Item::max_count`]), kept so a
    /// call's score can be recomputed from its stored findings when a trainer dismisses one.
    #[serde(default)]
    pub item_points: f64,
    #[serde(default)]
    pub max_count: u32,
    /// Something trainers should see that is within the rules (an announced hold of normal
    /// length, a pause below the dead-air limit): 0 points, never in the score.
    #[serde(default)]
    pub observation: bool,
}

impl Finding {
    /// A finding of `item` (points and veto from the item; capping is done by [`check`]).
    pub fn new(
        item: &Item,
        role: Option<Role>,
        start: f64,
        end: f64,
        evidence: impl Into<String>,
    ) -> Finding {
        Finding {
            item_id: item.id.clone(),
            kind: item.rule.kind(),
            description: item.description.clone(),
            dimension: item.dimension.clone(),
            points: item.points,
            veto: item.veto,
            role,
            start,
            end,
            evidence: evidence.into(),
            item_points: item.points,
            max_count: item.max_count,
            observation: false,
        }
    }

    /// An observation of `item`: recorded with its evidence, worth no points.
    pub fn observation(
        item: &Item,
        role: Option<Role>,
        start: f64,
        end: f64,
        evidence: impl Into<String>,
    ) -> Finding {
        Finding {
            points: 0.0,
            item_points: 0.0,
            veto: false,
            observation: true,
            ..Finding::new(item, role, start, end, evidence)
        }
    }
}

/// What one finding contributes to a call's score.
#[derive(Debug, Clone, Copy)]
pub struct Counted<'a> {
    pub item_id: &'a str,
    pub start: f64,
    pub item_points: f64,
    pub max_count: u32,
    pub veto: bool,
}

/// (deductions, vetoed, points of each finding) of the findings that count, in the order given:
/// an item's findings in time order deduct its points up to its `max_count` (0 after), and any
/// finding of a veto item vetoes the call. [`check`] scores with it, and so does the store when
/// a trainer's dismissal takes a finding out of the count.
pub fn tally(counted: &[Counted]) -> (f64, bool, Vec<f64>) {
    let mut order: Vec<usize> = (0..counted.len()).collect();
    order.sort_by(|&a, &b| counted[a].start.total_cmp(&counted[b].start));
    let mut seen: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
    let mut points = vec![0.0; counted.len()];
    let (mut deductions, mut vetoed) = (0.0, false);
    for i in order {
        let c = &counted[i];
        if c.max_count == 0 {
            // An observation: no points, and it takes no place in its item's count.
            continue;
        }
        let n = seen.entry(c.item_id).or_insert(0);
        if *n < c.max_count {
            points[i] = c.item_points;
            deductions += c.item_points;
        }
        *n += 1;
        vetoed |= c.veto;
    }
    (deductions, vetoed, points)
}

/// The total a call gets for these deductions: [`FULL_MARKS`] − deductions, floored at 0; 0
/// when vetoed.
pub fn total_of(deductions: f64, vetoed: bool) -> f64 {
    if vetoed {
        0.0
    } else {
        (FULL_MARKS - deductions).max(0.0)
    }
}

/// The call's score under a rubric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub rubric: String,
    pub version: String,
    /// [`FULL_MARKS`] − deductions, floored at 0; 0 when any veto item has a finding.
    pub total: f64,
    pub deductions: f64,
    pub vetoed: bool,
}

/// Run every item of `rubric` over one call.
///
/// Findings come back in time order (items in rubric order where times tie).
pub fn check(rubric: &Rubric, facts: &CallFacts) -> (Vec<Finding>, Score) {
    let mut findings = Vec::new();
    for item in rubric.items.iter().filter(|i| i.applies_if.holds(facts)) {
        let mut found = item.rule.as_kind().check(item, facts);
        found.sort_by(|a, b| a.start.total_cmp(&b.start));
        findings.extend(found);
    }
    findings.sort_by(|a, b| a.start.total_cmp(&b.start));
    let counted: Vec<Counted> = findings
        .iter()
        .map(|f| Counted {
            item_id: &f.item_id,
            start: f.start,
            item_points: f.item_points,
            // Observations never use up an item's count.
            max_count: if f.observation { 0 } else { f.max_count },
            veto: f.veto,
        })
        .collect();
    let (deductions, vetoed, points) = tally(&counted);
    for (f, p) in findings.iter_mut().zip(points) {
        f.points = p;
    }
    let score = Score {
        rubric: rubric.name.clone(),
        version: rubric.version.clone(),
        total: total_of(deductions, vetoed),
        deductions,
        vetoed,
    };
    (findings, score)
}

impl Rubric {
    /// The item with this id.
    pub fn item(&self, id: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.id == id)
    }

    /// How many of the agent's scripted phrases (the phrases of `required_phrase` items on the
    /// agent: greeting, closing) one voice's `segments` contain, anywhere: on a mono recording,
    /// the voice that says the script is the agent's ([`crate::speakers`]).
    pub fn script_phrases_heard(&self, segments: &[crate::asr::Segment]) -> usize {
        let all: Vec<usize> = (0..segments.len()).collect();
        let runs = scope::runs(segments, &all);
        let mut heard = std::collections::BTreeSet::new();
        for item in self.items.iter().filter(|i| i.role == RoleScope::Agent) {
            let Rule::RequiredPhrase(rule) = &item.rule else {
                continue;
            };
            for run in &runs {
                for hit in rule.phrases.find(&run.tokens) {
                    heard.insert((item.id.as_str(), hit.phrase));
                }
            }
        }
        heard.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rubrics_can_be_shared_by_worker_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Rubric>();
        shareable::<Finding>();
    }

    #[test]
    fn score_adds_capped_points_and_floors_at_zero() {
        let r = rules::testing::rubric(
            "id = \"r\"\ndescription = \"r\"\npoints = 40\nmax_count = 5\n\
             [items.rule]\nkind = \"forbidden_phrase\"\nphrases = [\"管不了\"]",
        );
        let s = [rules::testing::agent(0.0, 5.0, "管不了管不了管不了")];
        let facts = CallFacts {
            duration_s: 6.0,
            segments: &s,
            speech: &[],
            tone: &[],
        };
        let (findings, score) = check(&r, &facts);
        assert_eq!(findings.len(), 3);
        assert_eq!(
            (score.deductions, score.total, score.vetoed),
            (120.0, 0.0, false)
        );
        assert_eq!((score.rubric.as_str(), score.version.as_str()), ("t", "1"));
    }
}
