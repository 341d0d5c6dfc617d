//! CTranslate2 whisper → whisper.cpp ggml conversion.
//!
//! [`convert`] reads `model.bin`, `vocabulary.txt` (or `vocabulary.json`) and, if present,
//! `config.json` from a faster-whisper model directory and writes the ggml file whisper-rs loads.
//! The result is deterministic: for the float16 base model it is byte-identical to the reference
//! conversion (sha256 `c0db4707…`, 147,951,465 bytes, 245 tensors), which the integration test
//! checks.
//!
//! What the conversion has to get right, and why:
//! - **Names and splits.** CTranslate2 fuses the self-attention q;k;v projections into one
//!   `[3d, d]` matrix and the cross-attention k;v into `[2d, d]`; whisper.cpp wants them apart and
//!   has no key bias (a key bias shifts every attention logit of a query by the same amount, so
//!   softmax ignores it; CTranslate2 stores zeros there). whisper.cpp rejects unknown and missing
//!   tensors, so the set must be exact.
//! - **Types and shapes.** whisper.cpp checks every tensor's size against the type it expects:
//!   f16 (or the quantised type) for 2-D matrices, f16 for the 3-D conv kernels, f32 for 1-D
//!   tensors, the conv biases (stored 2-D as `[d, 1]`) and the positional embeddings.
//! - **Order.** Tensor order does not matter to whisper.cpp but does to the checksum; we use the
//!   order of openai-whisper's PyTorch state dict (what whisper.cpp's own converter iterates):
//!   encoder positional embedding, convs, blocks, ln_post; decoder positional embedding, token
//!   embedding, blocks, ln.
//! - **Hyper-parameters** come from the tensors themselves (d from conv1, layer counts by
//!   counting, vocabulary and context sizes from embedding rows, mel bands from conv1's input
//!   channels), so any whisper size converts, including large-v3 (128 mels, 51866 tokens).

use std::collections::VecDeque;
use std::fmt;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use super::ProvisionError;
use super::ct2::{Ct2Model, Tensor};
use super::ggml::{self, GgmlType, GgmlWriter, Hparams};
use super::{mel, quantize};

/// Optional weight quantisation of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quantization {
    /// 8-bit blocks of 32 with an f16 scale (8.5 bits per weight).
    Q8_0,
    /// 5-bit blocks of 32 with an f16 scale (5.5 bits per weight).
    Q5_0,
}

impl Quantization {
    /// The ggml tensor type of quantised matrices.
    pub fn ggml_type(self) -> GgmlType {
        match self {
            Quantization::Q8_0 => GgmlType::Q8_0,
            Quantization::Q5_0 => GgmlType::Q5_0,
        }
    }

    /// ggml's `enum ggml_ftype` value ("mostly q8_0" = 7, "mostly q5_0" = 8).
    pub fn ggml_ftype(self) -> i32 {
        match self {
            Quantization::Q8_0 => 7,
            Quantization::Q5_0 => 8,
        }
    }

    /// The name used on command lines and in file names.
    pub fn name(self) -> &'static str {
        self.ggml_type().name()
    }
}

impl fmt::Display for Quantization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Quantization {
    type Err = ProvisionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "q8_0" => Ok(Quantization::Q8_0),
            "q5_0" => Ok(Quantization::Q5_0),
            _ => Err(ProvisionError::UnknownQuantization(s.to_string())),
        }
    }
}

/// How to convert.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConvertOptions {
    /// `None`: float16 matrices (the reference format); `Some(q)`: matrices quantised like
    /// whisper.cpp's `quantize` tool does.
    pub quantize: Option<Quantization>,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertReport {
    pub output: PathBuf,
    /// Number of tensors written (245 for base).
    pub tensors: usize,
    /// File size in bytes.
    pub bytes: u64,
    /// Lower-case hex sha256 of the file.
    pub sha256: String,
    pub n_vocab: usize,
    /// Ordinary BPE tokens written to the vocabulary section (50257 for multilingual models).
    pub n_text_tokens: usize,
    pub n_audio_ctx: usize,
    pub n_audio_state: usize,
    pub n_audio_head: usize,
    pub n_audio_layer: usize,
    pub n_text_ctx: usize,
    pub n_text_head: usize,
    pub n_text_layer: usize,
    pub n_mels: usize,
    /// How the CTranslate2 weights were stored, e.g. `float16` or `int8_float16`.
    pub source_dtype: String,
    /// Type of the output matrices: `f16`, `q8_0` or `q5_0`.
    pub output_type: String,
}

/// Dimensions of a whisper model, read from its CTranslate2 tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Architecture {
    /// Model width (n_audio_state = n_text_state).
    pub d: usize,
    pub n_mels: usize,
    pub n_audio_ctx: usize,
    pub n_text_ctx: usize,
    pub n_vocab: usize,
    pub n_audio_layer: usize,
    pub n_text_layer: usize,
    pub n_audio_head: usize,
    pub n_text_head: usize,
}

/// Heads by width for the official whisper sizes (all use 64-wide heads); only consulted when
/// neither model.bin nor config.json states the head count.
const HEADS_BY_WIDTH: [(usize, usize); 5] = [(384, 6), (512, 8), (768, 12), (1024, 16), (1280, 20)];

