//! Silero VAD through ort on real human speech: the regions must agree with the human-labelled
//! speaker turns of the pyannote sample (a real two-speaker phone-style conversation).

mod common;

use callqc::audio::roles::load_call_audio;
use callqc::audio::{ChannelMap, TARGET_RATE};
use callqc::vad::{Vad, VadParams};
use common::*;

fn overlap(a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.1.min(b.1) - a.0.max(b.0)).max(0.0)
}

#[test]
fn vad_regions_match_labelled_speech_turns() {
    require_onnx();
    let wav = root().join("models/cache/testdata/pyannote-sample.wav");
    let rttm = std::fs::read_to_string(wav.with_extension("rttm"))
        .expect("pyannote sample missing: run scripts/setup.sh first");
    let turns: Vec<(f64, f64)> = rttm
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (s, d): (f64, f64) = (f.get(3)?.parse().ok()?, f.get(4)?.parse().ok()?);
            Some((s, s + d))
        })
        .collect();
    assert!(!turns.is_empty());
    let (_, roles) = load_call_audio(&wav, ChannelMap::default()).unwrap();
    let mut vad = Vad::load(&root().join("models"), VadParams::default()).unwrap();
    let regions = vad.detect(&roles[0]).unwrap();
    let found: Vec<(f64, f64)> = regions.regions.iter().map(|r| (r.start, r.end)).collect();

    let speech: f64 = turns.iter().map(|t| t.1 - t.0).sum();
    let detected: f64 = found.iter().map(|r| r.1 - r.0).sum();
    let hit: f64 = turns
        .iter()
        .map(|t| found.iter().map(|r| overlap(*t, *r)).sum::<f64>())
        .sum();
    // Turns can overlap each other, so cap the hit count at what was detected.
    let recall = hit / speech;
    let precision = hit.min(detected) / detected;
    assert!(recall > 0.85, "recall {recall:.2} ({hit:.1}/{speech:.1} s)");
    assert!(precision > 0.80, "precision {precision:.2}");
    assert!(roles[0].samples.len() as f64 / TARGET_RATE as f64 > 20.0);
}
