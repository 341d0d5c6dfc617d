//! Trainers' tools end to end on the real batch of the samples: `flagged` lists exactly the calls
//! with findings; `review`, `appeal` and their history; a dismissed finding raises the score and
//! shows in `rules stats`; verdicts and finding ids survive rescoring; `export` cuts clips whose
//! samples are the recording's; calibration agreement; the report's figures; `tone fit` learning
//! from reviews.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{callqc, require_models, root, stderr, stdout};

/// One batch of the samples for all tests (each works on its own copy of the database).
fn batched_db() -> &'static Path {
    static DB: OnceLock<PathBuf> = OnceLock::new();
    DB.get_or_init(|| {
        require_models();
        let dir = tempfile::tempdir().unwrap().keep();
        let db = dir.join("batch.db");
        let o = callqc(&["batch", "samples", "--db", db.to_str().unwrap()]);
        assert!(o.status.success(), "batch: {}", stderr(&o));
        db
    })
}

/// A private copy of the batch's database.
fn fresh_db() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    std::fs::copy(batched_db(), &db).unwrap();
    let s = db.to_str().unwrap().to_string();
    (dir, s)
}

fn json(args: &[&str]) -> serde_json::Value {
    let o = callqc(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout(&o)))
}

fn show(db: &str, call: &str) -> serde_json::Value {
    json(&["show", call, "--db", db, "--json"])
}

fn score(db: &str, call: &str) -> (f64, f64) {
    let s = &show(db, call)["scores"][0];
    (
        s["total"].as_f64().unwrap(),
        s["machine_total"].as_f64().unwrap(),
    )
}

/// The finding of `call` with this item whose span starts first.
fn finding_id(db: &str, call: &str, item: &str) -> i64 {
    show(db, call)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["item_id"] == item)
        .unwrap_or_else(|| panic!("{call} has no {item} finding"))["id"]
        .as_i64()
        .unwrap()
}

