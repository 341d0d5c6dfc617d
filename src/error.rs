//! The crate's one error type: every stage's error, composed, so that a library call returns
//! `callqc::Result<T>` and the CLI prints one line naming the file, peer or stage.
//!
//! Each stage keeps its own precise error enum (what can go wrong *there*); this type is what
//! crosses module boundaries and reaches the binary.

use std::path::PathBuf;

/// Any error of the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Audio(#[from] crate::audio::AudioError),
    #[error(transparent)]
    Onnx(#[from] crate::onnx::OnnxError),
    #[error(transparent)]
    Asr(#[from] crate::asr::AsrError),
    #[error(transparent)]
    Tone(#[from] crate::tone::ToneError),
    #[error(transparent)]
    Rubric(#[from] crate::rubric::RubricError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Eval(#[from] crate::eval::EvalError),
    /// A batch input (file, folder, sidecar) that cannot be used.
    #[error("{path}: {reason}")]
    Input { path: PathBuf, reason: String },
    /// A manifest line that cannot be used.
    #[error("{path}:{line}: {reason}")]
    Manifest {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// A worker's models could not be loaded.
    #[error("loading models: {0}")]
    Models(Box<Error>),
    #[error("starting the worker threads: {0}")]
    Pool(#[from] rayon::ThreadPoolBuildError),
    #[error(transparent)]
    Provision(#[from] crate::provision::ProvisionError),
    /// A stage of one call failed; `call` names the file or the live peer.
    #[error("{call}: {stage}: {source}")]
    Call {
        call: String,
        stage: Stage,
        source: Box<Error>,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The consumer of a session's events went away (the batch's writer thread ended).
    #[error("the event consumer has stopped")]
    SinkClosed,
    /// A session was used after it ended, or fed a channel it does not have.
    #[error("{0}")]
    Session(String),
    /// The live server could not start or go on (listen address, threads, configuration).
    #[error("{0}")]
    Serve(String),
}

/// The stages of the analysis, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Decode,
    Vad,
    Asr,
    Tone,
    Store,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Decode => "decoding",
            Stage::Vad => "voice activity detection",
            Stage::Asr => "speech recognition",
            Stage::Tone => "tone",
            Stage::Store => "store",
        })
    }
}

impl Error {
    /// The analysis stage this error happened in, if it is a call's stage error.
    pub fn stage(&self) -> Option<Stage> {
        match self {
            Error::Call { stage, .. } => Some(*stage),
            _ => None,
        }
    }

    /// Wrap a stage error with the call it happened to.
    pub fn in_call(call: impl std::fmt::Display, stage: Stage, source: impl Into<Error>) -> Error {
        Error::Call {
            call: call.to_string(),
            stage,
            source: Box::new(source.into()),
        }
    }
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
