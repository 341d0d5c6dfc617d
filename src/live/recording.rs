//! A live call's recording, written to disk as its audio arrives.
//!
//! Every sample a PBX sends goes into the call's [`Recording`] at once, outside the analysis
//! (which may shed work): audio is never dropped. While the call runs the recording is
//! `<recordings>/<UTC date>/<call id>.wav.part`, a WAV file whose header is brought up to date
//! at every checkpoint (each second of audio on every channel), so it is readable up to its last
//! checkpoint whatever happens to the process; its `NAME.json` sidecar is written when the call
//! begins. When the call ends the rest is written, the file renamed to `.wav`, and the call's
//! live record (how it ended, what was received) added to the sidecar ([`record_end`]); the
//! final pass then stores it. A server stopped between the two leaves a `.wav` with no stored
//! call, and [`recover`] finds that too.
//!
//! Why not keep the call in memory and write it at the end (as callqc did): a long call held
//! 32 KB per second of 8 kHz stereo until it ended, and a crash of the server lost every call
//! in progress. Now a call holds about a second of its audio (more only while one channel runs
//! ahead of the other, as an AudioSocket leg can), and [`recover`] turns what a crash left into
//! recordings the next start analyses.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::call::CallStart;
use crate::audio::frames::FrameEncoding;
use crate::audio::{ChannelMap, Role};
use crate::store::{IngestProtocol, LiveCallRecord, Source};

/// Seconds of audio on every channel between two checkpoints.
const CHECKPOINT_S: u32 = 1;

/// The channel map a batch run needs to read the recording as the live call had it.
pub(super) fn channel_map(roles: &[Role]) -> ChannelMap {
    match roles {
        [left, right] => ChannelMap {
            left: *left,
            right: *right,
        },
        _ => ChannelMap::default(),
    }
}

/// `<recordings>/<UTC date>/<call id>.wav`.
pub(super) fn recording_path(dir: &Path, call_id: &str, started_ms: i64) -> PathBuf {
    let (y, m, d) = crate::time::civil_date(started_ms.div_euclid(86_400_000));
    dir.join(format!("{y:04}-{m:02}-{d:02}"))
        .join(format!("{call_id}.wav"))
}

/// The file a recording has while its call runs.
fn part_path(path: &Path) -> PathBuf {
    path.with_extension("wav.part")
}

/// The sidecar beside a live recording: what `batch` reads (call and agent ids, channel map,
/// source, start) and what [`recover`] needs to store the call's live record.
#[derive(Debug, Serialize, Deserialize)]
struct LiveSidecar {
    call_id: String,
    agent_id: String,
    channel_map: ChannelMap,
    source: Source,
    started_at: String,
    started_ms: i64,
    protocol: IngestProtocol,
    peer: String,
    encoding: FrameEncoding,
    /// The recording's format, so that a call stopped before its first checkpoint is still
    /// stored (with no audio). 0 in sidecars of versions before it.
    #[serde(default)]
    sample_rate: u32,
    #[serde(default)]
    channels: u16,
    /// How the call ended, added when it did ([`record_end`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end: Option<LiveCallRecord>,
}

type Writer = hound::WavWriter<BufWriter<File>>;

/// What went wrong with a live recording, its sidecar or the recordings folder.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordingError {
    /// A file (or folder) could not be made, written, read, copied or renamed.
    #[error("{}: {action}: {reason}", path.display())]
    File {
        path: PathBuf,
        action: &'static str,
        reason: String,
    },
    /// The recordings folder is another running server's.
    #[error(
        "{}: in use by another callqc serve (process {holder}); one server per recordings folder",
        dir.display()
    )]
    FolderInUse { dir: PathBuf, holder: String },
}

fn fail(path: &Path, action: &'static str, e: impl std::fmt::Display) -> RecordingError {
    RecordingError::File {
        path: path.to_path_buf(),
        action,
        reason: e.to_string(),
    }
}

/// An error writing the recording `path` (its `.part` file, while the call runs).
fn err(path: &Path, action: &'static str, e: &dyn std::fmt::Display) -> RecordingError {
    fail(&part_path(path), action, e)
}