fn rule(db: &str, item: &str) -> serde_json::Value {
    json(&["rules", "stats", "--db", db, "--json"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["item_id"] == item)
        .unwrap_or_else(|| panic!("no {item} in rules stats"))
        .clone()
}

#[test]
fn flagged_lists_exactly_the_calls_with_findings_under_each_filter() {
    let (_dir, db) = fresh_db();
    // Every stored call, and which of them have findings, read through `show`.
    let mut with_findings = BTreeSet::new();
    let mut all = BTreeSet::new();
    for n in 1..=8 {
        let key = format!("call0{n}");
        let call = show(&db, &key);
        all.insert(key.clone());
        // Observations (holds and pauses within the rules) do not flag a call.
        if call["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["observation"] == false)
        {
            with_findings.insert(key);
        }
    }
    assert!(!with_findings.is_empty() && with_findings.len() < all.len());
    let keys = |v: &serde_json::Value| -> BTreeSet<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["call_key"].as_str().unwrap().to_string())
            .collect()
    };
    let flagged = json(&["flagged", "--db", &db, "--json"]);
    assert_eq!(keys(&flagged), with_findings);
    // Sorted by score, lowest first.
    let scores: Vec<f64> = flagged
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] <= w[1]), "{scores:?}");

    // Filters: agent, item, points, text, source, review state, date range.
    let by_agent = json(&["flagged", "--db", &db, "--json", "--agent", "6618"]);
    assert_eq!(keys(&by_agent), BTreeSet::from(["call05".to_string()]));
    let by_item = json(&["flagged", "--db", &db, "--json", "--item", "refusal"]);
    for c in by_item.as_array().unwrap() {
        for f in c["findings"].as_array().unwrap() {
            assert_eq!(f["item_id"], "refusal");
        }
    }
    assert!(keys(&by_item).contains("call05"));
    let big = json(&["flagged", "--db", &db, "--json", "--min-points", "3"]);
    for c in big.as_array().unwrap() {
        for f in c["findings"].as_array().unwrap() {
            assert!(f["points"].as_f64().unwrap() >= 3.0);
        }
    }
    let text = json(&["flagged", "--db", &db, "--json", "--text", "物业"]);
    assert!(keys(&text).is_subset(&with_findings) && keys(&text).contains("call05"));
    let live = json(&["flagged", "--db", &db, "--json", "--source", "live"]);
    assert!(live.as_array().unwrap().is_empty(), "no live calls here");
    let dismissed = json(&["flagged", "--db", &db, "--json", "--review", "dismissed"]);
    assert!(dismissed.as_array().unwrap().is_empty());
    let future = json(&["flagged", "--db", &db, "--json", "--from", "2999-01-01"]);
    assert!(future.as_array().unwrap().is_empty());
    let past = json(&["flagged", "--db", &db, "--json", "--from", "2000-01-01"]);
    assert_eq!(keys(&past), with_findings);

    // CSV: a header and one line per finding.
    let o = callqc(&["flagged", "--db", &db, "--csv"]);
    let csv = stdout(&o);
    let n_findings: usize = flagged
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["findings"].as_array().unwrap().len())
        .sum();
    assert_eq!(csv.lines().count(), n_findings + 1, "{csv}");
    assert!(csv.starts_with("call_key,agent_id,"));

    // A wrong flag value is a clear error, not an empty list.
    let o = callqc(&["flagged", "--db", &db, "--from", "2026-02-30"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is not a date"), "{}", stderr(&o));
}

#[test]
fn review_and_appeal_change_the_score_keep_history_and_survive_rescoring() {
    let (_dir, db) = fresh_db();
    let (before, machine) = score(&db, "call05");
    assert_eq!(before, machine);
    let refusal = finding_id(&db, "call05", "refusal");
    let points = show(&db, "call05")["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == refusal)
        .unwrap()["points"]
        .as_f64()
        .unwrap();
    assert!(points > 0.0);

    // Dismissing raises the score by the finding's points; the machine score stays.
    let id = refusal.to_string();
    let o = callqc(&[
        "review",
        &id,
        "--dismiss",
        "--by",
        "王芳",
        "--note",
        "转接物业属实",
        "--db",
        &db,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (after, machine_after) = score(&db, "call05");
    assert!(
        (after - (before + points)).abs() < 1e-9,
        "{before} → {after}"
    );
    assert_eq!(machine_after, machine);
    // The finding stays, marked dismissed; rules stats shows the dismissal.
    let f = &show(&db, "call05")["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == refusal)
        .unwrap()
        .clone();
    assert_eq!(f["review"], "dismissed");
    assert_eq!(f["reviewer"], "王芳");
    let r = rule(&db, "refusal");
    assert_eq!(
        (r["reviewed"].as_u64(), r["dismissed"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(r["precision"].as_f64(), Some(0.0));
    assert_eq!(r["below_threshold"], true);

    // Rescoring keeps the verdict, the finding's id and the reviewed score.
    let o = callqc(&["rescore", "--db", &db]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(finding_id(&db, "call05", "refusal"), refusal);
    assert_eq!(score(&db, "call05").0, after);

    // Confirming it again puts the points back: confirmed 1 of 1.
    let o = callqc(&["review", &id, "--confirm", "--by", "李明", "--db", &db]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(score(&db, "call05").0, before);
    assert_eq!(rule(&db, "refusal")["precision"].as_f64(), Some(1.0));

    // The appeal: only the call's agent, then a ruling by someone else; final.
    let o = callqc(&[
        "appeal",
        &id,
        "--by",
        "1846",
        "--reason",
        "不是我",
        "--db",
        &db,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("only the call's agent"),
        "{}",
        stderr(&o)
    );
    let o = callqc(&[
        "appeal",
        &id,
        "--by",
        "6618",
        "--reason",
        "来电人要求转物业",
        "--db",
        &db,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = callqc(&["review", &id, "--dismiss", "--by", "王芳", "--db", &db]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "a pending appeal is decided by a ruling"
    );
    let o = callqc(&["appeal", &id, "--by", "6618", "--uphold", "--db", &db]);
    assert_eq!(o.status.code(), Some(2), "the appellant cannot rule");
    let o = callqc(&[
        "appeal",
        &id,
        "--by",
        "张伟",
        "--uphold",
        "--note",
        "录音属实",
        "--db",
        &db,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!((score(&db, "call05").0 - (before + points)).abs() < 1e-9);
    let o = callqc(&[
        "appeal", &id, "--by", "6618", "--reason", "again", "--db", &db,
    ]);
    assert_eq!(o.status.code(), Some(2), "one appeal per finding");
    let o = callqc(&["review", &id, "--confirm", "--by", "李明", "--db", &db]);
    assert_eq!(o.status.code(), Some(2), "a ruling is final");
    let r = rule(&db, "refusal");
    assert_eq!(
        (r["appeals"].as_u64(), r["appeals_upheld"].as_u64()),
        (Some(1), Some(1))
    );

    // Every step is in the history, in order, with who and why.
    let h = json(&["review", &id, "--history", "--db", &db, "--json"]);
    let steps: Vec<(String, String)> = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["action"].as_str().unwrap().to_string(),
                v["by"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("dismiss", "王芳"),
        ("confirm", "李明"),
        ("appeal", "6618"),
        ("uphold", "张伟"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(steps, want);
    assert_eq!(h["history"][0]["note"], "转接物业属实");

    // A finding that does not exist, and a verdict without a name, are clear errors.
    let o = callqc(&["review", "99999", "--confirm", "--by", "x", "--db", &db]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no finding 99999"), "{}", stderr(&o));
    let o = callqc(&["review", &id, "--confirm", "--db", &db]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn reanalysis_keeps_verdicts() {
    let (dir, db) = fresh_db();
    let tone = finding_id(&db, "call03", "agent_tone");
    let o = callqc(&[
        "review",
        &tone.to_string(),
        "--dismiss",
        "--by",
        "王芳",
        "--db",
        &db,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let reviewed = score(&db, "call03").0;
    // Re-analyse call03 from its audio (--force): a new analysis, the same verdict.
    let stage = dir.path().join("calls");
    std::fs::create_dir(&stage).unwrap();
    for ext in ["wav", "json"] {
        std::fs::copy(
            root().join(format!("samples/call03.{ext}")),
            stage.join(format!("call03.{ext}")),
        )
        .unwrap();
    }
    let o = callqc(&["batch", stage.to_str().unwrap(), "--db", &db, "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let call = show(&db, "call03");
    let f = call["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == tone)
        .expect("the finding keeps its id");
    assert_eq!(f["review"], "dismissed");
    assert_eq!(score(&db, "call03").0, reviewed);
}

/// Interleaved samples of a WAV file.
fn wav_samples(p: &Path) -> (hound::WavSpec, Vec<i16>) {
    let mut r = hound::WavReader::open(p).unwrap();
    let spec = r.spec();
    let s = r.samples::<i16>().map(|s| s.unwrap()).collect();
    (spec, s)
}

#[test]
fn export_writes_clips_cut_from_the_recording_and_an_offline_page() {
    let (dir, db) = fresh_db();
    let out = dir.path().join("export");
    let o = callqc(&[
        "export",
        "call05",
        "call08",
        "--out",
        out.to_str().unwrap(),
        "--margin",
        "0.5",
        "--db",
        &db,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let folder = out.join("call05");
    let findings = common::read_json(&folder.join("findings.json"));
    let findings = findings.as_array().unwrap();
    assert_eq!(
        findings.len(),
        show(&db, "call05")["findings"].as_array().unwrap().len()
    );
    let (spec, recording) = wav_samples(&root().join("samples/call05.wav"));
    assert_eq!(spec.bits_per_sample, 16, "call05 is 16-bit PCM");
    let ch = spec.channels as usize;
    let rate = f64::from(spec.sample_rate);
    for f in findings {
        let clip = &f["clip"];
        let (start, end) = (f["start"].as_f64().unwrap(), f["end"].as_f64().unwrap());
        // The clip spans the finding widened by the margin (times in JSON are rounded to the
        // millisecond, so within one sample of it) ...
        let first = clip["first_sample"].as_u64().unwrap() as usize;
        let last = first + clip["samples"].as_u64().unwrap() as usize;
        let want_first = (start - 0.5).max(0.0) * rate;
        let want_last = ((end + 0.5) * rate).min((recording.len() / ch) as f64);
        assert!(
            (first as f64 - want_first).abs() <= 1.5 && (last as f64 - want_last).abs() <= 1.5,
            "finding {}: clip [{first}, {last}) for [{want_first}, {want_last})",
            f["id"]
        );
        // ... and holds exactly the recording's samples there.
        let (cspec, samples) = wav_samples(&folder.join(clip["file"].as_str().unwrap()));
        assert_eq!(
            (cspec.channels, cspec.sample_rate),
            (spec.channels, spec.sample_rate)
        );
        assert_eq!(
            samples,
            recording[first * ch..last * ch],
            "finding {}: the clip is the recording's [{first}, {last})",
            f["id"]
        );
    }
    let transcript = std::fs::read_to_string(folder.join("transcript.txt")).unwrap();
    assert!(transcript.contains("坐席:") && transcript.contains("来电人:"));
    let page = std::fs::read_to_string(folder.join("index.html")).unwrap();
    assert_eq!(
        page.matches("data:audio/wav;base64,").count(),
        findings.len(),
        "every clip is inside the page"
    );
    assert!(!page.contains("http://") && !page.contains("https://"));
    assert!(page.contains("<mark>【"), "the hit is highlighted");
    assert!(out.join("call08/index.html").exists());

    // --flagged exports the calls `flagged` lists.
    let out2 = dir.path().join("export2");
    let o = callqc(&[
        "export",
        "--flagged",
        "--agent",
        "6618",
        "--out",
        out2.to_str().unwrap(),
        "--db",
        &db,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let made: Vec<String> = std::fs::read_dir(&out2)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(made, vec!["call05".to_string()]);
}

#[test]
fn calibration_reports_agreement_and_changes_no_finding() {
    let (_dir, db) = fresh_db();
    let o = callqc(&[
        "calibrate",
        "new",
        "call05",
        "call03",
        "--reviewers",
        "王芳,李明",
        "--by",
        "组长",
        "--db",
        &db,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let round = "1";
    let mut ids: Vec<i64> = Vec::new();
    for call in ["call03", "call05"] {
        for f in show(&db, call)["findings"].as_array().unwrap() {
            ids.push(f["id"].as_i64().unwrap());
        }
    }
    assert!(ids.len() >= 4);
    // 王芳 confirms all; 李明 dismisses the first.
    for (i, id) in ids.iter().enumerate() {
        let id = id.to_string();
        for (who, confirm) in [("王芳", true), ("李明", i != 0)] {
            let verdict = if confirm { "--confirm" } else { "--dismiss" };
            let o = callqc(&[
                "review",
                &id,
                verdict,
                "--by",
                who,
                "--calibration",
                round,
                "--db",
                &db,
            ]);
            assert!(o.status.success(), "{}", stderr(&o));
        }
    }
    // Someone not in the round, and a call outside it, are refused.
    let o = callqc(&[
        "review",
        &ids[0].to_string(),
        "--confirm",
        "--by",
        "张伟",
        "--calibration",
        round,
        "--db",
        &db,
    ]);
    assert_eq!(o.status.code(), Some(2));
    let other = finding_id(&db, "call08", "dead_air");
    let o = callqc(&[
        "review",
        &other.to_string(),
        "--confirm",
        "--by",
        "王芳",
        "--calibration",
        round,
        "--db",
        &db,
    ]);
    assert_eq!(o.status.code(), Some(2));

    let r = json(&["calibrate", "report", round, "--db", &db, "--json"]);
    let pair = &r["pairs"][0];
    assert_eq!(pair["both"].as_u64(), Some(ids.len() as u64));
    assert_eq!(pair["agreed"].as_u64(), Some(ids.len() as u64 - 1));
    assert_eq!(r["judged_by_all"].as_u64(), Some(ids.len() as u64));
    // 王芳 confirmed everything: chance agreement is her rate, kappa 0.
    assert!(pair["kappa"].as_f64().unwrap().abs() < 1e-9, "{pair}");
    // The round changed no finding and no score.
    for call in ["call03", "call05"] {
        for f in show(&db, call)["findings"].as_array().unwrap() {
            assert_eq!(f["review"], "open");
        }
        let (total, machine) = score(&db, call);
        assert_eq!(total, machine);
    }
}

#[test]
fn report_figures_follow_the_store_and_tone_fit_learns_from_reviews() {
    let (dir, db) = fresh_db();
    let figures = json(&["report", "--db", &db, "--json"]);
    assert_eq!(figures["calls"].as_u64(), Some(8));
    let dist: u64 = figures["score_distribution"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(dist, 8);
    let per_day: u64 = figures["calls_per_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(per_day, 8);
    let top = figures["top_items"].as_array().unwrap();
    assert!(top.iter().any(|d| d["key"] == "refusal"));
    assert!(figures["agents"].as_array().unwrap().len() >= 2);

    // Review the agent_tone findings: confirm those in labelled agitated spans, dismiss one.
    let mut tone_ids = Vec::new();
    for call in ["call03", "call05"] {
        for f in show(&db, call)["findings"].as_array().unwrap() {
            if f["item_id"] == "agent_tone" {
                tone_ids.push(f["id"].as_i64().unwrap());
            }
        }
    }
    assert!(tone_ids.len() >= 2);
    for (i, id) in tone_ids.iter().enumerate() {
        let verdict = if i == 0 { "--dismiss" } else { "--confirm" };
        let o = callqc(&[
            "review",
            &id.to_string(),
            verdict,
            "--by",
            "王芳",
            "--db",
            &db,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let after = json(&["report", "--db", &db, "--json"]);
    let tone_rule = after["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["item_id"] == "agent_tone")
        .unwrap()
        .clone();
    assert_eq!(tone_rule["dismissed"].as_u64(), Some(1));
    assert!(after["mean_score"].as_f64() > figures["mean_score"].as_f64());
    let page = dir.path().join("report.html");
    let o = callqc(&[
        "report",
        "--from",
        "2000-01-01",
        "--out",
        page.to_str().unwrap(),
        "--db",
        &db,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<svg") && html.contains("质检报告") && html.contains("规则准确率"));

    // tone fit learns from exactly those reviews (no ground truth given).
    let model = dir.path().join("fit.onnx");
    let o = callqc(&[
        "tone",
        "fit",
        "--db",
        &db,
        "--output",
        model.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains(&format!(
            "{} confirmed + 1 dismissed agent_tone findings",
            tone_ids.len() - 1
        )),
        "{text}"
    );
    assert!(model.exists());
}

#[test]
fn show_into_a_closed_pipe_ends_quietly() {
    // `callqc show CALL | head -0`: the reader is gone before the first line is written (the
    // read end is closed right after the start, long before the database is open), so every
    // write meets a closed pipe. It must end quietly, not panic "failed printing to stdout".
    use std::process::{Command, Stdio};
    let (_dir, db) = fresh_db();
    let mut child = Command::new(env!("CARGO_BIN_EXE_callqc"))
        .args(["show", "call05", "--db", &db])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("Broken pipe"), "{err}");
}
