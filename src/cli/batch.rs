//! `callqc batch PATH…`: the nightly run — every call transcribed, tone-scored, checked against
//! the rubric and stored in SQLite, with a progress bar and a summary.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use callqc::audio::ChannelMap;
use callqc::pipeline::batch::{self, BatchConfig, BatchEvent, BatchSummary};
use callqc::rubric;
use callqc::settings::Parallelism;
use callqc::store::Store;

use super::{AsrArgs, GlobalOpts};

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Recordings: WAV files, folders (searched recursively), or manifests (.csv/.tsv/.txt:
    /// path[,agent_id[,call_id[,channel map]]] per line).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Rubric file.
    #[arg(long, default_value = "rubrics/12345.toml")]
    pub rubric: PathBuf,
    /// SQLite database (created if missing).
    #[arg(long, default_value = "callqc.db")]
    pub db: PathBuf,
    /// Calls analysed in parallel (default: as many as threads allow, at most 2).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Redo calls already analysed with the same audio, models and rubric.
    #[arg(long)]
    pub force: bool,
    /// Default stereo channel roles (a manifest or NAME.json may override per call).
    #[arg(long, default_value = "left=agent,right=caller")]
    pub channels: ChannelMap,
    /// Tone model (ONNX + sidecar JSON); default <models>/tone.onnx.
    #[arg(long)]
    pub tone_model: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub asr: AsrArgs,
}

/// A short, stable fingerprint of a file (size + first and last MiB): enough to notice a
/// different model without hashing 150 MB on every run.
fn file_fingerprint(path: &std::path::Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut h = Sha256::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        h.update(len.to_le_bytes());
        let mut buf = vec![0u8; 1 << 20];
        if let Ok(n) = f.read(&mut buf) {
            h.update(&buf[..n]);
        }
        if len > (2 << 20)
            && f.seek(SeekFrom::End(-(1 << 20))).is_ok()
            && let Ok(n) = f.read(&mut buf)
        {
            h.update(&buf[..n]);
        }
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn run(opts: &GlobalOpts, args: BatchArgs) -> anyhow::Result<ExitCode> {
    // Everything that can be wrong with the set-up is checked before any call starts.
    let rubric = Arc::new(rubric::load(&args.rubric)?);
    let jobs = batch::collect_jobs(&args.paths, args.channels)?;
    let max_workers = args.workers.unwrap_or(2);
    let par = Parallelism::split(opts.threads, max_workers);
    let worker = args.asr.worker_config(opts, par);
    let tone_model = args
        .tone_model
        .clone()
        .unwrap_or_else(|| opts.models_dir.join("tone.onnx"));
    let models = serde_json::json!({
        "whisper": {"path": worker.whisper_model, "fingerprint": file_fingerprint(&worker.whisper_model)},
        "vad": file_fingerprint(&opts.models_dir.join("silero_vad.onnx")),
        "tone": {"path": tone_model, "fingerprint": file_fingerprint(&tone_model)},
        "asr": worker.asr,
        "vad_params": worker.vad,
        "vad_mode": worker.vad_mode,
    });
    let models_key: String = Sha256::digest(models.to_string().as_bytes())
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect();
    let settings = serde_json::json!({"parallelism": par, "force": args.force});
    let mut store = Store::open(&args.db)?;
    let run_id = store.begin_run(
        "batch",
        &models.to_string(),
        Some((&rubric.name, &rubric.version, &rubric.source_hash)),
        &settings.to_string(),
    )?;
    let cfg = BatchConfig {
        worker,
        tone_model,
        rubric: rubric.clone(),
        parallelism: par,
        force: args.force,
        models_key,
    };

    let bar = ProgressBar::new(jobs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} calls  {msg}  elapsed {elapsed_precise}  ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut audio_s = 0.0;
    let mut on_event = |e: BatchEvent| match e {
        BatchEvent::Started { skipped, .. } => {
            bar.inc(skipped as u64);
            if skipped > 0 {
                bar.println(format!("{skipped} calls already analysed with these models and rubric: skipped (--force redoes them)"));
            }
        }
        BatchEvent::CallDone {
            audio_s: a, error, ..
        } => {
            audio_s += a;
            if let Some(e) = error {
                bar.println(format!("failed: {e}"));
            }
            let wall = started.elapsed().as_secs_f64().max(1e-6);
            bar.set_message(format!(
                "{:.2} audio-h  RTF {:.2}",
                audio_s / 3600.0,
                wall / audio_s.max(1e-6)
            ));
            bar.inc(1);
        }
    };
    let summary = batch::run(&mut store, jobs, &cfg, run_id, &mut on_event)
        .with_context(|| format!("batch into {}", args.db.display()))?;
    bar.finish_and_clear();
    let stages = serde_json::to_string(&summary.stages)?;
    store.finish_run(
        run_id,
        summary.done,
        summary.skipped,
        summary.failed,
        summary.audio_s,
        summary.wall_s,
        &stages,
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary, &args, &rubric.name);
    }
    Ok(if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_summary(s: &BatchSummary, args: &BatchArgs, rubric: &str) {
    println!("callqc batch → {}  (rubric {rubric})", args.db.display());
    println!(
        "  calls: {} ({} analysed, {} skipped as already done, {} failed)",
        s.calls, s.done, s.skipped, s.failed
    );
    if s.done > 0 {
        println!(
            "  audio: {:.1} min in {:.1} s wall  (real-time factor {:.3}, {:.1}× real time)",
            s.audio_s / 60.0,
            s.wall_s,
            s.wall_s / s.audio_s.max(1e-9),
            s.audio_s / s.wall_s.max(1e-9)
        );
        if let Some(m) = s.mean_score {
            println!("  mean score: {m:.1}");
        }
        let (stage, secs) = s.stages.slowest();
        let total: f64 = s.stages.decode
            + s.stages.vad
            + s.stages.asr
            + s.stages.tone
            + s.stages.rules
            + s.stages.store;
        println!(
            "  slowest stage: {stage} ({secs:.1} s, {:.0}% of stage time; everything else {:.1}%)",
            100.0 * secs / total.max(1e-9),
            100.0 * (total - s.stages.asr) / total.max(1e-9)
        );
    }
    if !s.deductions_by_item.is_empty() {
        println!("  findings by rubric item:");
        for (item, n) in &s.deductions_by_item {
            println!("    {item:<20} {n}");
        }
    }
    for (path, why) in &s.failures {
        println!("  FAILED {path}: {why}");
    }
}
