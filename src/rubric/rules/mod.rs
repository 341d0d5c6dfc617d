//! Rule kinds: one file per kind, each opening with its reference doc.
//!
//! A kind is a [`RuleKind`] (what it checks, given one item and one call) plus a compile step
//! from the item's `[items.rule]` table. The `rule_kinds!` list below is the one place kinds are
//! named: it declares each kind's module and generates [`Kind`], [`Rule`] and [`KINDS`] (which
//! parsing looks kinds up in, the tests walk, and `docs/rubric.md` is generated from, out of the
//! `//!` docs of each kind's file). Adding a kind is its file plus one line of that list.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::matcher::{Phrase, PhraseSet, Tolerance};
use super::scope::RoleScope;
use super::{CallFacts, Finding, Item};

/// What every rule kind does: look at one call and report the item's findings.
pub trait RuleKind: std::fmt::Debug + Send + Sync {
    /// Findings of `item` (whose rule is `self`) in the call; points are capped by the caller.
    fn check(&self, item: &Item, facts: &CallFacts) -> Vec<Finding>;
}

/// One line per kind: `Variant(module::Type) = "name", default role, live warning title` (the
/// pop-up heading a live finding of the kind gets; `None`: the kind judges only whole calls).
macro_rules! rule_kinds {
    ($($variant:ident($module:ident :: $ty:ident) = $name:literal, $role:ident, $live:expr;)+) => {
        $(pub mod $module;)+

        /// The closed set of rule kinds: what `kind = "…"` names in a rubric file and what a
        /// finding says produced it (stored as the same snake_case name).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Kind {
            $($variant,)+
        }

        impl Kind {
            /// The kind's name in rubric files and in the store.
            pub fn name(self) -> &'static str {
                match self {
                    $(Kind::$variant => $name,)+
                }
            }
        }

        /// A compiled rule of one of the known kinds.
        #[derive(Debug, Clone)]
        pub enum Rule {
            $($variant($module::$ty),)+
        }

        impl Rule {
            pub fn as_kind(&self) -> &dyn RuleKind {
                match self {
                    $(Rule::$variant(r) => r,)+
                }
            }

            /// Which kind this rule is.
            pub fn kind(&self) -> Kind {
                match self {
                    $(Rule::$variant(_) => Kind::$variant,)+
                }
            }
        }

        /// Every rule kind, in reference order.
        pub const KINDS: &[KindInfo] = &[
            $(KindInfo {
                kind: Kind::$variant,
                source: include_str!(concat!(stringify!($module), ".rs")),
                default_role: RoleScope::$role,
                live_title: $live,
                compile: |t, cx| $module::$ty::compile(t, cx).map(Rule::$variant),
            },)+
        ];
    };
}

rule_kinds! {
    RequiredPhrase(required_phrase::RequiredPhrase) = "required_phrase", Agent, None;
    ForbiddenPhrase(forbidden_phrase::ForbiddenPhrase) = "forbidden_phrase", Agent, Some("禁语提醒");
    Keywords(keywords::Keywords) = "keywords", Agent, None;
    Order(order::Order) = "order", Agent, None;
    Silence(silence::Silence) = "silence", Both, Some("静音提醒");
    TalkOver(talk_over::TalkOver) = "talk_over", Agent, None;
    SpeechRate(speech_rate::SpeechRate) = "speech_rate", Agent, None;
    CallDuration(call_duration::CallDuration) = "call_duration", Both, None;
    AgentTone(agent_tone::AgentTone) = "agent_tone", Agent, Some("语气提醒");
}

impl Kind {
    /// The kind called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Kind> {
        KINDS.iter().map(|k| k.kind).find(|k| k.name() == name)
    }

    /// Its entry in [`KINDS`].
    pub fn info(self) -> &'static KindInfo {
        KINDS
            .iter()
            .find(|k| k.kind == self)
            .expect("every Kind has a KINDS entry (generated together)")
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Rule {
    /// Whether this rule can judge a call in progress ([`KindInfo::live`]).
    pub fn judges_live(&self) -> bool {
        self.kind().info().live()
    }
}

/// A rule kind as the parser and the reference generator see it.
pub struct KindInfo {
    /// `kind = "…"` in rubric files is `kind.name()`.
    pub kind: Kind,
    /// The kind's source file (its leading `//!` doc goes into docs/rubric.md).
    pub source: &'static str,
    /// The role scope when the item gives none.
    pub default_role: RoleScope,
    /// The heading of the live warning a provisional finding of this kind pops up, for kinds
    /// that can judge a call in progress: their evidence is complete as soon as an utterance, a
    /// tone stretch or a pause is (forbidden phrases, agent tone, silence). A live session runs
    /// these on what it has so far and emits provisional findings; every kind runs at the end.
    pub live_title: Option<&'static str>,
    compile: fn(toml::Table, &Compile) -> Result<Rule, RuleError>,
}

