//! Mutation fuzzing of every parser that takes untrusted input, seeded with the samples.
//!
//! Coverage-guided fuzzers (cargo-fuzz, cargo-afl) need a nightly toolchain or an AFL++ build
//! that this project's machines do not have, so each target here mutates real inputs (the
//! sample recordings, the default rubric, sidecars, live-protocol messages) and keeps a mutant
//! in its corpus when it produces an outcome not seen before (an error message of a new shape):
//! outcome-guided rather than coverage-guided. Every input must give a result or an error —
//! never a panic — and errors of file parsers must name the file.
//!
//! - Quick run (the test suite): 1 s per target.
//! - Longer: `scripts/fuzz.sh SECONDS [TARGET]`, i.e. `CALLQC_FUZZ_S=SECONDS cargo test
//!   --release --test fuzz -- --nocapture`; `CALLQC_FUZZ_SEED` repeats a run.
//! - A panicking input is written to `target/fuzz-crashes/TARGET-HASH.bin` and fails the test;
//!   committed under `tests/data/fuzz/TARGET/`, it is replayed first on every run (regressions).

mod common;

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use callqc::audio::ChannelMap;
use callqc::audio::frames::FrameEncoding;
use callqc::live::audiosocket::{self, MAX_PAYLOAD};
use callqc::live::ingest::{Deinterleaver, parse_metadata};
use callqc::pipeline::batch::{Sidecar, parse_manifest_line};

/// A small, fast, seedable generator (xorshift64*): the fuzzer must be repeatable from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Values that break parsers: boundaries of the integer widths, zero, all ones.
const INTERESTING_U32: [u32; 10] = [
    0,
    1,
    2,
    0x7f,
    0xff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
];

/// Tokens spliced into text inputs (TOML, JSON, CSV): numbers at the edges, empty and nested
/// values, keys the parsers know, control and non-ASCII characters.
const TEXT_TOKENS: [&str; 30] = [
    "-1",
    "0",
    "1e400",
    "nan",
    "inf",
    "-0.0",
    "99999999999999999999",
    "\"\"",
    "[]",
    "{}",
    "null",
    "true",
    "[[items]]",
    "[items.rule]",
    "kind = \"silence\"",
    "kind = \"order\"",
    "role = \"caller\"",
    "position = \"end\"",
    "within_s = 0",
    "phrases = []",
    "\"sample_rate\": 16000",
    "\"channels\": 2",
    "\"encoding\": \"PCMA\"",
    "left=mixed",
    "\t",
    ",",
    "\u{0}",
    "\u{feff}",
    "禁语",
    "🙂",
];

/// One mutation of `input`, picked at random; `others` are inputs to splice from.
fn mutate(rng: &mut Rng, input: &[u8], others: &[Vec<u8>], text: bool) -> Vec<u8> {
    let mut out = input.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = out.len();
        match rng.below(if text { 10 } else { 8 }) {
            // Flip a bit.
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            // A random byte.
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = rng.next() as u8;
            }
            // An interesting 32-bit value, little- or big-endian (sizes, counts, rates).
            2 if len >= 4 => {
                let i = rng.below(len - 3);
                let v = INTERESTING_U32[rng.below(INTERESTING_U32.len())];
                let bytes = if rng.chance(2) {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                out[i..i + 4].copy_from_slice(&bytes);
            }
            // Delete a run.
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(256));
                out.drain(i..i + n);
            }
            // Duplicate a run.
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(256));
                let run = out[i..i + n].to_vec();
                let at = rng.below(out.len() + 1);
                out.splice(at..at, run);
            }
            // Truncate.
            5 if len > 0 => out.truncate(rng.below(len)),
            // Splice the tail of another input.
            6 if !others.is_empty() => {
                let other = &others[rng.below(others.len())];
                if !other.is_empty() {
                    let cut = rng.below(out.len() + 1);
                    let from = rng.below(other.len());
                    out.truncate(cut);
                    out.extend_from_slice(&other[from..]);
                }
            }
            // Random bytes inserted.
            7 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                out.splice(at..at, junk);
            }
            // Text: insert a token.
            8 => {
                let at = char_boundary(&out, rng.below(len + 1));
                let tok = TEXT_TOKENS[rng.below(TEXT_TOKENS.len())].as_bytes();
                out.splice(at..at, tok.iter().copied());
            }
            // Text: delete, duplicate or swap whole lines.
            9 => line_mutation(rng, &mut out),
            _ => {}
        }
    }
    out
}

