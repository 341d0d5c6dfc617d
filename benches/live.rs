//! Live warning latency and capacity: `cargo bench --bench live`.
//!
//! Starts a real `callqc serve` on loopback (the real models, 2 decoding workers by default) and
//! streams sample calls at real time over the PBX WebSocket, N at once, for N in
//! `CALLQC_LIVE_LEVELS` (default 1,2,4,6,8,10,12,14), stopping after the first level whose p95
//! passes 2 s or that misses a warning (a sample shows fewer warnings than when it was first
//! streamed, at the lowest level: shedding under overload drops live warnings, never audio). A warning's latency is the client's: from sending the frame that ends the
//! warning's evidence to receiving the warning. `CALLQC_LIVE_SOAK_S=1800` then keeps
//! `CALLQC_LIVE_SOAK_LEVEL` (default 8) calls going for that long and samples resident memory.
//! Each level's row also compares live tone with the final pass: of the final pass's agitation
//! findings, how many a live tone warning overlapped, and live tone warnings it has none for.
//! `CALLQC_LIVE_TONE_DIRS=DIR,…` (folders of `callqc degrade samples --out …`) does the same on
//! those recordings.
//! `CALLQC_LIVE_SIGTERM_SOAK_S=600` runs `callqc serve` as a process (the built binary, as a
//! service manager runs it), keeps `CALLQC_LIVE_SOAK_LEVEL` calls going for that long, sends it
//! SIGTERM in the middle of a round, starts it again and goes on, then stops and starts it once
//! more; every call it accepted must be stored once, with the audio it received.
//! Prints the CPU and its SIMD flags first: figures depend on them.

#[path = "../tests/live_support/mod.rs"]
mod live_support;

#[path = "support/cpu.rs"]
mod support_cpu;
use support_cpu::cpu;

use std::time::{Duration, Instant};

use callqc::live::simulate::{self, Protocol, ReceivedWarning};
use callqc::rubric::rules::Kind;
use callqc::store::{AlertKind, Store};
use live_support::ServeProcess;

/// Samples with warnings (禁语 + agitation, agitation) and without; a level's calls alternate
/// between them, so every level has warnings to time and clean speech to load the workers.
const WARNED: [&str; 2] = ["call05", "call03"];
const CLEAN: [&str; 6] = ["call01", "call02", "call04", "call06", "call07", "call08"];

fn sample_name(i: usize) -> &'static str {
    if i.is_multiple_of(2) {
        WARNED[(i / 2) % WARNED.len()]
    } else {
        CLEAN[(i / 2) % CLEAN.len()]
    }
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn fmt(s: &simulate::LatencySummary) -> String {
    if s.warnings == 0 {
        "— | — | — | 0".into()
    } else {
        format!(
            "{:.0} | {:.0} | {:.0} | {}",
            s.p50_ms, s.p95_ms, s.max_ms, s.warnings
        )
    }
}

/// Live tone against the final pass, over calls already stored: (the final pass's agitation
/// findings, how many of them a live tone warning overlapped (±1 s), live tone warnings that
/// overlapped none).
fn tone_recall(db: &std::path::Path, call_ids: &[String]) -> (usize, usize, usize) {
    let store = Store::open(db).expect("store");
    let (mut finals, mut warned, mut extra) = (0, 0, 0);
    for id in call_ids {
        let Ok(call) = store.find_call(id) else {
            continue;
        };
        let found: Vec<(f64, f64)> = store
            .findings(call, None)
            .unwrap_or_default()
            .iter()
            .filter(|f| f.kind == Kind::AgentTone)
            .map(|f| (f.start - 1.0, f.end + 1.0))
            .collect();
        let live: Vec<(f64, f64)> = store
            .alerts(id)
            .unwrap_or_default()
            .iter()
            .filter(|a| a.kind == AlertKind::Tone)
            .map(|a| (a.evidence_start_s, a.evidence_end_s))
            .collect();
        let overlaps = |a: (f64, f64), b: (f64, f64)| a.0 < b.1 && b.0 < a.1;
        finals += found.len();
        warned += found
            .iter()
            .filter(|&&f| live.iter().any(|&l| overlaps(f, l)))
            .count();
        extra += live
            .iter()
            .filter(|&&l| !found.iter().any(|&f| overlaps(f, l)))
            .count();
    }
    (finals, warned, extra)
}

