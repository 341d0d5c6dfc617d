//! The nightly batch: many calls, in parallel, into SQLite — idempotent and crash-safe.
//!
//! - Inputs are files, folders (searched for `.wav`, `.mp3`, `.flac`, `.ogg`) or manifests (`.csv`/`.tsv`/`.txt`: one call
//!   per line, `path[,agent_id[,call_id[,channel map]]]`). A `NAME.json` beside `NAME.wav` with
//!   `agent_id` / `call_id` / `channel_map` keys (the ground-truth format) is honoured too.
//! - The main thread hashes each file and skips calls already analysed from the same audio,
//!   models and rubric; the rest go to a rayon pool of `workers` threads, each owning one
//!   [`Worker`] (whisper, VAD and tone models loaded once before the first call).
//! - Each worker pushes its call through a [`CallSession`](super::session::CallSession) whose
//!   events go over a channel to the main thread, which feeds them to the caller's sinks (the
//!   store writes each call in one transaction at its end): killing the process loses only the
//!   calls in flight, and a rerun finishes the rest.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::call::{Worker, WorkerConfig};
use super::events::{CallEvent, CallSeq, CallSink, Pass, Source};
pub use super::session::CallJob;
use super::session::{SessionMode, analyze_recording};
use super::sinks::ChannelSink;
use crate::audio::ChannelMap;
use crate::error::Error;
use crate::rubric::Rubric;
use crate::settings::{Parallelism, SpareCores};
use crate::store::{Store, StoreError};
use crate::tone::Baseline;

/// Extra keys callqc reads from a `NAME.json` beside the audio (unknown keys are ignored: the
/// ground-truth files carry many more).
#[derive(Debug, Default, Deserialize)]
pub struct Sidecar {
    pub agent_id: Option<String>,
    pub call_id: Option<String>,
    pub channel_map: Option<BTreeMap<String, crate::audio::Role>>,
    /// `"live"` beside a recording `callqc serve` wrote: a batch over `recordings/` (say, after
    /// a restart lost queued final passes) stores those calls as live ones.
    pub source: Option<Source>,
    /// When the call took place (`2026-12-01T08:30:00Z`, or a date); else the file's time.
    pub started_at: Option<String>,
}

impl Sidecar {
    /// Parse a sidecar's text. Anything but a JSON object with these keys (of these types) is an
    /// error; the caller names the file.
    pub fn parse(text: &str) -> Result<Sidecar, serde_json::Error> {
        serde_json::from_str(text)
    }
}

fn with_sidecar(path: &Path, default_map: ChannelMap) -> CallJob {
    let mut job = CallJob {
        path: path.to_path_buf(),
        agent_id: None,
        call_id: None,
        channel_map: default_map,
        source: Source::Batch,
        started_at: crate::time::modified_utc(path),
    };
    let json = path.with_extension("json");
    let Ok(text) = std::fs::read_to_string(&json) else {
        return job;
    };
    let side = match Sidecar::parse(&text) {
        Ok(side) => side,
        Err(e) => {
            // The call is still analysed (its audio is fine), without the sidecar's ids.
            tracing::warn!(
                "{}: not a usable sidecar ({e}); analysing {} without it",
                json.display(),
                path.display()
            );
            return job;
        }
    };
    job.agent_id = side.agent_id;
    job.call_id = side.call_id;
    job.source = side.source.unwrap_or(Source::Batch);
    if let Some(at) = side.started_at.as_deref() {
        match crate::time::parse_date(at) {
            Some(at) => job.started_at = Some(at),
            None => tracing::warn!(
                "{}: started_at '{at}' is not a date (YYYY-MM-DD[THH:MM[:SS]Z]); using the file's time",
                json.display()
            ),
        }
    }
    if let Some(m) = side.channel_map {
        if let Some(&r) = m.get("left") {
            job.channel_map.left = r;
        }
        if let Some(&r) = m.get("right") {
            job.channel_map.right = r;
        }
    }
    job
}

/// Extensions of the recordings a folder is searched for (WAV, and what recorders compress to).
const RECORDING_EXTENSIONS: [&str; 4] = ["wav", "mp3", "flac", "ogg"];

fn recordings_under(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            recordings_under(&p, out)?;
        } else if p.extension().is_some_and(|x| {
            RECORDING_EXTENSIONS
                .iter()
                .any(|e| x.eq_ignore_ascii_case(e))
        }) {
            out.push(p);
        }
    }
    Ok(())
}

