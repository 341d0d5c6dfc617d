//! Integration tests for audio in: real WAV files written to a temp dir in every format a
//! call recorder produces, read back through `decode_file`, `split_roles` and
//! `load_call_audio`, plus the broken files recorders and users hand us.

use std::f64::consts::PI;
use std::path::{Path, PathBuf};

use callqc::audio::decode::{decode_bytes, decode_file};
use callqc::audio::roles::{load_call_audio, split_roles};
use callqc::audio::{AudioError, ChannelMap, Encoding, Role, RoleAudio, TARGET_RATE};

// ---------------------------------------------------------------------------------------------
// Writing WAV files by hand, so every header detail is under the test's control.

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fmt {
    U8,
    I16,
    I24,
    I32,
    F32,
    MuLaw,
    ALaw,
    /// WAVE_FORMAT_EXTENSIBLE wrapping 16-bit PCM.
    Ext16,
}

const ALL: [Fmt; 8] = [
    Fmt::U8,
    Fmt::I16,
    Fmt::I24,
    Fmt::I32,
    Fmt::F32,
    Fmt::MuLaw,
    Fmt::ALaw,
    Fmt::Ext16,
];
const RATES: [u32; 5] = [8000, 11025, 22050, 44100, 48000];

impl Fmt {
    fn bytes(self) -> u16 {
        match self {
            Fmt::U8 | Fmt::MuLaw | Fmt::ALaw => 1,
            Fmt::I16 | Fmt::Ext16 => 2,
            Fmt::I24 => 3,
            Fmt::I32 | Fmt::F32 => 4,
        }
    }

    fn encoding(self) -> Encoding {
        match self {
            Fmt::U8 => Encoding::PcmInt { bits: 8 },
            Fmt::I16 | Fmt::Ext16 => Encoding::PcmInt { bits: 16 },
            Fmt::I24 => Encoding::PcmInt { bits: 24 },
            Fmt::I32 => Encoding::PcmInt { bits: 32 },
            Fmt::F32 => Encoding::Float32,
            Fmt::MuLaw => Encoding::MuLaw,
            Fmt::ALaw => Encoding::ALaw,
        }
    }

    /// Largest decoding error expected for a sample in [-1, 1] (quantisation step / 2 + slack).
    fn tolerance(self) -> f32 {
        match self {
            Fmt::U8 => 1.0 / 128.0,
            Fmt::I16 | Fmt::Ext16 => 1.0 / 32768.0,
            Fmt::I24 | Fmt::I32 | Fmt::F32 => 1e-6,
            // G.711's largest step is 1024/32768; half of that is the worst rounding error.
            Fmt::MuLaw | Fmt::ALaw => 0.017,
        }
    }

    fn encode(self, x: f64, out: &mut Vec<u8>) {
        let q = |scale: f64| (x * scale).round().clamp(-scale, scale - 1.0);
        match self {
            Fmt::U8 => out.push((q(128.0) + 128.0) as u8),
            Fmt::I16 | Fmt::Ext16 => out.extend_from_slice(&(q(32768.0) as i16).to_le_bytes()),
            Fmt::I24 => out.extend_from_slice(&(q(8_388_608.0) as i32).to_le_bytes()[..3]),
            Fmt::I32 => out.extend_from_slice(&(q(2_147_483_648.0) as i32).to_le_bytes()),
            Fmt::F32 => out.extend_from_slice(&(x as f32).to_le_bytes()),
            Fmt::MuLaw => out.push(linear_to_ulaw(q(32768.0) as i16)),
            Fmt::ALaw => out.push(linear_to_alaw(q(32768.0) as i16)),
        }
    }

    /// The fmt chunk body, written the way real tools write each format.
    fn fmt_chunk(self, channels: u16, rate: u32) -> Vec<u8> {
        let tag: u16 = match self {
            Fmt::F32 => 3,
            Fmt::ALaw => 6,
            Fmt::MuLaw => 7,
            Fmt::Ext16 => 0xFFFE,
            _ => 1,
        };
        let align = channels * self.bytes();
        let mut f = Vec::new();
        f.extend_from_slice(&tag.to_le_bytes());
        f.extend_from_slice(&channels.to_le_bytes());
        f.extend_from_slice(&rate.to_le_bytes());
        f.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
        f.extend_from_slice(&align.to_le_bytes());
        f.extend_from_slice(&(self.bytes() * 8).to_le_bytes());
        match self {
            // G.711 (and float, as most tools write it): WAVEFORMATEX with cbSize 0.
            Fmt::MuLaw | Fmt::ALaw | Fmt::F32 => f.extend_from_slice(&0u16.to_le_bytes()),
            Fmt::Ext16 => {
                f.extend_from_slice(&22u16.to_le_bytes());
                f.extend_from_slice(&16u16.to_le_bytes()); // valid bits
                let mask: u32 = if channels == 2 { 0x3 } else { 0x4 };
                f.extend_from_slice(&mask.to_le_bytes());
                // KSDATAFORMAT_SUBTYPE_PCM
                f.extend_from_slice(&[
                    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00,
                    0x38, 0x9B, 0x71,
                ]);
            }
            _ => {}
        }
        f
    }
}