impl Architecture {
    /// Derives the dimensions from `model`'s tensor shapes; head counts from model.bin's
    /// `encoder/num_heads` / `decoder/num_heads` scalars, else config.json, else the width table.
    pub fn from_model(model: &Ct2Model, config: &Config) -> Result<Architecture, ProvisionError> {
        let shape = |name: &str| -> Result<Vec<usize>, ProvisionError> {
            model
                .get(name)
                .map(|v| v.shape.clone())
                .ok_or_else(|| ProvisionError::MissingTensor {
                    path: model.path().to_path_buf(),
                    name: name.to_string(),
                })
        };
        let bad = |name: &str, message: String| ProvisionError::BadTensor {
            path: model.path().to_path_buf(),
            name: name.to_string(),
            message,
        };

        let conv1 = "encoder/conv1/weight";
        let (d, n_mels) = match shape(conv1)?[..] {
            [d, n_mels, 3] if d > 0 && n_mels > 0 => (d, n_mels),
            ref s => return Err(bad(conv1, format!("shape {s:?}, expected [d, n_mels, 3]"))),
        };
        let rows_of = |name: &str| -> Result<usize, ProvisionError> {
            match shape(name)?[..] {
                [rows, width] if width == d && rows > 0 => Ok(rows),
                ref s => Err(bad(name, format!("shape {s:?}, expected [rows, {d}]"))),
            }
        };
        let n_audio_ctx = rows_of("encoder/position_encodings/encodings")?;
        let n_text_ctx = rows_of("decoder/position_encodings/encodings")?;
        let n_vocab = rows_of("decoder/embeddings/weight")?;

        let count_layers = |stack: &str| {
            (0..)
                .take_while(|i| model.contains(&format!("{stack}/layer_{i}/ffn/linear_0/weight")))
                .count()
        };
        let n_audio_layer = count_layers("encoder");
        let n_text_layer = count_layers("decoder");
        for (stack, n) in [("encoder", n_audio_layer), ("decoder", n_text_layer)] {
            if n == 0 {
                return Err(ProvisionError::MissingTensor {
                    path: model.path().to_path_buf(),
                    name: format!("{stack}/layer_0/ffn/linear_0/weight"),
                });
            }
        }

        let heads = |stack: &str| -> Result<usize, ProvisionError> {
            let from_model = model
                .scalar_i64(&format!("{stack}/num_heads"))
                .and_then(|h| usize::try_from(h).ok());
            let from_table = HEADS_BY_WIDTH
                .iter()
                .find(|(w, _)| *w == d)
                .map(|(_, h)| *h);
            let h = from_model
                .or(config.heads(stack))
                .or(from_table)
                .ok_or_else(|| ProvisionError::Config {
                    path: config.path.clone(),
                    message: format!(
                        "cannot tell the number of {stack} attention heads: model.bin has no \
                         {stack}/num_heads, config.json no num_heads, and width {d} is not a \
                         standard whisper size"
                    ),
                })?;
            if h == 0 || !d.is_multiple_of(h) {
                return Err(bad(
                    &format!("{stack}/num_heads"),
                    format!("{h} heads do not divide width {d}"),
                ));
            }
            Ok(h)
        };
        Ok(Architecture {
            d,
            n_mels,
            n_audio_ctx,
            n_text_ctx,
            n_vocab,
            n_audio_layer,
            n_text_layer,
            n_audio_head: heads("encoder")?,
            n_text_head: heads("decoder")?,
        })
    }
}

/// The optional `config.json` of a CTranslate2 model (faster-whisper's holds token ids and
/// alignment heads; converted Hugging Face configs may also state head counts).
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub path: PathBuf,
    pub json: Option<serde_json::Value>,
}

impl Config {
    /// Reads `path` if it exists; a missing file is an empty config, a malformed one an error.
    pub fn load(path: &Path) -> Result<Config, ProvisionError> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Config {
                    path: path.to_path_buf(),
                    json: None,
                });
            }
            Err(e) => return Err(ProvisionError::io(path, "cannot read", e)),
        };
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ProvisionError::Config {
                path: path.to_path_buf(),
                message: format!("not valid JSON: {e}"),
            })?;
        if !json.is_object() {
            return Err(ProvisionError::Config {
                path: path.to_path_buf(),
                message: "expected a JSON object at the top level".into(),
            });
        }
        Ok(Config {
            path: path.to_path_buf(),
            json: Some(json),
        })
    }

    /// Head count for `stack` ("encoder"/"decoder") if the config states one.
    fn heads(&self, stack: &str) -> Option<usize> {
        let json = self.json.as_ref()?;
        [format!("{stack}_attention_heads"), "num_heads".to_string()]
            .iter()
            .find_map(|k| json.get(k)?.as_u64())
            .and_then(|h| usize::try_from(h).ok())
    }
}

/// How a tensor is stored in the output before any quantisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    F32,
    F16,
}

/// One output tensor: where it comes from and what it must look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTensor {
    /// whisper.cpp name, e.g. `encoder.blocks.0.attn.query.weight`.
    pub name: String,
    /// CTranslate2 variable it is taken from.
    pub source: String,
    /// Shape the source must have.
    pub source_shape: Vec<usize>,
    /// Rows of the source's first dimension to take (fused projections), or all.
    pub rows: Option<Range<usize>>,
    /// Output shape, numpy order.
    pub shape: Vec<usize>,
    pub storage: Storage,
}

impl PlannedTensor {
    /// The ggml type this tensor is written as.
    pub fn ggml_type(&self, quantize: Option<Quantization>) -> GgmlType {
        match (self.storage, quantize) {
            (Storage::F32, _) => GgmlType::F32,
            (Storage::F16, Some(q)) if quantize::should_quantize(&self.name, self.shape.len()) => {
                q.ggml_type()
            }
            (Storage::F16, _) => GgmlType::F16,
        }
    }
}

/// Accumulates the plan in output order.
struct Planner {
    out: Vec<PlannedTensor>,
    d: usize,
}

impl Planner {
    fn push(
        &mut self,
        name: String,
        source: String,
        (source_shape, rows): (Vec<usize>, Option<Range<usize>>),
        shape: Vec<usize>,
        storage: Storage,
    ) {
        self.out.push(PlannedTensor {
            name,
            source,
            source_shape,
            rows,
            shape,
            storage,
        });
    }