impl KindInfo {
    /// The kind can judge a call in progress (it has a live warning).
    pub fn live(&self) -> bool {
        self.live_title.is_some()
    }

    pub(crate) fn compile(&self, table: toml::Table, cx: &Compile) -> Result<Rule, RuleError> {
        (self.compile)(table, cx)
    }
}

/// The kind called `name`.
pub fn kind(name: &str) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.kind.name() == name)
}

/// What is wrong with a rule table; `key` names the offending key when there is one, so the
/// parser can point at its line.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleError {
    pub message: String,
    pub key: Option<String>,
}

impl RuleError {
    pub fn new(message: impl Into<String>, key: &str) -> RuleError {
        RuleError {
            message: message.into(),
            key: Some(key.to_string()),
        }
    }
}

/// What compiling a rule needs from the rest of the rubric.
#[derive(Debug, Default, Clone)]
pub struct Compile {
    /// The rubric's `[synonyms]` groups, each a list of interchangeable phrases.
    pub synonyms: Vec<Vec<String>>,
    /// The rubric's learned sentence scorer (`sentence_model`), if it names one.
    pub scorer: Option<std::sync::Arc<crate::rubric::sentence::SentenceScorer>>,
    /// The id of the item being compiled.
    pub item_id: String,
}

impl Compile {
    /// The same context for compiling item `id`.
    pub fn for_item(&self, id: &str) -> Compile {
        Compile {
            item_id: id.to_string(),
            ..self.clone()
        }
    }

    /// Compile the phrases under `key`, each expanded by its synonym groups; each expansion keeps
    /// the written phrase as its label.
    pub fn phrases(
        &self,
        key: &str,
        list: &[String],
        tolerance: Tolerance,
    ) -> Result<PhraseSet, RuleError> {
        let mut set = PhraseSet::default();
        for p in list {
            self.add_group(&mut set, key, std::slice::from_ref(p), p, tolerance)?;
        }
        Ok(set)
    }

    /// Compile one term made of interchangeable phrases (labelled by the first).
    pub fn term(
        &self,
        key: &str,
        group: &[String],
        tolerance: Tolerance,
    ) -> Result<PhraseSet, RuleError> {
        let mut set = PhraseSet::default();
        let label = group
            .first()
            .ok_or_else(|| RuleError::new("an empty synonym list", key))?;
        self.add_group(&mut set, key, group, label, tolerance)?;
        Ok(set)
    }

    fn add_group(
        &self,
        set: &mut PhraseSet,
        key: &str,
        group: &[String],
        label: &str,
        tolerance: Tolerance,
    ) -> Result<(), RuleError> {
        let norm = crate::text::normalize_for_compare;
        let mut texts: Vec<String> = Vec::new();
        for p in group {
            texts.push(p.clone());
            for syn in &self.synonyms {
                if syn.iter().any(|s| norm(s) == norm(p)) {
                    texts.extend(syn.iter().cloned());
                }
            }
        }
        let mut seen: Vec<String> = set.phrases.iter().map(|p| norm(&p.text)).collect();
        for t in texts {
            let n = norm(&t);
            if seen.contains(&n) {
                continue;
            }
            let phrase = Phrase::new(&t, label, tolerance).ok_or_else(|| {
                RuleError::new(
                    format!("phrase {t:?} has no characters to match (only punctuation?)"),
                    key,
                )
            })?;
            set.phrases.push(phrase);
            seen.push(n);
        }
        Ok(())
    }
}

/// Deserialize a rule table into a kind's settings (unknown keys are errors: a typo must not
/// silently fall back to a default).
pub(crate) fn settings<T: DeserializeOwned>(table: toml::Table) -> Result<T, RuleError> {
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| {
            let message = e.message().replace('\n', " ");
            // serde names the key in backticks: "unknown field `within`", "missing field `phrases`".
            let key = message
                .split('`')
                .nth(1)
                .filter(|k| !k.is_empty() && !k.contains(' '))
                .map(str::to_string);
            RuleError {
                message: message.trim().to_string(),
                key,
            }
        })
}

/// `max_distance` must be a non-negative number.
pub(crate) fn tolerance(max_distance: Option<f64>) -> Result<Tolerance, RuleError> {
    match max_distance {
        Some(d) if !(d.is_finite() && d >= 0.0) => Err(RuleError::new(
            format!("max_distance must be ≥ 0 syllable edits, not {d}"),
            "max_distance",
        )),
        d => Ok(Tolerance::from_option(d)),
    }
}

