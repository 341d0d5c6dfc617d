//! The nightly batch: many calls, in parallel, into SQLite — idempotent and crash-safe.
//!
//! - Inputs are files, folders (searched for `.wav`) or manifests (`.csv`/`.tsv`/`.txt`: one call
//!   per line, `path[,agent_id[,call_id[,channel map]]]`). A `NAME.json` beside `NAME.wav` with
//!   `agent_id` / `call_id` / `channel_map` keys (the ground-truth format) is honoured too.
//! - The main thread hashes each file and skips calls already analysed from the same audio,
//!   models and rubric; the rest go to a rayon pool of `workers` threads, each owning one
//!   [`FullWorker`] (whisper, VAD and tone models loaded once before the first call).
//! - Results come back over a channel and the main thread writes each call in one transaction:
//!   killing the process loses only the calls in flight, and a rerun finishes the rest.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::analyze::{self, CallAnalysis};
use super::call::{CallError, Worker, WorkerConfig};
use crate::audio::ChannelMap;
use crate::rubric::Rubric;
use crate::settings::Parallelism;
use crate::store::write::{CallMeta, CallRows};
use crate::store::{Store, StoreError};
use crate::tone::{Baseline, ToneScorer};

/// One call to analyse.
#[derive(Debug, Clone, PartialEq)]
pub struct CallJob {
    pub path: PathBuf,
    pub agent_id: Option<String>,
    pub call_id: Option<String>,
    pub channel_map: ChannelMap,
}

/// Errors that stop a batch before any work (bad inputs, models, database).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("{path}: {reason}")]
    Input { path: PathBuf, reason: String },
    #[error("{path}:{line}: {reason}")]
    Manifest {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("loading models: {0}")]
    Models(String),
}

/// Extra keys callqc reads from a `NAME.json` beside the audio.
#[derive(Debug, Default, Deserialize)]
struct Sidecar {
    agent_id: Option<String>,
    call_id: Option<String>,
    channel_map: Option<BTreeMap<String, crate::audio::Role>>,
}

fn with_sidecar(path: &Path, default_map: ChannelMap) -> CallJob {
    let mut job = CallJob {
        path: path.to_path_buf(),
        agent_id: None,
        call_id: None,
        channel_map: default_map,
    };
    let json = path.with_extension("json");
    if let Some(side) = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| serde_json::from_str::<Sidecar>(&t).ok())
    {
        job.agent_id = side.agent_id;
        job.call_id = side.call_id;
        if let Some(m) = side.channel_map {
            if let Some(&r) = m.get("left") {
                job.channel_map.left = r;
            }
            if let Some(&r) = m.get("right") {
                job.channel_map.right = r;
            }
        }
    }
    job
}

fn wav_files_under(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            wav_files_under(&p, out)?;
        } else if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("wav")) {
            out.push(p);
        }
    }
    Ok(())
}

fn parse_manifest(path: &Path, default_map: ChannelMap) -> Result<Vec<CallJob>, BatchError> {
    let text = std::fs::read_to_string(path).map_err(|e| BatchError::Input {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut jobs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || (i == 0 && line.starts_with("path")) {
            continue;
        }
        let sep = if line.contains('\t') { '\t' } else { ',' };
        let fields: Vec<&str> = line.splitn(4, sep).map(str::trim).collect();
        let file = base.join(fields[0]);
        let mut job = with_sidecar(&file, default_map);
        if let Some(a) = fields.get(1).filter(|a| !a.is_empty()) {
            job.agent_id = Some(a.to_string());
        }
        if let Some(c) = fields.get(2).filter(|c| !c.is_empty()) {
            job.call_id = Some(c.to_string());
        }
        if let Some(m) = fields.get(3).filter(|m| !m.is_empty()) {
            job.channel_map = m.parse().map_err(|reason| BatchError::Manifest {
                path: path.to_path_buf(),
                line: i + 1,
                reason,
            })?;
        }
        jobs.push(job);
    }
    Ok(jobs)
}

/// Expand the command line's PATHs into calls (files, folders, manifests), without duplicates.
pub fn collect_jobs(
    inputs: &[PathBuf],
    default_map: ChannelMap,
) -> Result<Vec<CallJob>, BatchError> {
    let mut jobs = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut files = Vec::new();
            wav_files_under(input, &mut files).map_err(|e| BatchError::Input {
                path: input.clone(),
                reason: e.to_string(),
            })?;
            jobs.extend(files.iter().map(|f| with_sidecar(f, default_map)));
        } else if input.extension().is_some_and(|x| {
            ["csv", "tsv", "txt", "lst"]
                .iter()
                .any(|m| x.eq_ignore_ascii_case(m))
        }) {
            jobs.extend(parse_manifest(input, default_map)?);
        } else if input.exists() {
            jobs.push(with_sidecar(input, default_map));
        } else {
            return Err(BatchError::Input {
                path: input.clone(),
                reason: "no such file or directory".into(),
            });
        }
    }
    let mut seen = HashSet::new();
    jobs.retain(|j| seen.insert(j.path.clone()));
    Ok(jobs)
}

