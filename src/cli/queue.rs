//! Many machines: `callqc enqueue` registers calls in a PostgreSQL store's queue, `callqc worker`
//! analyses them (on any number of machines), `callqc progress` shows where the queue stands.
//! `callqc batch --db postgres://…` is enqueue + work on this machine.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::bail;
use clap::Args;

use callqc::audio::ChannelMap;
use callqc::pipeline::batch::{self, BatchConfig, CallJob};
use callqc::pipeline::distributed::{self, QueueConfig, Until, WorkSummary};
use callqc::pipeline::identity::ModelsIdentity;
use callqc::rubric;
use callqc::settings::Parallelism;
use callqc::store::queue::Enqueued;
use callqc::store::{Store, is_postgres_url};

use super::{AsrArgs, GlobalOpts};

#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// Recordings: WAV files, folders, or manifests (as `batch` takes them).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The PostgreSQL store (postgres://user@host/db).
    #[arg(long, env = "CALLQC_DB")]
    pub db: PathBuf,
    /// Queue calls again even if their job finished (a new rubric or models: workers then redo
    /// those not done under their own).
    #[arg(long)]
    pub force: bool,
    /// Default stereo channel roles (a manifest or NAME.json may override per call).
    #[arg(long, default_value = "left=agent,right=caller")]
    pub channels: ChannelMap,
}

/// How a worker holds its calls.
#[derive(Debug, Clone, Args)]
pub struct LeaseArgs {
    /// Lease length in seconds: a worker silent this long is presumed dead and its call is
    /// taken by another (heartbeats renew it every third of it while whisper runs).
    #[arg(long, default_value_t = 60.0)]
    pub lease: f64,
    /// Attempts (failures and expired leases) after which a call is marked failed.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: i64,
    /// Seconds between claims while the queue is empty.
    #[arg(long, default_value_t = 2.0)]
    pub poll: f64,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The PostgreSQL store (postgres://user@host/db).
    #[arg(long, env = "CALLQC_DB")]
    pub db: PathBuf,
    /// Rubric file (every worker should use the same one: a call is redone when it changes).
    #[arg(long, default_value = "rubrics/12345.toml")]
    pub rubric: PathBuf,
    /// Calls analysed in parallel by this process (default: as many as threads allow, at most 2).
    #[arg(long)]
    pub workers: Option<usize>,
    /// This worker's name in the queue (default: host name and process id).
    #[arg(long)]
    pub name: Option<String>,
    /// Stop when no call is queued or running, instead of waiting for more.
    #[arg(long)]
    pub exit_when_done: bool,
    /// Redo calls already analysed with the same audio, models and rubric.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub lease: LeaseArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub asr: AsrArgs,
}

#[derive(Debug, Args)]
pub struct ProgressArgs {
    /// The PostgreSQL store (postgres://user@host/db).
    #[arg(long, env = "CALLQC_DB")]
    pub db: PathBuf,
    #[arg(long)]
    pub json: bool,
}

fn require_postgres(db: &Path, command: &str) -> anyhow::Result<()> {
    if !is_postgres_url(&db.to_string_lossy()) {
        bail!(
            "{}: `callqc {command}` needs a PostgreSQL store (--db postgres://user@host/db or CALLQC_DB); \
             on one machine `callqc batch --db FILE.db` does it all",
            db.display()
        );
    }
    Ok(())
}

/// Set by SIGINT / SIGTERM: workers finish the call in hand, then stop.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn stop_on_signals() -> &'static AtomicBool {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_signal as extern "C" fn(libc::c_int) as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_signal as extern "C" fn(libc::c_int) as *const () as libc::sighandler_t,
        );
    }
    &STOP
}

pub fn enqueue(_opts: &GlobalOpts, a: EnqueueArgs) -> anyhow::Result<ExitCode> {
    require_postgres(&a.db, "enqueue")?;
    let jobs = batch::collect_jobs(&a.paths, a.channels)?;
    let mut store = Store::open(&a.db)?;
    let force = a.force;
    let e = distributed::enqueue(&mut store, &jobs, |_, _| Ok(force))?;
    print_enqueued("enqueue", &store, jobs.len(), &e);
    Ok(ExitCode::SUCCESS)
}

fn print_enqueued(command: &str, store: &Store, calls: usize, e: &Enqueued) {
    println!(
        "callqc {command} → {} (batch {}): {calls} calls: {} new, {} queued again, {} already queued or finished",
        store.location(),
        e.batch_id,
        e.added,
        e.requeued,
        e.unchanged
    );
}

