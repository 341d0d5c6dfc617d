//! `callqc batch PATH…`: the nightly run — every call transcribed, tone-scored, checked against
//! the rubric and stored, with a progress bar and a summary.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use callqc::audio::ChannelMap;
use callqc::pipeline::batch::{self, BatchConfig, BatchSummary};
use callqc::pipeline::events::{CallEvent, CallSeq, CallSink};
use callqc::pipeline::identity::ModelsIdentity;
use callqc::pipeline::sinks::{StoreSink, Tee};
use callqc::rubric;
use callqc::settings::Parallelism;
use callqc::store::{RunTotals, Store};

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
    /// The store: a SQLite file (created if missing), or a PostgreSQL server
    /// (postgres://user@host/db: the calls are enqueued and worked on here, and by any
    /// `callqc worker` on other machines).
    #[arg(long, env = "CALLQC_DB", default_value = "callqc.db")]
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
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Only say what the run would do (calls listed, to analyse, already done, unreadable):
    /// reads the inputs and the store, loads no model, analyses nothing, writes nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub asr: AsrArgs,
}

/// The progress bar, as a sink: one step per call that ends or fails.
struct Progress {
    bar: ProgressBar,
    started: Instant,
    audio_s: f64,
}

impl CallSink for Progress {
    fn event(&mut self, _call: CallSeq, event: &CallEvent) -> Result<(), callqc::Error> {
        match event {
            CallEvent::Ended(end) => self.audio_s += end.duration_s,
            CallEvent::Failed { error, .. } => self.bar.println(format!("failed: {error}")),
            _ => return Ok(()),
        }
        let wall = self.started.elapsed().as_secs_f64().max(1e-6);
        self.bar.set_message(format!(
            "{:.2} audio-h  RTF {:.2}",
            self.audio_s / 3600.0,
            wall / self.audio_s.max(1e-6)
        ));
        self.bar.inc(1);
        Ok(())
    }
}

pub fn run(opts: &GlobalOpts, args: BatchArgs) -> anyhow::Result<ExitCode> {
    // Everything that can be wrong with the set-up is checked before any call starts.
    let rubric = Arc::new(rubric::load(&args.rubric)?);
    let jobs = batch::collect_jobs(&args.paths, args.channels)?;
    let max_workers = args.workers.unwrap_or(2);
    let par = Parallelism::split(opts.threads, max_workers);
    let worker = args.asr.worker_config(opts, par);
    let models = ModelsIdentity::of(&worker, &worker.tone_model);
    let settings = serde_json::json!({"parallelism": par, "force": args.force});
    let cfg = BatchConfig {
        worker,
        rubric: rubric.clone(),
        parallelism: par,
        force: args.force,
        models_key: models.key.clone(),
    };
    if callqc::store::is_postgres_url(&args.db.to_string_lossy()) {
        return super::queue::batch_on_postgres(&jobs, &args.db, args.json, &cfg);
    }
    let mut store = Store::open(&args.db)?;
    if args.dry_run {
        let plan = batch::plan(&store, jobs, &cfg)?;
        let to_do = plan.to_do.len();
        if args.json {
            let out = serde_json::json!({"calls": plan.calls, "to_analyse": to_do,
                "already_done": plan.skipped, "unreadable": plan.unreadable});
            println!("{out}");
        } else {
            println!(
                "{} calls listed: {to_do} to analyse ({} of them unreadable now: they would fail with the reason), {} already analysed with these models and rubric",
                plan.calls, plan.unreadable, plan.skipped
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let run_id = store.begin_run(
        "batch",
        &models.description.to_string(),
        Some((&rubric.name, &rubric.version, &rubric.source_hash)),
        &settings.to_string(),
    )?;
    let plan = batch::plan(&store, jobs, &cfg)?;

    let bar = ProgressBar::new(plan.calls as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} calls  {msg}  elapsed {elapsed_precise}  ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.inc(plan.skipped as u64);
    if plan.skipped > 0 {
        bar.println(format!(
            "{} calls already analysed with these models and rubric: skipped (--force redoes them)",
            plan.skipped
        ));
    }
    let mut progress = Progress {
        bar: bar.clone(),
        started: Instant::now(),
        audio_s: 0.0,
    };
    let summary = {
        let mut writer = StoreSink::new(
            &mut store,
            models.key.clone(),
            Some(run_id),
            rubric.source_hash.clone(),
        );
        let mut sinks = Tee(vec![&mut writer, &mut progress]);
        batch::run(plan, &cfg, &mut sinks)
            .with_context(|| format!("batch into {}", store.location()))?
    };
    bar.finish_and_clear();
    store.finish_run(
        run_id,
        &RunTotals {
            done: summary.done,
            skipped: summary.skipped,
            failed: summary.failed,
            audio_s: summary.audio_s,
            wall_s: summary.wall_s,
            stages_json: serde_json::to_string(&summary.stages)?,
        },
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
    println!(
        "callqc batch → {}  (rubric {rubric})",
        callqc::store::redacted_url(&args.db.to_string_lossy())
    );
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
    if !s.observations_by_item.is_empty() {
        println!("  observations (within the rules, no points):");
        for (item, n) in &s.observations_by_item {
            println!("    {item:<20} {n}");
        }
    }
    for (path, why) in &s.failures {
        println!("  FAILED {path}: {why}");
    }
}