/// A list of phrases must not be empty.
pub(crate) fn non_empty(key: &str, list: &[String]) -> Result<(), RuleError> {
    if list.is_empty() {
        Err(RuleError::new(
            format!("{key} must list at least one phrase"),
            key,
        ))
    } else {
        Ok(())
    }
}

/// `lo ≤ hi` where both are given, and both ≥ 0.
pub(crate) fn bounds(
    lo: Option<f64>,
    hi: Option<f64>,
    lo_key: &str,
    hi_key: &str,
) -> Result<(), RuleError> {
    for (v, k) in [(lo, lo_key), (hi, hi_key)] {
        if let Some(v) = v
            && !(v.is_finite() && v >= 0.0)
        {
            return Err(RuleError::new(format!("{k} must be ≥ 0, not {v}"), k));
        }
    }
    match (lo, hi) {
        (None, None) => Err(RuleError {
            message: format!("give {lo_key}, {hi_key} or both"),
            key: None,
        }),
        (Some(a), Some(b)) if a > b => Err(RuleError::new(
            format!("{lo_key} ({a}) is greater than {hi_key} ({b})"),
            lo_key,
        )),
        _ => Ok(()),
    }
}

/// A window's settings as rule tables spell them.
pub(crate) fn window(
    position: super::scope::Position,
    within_s: Option<f64>,
    within_segments: Option<usize>,
) -> Result<super::scope::Window, RuleError> {
    let w = super::scope::Window {
        position,
        within_s,
        within_segments,
    };
    w.validate().map_err(|(m, k)| RuleError::new(m, k))?;
    Ok(w)
}

/// Phrases as a short list for evidence: 「您好」「为您服务」.
pub(crate) fn quoted_list<'a>(labels: impl IntoIterator<Item = &'a str>) -> String {
    labels.into_iter().map(|l| format!("「{l}」")).collect()
}

#[cfg(test)]
pub(crate) mod testing {
    //! Hand-built calls for the rule kinds' unit tests.

    use crate::asr::Segment;
    use crate::audio::Role;
    use crate::rubric::{CallFacts, Finding, Rubric};
    use crate::tone::ToneWindow;
    use crate::vad::SpeechRegions;

    pub fn seg(role: Role, start: f64, end: f64, text: &str) -> Segment {
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

    pub fn agent(start: f64, end: f64, text: &str) -> Segment {
        seg(Role::Agent, start, end, text)
    }

    pub fn caller(start: f64, end: f64, text: &str) -> Segment {
        seg(Role::Caller, start, end, text)
    }

    /// Speech regions that are exactly the segments' times.
    pub fn regions_of(segments: &[Segment]) -> Vec<SpeechRegions> {
        SpeechRegions::of_stereo_spans(segments.iter().map(|s| (s.role, s.start, s.end)))
    }

    /// A one-item rubric from an item's TOML (without the `[[items]]` header).
    pub fn rubric(item: &str) -> Rubric {
        let text = format!("name = \"t\"\nversion = \"1\"\n[[items]]\n{item}");
        crate::rubric::parse(&text, std::path::Path::new("test.toml"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Findings of a one-item rubric on segments (regions from the segments, no tone).
    pub fn run(item: &str, segments: &[Segment]) -> Vec<Finding> {
        run_with(item, segments, &regions_of(segments), &[])
    }

    pub fn run_with(
        item: &str,
        segments: &[Segment],
        speech: &[SpeechRegions],
        tone: &[ToneWindow],
    ) -> Vec<Finding> {
        let r = rubric(item);
        let duration_s = segments.iter().map(|s| s.end).fold(0.0, f64::max) + 1.0;
        let facts = CallFacts {
            duration_s,
            segments,
            speech,
            tone,
        };
        crate::rubric::check(&r, &facts).0
    }
}

#[cfg(test)]
mod kind_tests {
    use super::*;

    #[test]
    fn every_kind_has_exactly_one_kinds_entry_and_its_name_round_trips() {
        use Kind::*;
        for k in [
            RequiredPhrase,
            ForbiddenPhrase,
            Keywords,
            Order,
            Silence,
            TalkOver,
            SpeechRate,
            CallDuration,
            AgentTone,
        ] {
            // Exhaustive: a new variant does not compile here until it is listed above.
            match k {
                RequiredPhrase | ForbiddenPhrase | Keywords | Order | Silence | TalkOver
                | SpeechRate | CallDuration | AgentTone => {}
            }
            assert_eq!(KINDS.iter().filter(|i| i.kind == k).count(), 1, "{k}");
            assert_eq!(Kind::from_name(k.name()), Some(k));
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.name())
            );
        }
        assert_eq!(KINDS.len(), 9);
    }
}