/// One call of a manifest line: `path[,agent_id[,call_id[,channel map]]]` (tab-separated when
/// the line has a tab).
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestLine<'a> {
    pub path: &'a str,
    pub agent_id: Option<&'a str>,
    pub call_id: Option<&'a str>,
    pub channel_map: Option<ChannelMap>,
}

/// Parse one line of a manifest (`index` counts from 0): `Ok(None)` for blank lines, comments and
/// a header; the error is the reason, for the caller to name file and line.
pub fn parse_manifest_line<'a>(
    index: usize,
    line: &'a str,
) -> Result<Option<ManifestLine<'a>>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') || (index == 0 && line.starts_with("path")) {
        return Ok(None);
    }
    let sep = if line.contains('\t') { '\t' } else { ',' };
    let mut fields = line.splitn(4, sep).map(str::trim);
    let path = fields.next().unwrap_or_default();
    if path.is_empty() {
        return Err("no recording path before the first separator".into());
    }
    let non_empty = |f: Option<&'a str>| f.filter(|f| !f.is_empty());
    let agent_id = non_empty(fields.next());
    let call_id = non_empty(fields.next());
    let channel_map = non_empty(fields.next()).map(str::parse).transpose()?;
    Ok(Some(ManifestLine {
        path,
        agent_id,
        call_id,
        channel_map,
    }))
}

