//! Recordings as PBXs make them (issue 27), on degraded copies of two bundled samples made by
//! `callqc degrade`: the caller's voice bleeding into the agent's channel must cause no
//! talk-over and no deduction, a real talk-over under bleed must still be found, and a call the
//! caller ends after the greeting must lose no points. Kept to two calls per condition (whisper
//! runs on each); scripts/pbx-conditions.sh measures every condition on all samples.

mod common;

use common::*;
use serde_json::Value;

fn eval(dir: &std::path::Path) -> Value {
    let out = callqc(&[
        "eval",
        dir.to_str().unwrap(),
        "--fresh",
        "--json",
        "--db",
        "/nonexistent/none.db",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn kind(report: &Value, k: &str, field: &str) -> u64 {
    report["labels"]["per_kind"][k][field].as_u64().unwrap_or(0)
}

#[test]
fn bleed_talk_over_and_early_ends_on_degraded_copies() {
    require_models();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir(&src).unwrap();
    for n in ["call01", "call06"] {
        for ext in ["wav", "json"] {
            std::fs::copy(
                sample(&format!("{n}.{ext}")),
                src.join(format!("{n}.{ext}")),
            )
            .unwrap();
        }
    }
    let out_dir = work.path().join("out");
    let out = callqc(&[
        "degrade",
        src.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--only",
        "bleed-into-agent-24db-30ms",
        "--only",
        "talk-over-with-bleed",
        "--only",
        "ends-early",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Bleed alone: the calls are clean, nothing is deducted, no talk-over is heard.
    let r = eval(&out_dir.join("bleed-into-agent-24db-30ms"));
    assert_eq!(kind(&r, "talk_over", "findings"), 0, "{r:#}");
    assert_eq!(r["labels"]["false_deductions_on_clean"], 0, "{r:#}");

    // A real talk-over under the same bleed is found, where it was put.
    let r = eval(&out_dir.join("talk-over-with-bleed"));
    assert_eq!(kind(&r, "talk_over", "labelled"), 2);
    assert_eq!(kind(&r, "talk_over", "found"), 2, "{r:#}");
    assert_eq!(
        kind(&r, "talk_over", "correct"),
        kind(&r, "talk_over", "findings"),
        "{r:#}"
    );

    // A wrong number ended after the greeting: no closing or other deduction.
    let r = eval(&out_dir.join("ends-early"));
    assert_eq!(r["labels"]["false_deductions_on_clean"], 0, "{r:#}");
    assert_eq!(r["labels"]["clean_calls"], 2, "{r:#}");
}
