//! 禁语 by meaning, measured on the held-out sentence corpus (rubrics/sentences/heldout.tsv:
//! written apart from the development corpora and never used to train the scorer or to write
//! constructions). The default rubric's sentence items run on each sentence as an agent's; the
//! figures are printed, and the bars hold what was measured when they were set, so that a change
//! that loses recall or precision fails here. Issue 26 asks for recall ≥ 0.90 per category:
//! that target is not met yet (see README, 禁语 by meaning), and is printed beside each figure.

use std::path::PathBuf;

use callqc::rubric::{self, corpus};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn report(file: &str) -> corpus::CheckReport {
    let r = rubric::load(&root().join("rubrics/12345.toml")).unwrap_or_else(|e| panic!("{e}"));
    let sentences = corpus::read(&root().join(file)).unwrap_or_else(|e| panic!("{e}"));
    corpus::check(&r, &sentences)
}

#[test]
fn the_held_out_corpus_is_caught_by_meaning() {
    let rep = report("rubrics/sentences/heldout.tsv");
    assert!(rep.sentences >= 400, "{} sentences", rep.sentences);
    let mut weakest: f64 = 1.0;
    for c in &rep.categories {
        let recall = c.recall().unwrap_or(0.0);
        eprintln!(
            "{:<18} labelled {:>3}  caught {:>3}  elsewhere {:>2}  false {:>2}  recall {:.2} (target 0.90)",
            c.category, c.labelled, c.caught, c.caught_elsewhere, c.false_alarms, recall
        );
        assert!(c.labelled >= 25, "{}: {} sentences", c.category, c.labelled);
        weakest = weakest.min(recall);
    }
    let precision = rep.precision().unwrap_or(0.0);
    eprintln!(
        "flagged {} of {}, {} of them clean: precision {precision:.3} (target 0.95)",
        rep.flagged, rep.sentences, rep.flagged_clean
    );
    for e in rep.errors.iter().filter(|e| e.label == "ok") {
        eprintln!("  false: {} → {:?}", e.text, e.fired);
    }
    // Measured 0.70–0.80 per category and 0.973 overall when these bars were set; 0.69–0.88 and
    // 0.970 after dev3a/dev3b joined the training corpora.
    assert!(weakest >= 0.65, "a category's recall fell to {weakest:.2}");
    assert!(precision >= 0.95, "precision {precision:.3} < 0.95");
}

#[test]
fn the_sentences_that_opened_issue_26_are_caught() {
    // The eight wordings a QC lead found on calls no one here wrote, none of them a listed phrase.
    let rep = report("tests/data/issue26-sentences.tsv");
    assert_eq!(rep.sentences, 8);
    assert_eq!(rep.flagged, 8, "{:#?}", rep.errors);
    assert!(rep.errors.is_empty(), "{:#?}", rep.errors);
}

#[test]
fn a_broken_corpus_line_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mine.tsv");
    std::fs::write(&p, "refusal\t跟我们没关系\nok 好的\n").unwrap();
    let e = corpus::read(&p).unwrap_err().to_string();
    assert!(e.contains("mine.tsv:2:"), "{e}");
}