/// A live call's recording (see the module's doc).
pub struct Recording {
    /// The final name (`.wav`); the file is [`part_path`] of it until [`Recording::finish`].
    path: PathBuf,
    spec: hound::WavSpec,
    sidecar: LiveSidecar,
    sidecar_written: bool,
    writer: Option<Writer>,
    /// Samples received and not yet in the file, per channel.
    unwritten: Vec<Vec<i16>>,
    /// Samples on each channel's timeline: received plus [`Recording::pad`]ded.
    received: Vec<u64>,
    /// Silence put before a channel's first audio (it began after the call's).
    padded: Vec<u64>,
    /// When the call's first audio (of any channel) arrived.
    began: Option<std::time::Instant>,
    /// Frames (one sample of every channel) in the file as of its last checkpoint.
    checkpointed: u64,
    /// Frames written since the last checkpoint.
    since_checkpoint: u64,
    /// The first error writing it. From then on the audio stays in memory and the end tries
    /// once more to write it.
    error: Option<String>,
}

/// What a finished recording holds.
pub struct Finished {
    pub path: PathBuf,
    /// Samples received from the PBX, per channel (padding not counted).
    pub received: Vec<u64>,
    /// Samples received that are in the file, per channel.
    pub stored: Vec<u64>,
    pub error: Option<String>,
}

impl Recording {
    /// Begin the recording of a call: its folder, its sidecar, the WAV header. A failure here
    /// does not refuse the call: its audio is kept in memory and the end tries again.
    pub fn create(dir: &Path, start: &CallStart, started_ms: i64) -> Recording {
        let channels = start.roles.len();
        let mut rec = Recording {
            path: recording_path(dir, &start.call_id, started_ms),
            spec: hound::WavSpec {
                channels: channels as u16,
                sample_rate: start.sample_rate,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            },
            sidecar: LiveSidecar {
                call_id: start.call_id.clone(),
                agent_id: start.agent_id.clone(),
                channel_map: channel_map(&start.roles),
                source: Source::Live,
                started_at: crate::time::iso_utc(started_ms),
                started_ms,
                protocol: start.protocol,
                peer: start.peer.clone(),
                encoding: start.encoding,
                sample_rate: start.sample_rate,
                channels: channels as u16,
                end: None,
            },
            sidecar_written: false,
            writer: None,
            unwritten: vec![Vec::new(); channels],
            received: vec![0; channels],
            padded: vec![0; channels],
            began: None,
            checkpointed: 0,
            since_checkpoint: 0,
            error: None,
        };
        if let Err(e) = rec.open() {
            tracing::error!("call {}: {e}; its audio is kept in memory", start.call_id);
            rec.error = Some(e.to_string());
        }
        rec
    }