fn queue_config(lease: &LeaseArgs, name: Option<String>, until: Until, force: bool) -> QueueConfig {
    QueueConfig {
        lease_s: lease.lease.max(1.0),
        max_attempts: lease.max_attempts.max(1),
        poll_s: lease.poll.max(0.05),
        until,
        name: name.unwrap_or_else(distributed::default_worker_name),
        force,
    }
}

pub fn worker(opts: &GlobalOpts, a: WorkerArgs) -> anyhow::Result<ExitCode> {
    require_postgres(&a.db, "worker")?;
    let rubric = Arc::new(rubric::load(&a.rubric)?);
    let par = Parallelism::split(opts.threads, a.workers.unwrap_or(2));
    let worker = a.asr.worker_config(opts, par);
    let models = ModelsIdentity::of(&worker, &worker.tone_model);
    let cfg = BatchConfig {
        worker,
        rubric,
        parallelism: par,
        force: a.force,
        models_key: models.key.clone(),
    };
    let until = if a.exit_when_done {
        Until::Drained(Vec::new())
    } else {
        Until::Stopped
    };
    let q = queue_config(&a.lease, a.name, until, a.force);
    let stop = stop_on_signals();
    let summary = distributed::work(&a.db, &cfg, &q, stop)?;
    print_work(&summary, a.json, &q.name)?;
    Ok(if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_work(s: &WorkSummary, json: bool, name: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(s)?);
        return Ok(());
    }
    println!(
        "callqc worker {name}: {} analysed, {} skipped as already done, {} failed, {} retried, {} lost to an expired lease",
        s.done, s.skipped, s.failed, s.retried, s.lease_lost
    );
    if s.done > 0 {
        println!(
            "  audio: {:.1} min in {:.1} s wall (real-time factor {:.3}); queue overhead {:.2} s = {:.2}% of the analysis time",
            s.audio_s / 60.0,
            s.wall_s,
            s.wall_s / s.audio_s.max(1e-9),
            s.queue_s,
            100.0 * s.queue_s / s.analysis_s.max(1e-9)
        );
    }
    Ok(())
}

/// `batch` on PostgreSQL: enqueue the calls as one batch, then work on this machine until
/// every call of the batch is stored or failed (other machines' workers may share it).
pub fn batch_on_postgres(
    jobs: &[CallJob],
    db: &Path,
    json: bool,
    cfg: &BatchConfig,
) -> anyhow::Result<ExitCode> {
    let mut store = Store::open(db)?;
    let force = cfg.force;
    let probe = Store::open(db)?;
    let e = distributed::enqueue(&mut store, jobs, |key, hash| {
        Ok(force || !cfg.already_analysed(&probe, key, hash)?)
    })?;
    print_enqueued("batch", &store, jobs.len(), &e);
    let q = queue_config(
        &LeaseArgs {
            lease: 60.0,
            max_attempts: 3,
            poll: 1.0,
        },
        None,
        Until::Drained(vec![e.batch_id]),
        force,
    );
    let summary = distributed::work(db, cfg, &q, stop_on_signals())?;
    print_work(&summary, json, &q.name)?;
    let failed = store.progress()?.failures;
    for (key, why) in &failed {
        println!("  FAILED {key}: {why}");
    }
    Ok(if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn progress(_opts: &GlobalOpts, a: ProgressArgs) -> anyhow::Result<ExitCode> {
    require_postgres(&a.db, "progress")?;
    let store = Store::open(&a.db)?;
    let p = store.progress()?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&p)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("callqc queue at {}", store.location());
    println!(
        "  queued {}  running {} ({} with an expired lease)  done {}  failed {}",
        p.queued, p.running, p.expired, p.done, p.failed
    );
    println!(
        "  workers active (last minute): {}   done in the last 10 min: {}, last hour: {}   audio done: {:.2} h",
        p.workers_active, p.done_last_10_min, p.done_last_hour, p.audio_h_done
    );
    match p.eta_h {
        Some(eta) => println!(
            "  throughput {:.0} calls/h → ETA {:.1} h for the {} calls left",
            p.calls_per_hour,
            eta,
            p.queued + p.running
        ),
        None => println!("  throughput: nothing finished in the last 10 minutes"),
    }
    if let (Some(a), Some(q)) = (p.mean_analysis_s, p.mean_queue_s) {
        println!(
            "  per call: {a:.1} s of work, of which {q:.3} s queue overhead ({:.2}%)",
            100.0 * q / a.max(1e-9)
        );
    }
    for (key, why) in &p.failures {
        println!("  FAILED {key}: {why}");
    }
    Ok(ExitCode::SUCCESS)
}