fn char_boundary(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && (bytes[at] & 0xc0) == 0x80 {
        at += 1;
    }
    at
}

fn line_mutation(rng: &mut Rng, out: &mut Vec<u8>) {
    let mut lines: Vec<Vec<u8>> = out.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    if lines.is_empty() {
        return;
    }
    let i = rng.below(lines.len());
    match rng.below(3) {
        0 => {
            lines.remove(i);
        }
        1 => {
            let l = lines[i].clone();
            lines.insert(rng.below(lines.len() + 1), l);
        }
        _ => {
            let j = rng.below(lines.len());
            lines.swap(i, j);
        }
    }
    *out = lines.join(&b'\n');
}

/// What one input did, reduced to its shape — the words of its message, without numbers,
/// quoted parts or echoed input — so inputs that reach a new branch of a parser (a new kind of
/// message) join the corpus, and the thousand variants of one message do not.
fn shape(outcome: &Result<String, String>) -> String {
    let (tag, text) = match outcome {
        Ok(t) => ("ok", t.as_str()),
        Err(e) => ("err", e.as_str()),
    };
    // File parsers' messages begin with the file's name.
    let text = text.split_once(".wav: ").map_or(text, |(_, rest)| rest);
    let mut s = String::from(tag);
    for c in text.chars() {
        match c {
            // What follows a quote is usually the input echoed back.
            '"' | '\'' | '`' => break,
            c if c.is_ascii_alphabetic() || c == ' ' || c == ':' => s.push(c),
            _ => {}
        }
    }
    // The first words say which branch spoke; later words echo input.
    s.split_whitespace().take(8).collect::<Vec<_>>().join(" ")
}

/// One fuzz target: a name, its seeds, whether its input is text, and the function under test
/// (returns a summary of the result or the error; panics are what the fuzzer looks for).
struct Target {
    name: &'static str,
    seeds: Vec<Vec<u8>>,
    text: bool,
    run: fn(&[u8]) -> Result<String, String>,
}

struct Report {
    inputs: u64,
    shapes: usize,
    corpus: usize,
    crashes: Vec<PathBuf>,
    slowest: Duration,
}

fn budget() -> Duration {
    let s = std::env::var("CALLQC_FUZZ_S")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(1.0);
    Duration::from_secs_f64(s.max(0.0))
}

