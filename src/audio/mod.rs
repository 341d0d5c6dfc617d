//! Audio in: decode telephone WAV files, map channels to roles, resample to 16 kHz.
//!
//! `decode` reads a file into a [`Recording`] (native rate, f32 samples per channel);
//! `roles` applies a [`ChannelMap`] and `resample` brings each role to [`TARGET_RATE`],
//! giving the [`RoleAudio`] that every later stage (VAD, whisper, tone) works on.

pub mod bleed;
pub mod compressed;
pub mod decode;
pub mod degrade;
pub mod frames;
pub mod resample;
pub mod roles;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The sample rate every stage after decoding works at (whisper and silero VAD want 16 kHz).
pub const TARGET_RATE: u32 = 16_000;

/// Who is speaking on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Agent,
    Caller,
    /// A mono recording: agent and caller mixed on one channel.
    Mixed,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Caller => "caller",
            Role::Mixed => "mixed",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "agent" => Ok(Role::Agent),
            "caller" => Ok(Role::Caller),
            "mixed" => Ok(Role::Mixed),
            other => Err(format!(
                "unknown role '{other}' (expected agent, caller or mixed)"
            )),
        }
    }
}

/// Read a recording's bytes, refusing what is not a regular file: reading a FIFO would wait
/// forever for a writer, a directory or a device is no recording.
pub fn read_recording(path: &std::path::Path) -> Result<Vec<u8>, AudioError> {
    let io = |source| AudioError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    let kind = file_kind(&meta.file_type());
    if kind != "regular file" {
        return Err(AudioError::NotRegular {
            path: path.to_path_buf(),
            kind,
        });
    }
    std::fs::read(path).map_err(io)
}

/// What a file is, in words.
pub fn file_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_file() {
        "regular file"
    } else if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_block_device() || t.is_char_device() {
        "device"
    } else {
        "special file"
    }
}

/// How the samples were stored in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    PcmInt {
        bits: u16,
    },
    Float32,
    MuLaw,
    ALaw,
    /// Compressed recordings (decoded through symphonia, `audio::compressed`).
    Mp3,
    Flac,
    Vorbis,
}

/// A decoded file: samples in [-1, 1] per channel at the file's own rate.
#[derive(Debug, Clone)]
pub struct Recording {
    pub path: PathBuf,
    pub sample_rate: u32,
    pub encoding: Encoding,
    /// One Vec per channel, all the same length.
    pub channels: Vec<Vec<f32>>,
}

impl Recording {
    pub fn duration_s(&self) -> f64 {
        let n = self.channels.first().map_or(0, |c| c.len());
        n as f64 / self.sample_rate.max(1) as f64
    }
}

/// Which role each stereo channel carries. Mono files are always [`Role::Mixed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelMap {
    pub left: Role,
    pub right: Role,
}

impl Default for ChannelMap {
    /// The usual telephony convention: agent on the left, caller on the right.
    fn default() -> Self {
        ChannelMap {
            left: Role::Agent,
            right: Role::Caller,
        }
    }
}

/// One role's audio at [`TARGET_RATE`], on the call's own timeline (sample 0 = call start).
#[derive(Debug, Clone)]
pub struct RoleAudio {
    pub role: Role,
    pub samples: Vec<f32>,
}

impl RoleAudio {
    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / TARGET_RATE as f64
    }
}

/// Errors while reading or preparing audio. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("{path}: cannot read file: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: empty file")]
    Empty { path: PathBuf },
    #[error("{path}: not a regular file ({kind}); give callqc recordings, not {kind}s")]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{path}: not a WAV file ({reason})")]
    NotWav { path: PathBuf, reason: String },
    #[error("{path}: corrupt or truncated WAV: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path}: unsupported WAV: {reason}")]
    Unsupported { path: PathBuf, reason: String },
    #[error("{path}: resampling failed: {reason}")]
    Resample { path: PathBuf, reason: String },
}

/// How the audio is stored, for the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AudioFormat {
    pub sample_rate: u32,
    /// Channels of the source (a stereo file mixed to one role still says 2).
    pub channels: usize,
    pub encoding: Encoding,
}

impl From<frames::FrameEncoding> for Encoding {
    fn from(e: frames::FrameEncoding) -> Encoding {
        match e {
            frames::FrameEncoding::L16 => Encoding::PcmInt { bits: 16 },
            frames::FrameEncoding::Pcmu => Encoding::MuLaw,
            frames::FrameEncoding::Pcma => Encoding::ALaw,
        }
    }
}
