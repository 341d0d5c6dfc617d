//! A worker: every model one analysis thread needs, loaded once and reused for every call.

use std::path::PathBuf;

use serde::Serialize;

use crate::asr::{AsrParams, Recognizer};
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
    pub recognizer: Recognizer,
    pub tone: ToneScorer,
    pub vad_mode: VadMode,
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
            recognizer,
            tone,
            vad_mode: cfg.vad_mode,
        })
    }
}
