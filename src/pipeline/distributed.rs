//! Many machines, one PostgreSQL store: [`enqueue`] registers calls in the store's work queue
//! (see `store/queue.rs`), and [`work`] runs queue workers — each a thread with its own models
//! and connections that claims a call under a lease, analyses it exactly as `callqc batch`
//! does, and stores it in the transaction that completes the job, fenced on the lease.
//!
//! While whisper runs, a heartbeat thread renews the lease on its own connection. A worker that
//! dies leaves its lease to expire and another worker takes the call; one that was paused past
//! its lease finds, at the end, that its call is someone else's and writes nothing. When the
//! database goes away (a restart), claims, heartbeats and the final write are retried on a
//! fresh connection until it is back; the analysis in memory is not lost.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::batch::{BatchConfig, agent_histories};
use super::call::Worker;
use super::events::{CallEvent, CallSink, Source};
use super::identity;
use super::session::{CallJob, SessionMode, analyze_recording};
use super::sinks::{StoreSink, VecSink};
use crate::audio::ChannelMap;
use crate::error::Error;
use crate::settings::SpareCores;
use crate::store::queue::{Enqueued, QueuedCall};
use crate::store::{Lease, Store, StoreError};
use crate::tone::Baseline;

/// A call's particulars as the queue keeps them (the job's JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct QueuedJob {
    path: PathBuf,
    agent_id: Option<String>,
    call_id: Option<String>,
    /// As its text (`left=agent,right=caller`…), so that the job row reads as it always has.
    #[serde(with = "channel_map_text")]
    channel_map: ChannelMap,
    source: Source,
    started_at: Option<String>,
}

impl QueuedJob {
    fn of(job: &CallJob) -> QueuedJob {
        QueuedJob {
            path: std::fs::canonicalize(&job.path).unwrap_or_else(|_| job.path.clone()),
            agent_id: job.agent_id.clone(),
            call_id: job.call_id.clone(),
            channel_map: job.channel_map,
            source: job.source,
            started_at: job.started_at.clone(),
        }
    }

    fn into_job(self) -> CallJob {
        CallJob {
            path: self.path,
            agent_id: self.agent_id,
            call_id: self.call_id,
            channel_map: self.channel_map,
            source: self.source,
            started_at: self.started_at,
        }
    }
}

/// A [`ChannelMap`] in a job row: its text, parsed back on reading (a bad one is the job's
/// error).
mod channel_map_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    use crate::audio::ChannelMap;

    pub fn serialize<S: Serializer>(map: &ChannelMap, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(map)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ChannelMap, D::Error> {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

/// Register `jobs` as one batch. `again(key, hash)` says whether a call whose job already
/// finished is queued once more (it is not done under the current models and rubric, or
/// `--force`). Each file is hashed for its key, as `batch` keys calls; an unreadable file is
/// queued under its path's key and fails in a worker with the reason.
pub fn enqueue(
    store: &mut Store,
    jobs: &[CallJob],
    again: impl Fn(&str, &str) -> Result<bool, StoreError>,
) -> Result<Enqueued, Error> {
    let mut calls = Vec::with_capacity(jobs.len());
    for job in jobs {
        let hash = identity::file_hash(&job.path).ok();
        let key = identity::call_key(job.call_id.as_deref(), hash.as_deref(), &job.path);
        let queued = QueuedJob::of(job);
        calls.push(QueuedCall {
            again: match &hash {
                Some(h) => again(&key, h)?,
                None => true,
            },
            call_key: key,
            path: queued.path.display().to_string(),
            audio_hash: hash,
            job: serde_json::to_string(&queued).unwrap_or_default(),
        });
    }
    Ok(store.enqueue(&calls)?)
}

/// When a worker stops.
#[derive(Debug, Clone)]
pub enum Until {
    /// Never by itself (a service: `callqc worker`); only when `stop` is set.
    Stopped,
    /// When no job of these batches (of any, if empty) is queued or running (`batch` on
    /// PostgreSQL, `worker --exit-when-done`). A job whose
    /// worker died is still "running" until its lease expires, then claimed again: the worker
    /// waits for it rather than leaving it behind.
    Drained(Vec<i64>),
}

/// How workers use the queue.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Lease length: a worker silent this long is presumed dead and its call is taken again.
    pub lease_s: f64,
    /// A call whose attempts (failures and expired leases) reach this is marked failed.
    pub max_attempts: i64,
    /// Seconds between claims when nothing is claimable.
    pub poll_s: f64,
    pub until: Until,
    /// The worker's name in the queue (host and process, plus the thread's number).
    pub name: String,
    /// Redo calls already analysed with the same audio, models and rubric.
    pub force: bool,
}

/// What the workers of one process did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkSummary {
    pub done: usize,
    pub failed: usize,
    /// Failed attempts put back in the queue.
    pub retried: usize,
    /// Already analysed with the same audio, models and rubric: completed without analysis.
    pub skipped: usize,
    /// Calls this process analysed but another worker owned by the time it wrote: not stored.
    pub lease_lost: usize,
    pub audio_s: f64,
    pub wall_s: f64,
    /// Seconds in the queue's own work: claims, heartbeats and the completing transaction.
    pub queue_s: f64,
    /// Seconds analysing (decode to rules).
    pub analysis_s: f64,
}