    /// A whole tensor: f16 if it is a matrix or conv kernel, f32 if 1-D.
    fn whole(&mut self, name: String, source: String, shape: Vec<usize>) {
        let storage = if shape.len() >= 2 {
            Storage::F16
        } else {
            Storage::F32
        };
        self.push(name, source, (shape.clone(), None), shape, storage);
    }

    /// A linear layer `[out, inp]` + bias `[out]`.
    fn linear(&mut self, name: &str, source: &str, out: usize, inp: usize) {
        self.whole(
            format!("{name}.weight"),
            format!("{source}/weight"),
            vec![out, inp],
        );
        self.whole(format!("{name}.bias"), format!("{source}/bias"), vec![out]);
    }

    /// Part `part` (of `parts` stacked d-row blocks) of a fused projection.
    fn split(&mut self, name: &str, source: &str, parts: usize, part: usize, bias: bool) {
        let d = self.d;
        let rows = part * d..(part + 1) * d;
        self.push(
            format!("{name}.weight"),
            format!("{source}/weight"),
            (vec![parts * d, d], Some(rows.clone())),
            vec![d, d],
            Storage::F16,
        );
        if bias {
            self.push(
                format!("{name}.bias"),
                format!("{source}/bias"),
                (vec![parts * d], Some(rows)),
                vec![d],
                Storage::F32,
            );
        }
    }

    /// A layer norm: gamma → weight, beta → bias.
    fn layer_norm(&mut self, name: &str, source: &str) {
        let d = self.d;
        self.whole(format!("{name}.weight"), format!("{source}/gamma"), vec![d]);
        self.whole(format!("{name}.bias"), format!("{source}/beta"), vec![d]);
    }

    /// Self-attention (fused q;k;v, key without bias), its norm, then — for decoder blocks —
    /// cross-attention (separate q, fused k;v) and its norm, then the MLP and its norm: the order
    /// of the modules in openai-whisper's `ResidualAttentionBlock`.
    fn block(&mut self, stack: &str, layer: usize, cross: bool) {
        let d = self.d;
        let g = format!("{stack}.blocks.{layer}");
        let c = format!("{stack}/layer_{layer}");
        let qkv = format!("{c}/self_attention/linear_0");
        self.split(&format!("{g}.attn.query"), &qkv, 3, 0, true);
        self.split(&format!("{g}.attn.key"), &qkv, 3, 1, false);
        self.split(&format!("{g}.attn.value"), &qkv, 3, 2, true);
        self.linear(
            &format!("{g}.attn.out"),
            &format!("{c}/self_attention/linear_1"),
            d,
            d,
        );
        self.layer_norm(
            &format!("{g}.attn_ln"),
            &format!("{c}/self_attention/layer_norm"),
        );
        if cross {
            let kv = format!("{c}/attention/linear_1");
            self.linear(
                &format!("{g}.cross_attn.query"),
                &format!("{c}/attention/linear_0"),
                d,
                d,
            );
            self.split(&format!("{g}.cross_attn.key"), &kv, 2, 0, false);
            self.split(&format!("{g}.cross_attn.value"), &kv, 2, 1, true);
            self.linear(
                &format!("{g}.cross_attn.out"),
                &format!("{c}/attention/linear_2"),
                d,
                d,
            );
            self.layer_norm(
                &format!("{g}.cross_attn_ln"),
                &format!("{c}/attention/layer_norm"),
            );
        }
        self.linear(
            &format!("{g}.mlp.0"),
            &format!("{c}/ffn/linear_0"),
            4 * d,
            d,
        );
        self.linear(
            &format!("{g}.mlp.2"),
            &format!("{c}/ffn/linear_1"),
            d,
            4 * d,
        );
        self.layer_norm(&format!("{g}.mlp_ln"), &format!("{c}/ffn/layer_norm"));
    }
}

/// Every tensor of the output file, in file order (see the module docs for why this order).
pub fn tensor_plan(a: &Architecture) -> Vec<PlannedTensor> {
    let d = a.d;
    let mut p = Planner { out: Vec::new(), d };

    // Positional embeddings stay f32: whisper.cpp expects them so (they are added, not multiplied).
    p.push(
        "encoder.positional_embedding".into(),
        "encoder/position_encodings/encodings".into(),
        (vec![a.n_audio_ctx, d], None),
        vec![a.n_audio_ctx, d],
        Storage::F32,
    );
    for (conv, in_ch) in [("conv1", a.n_mels), ("conv2", d)] {
        p.whole(
            format!("encoder.{conv}.weight"),
            format!("encoder/{conv}/weight"),
            vec![d, in_ch, 3],
        );
        // whisper.cpp adds the conv bias as a [d, 1] f32 tensor broadcast over time.
        p.push(
            format!("encoder.{conv}.bias"),
            format!("encoder/{conv}/bias"),
            (vec![d], None),
            vec![d, 1],
            Storage::F32,
        );
    }
    for layer in 0..a.n_audio_layer {
        p.block("encoder", layer, false);
    }
    p.layer_norm("encoder.ln_post", "encoder/layer_norm");

    p.push(
        "decoder.positional_embedding".into(),
        "decoder/position_encodings/encodings".into(),
        (vec![a.n_text_ctx, d], None),
        vec![a.n_text_ctx, d],
        Storage::F32,
    );
    p.whole(
        "decoder.token_embedding.weight".into(),
        "decoder/embeddings/weight".into(),
        vec![a.n_vocab, d],
    );
    for layer in 0..a.n_text_layer {
        p.block("decoder", layer, true);
    }
    p.layer_norm("decoder.ln", "decoder/layer_norm");
    p.out
}

/// The model's vocabulary, one entry per token id, in GPT-2 byte-level spelling.
struct Vocabulary {
    path: PathBuf,
    entries: Vec<String>,
}

