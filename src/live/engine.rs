//! The live engine: calls in progress, one stream worker and a few decoding workers.
//!
//! ```text
//! ingest task ─ LiveCall::push(channel, pcm) ─▶ Recording (every sample, always; on disk each second)
//!                                          └──▶ inbox ─▶ ready queue ─▶ stream worker (VAD, tone models)
//!                                                        CallSession (Live): resampling, VAD, tone of each
//!                                                        finished agent utterance, live rules ─▶ LiveSink
//!                                                        └▶ finished agent utterance ─▶ decode queue (oldest first)
//!                                                             ─▶ decoding worker (whisper, loaded once):
//!                                                                transcript ─▶ live rules ─▶ LiveSink
//! LiveSink ─▶ Hub (pages) + alerts
//! call ends ─▶ WAV completed, renamed ─▶ final worker (idle priority): analyze_recording, as `batch` does
//!                                         └▶ StoreSink (calls, segments, findings…) + live_calls row
//! ```
//!
//! A call is on at most one worker at a time (its `scheduled` flag, its analysis lock). The
//! stream worker never decodes, so a decode never holds up another call's VAD or tone warning
//! (measured by `cargo bench --bench live`: at 8 calls tone p95 went from 0.86–1.09 s to 0.39 s
//! when decoding moved off it). Audio is never dropped: the recording takes every sample as it
//! arrives, outside the analysis. Under overload the analysis sheds work — an utterance whose
//! audio waited longer than `shed_after`, before the stream worker or on the decode queue, is
//! not decoded live — and counts it. A call that ends is finished (recording written, final pass
//! queued) once its last utterance is decoded or shed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};

use crate::sync::lock;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::call::{CallStart, IngestError};
use super::final_pass::{FinalJob, recovered_jobs};
use super::hub::Hub;
use super::recording::{FolderLock, Recording, channel_map, lock_folder, record_end};
use super::sink::{Arrivals, LiveSink};
use crate::audio::AudioFormat;
use crate::error::Error;
use crate::pipeline::batch::agent_histories;
use crate::pipeline::call::{Worker, WorkerConfig};
use crate::pipeline::events::{CallInfo, CallSeq, Source};
use crate::pipeline::session::analyze_recording;
use crate::pipeline::session::{
    AudioRetention, CallSession, CallState, LiveUtterance, SessionMode,
};
use crate::pipeline::sinks::StoreSink;
use crate::rubric::Rubric;
use crate::store::{AlertRecord, EndReason, LiveCallRecord, Store};

/// The encoder-context floor of live utterance decoding (see [`EngineConfig::for_config`]).
pub const LIVE_MIN_CTX_FRAMES: u32 = 192;

/// What the engine needs to run.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Models of the stream worker (VAD, tone) and of each decoding worker (also whisper).
    pub live_worker: WorkerConfig,
    /// Decoding workers.
    pub live_workers: usize,
    /// Models of the final-pass worker (the batch's settings: it stores what `batch` would).
    pub final_worker: WorkerConfig,
    pub rubric: Arc<Rubric>,
    pub models_key: String,
    pub models_description: String,
    pub db: PathBuf,
    pub recordings: PathBuf,
    pub shed_after: Duration,
}