/// Reference G.711 μ-law compressor (the classic Sun/CCITT algorithm): bias by 0x84, find the
/// segment from the highest set bit, keep four mantissa bits, invert.
fn linear_to_ulaw(x: i16) -> u8 {
    let sign = if x < 0 { 0x80 } else { 0 };
    let m = (i32::from(x).abs().min(32635)) + 0x84;
    let exp = (31 - m.leading_zeros() as i32) - 7; // highest bit is 7..=14
    let mant = (m >> (exp + 3)) & 0x0F;
    !(sign | (exp << 4) | mant) as u8
}

/// Reference G.711 A-law compressor (Sun/CCITT): 13-bit magnitude, segment search, XOR 0x55.
fn linear_to_alaw(x: i16) -> u8 {
    let mut v = i32::from(x) >> 3;
    let mask = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    let seg = (0..8).find(|&s| v < (0x20 << s)).unwrap_or(8);
    let aval = if seg >= 8 {
        0x7F
    } else if seg < 2 {
        (seg << 4) | ((v >> 1) & 0x0F)
    } else {
        (seg << 4) | ((v >> seg) & 0x0F)
    };
    (aval ^ mask) as u8
}

fn chunk(out: &mut Vec<u8>, id: &[u8; 4], body: &[u8]) {
    out.extend_from_slice(id);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    if body.len() % 2 == 1 {
        out.push(0); // RIFF pad byte
    }
}

