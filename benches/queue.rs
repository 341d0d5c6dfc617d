//! Scale-out figures (`cargo bench --bench queue`), each side by side with its baseline in the
//! same run:
//!
//! 1. **Workers on one PostgreSQL queue**: 1, 2 and 3 worker processes (one whisper thread
//!    each) on the same calls (the samples, `CALLQC_QUEUE_COPIES` times under distinct call ids)
//!    against a throw-away PostgreSQL cluster: calls / hour, audio-hours / hour, and the queue's
//!    overhead per call (claim + heartbeats + the completing transaction) as a share of the
//!    worker's time on the call.
//! 2. **One long call uses the whole machine**: the samples joined three times into one
//!    ~17-minute stereo recording, `batch --workers 2` (the idle worker's core decodes the
//!    second channel), against the same audio as 24 short calls and against one core.
//! 3. **Agent-only mode**: the samples with and without `--agent-only`: wall time, and what it
//!    loses (CER per role, labelled findings found, deductions on clean calls, from `eval`).
//!
//! Prints the CPU and its SIMD flags first: the figures depend on them.

#[path = "../tests/common/pg.rs"]
mod pg;
#[path = "support/cpu.rs"]
mod support_cpu;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cpu_and_cores() -> (String, String, usize) {
    let (model, simd) = support_cpu::cpu();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (model, simd, cores)
}

fn callqc() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_callqc"));
    c.current_dir(root()).env_remove("CALLQC_MODELS");
    c
}

fn run_ok(mut c: Command, what: &str) -> String {
    let out = c.stdin(Stdio::null()).output().expect(what);
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn samples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("samples"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    v.sort();
    v
}

/// A manifest of the samples `copies` times: each copy a file of its own (a batch or an
/// enqueue takes a path once) under a call id of its own.
fn manifest(dir: &Path, copies: usize) -> PathBuf {
    let mut text = String::new();
    for c in 0..copies {
        let copy_dir = dir.join(format!("copy{c}"));
        std::fs::create_dir_all(&copy_dir).unwrap();
        for s in samples() {
            let name = s.file_stem().unwrap().to_string_lossy().to_string();
            let file = copy_dir.join(format!("{name}.wav"));
            if !file.exists() {
                std::fs::copy(&s, &file).unwrap();
                std::fs::copy(s.with_extension("json"), file.with_extension("json")).unwrap();
            }
            text.push_str(&format!("{},,copy{c}-{name}\n", file.display()));
        }
    }
    let p = dir.join(format!("calls-{copies}.csv"));
    std::fs::write(&p, text).unwrap();
    p
}

fn pg_query(url: &str, sql: &str) -> Vec<String> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let rows = c.simple_query(sql).unwrap();
    rows.into_iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or_default().to_string()),
            _ => None,
        })
        .collect()
}