/// One round of `level` concurrent calls: every warning, the warnings per sample name, the
/// call ids.
async fn round(
    server: &live_support::TestServer,
    level: usize,
    tag: &str,
) -> (
    Vec<ReceivedWarning>,
    Vec<(&'static str, usize)>,
    Vec<String>,
) {
    let calls = (0..level)
        .map(|i| live_support::sample(sample_name(i)))
        .collect();
    let mut opts = server.options(Protocol::Ws, 1.0);
    opts.call_prefix = format!("bench-{tag}-");
    let reports = simulate::simulate(calls, &opts, level).await;
    for r in &reports {
        if let Some(e) = &r.error {
            eprintln!("{}: {e}", r.call_id);
        }
    }
    let counts = reports
        .iter()
        .enumerate()
        .map(|(i, r)| (sample_name(i), r.warnings.len()))
        .collect();
    let ids = reports.iter().map(|r| r.call_id.clone()).collect();
    (
        reports.into_iter().flat_map(|r| r.warnings).collect(),
        counts,
        ids,
    )
}

fn main() {
    // `cargo bench` passes --bench; nothing else is read from the command line.
    let (model, simd) = cpu();
    println!(
        "CPU: {model}; SIMD: {simd}; cores: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let levels = env_list("CALLQC_LIVE_LEVELS", "1,2,4,6,8,10,12,14");
    let soak_s: u64 = std::env::var("CALLQC_LIVE_SOAK_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let soak_level: usize = std::env::var("CALLQC_LIVE_SOAK_LEVEL")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = live_support::start("").await;
        println!(
            "callqc serve: 1 stream worker (VAD, tone, live rules), {} decoding workers × {} whisper thread(s), a final pass at idle priority; calls streamed at real time over the PBX WebSocket (20 ms frames)\n",
            server.server.engine.config().live_workers,
            server.server.engine.config().live_worker.whisper_threads
        );
        if !levels.is_empty() {
            println!("| concurrent calls | 禁语 p50 ms | 禁语 p95 ms | 禁语 max ms | 禁语 n | tone p50 ms | tone p95 ms | tone max ms | tone n | all p95 ms | warnings missed | tone: final findings warned live | tone: live warnings the final pass has not | utterances shed | RSS MB after |");
            println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        }
        let mut sustained = 0;
        // Warnings each sample gets when streamed alone: what a loaded server must also show.
        let mut reference: std::collections::HashMap<&str, usize> = Default::default();
        for &level in &levels {
            let shed0 = server.server.engine.stats().shed_utterances;
            let (warnings, counts, ids) = round(&server, level, &format!("l{level}")).await;
            server.wait_stored().await;
            let (finals, warned, extra) = tone_recall(&server.db(), &ids);
            let mut missed = 0;
            for (name, n) in counts {
                let want = *reference.entry(name).or_insert(n);
                missed += want.saturating_sub(n);
            }
            let by = |k: AlertKind| simulate::summarize(warnings.iter().filter(|w| w.kind == Some(k)));
            let all = simulate::summarize(&warnings);
            let shed = server.server.engine.stats().shed_utterances - shed0;
            println!(
                "| {level} | {} | {} | {:.0} | {missed} | {warned}/{finals} | {extra} | {shed} | {:.0} |",
                fmt(&by(AlertKind::Forbidden)),
                fmt(&by(AlertKind::Tone)),
                all.p95_ms,
                rss_mb()
            );
            if all.p95_ms > 2000.0 || missed > 0 {
                break;
            }
            sustained = level;
        }
        if !levels.is_empty() {
            println!(
                "\nhighest level with p95 ≤ 2 s and no warning missed: {sustained} concurrent real-time stereo calls"
            );
        }

        if soak_s > 0 {
            println!("\nsoak: {soak_level} concurrent calls for {soak_s} s; resident memory after each round:");
            let started = Instant::now();
            let mut samples = Vec::new();
            let mut all = Vec::new();
            let mut i = 0;
            while started.elapsed() < Duration::from_secs(soak_s) {
                all.extend(round(&server, soak_level, &format!("soak{i}")).await.0);
                samples.push(rss_mb());
                let st = server.server.engine.stats();
                println!(
                    "  {:>6.0} s  RSS {:.0} MB  final passes waiting {}  shed so far {}",
                    started.elapsed().as_secs_f64(),
                    samples.last().unwrap(),
                    st.calls_ended - st.calls_stored - st.calls_failed,
                    st.shed_utterances
                );
                i += 1;
            }
            // The first round loads what stays loaded; flatness is judged after it.
            let steady = &samples[1.min(samples.len() - 1)..];
            let lo = steady.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = steady.iter().copied().fold(0.0, f64::max);
            // Two views of "flat": the whole spread, and the farthest sample from the median
            // (a ± band: a call's buffers come and go with it, so samples alternate).
            let mut sorted = steady.to_vec();
            sorted.sort_by(f64::total_cmp);
            let median = sorted[sorted.len() / 2];
            let off = steady
                .iter()
                .map(|x| (x - median).abs())
                .fold(0.0, f64::max);
            let s = simulate::summarize(&all);
            println!(
                "soak: {} rounds, RSS after round 1..: min {lo:.0} MB, max {hi:.0} MB ({:+.1} % of min; every sample within ±{:.1} % of the median {median:.0} MB); warnings p50 {:.0} / p95 {:.0} ms over {}",
                samples.len(),
                100.0 * (hi - lo) / lo.max(1e-9),
                100.0 * off / median.max(1e-9),
                s.p50_ms,
                s.p95_ms,
                s.warnings
            );
        }
        // Live tone against the final pass on other recordings (the degraded copies of
        // `callqc degrade samples --out DIR`): the calls with agitation and two without, from
        // each folder, streamed at real time four at a time.
        let tone_dirs = std::env::var("CALLQC_LIVE_TONE_DIRS").unwrap_or_default();
        let tone_dirs: Vec<&str> = tone_dirs.split(',').filter(|d| !d.is_empty()).collect();
        if !tone_dirs.is_empty() {
            println!("\n| recordings | tone: final findings warned live | tone: live warnings the final pass has not | tone p95 ms | 禁语 p95 ms |");
            println!("|---|---:|---:|---:|---:|");
        }
        for (k, dir) in tone_dirs.iter().enumerate() {
            let dir = std::path::Path::new(dir);
            let calls: Vec<simulate::SimCall> = ["call03", "call05", "call01", "call02"]
                .iter()
                .map(|n| dir.join(format!("{n}.wav")))
                .filter(|p| p.exists())
                .map(|path| {
                    let side: serde_json::Value = serde_json::from_str(
                        &std::fs::read_to_string(path.with_extension("json")).unwrap(),
                    )
                    .unwrap();
                    simulate::SimCall {
                        path,
                        agent_id: side["agent_id"].as_str().unwrap_or("6618").to_string(),
                        channel_map: Default::default(),
                    }
                })
                .collect();
            let mut opts = server.options(Protocol::Ws, 1.0);
            opts.call_prefix = format!("bench-tone{k}-");
            let n = calls.len();
            let reports = simulate::simulate(calls, &opts, n).await;
            server.wait_stored().await;
            let ids: Vec<String> = reports.iter().map(|r| r.call_id.clone()).collect();
            let (finals, warned, extra) = tone_recall(&server.db(), &ids);
            let warnings: Vec<ReceivedWarning> =
                reports.into_iter().flat_map(|r| r.warnings).collect();
            let p95 = |k: AlertKind| {
                simulate::summarize(warnings.iter().filter(|w| w.kind == Some(k))).p95_ms
            };
            println!(
                "| {} | {warned}/{finals} | {extra} | {:.0} | {:.0} |",
                dir.file_name().unwrap_or_default().to_string_lossy(),
                p95(AlertKind::Tone),
                p95(AlertKind::Forbidden)
            );
        }
        // Final passes still queued after a soak finish in shutdown (it waits for them).
        server.server.shutdown().await;
        let stop_soak_s: u64 = std::env::var("CALLQC_LIVE_SIGTERM_SOAK_S")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if stop_soak_s > 0 {
            sigterm_soak(stop_soak_s, soak_level).await;
        }
    });
}

/// A SIGTERM to `serve` and its exit: (seconds from the signal to the exit, its status, whether
/// it stored every final pass before leaving, from its log).
async fn sigterm(serve: ServeProcess, log: &std::path::Path) -> (f64, String, bool) {
    let before = std::fs::read_to_string(log).unwrap_or_default().len();
    let at = Instant::now();
    serve.signal(libc::SIGTERM);
    let mut child = serve.child;
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .map_or_else(|e| e.to_string(), |s| s.to_string());
    let said = std::fs::read_to_string(log).unwrap_or_default();
    let all = !said[before.min(said.len())..].contains("stopped before every final pass");
    (at.elapsed().as_secs_f64(), status, all)
}

/// The soak with a SIGTERM in the middle (see the crate doc).
async fn sigterm_soak(seconds: u64, level: usize) {
    let dir = tempfile::tempdir().unwrap();
    let config = live_support::write_config(dir.path(), "callqc.db", "");
    let db = dir.path().join("callqc.db");
    let log = dir.path().join("serve.log");
    println!(
        "\nsoak with a SIGTERM: `callqc serve` as a process (stop_timeout_s 30), {level} concurrent calls for {seconds} s"
    );
    let mut serve = ServeProcess::start(&config, &log);
    let started = Instant::now();
    let half = Duration::from_secs(seconds / 2);
    let mut reports = Vec::new();
    let mut stops = Vec::new();
    let mut i = 0;
    while started.elapsed() < Duration::from_secs(seconds) {
        let calls = (0..level)
            .map(|k| live_support::sample(sample_name(i * level + k)))
            .collect();
        let opts = simulate::SimulateOptions {
            server: format!("http://{}", serve.addr),
            audiosocket: None,
            protocol: Protocol::Ws,
            speed: 1.0,
            ingest_token: live_support::INGEST.into(),
            supervisor_token: Some(live_support::SUPERVISOR.into()),
            call_prefix: format!("stop-soak{i}-"),
            max_audio_s: None,
        };
        let mut task = tokio::spawn(async move { simulate::simulate(calls, &opts, level).await });
        i += 1;
        if stops.is_empty() {
            // The SIGTERM lands in the middle of the round that spans the soak's half-way mark.
            tokio::select! {
                r = &mut task => {
                    reports.extend(r.unwrap());
                    continue;
                }
                _ = tokio::time::sleep(half.saturating_sub(started.elapsed())) => {}
            }
            let at = started.elapsed().as_secs_f64();
            let (took, status, all) = sigterm(serve, &log).await;
            stops.push(format!(
                "SIGTERM at {at:.0} s with {level} calls streaming: exited ({status}) after {took:.1} s, {}",
                if all { "every final pass stored" } else { "the rest left for the next start" }
            ));
            serve = ServeProcess::start(&config, &log);
        }
        reports.extend(task.await.unwrap());
    }
    let (took, status, all) = sigterm(serve, &log).await;
    stops.push(format!(
        "SIGTERM at the end: exited ({status}) after {took:.1} s, {}",
        if all {
            "every final pass stored"
        } else {
            "the rest left for the next start"
        }
    ));
    // The next start stores what the stops left.
    let accepted: Vec<&simulate::CallReport> = reports.iter().filter(|r| r.accepted).collect();
    let serve = ServeProcess::start(&config, &log);
    let deadline = Instant::now() + Duration::from_secs(900);
    let stored = |store: &Store| {
        accepted
            .iter()
            .filter(|r| store.live_call(&r.call_id).is_ok_and(|c| c.is_some()))
            .count()
    };
    while Instant::now() < deadline && Store::open(&db).map_or(0, |s| stored(&s)) < accepted.len() {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (took, status, _) = sigterm(serve, &log).await;
    stops.push(format!(
        "restarted to store what was left, then SIGTERM: exited ({status}) after {took:.1} s"
    ));

    let store = Store::open(&db).unwrap();
    let (mut lost, mut no_analysis, mut hangup, mut shutdown, mut audio_short) = (0, 0, 0, 0, 0);
    for r in &accepted {
        let Ok(Some(live)) = store.live_call(&r.call_id) else {
            lost += 1;
            eprintln!("{}: accepted but not stored", r.call_id);
            continue;
        };
        no_analysis += usize::from(store.find_call(&r.call_id).is_err());
        match live.end_reason {
            callqc::store::EndReason::Hangup => hangup += 1,
            callqc::store::EndReason::Shutdown => shutdown += 1,
            _ => {}
        }
        // Every sample received is in the recording the analysis read.
        audio_short += usize::from(live.samples_stored != live.samples_received);
    }
    for s in &stops {
        println!("  {s}");
    }
    println!(
        "| calls streamed | accepted | stored | lost | without analysis | ended: hangup | ended: shutdown | recording shorter than received | serve panicked |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let panicked = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("panicked");
    println!(
        "| {} | {} | {} | {lost} | {no_analysis} | {hangup} | {shutdown} | {audio_short} | {} |",
        reports.len(),
        accepted.len(),
        stored(&store),
        if panicked { "yes (see the log)" } else { "no" }
    );
    if lost + no_analysis + audio_short > 0 || panicked {
        println!("serve's log:\n{}", live_support::log_tail(&log));
    }
}
