//! The one ONNX Runtime environment of the process, and how sessions are made from it.
//!
//! ONNX Runtime is loaded at run time (`ort`'s `load-dynamic`) from the shared library that
//! `scripts/setup.sh` extracts from the `onnxruntime` PyPI wheel. A missing library must be a clear
//! error naming the path and the fix, never a panic, so everything here returns [`OnnxError`].
//! [`writer`] encodes the ONNX files callqc makes itself (the tone prior, the sentence scorer).

pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

/// Errors while loading ONNX Runtime or a model.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error(
        "ONNX Runtime library not found at {0} (run scripts/setup.sh, or set ORT_DYLIB_PATH to a libonnxruntime.so ≥ 1.22)"
    )]
    RuntimeMissing(PathBuf),
    #[error("could not load ONNX Runtime from {path}: {reason}")]
    RuntimeLoad { path: PathBuf, reason: String },
    #[error("ONNX model not found: {0} (run scripts/setup.sh)")]
    ModelMissing(PathBuf),
    #[error("could not load ONNX model {path}: {reason}")]
    ModelLoad { path: PathBuf, reason: String },
    #[error("ONNX inference failed in {model}: {reason}")]
    Run { model: String, reason: String },
}

static ENVIRONMENT: OnceLock<Result<Environment, OnnxError>> = OnceLock::new();

/// Where the ONNX Runtime shared library is looked for: `ORT_DYLIB_PATH`, else
/// `<models>/onnxruntime/libonnxruntime.so`.
pub fn runtime_path(models_dir: &Path) -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => models_dir.join("onnxruntime").join("libonnxruntime.so"),
    }
}

/// Load ONNX Runtime once per process (later calls reuse the first result).
pub fn environment(models_dir: &Path) -> Result<&'static Environment, OnnxError> {
    let result = ENVIRONMENT.get_or_init(|| {
        let path = runtime_path(models_dir);
        if !path.exists() {
            return Err(OnnxError::RuntimeMissing(path));
        }
        let builder = ort::init_from(&path).map_err(|e| OnnxError::RuntimeLoad {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        builder
            .with_name("callqc")
            .build()
            .map_err(|e| OnnxError::RuntimeLoad {
                path: path.clone(),
                reason: e.to_string(),
            })
    });
    match result {
        Ok(env) => Ok(env),
        Err(OnnxError::RuntimeMissing(p)) => Err(OnnxError::RuntimeMissing(p.clone())),
        Err(e) => Err(OnnxError::RuntimeLoad {
            path: runtime_path(models_dir),
            reason: e.to_string(),
        }),
    }
}

/// Build a session for `model` with `threads` intra-op threads (one session per worker:
/// `Session::run` takes `&mut self`).
pub fn session(models_dir: &Path, model: &Path, threads: usize) -> Result<Session, OnnxError> {
    let env = environment(models_dir)?;
    if !model.exists() {
        return Err(OnnxError::ModelMissing(model.to_path_buf()));
    }
    let load = |reason: String| OnnxError::ModelLoad {
        path: model.to_path_buf(),
        reason,
    };
    // Builder errors are not Send/Sync: turn them into strings at once.
    let builder = Session::builder(env).map_err(|e| load(e.to_string()))?;
    let mut builder = builder
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| load(e.to_string()))?
        .with_intra_threads(threads.max(1))
        .map_err(|e| load(e.to_string()))?
        .with_inter_threads(1)
        .map_err(|e| load(e.to_string()))?;
    builder
        .commit_from_file(model)
        .map_err(|e| load(e.to_string()))
}

/// SHA-256 (hex) of a model file's bytes: what sidecars and identities pin models by.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
