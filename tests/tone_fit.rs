//! `callqc tone fit` end to end: the real batch writes a database of three sample calls, the fit
//! learns from their ground-truth agitated spans, and the written model loads like any tone model.

mod common;

use common::{callqc, require_models, root, sample, stderr, stdout};

use callqc::tone::ToneScorer;
use callqc::tone::model::{ToneSidecar, sidecar_path};

#[test]
fn fit_from_labelled_spans_and_refuse_without_labels() {
    require_models();
    let dir = tempfile::tempdir().unwrap();
    // call03 and call05 have agitated spans, call01 none: both classes, three calls.
    for name in ["call01", "call03", "call05"] {
        for ext in ["wav", "json"] {
            let f = format!("{name}.{ext}");
            std::fs::copy(sample(&f), dir.path().join(&f)).unwrap();
        }
    }
    let db = dir.path().join("tmp.db");
    let (dir_s, db_s) = (dir.path().to_str().unwrap(), db.to_str().unwrap());
    let o = callqc(&[
        "batch",
        dir_s,
        "--workers",
        "1",
        "--threads",
        "2",
        "--db",
        db_s,
    ]);
    assert!(o.status.success(), "batch: {}", stderr(&o));

    // No reviews and no --labels: nothing to learn from, a clear refusal (exit 2), no file.
    // Not in the labels folder: the written sidecar JSON is no ground-truth file.
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("fit.onnx");
    let out_s = out.to_str().unwrap();
    let o = callqc(&["tone", "fit", "--db", db_s, "--output", out_s]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("not enough labels"),
        "stderr: {}",
        stderr(&o)
    );
    assert!(!out.exists());

    // A missing database is an error, not an empty one created on the spot.
    let missing = dir.path().join("nope.db");
    let o = callqc(&["tone", "fit", "--db", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!missing.exists());

    // With the ground truth: fitted, cross-validated against the prior, written with notes.
    let o = callqc(&[
        "tone", "fit", "--db", db_s, "--labels", dir_s, "--output", out_s,
    ]);
    let text = stdout(&o);
    println!("{text}");
    assert!(o.status.success(), "fit: {}\n{text}", stderr(&o));
    assert!(text.contains("cross-validated"), "{text}");
    assert!(text.contains("prior: accuracy"), "{text}");
    assert!(text.contains("fit:   accuracy"), "{text}");
    assert!(text.contains("--tone-model"), "{text}");
    assert!(out.exists());
    let sidecar = ToneSidecar::load(&sidecar_path(&out)).unwrap();
    assert_eq!(sidecar.provenance, "fit");
    assert!(sidecar.notes.contains("3 calls"), "{}", sidecar.notes);
    assert!(
        sidecar.notes.contains("Cross-validated"),
        "{}",
        sidecar.notes
    );
    assert!(sidecar.notes.contains("Fitted 20"), "{}", sidecar.notes);
    // The written model honours the tone-model contract (same loader the batch uses).
    let scorer = ToneScorer::load(&root().join("models"), &out, 1).unwrap();
    assert_eq!(scorer.sidecar().provenance, "fit");
}