fn seed() -> u64 {
    std::env::var("CALLQC_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
        | 1
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Run one input; a panic is saved and reported.
fn try_input(target: &Target, input: &[u8], report: &mut Report) -> Option<Result<String, String>> {
    let t = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    report.slowest = report.slowest.max(t.elapsed());
    report.inputs += 1;
    match outcome {
        Ok(o) => Some(o),
        Err(_) => {
            let dir = common::root().join("target/fuzz-crashes");
            std::fs::create_dir_all(&dir).ok();
            let path = dir.join(format!("{}-{:016x}.bin", target.name, fnv(input)));
            std::fs::write(&path, input).ok();
            report.crashes.push(path);
            None
        }
    }
}

fn fuzz(target: Target) {
    // Silence the default panic message for each crash: the report lists them.
    let seed = seed();
    let mut rng = Rng(seed);
    let mut report = Report {
        inputs: 0,
        shapes: 0,
        corpus: 0,
        crashes: Vec::new(),
        slowest: Duration::ZERO,
    };
    let mut shapes = HashSet::new();
    let mut corpus: Vec<Vec<u8>> = Vec::new();
    // Regressions first: every input that ever crashed a target.
    let regressions = common::root().join("tests/data/fuzz").join(target.name);
    if let Ok(entries) = std::fs::read_dir(&regressions) {
        for e in entries.flatten() {
            if let Ok(bytes) = std::fs::read(e.path()) {
                try_input(&target, &bytes, &mut report);
            }
        }
    }
    for s in &target.seeds {
        if let Some(o) = try_input(&target, s, &mut report) {
            shapes.insert(shape(&o));
        }
        corpus.push(s.clone());
    }
    let deadline = Instant::now() + budget();
    while Instant::now() < deadline {
        let parent = &corpus[rng.below(corpus.len())];
        let child = mutate(&mut rng, parent, &corpus, target.text);
        if let Some(o) = try_input(&target, &child, &mut report)
            && shapes.insert(shape(&o))
            && corpus.len() < 512
        {
            corpus.push(child);
        }
    }
    report.shapes = shapes.len();
    report.corpus = corpus.len();
    println!(
        "fuzz {:<12} seed {seed}: {} inputs in {:.0} s, {} outcome shapes, corpus {}, slowest {:.1} ms, {} crash(es)",
        target.name,
        report.inputs,
        budget().as_secs_f64(),
        report.shapes,
        report.corpus,
        report.slowest.as_secs_f64() * 1e3,
        report.crashes.len()
    );
    assert!(
        report.crashes.is_empty(),
        "{}: inputs that panic: {:?} (replay one by copying it into tests/data/fuzz/{}/)",
        target.name,
        report.crashes,
        target.name
    );
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Seeds from files: each whole, and its first `head` bytes (short inputs run faster and put
/// the mutations where the headers are).
fn file_seeds(paths: impl IntoIterator<Item = PathBuf>, head: usize) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for p in paths {
        let bytes = read(p);
        seeds.push(bytes[..bytes.len().min(head)].to_vec());
        seeds.push(bytes);
    }
    seeds
}

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

/// A recording's bytes: decoded (WAV, MP3, FLAC, Ogg), then split into roles. Errors must name
/// the file.
fn run_recording(bytes: &[u8]) -> Result<String, String> {
    let name = Path::new("fuzz-input.wav");
    let rec = callqc::audio::decode::decode_bytes(name, bytes).map_err(|e| e.to_string())?;
    let roles = callqc::audio::roles::role_channels(&rec, ChannelMap::default())
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "{} Hz, {} channel(s), {} role track(s)",
        rec.sample_rate,
        rec.channels.len(),
        roles.len()
    ))
}

fn named(outcome: Result<String, String>, file: &str) -> Result<String, String> {
    if let Err(e) = &outcome {
        assert!(e.contains(file), "the error does not name {file}: {e}");
    }
    outcome
}

#[test]
fn fuzz_wav() {
    let mut seeds = file_seeds(files_with(&common::root().join("samples"), "wav"), 8192);
    // The short unusual shapes: 8-bit, float, mono, 16 kHz.
    for (bits, rate, channels) in [(8u16, 8000u32, 1u16), (32, 16000, 1), (24, 8000, 2)] {
        seeds.push(tiny_wav(bits, rate, channels));
    }
    fuzz(Target {
        name: "wav",
        seeds,
        text: false,
        run: |b| named(run_recording(b), "fuzz-input.wav"),
    });
}

/// A 0.1 s WAV of a sine in the given shape (float when `bits` is 32).
fn tiny_wav(bits: u16, rate: u32, channels: u16) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if bits == 32 {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut cursor, spec).expect("wav writer");
        for i in 0..rate / 10 * u32::from(channels) {
            let x = (i as f32 * 0.05).sin() * 0.5;
            match bits {
                32 => w.write_sample(x).expect("write"),
                8 => w.write_sample((x * 127.0) as i8).expect("write"),
                _ => w
                    .write_sample((x * ((1i32 << (bits - 1)) - 1) as f32) as i32)
                    .expect("write"),
            }
        }
        w.finalize().expect("finalize");
    }
    cursor.into_inner()
}

