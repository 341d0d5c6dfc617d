//! Decode telephone WAV files into a [`Recording`]: f32 samples in [-1, 1], one `Vec` per
//! channel, at the file's own sample rate.
//!
//! Supported: PCM integer (8-bit unsigned, 16/24/32-bit signed, also fewer valid bits in such
//! a container), 32-bit IEEE float, G.711 μ-law (format tag 7) and A-law (format tag 6), and
//! `WAVE_FORMAT_EXTENSIBLE` wrapping any of these; mono or stereo; 8000..=48000 Hz. MP3, FLAC
//! and Ogg Vorbis files (told apart by their first bytes) go to [`super::compressed`].
//!
//! The RIFF container is walked here, by hand, for every file: hound does not know G.711,
//! skips odd-sized chunks without their pad byte, rejects a wrong byte rate, reads
//! left-justified 24-in-32 samples 256 times too loud, and cannot decode a file whose data
//! chunk is cut short. Once the walker has validated the header and found the whole frames
//! that are present, PCM and float sample data goes through hound behind a canonical header
//! we build ourselves; G.711 is expanded with the ITU algorithm below.
//!
//! Truncated data policy: a call recorder that dies mid-call leaves a data chunk shorter than
//! its header declares. Such a file is accepted: every whole frame present is decoded and a
//! `tracing` warning says how much is missing. A data length that is a writer's placeholder
//! (0xFFFFFFFF, or 0 followed by audio rather than another chunk) means "to the end of the
//! file", also with a warning. A broken `fmt` chunk, or a file with no whole frame at all, is
//! an error.
//!
//! Nothing in here may panic on any input: every read is bounds-checked and arithmetic on
//! header values is done in `u64`/checked.

use std::io::{Cursor, Read};
use std::path::Path;

use super::{AudioError, Encoding, Recording};

/// Lowest and highest sample rate we accept (narrow-band telephony to studio rate).
const MIN_RATE: u32 = 8_000;
const MAX_RATE: u32 = 48_000;

const TAG_PCM: u16 = 0x0001;
const TAG_FLOAT: u16 = 0x0003;
const TAG_ALAW: u16 = 0x0006;
const TAG_MULAW: u16 = 0x0007;
const TAG_EXTENSIBLE: u16 = 0xFFFE;

/// Bytes 2..16 of every `KSDATAFORMAT_SUBTYPE_*` GUID that wraps a plain format tag
/// (`{0000xxxx-0000-0010-8000-00AA00389B71}`); bytes 0..2 are that tag, little-endian.
const KSDATAFORMAT_SUFFIX: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];

/// Read a whole file and decode it. See the module docs for what is accepted.
pub fn decode_file(path: &Path) -> Result<Recording, AudioError> {
    let bytes = super::read_recording(path)?;
    decode_bytes(path, &bytes)
}

/// Decode a WAV file already in memory. `path_for_messages` is only used to name the file in
/// errors and warnings, and is stored in [`Recording::path`].
pub fn decode_bytes(path_for_messages: &Path, bytes: &[u8]) -> Result<Recording, AudioError> {
    let path = path_for_messages;
    if let Some(kind) = super::compressed::Compressed::sniff(bytes) {
        return super::compressed::decode(path, bytes, kind, MIN_RATE..=MAX_RATE);
    }
    let layout = walk(path, bytes)?;
    let format = interpret_fmt(path, &layout.fmt)?;

    let frame_bytes = u64::from(format.block_align);
    let declared = layout.data_declared;
    let present = layout.data_present;
    let frames = present / frame_bytes;
    if frames == 0 {
        return Err(corrupt(
            path,
            if declared == 0 {
                "data chunk is empty (0 bytes of audio)".to_string()
            } else {
                format!(
                    "no complete audio frame: the data chunk declares {declared} bytes, \
                     {present} are present, one frame is {frame_bytes} bytes"
                )
            },
        ));
    }
    if let Some(raw) = layout.data_placeholder {
        tracing::warn!(
            "{}: data chunk length is a placeholder (0x{raw:X}), the recorder probably never \
             finished the file; decoding the {frames} whole frames up to its end ({:.2} s)",
            path.display(),
            frames as f64 / f64::from(format.sample_rate)
        );
    } else if present < declared {
        tracing::warn!(
            "{}: truncated WAV: data chunk declares {declared} bytes but only {present} are \
             present; decoding the {frames} whole frames there ({:.2} s)",
            path.display(),
            frames as f64 / f64::from(format.sample_rate)
        );
    } else if present % frame_bytes != 0 {
        tracing::warn!(
            "{}: data chunk length {present} is not a whole number of {frame_bytes}-byte \
             frames; ignoring the last {} bytes",
            path.display(),
            present % frame_bytes
        );
    }

    // `frames * frame_bytes <= present <= bytes.len()`, so both conversions and the slice
    // are in range.
    let start = layout.data_start as usize;
    let data = &bytes[start..start + (frames * frame_bytes) as usize];
    let channels = match format.kind {
        SampleKind::MuLaw => expand_g711(data, format.channels, ulaw_to_linear),
        SampleKind::ALaw => expand_g711(data, format.channels, alaw_to_linear),
        SampleKind::Int | SampleKind::Float => decode_with_hound(path, &format, data)?,
    };

    Ok(Recording {
        path: path.to_path_buf(),
        sample_rate: format.sample_rate,
        encoding: format.encoding,
        channels,
    })
}