/// A complete WAV file from per-channel signals in [-1, 1].
fn wav_bytes(fmt: Fmt, rate: u32, channels: &[Vec<f64>]) -> Vec<u8> {
    let frames = channels[0].len();
    let mut data = Vec::new();
    for i in 0..frames {
        for ch in channels {
            fmt.encode(ch[i], &mut data);
        }
    }
    let mut body = b"WAVE".to_vec();
    chunk(
        &mut body,
        b"fmt ",
        &fmt.fmt_chunk(channels.len() as u16, rate),
    );
    if matches!(fmt, Fmt::MuLaw | Fmt::ALaw) {
        // Non-PCM files carry a fact chunk with the frame count, as telephony files do.
        chunk(&mut body, b"fact", &(frames as u32).to_le_bytes());
    }
    chunk(&mut body, b"data", &data);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

// ---------------------------------------------------------------------------------------------
// Signal helpers

fn sine(freq: f64, amp: f64, rate: u32, secs: f64) -> Vec<f64> {
    let n = (secs * f64::from(rate)).round() as usize;
    (0..n)
        .map(|i| amp * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin())
        .collect()
}

/// Amplitude of one frequency in `x` (single-bin DFT over the middle of the signal, away from
/// the edges).
fn amplitude(x: &[f32], rate: u32, freq: f64) -> f64 {
    let q = x.len() / 8;
    let x = &x[q..x.len() - q];
    let (mut re, mut im) = (0.0, 0.0);
    for (i, &s) in x.iter().enumerate() {
        let ph = 2.0 * PI * freq * i as f64 / f64::from(rate);
        re += f64::from(s) * ph.cos();
        im += f64::from(s) * ph.sin();
    }
    2.0 * (re * re + im * im).sqrt() / x.len() as f64
}

const LEFT_HZ: f64 = 440.0;
const LEFT_AMP: f64 = 0.6;
const RIGHT_HZ: f64 = 1000.0;
const RIGHT_AMP: f64 = 0.3;
const SECS: f64 = 0.5;

/// Check a role track holds the expected tone and not the other channel's, is 16 kHz long
/// enough, and is time-aligned (compared sample by sample with the ideal 16 kHz sine).
fn check_track(track: &RoleAudio, hz: f64, amp: f64, other_hz: Option<f64>, tol: f64, what: &str) {
    let want_len = (SECS * f64::from(TARGET_RATE)).round() as usize;
    assert!(
        track.samples.len().abs_diff(want_len) <= 1,
        "{what}: {} samples at 16 kHz, want {want_len}",
        track.samples.len()
    );
    assert!((track.duration_s() - SECS).abs() < 1e-3, "{what}");
    let got = amplitude(&track.samples, TARGET_RATE, hz);
    assert!(
        (got - amp).abs() < tol,
        "{what}: {hz} Hz amplitude {got}, want {amp}"
    );
    if let Some(other) = other_hz {
        let leak = amplitude(&track.samples, TARGET_RATE, other);
        assert!(leak < 0.01, "{what}: {other} Hz leaked in at {leak}");
    }
    let ideal = sine(hz, amp, TARGET_RATE, SECS);
    let q = ideal.len() / 8;
    let middle = track.samples.iter().zip(&ideal).enumerate().skip(q);
    for (i, (&got, &want)) in middle.take(ideal.len() - 2 * q) {
        let d = (f64::from(got) - want).abs();
        assert!(
            d < 2.0 * tol + 0.01,
            "{what}: sample {i} off by {d} (timing?)"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Every format x every rate x mono/stereo

#[test]
fn every_format_rate_and_layout_decodes() {
    let dir = tempfile::tempdir().unwrap();
    for fmt in ALL {
        for rate in RATES {
            let left = sine(LEFT_HZ, LEFT_AMP, rate, SECS);
            let right = sine(RIGHT_HZ, RIGHT_AMP, rate, SECS);
            let tol = fmt.tolerance();
            let level_tol = f64::from(tol) + 0.005;
            for channels in [vec![left.clone()], vec![left.clone(), right.clone()]] {
                let n_ch = channels.len();
                let what = format!("{fmt:?} {rate} Hz {n_ch} ch");
                let name = format!("call {fmt:?} {rate} {n_ch}.wav");
                let path = write(dir.path(), &name, &wav_bytes(fmt, rate, &channels));

                let rec = decode_file(&path).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(rec.path, path);
                assert_eq!(rec.sample_rate, rate, "{what}");
                assert_eq!(rec.encoding, fmt.encoding(), "{what}");
                assert_eq!(rec.channels.len(), n_ch, "{what}");
                assert!((rec.duration_s() - SECS).abs() < 1e-4, "{what}");
                for (c, (got, want)) in rec.channels.iter().zip(&channels).enumerate() {
                    assert_eq!(got.len(), want.len(), "{what}");
                    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
                        assert!(
                            (f64::from(g) - w).abs() <= f64::from(tol),
                            "{what}: channel {c} sample {i}: {g} vs {w}"
                        );
                    }
                }

                let roles = split_roles(&rec, ChannelMap::default()).unwrap();
                if n_ch == 1 {
                    assert_eq!(roles.len(), 1);
                    assert_eq!(roles[0].role, Role::Mixed);
                    check_track(&roles[0], LEFT_HZ, LEFT_AMP, None, level_tol, &what);
                } else {
                    assert_eq!(roles.len(), 2, "{what}");
                    assert_eq!(roles[0].role, Role::Agent);
                    assert_eq!(roles[1].role, Role::Caller);
                    let w = format!("{what} agent");
                    check_track(&roles[0], LEFT_HZ, LEFT_AMP, Some(RIGHT_HZ), level_tol, &w);
                    let w = format!("{what} caller");
                    check_track(&roles[1], RIGHT_HZ, RIGHT_AMP, Some(LEFT_HZ), level_tol, &w);
                }
            }
        }
    }
}

#[test]
fn exact_sample_values() {
    let dir = tempfile::tempdir().unwrap();
    let raw = |fmt: Fmt, data: &[u8]| {
        let mut body = b"WAVE".to_vec();
        chunk(&mut body, b"fmt ", &fmt.fmt_chunk(1, 8000));
        if matches!(fmt, Fmt::MuLaw | Fmt::ALaw) {
            chunk(&mut body, b"fact", &(data.len() as u32).to_le_bytes());
        }
        chunk(&mut body, b"data", data);
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        let path = write(dir.path(), &format!("{fmt:?}.wav"), &out);
        decode_file(&path).unwrap().channels.remove(0)
    };
    // 8-bit WAV is unsigned with 128 as silence.
    assert_eq!(
        raw(Fmt::U8, &[0, 128, 255, 64]),
        vec![-1.0, 0.0, 127.0 / 128.0, -0.5]
    );
    let i16s: Vec<u8> = [-32768i16, 0, 16384, 32767]
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    assert_eq!(
        raw(Fmt::I16, &i16s),
        vec![-1.0, 0.0, 0.5, 32767.0 / 32768.0]
    );
    assert_eq!(
        raw(Fmt::Ext16, &i16s),
        vec![-1.0, 0.0, 0.5, 32767.0 / 32768.0]
    );
    // 24-bit: 0x800000 = -1, 0x400000 = +0.5, 0xFFFFFF = -1/2^23.
    let i24 = [0x00, 0x00, 0x80, 0x00, 0x00, 0x40, 0xFF, 0xFF, 0xFF];
    assert_eq!(raw(Fmt::I24, &i24), vec![-1.0, 0.5, -1.0 / 8_388_608.0]);
    let i32s: Vec<u8> = [i32::MIN, 1 << 30]
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    assert_eq!(raw(Fmt::I32, &i32s), vec![-1.0, 0.5]);
    let f32s: Vec<u8> = [-0.75f32, 0.125]
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    assert_eq!(raw(Fmt::F32, &f32s), vec![-0.75, 0.125]);
    // G.711 known points (ITU G.711 / audioop).
    assert_eq!(
        raw(Fmt::MuLaw, &[0xFF, 0x00, 0x80, 0x7F]),
        vec![0.0, -32124.0 / 32768.0, 32124.0 / 32768.0, 0.0]
    );
    assert_eq!(
        raw(Fmt::ALaw, &[0xD5, 0x55, 0x80, 0xAA]),
        vec![
            8.0 / 32768.0,
            -8.0 / 32768.0,
            5504.0 / 32768.0,
            32256.0 / 32768.0
        ]
    );
}

#[test]
fn g711_test_encoders_round_trip() {
    // The compressors above only make test signals; check they agree with the decoder.
    let dir = tempfile::tempdir().unwrap();
    let ramp: Vec<f64> = (-400..=400).map(|i| f64::from(i) / 400.0).collect();
    for fmt in [Fmt::MuLaw, Fmt::ALaw] {
        let path = write(
            dir.path(),
            "ramp.wav",
            &wav_bytes(fmt, 8000, std::slice::from_ref(&ramp)),
        );
        let got = &decode_file(&path).unwrap().channels[0];
        for (&g, &w) in got.iter().zip(&ramp) {
            // Relative error of a log-companded code: 1/32 of the value plus the tiny step.
            assert!(
                (f64::from(g) - w).abs() <= w.abs() / 30.0 + 0.001,
                "{fmt:?} {w} {g}"
            );
        }
    }
}

#[test]
fn files_from_hound_writer_decode() {
    // Interoperability with a standard writer, not only with our own test headers.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hound.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 22050,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for i in 0..2205 {
        w.write_sample(i as i16).unwrap();
        w.write_sample(-(i as i16)).unwrap();
    }
    w.finalize().unwrap();
    let rec = decode_file(&path).unwrap();
    assert_eq!(rec.channels[0].len(), 2205);
    assert_eq!(rec.channels[0][100], 100.0 / 32768.0);
    assert_eq!(rec.channels[1][100], -100.0 / 32768.0);
    assert!((rec.duration_s() - 0.1).abs() < 1e-9);
}

#[test]
fn channel_map_swaps_and_merges_roles() {
    let dir = tempfile::tempdir().unwrap();
    let left = sine(LEFT_HZ, LEFT_AMP, 8000, SECS);
    let right = sine(RIGHT_HZ, RIGHT_AMP, 8000, SECS);
    let path = write(
        dir.path(),
        "stereo.wav",
        &wav_bytes(Fmt::MuLaw, 8000, &[left, right]),
    );

    let (rec, roles) = load_call_audio(&path, "caller,agent".parse().unwrap()).unwrap();
    assert_eq!(rec.channels.len(), 2);
    assert_eq!(roles[0].role, Role::Caller);
    assert_eq!(roles[1].role, Role::Agent);
    check_track(
        &roles[0],
        LEFT_HZ,
        LEFT_AMP,
        Some(RIGHT_HZ),
        0.02,
        "swapped caller",
    );
    check_track(
        &roles[1],
        RIGHT_HZ,
        RIGHT_AMP,
        Some(LEFT_HZ),
        0.02,
        "swapped agent",
    );

    let (_, roles) = load_call_audio(&path, "left=agent,right=agent".parse().unwrap()).unwrap();
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0].role, Role::Agent);
    // Averaged: each tone at half its level.
    let a = amplitude(&roles[0].samples, TARGET_RATE, LEFT_HZ);
    let b = amplitude(&roles[0].samples, TARGET_RATE, RIGHT_HZ);
    assert!((a - LEFT_AMP / 2.0).abs() < 0.02 && (b - RIGHT_AMP / 2.0).abs() < 0.02);
}

