//! Recordings as recorders store them: the bundled calls as MP3 and Ogg Vorbis, call05 as FLAC
//! (made by scripts/make-format-samples.sh) transcribe like the WAVs — CER against the ground
//! truth within a point of the WAVs'; GSM 6.10 is refused with the fix; broken
//! compressed files are clear errors naming the file, never panics.

mod common;

use std::path::Path;

use callqc::asr::Transcript;
use callqc::audio::decode::{decode_bytes, decode_file};
use callqc::audio::{AudioError, Encoding, Role};
use callqc::eval::{GroundTruth, call_cer};
use callqc::pipeline::call::Worker;
use callqc::pipeline::events::{CallEvent, Pass, Source};
use callqc::pipeline::session::{CallJob, SessionMode, analyze_recording};
use callqc::pipeline::sinks::VecSink;

/// Edits and reference characters of `file`'s transcript against `truth`.
fn cer_of(w: &mut Worker, truth: &GroundTruth, file: &Path) -> (usize, usize) {
    let rubric = callqc::rubric::load(&common::root().join("rubrics/12345.toml")).unwrap();
    let job = CallJob {
        path: file.to_path_buf(),
        agent_id: truth.agent_id.clone(),
        call_id: None,
        channel_map: truth.channel_map(),
        source: Source::Batch,
        started_at: None,
    };
    let mut sink = VecSink::default();
    analyze_recording(w, &rubric, &mut sink, 1, &job, None, SessionMode::Recording)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(
        sink.events
            .iter()
            .any(|(_, e)| matches!(e, CallEvent::Ended(_)))
    );
    let transcript = Transcript {
        segments: sink.segments(Pass::Final).into_iter().cloned().collect(),
        dropped: Vec::new(),
    };
    let c = call_cer(truth, &transcript, &[Role::Agent, Role::Caller]).total;
    (c.edits, c.reference_chars)
}

fn percent((edits, chars): (usize, usize)) -> f64 {
    100.0 * edits as f64 / chars.max(1) as f64
}

#[test]
fn mp3_and_ogg_of_every_call_transcribe_like_the_wavs_and_flac_is_lossless() {
    let samples = common::root().join("samples");
    let formats = common::root().join("tests/data/formats");
    let mut w = common::worker(2);
    let mut totals = [(0, 0); 3]; // wav, mp3, ogg
    for n in 1..=8 {
        let name = format!("call0{n}");
        let truth: GroundTruth = serde_json::from_str(
            &std::fs::read_to_string(samples.join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        let wav = samples.join(format!("{name}.wav"));
        let duration = decode_file(&wav).unwrap().duration_s();
        for (i, file) in [
            wav.clone(),
            formats.join(format!("{name}.mp3")),
            formats.join(format!("{name}.ogg")),
        ]
        .iter()
        .enumerate()
        {
            let rec = decode_file(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert_eq!(rec.channels.len(), 2, "{}", file.display());
            assert_eq!(rec.sample_rate, 8000, "{}", file.display());
            // The encoders' delay and padding are trimmed (gapless): the same length, within
            // a frame.
            assert!(
                (rec.duration_s() - duration).abs() < 0.15,
                "{}: {} s vs {duration} s",
                file.display(),
                rec.duration_s()
            );
            let (e, c) = cer_of(&mut w, &truth, file);
            totals[i].0 += e;
            totals[i].1 += c;
        }
    }
    let [wav, mp3, ogg] = totals.map(percent);
    eprintln!("CER over the 8 calls: WAV {wav:.2} %, MP3 64 kbit/s {mp3:.2} %, Ogg q3 {ogg:.2} %");
    assert!((mp3 - wav).abs() <= 1.0, "MP3 {mp3:.2} % vs WAV {wav:.2} %");
    assert!((ogg - wav).abs() <= 1.0, "Ogg {ogg:.2} % vs WAV {wav:.2} %");

    let flac = decode_file(&formats.join("call05.flac")).unwrap();
    assert_eq!(flac.encoding, Encoding::Flac);
    assert_eq!(
        flac.channels,
        decode_file(&samples.join("call05.wav")).unwrap().channels,
        "FLAC is lossless: the WAV's very samples"
    );
    assert_eq!(
        decode_file(&formats.join("call05.mp3")).unwrap().encoding,
        Encoding::Mp3
    );
    assert_eq!(
        decode_file(&formats.join("call05.ogg")).unwrap().encoding,
        Encoding::Vorbis
    );
}

#[test]
fn gsm_wav_is_refused_with_the_conversion_to_run() {
    let file = common::root().join("tests/data/formats/call05-gsm.wav");
    let err = decode_file(&file).unwrap_err();
    assert!(matches!(err, AudioError::Unsupported { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("GSM 6.10"), "{msg}");
    assert!(msg.contains("sox"), "{msg}");
    assert!(msg.contains("call05-gsm.wav"), "{msg}");
}

#[test]
fn broken_compressed_files_are_errors_naming_the_file_or_decode_what_is_there() {
    let dir = common::root().join("tests/data/formats");
    for name in ["call05.mp3", "call05.flac", "call05.ogg"] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let path = Path::new("/calls/broken").join(name);
        // Cut short: what is there decodes, or the error names the file.
        for cut in [bytes.len() / 2, 64, 5] {
            match decode_bytes(&path, &bytes[..cut]) {
                Ok(rec) => assert!(rec.duration_s() < 30.0, "{name} cut at {cut}"),
                Err(e) => assert!(e.to_string().contains("/calls/broken"), "{e}"),
            }
        }
        // Garbage after a valid magic.
        let mut garbage = bytes[..4].to_vec();
        garbage.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        if let Err(e) = decode_bytes(&path, &garbage) {
            assert!(e.to_string().contains("/calls/broken"), "{e}");
        }
        // Flipped bytes in the middle: decodes (bad frames skipped) or a clear error.
        let mut flipped = bytes.clone();
        for i in (bytes.len() / 3..bytes.len() / 3 + 2000).step_by(7) {
            flipped[i] ^= 0x5A;
        }
        if let Err(e) = decode_bytes(&path, &flipped) {
            assert!(e.to_string().contains("/calls/broken"), "{e}");
        }
    }
}