fn corrupt(path: &Path, reason: impl Into<String>) -> AudioError {
    AudioError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn unsupported(path: &Path, reason: impl Into<String>) -> AudioError {
    AudioError::Unsupported {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// RIFF walking

/// Where the interesting chunks are. All offsets are into the file's bytes and in range.
struct Layout {
    fmt: Vec<u8>,
    data_start: u64,
    /// What the data chunk header says (or the bytes to EOF when it holds a placeholder).
    data_declared: u64,
    /// How many of those bytes the file really holds.
    data_present: u64,
    /// The data length field, when it was an unfinished writer's placeholder, not a length.
    data_placeholder: Option<u32>,
}

fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Describe the start of a file that is not RIFF, so the user can tell what they have: the
/// first characters if it is text (in any script: call notes are often not in English), else
/// the first bytes in hex, plus the format's name when the magic number is a known one.
fn describe_start(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(8)];
    let text: String = String::from_utf8_lossy(&bytes[..bytes.len().min(32)])
        .chars()
        .take(8)
        .collect();
    let is_text = !text.is_empty()
        && text
            .chars()
            .all(|c| c != char::REPLACEMENT_CHARACTER && (!c.is_control() || c.is_whitespace()))
        // A multi-byte character cut at byte 32 is fine, but binary with a few valid UTF-8
        // sequences is not text: demand the first 8 bytes be text too.
        && std::str::from_utf8(head).map_or_else(|e| e.error_len().is_none(), |_| true);
    let start = if is_text {
        // `escape_debug` keeps the message on one line even if the text has newlines.
        format!("starts with \"{}\"", text.escape_debug())
    } else {
        let hex: Vec<String> = head.iter().map(|b| format!("{b:02X}")).collect();
        format!("starts with bytes {}", hex.join(" "))
    };
    let known = if bytes.starts_with(b"#!AMR") {
        Some("AMR")
    } else if bytes.get(4..8) == Some(b"ftyp") {
        Some("MP4/M4A")
    } else if bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        Some("Matroska/WebM")
    } else {
        None
    };
    match known {
        Some(name) => format!("{start}; looks like {name}, convert it to WAV first"),
        None => start,
    }
}

/// Whether `rest` starts with something shaped like a RIFF chunk header: a printable ASCII id
/// and a length that fits in the file. Audio samples almost never look like that.
fn looks_like_chunk(rest: &[u8]) -> bool {
    let (Some(id), Some(size)) = (rest.get(..4), le_u32(rest, 4)) else {
        return false;
    };
    id.iter().all(|&b| b.is_ascii_alphanumeric() || b == b' ')
        && u64::from(size) <= rest.len() as u64 - 8
}

/// A chunk id for messages: printable ASCII as-is, anything else escaped.
fn id_str(id: &[u8]) -> String {
    id.iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                (b as char).to_string()
            } else {
                format!("\\x{b:02X}")
            }
        })
        .collect()
}

fn walk(path: &Path, bytes: &[u8]) -> Result<Layout, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::Empty {
            path: path.to_path_buf(),
        });
    }
    let magic = &bytes[..bytes.len().min(4)];
    if !b"RIFF".starts_with(magic) {
        let reason = match magic {
            b"RIFX" | b"RF64" | b"BW64" => {
                return Err(unsupported(
                    path,
                    format!(
                        "{} container (only little-endian RIFF WAV up to 4 GiB is supported)",
                        id_str(magic)
                    ),
                ));
            }
            _ => describe_start(bytes),
        };
        return Err(AudioError::NotWav {
            path: path.to_path_buf(),
            reason,
        });
    }
    if bytes.len() < 12 {
        return Err(corrupt(
            path,
            format!(
                "truncated header: the file is only {} bytes long",
                bytes.len()
            ),
        ));
    }
    if &bytes[8..12] != b"WAVE" {
        return Err(AudioError::NotWav {
            path: path.to_path_buf(),
            reason: format!(
                "a RIFF file of type '{}', not WAVE audio",
                id_str(&bytes[8..12])
            ),
        });
    }

    // The RIFF size field is not trusted: recorders that die leave it stale or zero, so the
    // chunks are walked up to the real end of the file.
    let len = bytes.len() as u64;
    let mut pos: u64 = 12;
    let mut fmt: Option<Vec<u8>> = None;
    let mut data: Option<(u64, u64, u64, Option<u32>)> = None;
    while pos < len {
        if len - pos < 8 {
            if fmt.is_some() && data.is_some() {
                break; // trailing junk after the chunks we need
            }
            return Err(corrupt(
                path,
                format!(
                    "truncated header: a chunk header at byte {pos} is cut off by the end of \
                     the file ({len} bytes)"
                ),
            ));
        }
        let p = pos as usize;
        let id = &bytes[p..p + 4];
        let size = u64::from(le_u32(bytes, p + 4).unwrap_or(0));
        let body = pos + 8;
        let remaining = len - body;
        match id {
            b"fmt " if fmt.is_none() => {
                if size > remaining {
                    return Err(corrupt(
                        path,
                        format!(
                            "truncated header: the fmt chunk declares {size} bytes but only \
                             {remaining} remain in the file"
                        ),
                    ));
                }
                fmt = Some(bytes[body as usize..(body + size) as usize].to_vec());
            }
            b"data" if data.is_none() => {
                // Streaming writers put a placeholder length in the header and fix it when the
                // file is closed; a recorder that died never did. 0xFFFFFFFF is the documented
                // "unknown" value; 0 followed by bytes that are not another chunk is the same
                // thing. Either way the audio runs to the end of the file.
                let placeholder = size == 0xFFFF_FFFF
                    || (size == 0 && remaining > 0 && !looks_like_chunk(&bytes[body as usize..]));
                let declared = if placeholder { remaining } else { size };
                let raw = placeholder.then_some(size as u32);
                data = Some((body, declared, declared.min(remaining), raw));
                if fmt.is_some() {
                    break; // everything after the data chunk is metadata we do not need
                }
                if declared > remaining {
                    break; // a truncated data chunk is the last thing in the file
                }
            }
            _ => {}
        }
        // Chunks are padded to an even length (RIFF rule); the pad byte is not in `size`.
        pos = body + size + (size & 1);
    }

    let Some(fmt) = fmt else {
        return Err(corrupt(
            path,
            if data.is_some() {
                "no fmt chunk before the audio data".to_string()
            } else {
                format!("truncated header: no fmt chunk in the file's {len} bytes")
            },
        ));
    };
    let Some((data_start, data_declared, data_present, data_placeholder)) = data else {
        return Err(corrupt(
            path,
            format!("truncated header: no data chunk in the file's {len} bytes"),
        ));
    };
    Ok(Layout {
        fmt,
        data_start,
        data_declared,
        data_present,
        data_placeholder,
    })
}