impl WorkSummary {
    fn add(&mut self, o: &WorkSummary) {
        self.done += o.done;
        self.failed += o.failed;
        self.retried += o.retried;
        self.skipped += o.skipped;
        self.lease_lost += o.lease_lost;
        self.audio_s += o.audio_s;
        self.queue_s += o.queue_s;
        self.analysis_s += o.analysis_s;
    }
}

/// A default worker name: host and process id.
pub fn default_worker_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    format!("{host}-{}", std::process::id())
}

/// Retry `f` while the database is unreachable (a restart), up to about `patience`.
fn patiently<T>(
    patience: Duration,
    stop: &AtomicBool,
    mut f: impl FnMut() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let started = Instant::now();
    loop {
        match f() {
            Err(e) if e.is_transient() && started.elapsed() < patience => {
                if stop.load(Ordering::Relaxed) {
                    return Err(e);
                }
                tracing::warn!("store unavailable, retrying: {e}");
                std::thread::sleep(Duration::from_millis(500));
            }
            other => return other,
        }
    }
}

/// How long a worker waits for the database to come back before giving up.
const PATIENCE: Duration = Duration::from_secs(120);

/// Run `cfg.parallelism.workers` queue workers against the store at `db` until `q.until`.
pub fn work(
    db: &Path,
    cfg: &BatchConfig,
    q: &QueueConfig,
    stop: &AtomicBool,
) -> Result<WorkSummary, Error> {
    let started = Instant::now();
    let n = cfg.parallelism.workers.max(1);
    let spare = Arc::new(SpareCores::new(n));
    let results: Vec<Result<WorkSummary, Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let mut q = q.clone();
                if n > 1 {
                    q.name = format!("{}-{i}", q.name);
                }
                let spare = spare.clone();
                scope.spawn(move || work_one(db, cfg, &q, stop, spare))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Input {
                        path: db.to_path_buf(),
                        reason: "a queue worker thread panicked".into(),
                    })
                })
            })
            .collect()
    });
    let mut total = WorkSummary::default();
    for r in results {
        total.add(&r?);
    }
    total.wall_s = started.elapsed().as_secs_f64();
    Ok(total)
}

