//! Criterion benchmarks of ONE whisper window, the unit every callqc speed-up works on:
//!
//!     cargo bench --bench whisper          # ~3–4 min on 2 cores (each iteration is seconds)
//!
//! The window is what `--pack 28` gives for the agent channel of call01 (silero VAD regions
//! packed with 1 s pauses). Everything runs on ONE thread, as each worker of a 2-core batch does.
//!
//! | group | what one iteration does |
//! |---|---|
//! | `whisper_encode` | the encoder alone over a full 30 s context (the fixed cost of every window), flash attention off (callqc today: whisper-rs defaults it off) and on (whisper.cpp's own default) |
//! | `whisper_full` | `whisper_full` on the window as callqc's recogniser calls it (language zh, no context, temperature fallback, suppress non-speech tokens): greedy vs beam 5, full 1500-frame context vs the shrunk one (`--shrink-ctx`: window length + 128 frames, at least 384), flash attention off / on |
//!
//! `CALLQC_BENCH_DUMP_WINDOW=FILE` also writes the window (raw f32 LE, 16 kHz) for experiments
//! outside the crate. Speed only: flash attention changes the arithmetic slightly, so its CER must be measured end
//! to end (scripts/bench-compare.sh) before it is switched on.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

use callqc::asr::pack::{PackPolicy, pack};
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
    let policy = PackPolicy::Packed {
        max_window_s: 28.0,
        gap_s: 1.0,
    };
    let w = pack(agent, &regions.regions, policy).remove(0);
    // For experiments outside this crate (e.g. whisper.cpp built another way): the window as
    // raw little-endian f32 at 16 kHz.
    if let Some(path) = std::env::var_os("CALLQC_BENCH_DUMP_WINDOW") {
        let bytes: Vec<u8> = w.samples.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(path, bytes).expect("write the window");
    }
    w.samples
}

fn context(flash_attn: bool) -> WhisperContext {
    let model = root().join("models/ggml-base.bin");
    let mut p = WhisperContextParameters::default();
    p.flash_attn(flash_attn);
    WhisperContext::new_with_params(model.to_str().unwrap(), p).expect("models/ggml-base.bin")
}

/// callqc's decoding settings (src/asr/whisper.rs), one thread.
fn params(beam: i32, audio_ctx: i32) -> FullParams<'static, 'static> {
    let strategy = if beam <= 1 {
        SamplingStrategy::Greedy { best_of: 1 }
    } else {
        SamplingStrategy::BeamSearch {
            beam_size: beam,
            patience: -1.0,
        }
    };
    let mut fp = FullParams::new(strategy);
    fp.set_n_threads(1);
    fp.set_language(Some("zh"));
    fp.set_translate(false);
    fp.set_no_context(true);
    fp.set_print_special(false);
    fp.set_print_progress(false);
    fp.set_print_realtime(false);
    fp.set_print_timestamps(false);
    fp.set_suppress_nst(true);
    fp.set_suppress_blank(true);
    fp.set_no_speech_thold(0.6);
    fp.set_logprob_thold(-1.0);
    fp.set_entropy_thold(2.4);
    fp.set_temperature(0.0);
    fp.set_temperature_inc(0.2);
    fp.set_audio_ctx(audio_ctx);
    fp
}

fn bench_whisper(c: &mut Criterion) {
    whisper_rs::install_logging_hooks();
    let samples = window();
    let secs = samples.len() as f64 / TARGET_RATE as f64;
    let shrunk = ((secs / 30.0 * 1500.0) as i32 + 128).clamp(384, 1500);
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
    let cases: [(i32, i32, bool); 6] = [
        (1, 0, false),
        (1, shrunk, false),
        (1, shrunk, true),
        (5, 0, false),
        (5, shrunk, false),
        (5, shrunk, true),
    ];
    for fa in [false, true] {
        let ctx = context(fa);
        let mut state = ctx.create_state().unwrap();
        for &(beam, actx, _) in cases.iter().filter(|c| c.2 == fa) {
            let name = format!(
                "{}_{}_flash_attn_{}",
                if beam <= 1 { "greedy" } else { "beam5" },
                if actx == 0 {
                    "ctx1500".to_string()
                } else {
                    format!("ctx{actx}")
                },
                if fa { "on" } else { "off" }
            );
            g.bench_function(name, |b| {
                b.iter(|| state.full(params(beam, actx), &samples).unwrap())
            });
        }
    }
    g.finish();
}

criterion_group!(whisper, bench_whisper);
criterion_main!(whisper);