/// Read a manifest line by line (a night's 100,000-line list is never held whole); paths are
/// relative to the manifest's folder.
fn parse_manifest(path: &Path, default_map: ChannelMap) -> Result<Vec<CallJob>, Error> {
    use std::io::BufRead;
    let input = |reason: String| Error::Input {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| input(e.to_string()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut jobs = Vec::new();
    let mut reader = std::io::BufReader::new(file);
    let mut line = String::new();
    for i in 0.. {
        line.clear();
        let at = |reason: String| Error::Manifest {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(at(e.to_string())),
        }
        let Some(entry) = parse_manifest_line(i, &line).map_err(at)? else {
            continue;
        };
        let mut job = with_sidecar(&base.join(entry.path), default_map);
        if let Some(a) = entry.agent_id {
            job.agent_id = Some(a.to_string());
        }
        if let Some(c) = entry.call_id {
            job.call_id = Some(c.to_string());
        }
        if let Some(m) = entry.channel_map {
            job.channel_map = m;
        }
        jobs.push(job);
    }
    Ok(jobs)
}

/// Expand the command line's PATHs into calls (files, folders, manifests), without duplicates.
pub fn collect_jobs(inputs: &[PathBuf], default_map: ChannelMap) -> Result<Vec<CallJob>, Error> {
    let mut jobs = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut files = Vec::new();
            recordings_under(input, &mut files).map_err(|e| Error::Input {
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
            return Err(Error::Input {
                path: input.clone(),
                reason: "no such file or directory".into(),
            });
        }
    }
    let mut seen = HashSet::new();
    jobs.retain(|j| seen.insert(j.path.clone()));
    Ok(jobs)
}

/// Everything a batch needs besides its inputs.
pub struct BatchConfig {
    pub worker: WorkerConfig,
    pub rubric: Arc<Rubric>,
    pub parallelism: Parallelism,
    pub force: bool,
    /// Identifies the models and settings (a change means calls are redone).
    pub models_key: String,
}

impl BatchConfig {
    /// Whether the store holds this call (its key and audio hash) analysed from the same audio,
    /// models and rubric — the one "already done?" test of `batch`, the queue's enqueue and its
    /// workers. `force` is the caller's to apply (it differs between them).
    pub fn already_analysed(
        &self,
        store: &Store,
        key: &str,
        audio_hash: &str,
    ) -> Result<bool, crate::store::StoreError> {
        store.is_done(key, audio_hash, &self.models_key, &self.rubric.source_hash)
    }
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
    /// Observations (holds and pauses within the rules) per item.
    pub observations_by_item: BTreeMap<String, usize>,
    pub stages: StageSeconds,
    /// Calls whose two channels were decoded side by side (a core was idle: the batch's tail,
    /// or fewer calls than workers).
    pub spread_calls: usize,
}

/// Keeps the batch's totals from the events (a sink beside the store and the progress bar).
#[derive(Default)]
struct SummarySink {
    summary: BatchSummary,
    scores: Vec<f64>,
    paths: HashMap<CallSeq, PathBuf>,
}

impl CallSink for SummarySink {
    fn event(&mut self, call: CallSeq, event: &CallEvent) -> Result<(), crate::Error> {
        let s = &mut self.summary;
        match event {
            CallEvent::Began(info) => {
                self.paths.insert(call, info.path.clone());
            }
            CallEvent::Finding {
                pass: Pass::Final,
                finding,
                ..
            } => {
                let by_item = if finding.observation {
                    &mut s.observations_by_item
                } else {
                    &mut s.deductions_by_item
                };
                *by_item.entry(finding.item_id.clone()).or_default() += 1;
            }
            CallEvent::Ended(end) => {
                s.done += 1;
                s.audio_s += end.duration_s;
                self.scores.push(end.score.total);
                let t = &end.timings;
                s.stages.decode += t.decode_s;
                s.stages.vad += t.vad_s;
                s.stages.asr += t.asr_s;
                s.stages.tone += t.tone_s;
                s.stages.rules += t.rules_s;
                s.spread_calls += t.asr_spread as usize;
            }
            CallEvent::Failed { error, .. } => {
                s.failed += 1;
                let path = self.paths.get(&call).cloned().unwrap_or_default();
                s.failures.push((path.display().to_string(), error.clone()));
            }
            _ => {}
        }
        Ok(())
    }
}

/// Each agent's voice history from the store, leaving out the calls with `exclude` keys (the
/// ones being analysed now, so a resumed batch sees what an uninterrupted one saw).
pub fn agent_histories(
    store: &Store,
    agents: impl IntoIterator<Item = String>,
    exclude: &HashSet<String>,
) -> Result<HashMap<String, Baseline>, StoreError> {
    let mut history = HashMap::new();
    for agent in agents {
        if history.contains_key(&agent) {
            continue;
        }
        let mut merged: Option<Baseline> = None;
        for (key, b) in store.agent_history(&agent)? {
            if !exclude.contains(&key) {
                merged = Some(Baseline::merge_history(merged.as_ref(), &b));
            }
        }
        if let Some(m) = merged {
            history.insert(agent, m);
        }
    }
    Ok(history)
}

/// What a batch will do: the calls to analyse (numbered, with their store keys), how many are
/// already done, and the agents' voice histories.
pub struct Plan {
    pub calls: usize,
    pub to_do: Vec<(CallSeq, CallJob, String)>,
    pub skipped: usize,
    /// Of `to_do`, the files that could not be read while planning.
    pub unreadable: usize,
    /// Calls left out because an earlier call of the batch has their call id with other audio:
    /// `(path, why)`, reported as failures (the first keeps the id; nothing is replaced).
    pub duplicates: Vec<(String, String)>,
    pub history: HashMap<String, Baseline>,
}

/// Identify every call and leave out those already analysed from the same audio, models and
/// rubric (all of them with `force`); read the agents' histories from calls outside the batch.
pub fn plan(store: &Store, jobs: Vec<CallJob>, cfg: &BatchConfig) -> Result<Plan, Error> {
    let calls = jobs.len();
    let mut to_do: Vec<(CallSeq, CallJob, String)> = Vec::new();
    let mut skipped = 0;
    let mut unreadable = 0;
    let mut duplicates = Vec::new();
    // Call id → (first file, its audio hash) among this batch's calls.
    let mut ids: HashMap<String, (PathBuf, Option<String>)> = HashMap::new();
    for (i, job) in jobs.into_iter().enumerate() {
        let seq = i as CallSeq + 1;
        let hash_now = super::identity::file_hash(&job.path).ok();
        if let Some(id) = &job.call_id {
            match ids.get(id) {
                Some((first, first_hash)) => {
                    let why = if first_hash.is_some() && *first_hash == hash_now {
                        format!(
                            "call id \"{id}\" is listed twice with the same audio ({}); analysed once",
                            first.display()
                        )
                    } else {
                        format!(
                            "call id \"{id}\" is already {} in this batch, with other audio: not \
                             analysed (the second would replace the first's record); give it \
                             its own call id",
                            first.display()
                        )
                    };
                    duplicates.push((job.path.display().to_string(), why));
                    continue;
                }
                None => {
                    ids.insert(id.clone(), (job.path.clone(), hash_now.clone()));
                }
            }
        }
        let Some(hash) = hash_now else {
            // Unreadable now: it fails in its worker like any other bad file, with the reason,
            // and the store keeps whatever analysis it already has of the call.
            let key = super::identity::call_key(job.call_id.as_deref(), None, &job.path);
            to_do.push((seq, job, key));
            unreadable += 1;
            continue;
        };
        let key = super::identity::call_key(job.call_id.as_deref(), Some(&hash), &job.path);
        if !cfg.force && cfg.already_analysed(store, &key, &hash)? {
            skipped += 1;
            continue;
        }
        to_do.push((seq, job, key));
    }
    let batch_keys: HashSet<String> = to_do.iter().map(|(_, _, k)| k.clone()).collect();
    let history = agent_histories(
        store,
        to_do.iter().filter_map(|(_, j, _)| j.agent_id.clone()),
        &batch_keys,
    )?;
    Ok(Plan {
        calls,
        to_do,
        skipped,
        unreadable,
        duplicates,
        history,
    })
}

/// Run a planned batch: every call's events go to `sink` (the store's sink, a progress
/// display…) on this thread, in order per call. Returns when every call has ended or failed.
pub fn run(plan: Plan, cfg: &BatchConfig, sink: &mut dyn CallSink) -> Result<BatchSummary, Error> {
    let started = Instant::now();
    let mut totals = SummarySink::default();
    totals.summary.calls = plan.calls;
    totals.summary.skipped = plan.skipped;
    totals.summary.failed = plan.duplicates.len();
    totals.summary.failures = plan.duplicates.clone();
    let Plan { to_do, history, .. } = plan;
    if to_do.is_empty() {
        totals.summary.wall_s = started.elapsed().as_secs_f64();
        return Ok(totals.summary);
    }

    // 3. Load one worker per pool thread, before any call starts (a missing model stops the
    //    batch here, with nothing half-done).
    let par = cfg.parallelism;
    let mut workers = Vec::with_capacity(par.workers);
    // A worker left without a call (the batch's tail) lends its core to one that has one.
    let spare = Arc::new(SpareCores::new(par.workers));
    for _ in 0..par.workers {
        let mut w = Worker::load(&cfg.worker).map_err(|e| Error::Models(Box::new(e)))?;
        w.spare = Some(spare.clone());
        workers.push(Mutex::new(w));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(par.workers)
        .thread_name(|i| format!("callqc-worker-{i}"))
        .build()?;

    // 4. Workers analyse; this thread feeds each event to the sinks as it arrives.
    let (tx, rx) = mpsc::channel::<(CallSeq, CallEvent)>();
    let rubric = cfg.rubric.clone();
    std::thread::scope(|scope| -> Result<(), Error> {
        let workers = &workers;
        let history = &history;
        let spare = &spare;
        let rubric = &rubric;
        scope.spawn(move || {
            pool.install(|| {
                use rayon::prelude::*;
                to_do
                    .into_par_iter()
                    .for_each_with(tx, |tx, (seq, job, _key)| {
                        let idx = rayon::current_thread_index().unwrap_or(0) % workers.len();
                        let mut w = match workers[idx].lock() {
                            Ok(w) => w,
                            Err(poisoned) => poisoned.into_inner(),
                        };
                        let _busy = spare.busy();
                        let hist = job.agent_id.as_ref().and_then(|a| history.get(a)).cloned();
                        let mut out = ChannelSink(tx.clone());
                        // The outcome (Ended or Failed) is in the events.
                        let _ = analyze_recording(
                            &mut w,
                            rubric,
                            &mut out,
                            seq,
                            &job,
                            hist,
                            SessionMode::Recording,
                        );
                    });
            });
        });
        for (seq, event) in rx {
            let t = Instant::now();
            sink.event(seq, &event)?;
            totals.event(seq, &event).ok();
            if matches!(event, CallEvent::Ended(_)) {
                totals.summary.stages.store += t.elapsed().as_secs_f64();
            }
        }
        Ok(())
    })?;
    let mut summary = totals.summary;
    if !totals.scores.is_empty() {
        summary.mean_score = Some(totals.scores.iter().sum::<f64>() / totals.scores.len() as f64);
    }
    summary.wall_s = started.elapsed().as_secs_f64();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sidecar_gives_ids_channel_map_and_a_live_recordings_source() {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("c1.wav");
        std::fs::write(
            dir.path().join("c1.json"),
            r#"{"call_id":"c1","agent_id":"1001","channel_map":{"left":"caller","right":"agent"},"source":"live"}"#,
        )
        .unwrap();
        let job = with_sidecar(&wav, ChannelMap::default());
        assert_eq!(job.call_id.as_deref(), Some("c1"));
        assert_eq!(job.agent_id.as_deref(), Some("1001"));
        assert_eq!(job.channel_map.left, crate::audio::Role::Caller);
        assert_eq!(job.source, Source::Live);
        let plain = with_sidecar(&dir.path().join("none.wav"), ChannelMap::default());
        assert_eq!(plain.source, Source::Batch);
    }
}
