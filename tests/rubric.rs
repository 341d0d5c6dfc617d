//! The shipped rubric (rubrics/12345.toml) against the labelled sample calls, and the generated
//! reference (docs/rubric.md) against the source docs.
//!
//! The sample calls' ground truth (samples/*.json) stands in for a perfect recogniser: utterance
//! texts become transcript segments, utterance times become speech regions, and the agitated
//! utterances become high-p(agitated) tone windows. The shipped rubric must then find exactly
//! what the labels say — greeting, closing, forbidden phrases, dead air, agitation — and nothing
//! else. A second pass corrupts the transcripts the way whisper base does (homophones,
//! Traditional characters, digit forms, dropped characters) and checks that the phrase items still
//! decide correctly.

use std::collections::BTreeSet;
use std::path::PathBuf;

use callqc::asr::Segment;
use callqc::audio::Role;
use callqc::audio::degrade::Lcg;
use callqc::eval::{GroundTruth, TruthUtterance};
use callqc::rubric::{self, CallFacts, Finding, Rubric};
use callqc::tone::ToneWindow;
use callqc::vad::SpeechRegions;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shipped() -> Rubric {
    rubric::load(&root().join("rubrics/12345.toml")).unwrap_or_else(|e| panic!("{e}"))
}

/// A labelled sample: its ground truth and the raw JSON (for keys the eval types do not keep).
struct Sample {
    truth: GroundTruth,
    json: serde_json::Value,
}

impl Sample {
    fn id(&self) -> &str {
        &self.truth.call_id
    }

    fn duration(&self) -> f64 {
        self.json["duration"].as_f64().unwrap_or_else(|| {
            self.truth
                .utterances
                .iter()
                .map(|u| u.end)
                .fold(0.0, f64::max)
                + 1.0
        })
    }
}

fn samples() -> Vec<Sample> {
    let dir = root().join("samples");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no labelled calls in {}", dir.display());
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            Sample {
                truth: serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display())),
                json: serde_json::from_str(&text).unwrap(),
            }
        })
        .collect()
}

/// What a perfect front end would hand the rubric for this call; `text` gives each utterance's
/// transcript (by index).
struct Facts {
    duration_s: f64,
    segments: Vec<Segment>,
    speech: Vec<SpeechRegions>,
    tone: Vec<ToneWindow>,
}

impl Facts {
    fn of(sample: &Sample, text: impl Fn(usize, &TruthUtterance) -> String) -> Facts {
        let utts = &sample.truth.utterances;
        let segments: Vec<Segment> = utts
            .iter()
            .enumerate()
            .map(|(i, u)| Segment {
                role: u.channel,
                start: u.start,
                end: u.end,
                text: text(i, u),
                confidence: 0.9,
                avg_logprob: -0.2,
                no_speech_prob: 0.01,
            })
            .collect();
        let speech =
            SpeechRegions::of_stereo_spans(utts.iter().map(|u| (u.channel, u.start, u.end)));
        // 2 s windows every 0.5 s over each utterance, as the tone stage scores speech.
        let mut tone = Vec::new();
        for u in utts {
            let agitated = u.style.as_deref() == Some("agitated");
            let p = if agitated { 0.9 } else { 0.05 };
            let mut t = u.start;
            loop {
                let end = (t + 2.0).min(u.end);
                tone.push(ToneWindow {
                    role: u.channel,
                    start: t,
                    end,
                    p_calm: 1.0 - p,
                    p_tense: 0.0,
                    p_agitated: p,
                    features: None,
                });
                if end >= u.end {
                    break;
                }
                t += 0.5;
            }
        }
        Facts {
            duration_s: sample.duration(),
            segments,
            speech,
            tone,
        }
    }

    fn check(&self, rubric: &Rubric) -> Vec<Finding> {
        let facts = CallFacts {
            duration_s: self.duration_s,
            segments: &self.segments,
            speech: &self.speech,
            tone: &self.tone,
        };
        rubric::check(rubric, &facts).0
    }
}

/// What the recogniser would write at best: the spoken form (digits read out as words).
fn perfect(_: usize, u: &TruthUtterance) -> String {
    u.spoken().to_string()
}