impl EngineConfig {
    /// The engine a configuration asks for on `threads` cores, with `models_dir`'s models and
    /// the batch's default decoding settings (so the final pass stores what `batch` would).
    pub fn for_config(
        cfg: &super::config::ServeConfig,
        models_dir: &Path,
        threads: usize,
    ) -> crate::Result<EngineConfig> {
        let rubric = Arc::new(crate::rubric::load(&cfg.server.rubric)?);
        let par = crate::settings::Parallelism::split(threads, cfg.server.workers.unwrap_or(2));
        let worker = |whisper_threads| WorkerConfig {
            models_dir: models_dir.to_path_buf(),
            whisper_model: crate::settings::whisper_model_path(models_dir, &cfg.server.model),
            tone_model: crate::pipeline::identity::default_tone_model(models_dir),
            asr: crate::asr::AsrParams::default(),
            vad: crate::vad::VadParams::default(),
            vad_mode: crate::pipeline::call::VadMode::Silero,
            whisper_threads,
            onnx_threads: 1,
            agent_only: false,
            keep_bleed: false,
        };
        let mut live_worker = worker(par.whisper_threads);
        // A live utterance is decoded alone, and most are shorter than the batch's encoder
        // floor (384 frames = 7.7 s): `cargo bench --bench live_asr` measured 192 frames 22 %
        // faster per utterance with no worse CER and the same 禁语 found. The final pass keeps
        // the batch's settings (it stores what `batch` would).
        live_worker.asr.min_ctx_frames = LIVE_MIN_CTX_FRAMES;
        // The final pass runs at idle priority, on whatever the live work leaves: it may use
        // every core.
        let final_worker = worker(threads.max(1));
        let models =
            crate::pipeline::identity::ModelsIdentity::of(&final_worker, &final_worker.tone_model);
        Ok(EngineConfig {
            live_worker,
            live_workers: par.workers,
            final_worker,
            rubric,
            models_key: models.key,
            models_description: models.description.to_string(),
            db: cfg.server.db.clone(),
            recordings: cfg.server.recordings.clone(),
            shed_after: Duration::from_secs_f64(cfg.server.shed_after_s),
        })
    }
}

pub use crate::time::now_ms;

/// Audio received, waiting for analysis.
struct Chunk {
    channel: usize,
    samples: Vec<f32>,
    arrived: Instant,
}

/// What the ingest side hands over; locked briefly by the ingest task and the worker.
#[derive(Default)]
struct Inbox {
    pending: VecDeque<Chunk>,
    /// On the ready queue or on a worker.
    scheduled: bool,
    ended: Option<(EndReason, Option<String>)>,
}

/// What [`Engine::take`] is given: audio from the PBX, or silence callqc puts before a stream.
#[derive(Clone, Copy)]
enum Samples {
    Received,
    Padding,
}

/// A call in progress.
pub struct LiveCall {
    pub start: CallStart,
    seq: CallSeq,
    started_ms: i64,
    inbox: Mutex<Inbox>,
    /// Every sample received, written as it arrives; taken when the call is finished. Locked
    /// before `inbox` where both are.
    recording: Mutex<Option<Recording>>,
    arrivals: Arrivals,
    analysis: Mutex<Analysis>,
}

struct Analysis {
    state: Option<CallState>,
    begun: bool,
    sink: LiveSink,
    failed: Option<String>,
    /// Utterances the session shed (its audio waited too long before the stream worker).
    shed: usize,
    /// Utterances shed on the decode queue (they waited there too long).
    shed_late: usize,
    /// Utterances of this call on the decode queue or being decoded.
    outstanding: usize,
    /// The call ended while utterances were outstanding: the worker that applies the last one
    /// finishes the call.
    ending: Option<(EndReason, Option<String>)>,
}

impl Analysis {
    /// Utterances not decoded live, for the record.
    fn shed_total(&self) -> usize {
        self.shed + self.shed_late
    }
}

/// A finished utterance waiting for a decoding worker.
struct DecodeJob {
    call: Arc<LiveCall>,
    utterance: LiveUtterance,
    /// When the frame that closed it arrived: its wait counts from there.
    arrived: Instant,
}

impl LiveCall {
    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        lock(&self.inbox)
    }

    pub fn key(&self) -> &str {
        &self.start.call_id
    }
}

/// Counters since the server started, for `/api/stats` (docs/live-protocol.md §5) and the
/// benchmark.
#[derive(Debug, Default, Serialize)]
pub struct EngineStats {
    /// Calls accepted.
    pub calls_started: u64,
    /// Calls ended (any reason), and recordings a stopped server left, taken at this start.
    pub calls_ended: u64,
    /// Final passes stored.
    pub calls_stored: u64,
    /// Final passes that failed (the call's live record is stored all the same).
    pub calls_failed: u64,
    /// Warnings sent (each one is an `alerts` row).
    pub warnings: u64,
    /// Utterances not decoded live under overload (the final pass decodes them).
    pub shed_utterances: u64,
    /// Audio samples received from PBXs, all channels; silence callqc pads is not counted.
    pub samples_received: u64,
}

#[derive(Default)]
struct Counters {
    calls_started: AtomicU64,
    calls_ended: AtomicU64,
    calls_stored: AtomicU64,
    calls_failed: AtomicU64,
    /// Shared with every call's [`LiveSink`], which counts the warnings it sends.
    warnings: Arc<AtomicU64>,
    shed_utterances: AtomicU64,
    samples_received: AtomicU64,
}