/// sha256 of a file's bytes (the call's identity when no call id is given).
pub fn file_hash(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whisper + VAD + tone, loaded once per worker.
pub struct FullWorker {
    pub asr: Worker,
    pub tone: ToneScorer,
}

/// Everything a batch needs besides its inputs.
pub struct BatchConfig {
    pub worker: WorkerConfig,
    pub tone_model: PathBuf,
    pub rubric: Arc<Rubric>,
    pub parallelism: Parallelism,
    pub force: bool,
    /// Identifies the models and settings (a change means calls are redone).
    pub models_key: String,
}

/// Seconds spent per stage, summed over calls.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageSeconds {
    pub decode: f64,
    pub vad: f64,
    pub asr: f64,
    pub tone: f64,
    pub rules: f64,
    pub store: f64,
}

impl StageSeconds {
    pub fn slowest(&self) -> (&'static str, f64) {
        [
            ("decode+resample", self.decode),
            ("vad", self.vad),
            ("whisper", self.asr),
            ("tone", self.tone),
            ("rules", self.rules),
            ("store", self.store),
        ]
        .into_iter()
        .fold(("none", 0.0), |a, b| if b.1 > a.1 { b } else { a })
    }
}

/// What a finished (or interrupted-and-resumed) batch did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BatchSummary {
    pub calls: usize,
    pub done: usize,
    pub skipped: usize,
    pub failed: usize,
    pub failures: Vec<(String, String)>,
    pub audio_s: f64,
    pub wall_s: f64,
    pub mean_score: Option<f64>,
    pub deductions_by_item: BTreeMap<String, usize>,
    pub stages: StageSeconds,
}

/// Progress events for the caller's display.
pub enum BatchEvent<'a> {
    Started {
        to_do: usize,
        skipped: usize,
    },
    CallDone {
        path: &'a Path,
        audio_s: f64,
        error: Option<&'a str>,
    },
}

/// The outcome of one call, sent from a worker to the writer.
struct Outcome {
    job: CallJob,
    hash: String,
    result: Result<(CallAnalysis, Duration, Duration), String>,
}

