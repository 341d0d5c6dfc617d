//! One call through decode → roles → VAD → whisper, with the worker's already-loaded models.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::asr::{AsrError, AsrParams, Recognizer, Transcript};
use crate::audio::{self, AudioError, ChannelMap, Encoding, Role, RoleAudio};
use crate::onnx::OnnxError;
use crate::vad::{SpeechRegion, SpeechRegions, Vad, VadParams};

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
    pub vad_mode: VadMode,
}

/// Settings for building a worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub models_dir: PathBuf,
    pub whisper_model: PathBuf,
    pub asr: AsrParams,
    pub vad: VadParams,
    pub vad_mode: VadMode,
    pub whisper_threads: usize,
}

/// Failure of one call, naming the stage.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error("{path}: voice activity detection failed: {source}")]
    Vad { path: PathBuf, source: OnnxError },
    #[error("{path}: {source}")]
    Asr { path: PathBuf, source: AsrError },
    #[error("{path}: tone: {source}")]
    Tone {
        path: PathBuf,
        source: crate::tone::ToneError,
    },
}

/// Wall time per stage, for the run summary and the performance work.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StageTimings {
    pub decode: Duration,
    pub vad: Duration,
    pub asr: Duration,
}

/// The transcription of one call.
#[derive(Debug, Clone, Serialize)]
pub struct CallTranscript {
    pub path: PathBuf,
    pub duration_s: f64,
    pub sample_rate: u32,
    pub channels: usize,
    pub encoding: Encoding,
    pub roles: Vec<Role>,
    pub speech: Vec<SpeechRegions>,
    pub transcript: Transcript,
    #[serde(skip)]
    pub timings: StageTimings,
    #[serde(skip)]
    pub audio: Vec<RoleAudio>,
}

impl Worker {
    /// Load the VAD and whisper models.
    pub fn load(cfg: &WorkerConfig) -> Result<Self, anyhow::Error> {
        let vad = Vad::load(&cfg.models_dir, cfg.vad)?;
        let recognizer =
            Recognizer::load(&cfg.whisper_model, cfg.asr.clone(), cfg.whisper_threads)?;
        Ok(Worker {
            vad,
            recognizer,
            vad_mode: cfg.vad_mode,
        })
    }

    /// Transcribe one file.
    pub fn transcribe(
        &mut self,
        path: &Path,
        map: ChannelMap,
    ) -> Result<CallTranscript, CallError> {
        let bytes = std::fs::read(path).map_err(|source| AudioError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.transcribe_bytes(path, &bytes, map)
    }

    /// Transcribe a file already read into memory (`path` names it in messages and output).
    pub fn transcribe_bytes(
        &mut self,
        path: &Path,
        bytes: &[u8],
        map: ChannelMap,
    ) -> Result<CallTranscript, CallError> {
        let t = Instant::now();
        let rec = audio::decode::decode_bytes(path, bytes)?;
        self.recognizer
            .begin_call()
            .map_err(|source| CallError::Asr {
                path: path.to_path_buf(),
                source,
            })?;
        let roles = audio::roles::split_roles(&rec, map)?;
        let mut timings = StageTimings {
            decode: t.elapsed(),
            ..StageTimings::default()
        };
        let mut transcript = Transcript::default();
        let t = Instant::now();
        let speech: Vec<SpeechRegions> = match self.vad_mode {
            // All channels of the call in one batched VAD pass.
            VadMode::Silero => self
                .vad
                .detect_many(&roles)
                .map_err(|source| CallError::Vad {
                    path: path.to_path_buf(),
                    source,
                })?,
            VadMode::Off => roles
                .iter()
                .map(|role_audio| SpeechRegions {
                    role: role_audio.role,
                    regions: vec![SpeechRegion {
                        start: 0.0,
                        end: role_audio.duration_s(),
                    }],
                })
                .collect(),
        };
        timings.vad += t.elapsed();
        for (role_audio, regions) in roles.iter().zip(&speech) {
            let t = Instant::now();
            let part = self
                .recognizer
                .recognize(role_audio, regions)
                .map_err(|source| CallError::Asr {
                    path: path.to_path_buf(),
                    source,
                })?;
            timings.asr += t.elapsed();
            transcript.segments.extend(part.segments);
            transcript.dropped.extend(part.dropped);
        }
        transcript.sort();
        Ok(CallTranscript {
            path: path.to_path_buf(),
            duration_s: rec.duration_s(),
            sample_rate: rec.sample_rate,
            channels: rec.channels.len(),
            encoding: rec.encoding,
            roles: roles.iter().map(|r| r.role).collect(),
            speech,
            transcript,
            timings,
            audio: roles,
        })
    }
}