    /// The folder and sidecar (once), then the writer: a new file, or (after an error) the
    /// file as of its last checkpoint.
    fn open(&mut self) -> Result<(), RecordingError> {
        if !self.sidecar_written {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| err(&self.path, "cannot create folder", &e))?;
            }
            let json = serde_json::to_string_pretty(&self.sidecar).unwrap_or_default();
            std::fs::write(self.path.with_extension("json"), json)
                .map_err(|e| err(&self.path, "cannot write sidecar", &e))?;
            self.sidecar_written = true;
        }
        let part = part_path(&self.path);
        let w = if self.checkpointed == 0 {
            hound::WavWriter::create(&part, self.spec)
        } else {
            // Appending starts at the data length of the last checkpoint's header.
            hound::WavWriter::append(&part)
        };
        self.writer = Some(w.map_err(|e| err(&self.path, "cannot write", &e))?);
        self.since_checkpoint = 0;
        Ok(())
    }

    /// Samples on each channel's timeline (received and padded).
    pub fn received(&self) -> &[u64] {
        &self.received
    }

    /// The silence a channel whose first audio arrives `now` needs before it, so that it
    /// starts at the call's time: the time since the call's first audio, to the sample, less
    /// what the channel already holds. None for streams whose first audio arrives together
    /// (within a sample's time).
    pub fn gap_at(&self, channel: usize, now: std::time::Instant) -> usize {
        let Some(began) = self.began else { return 0 };
        let due = (now.saturating_duration_since(began).as_secs_f64()
            * f64::from(self.spec.sample_rate))
        .floor() as u64;
        due.saturating_sub(self.received.get(channel).copied().unwrap_or(0)) as usize
    }

    /// `n` samples of silence on one channel, before its first audio (not counted as received).
    pub fn pad(&mut self, channel: usize, n: usize) {
        if channel < self.padded.len() {
            self.padded[channel] += n as u64;
            self.append(channel, &vec![0; n]);
        }
    }

    /// Samples of one channel (`channel` < the call's channels: the caller checks).
    pub fn push(&mut self, channel: usize, pcm: &[i16]) {
        if self.began.is_none() && !pcm.is_empty() {
            self.began = Some(std::time::Instant::now());
        }
        self.append(channel, pcm);
    }

    fn append(&mut self, channel: usize, pcm: &[i16]) {
        let Some(buf) = self.unwritten.get_mut(channel) else {
            return;
        };
        buf.extend_from_slice(pcm);
        self.received[channel] += pcm.len() as u64;
        let ready = self.unwritten.iter().map(Vec::len).min().unwrap_or(0);
        if self.error.is_none()
            && ready >= (CHECKPOINT_S * self.spec.sample_rate) as usize
            && let Err(e) = self.write_frames(ready).and_then(|()| self.checkpoint())
        {
            tracing::error!("{e}; the rest of the call is kept in memory");
            self.error = Some(e.to_string());
            self.writer = None;
        }
    }

    /// Write the first `frames` frames of every channel (silence where a channel has fewer)
    /// and take them out of memory.
    fn write_frames(&mut self, frames: usize) -> Result<(), RecordingError> {
        let Some(w) = self.writer.as_mut() else {
            return Err(err(&self.path, "cannot write", &"not open"));
        };
        for i in 0..frames {
            for c in &self.unwritten {
                // A channel that stopped early (one AudioSocket leg hung up first) is silent.
                w.write_sample(c.get(i).copied().unwrap_or(0))
                    .map_err(|e| err(&self.path, "cannot write", &e))?;
            }
        }
        for c in &mut self.unwritten {
            c.drain(..frames.min(c.len()));
        }
        self.since_checkpoint += frames as u64;
        Ok(())
    }

    /// Bring the file's header up to date: from here it is readable as it stands.
    fn checkpoint(&mut self) -> Result<(), RecordingError> {
        let Some(w) = self.writer.as_mut() else {
            return Err(err(&self.path, "cannot write", &"not open"));
        };
        w.flush().map_err(|e| err(&self.path, "cannot write", &e))?;
        self.checkpointed += self.since_checkpoint;
        self.since_checkpoint = 0;
        Ok(())
    }

    /// The call ended: write the rest, finalize the header, rename the file to `.wav`.
    pub fn finish(mut self) -> Finished {
        let outcome = (|| -> Result<(), RecordingError> {
            if self.writer.is_none() {
                // An earlier error: one more try (the disk may have room again).
                self.open()?;
            }
            let rest = self.unwritten.iter().map(Vec::len).max().unwrap_or(0);
            self.write_frames(rest)?;
            if let Some(w) = self.writer.take() {
                w.finalize()
                    .map_err(|e| err(&self.path, "cannot write", &e))?;
            }
            self.checkpointed += self.since_checkpoint;
            self.since_checkpoint = 0;
            Ok(())
        })();
        let mut error = self.error.take();
        if let Err(e) = &outcome {
            tracing::error!("{e}");
            let e = e.to_string();
            error = Some(match error {
                Some(first) if first != e => format!("{first}; at the end: {e}"),
                _ => e,
            });
        }
        // What the last checkpoint holds is worth keeping even when the end failed.
        if (outcome.is_ok() || self.checkpointed > 0)
            && let Err(e) = std::fs::rename(part_path(&self.path), &self.path)
        {
            let e = err(&self.path, "cannot rename", &e).to_string();
            tracing::error!("{e}");
            error = Some(error.map_or(e.clone(), |first| format!("{first}; {e}")));
            self.checkpointed = 0;
        }
        let frames = self.checkpointed;
        let padded = &self.padded;
        Finished {
            stored: (self.received.iter().zip(padded))
                .map(|(&r, &p)| r.min(frames).saturating_sub(p))
                .collect(),
            received: (self.received.iter().zip(padded))
                .map(|(&r, &p)| r - p)
                .collect(),
            path: self.path,
            error,
        }
    }
}

