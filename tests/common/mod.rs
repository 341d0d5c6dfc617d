//! Helpers shared by the integration tests: the real binary, the real models, the samples.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fail (not skip) when the set-up has not been run: the tests are about the real models.
pub fn require_models() {
    require(&[
        "ggml-base.bin",
        "ggml-base-q8_0.bin",
        "silero_vad.onnx",
        "onnxruntime/libonnxruntime.so",
    ]);
}

/// ONNX Runtime and the VAD model only.
pub fn require_onnx() {
    require(&["silero_vad.onnx", "onnxruntime/libonnxruntime.so"]);
}

fn require(files: &[&str]) {
    for f in files {
        let p = root().join("models").join(f);
        assert!(
            p.exists(),
            "{} is missing: run scripts/setup.sh first",
            p.display()
        );
    }
}

pub fn callqc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callqc"))
        .args(args)
        .current_dir(root())
        .env_remove("CALLQC_MODELS")
        .output()
        .expect("run callqc")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn sample(name: &str) -> PathBuf {
    root().join("samples").join(name)
}

pub fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).expect("read json")).expect("parse json")
}

/// A worker with the default whisper model (base q8_0), VAD and tone model, `threads` whisper
/// threads: what the in-process tests analyse with.
pub fn worker(threads: usize) -> callqc::pipeline::call::Worker {
    use callqc::pipeline::call::{VadMode, Worker, WorkerConfig};
    require_models();
    let models = root().join("models");
    Worker::load(&WorkerConfig {
        whisper_model: models.join("ggml-base-q8_0.bin"),
        tone_model: models.join("tone.onnx"),
        models_dir: models,
        asr: callqc::asr::AsrParams::default(),
        vad: callqc::vad::VadParams::default(),
        vad_mode: VadMode::Silero,
        whisper_threads: threads,
        onnx_threads: 1,
        agent_only: false,
        keep_bleed: false,
    })
    .expect("models load")
}