// ---------------------------------------------------------------------------------------------
// fmt chunk

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SampleKind {
    Int,
    Float,
    MuLaw,
    ALaw,
}

/// A validated description of the sample data.
#[derive(Debug, Clone, Copy)]
struct Format {
    kind: SampleKind,
    encoding: Encoding,
    channels: u16,
    sample_rate: u32,
    block_align: u16,
    /// Bits of each sample's container: 8, 16, 24 or 32.
    container_bits: u16,
}

/// Names for format tags that telephony systems produce and we do not decode, so the error
/// tells the user what they have.
fn tag_name(tag: u16) -> Option<&'static str> {
    Some(match tag {
        0x0002 => "Microsoft ADPCM",
        0x0011 => "IMA ADPCM",
        0x0014 => "G.723 ADPCM",
        0x0031 => "GSM 6.10",
        0x0040 => "G.721 ADPCM",
        0x0050 => "MPEG audio",
        0x0055 => "MPEG Layer 3 (MP3)",
        0x0064 => "G.726 ADPCM",
        _ => return None,
    })
}

fn interpret_fmt(path: &Path, fmt: &[u8]) -> Result<Format, AudioError> {
    if fmt.len() < 16 {
        return Err(corrupt(
            path,
            format!(
                "fmt chunk is {} bytes, a WAV fmt chunk needs at least 16",
                fmt.len()
            ),
        ));
    }
    // All reads below are within the 16 bytes just checked, or checked themselves.
    let tag = le_u16(fmt, 0).unwrap_or(0);
    let channels = le_u16(fmt, 2).unwrap_or(0);
    let sample_rate = le_u32(fmt, 4).unwrap_or(0);
    let block_align = le_u16(fmt, 12).unwrap_or(0);
    let bits = le_u16(fmt, 14).unwrap_or(0);

    // Unwrap WAVE_FORMAT_EXTENSIBLE to the format tag it carries in its SubFormat GUID.
    let (real_tag, valid_bits, extensible) = if tag == TAG_EXTENSIBLE {
        let cb_size = le_u16(fmt, 16).unwrap_or(0);
        if fmt.len() < 40 || cb_size < 22 {
            return Err(corrupt(
                path,
                format!(
                    "WAVE_FORMAT_EXTENSIBLE fmt chunk is too short ({} bytes, extension size \
                     {cb_size}; need 40 and 22)",
                    fmt.len()
                ),
            ));
        }
        let valid = le_u16(fmt, 18).unwrap_or(0);
        let guid = &fmt[24..40];
        if guid[2..] != KSDATAFORMAT_SUFFIX {
            let hex: Vec<String> = guid.iter().map(|b| format!("{b:02X}")).collect();
            return Err(unsupported(
                path,
                format!(
                    "WAVE_FORMAT_EXTENSIBLE with unknown sub-format GUID {}",
                    hex.join("")
                ),
            ));
        }
        // wValidBitsPerSample 0 is written by some tools to mean "all of the container".
        let valid = if valid == 0 { bits } else { valid };
        (u16::from_le_bytes([guid[0], guid[1]]), valid, true)
    } else {
        (tag, bits, false)
    };

    if channels == 0 {
        return Err(corrupt(path, "fmt chunk says the file has 0 channels"));
    }
    if channels > 2 {
        return Err(unsupported(
            path,
            format!("{channels} channels (only mono and stereo calls are supported)"),
        ));
    }
    if !(MIN_RATE..=MAX_RATE).contains(&sample_rate) {
        return Err(unsupported(
            path,
            format!("sample rate {sample_rate} Hz (supported: {MIN_RATE} to {MAX_RATE} Hz)"),
        ));
    }

    // Bits per sample as the frame layout stores them. For PCM the container is what the
    // block align says: besides the standard layouts, files in the wild put 24-bit samples
    // in 4-byte containers with a plain PCM header.
    let mut container_bits = bits;
    let (kind, encoding) = match real_tag {
        TAG_PCM => {
            let per_sample = u32::from(block_align / channels) * 8;
            if block_align.is_multiple_of(channels) && per_sample >= u32::from(bits) {
                container_bits = u16::try_from(per_sample).unwrap_or(u16::MAX);
            }
            if ![8, 16, 24, 32].contains(&container_bits) {
                return Err(unsupported(
                    path,
                    format!("{container_bits}-bit PCM (supported: 8, 16, 24 and 32-bit)"),
                ));
            }
            // Fewer valid bits than the container (12 in 16, 20 in 24, 24 in 32) are fine: see
            // `fix_justification`. Fewer than 8, or more than the container, is nonsense.
            let valid = valid_bits;
            if !(8..=container_bits).contains(&valid) {
                return Err(corrupt(
                    path,
                    format!("{valid} valid bits in a {container_bits}-bit sample container"),
                ));
            }
            (SampleKind::Int, Encoding::PcmInt { bits: valid })
        }
        TAG_FLOAT => {
            if bits != 32 {
                return Err(unsupported(
                    path,
                    format!("{bits}-bit float samples (only 32-bit float is supported)"),
                ));
            }
            (SampleKind::Float, Encoding::Float32)
        }
        TAG_MULAW | TAG_ALAW => {
            let name = if real_tag == TAG_MULAW {
                "mu-law"
            } else {
                "A-law"
            };
            if bits != 8 {
                return Err(unsupported(
                    path,
                    format!("G.711 {name} with {bits} bits per sample (must be 8)"),
                ));
            }
            if real_tag == TAG_MULAW {
                (SampleKind::MuLaw, Encoding::MuLaw)
            } else {
                (SampleKind::ALaw, Encoding::ALaw)
            }
        }
        other => {
            let what = match tag_name(other) {
                Some(name) => format!("{name} (format tag 0x{other:04X})"),
                None => format!("format tag 0x{other:04X}"),
            };
            let wrapped = if extensible {
                " in WAVE_FORMAT_EXTENSIBLE"
            } else {
                ""
            };
            return Err(unsupported(
                path,
                format!(
                    "{what}{wrapped}; supported are PCM, 32-bit float, mu-law and A-law \
                     (convert with `sox IN -e signed-integer -b 16 OUT.wav` or \
                     `ffmpeg -i IN -c:a pcm_s16le OUT.wav`)"
                ),
            ));
        }
    };

    // The frame size must agree with channels x container, or we would slice samples apart.
    let expected_align = channels * (container_bits / 8);
    if block_align != expected_align {
        return Err(corrupt(
            path,
            format!(
                "fmt chunk is inconsistent: block align is {block_align} bytes but \
                 {channels} channel(s) of {container_bits}-bit samples need {expected_align}"
            ),
        ));
    }

    Ok(Format {
        kind,
        encoding,
        channels,
        sample_rate,
        block_align,
        container_bits,
    })
}