impl Vocabulary {
    /// `vocabulary.txt` (one token per line; faster-whisper base/small/medium) or, failing that,
    /// `vocabulary.json` (a JSON list; faster-whisper large-v3).
    fn load(dir: &Path) -> Result<Vocabulary, ProvisionError> {
        let txt = dir.join("vocabulary.txt");
        match fs::read(&txt) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).map_err(|e| ProvisionError::Vocabulary {
                    path: txt.clone(),
                    message: format!("not UTF-8 (byte {})", e.utf8_error().valid_up_to()),
                })?;
                // Lines end with '\n'; an empty line is a real (empty) token, so only the final
                // terminator is dropped.
                let body = text.strip_suffix('\n').unwrap_or(&text);
                let entries = body.split('\n').map(str::to_string).collect();
                return Ok(Vocabulary { path: txt, entries });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(ProvisionError::io(&txt, "cannot read", e)),
        }
        let json_path = dir.join("vocabulary.json");
        let text = fs::read_to_string(&json_path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                ProvisionError::Vocabulary {
                    path: txt.clone(),
                    message: "not found (nor vocabulary.json beside it)".into(),
                }
            } else {
                ProvisionError::io(&json_path, "cannot read", e)
            }
        })?;
        let entries: Vec<String> =
            serde_json::from_str(&text).map_err(|e| ProvisionError::Vocabulary {
                path: json_path.clone(),
                message: format!("expected a JSON list of strings: {e}"),
            })?;
        Ok(Vocabulary {
            path: json_path,
            entries,
        })
    }

    /// The raw bytes of the ordinary tokens: every entry before `<|endoftext|>`, decoded from
    /// GPT-2's printable spelling. The entry count must match the model's embedding rows.
    fn text_tokens(&self, n_vocab: usize) -> Result<Vec<Vec<u8>>, ProvisionError> {
        let err = |message: String| ProvisionError::Vocabulary {
            path: self.path.clone(),
            message,
        };
        let file = self.path.file_name().map_or_else(
            || "vocabulary".to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        if self.entries.len() != n_vocab {
            return Err(err(format!(
                "{file} has wrong line count: {} tokens, but the model's token embedding has \
                 {n_vocab} rows",
                self.entries.len()
            )));
        }
        let eot = self
            .entries
            .iter()
            .position(|t| t == "<|endoftext|>")
            .ok_or_else(|| err(format!("{file} has no <|endoftext|> token")))?;
        let table = ggml::unicode_to_byte();
        self.entries[..eot]
            .iter()
            .enumerate()
            .map(|(i, tok)| {
                ggml::token_bytes(tok, &table).map_err(|c| {
                    err(format!(
                        "token {i} ({tok:?}) has character {c:?} outside GPT-2's byte alphabet"
                    ))
                })
            })
            .collect()
    }
}

/// A writer that hashes and counts what passes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Removes the temporary output unless the conversion got as far as renaming it.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Decoded source tensors, kept for a few steps: each fused projection feeds two or three
/// outputs, interleaved with its bias.
struct SourceCache<'m> {
    model: &'m Ct2Model,
    recent: VecDeque<(String, Rc<Tensor>)>,
}

impl SourceCache<'_> {
    fn get(&mut self, name: &str) -> Result<Rc<Tensor>, ProvisionError> {
        if let Some((_, t)) = self.recent.iter().find(|(n, _)| n == name) {
            return Ok(Rc::clone(t));
        }
        let t = Rc::new(self.model.tensor(name)?);
        if self.recent.len() == 2 {
            self.recent.pop_front();
        }
        self.recent.push_back((name.to_string(), Rc::clone(&t)));
        Ok(t)
    }
}