/// The deductions (not observations) of one item.
fn of_item<'a>(findings: &'a [Finding], id: &str) -> Vec<&'a Finding> {
    findings
        .iter()
        .filter(|f| f.item_id == id && !f.observation)
        .collect()
}

/// The 禁语 findings of every phrase family but the insult veto (the labels name their phrase).
fn of_forbidden(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.kind == rubric::Kind::ForbiddenPhrase && f.item_id != "insult")
        .collect()
}

/// The 禁语 a finding names: `… (禁语「不归我们管」…)`; `None` for a finding by meaning (a
/// construction or the sentence scorer), which names no listed phrase.
fn phrase_of(f: &Finding) -> Option<String> {
    let label = f.evidence.split("禁语「").nth(1)?.split('」').next()?;
    Some(label.to_string())
}

/// The 禁语 a finding names, or "(by meaning)".
fn forbidden_label(f: &Finding) -> String {
    phrase_of(f).unwrap_or_else(|| "(by meaning)".into())
}

fn overlaps(a: (f64, f64), b: (f64, f64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// Check the findings of one call against its labels; returns what disagrees.
fn disagreements(sample: &Sample, findings: &[Finding], phrase_items_only: bool) -> Vec<String> {
    let labels = &sample.truth.labels;
    let mut bad = Vec::new();
    let mut expected_items: BTreeSet<&str> = BTreeSet::new();

    let greeting = !of_item(findings, "greeting").is_empty();
    if greeting != (labels.greeting_ok == Some(false)) {
        bad.push(format!(
            "greeting finding = {greeting}, label greeting_ok = {:?}",
            labels.greeting_ok
        ));
    }
    if greeting {
        expected_items.insert("greeting");
    }
    let closing = !of_item(findings, "closing").is_empty();
    if closing != (labels.closing_ok == Some(false)) {
        bad.push(format!(
            "closing finding = {closing}, label closing_ok = {:?}",
            labels.closing_ok
        ));
    }
    if closing {
        expected_items.insert("closing");
    }

    // Forbidden phrases: one finding per labelled phrase, inside the labelled utterance.
    let refusals = of_forbidden(findings);
    let mut found: Vec<String> = refusals.iter().map(|f| forbidden_label(f)).collect();
    found.sort();
    let mut want = labels.forbidden.clone();
    want.sort();
    if found != want {
        bad.push(format!("禁语 found {found:?}, labelled {want:?}"));
    }
    for f in &refusals {
        let label = forbidden_label(f);
        let placed = labels.forbidden_detail.iter().any(|d| {
            d.phrase == label
                && overlaps(
                    (f.start, f.end),
                    (d.start.unwrap_or(0.0), d.end.unwrap_or(1e9)),
                )
        });
        if !placed {
            bad.push(format!(
                "禁语 {label} at {:.1}–{:.1} s is not where it was labelled",
                f.start, f.end
            ));
        }
        if f.role != Some(Role::Agent) {
            bad.push(format!("禁语 {label} attributed to {:?}", f.role));
        }
    }
    for f in &refusals {
        expected_items.insert(f.item_id.as_str());
    }

    if !phrase_items_only {
        // Dead air: the labelled gaps, and no others (explained holds are not dead air).
        let silences = of_item(findings, "dead_air");
        let mut spans: Vec<(f64, f64)> = silences.iter().map(|f| (f.start, f.end)).collect();
        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
        let labelled: Vec<(f64, f64)> = labels.dead_air.iter().map(|d| (d.start, d.end)).collect();
        let same = spans.len() == labelled.len()
            && spans
                .iter()
                .zip(&labelled)
                .all(|(a, b)| (a.0 - b.0).abs() < 0.05 && (a.1 - b.1).abs() < 0.05);
        if !same {
            bad.push(format!("dead air found {spans:?}, labelled {labelled:?}"));
        }
        if !silences.is_empty() {
            expected_items.insert("dead_air");
        }
        // Every labelled hold is on the record, as an observation (no points).
        for h in labels.holds.iter() {
            let seen = findings.iter().any(|f| {
                f.item_id == "dead_air"
                    && f.observation
                    && overlaps((f.start, f.end), (h.start, h.end))
            });
            if !seen {
                bad.push(format!("hold {:.1}–{:.1} s not observed", h.start, h.end));
            }
        }

        // Agitation: every labelled span found, every finding on a labelled span.
        let tone = of_item(findings, "agent_tone");
        for &(a, b) in &labels.agitated_spans {
            if !tone.iter().any(|f| overlaps((f.start, f.end), (a, b))) {
                bad.push(format!("agitated span {a:.1}–{b:.1} s not found"));
            }
        }
        for f in &tone {
            if !labels
                .agitated_spans
                .iter()
                .any(|&s| overlaps((f.start, f.end), s))
            {
                bad.push(format!(
                    "agitation found at {:.1}–{:.1} s, not labelled",
                    f.start, f.end
                ));
            }
        }
        if !tone.is_empty() {
            expected_items.insert("agent_tone");
        }

        // Nothing else: no item the labels do not account for (observations deduct nothing).
        let items: BTreeSet<&str> = findings
            .iter()
            .filter(|f| !f.observation)
            .map(|f| f.item_id.as_str())
            .collect();
        for extra in items.difference(&expected_items) {
            let f = findings.iter().find(|f| f.item_id == *extra).unwrap();
            bad.push(format!("unexpected finding {extra}: {}", f.evidence));
        }
    }
    bad
}

#[test]
fn shipped_rubric_finds_exactly_the_labelled_faults() {
    let rubric = shipped();
    let mut failures = Vec::new();
    for s in samples() {
        let findings = Facts::of(&s, perfect).check(&rubric);
        for d in disagreements(&s, &findings, false) {
            failures.push(format!("{}: {d}", s.id()));
        }
        // The digits-as-written form ("12345热线", "工号2051") must decide the same.
        let written = Facts::of(&s, |_, u| u.text.clone()).check(&rubric);
        for d in disagreements(&s, &written, false) {
            failures.push(format!("{} (written form): {d}", s.id()));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn clean_calls_score_full_marks() {
    let rubric = shipped();
    for s in samples() {
        let l = &s.truth.labels;
        let clean = l.greeting_ok != Some(false)
            && l.closing_ok != Some(false)
            && l.forbidden.is_empty()
            && l.dead_air.is_empty()
            && l.agitated_spans.is_empty();
        let f = Facts::of(&s, perfect);
        let facts = CallFacts {
            duration_s: f.duration_s,
            segments: &f.segments,
            speech: &f.speech,
            tone: &f.tone,
        };
        let (findings, score) = rubric::check(&rubric, &facts);
        assert_eq!(
            score.deductions,
            findings.iter().map(|f| f.points).sum::<f64>()
        );
        if clean {
            assert!(findings.is_empty(), "{}: {findings:#?}", s.id());
            assert_eq!((score.total, score.vetoed), (100.0, false), "{}", s.id());
        } else {
            assert!(
                score.total < 100.0,
                "{}: labelled faults but full marks",
                s.id()
            );
        }
    }
}

#[test]
fn forbidden_look_alikes_in_the_samples_are_not_violations() {
    // Caller-said 禁语 and the agent's negated near-miss ("不是管不了") are labelled as
    // not_violations; none of them may produce a finding.
    let rubric = shipped();
    let mut checked = 0;
    for s in samples() {
        let findings = Facts::of(&s, perfect).check(&rubric);
        for nv in s.json["labels"]["not_violations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let (a, b) = (nv["start"].as_f64().unwrap(), nv["end"].as_f64().unwrap());
            let hit = findings
                .iter()
                .filter(|f| f.kind == rubric::Kind::ForbiddenPhrase)
                .find(|f| overlaps((f.start, f.end), (a, b)));
            assert!(
                hit.is_none(),
                "{}: {} ({}) flagged: {hit:?}",
                s.id(),
                nv["phrase"],
                nv["why"]
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 3,
        "expected the samples' near-miss cases, found {checked}"
    );
}

#[test]
fn announced_hold_is_what_keeps_the_hold_from_being_dead_air() {
    // call04's 8 s hold after "请稍等，我帮您查一下" is under the shipped 10 s limit; with a 5 s
    // limit the exception list must be what excuses it.
    let text = std::fs::read_to_string(root().join("rubrics/12345.toml")).unwrap();
    assert!(text.contains("max_gap_s = 10"));
    let strict_text = text.replace("max_gap_s = 10", "max_gap_s = 5");
    let strict = rubric::parse(&strict_text, &root().join("rubrics/strict.toml")).unwrap();
    let start = strict_text
        .find("exceptions = [\n  \"请稍等\"")
        .expect("hold exceptions");
    let end = start + strict_text[start..].find(']').unwrap() + 1;
    let bare_text = format!("{}{}", &strict_text[..start], &strict_text[end..]);
    let bare = rubric::parse(&bare_text, &root().join("rubrics/bare.toml")).unwrap();
    let mut holds = 0;
    for s in samples() {
        let held = s.json["labels"]["holds"].as_array().map_or(0, |h| h.len());
        if held == 0 {
            continue;
        }
        holds += held;
        let f = Facts::of(&s, perfect);
        assert!(
            of_item(&f.check(&strict), "dead_air").is_empty(),
            "{}",
            s.id()
        );
        assert_eq!(
            of_item(&f.check(&bare), "dead_air").len(),
            held,
            "{}",
            s.id()
        );
    }
    assert!(holds > 0, "no labelled hold in the samples");
}

/// Whisper-style homophone substitutions seen on telephone Mandarin.
const HOMOPHONES: &[(char, char)] = &[
    ('为', '未'),
    ('务', '物'),
    ('热', '惹'),
    ('线', '现'),
    ('感', '敢'),
    ('谢', '卸'),
    ('电', '店'),
    ('见', '件'),
    ('再', '在'),
    ('归', '规'),
    ('管', '馆'),
    ('办', '半'),
    ('法', '发'),
    ('找', '照'),
    ('帮', '邦'),
    ('其', '奇'),
    ('以', '已'),
    ('稍', '烧'),
    ('等', '灯'),
    ('查', '茶'),
    ('服', '福'),
    ('您', '你'),
    ('好', '号'),
    ('事', '是'),
    ('关', '观'),
    ('问', '文'),
    ('题', '提'),
    ('市', '是'),
    ('号', '好'),
];

/// Traditional forms whisper often writes.
const TRADITIONAL: &[(char, char)] = &[
    ('热', '熱'),
    ('线', '線'),
    ('为', '為'),
    ('务', '務'),
    ('谢', '謝'),
    ('电', '電'),
    ('见', '見'),
    ('还', '還'),
    ('归', '歸'),
    ('们', '們'),
    ('办', '辦'),
    ('没', '沒'),
    ('这', '這'),
    ('帮', '幫'),
    ('问', '問'),
    ('请', '請'),
    ('来', '來'),
    ('说', '說'),
    ('门', '門'),
    ('号', '號'),
    ('关', '關'),
    ('别', '別'),
    ('题', '題'),
];

/// The utterance as a weak recogniser might write it: digits as written or read (一 sometimes
/// 幺), some characters Traditional, some replaced by homophones, `drop` of them left out.
fn corrupt(u: &TruthUtterance, rng: &mut Lcg, drop: f64) -> String {
    let source = if rng.unit() < 0.5 {
        &u.text
    } else {
        u.spoken()
    };
    let mut out = String::new();
    for c in source.chars() {
        let is_han = ('\u{4e00}'..='\u{9fff}').contains(&c);
        if is_han && rng.unit() < drop {
            continue;
        }
        let r = rng.unit();
        let c = if c == '一' && r < 0.3 {
            '幺'
        } else if r < 0.15 {
            HOMOPHONES
                .iter()
                .find(|(a, _)| *a == c)
                .map_or(c, |&(_, b)| b)
        } else if r < 0.45 {
            TRADITIONAL
                .iter()
                .find(|(a, _)| *a == c)
                .map_or(c, |&(_, b)| b)
        } else {
            c
        };
        out.push(c);
    }
    out
}

/// Outcome of the phrase items on one corrupted call.
#[derive(Default)]
struct Tally {
    /// Labelled faults (missing greeting / closing, each 禁语) and how many were found.
    faults: usize,
    found: usize,
    /// Findings the labels do not support: false deductions.
    false_deductions: Vec<String>,
}

fn tally(sample: &Sample, findings: &[Finding], t: &mut Tally) {
    let labels = &sample.truth.labels;
    for (id, ok) in [
        ("greeting", labels.greeting_ok),
        ("closing", labels.closing_ok),
    ] {
        let flagged = of_item(findings, id);
        match (ok == Some(false), flagged.first()) {
            (true, f) => {
                t.faults += 1;
                t.found += usize::from(f.is_some());
            }
            (false, Some(f)) => t.false_deductions.push(format!("{id}: {}", f.evidence)),
            (false, None) => {}
        }
    }
    let mut unmatched: Vec<&Finding> = of_forbidden(findings);
    for d in &labels.forbidden_detail {
        t.faults += 1;
        let span = (d.start.unwrap_or(0.0), d.end.unwrap_or(1e9));
        if let Some(k) = unmatched.iter().position(|f| {
            // A finding by meaning in the labelled utterance found it too: the recognition
            // errors took the listed words, not what the sentence does.
            phrase_of(f).is_none_or(|p| p == d.phrase) && overlaps((f.start, f.end), span)
        }) {
            unmatched.remove(k);
            t.found += 1;
        }
    }
    for f in unmatched.into_iter().chain(of_item(findings, "insult")) {
        t.false_deductions
            .push(format!("{}: {}", f.item_id, f.evidence));
    }
}

#[test]
fn phrase_items_survive_recognition_errors() {
    // Heavier than whisper base on these calls: every character has a 10 % chance of being
    // dropped, on top of homophones, Traditional forms and digit forms. Misses are expected
    // where the words are simply gone (a dropped 没 or 管); false deductions must stay rare.
    let rubric = shipped();
    const SEEDS: u64 = 40;
    let (mut calls, mut t) = (0usize, Tally::default());
    let mut false_calls = 0usize;
    for s in samples() {
        for seed in 0..SEEDS {
            let mut rng = Lcg(seed * 7919 + 17);
            let texts: Vec<String> = s
                .truth
                .utterances
                .iter()
                .map(|u| corrupt(u, &mut rng, 0.10))
                .collect();
            let findings = Facts::of(&s, |i, _| texts[i].clone()).check(&rubric);
            let before = t.false_deductions.len();
            tally(&s, &findings, &mut t);
            calls += 1;
            if t.false_deductions.len() > before {
                false_calls += 1;
                for f in &mut t.false_deductions[before..] {
                    *f = format!("{} seed {seed}: {f}", s.id());
                }
            }
        }
    }
    let recall = t.found as f64 / t.faults as f64;
    let false_rate = false_calls as f64 / calls as f64;
    eprintln!(
        "corrupted transcripts: {}/{} labelled faults found ({:.0} %), false deductions on {false_calls}/{calls} calls ({:.1} %)",
        t.found,
        t.faults,
        recall * 100.0,
        false_rate * 100.0
    );
    for f in &t.false_deductions {
        eprintln!("  false: {f}");
    }
    assert!(
        recall >= 0.85,
        "recall {recall:.2} under recognition errors"
    );
    assert!(
        false_rate <= 0.05,
        "false deductions on {false_calls}/{calls} calls:\n{}",
        t.false_deductions.join("\n")
    );
}

#[test]
fn phrase_items_are_exact_under_light_recognition_errors() {
    // Homophones, Traditional characters and digit forms, but no dropped characters: every
    // decision must still be right.
    let rubric = shipped();
    let mut wrong = Vec::new();
    for s in samples() {
        for seed in 0..20u64 {
            let mut rng = Lcg(seed * 104729 + 3);
            let texts: Vec<String> = s
                .truth
                .utterances
                .iter()
                .map(|u| corrupt(u, &mut rng, 0.0))
                .collect();
            let findings = Facts::of(&s, |i, _| texts[i].clone()).check(&rubric);
            for d in disagreements(&s, &findings, true) {
                wrong.push(format!("{} seed {seed}: {d}", s.id()));
            }
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[test]
fn reference_doc_is_up_to_date() {
    let path = root().join("docs/rubric.md");
    let generated = rubric::reference_markdown();
    if std::env::var_os("CALLQC_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == generated,
        "docs/rubric.md is stale: it is generated from the docs in src/rubric/. Regenerate it with\n    \
         CALLQC_UPDATE_DOCS=1 cargo test --test rubric reference_doc_is_up_to_date"
    );
}
