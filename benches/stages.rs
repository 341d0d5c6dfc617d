//! Criterion benchmarks of every stage of a call except whisper, on the committed samples.
//!
//!     cargo bench --bench stages            # ~1–2 min on 2 cores
//!     cargo bench --bench stages -- vad     # one group
//!
//! | group | what one iteration does |
//! |---|---|
//! | `decode_resample` | read + decode a stereo 8 kHz WAV (PCM, G.711 μ-law) and resample both channels to 16 kHz |
//! | `vad` | silero VAD over one 41.5 s channel (call01, agent) → speech regions |
//! | `tone` | tone features + the ONNX tone model (`models/tone.onnx`) over the agent's VAD utterances |
//! | `rubric` | `rubrics/12345.toml` over a 30-minute synthetic transcript (≈ 500 segments) |
//! | `store` | `save_call` of one analysed call into a temporary SQLite database (one transaction) |
//!
//! Whisper itself is measured end to end by `scripts/bench-compare.sh`; these numbers show that
//! everything around it is small (the batch's stage split shows the same in production).
//! Needs the models of `scripts/setup.sh` (ONNX Runtime, silero VAD, tone model).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

use callqc::asr::Segment;
use callqc::audio::roles::load_call_audio;
use callqc::audio::{ChannelMap, Role, RoleAudio};
use callqc::eval::GroundTruth;
use callqc::rubric::{self, CallFacts, Rubric};
use callqc::store::Store;
use callqc::store::write::{CallMeta, CallRows};
use callqc::tone::{ToneScorer, ToneWindow};
use callqc::vad::{SpeechRegions, Vad, VadParams};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn models() -> PathBuf {
    callqc::settings::models_dir(Some(&root().join("models")))
}

fn sample(name: &str) -> PathBuf {
    root().join("samples").join(name)
}

fn truth(name: &str) -> GroundTruth {
    let text = std::fs::read_to_string(sample(&format!("{name}.json"))).expect("sample json");
    serde_json::from_str(&text).expect("ground truth")
}

fn roles_of(name: &str) -> Vec<RoleAudio> {
    load_call_audio(&sample(&format!("{name}.wav")), ChannelMap::default())
        .expect("decode sample")
        .1
}

/// Small, quick groups: 10 samples, a few seconds each.
fn quick<'a>(
    c: &'a mut Criterion,
    name: &str,
    secs: u64,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(secs));
    g
}

fn bench_decode(c: &mut Criterion) {
    let mut g = quick(c, "decode_resample", 3);
    for (call, what) in [("call01", "pcm16_41s"), ("call02", "mulaw_36s")] {
        let path = sample(&format!("{call}.wav"));
        g.bench_function(what, |b| {
            b.iter(|| load_call_audio(black_box(&path), ChannelMap::default()).unwrap())
        });
    }
    g.finish();
}

fn bench_vad(c: &mut Criterion) {
    let agent = roles_of("call01").remove(0);
    let mut vad = Vad::load(&models(), VadParams::default()).expect("silero VAD");
    let mut g = quick(c, "vad", 5);
    g.bench_function("silero_channel_41s", |b| {
        b.iter(|| vad.detect(black_box(&agent)).unwrap())
    });
    g.finish();
}

fn bench_tone(c: &mut Criterion) {
    let m = models();
    let agent = roles_of("call03").remove(0);
    let mut vad = Vad::load(&m, VadParams::default()).expect("silero VAD");
    let spans: Vec<(f64, f64)> = vad
        .detect(&agent)
        .unwrap()
        .regions
        .iter()
        .map(|r| (r.start, r.end))
        .collect();
    let mut scorer = ToneScorer::load(&m, &m.join("tone.onnx"), 1).expect("tone model");
    let mut g = quick(c, "tone", 3);
    g.bench_function("agent_channel_42s", |b| {
        b.iter(|| scorer.score_role(black_box(&agent), &spans, None).unwrap())
    });
    g.finish();
}

/// A long call made of every sample's scripted utterances, repeated on one timeline until it
/// lasts `minutes`: written text (digits as digits), both roles, speech regions at the
/// utterances and one calm tone window per agent utterance.
struct Synthetic {
    duration_s: f64,
    segments: Vec<Segment>,
    speech: Vec<SpeechRegions>,
    tone: Vec<ToneWindow>,
}

