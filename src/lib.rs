//! # callqc — full-volume quality inspection of hotline calls, on your own machines
//!
//! A call flows one way through typed stages; each module is one stage or one seam:
//!
//! ```text
//! file ─decode─▶ Recording ─roles/resample─▶ RoleAudio (16 kHz per role)
//!      ─VAD─▶ SpeechRegions ─pack + whisper + guard─▶ Transcript
//!      ─tone─▶ ToneTrack ─rubric─▶ Findings + Score ─store─▶ SQLite
//! ```
//!
//! ## Layout
//! - [`audio`]: WAV decoding (PCM, float, G.711 μ-law / A-law), channel → role mapping, resampling
//!   to 16 kHz with rubato.
//! - [`vad`]: silero VAD through ort → speech regions per role (silence and talk-over are
//!   measured from these, never from ASR times).
//! - [`asr`]: whisper through whisper-rs — `pack` groups regions into ≤ 28 s windows and maps
//!   times back, `whisper` runs one model + state per worker, `guard` converts to Simplified and
//!   drops hallucinations with a reason.
//! - [`tone`]: prosodic features relative to the agent's own baseline, the ONNX tone model (a
//!   documented prior, refittable with `tone fit`), the drop-in contract for waveform models, and
//!   a streaming window for live use.
//! - [`rubric`]: rubric files, the pinyin / edit-distance phrase matcher, one file per rule kind.
//! - [`store`]: the SQLite schema with migrations, one transaction per call, reads.
//! - [`pipeline`]: one call through every stage (`call`, `analyze`) and the parallel, resumable
//!   nightly batch (`batch`).
//! - [`eval`]: ground truth vs output — CER and QC-label precision / recall.
//! - [`provision`]: the CTranslate2 → ggml whisper converter (reader, writer, mel filters,
//!   quantisation).
//! - [`onnx`]: the one ONNX Runtime environment and session building.
//! - [`settings`]: where models live; how `--threads` is split between workers and whisper.
//! - [`text`]: Chinese normalisation shared by ASR, evaluation and rubric matching.
//!
//! The binary (`src/main.rs`, `src/cli/`) is a thin layer: one file per subcommand, typed errors
//! from the library reported as one line each.

pub mod asr;
pub mod audio;
pub mod error;
pub mod eval;
pub mod onnx;
pub mod pipeline;
pub mod provision;
pub mod rubric;
pub mod settings;
pub mod store;

pub mod text;
pub mod time;
pub mod tone;
pub mod vad;

pub use error::{Error, Result};