#[test]
fn fuzz_compressed() {
    let dir = common::root().join("tests/data/formats");
    let mut paths = Vec::new();
    for ext in ["mp3", "flac", "ogg"] {
        paths.extend(files_with(&dir, ext).into_iter().take(2));
    }
    fuzz(Target {
        name: "compressed",
        seeds: file_seeds(paths, 16384),
        text: false,
        run: |b| named(run_recording(b), "fuzz-input.wav"),
    });
}

#[test]
fn fuzz_rubric() {
    let mut seeds = Vec::new();
    for f in ["rubrics/12345.toml", "rubrics/centre-terms.toml"] {
        seeds.push(read(common::root().join(f)));
    }
    fuzz(Target {
        name: "rubric",
        seeds,
        text: true,
        run: |b| {
            let text = String::from_utf8_lossy(b);
            let out = callqc::rubric::parse::parse(&text, Path::new("fuzz-rubric.toml"))
                .map(|r| format!("{} items", r.items.len()))
                .map_err(|e| e.to_string());
            named(out, "fuzz-rubric.toml")
        },
    });
}

#[test]
fn fuzz_manifest() {
    let seeds = vec![
        b"path,agent_id,call_id,channel_map\ncalls/a.wav,1001,c-1,agent,caller\n# comment\n\ncalls/b.wav,,,left=caller,right=agent\n".to_vec(),
        b"a.wav\t2051\tcall05\tl=agent,r=caller\nb.mp3\t\t\t\n".to_vec(),
        b"x.wav,1,2,mixed,mixed\n".to_vec(),
    ];
    fuzz(Target {
        name: "manifest",
        seeds,
        text: true,
        run: |b| {
            let text = String::from_utf8_lossy(b);
            let mut calls = 0;
            for (i, line) in text.lines().enumerate() {
                if parse_manifest_line(i, line)
                    .map_err(|e| format!("line {}: {e}", i + 1))?
                    .is_some()
                {
                    calls += 1;
                }
            }
            Ok(format!("{calls} calls"))
        },
    });
}