/// The recordings folder, held by one server for as long as it runs. Recovery takes every
/// `.wav.part` it finds for a stopped server's, so a second server on the same folder — say,
/// started by mistake on the same configuration — must not get that far: it would take the
/// recordings of the calls the first one is running.
pub struct FolderLock {
    _file: File,
}

/// Take the recordings folder `dir` (created if need be) for this server, or say which
/// process has it. The lock is the kernel's (`flock`): it goes with the process, killed or not.
pub fn lock_folder(dir: &Path) -> Result<FolderLock, RecordingError> {
    let at = |action: &'static str, e: &dyn std::fmt::Display| fail(dir, action, e);
    std::fs::create_dir_all(dir).map_err(|e| at("cannot create folder", &e))?;
    let path = dir.join(".callqc-serve.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| at("cannot open its lock file", &e))?;
    #[cfg(unix)]
    {
        use std::io::{Read, Seek, Write};
        use std::os::unix::io::AsRawFd;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(RecordingError::FolderInUse {
                dir: dir.to_path_buf(),
                holder: holder.trim().to_string(),
            });
        }
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "{}", std::process::id());
    }
    Ok(FolderLock { _file: file })
}

/// Add the call's live record to the sidecar of its finished recording `path` (written to a
/// temporary file and renamed, so a kill leaves the old sidecar or the new one, whole).
pub(super) fn record_end(path: &Path, record: &LiveCallRecord) -> Result<(), RecordingError> {
    let sidecar = path.with_extension("json");
    let at = |action: &'static str, e: &dyn std::fmt::Display| fail(&sidecar, action, e);
    let text = std::fs::read_to_string(&sidecar).map_err(|e| at("cannot read", &e))?;
    let mut side: LiveSidecar =
        serde_json::from_str(&text).map_err(|e| at("not a live sidecar", &e))?;
    side.end = Some(record.clone());
    let json = serde_json::to_string_pretty(&side).map_err(|e| at("cannot write", &e))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, json).map_err(|e| at("cannot write", &e))?;
    std::fs::rename(&tmp, &sidecar).map_err(|e| at("cannot rename", &e))
}

/// How far a recording a stopped server left had got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// Still `.wav.part`: the call was in progress; kept up to its last checkpoint.
    InProgress,
    /// A whole `.wav`: the call had ended, its final pass had not been stored.
    Ended,
}

/// A recording a stopped server left without a stored call, as found at the next start.
pub struct Recovered {
    pub left: Left,
    pub path: PathBuf,
    pub call_id: String,
    pub agent_id: String,
    pub channel_map: ChannelMap,
    pub started_ms: i64,
    /// When the file was last written (the call's end, or the server's).
    pub ended_ms: i64,
    pub protocol: IngestProtocol,
    pub peer: String,
    pub encoding: FrameEncoding,
    pub sample_rate: u32,
    pub channels: usize,
    /// Frames of the recording (as of its last checkpoint, for one left in progress).
    pub frames: u64,
    /// The live record written when the call ended, if the server got that far.
    pub end: Option<LiveCallRecord>,
}

/// Every recording under `dir` (`<dir>/<date>/`) that a stopped server left without a stored
/// call: each `.wav.part` is turned into a `.wav` holding the audio up to its last checkpoint,
/// and each finished `.wav` with a live sidecar for whose call `is_stored` says no is taken as
/// it is. A file that cannot be read (stopped before its first checkpoint) or has no sidecar
/// is reported and left as it is.
pub fn recover(dir: &Path, is_stored: impl Fn(&str) -> bool) -> Vec<Recovered> {
    let mut found = Vec::new();
    for file in recording_files(dir) {
        let name = file.to_string_lossy();
        let outcome = if name.ends_with(".wav.part") {
            recover_part(&file)
        } else if name.ends_with(".wav") && file.with_extension("json").is_file() {
            // A recording is named after its call (`recording_path`): a stored call is skipped
            // without reading its files, so a start on a year of recordings costs one lookup
            // per file.
            if file
                .file_stem()
                .is_some_and(|stem| is_stored(&stem.to_string_lossy()))
            {
                continue;
            }
            match finished(&file) {
                Ok(r) if is_stored(&r.call_id) => continue,
                other => other,
            }
        } else {
            continue;
        };
        match outcome {
            Ok(r) => {
                let seconds = r.frames as f64 / f64::from(r.sample_rate.max(1));
                match r.left {
                    Left::InProgress => tracing::warn!(
                        "call {}: the server stopped while it ran; recovered {seconds:.1} s of audio from {}",
                        r.call_id,
                        file.display()
                    ),
                    Left::Ended => tracing::warn!(
                        "call {}: the server stopped before its final pass was stored; storing {} ({seconds:.1} s)",
                        r.call_id,
                        file.display()
                    ),
                }
                found.push(r);
            }
            Err(e) => tracing::error!("not recovered: {e}"),
        }
    }
    found
}

