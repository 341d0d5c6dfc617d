//! Resource limits: a night's manifest of 100,000 calls is planned without loading what is not
//! needed (no audio decoded, no model loaded, memory a small multiple of the list itself). The
//! long-recording half of the limits (a 4-hour call in memory bounded by its audio) needs
//! minutes of analysis and runs as `scripts/long-call.sh`, not here.

mod common;

use std::io::Write;
use std::process::Command;

/// Peak resident memory (MB) of the children this process has waited for.
fn children_peak_rss_mb() -> f64 {
    // SAFETY: getrusage only writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0, "getrusage");
    usage.ru_maxrss as f64 / 1024.0
}

#[test]
fn a_manifest_of_100000_calls_is_planned_without_loading_audio_or_models() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A tenth of a second of stereo audio, linked under 100,000 names (ten copies, since a file
    // system caps the links to one file): distinct calls on disk.
    let one = dir.path().join("one.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&one, spec).expect("wav");
    for i in 0..1600 {
        w.write_sample(((i % 50) * 100) as i16).expect("write");
    }
    w.finalize().expect("finalize");
    let copies: Vec<_> = (0..10)
        .map(|k| {
            let p = dir.path().join(format!("one-{k}.wav"));
            std::fs::copy(&one, &p).expect("copy");
            p
        })
        .collect();
    let calls = dir.path().join("calls");
    std::fs::create_dir(&calls).expect("mkdir");
    let manifest = dir.path().join("night.csv");
    let mut m = std::io::BufWriter::new(std::fs::File::create(&manifest).expect("manifest"));
    writeln!(m, "path,agent_id,call_id").expect("write");
    for i in 0..100_000 {
        let name = format!("c{i:06}.wav");
        std::fs::hard_link(&copies[i / 10_000], calls.join(&name)).expect("link");
        writeln!(m, "calls/{name},{},night-{i}", 1000 + i % 300).expect("write");
    }
    m.flush().expect("flush");
    drop(m);
    let db = dir.path().join("plan.db");
    let out = Command::new(env!("CARGO_BIN_EXE_callqc"))
        .args(["batch", "--dry-run", "--json", "--db"])
        .arg(&db)
        .arg(&manifest)
        .current_dir(common::root())
        .output()
        .expect("run callqc");
    let stdout = common::stdout(&out);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let plan: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json");
    let rss = children_peak_rss_mb();
    println!("100,000-line manifest: {plan}; peak RSS of `callqc batch --dry-run` {rss:.0} MB");
    assert_eq!(plan["calls"], 100_000);
    assert_eq!(plan["to_analyse"], 100_000);
    assert_eq!(plan["unreadable"], 0);
    // Jobs are a few hundred bytes each; the audio (100,000 × 6.4 KB as 8 kHz float) and the
    // models (whisper alone is 80 MB) must not be in memory.
    assert!(
        rss < 250.0,
        "planning 100,000 calls peaked at {rss:.0} MB: something loads what it does not need"
    );
}