fn queue_workers(cluster: &pg::PgCluster, dir: &Path) {
    let copies: usize = std::env::var("CALLQC_QUEUE_COPIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let calls = manifest(dir, copies);
    println!("\n## Workers on one PostgreSQL queue ({copies}× the samples)\n");
    println!(
        "| workers | calls | audio min | wall s | calls / h | audio-h / h | × 1 worker | queue s per call | queue overhead |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut one = None;
    for workers in [1usize, 2, 3] {
        let url = cluster.database(&format!("bench{workers}"));
        let mut e = callqc();
        e.args(["enqueue", calls.to_str().unwrap(), "--db", &url]);
        run_ok(e, "enqueue");
        let started = Instant::now();
        let mut children: Vec<_> = (0..workers)
            .map(|i| {
                callqc()
                    .args([
                        "--threads",
                        "1",
                        "worker",
                        "--db",
                        &url,
                        "--workers",
                        "1",
                        "--name",
                        &format!("b{i}"),
                        "--exit-when-done",
                        "--poll",
                        "0.2",
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("worker")
            })
            .collect();
        for c in &mut children {
            let status = c.wait().unwrap();
            assert!(status.success(), "a worker failed");
        }
        let wall = started.elapsed().as_secs_f64();
        let row = pg_query(
            &url,
            "SELECT count(*) || ' ' || sum(audio_s) || ' ' || sum(queue_s) || ' ' || sum(analysis_s)
             FROM jobs WHERE state = 'done'",
        );
        let f: Vec<f64> = row[0]
            .split(' ')
            .map(|x| x.parse().unwrap_or(0.0))
            .collect();
        let (n, audio, queue, analysis) = (f[0], f[1], f[2], f[3]);
        let per_hour = n / wall * 3600.0;
        let speedup = match one {
            None => {
                one = Some(per_hour);
                1.0
            }
            Some(base) => per_hour / base,
        };
        println!(
            "| {workers} | {n:.0} | {:.1} | {wall:.1} | {per_hour:.0} | {:.1} | {speedup:.2}× | {:.3} | {:.2} % |",
            audio / 60.0,
            audio / wall,
            queue / n.max(1.0),
            100.0 * queue / analysis.max(1e-9)
        );
    }
}

/// The samples joined `times` times into one stereo 16-bit WAV at their common rate.
fn long_call(dir: &Path, times: usize) -> (PathBuf, f64) {
    let mut left = Vec::new();
    let mut right = Vec::new();
    let mut rate = 0;
    for _ in 0..times {
        for s in samples() {
            let rec = callqc::audio::decode::decode_file(&s).expect("decode sample");
            if rate == 0 {
                rate = rec.sample_rate;
            }
            assert_eq!(rec.sample_rate, rate, "samples share one rate");
            left.extend_from_slice(&rec.channels[0]);
            right.extend_from_slice(rec.channels.get(1).unwrap_or(&rec.channels[0]));
        }
    }
    let path = dir.join("long").join("long.wav");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for (l, r) in left.iter().zip(&right) {
        w.write_sample((l.clamp(-1.0, 1.0) * 32767.0) as i16)
            .unwrap();
        w.write_sample((r.clamp(-1.0, 1.0) * 32767.0) as i16)
            .unwrap();
    }
    w.finalize().unwrap();
    (path, left.len() as f64 / rate as f64)
}

fn one_long_call(dir: &Path) {
    let (long, seconds) = long_call(dir, 3);
    let short = manifest(dir, 3);
    println!(
        "\n## One long call ({:.1} min stereo) against the same audio as {} short calls\n",
        seconds / 60.0,
        3 * samples().len()
    );
    println!("| run | wall s | real-time factor | channels side by side |");
    println!("|---|---:|---:|---:|");
    let db = dir.join("long.db");
    for (label, inputs, args) in [
        (
            "one long call, 2 workers × 1 thread",
            long.parent().unwrap().to_path_buf(),
            ["--threads", "2", "--workers", "2"],
        ),
        (
            "one long call, 1 worker × 1 thread (one core: as before spreading)",
            long.parent().unwrap().to_path_buf(),
            ["--threads", "1", "--workers", "1"],
        ),
        (
            "24 short calls, 2 workers × 1 thread",
            short.clone(),
            ["--threads", "2", "--workers", "2"],
        ),
    ] {
        let (global, local) = args.split_at(2);
        let (wall, summary) = batch_wall_with(&inputs, &db, global, local);
        println!(
            "| {label} | {wall:.1} | {:.3} | {} |",
            wall / seconds,
            summary["spread_calls"]
        );
    }
}

fn batch_wall_with(
    inputs: &Path,
    db: &Path,
    global: &[&str],
    local: &[&str],
) -> (f64, serde_json::Value) {
    let _ = std::fs::remove_file(db);
    let mut c = callqc();
    c.args(global)
        .args([
            "batch",
            inputs.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
        ])
        .args(local)
        .arg("--json");
    let t = Instant::now();
    let out = run_ok(c, "batch");
    (
        t.elapsed().as_secs_f64(),
        serde_json::from_str(&out).unwrap(),
    )
}

fn agent_only(dir: &Path) {
    println!("\n## Agent-only mode on the samples (2 workers × 1 thread)\n");
    println!(
        "| mode | wall s | × full | agent CER % | caller CER % | labelled findings found | deductions on clean calls |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut full_wall = None;
    for (label, extra) in [
        ("full (both channels)", None),
        ("--agent-only", Some("--agent-only")),
    ] {
        let db = dir.join("agent.db");
        let mut local = vec!["--workers", "2"];
        local.extend(extra);
        let (wall, _) = batch_wall_with(&root().join("samples"), &db, &["--threads", "2"], &local);
        // eval reads the calls analysed with its own settings: give it the mode's.
        let mut e = callqc();
        e.args(["eval", "samples", "--db", db.to_str().unwrap(), "--json"])
            .args(extra);
        let report: serde_json::Value = serde_json::from_str(&run_ok(e, "eval")).unwrap();
        let cer = |role: &str| {
            let r = &report["per_role"][role];
            100.0 * r["edits"].as_f64().unwrap_or(0.0)
                / r["reference_chars"].as_f64().unwrap_or(1.0).max(1.0)
        };
        let kinds = report["labels"]["per_kind"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let found: f64 = kinds
            .values()
            .map(|k| k["found"].as_f64().unwrap_or(0.0))
            .sum();
        let labelled: f64 = kinds
            .values()
            .map(|k| k["labelled"].as_f64().unwrap_or(0.0))
            .sum();
        let speed = match full_wall {
            None => {
                full_wall = Some(wall);
                1.0
            }
            Some(f) => f / wall,
        };
        println!(
            "| {label} | {wall:.1} | {speed:.2}× | {:.1} | {:.1} | {found:.0} / {labelled:.0} | {} |",
            cer("agent"),
            cer("caller"),
            report["labels"]["false_deductions_on_clean"]
        );
    }
}

fn main() {
    // `cargo bench` passes --bench; a filter argument is not used.
    let (model, simd, cores) = cpu_and_cores();
    println!("# callqc scale-out benchmark\n");
    println!("CPU: {model} ({cores} cores available); SIMD: {simd}");
    // CALLQC_QUEUE_BENCH=workers,long,agent (the default: all three) picks the parts.
    let parts = std::env::var("CALLQC_QUEUE_BENCH").unwrap_or_else(|_| "workers,long,agent".into());
    let dir = tempfile::tempdir().unwrap();
    if parts.contains("workers") {
        let cluster = pg::PgCluster::start();
        queue_workers(&cluster, dir.path());
    }
    if parts.contains("long") {
        one_long_call(dir.path());
    }
    if parts.contains("agent") {
        agent_only(dir.path());
    }
}
