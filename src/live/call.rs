//! A call as its PBX announces it ([`CallStart`]), the checks on what the PBX controls, and why
//! a stream is refused or stopped ([`IngestError`]): shared by both ingest protocols, the engine
//! and the recordings.

use serde::Serialize;

use crate::audio::Role;
use crate::audio::frames::FrameEncoding;
use crate::store::IngestProtocol;

/// Why a PBX's stream was refused or stopped; sent back to it and logged with its address.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IngestError {
    #[error("metadata: {0}")]
    Metadata(String),
    #[error("call {0} is already streaming")]
    Duplicate(String),
    #[error("call {0}: frames after the end of the call")]
    AfterEnd(String),
    #[error("call {call}: {message}")]
    Frame { call: String, message: String },
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// A live call as announced by its PBX.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallStart {
    pub call_id: String,
    pub agent_id: String,
    /// Role of each channel, in the order samples are pushed.
    pub roles: Vec<Role>,
    pub sample_rate: u32,
    pub encoding: FrameEncoding,
    pub protocol: IngestProtocol,
    pub peer: String,
}

impl CallStart {
    /// Checks every field a PBX controls (the call id becomes a file name).
    pub fn validate(&self) -> Result<(), IngestError> {
        let bad = |m: String| Err(IngestError::Metadata(m));
        let id_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 128
                && s.chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@'))
                && !s.starts_with('.')
        };
        if !id_ok(&self.call_id) {
            return bad(format!(
                "call_id {:?} must be 1–128 letters, digits or - _ . : @ (not starting with .)",
                self.call_id
            ));
        }
        if !id_ok(&self.agent_id) {
            return bad(format!(
                "agent_id {:?} must be 1–128 letters, digits or - _ . : @",
                self.agent_id
            ));
        }
        if !matches!(
            self.sample_rate,
            8000 | 12000 | 16000 | 24000 | 32000 | 44100 | 48000
        ) {
            return bad(format!(
                "sample rate {} is not a telephony rate (8000 or 16000)",
                self.sample_rate
            ));
        }
        if self.roles.is_empty() || self.roles.len() > 2 {
            return bad(format!("{} channels: 1 or 2 expected", self.roles.len()));
        }
        Ok(())
    }
}