/// Run a batch. Returns when every call is stored (or recorded as failed).
pub fn run(
    store: &mut Store,
    jobs: Vec<CallJob>,
    cfg: &BatchConfig,
    run_id: i64,
    on_event: &mut dyn FnMut(BatchEvent),
) -> Result<BatchSummary, BatchError> {
    let started = Instant::now();
    let mut summary = BatchSummary {
        calls: jobs.len(),
        ..BatchSummary::default()
    };
    let rubric_hash = cfg.rubric.source_hash.clone();

    // 1. Identify every call and skip those already analysed the same way.
    let mut to_do: Vec<(CallJob, String)> = Vec::new();
    for job in jobs {
        let hash = match file_hash(&job.path) {
            Ok(h) => h,
            Err(e) => {
                let meta = meta_for(&job, String::new(), cfg, run_id);
                let msg = format!("{}: cannot read file: {e}", job.path.display());
                store.save_failure(&meta, &msg)?;
                summary.failed += 1;
                summary.failures.push((job.path.display().to_string(), msg));
                continue;
            }
        };
        let key = job.call_id.clone().unwrap_or_else(|| hash.clone());
        if !cfg.force && store.is_done(&key, &hash, &cfg.models_key, &rubric_hash)? {
            summary.skipped += 1;
            continue;
        }
        to_do.push((job, hash));
    }
    on_event(BatchEvent::Started {
        to_do: to_do.len(),
        skipped: summary.skipped,
    });
    if to_do.is_empty() {
        summary.wall_s = started.elapsed().as_secs_f64();
        return Ok(summary);
    }

    // 2. Each agent's voice history, from calls outside this batch (see Store::agent_history).
    let batch_keys: HashSet<String> = to_do
        .iter()
        .map(|(j, h)| j.call_id.clone().unwrap_or_else(|| h.clone()))
        .collect();
    let mut history: HashMap<String, Baseline> = HashMap::new();
    for agent in to_do.iter().filter_map(|(j, _)| j.agent_id.clone()) {
        if history.contains_key(&agent) {
            continue;
        }
        let mut merged: Option<Baseline> = None;
        for (key, json) in store.agent_history(&agent)? {
            if batch_keys.contains(&key) {
                continue;
            }
            if let Ok(b) = serde_json::from_str::<Baseline>(&json) {
                merged = Some(Baseline::merge_history(merged.as_ref(), &b));
            }
        }
        if let Some(m) = merged {
            history.insert(agent, m);
        }
    }

    // 3. Load one full worker per pool thread, before any call starts (a missing model stops
    //    the batch here, with nothing half-done).
    let par = cfg.parallelism;
    let mut workers = Vec::with_capacity(par.workers);
    for _ in 0..par.workers {
        let asr = Worker::load(&cfg.worker).map_err(|e| BatchError::Models(format!("{e:#}")))?;
        let tone = ToneScorer::load(&cfg.worker.models_dir, &cfg.tone_model, par.onnx_threads)
            .map_err(|e| BatchError::Models(e.to_string()))?;
        workers.push(Mutex::new(FullWorker { asr, tone }));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(par.workers)
        .thread_name(|i| format!("callqc-worker-{i}"))
        .build()
        .map_err(|e| BatchError::Models(e.to_string()))?;

    // 4. Workers analyse; this thread stores each result as it arrives.
    let (tx, rx) = mpsc::channel::<Outcome>();
    let rubric = cfg.rubric.clone();
    let mut scores = Vec::new();
    std::thread::scope(|scope| -> Result<(), BatchError> {
        let workers = &workers;
        let history = &history;
        let rubric = &rubric;
        scope.spawn(move || {
            pool.install(|| {
                use rayon::prelude::*;
                to_do.into_par_iter().for_each_with(tx, |tx, (job, hash)| {
                    let idx = rayon::current_thread_index().unwrap_or(0) % workers.len();
                    let mut w = match workers[idx].lock() {
                        Ok(w) => w,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                    let result = analyze_one(&mut w, &job, history, rubric);
                    let _ = tx.send(Outcome { job, hash, result });
                });
            });
        });
        for outcome in rx {
            let meta = meta_for(&outcome.job, outcome.hash.clone(), cfg, run_id);
            match outcome.result {
                Ok((analysis, tone_t, rules_t)) => {
                    let t = Instant::now();
                    let baseline = analysis
                        .tone
                        .baseline
                        .as_ref()
                        .and_then(|b| serde_json::to_string(b).ok());
                    let c = &analysis.call;
                    let encoding = serde_json::to_string(&c.encoding).unwrap_or_default();
                    store.save_call(
                        &meta,
                        &CallRows {
                            duration_s: c.duration_s,
                            sample_rate: c.sample_rate,
                            channels: c.channels,
                            encoding: encoding.trim_matches('"'),
                            segments: &c.transcript.segments,
                            speech: &c.speech,
                            tone: &analysis.tone.windows,
                            findings: &analysis.findings,
                            tone_baseline: baseline,
                            score: &analysis.score,
                            rubric_hash: &rubric_hash,
                        },
                    )?;
                    let s = &mut summary.stages;
                    s.decode += c.timings.decode.as_secs_f64();
                    s.vad += c.timings.vad.as_secs_f64();
                    s.asr += c.timings.asr.as_secs_f64();
                    s.tone += tone_t.as_secs_f64();
                    s.rules += rules_t.as_secs_f64();
                    s.store += t.elapsed().as_secs_f64();
                    summary.done += 1;
                    summary.audio_s += c.duration_s;
                    scores.push(analysis.score.total);
                    for f in &analysis.findings {
                        *summary
                            .deductions_by_item
                            .entry(f.item_id.clone())
                            .or_default() += 1;
                    }
                    on_event(BatchEvent::CallDone {
                        path: &outcome.job.path,
                        audio_s: c.duration_s,
                        error: None,
                    });
                }
                Err(msg) => {
                    store.save_failure(&meta, &msg)?;
                    summary.failed += 1;
                    summary
                        .failures
                        .push((outcome.job.path.display().to_string(), msg.clone()));
                    on_event(BatchEvent::CallDone {
                        path: &outcome.job.path,
                        audio_s: 0.0,
                        error: Some(&msg),
                    });
                }
            }
        }
        Ok(())
    })?;
    if !scores.is_empty() {
        summary.mean_score = Some(scores.iter().sum::<f64>() / scores.len() as f64);
    }
    summary.wall_s = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn meta_for(job: &CallJob, hash: String, cfg: &BatchConfig, run_id: i64) -> CallMeta {
    CallMeta {
        call_key: job.call_id.clone().unwrap_or_else(|| hash.clone()),
        path: job.path.display().to_string(),
        audio_hash: hash,
        agent_id: job.agent_id.clone(),
        channel_map: job.channel_map.to_string(),
        models_key: cfg.models_key.clone(),
        run_id,
    }
}

/// One call through every stage on a worker; errors become the message stored with the call.
fn analyze_one(
    w: &mut FullWorker,
    job: &CallJob,
    history: &HashMap<String, Baseline>,
    rubric: &Rubric,
) -> Result<(CallAnalysis, Duration, Duration), String> {
    let bytes = std::fs::read(&job.path)
        .map_err(|e| format!("{}: cannot read file: {e}", job.path.display()))?;
    let call = w
        .asr
        .transcribe_bytes(&job.path, &bytes, job.channel_map)
        .map_err(|e: CallError| e.to_string())?;
    let hist = job.agent_id.as_ref().and_then(|a| history.get(a));
    let t = Instant::now();
    let tone = analyze::score_tone(&mut w.tone, &call, hist)
        .map_err(|e| format!("{}: tone: {e}", job.path.display()))?;
    let tone_t = t.elapsed();
    let t = Instant::now();
    let tone_summary = crate::tone::summarize(&tone, w.tone.threshold());
    let (findings, score) = analyze::score_call(
        rubric,
        call.duration_s,
        &call.transcript.segments,
        &call.speech,
        &tone.windows,
    );
    let rules_t = t.elapsed();
    Ok((
        CallAnalysis {
            call,
            tone,
            tone_summary,
            findings,
            score,
        },
        tone_t,
        rules_t,
    ))
}