// ---------------------------------------------------------------------------------------------
// Sample decoding

/// Split interleaved samples into one `Vec` per channel.
fn deinterleave(
    interleaved: impl Iterator<Item = f32>,
    channels: u16,
    frames: usize,
) -> Vec<Vec<f32>> {
    let n = usize::from(channels);
    let mut out = vec![Vec::with_capacity(frames); n];
    for (i, s) in interleaved.enumerate() {
        out[i % n].push(s);
    }
    out
}

fn expand_g711(data: &[u8], channels: u16, expand: fn(u8) -> i16) -> Vec<Vec<f32>> {
    let frames = data.len() / usize::from(channels);
    deinterleave(
        data.iter().map(|&b| f32::from(expand(b)) / 32768.0),
        channels,
        frames,
    )
}

/// Decode PCM integer or float data with hound. `data` holds only whole frames.
///
/// hound gets a canonical 44-byte header (plain PCM or float, container-sized samples, a
/// consistent byte rate) chained in front of the data, so none of the container quirks the
/// walker already dealt with can trip it up.
fn decode_with_hound(
    path: &Path,
    format: &Format,
    data: &[u8],
) -> Result<Vec<Vec<f32>>, AudioError> {
    let tag = if format.kind == SampleKind::Float {
        TAG_FLOAT
    } else {
        TAG_PCM
    };
    // `data` came from a chunk with a u32 length, so it fits.
    let data_len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut header = Vec::with_capacity(44);
    header.extend_from_slice(b"RIFF");
    header.extend_from_slice(&data_len.saturating_add(36).to_le_bytes());
    header.extend_from_slice(b"WAVE");
    header.extend_from_slice(b"fmt ");
    header.extend_from_slice(&16u32.to_le_bytes());
    header.extend_from_slice(&tag.to_le_bytes());
    header.extend_from_slice(&format.channels.to_le_bytes());
    header.extend_from_slice(&format.sample_rate.to_le_bytes());
    let byte_rate = format.sample_rate * u32::from(format.block_align);
    header.extend_from_slice(&byte_rate.to_le_bytes());
    header.extend_from_slice(&format.block_align.to_le_bytes());
    header.extend_from_slice(&format.container_bits.to_le_bytes());
    header.extend_from_slice(b"data");
    header.extend_from_slice(&data_len.to_le_bytes());

    let hound_err = |e: hound::Error| corrupt(path, format!("sample data: {e}"));
    let reader = Cursor::new(header).chain(data);
    let mut wav = hound::WavReader::new(reader).map_err(hound_err)?;
    let frames = wav.duration() as usize;
    let channels = format.channels;

    if format.kind == SampleKind::Float {
        let samples: Vec<f32> = wav
            .samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(hound_err)?;
        // Float files may hold values outside [-1, 1] or even NaN/inf; later stages (resampler,
        // whisper) must never see those, so clamp and zero them here and say so once.
        let mut fixed = 0usize;
        let cleaned = samples.into_iter().map(|s| {
            let c = if s.is_finite() {
                s.clamp(-1.0, 1.0)
            } else {
                0.0
            };
            if c != s {
                fixed += 1;
            }
            c
        });
        let out = deinterleave(cleaned, channels, frames);
        if fixed > 0 {
            tracing::warn!(
                "{}: {fixed} float samples were outside [-1, 1] or not finite; clamped",
                path.display()
            );
        }
        Ok(out)
    } else {
        // hound returns 8-bit as signed (x - 128) and every width sign-extended in an i32, so
        // dividing by 2^(bits-1) maps the full range onto [-1, 1).
        let mut samples: Vec<i32> = wav
            .samples::<i32>()
            .collect::<Result<_, _>>()
            .map_err(hound_err)?;
        let mut bits = format.container_bits;
        if let Encoding::PcmInt { bits: valid } = format.encoding
            && valid < bits
            && fix_justification(&mut samples, valid, bits)
        {
            bits = valid;
        }
        let scale = 1.0 / f64::from(1u32 << (bits - 1));
        Ok(deinterleave(
            samples.into_iter().map(|s| (f64::from(s) * scale) as f32),
            channels,
            frames,
        ))
    }
}