/// Every file in the day folders of the recordings folder `dir`, sorted (none if it cannot be
/// read).
pub fn recording_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(days) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = days
        .flatten()
        .filter(|d| d.path().is_dir())
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .map(|f| f.path())
        .collect();
    files.sort();
    files
}

fn sidecar_of(path: &Path) -> Result<LiveSidecar, RecordingError> {
    let file = path.with_extension("json");
    let sidecar = std::fs::read_to_string(&file).map_err(|e| fail(&file, "no sidecar", e))?;
    serde_json::from_str(&sidecar).map_err(|e| fail(&file, "not a live sidecar", e))
}

fn modified_ms(path: &Path, otherwise: i64) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(otherwise, |d| d.as_millis() as i64)
}

fn recovered(
    left: Left,
    path: PathBuf,
    side: LiveSidecar,
    spec: hound::WavSpec,
    frames: u64,
    ended_ms: i64,
) -> Recovered {
    Recovered {
        left,
        path,
        call_id: side.call_id,
        agent_id: side.agent_id,
        channel_map: side.channel_map,
        started_ms: side.started_ms,
        ended_ms,
        protocol: side.protocol,
        peer: side.peer,
        encoding: side.encoding,
        sample_rate: spec.sample_rate,
        channels: usize::from(spec.channels),
        frames,
        end: side.end,
    }
}

/// A finished recording, read as it is (its header is whole).
fn finished(path: &Path) -> Result<Recovered, RecordingError> {
    let side = sidecar_of(path)?;
    let reader = hound::WavReader::open(path).map_err(|e| fail(path, "unreadable", e))?;
    let (spec, frames) = (reader.spec(), u64::from(reader.duration()));
    let ended_ms = modified_ms(path, side.started_ms);
    Ok(recovered(
        Left::Ended,
        path.to_path_buf(),
        side,
        spec,
        frames,
        ended_ms,
    ))
}

