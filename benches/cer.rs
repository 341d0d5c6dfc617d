//! CER of any system's transcripts with callqc's own rules — the scorer of
//! `scripts/bench-compare.sh`, so that callqc, faster-whisper and the naive run are measured by
//! exactly the same code as `callqc eval` ([`callqc::text::CerCount`] on
//! [`callqc::eval::GroundTruth::role_reference`]: no punctuation or spaces, Traditional →
//! Simplified, digits and 幺 as 一二三; per role, the reference is the role's `spoken` utterances
//! in time order and the hypothesis the role's segments in time order).
//!
//! ```text
//! cer --truth DIR (--db FILE.db | --hyp FILE.json) [--label NAME]
//! ```
//! - `--db`: the SQLite database a `callqc batch` run wrote (its `segments` of calls `done`);
//! - `--hyp`: `{"calls": [{"audio": "call01.wav", "segments": [{"role": "agent", "start": 0.7,
//!   "end": 8.3, "text": "…"}]}]}` (what `scripts/bench/fw_run.py` writes).
//!
//! Calls are matched by file name. A labelled call with no transcript counts as all deletions and
//! is listed under `missing`. Prints one JSON object: `cer`, `edits`, `reference_chars`,
//! `per_role`, `per_call`, `calls`, `missing`, `audio_s` (total duration of the labelled calls).
//!
//! Without arguments (a plain `cargo bench`) it prints this usage and exits successfully.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use callqc::audio::Role;
use callqc::eval::find_labelled_calls;
use callqc::text::CerCount;

#[derive(Debug, Deserialize)]
struct HypFile {
    calls: Vec<HypCall>,
}

#[derive(Debug, Deserialize)]
struct HypCall {
    audio: String,
    segments: Vec<HypSegment>,
}

#[derive(Debug, Clone, Deserialize)]
struct HypSegment {
    role: Role,
    start: f64,
    #[allow(dead_code)]
    #[serde(default)]
    end: f64,
    text: String,
}

fn file_name(p: &str) -> String {
    Path::new(p)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.to_string())
}

/// Transcripts per audio file name, from a callqc database.
fn from_db(db: &Path) -> Result<BTreeMap<String, Vec<HypSegment>>> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("open {}", db.display()))?;
    let mut out: BTreeMap<String, Vec<HypSegment>> = BTreeMap::new();
    let mut calls = conn.prepare("SELECT id, path FROM calls WHERE status = 'done' ORDER BY id")?;
    let calls: Vec<(i64, String)> = calls
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut segs = conn.prepare(
        "SELECT role, start_s, end_s, text FROM segments WHERE call_id = ?1 ORDER BY idx",
    )?;
    for (id, path) in calls {
        let rows: Vec<(String, f64, f64, String)> = segs
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut list = Vec::with_capacity(rows.len());
        for (role, start, end, text) in rows {
            let role: Role = role.parse().map_err(anyhow::Error::msg)?;
            list.push(HypSegment {
                role,
                start,
                end,
                text,
            });
        }
        out.insert(file_name(&path), list);
    }
    Ok(out)
}

fn from_json(path: &Path) -> Result<BTreeMap<String, Vec<HypSegment>>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let f: HypFile =
        serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
    Ok(f.calls
        .into_iter()
        .map(|c| (file_name(&c.audio), c.segments))
        .collect())
}

/// A role's text in time order (as `Transcript::sort` + `Transcript::role_text` do: a stable
/// sort by start time).
fn role_text(segments: &[HypSegment], role: Role) -> String {
    let mut s: Vec<&HypSegment> = segments.iter().filter(|s| s.role == role).collect();
    s.sort_by(|a, b| a.start.total_cmp(&b.start));
    s.iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join("")
}

fn rate(c: &CerCount) -> serde_json::Value {
    c.rate()
        .map_or(serde_json::Value::Null, |r| serde_json::json!(r))
}

fn run(args: &[String]) -> Result<()> {
    let mut truth_dir: Option<PathBuf> = None;
    let mut db: Option<PathBuf> = None;
    let mut hyp: Option<PathBuf> = None;
    let mut label = String::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .with_context(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--truth" => truth_dir = Some(value()?.into()),
            "--db" => db = Some(value()?.into()),
            "--hyp" => hyp = Some(value()?.into()),
            "--label" => label = value()?,
            other => bail!("unknown argument {other}"),
        }
    }
    let truth_dir = truth_dir.context("--truth DIR is required")?;
    let hyps = match (db, hyp) {
        (Some(db), None) => from_db(&db)?,
        (None, Some(h)) => from_json(&h)?,
        _ => bail!("give exactly one of --db FILE or --hyp FILE"),
    };

    let calls = find_labelled_calls(&truth_dir)?;
    let mut total = CerCount::default();
    let mut per_role: BTreeMap<Role, CerCount> = BTreeMap::new();
    let mut per_call = BTreeMap::new();
    let mut missing = Vec::new();
    let mut audio_s = 0.0;
    let empty = Vec::new();
    for call in &calls {
        if let Ok(rec) = callqc::audio::decode::decode_file(&call.audio_path) {
            audio_s += rec.duration_s();
        }
        let name = file_name(&call.audio_path.to_string_lossy());
        let segs = match hyps.get(&name) {
            Some(s) => s,
            None => {
                missing.push(name.clone());
                &empty
            }
        };
        let map = call.truth.channel_map();
        let mut roles = vec![map.left];
        if map.right != map.left {
            roles.push(map.right);
        }
        let mut call_total = CerCount::default();
        for role in roles {
            let c = CerCount::of(&call.truth.role_reference(role), &role_text(segs, role));
            call_total.add(c);
            per_role.entry(role).or_default().add(c);
        }
        total.add(call_total);
        per_call.insert(name, rate(&call_total));
    }
    let out = serde_json::json!({
        "label": label,
        "cer": rate(&total),
        "edits": total.edits,
        "reference_chars": total.reference_chars,
        "per_role": per_role.iter().map(|(r, c)| (r.as_str(), rate(c))).collect::<BTreeMap<_, _>>(),
        "per_call": per_call,
        "calls": calls.len(),
        "missing": missing,
        "audio_s": audio_s,
    });
    println!("{out}");
    Ok(())
}

fn main() {
    // `cargo bench` passes `--bench` to every bench target; it means nothing here.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.is_empty() {
        println!(
            "cer: scorer for scripts/bench-compare.sh \
             (cer --truth DIR (--db FILE | --hyp FILE.json) [--label NAME]); nothing to do"
        );
        return;
    }
    if let Err(e) = run(&args) {
        eprintln!("cer: {e:#}");
        std::process::exit(2);
    }
}