/// Samples with fewer valid bits than their container should be left-justified (the
/// WAVE_FORMAT_EXTENSIBLE rule), and then decoding the whole container scales them right. Some
/// writers right-justify instead, which would come out thousands of times too quiet. The
/// padding bits tell which: if some sample has a low padding bit set and every sample's high
/// padding bits are zero or a sign extension, the samples are right-justified and are
/// sign-extended from `valid` bits in place. Returns whether it did that. (`samples` are
/// container-width values sign-extended to i32, as hound returns them; `valid < container`.)
fn fix_justification(samples: &mut [i32], valid: u16, container: u16) -> bool {
    let pad = u32::from(container - valid);
    let low_mask = (1i32 << pad) - 1;
    if samples.iter().all(|&s| s & low_mask == 0) {
        return false; // left-justified (or silence: the same either way)
    }
    let shift = 32 - u32::from(valid);
    let extend = |s: i32| (s << shift) >> shift;
    let top = 1i64 << valid;
    let right = samples
        .iter()
        .all(|&s| extend(s) == s || (0..top).contains(&i64::from(s)));
    if !right {
        return false; // fits neither: keep the standard reading
    }
    for s in samples.iter_mut() {
        *s = extend(*s);
    }
    true
}

/// ITU-T G.711 μ-law expansion to 16-bit linear (the classic reference algorithm: invert the
/// bits, rebuild the segment value with the 0x84 bias, remove the bias).
pub(crate) fn ulaw_to_linear(code: u8) -> i16 {
    let u = !code;
    let mantissa = i32::from(u & 0x0F);
    let exponent = i32::from((u & 0x70) >> 4);
    let magnitude = ((mantissa << 3) + 0x84) << exponent;
    // Max magnitude is (0x78 + 0x84) << 7 = 32256, so the results fit in i16.
    if u & 0x80 != 0 {
        (0x84 - magnitude) as i16
    } else {
        (magnitude - 0x84) as i16
    }
}