// ---------------------------------------------------------------------------------------------
// Broken files

/// The error must name the file and fit on one line (it goes into logs and reports).
fn one_line_naming(e: &AudioError, path: &Path) -> String {
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "multi-line error: {msg:?}");
    assert!(
        msg.contains(&path.display().to_string()),
        "error does not name {}: {msg}",
        path.display()
    );
    msg
}

#[test]
fn broken_files_give_clear_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = wav_bytes(Fmt::I16, 8000, &[sine(440.0, 0.5, 8000, 0.1)]);

    let path = write(dir.path(), "empty call.wav", b"");
    let e = decode_file(&path).unwrap_err();
    assert!(matches!(e, AudioError::Empty { .. }));
    assert!(one_line_naming(&e, &path).contains("empty file"));

    let path = write(dir.path(), "notes.wav", b"Call notes:\nagent was polite\n");
    let e = decode_file(&path).unwrap_err();
    assert!(matches!(e, AudioError::NotWav { .. }));
    let msg = one_line_naming(&e, &path);
    assert!(
        msg.contains("not a WAV file (starts with \"Call not\")"),
        "{msg}"
    );

    for cut in [4, 11, 20, 36, 40] {
        let path = write(dir.path(), "cut header.wav", &good[..cut]);
        let e = decode_file(&path).unwrap_err();
        assert!(matches!(e, AudioError::Corrupt { .. }), "cut {cut}: {e}");
        assert!(
            one_line_naming(&e, &path).contains("truncated header"),
            "{e}"
        );
    }

    // Header complete, data chunk declares 1600 bytes but only one byte of audio follows.
    let path = write(dir.path(), "no frames.wav", &good[..45]);
    let e = decode_file(&path).unwrap_err();
    assert!(matches!(e, AudioError::Corrupt { .. }));
    let msg = one_line_naming(&e, &path);
    assert!(msg.contains("declares 1600 bytes, 1 are present"), "{msg}");

    let path = dir.path().join("missing.wav");
    let e = decode_file(&path).unwrap_err();
    assert!(matches!(e, AudioError::Io { .. }));
    one_line_naming(&e, &path);

    let e = load_call_audio(&path, ChannelMap::default()).unwrap_err();
    one_line_naming(&e, &path);

    // decode_bytes names whatever path it is given (here an MP3 stub: its tag and nothing).
    let e = decode_bytes(Path::new("upload #7.wav"), b"ID3\x03").unwrap_err();
    assert!(e.to_string().starts_with("upload #7.wav: "), "{e}");
    assert!(e.to_string().contains("MP3"), "{e}");
    let e = decode_bytes(Path::new("upload #8.wav"), b"\x00\x01junk").unwrap_err();
    assert!(
        e.to_string().starts_with("upload #8.wav: not a WAV file"),
        "{e}"
    );
}

#[test]
fn truncated_data_is_decoded_up_to_the_last_whole_frame() {
    // A call that dropped mid-recording: the header promises more data than the file holds.
    let dir = tempfile::tempdir().unwrap();
    let left = sine(440.0, 0.5, 8000, 0.1);
    let right = sine(700.0, 0.5, 8000, 0.1);
    let full = wav_bytes(Fmt::I16, 8000, &[left.clone(), right]);
    // 44-byte header + 800 frames x 4 bytes; keep 500 frames and half of the next one.
    let cut = 44 + 500 * 4 + 2;
    let path = write(dir.path(), "dropped.wav", &full[..cut]);
    let (rec, roles) = load_call_audio(&path, ChannelMap::default()).unwrap();
    assert_eq!(rec.channels[0].len(), 500);
    assert_eq!(rec.channels[1].len(), 500);
    assert!((rec.channels[0][499] as f64 - left[499]).abs() < 1e-4);
    assert_eq!(roles[0].samples.len(), 1000);
    assert!((roles[1].duration_s() - 0.0625).abs() < 1e-9);
}