/// The live engine. Create with [`Engine::start`]; stop with [`Engine::shutdown`].
pub struct Engine {
    pub hub: Arc<Hub>,
    cfg: EngineConfig,
    calls: Mutex<HashMap<String, Arc<LiveCall>>>,
    ready: Mutex<VecDeque<Arc<LiveCall>>>,
    ready_cv: Condvar,
    /// Finished utterances, oldest first: every one waits for the same budget, so the oldest
    /// is the most urgent.
    decodes: Mutex<VecDeque<DecodeJob>>,
    decodes_cv: Condvar,
    finals: Mutex<Option<mpsc::Sender<FinalJob>>>,
    alerts: Mutex<Option<mpsc::Sender<AlertRecord>>>,
    /// Final passes queued and not yet stored, with a condvar for [`Engine::wait_stored`].
    finals_pending: Mutex<usize>,
    finals_cv: Condvar,
    stopping: AtomicBool,
    next_seq: AtomicU64,
    next_warning: Arc<AtomicU64>,
    counters: Arc<Counters>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// The recordings folder, this server's while it runs.
    _recordings: FolderLock,
}

impl Engine {
    /// Load every worker's models (failing here, before any call is accepted, if one cannot
    /// load), open the store, queue the final passes of calls a killed server left in progress
    /// (their recordings, see [`super::recording::recover`]), start the threads.
    pub fn start(cfg: EngineConfig, hub: Arc<Hub>) -> crate::Result<Arc<Engine>> {
        let recordings =
            lock_folder(&cfg.recordings).map_err(|e| Error::Recordings(e.to_string()))?;
        // Opening once here applies migrations and reports a bad database before serving.
        let mut store = Store::open(&cfg.db)?;
        let run_id = store.begin_run(
            "serve",
            &cfg.models_description,
            Some((
                &cfg.rubric.name,
                &cfg.rubric.version,
                &cfg.rubric.source_hash,
            )),
            &serde_json::json!({"live_workers": cfg.live_workers}).to_string(),
        )?;
        let (final_tx, final_rx) = mpsc::channel::<FinalJob>();
        let (alert_tx, alert_rx) = mpsc::channel::<AlertRecord>();
        let engine = Arc::new(Engine {
            hub,
            cfg: cfg.clone(),
            calls: Mutex::new(HashMap::new()),
            ready: Mutex::new(VecDeque::new()),
            ready_cv: Condvar::new(),
            decodes: Mutex::new(VecDeque::new()),
            decodes_cv: Condvar::new(),
            finals: Mutex::new(Some(final_tx)),
            alerts: Mutex::new(Some(alert_tx)),
            finals_pending: Mutex::new(0),
            finals_cv: Condvar::new(),
            stopping: AtomicBool::new(false),
            next_seq: AtomicU64::new(0),
            next_warning: Arc::new(AtomicU64::new(1)),
            counters: Arc::default(),
            threads: Mutex::new(Vec::new()),
            _recordings: recordings,
        });

        let stream_worker = Worker::load_stream(&cfg.live_worker)?;
        let mut decoders = Vec::new();
        for _ in 0..cfg.live_workers.max(1) {
            decoders.push(Worker::load(&cfg.live_worker)?);
        }
        let final_worker = Worker::load(&cfg.final_worker)?;
        // Calls a stopped server left in progress: stored with what their recordings hold.
        for job in recovered_jobs(&cfg.recordings, &store) {
            *lock(&engine.finals_pending) += 1;
            engine.counters.calls_ended.fetch_add(1, Ordering::Relaxed);
            if let Some(tx) = lock(&engine.finals).as_ref() {
                let _ = tx.send(job);
            }
        }
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.clone())
                .spawn(f)
                .map_err(|source| Error::Thread { name, source })
        };
        let mut threads = Vec::new();
        let (e, db) = (engine.clone(), cfg.db.clone());
        threads.push(spawn(
            "live-stream".into(),
            Box::new(move || e.stream_worker(stream_worker, &db)),
        )?);
        for (i, worker) in decoders.into_iter().enumerate() {
            let e = engine.clone();
            threads.push(spawn(
                format!("live-decode-{i}"),
                Box::new(move || e.decode_worker(worker)),
            )?);
        }
        let e = engine.clone();
        threads.push(
            std::thread::Builder::new()
                .name("final-pass".into())
                .spawn(move || e.final_worker(final_worker, store, run_id, final_rx))
                .map_err(|source| Error::Thread {
                    name: "final-pass".into(),
                    source,
                })?,
        );
        let db = cfg.db.clone();
        threads.push(
            std::thread::Builder::new()
                .name("alerts".into())
                .spawn(move || alert_writer(&db, alert_rx))
                .map_err(|source| Error::Thread {
                    name: "alerts".into(),
                    source,
                })?,
        );
        *lock(&engine.threads) = threads;
        Ok(engine)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    pub fn stats(&self) -> EngineStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        EngineStats {
            calls_started: get(&c.calls_started),
            calls_ended: get(&c.calls_ended),
            calls_stored: get(&c.calls_stored),
            calls_failed: get(&c.calls_failed),
            warnings: get(&c.warnings),
            shed_utterances: get(&c.shed_utterances),
            samples_received: get(&c.samples_received),
        }
    }

    /// A PBX announces a call.
    pub fn begin(&self, start: CallStart) -> Result<Arc<LiveCall>, IngestError> {
        start.validate()?;
        if self.stopping.load(Ordering::SeqCst) {
            return Err(IngestError::ShuttingDown);
        }
        let mut calls = lock(&self.calls);
        if calls.contains_key(&start.call_id) {
            return Err(IngestError::Duplicate(start.call_id));
        }
        let started_ms = now_ms();
        let arrivals: Arrivals = Arc::default();
        let sink = LiveSink {
            hub: self.hub.clone(),
            call_id: start.call_id.clone(),
            agent_id: start.agent_id.clone(),
            rate: start.sample_rate,
            arrivals: arrivals.clone(),
            next_warning: self.next_warning.clone(),
            alerts: lock(&self.alerts).clone(),
            warnings: self.counters.warnings.clone(),
            sent: 0,
        };
        let call = Arc::new(LiveCall {
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
            started_ms,
            inbox: Mutex::new(Inbox::default()),
            recording: Mutex::new(Some(Recording::create(
                &self.cfg.recordings,
                &start,
                started_ms,
            ))),
            arrivals,
            analysis: Mutex::new(Analysis {
                state: None,
                begun: false,
                sink,
                failed: None,
                shed: 0,
                shed_late: 0,
                outstanding: 0,
                ending: None,
            }),
            start,
        });
        calls.insert(call.start.call_id.clone(), call.clone());
        drop(calls);
        self.counters.calls_started.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            "call {} of agent {} from {} ({:?}, {} Hz, {} channels)",
            call.start.call_id,
            call.start.agent_id,
            call.start.peer,
            call.start.encoding,
            call.start.sample_rate,
            call.start.roles.len()
        );
        self.hub
            .call_started(&call.start.call_id, &call.start.agent_id, started_ms);
        Ok(call)
    }

    /// Samples of one channel. Every sample goes into the recording at once; the analysis gets
    /// them when a worker is free.
    pub fn push(
        &self,
        call: &Arc<LiveCall>,
        channel: usize,
        pcm: &[i16],
    ) -> Result<(), IngestError> {
        self.take(call, channel, pcm, Samples::Received)
    }

    fn take(
        &self,
        call: &Arc<LiveCall>,
        channel: usize,
        pcm: &[i16],
        what: Samples,
    ) -> Result<(), IngestError> {
        // The recording is held for the whole push, so the end cannot take it between the
        // check that the call has not ended and the samples going in.
        let mut recording = lock(&call.recording);
        let mut inbox = call.inbox();
        let rec = match recording.as_mut() {
            Some(rec) if inbox.ended.is_none() => rec,
            _ => return Err(IngestError::AfterEnd(call.start.call_id.clone())),
        };
        if channel >= rec.received().len() {
            return Err(IngestError::Frame {
                call: call.start.call_id.clone(),
                message: format!("no channel {channel}"),
            });
        }
        inbox.pending.push_back(Chunk {
            channel,
            samples: pcm.iter().map(|&s| f32::from(s) / 32768.0).collect(),
            arrived: Instant::now(),
        });
        let schedule = !std::mem::replace(&mut inbox.scheduled, true);
        drop(inbox);
        // Written (at a checkpoint, to disk) with only the recording locked: the stream
        // worker, which locks the inbox, does not wait for the disk.
        match what {
            Samples::Received => {
                self.counters
                    .samples_received
                    .fetch_add(pcm.len() as u64, Ordering::Relaxed);
                rec.push(channel, pcm);
            }
            Samples::Padding => rec.pad(channel, pcm.len()),
        }
        let longest = rec.received().iter().copied().max().unwrap_or(0);
        drop(recording);
        lock(&call.arrivals).push((longest, now_ms()));
        if schedule {
            self.schedule(call.clone());
        }
        Ok(())
    }

    /// Before a stream's first audio: silence for the time since the call's first audio arrived
    /// (of any stream), to the sample, so that a leg that connects late starts at the call's
    /// time and legs that start together get none (see [`Recording::gap_at`]). The silence is
    /// in the recording and the analysis, not in what counts as received.
    pub fn align(&self, call: &Arc<LiveCall>, channel: usize) -> Result<(), IngestError> {
        let gap = lock(&call.recording)
            .as_ref()
            .map_or(0, |r| r.gap_at(channel, Instant::now()));
        if gap > 0 {
            self.take(call, channel, &vec![0; gap], Samples::Padding)?;
        }
        Ok(())
    }

    /// The PBX's stream ended (normally or not). Idempotent: the first reason counts.
    pub fn end(&self, call: &Arc<LiveCall>, reason: EndReason, error: Option<String>) {
        let mut inbox = call.inbox();
        if inbox.ended.is_some() {
            return;
        }
        inbox.ended = Some((reason, error));
        let schedule = !std::mem::replace(&mut inbox.scheduled, true);
        drop(inbox);
        if schedule {
            self.schedule(call.clone());
        }
    }

    fn schedule(&self, call: Arc<LiveCall>) {
        lock(&self.ready).push_back(call);
        self.ready_cv.notify_one();
    }

    fn next_ready(&self) -> Option<Arc<LiveCall>> {
        self.next_from(&self.ready, &self.ready_cv)
    }

    /// The front of `queue`, waiting for one; `None` once the server is stopping and no call
    /// is left (a call in progress may still add work).
    fn next_from<T>(&self, queue: &Mutex<VecDeque<T>>, cv: &Condvar) -> Option<T> {
        let mut queue = lock(queue);
        loop {
            if let Some(item) = queue.pop_front() {
                return Some(item);
            }
            if self.stopping.load(Ordering::SeqCst) && lock(&self.calls).is_empty() {
                return None;
            }
            queue = cv
                .wait_timeout(queue, Duration::from_millis(200))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// The stream worker: every call's resampling, VAD, tone and live rules, as audio arrives.
    /// It never decodes, so a decode never delays another call's tone warning or the end of
    /// its utterances; finished utterances go to the decode queue.
    fn stream_worker(self: Arc<Self>, mut worker: Worker, db: &Path) {
        let store = match Store::open(db) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!("live stream worker: {e}; agents' voice history is not used");
                None
            }
        };
        while let Some(call) = self.next_ready() {
            self.process(&mut worker, store.as_ref(), &call);
        }
    }

    /// Drain what a call has received through its session; queue its finished utterances;
    /// finish it if it ended and nothing of it is left to decode.
    fn process(&self, worker: &mut Worker, store: Option<&Store>, call: &Arc<LiveCall>) {
        let (chunks, ended) = {
            let mut inbox = call.inbox();
            (std::mem::take(&mut inbox.pending), inbox.ended.clone())
        };
        let mut guard = lock(&call.analysis);
        let a = &mut *guard;
        let mut jobs: Vec<(LiveUtterance, Instant)> = Vec::new();
        if a.failed.is_none() {
            let outcome = (|| -> crate::Result<()> {
                let mut session = match a.state.take() {
                    Some(state) => {
                        CallSession::resume(worker, &self.cfg.rubric, &mut a.sink, state)
                    }
                    None if !a.begun => {
                        a.begun = true;
                        let history = store.and_then(|s| {
                            agent_histories(s, [call.start.agent_id.clone()], &HashSet::new())
                                .ok()
                                .and_then(|mut h| h.remove(&call.start.agent_id))
                        });
                        let mut session = CallSession::begin(
                            worker,
                            &self.cfg.rubric,
                            &mut a.sink,
                            call.seq,
                            call_info(&call.start),
                            SessionMode::Live,
                            history,
                        )?;
                        session.set_deferred_decoding(true);
                        // The final pass reads the recording written at the end, so the
                        // session keeps only what its live analysis still reads.
                        session.set_audio_retention(AudioRetention::OpenUtterances);
                        session
                    }
                    None => return Ok(()),
                };
                for chunk in &chunks {
                    session.set_shedding(chunk.arrived.elapsed() > self.cfg.shed_after);
                    let pushed = session.push(chunk.channel, &chunk.samples);
                    let closed = session.take_undecoded();
                    jobs.extend(closed.into_iter().map(|u| (u, chunk.arrived)));
                    if let Err(e) = pushed {
                        a.shed = session.shed_utterances();
                        return Err(e);
                    }
                }
                if ended.is_some() {
                    session.set_shedding(false);
                    session.end_live()?;
                    let last = chunks.back().map_or_else(Instant::now, |c| c.arrived);
                    jobs.extend(session.take_undecoded().into_iter().map(|u| (u, last)));
                }
                a.shed = session.shed_utterances();
                a.state = Some(session.suspend());
                Ok(())
            })();
            if let Err(e) = outcome {
                // The live analysis of this call stops; its audio is still recorded and the
                // final pass still runs on it.
                tracing::error!("call {}: live analysis stopped: {e}", call.start.call_id);
                a.failed = Some(e.to_string());
                a.state = None;
            }
        }
        a.outstanding += jobs.len();
        let finish_now = ended.is_some() && a.outstanding == 0;
        if ended.is_some() && !finish_now {
            a.ending = ended.clone();
        }
        if finish_now {
            a.state = None;
        }
        let (shed, alerts) = (a.shed_total(), a.sink.sent);
        drop(guard);

        if !jobs.is_empty() {
            let mut queue = lock(&self.decodes);
            queue.extend(jobs.into_iter().map(|(utterance, arrived)| DecodeJob {
                call: call.clone(),
                utterance,
                arrived,
            }));
            drop(queue);
            self.decodes_cv.notify_all();
        }
        if let Some((reason, error)) = ended {
            if finish_now {
                self.finish(call, reason, error, shed, alerts);
            }
            return;
        }
        let mut inbox = call.inbox();
        if inbox.pending.is_empty() && inbox.ended.is_none() {
            inbox.scheduled = false;
        } else {
            drop(inbox);
            self.schedule(call.clone());
        }
    }

    fn next_decode(&self) -> Option<DecodeJob> {
        self.next_from(&self.decodes, &self.decodes_cv)
    }

    /// A decoding worker: whisper on finished utterances, oldest first, then the live rules
    /// over the new text. An utterance that waited longer than `shed_after` is shed (a late
    /// warning is no warning; the final pass still decodes it).
    fn decode_worker(self: Arc<Self>, mut worker: Worker) {
        while let Some(job) = self.next_decode() {
            let decoded = (job.arrived.elapsed() <= self.cfg.shed_after)
                .then(|| job.utterance.decode(&mut worker, &job.call.start.call_id));
            let mut guard = lock(&job.call.analysis);
            let a = &mut *guard;
            match decoded {
                None => a.shed_late += 1,
                Some(decoded) => {
                    let applied = decoded.and_then(|(part, decode_s)| match a.state.take() {
                        Some(state) if a.failed.is_none() => {
                            let mut session = CallSession::resume(
                                &mut worker,
                                &self.cfg.rubric,
                                &mut a.sink,
                                state,
                            );
                            let r =
                                session.utterance_decoded(part, job.utterance.at_audio_s, decode_s);
                            a.state = Some(session.suspend());
                            r
                        }
                        other => {
                            a.state = other;
                            Ok(())
                        }
                    });
                    if let Err(e) = applied {
                        tracing::error!(
                            "call {}: live analysis stopped: {e}",
                            job.call.start.call_id
                        );
                        a.failed = Some(e.to_string());
                        a.state = None;
                    }
                }
            }
            a.outstanding = a.outstanding.saturating_sub(1);
            let ending = if a.outstanding == 0 {
                a.ending.take()
            } else {
                None
            };
            if ending.is_some() {
                a.state = None;
            }
            let (shed, alerts) = (a.shed_total(), a.sink.sent);
            drop(guard);
            if let Some((reason, error)) = ending {
                self.finish(&job.call, reason, error, shed, alerts);
            }
        }
    }

    /// Write the recording, tell the pages, queue the final pass.
    fn finish(
        &self,
        call: &Arc<LiveCall>,
        reason: EndReason,
        error: Option<String>,
        shed: usize,
        alerts: usize,
    ) {
        // Counted before the call leaves `calls`, so `wait_stored` never sees neither.
        *lock(&self.finals_pending) += 1;
        let recording = lock(&call.recording).take();
        let Some(recording) = recording else {
            // Finished already (cannot happen: a call is finished once).
            self.final_done();
            return;
        };
        let written = recording.finish();
        let rate = call.start.sample_rate;
        let duration_s =
            written.received.iter().copied().max().unwrap_or(0) as f64 / f64::from(rate);
        let error = match (written.error, error) {
            (Some(w), Some(e)) => Some(format!("{e}; {w}")),
            (w, e) => w.or(e),
        };
        let (path, received, stored) = (written.path, written.received, written.stored);
        self.counters.calls_ended.fetch_add(1, Ordering::Relaxed);
        self.counters
            .shed_utterances
            .fetch_add(shed as u64, Ordering::Relaxed);
        lock(&self.calls).remove(&call.start.call_id);
        self.hub.call_ended(
            &call.start.call_id,
            &call.start.agent_id,
            reason,
            duration_s,
        );
        tracing::info!(
            "call {} ended ({reason}): {duration_s:.1} s, {alerts} warnings, {shed} utterances shed",
            call.start.call_id
        );
        let record = LiveCallRecord {
            call_key: call.start.call_id.clone(),
            agent_id: Some(call.start.agent_id.clone()),
            protocol: call.start.protocol,
            peer: call.start.peer.clone(),
            started_ms: call.started_ms,
            ended_ms: now_ms(),
            end_reason: reason,
            error,
            recording: path.display().to_string(),
            sample_rate: rate,
            encoding: call.start.encoding,
            samples_received: received,
            samples_stored: stored,
            shed_utterances: shed,
            alerts,
        };
        // Before the final pass is queued: a server stopped before it is stored stores the call
        // at its next start with this record.
        if let Err(e) = record_end(&path, &record) {
            tracing::error!("call {}: {e}", call.start.call_id);
        }
        let job = FinalJob::new(record, path, channel_map(&call.start.roles));
        let sent = lock(&self.finals).as_ref().map(|tx| tx.send(job).is_ok());
        if sent != Some(true) {
            self.final_done();
        }
    }

    fn final_done(&self) {
        let mut n = lock(&self.finals_pending);
        *n = n.saturating_sub(1);
        self.finals_cv.notify_all();
    }

    /// The final pass of every ended call: the recording analysed exactly as `batch` analyses
    /// it, stored the same way, plus the live record. Runs at a lower priority than the live
    /// workers (the idle scheduling class), so it uses what the live work leaves.
    fn final_worker(
        self: Arc<Self>,
        mut worker: Worker,
        mut store: Store,
        run_id: i64,
        jobs: mpsc::Receiver<FinalJob>,
    ) {
        lower_priority();
        let rubric = self.cfg.rubric.clone();
        let mut totals = crate::store::RunTotals::default();
        let started = Instant::now();
        let mut seq: CallSeq = 0;
        while let Ok(FinalJob { job, record }) = jobs.recv() {
            let history = job.agent_id.as_ref().and_then(|a| {
                agent_histories(
                    &store,
                    [a.clone()],
                    &HashSet::from([record.call_key.clone()]),
                )
                .ok()
                .and_then(|mut h| h.remove(a))
            });
            let outcome = {
                let mut sink = StoreSink::new(
                    &mut store,
                    self.cfg.models_key.clone(),
                    Some(run_id),
                    rubric.source_hash.clone(),
                );
                analyze_recording(
                    &mut worker,
                    &rubric,
                    &mut sink,
                    seq,
                    &job,
                    history,
                    SessionMode::Recording,
                )
            };
            seq += 1;
            match outcome {
                Ok(end) => {
                    totals.done += 1;
                    totals.audio_s += end.duration_s;
                    self.counters.calls_stored.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    totals.failed += 1;
                    self.counters.calls_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!("call {}: final pass: {e}", record.call_key);
                }
            }
            if let Err(e) = store.save_live_call(&record) {
                tracing::error!(
                    "call {}: cannot store its live record: {e}",
                    record.call_key
                );
            }
            self.final_done();
        }
        totals.wall_s = started.elapsed().as_secs_f64();
        if let Err(e) = store.finish_run(run_id, &totals) {
            tracing::error!("serve run record: {e}");
        }
    }

    /// Block until no call is in progress and every ended call's final pass is stored (tests,
    /// benchmarks), or `timeout`.
    pub fn wait_stored(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if lock(&self.calls).is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut n = lock(&self.finals_pending);
        while *n > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            n = self
                .finals_cv
                .wait_timeout(n, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }

    /// Calls in progress.
    pub fn live_calls(&self) -> Vec<Arc<LiveCall>> {
        lock(&self.calls).values().cloned().collect()
    }

    /// End every call in progress (reason: shutdown), wait for their final passes, stop the
    /// threads.
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for call in self.live_calls() {
            self.end(&call, EndReason::Shutdown, None);
        }
        // Workers exit once no call is left; then the final queue is closed and drained.
        let live: Vec<_> = {
            let mut threads = lock(&self.threads);
            let n = threads.len().saturating_sub(2);
            threads.drain(..n).collect()
        };
        self.ready_cv.notify_all();
        for t in live {
            let _ = t.join();
        }
        lock(&self.finals).take();
        lock(&self.alerts).take();
        for t in lock(&self.threads).drain(..) {
            let _ = t.join();
        }
    }
}