fn recover_part(part: &Path) -> Result<Recovered, RecordingError> {
    // `X.wav.part` → `X.wav`, sidecar `X.json`.
    let path = part.with_extension("");
    let side = sidecar_of(&path)?;
    let ended_ms = modified_ms(part, side.started_ms);
    let mut reader = match hound::WavReader::open(part) {
        Ok(r) => r,
        // Stopped before its first checkpoint: the call is stored, with no audio.
        Err(e) if side.sample_rate > 0 && side.channels > 0 => {
            let spec = hound::WavSpec {
                channels: side.channels,
                sample_rate: side.sample_rate,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            tracing::warn!(
                "{}: no checkpoint ({e}): the call is stored with no audio",
                part.display()
            );
            hound::WavWriter::create(&path, spec)
                .and_then(|w| w.finalize())
                .map_err(|e| fail(&path, "cannot write an empty recording", e))?;
            std::fs::remove_file(part).map_err(|e| fail(part, "cannot remove", e))?;
            return Ok(recovered(Left::InProgress, path, side, spec, 0, ended_ms));
        }
        Err(e) => return Err(fail(part, "unreadable (no checkpoint?)", e)),
    };
    let spec = reader.spec();
    if spec.bits_per_sample != 16 || spec.sample_format != hound::SampleFormat::Int {
        return Err(fail(part, "not a callqc recording", "not 16-bit PCM"));
    }
    // Copied rather than renamed: bytes past the last checkpoint's header may follow its data.
    let copy = part.with_extension("recovering");
    let copied = (|| -> Result<u64, hound::Error> {
        let mut w = hound::WavWriter::create(&copy, spec)?;
        let channels = usize::from(spec.channels.max(1));
        let mut frame = Vec::with_capacity(channels);
        // Only whole frames; a read error ends what is kept (the rest was never checkpointed).
        for s in reader.samples::<i16>() {
            let Ok(s) = s else { break };
            frame.push(s);
            if frame.len() == channels {
                for &s in &frame {
                    w.write_sample(s)?;
                }
                frame.clear();
            }
        }
        let frames = u64::from(w.duration());
        w.finalize()?;
        Ok(frames)
    })();
    let frames = match copied {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_file(&copy);
            return Err(fail(part, "cannot copy", e));
        }
    };
    std::fs::rename(&copy, &path).map_err(|e| fail(&copy, "cannot rename", e))?;
    std::fs::remove_file(part).map_err(|e| fail(part, "cannot remove", e))?;
    Ok(recovered(
        Left::InProgress,
        path,
        side,
        spec,
        frames,
        ended_ms,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::frames::FrameEncoding;

    fn start(call_id: &str) -> CallStart {
        CallStart {
            call_id: call_id.into(),
            agent_id: "1001".into(),
            roles: vec![Role::Agent, Role::Caller],
            sample_rate: 8000,
            encoding: FrameEncoding::Pcmu,
            protocol: IngestProtocol::WebSocket,
            peer: "127.0.0.1:5000".into(),
        }
    }

    /// 20 ms frames of both channels, channel 1 the negation of channel 0.
    fn stream(rec: &mut Recording, frames: usize) {
        for f in 0..frames {
            let pcm: Vec<i16> = (0..160).map(|i| ((f * 160 + i) % 3000) as i16).collect();
            let neg: Vec<i16> = pcm.iter().map(|s| -s).collect();
            rec.push(0, &pcm);
            rec.push(1, &neg);
        }
    }

    fn wav_frames(path: &Path) -> Vec<[i16; 2]> {
        let mut r = hound::WavReader::open(path).unwrap();
        let s: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
        s.chunks(2).map(|c| [c[0], c[1]]).collect()
    }

    #[test]
    fn a_running_call_is_on_disk_to_its_last_checkpoint_and_whole_at_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let started_ms = 1_764_579_000_000; // 2025-12-01
        let mut rec = Recording::create(dir.path(), &start("c-1"), started_ms);
        stream(&mut rec, 130); // 2.6 s
        let part = dir.path().join("2025-12-01/c-1.wav.part");
        // Readable while the call runs: two whole checkpoints, the rest still in memory.
        assert_eq!(wav_frames(&part).len(), 16_000);
        assert!(rec.unwritten.iter().all(|c| c.len() == 4_800));
        // One channel runs ahead: only whole frames of both go to disk.
        rec.push(0, &[7; 8000]);
        assert_eq!(wav_frames(&part).len(), 16_000);
        let done = rec.finish();
        assert_eq!(done.error, None);
        assert_eq!(done.received, vec![20_800 + 8000, 20_800]);
        assert_eq!(done.stored, done.received);
        assert!(!part.exists());
        let frames = wav_frames(&done.path);
        assert_eq!(frames.len(), 28_800);
        assert!(frames[..20_800].iter().all(|[a, b]| *a == -*b));
        // The channel that stopped early is silent to the end.
        assert!(frames[20_800..].iter().all(|f| *f == [7, 0]));
        let side: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(done.path.with_extension("json")).unwrap(),
        )
        .unwrap();
        assert_eq!(side["call_id"], "c-1");
        assert_eq!(side["source"], "live");
        assert_eq!(side["channel_map"]["left"], "agent");
    }

    #[test]
    fn a_recording_the_server_never_finished_is_recovered_to_its_last_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recording::create(dir.path(), &start("c-2"), 1_764_579_000_000);
        stream(&mut rec, 130);
        // What a kill leaves: no end, buffered bytes never written, the header as of the last
        // checkpoint.
        std::mem::forget(rec);
        // And a part file with no checkpoint at all (its sidecar is there).
        let mut early = Recording::create(dir.path(), &start("c-3"), 1_764_579_000_000);
        stream(&mut early, 10);
        std::mem::forget(early);

        let found = recover(dir.path(), |_| false);
        assert_eq!(
            found.len(),
            2,
            "{:?}",
            found.iter().map(|r| &r.call_id).collect::<Vec<_>>()
        );
        // The call stopped before its first checkpoint is kept, with no audio.
        assert_eq!((found[1].call_id.as_str(), found[1].frames), ("c-3", 0));
        let r = &found[0];
        assert_eq!(r.left, Left::InProgress);
        assert!(r.end.is_none());
        assert_eq!(r.call_id, "c-2");
        assert_eq!((r.frames, r.channels, r.sample_rate), (16_000, 2, 8000));
        assert_eq!(r.protocol, IngestProtocol::WebSocket);
        assert_eq!(r.encoding, FrameEncoding::Pcmu);
        let frames = wav_frames(&r.path);
        assert_eq!(frames.len(), 16_000);
        assert!(frames.iter().all(|[a, b]| *a == -*b));
        let day = dir.path().join("2025-12-01");
        assert!(!day.join("c-2.wav.part").exists());
        assert!(!day.join("c-2.wav.recovering").exists());
        // The second time it is a finished recording: taken again only while its call is not
        // stored.
        let again = recover(dir.path(), |_| false);
        assert_eq!(again.len(), 2);
        assert_eq!((again[0].left, again[0].frames), (Left::Ended, 16_000));
        assert!(recover(dir.path(), |id| id == "c-2" || id == "c-3").is_empty());
    }

    #[test]
    fn a_call_that_ended_before_its_final_pass_is_recovered_with_its_end_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recording::create(dir.path(), &start("c-4"), 1_764_579_000_000);
        stream(&mut rec, 100);
        let done = rec.finish();
        let record = LiveCallRecord {
            call_key: "c-4".into(),
            agent_id: Some("1001".into()),
            protocol: IngestProtocol::WebSocket,
            peer: "127.0.0.1:5000".into(),
            started_ms: 1_764_579_000_000,
            ended_ms: 1_764_579_002_000,
            end_reason: crate::store::EndReason::Hangup,
            error: None,
            recording: done.path.display().to_string(),
            sample_rate: 8000,
            encoding: FrameEncoding::Pcmu,
            samples_received: done.received.clone(),
            samples_stored: done.stored.clone(),
            shed_utterances: 0,
            alerts: 2,
        };
        record_end(&done.path, &record).unwrap();
        let found = recover(dir.path(), |_| false);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].left, Left::Ended);
        assert_eq!(found[0].end.as_ref(), Some(&record));
        assert_eq!(found[0].frames, 16_000);
        assert!(recover(dir.path(), |id| id == "c-4").is_empty());
    }

    #[test]
    fn a_late_stream_is_padded_by_arrival_time_and_the_padding_is_not_received() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recording::create(dir.path(), &start("c-5"), 1_764_579_000_000);
        assert_eq!(rec.gap_at(1, std::time::Instant::now()), 0, "no audio yet");
        rec.push(0, &[5; 160]);
        let began = rec.began.unwrap();
        // The other stream's first audio at the same instant needs nothing; 0.5 s later, 0.5 s.
        assert_eq!(rec.gap_at(1, began), 0);
        let half = began + std::time::Duration::from_millis(500);
        assert_eq!(rec.gap_at(1, half), 4000);
        rec.pad(1, 4000);
        rec.push(1, &[9; 160]);
        let done = rec.finish();
        assert_eq!(done.received, vec![160, 160]);
        assert_eq!(done.stored, vec![160, 160]);
        let frames = wav_frames(&done.path);
        assert_eq!(frames.len(), 4160);
        assert_eq!(frames[4000], [0, 9]);
    }

    #[test]
    fn one_server_at_a_time_holds_a_recordings_folder() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_folder(dir.path()).unwrap();
        let refused = lock_folder(dir.path())
            .err()
            .expect("a second server is refused");
        assert!(
            refused
                .to_string()
                .contains("in use by another callqc serve"),
            "{refused}"
        );
        assert!(
            refused
                .to_string()
                .contains(&std::process::id().to_string()),
            "{refused}"
        );
        drop(held);
        assert!(
            lock_folder(dir.path()).is_ok(),
            "free again once the first one stops"
        );
    }
}