#[test]
fn fuzz_sidecar() {
    let mut seeds = file_seeds(files_with(&common::root().join("samples"), "json"), 512);
    seeds.push(br#"{"call_id":"c1","agent_id":"1001","channel_map":{"left":"caller","right":"agent"},"source":"live","started_at":"2026-12-01T08:30:00Z"}"#.to_vec());
    fuzz(Target {
        name: "sidecar",
        seeds,
        text: true,
        run: |b| {
            let text = String::from_utf8_lossy(b);
            let side = Sidecar::parse(&text).map_err(|e| e.to_string())?;
            if let Some(at) = &side.started_at {
                callqc::time::parse_date(at);
            }
            Ok(format!(
                "agent {} call {} map {} source {}",
                side.agent_id.is_some(),
                side.call_id.is_some(),
                side.channel_map.is_some(),
                side.source.is_some()
            ))
        },
    });
}

#[test]
fn fuzz_ws_metadata() {
    let seeds = vec![
        br#"{"call_id":"c1","agent_id":"2051","sample_rate":8000,"channels":2,"agent_channel":0,"encoding":"L16","token":"t"}"#.to_vec(),
        br#"{"callId":"c2","agentId":"7","sampleRate":16000,"channels":1,"encoding":"PCMU"}"#.to_vec(),
        br#"{"uuid":"c3","agent_id":"x","sample_rate":8000,"channels":2,"agentChannel":1,"encoding":"alaw"}"#.to_vec(),
    ];
    fuzz(Target {
        name: "ws_metadata",
        seeds,
        text: true,
        run: |b| {
            let text = String::from_utf8_lossy(b);
            parse_metadata(&text, "fuzz-peer")
                .map(|(start, _)| format!("{:?} {} Hz", start.roles, start.sample_rate))
                .map_err(|e| e.to_string())
        },
    });
}

/// Binary frames after the metadata: any split of any bytes, for every encoding and channel
/// count; samples out must be exactly the whole sample frames in.
#[test]
fn fuzz_ws_frames() {
    let mut seeds = Vec::new();
    for s in file_seeds(files_with(&common::root().join("samples"), "wav"), 4096)
        .into_iter()
        .step_by(2)
    {
        seeds.push(s);
    }
    fuzz(Target {
        name: "ws_frames",
        seeds,
        text: false,
        run: |b| {
            // The first bytes choose the encoding, the channels and where messages split.
            let (Some(&e), Some(&c)) = (b.first(), b.get(1)) else {
                return Err("too short".into());
            };
            let encoding =
                [FrameEncoding::L16, FrameEncoding::Pcmu, FrameEncoding::Pcma][usize::from(e) % 3];
            let channels = 1 + usize::from(c % 2);
            let body = &b[2.min(b.len())..];
            let mut d = Deinterleaver::default();
            let mut got = 0;
            let mut at = 0;
            let mut step = 1 + usize::from(e) * 7 % 641;
            while at < body.len() {
                let end = (at + step).min(body.len());
                let out = d.push(encoding, channels, &body[at..end]);
                assert_eq!(out.len(), channels);
                let n = out[0].len();
                assert!(out.iter().all(|ch| ch.len() == n), "channels differ");
                got += n;
                at = end;
                step = 1 + (step * 31 + 7) % 641;
            }
            let frame = encoding.bytes_per_sample() * channels;
            assert_eq!(got, body.len() / frame, "samples out != whole frames in");
            assert_eq!(d.leftover(), body.len() % frame);
            Ok(format!("{got} samples"))
        },
    });
}

/// AudioSocket: a byte stream read message by message as a leg reads it, each decoded.
#[test]
fn fuzz_audiosocket() {
    let uuid = audiosocket::parse_uuid("0f8fad5b-d9cb-469f-a165-70867728950e").expect("uuid");
    let mut call = audiosocket::encode(0x01, &uuid);
    for i in 0..4u8 {
        call.extend(audiosocket::encode(0x10, &[i; 320]));
    }
    call.extend(audiosocket::encode(0x03, b"5"));
    call.extend(audiosocket::encode(0x12, &[7; 640]));
    call.extend(audiosocket::encode(0xff, &[0x02]));
    call.extend(audiosocket::encode(0x00, &[]));
    let registration =
        br#"{"call_id":"c1","agent_id":"2051","agent_uuid":"0f8fad5b-d9cb-469f-a165-70867728950e","caller_uuid":"0f8fad5bd9cb469fa16570867728950f"}"#.to_vec();
    fuzz(Target {
        name: "audiosocket",
        seeds: vec![call, registration],
        text: false,
        run: |b| {
            // The registration body a PBX posts, and its UUIDs.
            if let Ok(r) = serde_json::from_slice::<audiosocket::Registration>(b) {
                audiosocket::parse_uuid(&r.agent_uuid);
                if let Some(c) = &r.caller_uuid {
                    audiosocket::parse_uuid(c);
                }
            }
            let rt = RUNTIME.with(|r| r.clone());
            rt.block_on(async {
                let mut stream = b;
                let mut buf = Box::new([0u8; MAX_PAYLOAD]);
                let mut kinds = Vec::new();
                loop {
                    match audiosocket::read_message(&mut stream, &mut buf).await {
                        Ok(None) => return Ok(format!("{} messages", kinds.len())),
                        Ok(Some((kind, n))) => {
                            let m = audiosocket::decode(kind, &buf[..n])?;
                            kinds.push(format!("{m:?}").len());
                        }
                        Err(e) => return Err(format!("{e}")),
                    }
                }
            })
        },
    });
}

thread_local! {
    static RUNTIME: std::rc::Rc<tokio::runtime::Runtime> = std::rc::Rc::new(
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("tokio runtime"),
    );
}