/// Linux: the idle scheduling class for the calling thread and the whisper threads it starts,
/// so the final pass runs only on CPU time the live work leaves (under nice 10 it still took
/// ~10 % of a core from a live decode, and its spinning whisper threads more); nice 10 where
/// the idle class is refused.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls on the calling thread with valid arguments.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::pid_t;
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(tid, libc::SCHED_IDLE, &param) != 0
            && libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10) != 0
        {
            tracing::warn!("final pass: could not lower its priority");
        }
    }
}

fn alert_writer(db: &Path, alerts: mpsc::Receiver<AlertRecord>) {
    let mut store = match Store::open(db) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("alerts are not stored: {e}");
            while alerts.recv().is_ok() {}
            return;
        }
    };
    while let Ok(a) = alerts.recv() {
        if let Err(e) = store.save_alert(&a) {
            tracing::error!("call {}: alert not stored: {e}", a.call_key);
        }
    }
}

fn call_info(start: &CallStart) -> CallInfo {
    CallInfo {
        key: start.call_id.clone(),
        path: PathBuf::from(format!("{}:{}", start.protocol, start.peer)),
        audio_hash: String::new(),
        agent_id: Some(start.agent_id.clone()),
        channel_map: channel_map(&start.roles),
        source: Source::Live,
        started_at: None,
        roles: start.roles.clone(),
        format: Some(AudioFormat {
            sample_rate: start.sample_rate,
            channels: start.roles.len(),
            encoding: start.encoding.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::Role;
    use crate::audio::frames::FrameEncoding;
    use crate::store::IngestProtocol;

    #[test]
    fn call_ids_that_could_escape_the_recordings_folder_are_refused() {
        let mut s = CallStart {
            call_id: "c-1".into(),
            agent_id: "1001".into(),
            roles: vec![Role::Agent, Role::Caller],
            sample_rate: 8000,
            encoding: FrameEncoding::L16,
            protocol: IngestProtocol::WebSocket,
            peer: "127.0.0.1:1".into(),
        };
        assert!(s.validate().is_ok());
        for bad in ["../x", "a/b", "", ".hidden", "a b", &"x".repeat(200)] {
            s.call_id = bad.to_string();
            assert!(s.validate().is_err(), "{bad:?}");
        }
        s.call_id = "c-1".into();
        s.sample_rate = 11025;
        assert!(s.validate().is_err());
    }
}
