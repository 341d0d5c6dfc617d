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
    /// A session was fed a channel its call does not have.
    #[error("{call}: no channel {channel} (the call has {channels})")]
    NoChannel {
        call: String,
        channel: usize,
        channels: usize,
    },
    /// A call began without the facts a session needs (its audio format, a channel).
    #[error("{call}: {missing}")]
    IncompleteCall { call: String, missing: &'static str },
    /// A session asked for what a live session does not keep: the whole call's audio.
    #[error(
        "{call}: the session kept only its open utterances' audio; analyse the call's recording"
    )]
    AudioNotKept { call: String },
    /// Whisper was asked of a worker loaded without it (a live stream worker).
    #[error("{call}: this worker has no whisper model loaded")]
    NoRecognizer { call: String },
    /// The live server could not start a thread.
    #[error("cannot start the {name} thread: {source}")]
    Thread {
        name: String,
        source: std::io::Error,
    },
    /// The live server could not listen on an address.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// A blocking start-up step of the live server (opening the store, starting the engine)
    /// ended without an answer (it panicked).
    #[error("{step}: {source}")]
    StartUp {
        step: &'static str,
        source: tokio::task::JoinError,
    },
    /// The live server's recordings folder cannot be used (not writable, or another server's):
    /// the message of live's `RecordingError` (live sits above this type).
    #[error("{0}")]
    Recordings(String),
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