/// Converts the CTranslate2 whisper model in `ct2_dir` to a whisper.cpp ggml file at `output`.
///
/// The file is written beside `output` under a temporary name and renamed into place at the end,
/// so an interrupted conversion never leaves a truncated model where whisper-rs would load it.
pub fn convert(
    ct2_dir: &Path,
    output: &Path,
    opts: &ConvertOptions,
) -> Result<ConvertReport, ProvisionError> {
    let model = Ct2Model::open(&ct2_dir.join("model.bin"))?;
    if model.spec != "WhisperSpec" {
        return Err(ProvisionError::Malformed {
            path: model.path().to_path_buf(),
            message: format!("holds a {} model, not a whisper model", model.spec),
        });
    }
    let config = Config::load(&ct2_dir.join("config.json"))?;
    let arch = Architecture::from_model(&model, &config)?;
    let vocab = Vocabulary::load(ct2_dir)?.text_tokens(arch.n_vocab)?;
    let plan = tensor_plan(&arch);
    let mp = model.path();
    let hp = Hparams {
        n_vocab: to_i32(arch.n_vocab, mp)?,
        n_audio_ctx: to_i32(arch.n_audio_ctx, mp)?,
        n_audio_state: to_i32(arch.d, mp)?,
        n_audio_head: to_i32(arch.n_audio_head, mp)?,
        n_audio_layer: to_i32(arch.n_audio_layer, mp)?,
        n_text_ctx: to_i32(arch.n_text_ctx, mp)?,
        n_text_state: to_i32(arch.d, mp)?,
        n_text_head: to_i32(arch.n_text_head, mp)?,
        n_text_layer: to_i32(arch.n_text_layer, mp)?,
        n_mels: to_i32(arch.n_mels, mp)?,
        // whisper.cpp's quantize tool marks quantised files with the quantisation version
        // (GGML_QNT_VERSION 2 × GGML_QNT_VERSION_FACTOR 1000); the loader strips it again.
        ftype: opts.quantize.map_or(1, |q| 2000 + q.ggml_ftype()),
    };

    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .map_err(|e| ProvisionError::io(parent, "cannot create directory", e))?;
    }
    let file_name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model.bin".into());
    let mut temp = TempFile {
        path: output.with_file_name(format!(".{file_name}.partial-{}", std::process::id())),
        keep: false,
    };
    let file = fs::File::create(&temp.path)
        .map_err(|e| ProvisionError::io(&temp.path, "cannot create", e))?;
    let write_err = |e: io::Error| ProvisionError::io(&temp.path, "cannot write", e);

    let mut w = GgmlWriter::new(HashingWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        hasher: Sha256::new(),
        bytes: 0,
    });
    w.header(&hp).map_err(write_err)?;
    w.mel_filters(arch.n_mels, mel::N_FREQ, &mel::mel_filters(arch.n_mels))
        .map_err(write_err)?;
    w.vocab(&vocab).map_err(write_err)?;

    let mut sources = SourceCache {
        model: &model,
        recent: VecDeque::new(),
    };
    for t in &plan {
        let src = sources.get(&t.source)?;
        if src.shape != t.source_shape {
            return Err(ProvisionError::BadTensor {
                path: mp.to_path_buf(),
                name: t.source.clone(),
                message: format!(
                    "shape {:?}, expected {:?} (whisper of width {}, {} mels, {} tokens)",
                    src.shape, t.source_shape, arch.d, arch.n_mels, arch.n_vocab
                ),
            });
        }
        let sliced;
        let values: &[f32] = match &t.rows {
            Some(rows) => {
                // In range by construction (the source shape was just checked).
                sliced = src
                    .rows(rows.clone())
                    .ok_or_else(|| ProvisionError::BadTensor {
                        path: mp.to_path_buf(),
                        name: t.source.clone(),
                        message: format!("rows {rows:?} out of range"),
                    })?;
                &sliced.data
            }
            None => &src.data,
        };
        let ttype = t.ggml_type(opts.quantize);
        let inner = t.shape.last().copied().unwrap_or(1);
        let quant_err = || ProvisionError::Quantize {
            name: t.name.clone(),
            message: format!(
                "rows of {inner} values are not whole blocks of {}",
                quantize::QK
            ),
        };
        // ggml quantises row by row, so rows (not just the tensor) must be whole blocks.
        if !inner.is_multiple_of(ttype.block_len()) {
            return Err(quant_err());
        }
        let bytes = match ttype {
            GgmlType::F32 => ggml::f32_bytes(values),
            GgmlType::F16 => ggml::f16_bytes(values),
            GgmlType::Q8_0 => quantize::quantize_q8_0(values).ok_or_else(quant_err)?,
            GgmlType::Q5_0 => quantize::quantize_q5_0(values).ok_or_else(quant_err)?,
        };
        w.tensor(&t.name, &t.shape, ttype, &bytes)
            .map_err(write_err)?;
    }

    let tensors = w.tensor_count();
    let hashing = w.finish().map_err(write_err)?;
    let sha256 = hashing
        .hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let bytes = hashing.bytes;
    let file = hashing
        .inner
        .into_inner()
        .map_err(|e| write_err(e.into_error()))?;
    file.sync_all().map_err(write_err)?;
    drop(file);
    fs::rename(&temp.path, output)
        .map_err(|e| ProvisionError::io(output, "cannot move the converted file into place", e))?;
    temp.keep = true;

    Ok(ConvertReport {
        output: output.to_path_buf(),
        tensors,
        bytes,
        sha256,
        n_vocab: arch.n_vocab,
        n_text_tokens: vocab.len(),
        n_audio_ctx: arch.n_audio_ctx,
        n_audio_state: arch.d,
        n_audio_head: arch.n_audio_head,
        n_audio_layer: arch.n_audio_layer,
        n_text_ctx: arch.n_text_ctx,
        n_text_head: arch.n_text_head,
        n_text_layer: arch.n_text_layer,
        n_mels: arch.n_mels,
        source_dtype: model.weight_dtype_name(),
        output_type: opts
            .quantize
            .map_or_else(|| "f16".to_string(), |q| q.name().to_string()),
    })
}

