//! Criterion benchmarks of ONE whisper window, the unit every callqc speed-up works on:
//!
//!     cargo bench --bench whisper          # ~3–4 min on 2 cores (each iteration is seconds)
//!
//! The window is what the default packing gives for the agent channel of call01 (silero VAD
//! regions packed into up to 28 s with 0.5 s pauses), decoded by the default model
//! (models/ggml-base-q8_0.bin). Everything runs on ONE thread, as each worker of a 2-core batch
//! does.
//!
//! | group | what one iteration does |
//! |---|---|
//! | `whisper_encode` | the encoder alone over a full 30 s context (the fixed cost of every window), flash attention off (callqc today: whisper-rs defaults it off) and on (whisper.cpp's own default) |
//! | `whisper_full` | `whisper_full` on the window as callqc's recogniser calls it (language zh, no context, temperature fallback, suppress non-speech tokens): greedy vs beam 5, full 1500-frame context vs the shrunk one (the default: window length + `--ctx-margin` 32 frames, at least 384), flash attention off / on |
//!
//! `CALLQC_BENCH_DUMP_WINDOW=FILE` also writes the window (raw f32 LE, 16 kHz) for experiments
//! outside the crate. Speed only: flash attention changes the arithmetic slightly, so its CER
//! must be measured end to end (scripts/bench-compare.sh) before it is switched on.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use whisper_rs::{WhisperContext, WhisperContextParameters};

use callqc::asr::AsrParams;
use callqc::asr::pack::pack;
use callqc::asr::whisper::{audio_ctx, full_params};
use callqc::audio::roles::load_call_audio;
use callqc::audio::{ChannelMap, TARGET_RATE};
use callqc::vad::{Vad, VadParams};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The first packed window of call01's agent channel.
fn window() -> Vec<f32> {
    let models = root().join("models");
    let (_, roles) =
        load_call_audio(&root().join("samples/call01.wav"), ChannelMap::default()).unwrap();
    let agent = &roles[0];
    let mut vad = Vad::load(&models, VadParams::default()).expect("silero VAD");
    let regions = vad.detect(agent).unwrap();
    let w = pack(agent, &regions.regions, AsrParams::default().pack).remove(0);
    // For experiments outside this crate (e.g. whisper.cpp built another way): the window as
    // raw little-endian f32 at 16 kHz.
    if let Some(path) = std::env::var_os("CALLQC_BENCH_DUMP_WINDOW") {
        let bytes: Vec<u8> = w.samples.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(path, bytes).expect("write the window");
    }
    w.samples
}

fn context(flash_attn: bool) -> WhisperContext {
    let model = root().join("models/ggml-base-q8_0.bin");
    let mut p = WhisperContextParameters::default();
    p.flash_attn(flash_attn);
    WhisperContext::new_with_params(model.to_str().unwrap(), p).expect("models/ggml-base-q8_0.bin")
}

/// callqc's decoding settings ([`callqc::asr::whisper::full_params`]) with another beam and
/// context policy.
fn with(defaults: &AsrParams, beam: u32, shrink: bool) -> AsrParams {
    AsrParams {
        beam_size: beam,
        shrink_audio_ctx: shrink,
        ..defaults.clone()
    }
}

fn bench_whisper(c: &mut Criterion) {
    whisper_rs::install_logging_hooks();
    let samples = window();
    let secs = samples.len() as f64 / TARGET_RATE as f64;
    let defaults = AsrParams::default();
    let shrunk = audio_ctx(&defaults, samples.len());
    eprintln!("window: {secs:.1} s of call01's agent channel; shrunk context {shrunk} frames");

    let mut g = c.benchmark_group("whisper_encode");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    for fa in [false, true] {
        let ctx = context(fa);
        let mut state = ctx.create_state().unwrap();
        state.pcm_to_mel(&samples, 1).unwrap();
        let name = format!("ctx1500_flash_attn_{}", if fa { "on" } else { "off" });
        g.bench_function(name, |b| b.iter(|| state.encode(0, 1).unwrap()));
    }
    g.finish();

    let mut g = c.benchmark_group("whisper_full");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20));
    // (beam, shrink the context, flash attention)
    let cases: [(u32, bool, bool); 6] = [
        (1, false, false),
        (1, true, false),
        (1, true, true),
        (5, false, false),
        (5, true, false),
        (5, true, true),
    ];
    for fa in [false, true] {
        let ctx = context(fa);
        let mut state = ctx.create_state().unwrap();
        for &(beam, shrink, _) in cases.iter().filter(|c| c.2 == fa) {
            let p = with(&defaults, beam, shrink);
            let name = format!(
                "{}_ctx{}_flash_attn_{}",
                if beam <= 1 { "greedy" } else { "beam5" },
                if shrink { shrunk } else { 1500 },
                if fa { "on" } else { "off" }
            );
            g.bench_function(name, |b| {
                b.iter(|| {
                    let fp = full_params(&p, 1, samples.len(), false);
                    state.full(fp, &samples).unwrap()
                })
            });
        }
    }
    g.finish();
}

criterion_group!(whisper, bench_whisper);
criterion_main!(whisper);