/// One queue worker: its models, its connections, its loop.
fn work_one(
    db: &Path,
    cfg: &BatchConfig,
    q: &QueueConfig,
    stop: &AtomicBool,
    spare: Arc<SpareCores>,
) -> Result<WorkSummary, Error> {
    let mut store = patiently(PATIENCE, stop, || Store::open(db))?;
    let beat_store = Arc::new(patiently(PATIENCE, stop, || Store::open(db))?);
    let mut worker = Worker::load(&cfg.worker).map_err(|e| Error::Models(Box::new(e)))?;
    worker.spare = Some(spare.clone());
    patiently(PATIENCE, stop, || store.register_worker(&q.name))?;
    let mut summary = WorkSummary::default();
    let mut excluded: HashMap<i64, HashSet<String>> = HashMap::new();
    let mut seq = 0;
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let claimed = patiently(PATIENCE, stop, || {
            store.claim(&q.name, q.lease_s, q.max_attempts)
        })?;
        let claim_s = t.elapsed().as_secs_f64();
        let Some(lease) = claimed else {
            match &q.until {
                Until::Drained(batches) => {
                    if patiently(PATIENCE, stop, || store.batches_pending(batches))? == 0 {
                        break;
                    }
                }
                Until::Stopped => {}
            }
            std::thread::sleep(Duration::from_secs_f64(q.poll_s));
            continue;
        };
        seq += 1;
        let busy = spare.busy();
        let outcome = work_on(
            &mut store,
            &beat_store,
            &mut worker,
            cfg,
            q,
            &lease,
            seq,
            &mut excluded,
            stop,
        );
        drop(busy);
        let mut o = match outcome {
            Ok(o) => o,
            Err(e) => {
                // The store refused for a reason retrying does not mend (or stayed away past
                // patience): the lease expires and another worker (or a later run) tries again.
                tracing::error!("{}: {e}", lease.call_key);
                return Err(e.into());
            }
        };
        o.queue_s += claim_s;
        if o.done > 0 {
            let _ = store.record_job_time(&lease, o.analysis_s + o.queue_s, o.queue_s);
        }
        summary.add(&o);
    }
    Ok(summary)
}

/// Claimed `lease`: analyse its call under heartbeats, then store it fenced on the lease.
#[allow(clippy::too_many_arguments)]
fn work_on(
    store: &mut Store,
    beat_store: &Arc<Store>,
    worker: &mut Worker,
    cfg: &BatchConfig,
    q: &QueueConfig,
    lease: &Lease,
    seq: u64,
    excluded: &mut HashMap<i64, HashSet<String>>,
    stop: &AtomicBool,
) -> Result<WorkSummary, StoreError> {
    let mut o = WorkSummary::default();
    let job = serde_json::from_str::<QueuedJob>(&lease.job)
        .map(QueuedJob::into_job)
        .map_err(|e| e.to_string());
    let job = match job {
        Ok(j) => j,
        Err(reason) => {
            // A job row no callqc could have written: fail it with the reason.
            let job = CallJob {
                path: PathBuf::from(&lease.path),
                agent_id: None,
                call_id: None,
                channel_map: ChannelMap::default(),
                source: Source::Batch,
                started_at: None,
            };
            let mut events = VecSink::default();
            events.event(seq, &began(&job, lease)).ok();
            events
                .event(
                    seq,
                    &CallEvent::Failed {
                        error: format!("queued job {} is unreadable: {reason}", lease.job_id),
                        stage: None,
                    },
                )
                .ok();
            return store_events(store, cfg, lease, events, &mut o, stop).map(|_| o);
        }
    };
    // Already analysed with these audio, models and rubric (a re-enqueue): complete it as is.
    if !q.force
        && let Ok(hash) = identity::file_hash(&job.path)
    {
        let key = identity::call_key(job.call_id.as_deref(), Some(&hash), &job.path);
        if patiently(PATIENCE, stop, || cfg.already_analysed(store, &key, &hash))? {
            patiently(PATIENCE, stop, || store.complete_unchanged(lease))?;
            o.skipped += 1;
            return Ok(o);
        }
    }
    let history = match &job.agent_id {
        Some(agent) => {
            let exclude = match excluded.entry(lease.batch_id) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let keys = patiently(PATIENCE, stop, || store.batch_keys(lease.batch_id))?;
                    e.insert(keys.into_iter().collect())
                }
            };
            patiently(PATIENCE, stop, || {
                agent_histories(store, [agent.clone()], exclude)
            })?
            .remove(agent)
        }
        None => None,
    };
    let (events, beats_s) =
        analyse_with_heartbeats(beat_store, worker, cfg, q, lease, seq, &job, history);
    o.queue_s += beats_s;
    store_events(store, cfg, lease, events, &mut o, stop)?;
    Ok(o)
}

