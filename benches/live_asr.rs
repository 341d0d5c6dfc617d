//! How the live decoding of each finished agent utterance trades speed for accuracy:
//!
//!     cargo bench --bench live_asr        # ~3 min on 2 cores
//!
//! A live worker decodes every finished agent utterance on its own (no packing: the warning
//! cannot wait for the next utterance), on one thread. Whisper's encoder runs over the shrunk
//! context — the utterance plus a margin, but never less than `min_ctx_frames` — so for the short
//! utterances of a call the floor, not the audio, sets the encoder's cost. This runs the
//! labelled samples' agent channels (silero VAD regions, as live) at several floors and prints,
//! per floor: the decode time (one thread), the agent's CER against the ground truth, and the
//! 禁语 the rubric finds in those live transcripts against the labelled ones (a 禁语 missed live
//! is a warning never shown; one invented is a false alarm on an agent's screen).

use std::path::PathBuf;
use std::time::Instant;

use callqc::asr::pack::PackPolicy;
use callqc::asr::{AsrParams, Recognizer, Transcript};
use callqc::audio::Role;
use callqc::audio::roles::load_call_audio;
use callqc::eval::{call_cer, find_labelled_calls};
use callqc::rubric::{CallFacts, Kind};
use callqc::text::CerCount;
use callqc::vad::{Vad, VadParams};

#[path = "support/cpu.rs"]
mod cpu;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let models = root.join("models");
    let rubric = callqc::rubric::load(&root.join("rubrics/12345.toml")).expect("rubric");
    let (model, simd) = cpu::cpu();
    println!(
        "CPU: {model}; SIMD: {simd}; cores: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let floors: Vec<u32> = std::env::var("CALLQC_MIN_CTX")
        .unwrap_or_else(|_| "384,256,192,128".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();

    // Every labelled call's agent channel and its VAD regions, once.
    let mut vad = Vad::load(&models, VadParams::default()).expect("silero VAD");
    let mut calls = Vec::new();
    for call in find_labelled_calls(&root.join("samples")).expect("samples") {
        let (_, roles) = load_call_audio(&call.audio_path, call.truth.channel_map()).unwrap();
        let agent = roles.into_iter().find(|a| a.role == Role::Agent).unwrap();
        let regions = vad.detect(&agent).unwrap();
        calls.push((call.truth, agent, regions));
    }
    let utterances: usize = calls.iter().map(|c| c.2.regions.len()).sum();
    let speech_s: f64 = calls
        .iter()
        .flat_map(|c| &c.2.regions)
        .map(|r| r.end - r.start)
        .sum();
    println!(
        "{} calls, {utterances} agent utterances, {speech_s:.1} s of agent speech; models/ggml-base-q8_0.bin, greedy, one thread\n",
        calls.len()
    );
    println!(
        "| min_ctx_frames | decode s | per utterance ms | agent CER % | 禁语 found live | of labelled | not labelled |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for &floor in &floors {
        let params = AsrParams {
            min_ctx_frames: floor,
            ..AsrParams::default()
        };
        let mut rec =
            Recognizer::load(&models.join("ggml-base-q8_0.bin"), params, 1).expect("whisper");
        let (mut cer, mut found, mut hit, mut extra, mut labelled) =
            (CerCount::default(), 0, 0, 0, 0);
        let started = Instant::now();
        let mut transcripts: Vec<Transcript> = Vec::new();
        for (_, agent, regions) in &calls {
            let mut t = Transcript::default();
            for r in &regions.regions {
                let part = rec
                    .recognize_with(agent, std::slice::from_ref(r), PackPolicy::PerRegion)
                    .unwrap();
                t.segments.extend(part.segments);
            }
            t.sort();
            transcripts.push(t);
        }
        let decode_s = started.elapsed().as_secs_f64();
        for ((truth, agent, regions), t) in calls.iter().zip(&transcripts) {
            cer.add(call_cer(truth, t, &[Role::Agent]).total);
            let speech = [regions.clone()];
            let facts = CallFacts {
                duration_s: agent.duration_s(),
                segments: &t.segments,
                speech: &speech,
                tone: &[],
            };
            let phrases: Vec<String> = rubric
                .items
                .iter()
                .filter(|i| i.rule.kind() == Kind::ForbiddenPhrase)
                .flat_map(|i| i.rule.as_kind().check(i, &facts))
                .filter(|f| !f.observation)
                .map(|f| f.evidence)
                .collect();
            found += phrases.len();
            labelled += truth.labels.forbidden.len();
            for p in &phrases {
                if truth
                    .labels
                    .forbidden
                    .iter()
                    .any(|l| p.contains(l.as_str()))
                {
                    hit += 1;
                } else {
                    extra += 1;
                }
            }
        }
        println!(
            "| {floor} | {decode_s:.1} | {:.0} | {:.1} | {found} | {hit} of {labelled} | {extra} |",
            1000.0 * decode_s / utterances.max(1) as f64,
            100.0 * cer.rate().unwrap_or(0.0)
        );
    }
}