fn synthetic_call(minutes: f64) -> Synthetic {
    let calls: Vec<GroundTruth> = (1..=8).map(|i| truth(&format!("call{i:02}"))).collect();
    let mut segments = Vec::new();
    let mut offset = 0.0;
    'outer: loop {
        for t in &calls {
            let end = t.utterances.iter().map(|u| u.end).fold(0.0, f64::max) + 1.0;
            if offset + end > minutes * 60.0 {
                break 'outer;
            }
            for u in &t.utterances {
                segments.push(Segment {
                    role: u.channel,
                    start: offset + u.start,
                    end: offset + u.end,
                    text: u.text.clone(),
                    confidence: 0.8,
                    avg_logprob: -0.3,
                    no_speech_prob: 0.01,
                });
            }
            offset += end;
        }
    }
    with_facts(segments, offset)
}

/// Speech regions at the segments, and one calm tone window per agent segment.
fn with_facts(segments: Vec<Segment>, duration_s: f64) -> Synthetic {
    let speech = SpeechRegions::of_stereo_spans(segments.iter().map(|s| (s.role, s.start, s.end)));
    let tone = segments
        .iter()
        .filter(|s| s.role == Role::Agent)
        .map(|s| ToneWindow {
            role: Role::Agent,
            start: s.start,
            end: s.end,
            p_calm: 0.9,
            p_tense: 0.08,
            p_agitated: 0.02,
            features: Some(vec![0.0; 8]),
        })
        .collect();
    Synthetic {
        duration_s,
        segments,
        speech,
        tone,
    }
}

fn load_rubric() -> Rubric {
    rubric::load(&root().join("rubrics/12345.toml")).expect("rubric")
}

fn bench_rubric(c: &mut Criterion) {
    let rubric = load_rubric();
    let call = synthetic_call(30.0);
    let facts = CallFacts {
        duration_s: call.duration_s,
        segments: &call.segments,
        speech: &call.speech,
        tone: &call.tone,
    };
    let mut g = quick(c, "rubric", 3);
    g.bench_function(
        format!("check_30min_{}segments", call.segments.len()),
        |b| b.iter(|| rubric::check(black_box(&rubric), black_box(&facts))),
    );
    g.finish();
}

fn bench_store(c: &mut Criterion) {
    let rubric = load_rubric();
    // One real-sized call: call05's script (forbidden phrases, so findings are written too).
    let t = truth("call05");
    let segments = t
        .utterances
        .iter()
        .map(|u| Segment {
            role: u.channel,
            start: u.start,
            end: u.end,
            text: u.text.clone(),
            confidence: 0.8,
            avg_logprob: -0.3,
            no_speech_prob: 0.01,
        })
        .collect();
    let call = with_facts(segments, 43.6);
    let facts = CallFacts {
        duration_s: call.duration_s,
        segments: &call.segments,
        speech: &call.speech,
        tone: &call.tone,
    };
    let (findings, score) = rubric::check(&rubric, &facts);

    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = Store::open(&dir.path().join("bench.db")).expect("open db");
    let run_id = store
        .begin_run(
            "bench",
            "{}",
            Some((&rubric.name, &rubric.version, &rubric.source_hash)),
            "{}",
        )
        .unwrap();
    let baseline: Option<callqc::tone::Baseline> = None;
    let mut n = 0u64;
    let mut g = quick(c, "store", 3);
    g.bench_function(
        format!(
            "save_call_{}seg_{}tone_{}findings",
            call.segments.len(),
            call.tone.len(),
            findings.len()
        ),
        |b| {
            b.iter(|| {
                n += 1;
                let meta = CallMeta {
                    call_key: format!("bench-{n}"),
                    path: "samples/call05.wav".into(),
                    audio_hash: format!("{n:064x}"),
                    agent_id: Some("6618".into()),
                    channel_map: callqc::audio::ChannelMap::default(),
                    source: callqc::store::Source::Batch,
                    models_key: "bench".into(),
                    run_id: Some(run_id),
                    started_at: None,
                };
                let rows = CallRows {
                    duration_s: call.duration_s,
                    sample_rate: 8000,
                    channels: 2,
                    encoding: callqc::audio::Encoding::PcmInt { bits: 16 },
                    segments: &call.segments,
                    raw_texts: &[],
                    speech: &call.speech,
                    tone: &call.tone,
                    findings: &findings,
                    speakers: None,
                    tone_baseline: baseline.as_ref(),
                    tone_threshold: 0.5,
                    score: &score,
                    rubric_hash: &rubric.source_hash,
                };
                store.save_call(&meta, black_box(&rows)).unwrap()
            })
        },
    );
    g.finish();
    drop(store);
}

criterion_group!(
    stages,
    bench_decode,
    bench_vad,
    bench_tone,
    bench_rubric,
    bench_store
);
criterion_main!(stages);