/// Header fields are i32; CTranslate2 dims are u32.
fn to_i32(x: usize, model: &Path) -> Result<i32, ProvisionError> {
    i32::try_from(x).map_err(|_| ProvisionError::Malformed {
        path: model.to_path_buf(),
        message: format!("dimension {x} does not fit a ggml header field (i32)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::ct2::testutil::ModelBuilder;
    use crate::provision::ggml::GgmlFile;

    const D: usize = 64;
    const N_MELS: usize = 80;
    const AUDIO_CTX: usize = 10;
    const TEXT_CTX: usize = 7;
    const VOCAB: [&str; 6] = [
        "!",
        "Ġthe",
        "ä½łå¥½",
        "",
        "<|endoftext|>",
        "<|startoftranscript|>",
    ];

    /// Deterministic, f16-exact filler: element k of a tensor is a small multiple of 1/64 that
    /// also encodes which tensor it belongs to (`tag`).
    fn fill(n: usize, tag: usize) -> Vec<f32> {
        (0..n)
            .map(|k| ((k * 7 + tag * 13) % 200) as f32 / 64.0 - 1.5)
            .collect()
    }

    fn linear(b: ModelBuilder, name: &str, out: usize, inp: usize, tag: usize) -> ModelBuilder {
        b.f16(
            &format!("{name}/weight"),
            &[out as u32, inp as u32],
            &fill(out * inp, tag),
        )
        .f16(&format!("{name}/bias"), &[out as u32], &fill(out, tag + 1))
    }

    fn norm(b: ModelBuilder, name: &str, tag: usize) -> ModelBuilder {
        b.f16(&format!("{name}/gamma"), &[D as u32], &fill(D, tag))
            .f16(&format!("{name}/beta"), &[D as u32], &fill(D, tag + 1))
    }

    /// A 2-encoder-layer, 1-decoder-layer whisper of width 64 in CTranslate2 layout. The fused
    /// q;k;v weight has row r filled with the value r, so splits are easy to check.
    fn tiny_model() -> ModelBuilder {
        let d = D as u32;
        let rows = |n: usize| -> Vec<f32> { (0..n * D).map(|k| (k / D) as f32).collect() };
        let mut b = ModelBuilder::new()
            .raw(
                "encoder/num_heads",
                &[],
                crate::provision::ct2::DType::I16,
                2i16.to_le_bytes().to_vec(),
            )
            .f16(
                "encoder/conv1/weight",
                &[d, N_MELS as u32, 3],
                &fill(D * N_MELS * 3, 1),
            )
            .f16("encoder/conv1/bias", &[d], &fill(D, 2))
            .f16("encoder/conv2/weight", &[d, d, 3], &fill(D * D * 3, 3))
            .f16("encoder/conv2/bias", &[d], &fill(D, 4))
            .f16(
                "encoder/position_encodings/encodings",
                &[AUDIO_CTX as u32, d],
                &fill(AUDIO_CTX * D, 5),
            )
            .f16(
                "decoder/position_encodings/encodings",
                &[TEXT_CTX as u32, d],
                &fill(TEXT_CTX * D, 6),
            )
            .f16(
                "decoder/embeddings/weight",
                &[VOCAB.len() as u32, d],
                &fill(VOCAB.len() * D, 7),
            );
        b = norm(b, "encoder/layer_norm", 8);
        b = norm(b, "decoder/layer_norm", 10);
        for (stack, layers) in [("encoder", 2), ("decoder", 1)] {
            for l in 0..layers {
                let c = format!("{stack}/layer_{l}");
                b = b
                    .f16(
                        &format!("{c}/self_attention/linear_0/weight"),
                        &[3 * d, d],
                        &rows(3 * D),
                    )
                    .f16(
                        &format!("{c}/self_attention/linear_0/bias"),
                        &[3 * d],
                        &(0..3 * D).map(|k| k as f32).collect::<Vec<_>>(),
                    );
                b = linear(b, &format!("{c}/self_attention/linear_1"), D, D, 20);
                b = norm(b, &format!("{c}/self_attention/layer_norm"), 22);
                b = linear(b, &format!("{c}/ffn/linear_0"), 4 * D, D, 24);
                b = linear(b, &format!("{c}/ffn/linear_1"), D, 4 * D, 26);
                b = norm(b, &format!("{c}/ffn/layer_norm"), 28);
                if stack == "decoder" {
                    b = linear(b, &format!("{c}/attention/linear_0"), D, D, 30);
                    b = b
                        .f16(
                            &format!("{c}/attention/linear_1/weight"),
                            &[2 * d, d],
                            &rows(2 * D),
                        )
                        .f16(
                            &format!("{c}/attention/linear_1/bias"),
                            &[2 * d],
                            &(0..2 * D).map(|k| k as f32).collect::<Vec<_>>(),
                        );
                    b = linear(b, &format!("{c}/attention/linear_2"), D, D, 32);
                    b = norm(b, &format!("{c}/attention/layer_norm"), 34);
                }
            }
        }
        b.alias("decoder/projection/weight", "decoder/embeddings/weight")
    }

    fn model_dir(model: &ModelBuilder, vocab: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("model.bin"), model.build()).unwrap();
        let mut text = vocab.join("\n");
        text.push('\n');
        fs::write(dir.path().join("vocabulary.txt"), text).unwrap();
        // No decoder/num_heads in the tiny model.bin and width 64 is not a standard size, so the
        // decoder's head count comes from here.
        fs::write(
            dir.path().join("config.json"),
            r#"{"suppress_ids": [1], "num_heads": 1}"#,
        )
        .unwrap();
        dir
    }

    fn f16_at(buf: &[u8], t: &ggml::TensorInfo) -> Vec<f32> {
        buf[t.offset..t.offset + t.len]
            .chunks(2)
            .map(|b| half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
            .collect()
    }

    fn f32_at(buf: &[u8], t: &ggml::TensorInfo) -> Vec<f32> {
        buf[t.offset..t.offset + t.len]
            .chunks(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    #[test]
    fn plan_for_base_has_245_tensors_in_state_dict_order() {
        let a = Architecture {
            d: 512,
            n_mels: 80,
            n_audio_ctx: 1500,
            n_text_ctx: 448,
            n_vocab: 51865,
            n_audio_layer: 6,
            n_text_layer: 6,
            n_audio_head: 8,
            n_text_head: 8,
        };
        let plan = tensor_plan(&a);
        assert_eq!(plan.len(), 245);
        let names: Vec<&str> = plan.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            &names[..8],
            &[
                "encoder.positional_embedding",
                "encoder.conv1.weight",
                "encoder.conv1.bias",
                "encoder.conv2.weight",
                "encoder.conv2.bias",
                "encoder.blocks.0.attn.query.weight",
                "encoder.blocks.0.attn.query.bias",
                "encoder.blocks.0.attn.key.weight",
            ]
        );
        let dec = names
            .iter()
            .position(|n| *n == "decoder.positional_embedding")
            .unwrap();
        assert_eq!(names[dec - 1], "encoder.ln_post.bias");
        assert_eq!(names[dec + 1], "decoder.token_embedding.weight");
        assert_eq!(names[dec + 2], "decoder.blocks.0.attn.query.weight");
        assert_eq!(
            names[dec + 2 + 9],
            "decoder.blocks.0.cross_attn.query.weight"
        );
        assert_eq!(names.last(), Some(&"decoder.ln.bias"));
        assert!(!names.iter().any(|n| n.ends_with("key.bias")));
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 245);

        let by_name = |n: &str| plan.iter().find(|t| t.name == n).unwrap();
        let conv_bias = by_name("encoder.conv1.bias");
        assert_eq!(
            (conv_bias.shape.clone(), conv_bias.storage),
            (vec![512, 1], Storage::F32)
        );
        let value = by_name("decoder.blocks.3.cross_attn.value.weight");
        assert_eq!(value.source, "decoder/layer_3/attention/linear_1/weight");
        assert_eq!(value.rows, Some(512..1024));
        assert_eq!(
            by_name("decoder.token_embedding.weight").ggml_type(None),
            GgmlType::F16
        );
        assert_eq!(
            by_name("decoder.token_embedding.weight").ggml_type(Some(Quantization::Q8_0)),
            GgmlType::Q8_0
        );
        assert_eq!(
            by_name("encoder.conv2.weight").ggml_type(Some(Quantization::Q8_0)),
            GgmlType::F16
        );
        assert_eq!(
            by_name("encoder.positional_embedding").ggml_type(None),
            GgmlType::F32
        );
        assert_eq!(
            by_name("encoder.blocks.5.mlp_ln.weight").ggml_type(None),
            GgmlType::F32
        );
    }

    #[test]
    fn converts_a_tiny_model() {
        let dir = model_dir(&tiny_model(), &VOCAB);
        let out = dir.path().join("out/ggml-tiny.bin");
        let report = convert(dir.path(), &out, &ConvertOptions::default()).unwrap();
        let buf = fs::read(&out).unwrap();
        assert_eq!(report.bytes, buf.len() as u64);
        let sha: String = Sha256::digest(&buf)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(report.sha256, sha);
        assert_eq!(
            (
                report.n_audio_layer,
                report.n_text_layer,
                report.n_audio_state,
                report.n_mels
            ),
            (2, 1, D, N_MELS)
        );
        // Encoder heads from model.bin's scalar, decoder heads from config.json.
        assert_eq!((report.n_audio_head, report.n_text_head), (2, 1));
        assert_eq!(report.source_dtype, "float16");
        // No temporary file left behind.
        assert_eq!(fs::read_dir(dir.path().join("out")).unwrap().count(), 1);

        let f = GgmlFile::parse(&buf).unwrap();
        assert_eq!(
            f.hparams,
            Hparams {
                n_vocab: 6,
                n_audio_ctx: AUDIO_CTX as i32,
                n_audio_state: D as i32,
                n_audio_head: 2,
                n_audio_layer: 2,
                n_text_ctx: TEXT_CTX as i32,
                n_text_state: D as i32,
                n_text_head: 1,
                n_text_layer: 1,
                n_mels: N_MELS as i32,
                ftype: 1,
            }
        );
        assert_eq!((f.n_mel, f.n_fft), (80, 201));
        assert_eq!(f.mel_filters, mel::mel_filters(80));
        // Tokens before <|endoftext|>, as raw bytes.
        assert_eq!(
            f.vocab,
            vec![
                b"!".to_vec(),
                b" the".to_vec(),
                "你好".as_bytes().to_vec(),
                vec![]
            ]
        );
        assert_eq!(f.tensors.len(), report.tensors);
        assert_eq!(f.tensors.len(), 5 + 2 * 15 + 2 + 2 + 24 + 2);

        let t = |name: &str| f.tensors.iter().find(|t| t.name == name).unwrap();
        // Fused q;k;v rows: query 0..64, key 64..128, value 128..192.
        for (part, first_row) in [("query", 0.0), ("key", 64.0), ("value", 128.0)] {
            let w = f16_at(&buf, t(&format!("encoder.blocks.1.attn.{part}.weight")));
            assert_eq!(w.len(), D * D);
            assert_eq!(
                (w[0], w[D * D - 1]),
                (first_row, first_row + 63.0),
                "{part}"
            );
        }
        assert_eq!(
            f32_at(&buf, t("encoder.blocks.0.attn.value.bias"))[0],
            128.0
        );
        assert_eq!(
            f32_at(&buf, t("decoder.blocks.0.attn.query.bias"))[63],
            63.0
        );
        // Cross-attention k;v rows.
        assert_eq!(
            f16_at(&buf, t("decoder.blocks.0.cross_attn.key.weight"))[0],
            0.0
        );
        assert_eq!(
            f16_at(&buf, t("decoder.blocks.0.cross_attn.value.weight"))[0],
            64.0
        );
        assert_eq!(
            f32_at(&buf, t("decoder.blocks.0.cross_attn.value.bias"))[0],
            64.0
        );
        // Conv bias as [d, 1] f32, written as ne = [1, d].
        let cb = t("encoder.conv1.bias");
        assert_eq!((cb.shape.clone(), cb.ttype), (vec![D, 1], GgmlType::F32));
        assert_eq!(f32_at(&buf, cb), fill(D, 2));
        let conv = t("encoder.conv1.weight");
        assert_eq!(
            (conv.shape.clone(), conv.ttype),
            (vec![D, N_MELS, 3], GgmlType::F16)
        );
        assert_eq!(f16_at(&buf, conv), fill(D * N_MELS * 3, 1));
        assert_eq!(
            f16_at(&buf, t("decoder.token_embedding.weight")),
            fill(6 * D, 7)
        );
        assert_eq!(f32_at(&buf, t("decoder.ln.weight")), fill(D, 10));
    }

    #[test]
    fn quantized_conversion_types() {
        let dir = model_dir(&tiny_model(), &VOCAB);
        for q in [Quantization::Q8_0, Quantization::Q5_0] {
            let out = dir.path().join(format!("ggml-{q}.bin"));
            let opts = ConvertOptions { quantize: Some(q) };
            let report = convert(dir.path(), &out, &opts).unwrap();
            assert_eq!(report.output_type, q.name());
            let buf = fs::read(&out).unwrap();
            let f = GgmlFile::parse(&buf).unwrap();
            assert_eq!(f.hparams.ftype, 2000 + q.ggml_ftype());
            for t in &f.tensors {
                let expect = match (t.shape.len(), t.name.as_str()) {
                    (3, _) => GgmlType::F16,
                    (2, n) if n.ends_with("positional_embedding") || n.ends_with(".bias") => {
                        GgmlType::F32
                    }
                    (2, _) => q.ggml_type(),
                    _ => GgmlType::F32,
                };
                assert_eq!(t.ttype, expect, "{}", t.name);
            }
            let emb = f
                .tensors
                .iter()
                .find(|t| t.name == "decoder.token_embedding.weight")
                .unwrap();
            let bytes = &buf[emb.offset..emb.offset + emb.len];
            let back = match q {
                Quantization::Q8_0 => quantize::dequantize_q8_0(bytes),
                Quantization::Q5_0 => quantize::dequantize_q5_0(bytes),
            }
            .unwrap();
            let orig = fill(6 * D, 7);
            let tol = if q == Quantization::Q8_0 { 0.02 } else { 0.2 };
            assert!(back.iter().zip(&orig).all(|(a, b)| (a - b).abs() < tol));
        }
    }

    #[test]
    fn int8_source_is_dequantized() {
        // One matrix stored as int8 + per-row scale; its f16 output must be f16(q / scale).
        let q: Vec<i8> = (0..D * D).map(|k| ((k % 255) as i32 - 127) as i8).collect();
        let scales: Vec<f32> = (0..D).map(|r| 127.0 / (1.0 + r as f32)).collect();
        let model = tiny_model_with_int8_linear(&q, &scales);
        let dir = model_dir(&model, &VOCAB);
        let out = dir.path().join("ggml.bin");
        let report = convert(dir.path(), &out, &ConvertOptions::default()).unwrap();
        assert_eq!(report.source_dtype, "float16"); // the probe tensor (linear_0) is still f16
        let buf = fs::read(&out).unwrap();
        let f = GgmlFile::parse(&buf).unwrap();
        let t = f
            .tensors
            .iter()
            .find(|t| t.name == "encoder.blocks.0.attn.out.weight")
            .unwrap();
        let got = f16_at(&buf, t);
        for (k, g) in got.iter().enumerate() {
            let expect = half::f16::from_f32(q[k] as f32 / scales[k / D]).to_f32();
            assert_eq!(*g, expect, "element {k}");
        }
    }

    fn tiny_model_with_int8_linear(q: &[i8], scales: &[f32]) -> ModelBuilder {
        let d = D as u32;
        tiny_model()
            .without("encoder/layer_0/self_attention/linear_1/weight")
            .i8("encoder/layer_0/self_attention/linear_1/weight", &[d, d], q)
            .f32(
                "encoder/layer_0/self_attention/linear_1/weight_scale",
                &[d],
                scales,
            )
    }

    #[test]
    fn errors_name_the_problem() {
        // Wrong vocabulary line count.
        let dir = model_dir(&tiny_model(), &VOCAB[..5]);
        let err = convert(dir.path(), &dir.path().join("o.bin"), &Default::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("vocabulary.txt has wrong line count"), "{err}");
        assert!(!dir.path().join("o.bin").exists());

        // Missing tensor.
        let model = tiny_model().without("decoder/layer_0/attention/linear_2/bias");
        let dir = model_dir(&model, &VOCAB);
        let err = convert(dir.path(), &dir.path().join("o.bin"), &Default::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("missing tensor 'decoder/layer_0/attention/linear_2/bias'"),
            "{err}"
        );
        // The partial output was cleaned up.
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("partial"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        // Truncated model.bin.
        let dir = model_dir(&tiny_model(), &VOCAB);
        let full = fs::read(dir.path().join("model.bin")).unwrap();
        fs::write(dir.path().join("model.bin"), &full[..full.len() / 2]).unwrap();
        let err = convert(dir.path(), &dir.path().join("o.bin"), &Default::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("model.bin: truncated at offset"), "{err}");

        // A token outside the byte alphabet.
        let mut vocab = VOCAB;
        vocab[1] = "the 你";
        let dir = model_dir(&tiny_model(), &vocab);
        let err = convert(dir.path(), &dir.path().join("o.bin"), &Default::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("token 1") && err.contains("outside GPT-2"),
            "{err}"
        );

        // Missing model directory.
        let err = convert(
            Path::new("/nonexistent/ct2"),
            Path::new("/tmp/x.bin"),
            &Default::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/nonexistent/ct2/model.bin"), "{err}");
    }

    #[test]
    fn quantization_from_str() {
        assert_eq!("q8_0".parse::<Quantization>().unwrap(), Quantization::Q8_0);
        assert_eq!("Q5_0".parse::<Quantization>().unwrap(), Quantization::Q5_0);
        let err = "q4_0".parse::<Quantization>().unwrap_err().to_string();
        assert!(err.contains("q4_0") && err.contains("q8_0"), "{err}");
        assert_eq!(Quantization::Q8_0.to_string(), "q8_0");
    }

    #[test]
    fn heads_from_table_when_model_does_not_say() {
        let a = Architecture::from_model(
            &Ct2Model::from_bytes(tiny_model().build(), "m.bin").unwrap(),
            &Config::default(),
        );
        // Encoder heads from model.bin; decoder: no scalar, width 64 not in the table → error.
        let err = a.unwrap_err().to_string();
        assert!(err.contains("decoder attention heads"), "{err}");
        let cfg = Config {
            path: "config.json".into(),
            json: Some(serde_json::json!({"num_heads": 1})),
        };
        let a = Architecture::from_model(
            &Ct2Model::from_bytes(tiny_model().build(), "m.bin").unwrap(),
            &cfg,
        )
        .unwrap();
        assert_eq!((a.n_audio_head, a.n_text_head), (2, 1));
    }
}
