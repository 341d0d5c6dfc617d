//! Converts the real faster-whisper base model (CTranslate2, float16) and checks the result
//! against the reference conversion byte for byte, then loads the f16 and q8_0 outputs with
//! whisper-rs, which validates every tensor's name, type and shape.
//!
//! The model comes from the pinned PyPI wheels that `scripts/setup.sh` extracts into
//! `models/cache/whisper-base-ct2`. Without it these tests fail (they do not skip): a silently
//! skipped conversion test would let a broken converter ship.

use std::path::{Path, PathBuf};

use callqc::provision::ggml::GgmlFile;
use callqc::provision::{ConvertOptions, ConvertReport, Quantization, convert};
use sha2::{Digest, Sha256};
use whisper_rs::{WhisperContext, WhisperContextParameters};

/// sha256 of the reference ggml f16 conversion of whisper base (see
/// shared/docs/whisper-ct2-to-ggml.md).
const BASE_F16_SHA256: &str = "c0db470711f9496ec80feedb59b0916f10a0c301218e7254a61e7d3d1890dc6d";
const BASE_F16_BYTES: u64 = 147_951_465;
const BASE_TENSORS: usize = 245;

fn base_model_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/cache/whisper-base-ct2");
    for file in ["model.bin", "vocabulary.txt", "config.json"] {
        assert!(
            dir.join(file).is_file(),
            "{} is missing: run scripts/setup.sh first (it extracts the CTranslate2 whisper base \
             model from its pinned PyPI wheels)",
            dir.join(file).display()
        );
    }
    dir
}

fn convert_base(out: &Path, quantize: Option<Quantization>) -> ConvertReport {
    let opts = ConvertOptions { quantize };
    let report = convert(&base_model_dir(), out, &opts)
        .unwrap_or_else(|e| panic!("converting whisper base ({quantize:?}) failed: {e}"));
    eprintln!("{report:?}");
    report
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Loads `path` with whisper-rs and checks the hyper-parameters it reports.
fn load_with_whisper_rs(path: &Path, expected_ftype: i32) -> WhisperContext {
    let ctx = WhisperContext::new_with_params(path, WhisperContextParameters::default())
        .unwrap_or_else(|e| panic!("whisper-rs could not load {}: {e:?}", path.display()));
    assert!(ctx.is_multilingual(), "n_vocab 51865 means multilingual");
    assert_eq!(ctx.model_n_vocab(), 51865);
    assert_eq!(ctx.model_n_audio_state(), 512);
    assert_eq!(ctx.model_n_audio_head(), 8);
    assert_eq!(ctx.model_n_audio_layer(), 6);
    assert_eq!(ctx.model_n_text_layer(), 6);
    assert_eq!(ctx.model_n_mels(), 80);
    assert_eq!(ctx.model_ftype(), expected_ftype);
    ctx
}

#[test]
fn base_f16_is_byte_identical_to_the_reference_and_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ggml-base.bin");
    let report = convert_base(&out, None);

    assert_eq!(report.tensors, BASE_TENSORS);
    assert_eq!(report.bytes, BASE_F16_BYTES);
    assert_eq!(report.sha256, BASE_F16_SHA256);
    assert_eq!(report.source_dtype, "float16");
    assert_eq!(report.output_type, "f16");
    assert_eq!(
        (report.n_vocab, report.n_text_tokens, report.n_mels),
        (51865, 50257, 80)
    );
    assert_eq!(
        (
            report.n_audio_state,
            report.n_audio_head,
            report.n_audio_layer
        ),
        (512, 8, 6)
    );
    assert_eq!(
        (
            report.n_audio_ctx,
            report.n_text_ctx,
            report.n_text_head,
            report.n_text_layer
        ),
        (1500, 448, 8, 6)
    );

    // The report's hash is computed while writing; hash what actually landed on disk too.
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(bytes.len() as u64, BASE_F16_BYTES);
    assert_eq!(sha256_hex(&bytes), BASE_F16_SHA256);
    // Nothing but the output is left in the directory (the temporary file was renamed).
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);

    let ctx = load_with_whisper_rs(&out, 1);
    // The vocabulary is raw bytes: 'Ġ' in vocabulary.txt became a space, and Chinese text
    // survives tokenisation and detokenisation unchanged.
    assert_eq!(ctx.token_to_bytes(220).unwrap(), b" ");
    let text = "您好，这里是政务服务热线。";
    let tokens = ctx.tokenize(text, 64).unwrap();
    let round_trip: Vec<u8> = tokens
        .iter()
        .flat_map(|&t| ctx.token_to_bytes(t).unwrap().to_vec())
        .collect();
    assert_eq!(String::from_utf8(round_trip).unwrap(), text);
}

#[test]
fn base_q5_0_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ggml-base-q5_0.bin");
    let report = convert_base(&out, Some(Quantization::Q5_0));
    assert_eq!(report.tensors, BASE_TENSORS);
    assert_eq!(report.output_type, "q5_0");
    // whisper.cpp's ftype for "mostly q5_0" is 8.
    load_with_whisper_rs(&out, 8);
}

#[test]
fn base_q8_0_is_structurally_right_and_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ggml-base-q8_0.bin");
    let report = convert_base(&out, Some(Quantization::Q8_0));
    assert_eq!(report.tensors, BASE_TENSORS);
    assert_eq!(report.output_type, "q8_0");

    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(bytes.len() as u64, report.bytes);
    assert_eq!(sha256_hex(&bytes), report.sha256);
    // q8_0 stores 34 bytes per 32 weights instead of 64: a bit over half the f16 file.
    assert!(
        report.bytes < BASE_F16_BYTES * 6 / 10,
        "q8_0 file is {} bytes",
        report.bytes
    );

    let file = GgmlFile::parse(&bytes).unwrap();
    assert_eq!(file.hparams.ftype, 2007);
    let quantised = file
        .tensors
        .iter()
        .filter(|t| t.ttype == callqc::provision::ggml::GgmlType::Q8_0)
        .count();
    // Every 2-D weight matrix is quantised: 6 per encoder block (q, k, v, out, mlp.0, mlp.2),
    // 10 per decoder block (4 more for cross-attention), plus the token embedding.
    assert_eq!(quantised, 6 * 6 + 6 * 10 + 1);

    // whisper.cpp strips the quantisation version (2000) from the ftype it reports.
    load_with_whisper_rs(&out, 7);
}
