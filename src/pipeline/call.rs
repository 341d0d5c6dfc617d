//! A worker: every model one analysis thread needs, loaded once and reused for every call.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::asr::{AsrParams, Recognizer};
use crate::settings::SpareCores;
use crate::tone::ToneScorer;
use crate::vad::{Vad, VadParams};

/// Whether whisper hears VAD regions or whole channels (the naive approach, for comparison).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum VadMode {
    Silero,
    Off,
}

/// Everything a worker needs, loaded once and reused for every call it handles.
pub struct Worker {
    pub vad: Vad,
    /// `None` on a live server's stream worker, which never decodes ([`Worker::load_stream`]).
    pub recognizer: Option<Recognizer>,
    pub tone: ToneScorer,
    pub vad_mode: VadMode,
    /// Whisper on the agent's channel only (the caller's still gets VAD).
    pub agent_only: bool,
    /// Cores other workers of this process leave idle, which this one may borrow.
    pub spare: Option<Arc<SpareCores>>,
    /// Leave the other party's leaked voice in each channel (`audio::bleed`; for comparison).
    pub keep_bleed: bool,
}

/// Settings for building a worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub models_dir: PathBuf,
    pub whisper_model: PathBuf,
    pub tone_model: PathBuf,
    pub asr: AsrParams,
    pub vad: VadParams,
    pub vad_mode: VadMode,
    pub whisper_threads: usize,
    pub onnx_threads: usize,
    /// Transcribe the agent's channel only: for centres that need the throughput; the caller's
    /// words are then not in the record (README, Scale-out, measures what that costs).
    pub agent_only: bool,
    /// Do not cancel the bleed between a call's two channels (`audio::bleed`): for comparison.
    pub keep_bleed: bool,
}

impl Worker {
    /// Load the VAD, whisper and tone models.
    pub fn load(cfg: &WorkerConfig) -> crate::Result<Self> {
        let vad = Vad::load(&cfg.models_dir, cfg.vad)?;
        let recognizer =
            Recognizer::load(&cfg.whisper_model, cfg.asr.clone(), cfg.whisper_threads)?;
        let tone = ToneScorer::load(&cfg.models_dir, &cfg.tone_model, cfg.onnx_threads.max(1))?;
        Ok(Worker {
            vad,
            recognizer: Some(recognizer),
            tone,
            vad_mode: cfg.vad_mode,
            agent_only: cfg.agent_only,
            spare: None,
            keep_bleed: cfg.keep_bleed,
        })
    }

    /// Load the VAD and tone models only: what a live server's stream worker runs (resampling,
    /// VAD, tone, live rules), leaving whisper to the decoding workers.
    pub fn load_stream(cfg: &WorkerConfig) -> crate::Result<Self> {
        Ok(Worker {
            vad: Vad::load(&cfg.models_dir, cfg.vad)?,
            recognizer: None,
            tone: ToneScorer::load(&cfg.models_dir, &cfg.tone_model, cfg.onnx_threads.max(1))?,
            vad_mode: cfg.vad_mode,
            agent_only: cfg.agent_only,
            spare: None,
            keep_bleed: cfg.keep_bleed,
        })
    }

    /// The worker's whisper model; an error on a stream worker (a caller's mistake, not input).
    pub fn recognizer(&mut self) -> crate::Result<&mut Recognizer> {
        self.recognizer
            .as_mut()
            .ok_or_else(|| crate::Error::NoRecognizer {
                call: "live decoding".into(),
            })
    }
}
