//! Recordings as recorders compress them: MP3, FLAC and Ogg Vorbis, through symphonia. Chosen
//! by the file's first bytes, not its name (recorders name files oddly); decoded whole into the
//! same [`Recording`] as a WAV (f32 per channel at the file's own rate).
//!
//! Policy, as for WAV: a stream cut short (a recorder that died) is decoded up to the cut with a
//! warning; a frame that does not decode is skipped with a warning; a file with no decodable
//! audio, more than two channels or a rate outside 8–48 kHz is an error naming the file.
//! Nothing here panics on input: symphonia's errors are all mapped to [`AudioError`].

use std::io::Cursor;
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::DecoderOptions;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::{AudioError, Encoding, Recording};

/// The compressed containers callqc decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compressed {
    Mp3,
    Flac,
    OggVorbis,
}

impl Compressed {
    /// Which one `bytes` is, by its magic: `ID3` or an MPEG audio frame sync, `fLaC`, `OggS`.
    pub fn sniff(bytes: &[u8]) -> Option<Compressed> {
        if bytes.starts_with(b"fLaC") {
            Some(Compressed::Flac)
        } else if bytes.starts_with(b"OggS") {
            Some(Compressed::OggVorbis)
        } else if bytes.starts_with(b"ID3")
            || (bytes.len() >= 2 && bytes[0] == 0xFF && (bytes[1] & 0xE0) == 0xE0)
        {
            Some(Compressed::Mp3)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Compressed::Mp3 => "MP3",
            Compressed::Flac => "FLAC",
            Compressed::OggVorbis => "Ogg Vorbis",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Compressed::Mp3 => "mp3",
            Compressed::Flac => "flac",
            Compressed::OggVorbis => "ogg",
        }
    }

    fn encoding(self) -> Encoding {
        match self {
            Compressed::Mp3 => Encoding::Mp3,
            Compressed::Flac => Encoding::Flac,
            Compressed::OggVorbis => Encoding::Vorbis,
        }
    }
}

fn corrupt(path: &Path, kind: Compressed, reason: impl std::fmt::Display) -> AudioError {
    AudioError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("{}: {reason}", kind.name()),
    }
}

fn unsupported(path: &Path, kind: Compressed, reason: impl std::fmt::Display) -> AudioError {
    AudioError::Unsupported {
        path: path.to_path_buf(),
        reason: format!("{}: {reason}", kind.name()),
    }
}

/// Decode a compressed recording held in memory.
pub fn decode(
    path: &Path,
    bytes: &[u8],
    kind: Compressed,
    rates: std::ops::RangeInclusive<u32>,
) -> Result<Recording, AudioError> {
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let mut hint = Hint::new();
    hint.with_extension(kind.extension());
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            source,
            // Gapless: the encoder's delay and padding (an MP3's LAME header says how much) are
            // trimmed, so times in the call match the recording the MP3 was made from.
            &FormatOptions {
                enable_gapless: true,
                ..FormatOptions::default()
            },
            &MetadataOptions::default(),
        )
        .map_err(|e| corrupt(path, kind, format!("not a readable stream ({e})")))?;
    let mut format = probed.format;
    let track = format
        .default_track()
        .ok_or_else(|| corrupt(path, kind, "no audio track"))?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|e| unsupported(path, kind, e))?;

    let mut channels: Vec<Vec<f32>> = Vec::new();
    let mut rate = params.sample_rate.unwrap_or(0);
    let mut skipped = 0usize;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => break,
            Err(e) => {
                if channels.first().is_some_and(|c| !c.is_empty()) {
                    tracing::warn!(
                        "{}: {} stream breaks off ({e}); keeping the audio before it",
                        path.display(),
                        kind.name()
                    );
                    break;
                }
                return Err(corrupt(path, kind, e));
            }
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            Err(SymError::DecodeError(_)) | Err(SymError::IoError(_)) => {
                skipped += 1;
                continue;
            }
            Err(e) => return Err(corrupt(path, kind, e)),
        };
        let spec = *decoded.spec();
        let n = spec.channels.count();
        if n == 0 || n > 2 {
            return Err(unsupported(
                path,
                kind,
                format!("{n} channels (mono or stereo only)"),
            ));
        }
        if channels.is_empty() {
            channels = vec![Vec::new(); n];
            rate = spec.rate;
        } else if channels.len() != n || rate != spec.rate {
            return Err(unsupported(
                path,
                kind,
                "the channel count or sample rate changes within the stream",
            ));
        }
        let frames = decoded.frames();
        if frames == 0 {
            continue;
        }
        let mut buf = SampleBuffer::<f32>::new(decoded.capacity() as u64, spec);
        buf.copy_planar_ref(decoded);
        let samples = buf.samples();
        for (c, out) in channels.iter_mut().enumerate() {
            if let Some(part) = samples.get(c * frames..(c + 1) * frames) {
                out.extend(part.iter().map(|s| {
                    if s.is_finite() {
                        s.clamp(-1.0, 1.0)
                    } else {
                        0.0
                    }
                }));
            }
        }
    }
    if skipped > 0 {
        tracing::warn!(
            "{}: {skipped} {} frames did not decode and were skipped",
            path.display(),
            kind.name()
        );
    }
    if channels.first().is_none_or(|c| c.is_empty()) {
        return Err(corrupt(path, kind, "no decodable audio"));
    }
    if !rates.contains(&rate) {
        return Err(unsupported(
            path,
            kind,
            format!(
                "sample rate {rate} Hz (supported: {}..={} Hz)",
                rates.start(),
                rates.end()
            ),
        ));
    }
    Ok(Recording {
        path: path.to_path_buf(),
        sample_rate: rate,
        encoding: kind.encoding(),
        channels,
    })
}
