//! # callqc — full-volume quality inspection of hotline calls, on your own machines
//!
//! A call flows one way through typed stages, driven by one [`pipeline::session::CallSession`]
//! that pushes typed events into a caller-supplied sink (ripgrep's `Sink` idea):
//!
//! ```text
//! frames (20 ms, per role) or a whole file
//!   ─▶ CallSession ─ StreamResampler (16 kHz) ─ VadStream ─▶ RegionClosed
//!        │ live:  whisper per finished utterance, tone, live rules ─▶ Segment / Finding (Live)
//!        │ finish: packed whisper windows, whole-call tone, every rule ─▶ Segment / Finding (Final), Ended
//!        ▼
//!   CallEvent ─▶ dyn CallSink ─┬─ pipeline::sinks::StoreSink (one transaction per call, at its end)
//!                              ├─ the CLI's progress bar and transcript printer
//!                              └─ VecSink (tests, eval)
//! ```
//!
//! ## Layout
//! Rooms from the top down; a room imports only rooms below it, and no two files import each
//! other round a circle (`scripts/check-imports.py`, run by `scripts/test.sh`, holds the layers).
//! - [`live`]: `callqc serve` — [`live::server`] (router, start and stop), [`live::state`] (what
//!   every handler sees), [`live::ingest`] (the PBX and page WebSockets, close handshakes),
//!   [`live::audiosocket`], [`live::call`] (a call as its PBX announces it, its checks),
//!   [`live::engine`] (calls in progress, stream and decoding workers, shedding, the final
//!   worker), [`live::sink`] (the live pass's consumer of events: pop-ups and alert records),
//!   [`live::final_pass`] (what a final pass works on; recovered calls), [`live::recording`] (each call's WAV as it arrives; recovery at the next
//!   start), [`live::hub`] (who sees which warning), [`live::auth`] (tokens),
//!   [`live::config`] (`callqc.toml`, time-outs), [`live::trainer`] (the trainer pages' API),
//!   [`live::simulate`] (a PBX in a box), [`live::pages`].
//! - [`train`]: training workflows above the models they train: [`train::sentences`] fits the
//!   sentence scorer, writes it as ONNX and learns from trainers' verdicts; [`train::tone`]
//!   refits the tone model from verdicts (`tone fit`).
//! - [`pipeline`]: [`pipeline::session`] (frames in, events out; the only place that knows the
//!   order of the stages), [`pipeline::events`] (the events and the [`pipeline::events::CallSink`]
//!   seam), [`pipeline::sinks`] (the consumers: the store's writer, a list, a channel, a tee),
//!   [`pipeline::call`] (a worker's models, loaded once), [`pipeline::analyze`] (tone and rubric
//!   as plain functions, also for `rescore`), [`pipeline::batch`] (parallel, resumable),
//!   [`pipeline::distributed`] (many machines on one PostgreSQL queue), [`pipeline::identity`]
//!   (call keys, models key).
//! - [`report`]: what trainers take away — per-call export folders (transcript, findings, WAV
//!   clips, one offline HTML page) and the period report (inline SVG charts).
//! - [`error`]: the crate's one [`Error`], composed of every room's own error type.
//! - [`eval`]: ground truth vs output — CER and QC-label precision / recall.
//!   [`review`]: calibration agreement (share and Cohen's kappa) between reviewers.
//! - [`store`]: the [`store::Store`] on SQLite or PostgreSQL — schema with migrations, one
//!   transaction per call (typed rows in, never events), reads, trainers' verdicts and their
//!   history, the queries behind `flagged`, `rules stats` and the report; all SQL lives here.
//! - [`rubric`]: rubric files, the pinyin / edit-distance phrase matcher, one file per rule kind
//!   (each kind says whether it can judge a call in progress), 禁语 by meaning —
//!   [`rubric::grammar`] (constructions with slots) and [`rubric::sentence`] (the learned
//!   sentence scorer through ort) — and [`rubric::corpus`] (labelled sentences, `check-text`).
//!   [`speakers`]: a mono recording's two voices told apart (the session then names the agent
//!   by the rubric's script, or keeps the call mixed and says why).
//! - [`asr`]: whisper through whisper-rs — `pack` groups regions into ≤ 28 s windows and maps
//!   times back, `whisper` runs one model + state per worker, `guard` converts to Simplified and
//!   drops hallucinations with a reason. [`tone`]: prosodic features relative to the agent's own
//!   baseline, the ONNX tone model (a documented prior), the drop-in contract for waveform
//!   models, and a streaming window for live use.
//! - [`vad`]: silero VAD through ort, streaming: state kept across pushes, regions closed after
//!   the hang-over, forced cut at the maximum length (silence and talk-over are measured from
//!   these, never from ASR times).
//! - [`audio`]: WAV decoding (PCM, float, G.711 μ-law / A-law), telephony frames
//!   ([`audio::frames`]), channel → role mapping, chunked resampling to 16 kHz with rubato.
//!   [`audio::bleed`] cancels each channel's leaked copy of the other party before the VAD;
//!   [`audio::degrade`] writes labelled degraded copies of recordings (`callqc degrade`).
//! - At the bottom: [`onnx`] (the one ONNX Runtime environment; [`onnx::writer`] encodes the
//!   ONNX files callqc writes itself), [`provision`] (the CTranslate2 → ggml whisper converter),
//!   [`settings`] (where models live; how `--threads` is split), [`text`] (Chinese
//!   normalisation), [`redact`] (masking personal data in what is shown and exported),
//!   [`time`] (millisecond rounding, dates), [`sync`] (locks that outlive a panicking holder).
//!
//! The binary (`src/main.rs`, `src/cli/`) is a thin layer: one file per subcommand, typed errors
//! from the library reported as one line each.

pub mod asr;
pub mod audio;
pub mod error;
pub mod eval;
pub mod live;
pub mod onnx;
pub mod pipeline;
pub mod provision;
pub mod redact;
pub mod report;
pub mod review;
pub mod rubric;
pub mod settings;
pub mod speakers;
pub mod store;
pub mod sync;

pub mod text;
pub mod time;
pub mod tone;
pub mod train;
pub mod vad;

pub use error::{Error, Result};