/// ITU-T G.711 A-law expansion to 16-bit linear (even bits are inverted on the wire: XOR 0x55;
/// segment 0 is linear, each further segment doubles the step).
pub(crate) fn alaw_to_linear(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mantissa = i32::from(a & 0x0F) << 4;
    let segment = i32::from((a & 0x70) >> 4);
    let magnitude = match segment {
        0 => mantissa + 8,
        1 => mantissa + 0x108,
        s => (mantissa + 0x108) << (s - 1),
    };
    // Max magnitude is (0xF0 + 0x108) << 6 = 32256.
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference tables from Python 3.11: `audioop.ulaw2lin(bytes([i]), 2)` and `alaw2lin`.
    #[rustfmt::skip]
    const AUDIOOP_ULAW: [i16; 256] = [
        -32124, -31100, -30076, -29052, -28028, -27004, -25980, -24956, -23932, -22908, -21884, -20860, -19836, -18812, -17788, -16764,
        -15996, -15484, -14972, -14460, -13948, -13436, -12924, -12412, -11900, -11388, -10876, -10364, -9852, -9340, -8828, -8316,
        -7932, -7676, -7420, -7164, -6908, -6652, -6396, -6140, -5884, -5628, -5372, -5116, -4860, -4604, -4348, -4092,
        -3900, -3772, -3644, -3516, -3388, -3260, -3132, -3004, -2876, -2748, -2620, -2492, -2364, -2236, -2108, -1980,
        -1884, -1820, -1756, -1692, -1628, -1564, -1500, -1436, -1372, -1308, -1244, -1180, -1116, -1052, -988, -924,
        -876, -844, -812, -780, -748, -716, -684, -652, -620, -588, -556, -524, -492, -460, -428, -396,
        -372, -356, -340, -324, -308, -292, -276, -260, -244, -228, -212, -196, -180, -164, -148, -132,
        -120, -112, -104, -96, -88, -80, -72, -64, -56, -48, -40, -32, -24, -16, -8, 0,
        32124, 31100, 30076, 29052, 28028, 27004, 25980, 24956, 23932, 22908, 21884, 20860, 19836, 18812, 17788, 16764,
        15996, 15484, 14972, 14460, 13948, 13436, 12924, 12412, 11900, 11388, 10876, 10364, 9852, 9340, 8828, 8316,
        7932, 7676, 7420, 7164, 6908, 6652, 6396, 6140, 5884, 5628, 5372, 5116, 4860, 4604, 4348, 4092,
        3900, 3772, 3644, 3516, 3388, 3260, 3132, 3004, 2876, 2748, 2620, 2492, 2364, 2236, 2108, 1980,
        1884, 1820, 1756, 1692, 1628, 1564, 1500, 1436, 1372, 1308, 1244, 1180, 1116, 1052, 988, 924,
        876, 844, 812, 780, 748, 716, 684, 652, 620, 588, 556, 524, 492, 460, 428, 396,
        372, 356, 340, 324, 308, 292, 276, 260, 244, 228, 212, 196, 180, 164, 148, 132,
        120, 112, 104, 96, 88, 80, 72, 64, 56, 48, 40, 32, 24, 16, 8, 0,
    ];
    #[rustfmt::skip]
    const AUDIOOP_ALAW: [i16; 256] = [
        -5504, -5248, -6016, -5760, -4480, -4224, -4992, -4736, -7552, -7296, -8064, -7808, -6528, -6272, -7040, -6784,
        -2752, -2624, -3008, -2880, -2240, -2112, -2496, -2368, -3776, -3648, -4032, -3904, -3264, -3136, -3520, -3392,
        -22016, -20992, -24064, -23040, -17920, -16896, -19968, -18944, -30208, -29184, -32256, -31232, -26112, -25088, -28160, -27136,
        -11008, -10496, -12032, -11520, -8960, -8448, -9984, -9472, -15104, -14592, -16128, -15616, -13056, -12544, -14080, -13568,
        -344, -328, -376, -360, -280, -264, -312, -296, -472, -456, -504, -488, -408, -392, -440, -424,
        -88, -72, -120, -104, -24, -8, -56, -40, -216, -200, -248, -232, -152, -136, -184, -168,
        -1376, -1312, -1504, -1440, -1120, -1056, -1248, -1184, -1888, -1824, -2016, -1952, -1632, -1568, -1760, -1696,
        -688, -656, -752, -720, -560, -528, -624, -592, -944, -912, -1008, -976, -816, -784, -880, -848,
        5504, 5248, 6016, 5760, 4480, 4224, 4992, 4736, 7552, 7296, 8064, 7808, 6528, 6272, 7040, 6784,
        2752, 2624, 3008, 2880, 2240, 2112, 2496, 2368, 3776, 3648, 4032, 3904, 3264, 3136, 3520, 3392,
        22016, 20992, 24064, 23040, 17920, 16896, 19968, 18944, 30208, 29184, 32256, 31232, 26112, 25088, 28160, 27136,
        11008, 10496, 12032, 11520, 8960, 8448, 9984, 9472, 15104, 14592, 16128, 15616, 13056, 12544, 14080, 13568,
        344, 328, 376, 360, 280, 264, 312, 296, 472, 456, 504, 488, 408, 392, 440, 424,
        88, 72, 120, 104, 24, 8, 56, 40, 216, 200, 248, 232, 152, 136, 184, 168,
        1376, 1312, 1504, 1440, 1120, 1056, 1248, 1184, 1888, 1824, 2016, 1952, 1632, 1568, 1760, 1696,
        688, 656, 752, 720, 560, 528, 624, 592, 944, 912, 1008, 976, 816, 784, 880, 848,
    ];

    #[test]
    fn g711_known_values() {
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0x80), 5504);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
    }

    #[test]
    fn g711_matches_audioop_for_every_code() {
        for code in 0..=255u8 {
            assert_eq!(
                ulaw_to_linear(code),
                AUDIOOP_ULAW[usize::from(code)],
                "mu-law 0x{code:02X}"
            );
            assert_eq!(
                alaw_to_linear(code),
                AUDIOOP_ALAW[usize::from(code)],
                "A-law 0x{code:02X}"
            );
        }
    }

    /// A WAV file: RIFF header, the given fmt body, optional extra chunks, then data.
    fn wav(fmt: &[u8], extra: &[(&[u8; 4], &[u8])], data: &[u8]) -> Vec<u8> {
        let mut chunks = Vec::new();
        let mut push = |id: &[u8; 4], body: &[u8]| {
            chunks.extend_from_slice(id);
            chunks.extend_from_slice(&(body.len() as u32).to_le_bytes());
            chunks.extend_from_slice(body);
            if body.len() % 2 == 1 {
                chunks.push(0);
            }
        };
        push(b"fmt ", fmt);
        for (id, body) in extra {
            push(id, body);
        }
        push(b"data", data);
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(4 + chunks.len() as u32).to_le_bytes());
        out.extend_from_slice(b"WAVE");
        out.extend_from_slice(&chunks);
        out
    }

    fn fmt_body(tag: u16, channels: u16, rate: u32, bits: u16, cb: Option<u16>) -> Vec<u8> {
        let align = channels * bits.div_ceil(8);
        let mut f = Vec::new();
        f.extend_from_slice(&tag.to_le_bytes());
        f.extend_from_slice(&channels.to_le_bytes());
        f.extend_from_slice(&rate.to_le_bytes());
        f.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
        f.extend_from_slice(&align.to_le_bytes());
        f.extend_from_slice(&bits.to_le_bytes());
        if let Some(cb) = cb {
            f.extend_from_slice(&cb.to_le_bytes());
        }
        f
    }

    fn extensible(channels: u16, rate: u32, bits: u16, valid: u16, sub_tag: u16) -> Vec<u8> {
        let mut f = fmt_body(TAG_EXTENSIBLE, channels, rate, bits, Some(22));
        f.extend_from_slice(&valid.to_le_bytes());
        f.extend_from_slice(&3u32.to_le_bytes());
        f.extend_from_slice(&sub_tag.to_le_bytes());
        f.extend_from_slice(&KSDATAFORMAT_SUFFIX);
        f
    }

    fn p() -> &'static Path {
        Path::new("/calls/test call.wav")
    }

    fn pcm16_stereo() -> Vec<u8> {
        let mut data = Vec::new();
        for (l, r) in [(0i16, 1000i16), (-32768, 32767), (16384, -16384)] {
            data.extend_from_slice(&l.to_le_bytes());
            data.extend_from_slice(&r.to_le_bytes());
        }
        wav(
            &fmt_body(TAG_PCM, 2, 8000, 16, None),
            &[(b"LIST", b"INFOISFT\x03\x00\x00\x00ab\x00")],
            &data,
        )
    }

    #[test]
    fn decodes_pcm16_stereo_with_odd_sized_list_chunk() {
        let rec = decode_bytes(p(), &pcm16_stereo()).unwrap();
        assert_eq!(rec.sample_rate, 8000);
        assert_eq!(rec.encoding, Encoding::PcmInt { bits: 16 });
        assert_eq!(rec.channels[0], vec![0.0, -1.0, 0.5]);
        assert_eq!(
            rec.channels[1],
            vec![1000.0 / 32768.0, 32767.0 / 32768.0, -0.5]
        );
    }

    #[test]
    fn extensible_24_in_32_is_left_justified() {
        // 24 valid bits, left-justified in a 32-bit container: 0x40_0000 << 8 is +0.5.
        let data = [
            (0x0040_0000i32 << 8).to_le_bytes(),
            (-0x0040_0000i32 << 8).to_le_bytes(),
        ]
        .concat();
        let rec = decode_bytes(
            p(),
            &wav(&extensible(1, 16000, 32, 24, TAG_PCM), &[], &data),
        )
        .unwrap();
        assert_eq!(rec.channels[0], vec![0.5, -0.5]);
    }

    #[test]
    fn unfinished_header_with_zero_length_reads_to_end() {
        let mut bytes = pcm16_stereo();
        let n = bytes.len();
        bytes[n - 16..n - 12].copy_from_slice(&0u32.to_le_bytes());
        bytes[4..8].copy_from_slice(&0u32.to_le_bytes());
        let rec = decode_bytes(p(), &bytes).unwrap();
        assert_eq!(rec.channels[1][2], -0.5);
        // A real empty data chunk followed by metadata stays an error.
        let fmt = fmt_body(TAG_PCM, 1, 8000, 16, None);
        let mut bytes = wav(&fmt, &[], &[]);
        bytes.extend_from_slice(b"LIST\x04\x00\x00\x00INFO");
        assert!(err(&bytes).contains("data chunk is empty"));
    }

    #[test]
    fn right_justified_and_oversized_containers() {
        // hound's own test files: 24-bit values in the low bytes of 4-byte containers, once in
        // an extensible header and once in a plain PCM header with block align 8.
        let vals = [-96i32, 23052, 8_388_607, -8_360_672];
        let data: Vec<u8> = vals
            .iter()
            .flat_map(|v| ((*v as u32) & 0x00FF_FFFF).to_le_bytes())
            .collect();
        let want: Vec<f32> = vals.iter().map(|&v| v as f32 / 8_388_608.0).collect();
        let ext = decode_bytes(
            p(),
            &wav(&extensible(1, 48000, 32, 24, TAG_PCM), &[], &data),
        );
        assert_eq!(ext.unwrap().channels[0], want);
        let mut plain = fmt_body(TAG_PCM, 2, 48000, 24, None);
        plain[12..14].copy_from_slice(&8u16.to_le_bytes());
        let rec = decode_bytes(p(), &wav(&plain, &[], &data)).unwrap();
        assert_eq!(rec.encoding, Encoding::PcmInt { bits: 24 });
        assert_eq!(rec.channels[0], vec![want[0], want[2]]);
        assert_eq!(rec.channels[1], vec![want[1], want[3]]);
        // 12-bit PCM, left-justified in 16 bits as the WAV spec says.
        let data: Vec<u8> = [0x4000i16, -0x8000, 0x0010]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let rec = decode_bytes(p(), &wav(&fmt_body(TAG_PCM, 1, 8000, 12, None), &[], &data));
        assert_eq!(rec.unwrap().channels[0], vec![0.5, -1.0, 16.0 / 32768.0]);
    }

    #[test]
    fn truncated_data_keeps_whole_frames() {
        let mut bytes = pcm16_stereo();
        bytes.truncate(bytes.len() - 2); // cut the last frame in half
        let rec = decode_bytes(p(), &bytes).unwrap();
        assert_eq!(rec.channels[0], vec![0.0, -1.0]);
        assert_eq!(rec.channels[1].len(), 2);
    }

    #[test]
    fn unknown_length_placeholder_reads_to_end() {
        let mut bytes = pcm16_stereo();
        let n = bytes.len();
        bytes[n - 16..n - 12].copy_from_slice(&u32::MAX.to_le_bytes());
        let rec = decode_bytes(p(), &bytes).unwrap();
        assert_eq!(rec.channels[0].len(), 3);
    }

    #[test]
    fn float_is_clamped_and_cleaned() {
        let data: Vec<u8> = [0.25f32, 2.0, f32::NAN, -f32::INFINITY]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let rec = decode_bytes(
            p(),
            &wav(&fmt_body(TAG_FLOAT, 1, 8000, 32, Some(0)), &[], &data),
        )
        .unwrap();
        assert_eq!(rec.encoding, Encoding::Float32);
        assert_eq!(rec.channels[0], vec![0.25, 1.0, 0.0, 0.0]);
    }

    fn err(bytes: &[u8]) -> String {
        let e = decode_bytes(p(), bytes).unwrap_err().to_string();
        assert!(e.contains("/calls/test call.wav"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        e
    }

    #[test]
    fn clear_errors() {
        assert!(err(b"").contains("empty file"));
        let e = err(b"hello, this is not audio\n");
        assert!(
            e.contains("not a WAV file (starts with \"hello, t\")"),
            "{e}"
        );
        assert!(err(&[0x00, 0xFF, 0x10]).contains("starts with bytes 00 FF 10"));
        let e = err("通话记录：客户投诉".as_bytes());
        assert!(
            e.contains("not a WAV file (starts with \"通话记录：客户投\")"),
            "{e}"
        );
        let e = err(b"#!AMR\n\x3c\x91");
        assert!(e.contains("looks like AMR, convert it to WAV first"), "{e}");
        assert!(err(b"RIF").contains("truncated header"));
        assert!(err(b"RIFF\x00\x00\x00\x00AVI LIST").contains("type 'AVI '"));
        assert!(err(b"RIFX\x00\x00\x00\x00WAVE").contains("unsupported WAV: RIFX"));
        let good = pcm16_stereo();
        assert!(err(&good[..30]).contains("truncated header"));
        assert!(err(&good[..44]).contains("truncated header"));

        let e = err(&wav(&fmt_body(TAG_PCM, 0, 8000, 16, None), &[], &[0; 4]));
        assert!(e.contains("0 channels"), "{e}");
        let e = err(&wav(&fmt_body(TAG_PCM, 3, 8000, 16, None), &[], &[0; 6]));
        assert!(e.contains("3 channels (only mono and stereo"), "{e}");
        let e = err(&wav(&fmt_body(TAG_PCM, 1, 96000, 16, None), &[], &[0; 4]));
        assert!(e.contains("sample rate 96000 Hz"), "{e}");
        let e = err(&wav(&fmt_body(TAG_PCM, 1, 7999, 16, None), &[], &[0; 4]));
        assert!(e.contains("sample rate 7999 Hz"), "{e}");
        let e = err(&wav(&fmt_body(TAG_PCM, 1, 8000, 40, None), &[], &[0; 5]));
        assert!(e.contains("40-bit PCM"), "{e}");
        let e = err(&wav(&fmt_body(TAG_PCM, 1, 8000, 4, None), &[], &[0; 4]));
        assert!(e.contains("4 valid bits in a 8-bit"), "{e}");
        let e = err(&wav(&fmt_body(TAG_FLOAT, 1, 8000, 64, None), &[], &[0; 8]));
        assert!(e.contains("64-bit float"), "{e}");
        let e = err(&wav(&fmt_body(0x0031, 1, 8000, 0, None), &[], &[0; 65]));
        assert!(e.contains("GSM 6.10 (format tag 0x0031)"), "{e}");
        let e = err(&wav(
            &fmt_body(TAG_MULAW, 1, 8000, 16, Some(0)),
            &[],
            &[0; 4],
        ));
        assert!(e.contains("mu-law with 16 bits"), "{e}");
        let e = err(&wav(
            &fmt_body(TAG_PCM, 1, 8000, 16, None)[..14],
            &[],
            &[0; 4],
        ));
        assert!(e.contains("fmt chunk is 14 bytes"), "{e}");
        let e = err(&wav(&fmt_body(TAG_PCM, 1, 8000, 16, None), &[], &[]));
        assert!(e.contains("data chunk is empty"), "{e}");
        let e = err(&wav(&fmt_body(TAG_PCM, 2, 8000, 16, None), &[], &[1, 2, 3]));
        assert!(e.contains("no complete audio frame"), "{e}");
    }

    /// Deterministic xorshift64*, so the corruption test needs no extra crates.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Whatever comes back must be usable by later stages.
    fn check_sane(bytes: &[u8]) {
        match decode_bytes(p(), bytes) {
            Ok(rec) => {
                assert!(matches!(rec.channels.len(), 1 | 2));
                assert!((MIN_RATE..=MAX_RATE).contains(&rec.sample_rate));
                let n = rec.channels[0].len();
                assert!(n > 0);
                for ch in &rec.channels {
                    assert_eq!(ch.len(), n);
                    assert!(ch.iter().all(|s| s.is_finite() && (-1.0..=1.0).contains(s)));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(!msg.contains('\n'), "{msg}");
                assert!(msg.contains("test call.wav"), "{msg}");
            }
        }
    }

    #[test]
    fn never_panics_on_truncation_or_corruption() {
        let ulaw: Vec<u8> = (0..=255u8).collect();
        let seeds = [
            pcm16_stereo(),
            wav(
                &fmt_body(TAG_MULAW, 1, 8000, 8, Some(0)),
                &[(b"fact", &256u32.to_le_bytes())],
                &ulaw,
            ),
            wav(&fmt_body(TAG_ALAW, 2, 8000, 8, Some(0)), &[], &ulaw),
            wav(&extensible(2, 44100, 24, 24, TAG_PCM), &[], &[7; 60]),
            wav(&extensible(1, 48000, 32, 32, TAG_FLOAT), &[], &[0x3F; 40]),
            wav(&fmt_body(TAG_PCM, 1, 22050, 8, None), &[], &[0x80, 0, 255]),
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for seed in &seeds {
            for cut in 0..=seed.len() {
                check_sane(&seed[..cut]);
            }
            for _ in 0..3000 {
                let mut b = seed.clone();
                // Mostly hit the header, where the interesting parsing happens.
                for _ in 0..1 + rng.below(4) {
                    let at = if rng.below(4) == 0 {
                        rng.below(b.len())
                    } else {
                        rng.below(b.len().min(80))
                    };
                    match rng.below(3) {
                        0 => b[at] ^= 1 << rng.below(8),
                        1 => b[at] = rng.next() as u8,
                        _ => b[at] = [0x00, 0xFF, 0x7F, 0x80][rng.below(4)],
                    }
                }
                if rng.below(5) == 0 {
                    b.truncate(rng.below(b.len() + 1));
                }
                check_sane(&b);
            }
        }
        // Pure noise behind a valid RIFF/WAVE magic.
        for _ in 0..2000 {
            let mut b = b"RIFF\0\0\0\0WAVE".to_vec();
            b.extend((0..rng.below(120)).map(|_| rng.next() as u8));
            check_sane(&b);
        }
    }
}