fn began(job: &CallJob, lease: &Lease) -> CallEvent {
    CallEvent::Began(job.call_info(lease.call_key.clone()))
}

/// Run the analysis, renewing the lease every third of its length from another thread.
/// Returns the call's events and the seconds the heartbeats took.
#[allow(clippy::too_many_arguments)]
fn analyse_with_heartbeats(
    beat_store: &Arc<Store>,
    worker: &mut Worker,
    cfg: &BatchConfig,
    q: &QueueConfig,
    lease: &Lease,
    seq: u64,
    job: &CallJob,
    history: Option<Baseline>,
) -> (VecSink, f64) {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let every = Duration::from_secs_f64((q.lease_s / 3.0).max(0.2));
    std::thread::scope(|scope| {
        let beats = scope.spawn(move || {
            let mut spent = 0.0;
            while let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(every) {
                let t = Instant::now();
                match beat_store.heartbeat(lease, q.lease_s) {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(
                            "{}: lease lost (another worker has the call); finishing, but it will not be stored",
                            lease.call_key
                        );
                        break;
                    }
                    Err(e) => tracing::warn!("{}: heartbeat failed: {e}", lease.call_key),
                }
                spent += t.elapsed().as_secs_f64();
            }
            spent
        });
        let mut events = VecSink::default();
        // The outcome (Ended or Failed) is in the events.
        let _ = analyze_recording(
            worker,
            &cfg.rubric,
            &mut events,
            seq,
            job,
            history,
            SessionMode::Recording,
        );
        drop(done_tx);
        let spent = beats.join().unwrap_or(0.0);
        (events, spent)
    })
}

/// Write a call's events through the store's sink, fenced on `lease`; retried while the
/// database is away (the failed transaction wrote nothing, so a retry starts clean).
fn store_events(
    store: &mut Store,
    cfg: &BatchConfig,
    lease: &Lease,
    events: VecSink,
    o: &mut WorkSummary,
    stop: &AtomicBool,
) -> Result<(), StoreError> {
    let t = Instant::now();
    let ended = events.events.iter().find_map(|(_, e)| match e {
        CallEvent::Ended(end) => Some(end.clone()),
        _ => None,
    });
    store.set_fence(Some(lease.clone()));
    let written = patiently(PATIENCE, stop, || {
        let mut sink = StoreSink::new(
            store,
            cfg.models_key.clone(),
            None,
            cfg.rubric.source_hash.clone(),
        );
        for (seq, event) in &events.events {
            sink.event(*seq, event).map_err(|e| match e {
                crate::Error::Store(s) => s,
                other => StoreError::Refused {
                    id: lease.job_id,
                    reason: other.to_string(),
                },
            })?;
        }
        Ok(())
    });
    store.set_fence(None);
    match written {
        Ok(()) => {}
        Err(StoreError::LeaseLost { .. }) => {
            tracing::warn!(
                "{}: the lease expired and another worker took the call; this analysis is dropped",
                lease.call_key
            );
            o.lease_lost += 1;
            return Ok(());
        }
        Err(e) => return Err(e),
    }
    match ended {
        Some(end) => {
            o.done += 1;
            o.audio_s += end.duration_s;
            let t = &end.timings;
            o.analysis_s += t.decode_s + t.vad_s + t.asr_s + t.tone_s + t.rules_s;
        }
        None if lease.attempt >= lease.max_attempts => o.failed += 1,
        None => o.retried += 1,
    }
    o.queue_s += t.elapsed().as_secs_f64();
    Ok(())
}
