//! What makes two analyses "the same": a call's key, the audio's hash, and the models key.
//!
//! The batch skips a call whose key, audio hash, models key and rubric hash all match a stored
//! analysis; `eval` only trusts stored results that match the same way.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::call::WorkerConfig;

/// sha256 of a file's bytes (the call's identity when no call id is given).
pub fn file_hash(path: &Path) -> std::io::Result<String> {
    // A FIFO would block the open (and the batch) until someone writes into it.
    let kind = crate::audio::file_kind(&std::fs::metadata(path)?.file_type());
    if kind != "regular file" {
        return Err(std::io::Error::other(format!(
            "not a regular file ({kind})"
        )));
    }
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// sha256 of bytes already in memory (the same value as [`file_hash`] of their file).
pub fn bytes_hash(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A call's key in the store: the manifest's / sidecar's call id, else the audio's sha256.
/// A file that cannot be read has no hash: it is keyed by its path (`unreadable:PATH`), so two
/// unreadable files stay two rows and never replace an analysed call.
pub fn call_key(call_id: Option<&str>, audio_hash: Option<&str>, path: &Path) -> String {
    match (call_id, audio_hash) {
        (Some(id), _) => id.to_string(),
        (None, Some(h)) if !h.is_empty() => h.to_string(),
        _ => format!("unreadable:{}", path.display()),
    }
}

/// A short, stable fingerprint of a file (size + first and last MiB): enough to notice a
/// different model without hashing 150 MB on every run. A missing file has its own fingerprint.
pub fn file_fingerprint(path: &Path) -> String {
    let mut h = Sha256::new();
    match std::fs::File::open(path) {
        Err(_) => h.update(b"missing"),
        Ok(mut f) => {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            h.update(len.to_le_bytes());
            let mut buf = vec![0u8; 1 << 20];
            if let Ok(n) = f.read(&mut buf) {
                h.update(&buf[..n]);
            }
            if len > (2 << 20)
                && f.seek(SeekFrom::End(-(1 << 20))).is_ok()
                && let Ok(n) = f.read(&mut buf)
            {
                h.update(&buf[..n]);
            }
        }
    }
    hex(&h.finalize()[..8])
}

/// The models and settings that decide a call's transcript and tone.
#[derive(Debug, Clone, Serialize)]
pub struct ModelsIdentity {
    /// JSON describing every model file (path + fingerprint) and the ASR / VAD settings; stored
    /// with each run.
    pub description: serde_json::Value,
    /// Short hash of `description`: a change means stored calls are stale.
    pub key: String,
}

impl ModelsIdentity {
    /// The identity of a worker's models and settings plus the tone model at `tone_model`.
    pub fn of(worker: &WorkerConfig, tone_model: &Path) -> ModelsIdentity {
        let description = serde_json::json!({
            "whisper": {"path": worker.whisper_model, "fingerprint": file_fingerprint(&worker.whisper_model)},
            "vad": file_fingerprint(&worker.models_dir.join("silero_vad.onnx")),
            "tone": {"path": tone_model, "fingerprint": file_fingerprint(tone_model)},
            "asr": worker.asr,
            "vad_params": worker.vad,
            "vad_mode": worker.vad_mode,
        });
        // Only when on, so that stores made before the setting existed keep their key.
        let mut description = description;
        if worker.agent_only {
            description["agent_only"] = serde_json::Value::Bool(true);
        }
        // Bleed cancelling changes what VAD and whisper hear (audio::bleed, version 1).
        description["bleed"] = serde_json::Value::from(if worker.keep_bleed {
            "kept"
        } else {
            "cancelled v1"
        });
        let key = hex(&Sha256::digest(description.to_string().as_bytes())[..12]);
        ModelsIdentity { description, key }
    }
}

/// The default tone model of a models directory.
pub fn default_tone_model(models_dir: &Path) -> PathBuf {
    models_dir.join("tone.onnx")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_files_get_distinct_keys_and_never_the_empty_hash() {
        let a = call_key(None, None, Path::new("/calls/a.wav"));
        let b = call_key(None, Some(""), Path::new("/calls/b.wav"));
        assert_ne!(a, b);
        assert!(!a.is_empty() && a.contains("a.wav"));
        assert_eq!(call_key(Some("c1"), None, Path::new("x")), "c1");
        assert_eq!(call_key(None, Some("abc"), Path::new("x")), "abc");
    }
}
