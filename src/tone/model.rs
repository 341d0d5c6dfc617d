//! Tone models: callqc's own feature model (a documented prior, as ONNX) and the drop-in contract
//! for a centre's waveform-in speech-emotion model, behind one [`ToneScorer`].
//!
//! Both kinds are ONNX files run through the project's one ONNX Runtime environment
//! ([`crate::onnx::session`]) and described by a sidecar JSON beside them (`tone.onnx` →
//! `tone.json`, see [`ToneSidecar`]) that names the labels and which of them count as agitation
//! or tension. The feature model is linear-softmax over clipped, standardised relative features;
//! its first weights are [`LinearToneParams::prior`], justified one by one in docs/tone.md.
//! `tone fit` (later) replaces them with fitted ones through [`write_feature_model`].

use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::value::Tensor;
use serde::{Deserialize, Serialize};

use super::features::{
    self, Baseline, FEATURE_CLIP, FEATURE_NAMES, FrameAnalysis, N_FEATURES, RawFeatures,
    RelativeFeatures,
};
use super::{ToneError, ToneTrack, ToneWindow};
use crate::audio::{Role, RoleAudio, TARGET_RATE};
use crate::onnx::writer::{AttrValue, Dim, Graph, Model, Node, Tensor as OnnxTensor, ValueInfo};

/// Output labels of the feature model, in output order.
pub const LABELS: [&str; 3] = ["calm", "tense", "agitated"];
/// Default p_agitated threshold for flagging a window (see docs/tone.md for how it was chosen).
pub const DEFAULT_THRESHOLD: f64 = 0.5;
/// File name of the tone model in the models directory; its sidecar is `tone.json`.
pub const MODEL_FILE: &str = "tone.onnx";
/// Sidecar format tag.
pub const SIDECAR_FORMAT: &str = "callqc-tone/1";
/// Input and output names of callqc's feature model.
pub const FEATURE_INPUT: &str = "features";
pub const PROBS_OUTPUT: &str = "probs";

// ------------------------------------------------------------------------------------------------
// The prior. docs/tone.md has the table and the reasons; keep the two in step.

/// One standard unit of each relative feature: a typical window-to-window deviation of calm
/// conversational speech after evidence weighting (rounded; docs/tone.md, "Scales").
pub const PRIOR_SCALE: [f64; N_FEATURES] = [1.25, 1.25, 1.0, 1.25, 0.07, 0.1, 1.25, 0.07];
/// Weight of each standardised feature in the agitated logit (calm is the reference, logit 0).
pub const PRIOR_AGITATED: [f64; N_FEATURES] = [0.75, 0.25, 1.5, 0.25, 0.25, 0.25, 0.25, -0.25];
/// Weight in the tense logit: the same direction at 0.4 of the size — tension is the moderate
/// step on the same arousal scale.
pub const PRIOR_TENSE: [f64; N_FEATURES] = [0.3, 0.1, 0.6, 0.1, 0.1, 0.1, 0.1, -0.1];
/// Logit biases (calm, tense, agitated): at the agent's own baseline the prior says calm
/// (p ≈ 0.95 / 0.05 / 0.005).
pub const PRIOR_BIAS: [f64; 3] = [0.0, -3.0, -5.25];

/// Parameters of the linear-softmax feature model:
/// `probs = softmax(((clip(x) − mean) / scale) · weights + bias)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearToneParams {
    pub clip: [f64; N_FEATURES],
    pub mean: [f64; N_FEATURES],
    pub scale: [f64; N_FEATURES],
    /// Per feature: weights of the (calm, tense, agitated) logits.
    pub weights: [[f64; 3]; N_FEATURES],
    pub bias: [f64; 3],
}

impl LinearToneParams {
    /// The documented prior (docs/tone.md, "The prior").
    pub fn prior() -> Self {
        let mut weights = [[0.0; 3]; N_FEATURES];
        for (i, w) in weights.iter_mut().enumerate() {
            *w = [0.0, PRIOR_TENSE[i], PRIOR_AGITATED[i]];
        }
        LinearToneParams {
            clip: FEATURE_CLIP,
            mean: [0.0; N_FEATURES],
            scale: PRIOR_SCALE,
            weights,
            bias: PRIOR_BIAS,
        }
    }

    /// The model's function in plain Rust (the reference the ONNX file is tested against).
    pub fn probabilities(&self, x: &[f32; N_FEATURES]) -> [f64; 3] {
        let mut logits = self.bias;
        for (i, &xi) in x.iter().enumerate() {
            let v = (xi as f64).clamp(-self.clip[i], self.clip[i]);
            let z = (v - self.mean[i]) / self.scale[i];
            for (l, logit) in logits.iter_mut().enumerate() {
                *logit += z * self.weights[i][l];
            }
        }
        softmax(&logits)
    }

    /// The ONNX graph: features [N, F] → Max(−clip) → Min(clip) → Sub(mean) → Div(scale) →
    /// MatMul(weights [F, 3]) → Add(bias) → Softmax(axis −1) → probs [N, 3]. The clip is in the
    /// graph too, so any caller of the file gets the same protection.
    pub fn to_onnx(&self, provenance: &str) -> Model {
        let f = N_FEATURES as i64;
        let v32 = |a: &[f64]| a.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let lo: Vec<f64> = self.clip.iter().map(|c| -c).collect();
        let w: Vec<f64> = self
            .weights
            .iter()
            .flat_map(|r| r.iter().copied())
            .collect();
        let graph = Graph {
            name: "callqc_tone_features".into(),
            nodes: vec![
                Node::new("Max", "clip_low", &[FEATURE_INPUT, "clip_lo"], &["x_lo"]),
                Node::new("Min", "clip_high", &["x_lo", "clip_hi"], &["x_clip"]),
                Node::new("Sub", "centre", &["x_clip", "mean"], &["x_centred"]),
                Node::new("Div", "standardise", &["x_centred", "scale"], &["z"]),
                Node::new("MatMul", "weights", &["z", "W"], &["zw"]),
                Node::new("Add", "bias", &["zw", "b"], &["logits"]),
                Node::new("Softmax", "softmax", &["logits"], &[PROBS_OUTPUT])
                    .attr("axis", AttrValue::Int(-1)),
            ],
            initializers: vec![
                OnnxTensor::f32("clip_lo", &[f], v32(&lo)),
                OnnxTensor::f32("clip_hi", &[f], v32(&self.clip)),
                OnnxTensor::f32("mean", &[f], v32(&self.mean)),
                OnnxTensor::f32("scale", &[f], v32(&self.scale)),
                OnnxTensor::f32("W", &[f, 3], v32(&w)),
                OnnxTensor::f32("b", &[3], v32(&self.bias)),
            ],
            inputs: vec![ValueInfo::f32(
                FEATURE_INPUT,
                vec![Dim::Named("N".into()), Dim::Fixed(f)],
            )],
            outputs: vec![ValueInfo::f32(
                PROBS_OUTPUT,
                vec![Dim::Named("N".into()), Dim::Fixed(3)],
            )],
            doc: "callqc agent-tone model: relative prosodic features in, calm/tense/agitated out"
                .into(),
        };
        let mut model = Model::new(graph);
        model.doc = "See docs/tone.md in callqc.".into();
        model.metadata = vec![
            ("features".into(), FEATURE_NAMES.join(",")),
            ("labels".into(), LABELS.join(",")),
            ("provenance".into(), provenance.into()),
        ];
        model
    }
}

fn softmax(logits: &[f64]) -> [f64; 3] {
    let m = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|l| (l - m).exp()).collect();
    let s: f64 = e.iter().sum();
    [e[0] / s, e[1] / s, e[2] / s]
}

// ------------------------------------------------------------------------------------------------
// Sidecar

/// Which contract a tone model follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// callqc's own: relative prosodic features `[N, F]` in (names in `features`).
    Features,
    /// A centre's speech-emotion model: 16 kHz mono f32 waveform `[1, samples]` in.
    Waveform,
}

/// The JSON beside a tone model (`tone.onnx` → `tone.json`). Only `kind`, `labels` and
/// `agitated_labels` are required; see docs/tone.md for an example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToneSidecar {
    #[serde(default = "default_format")]
    pub format: String,
    pub kind: ModelKind,
    /// Input / output tensor names; when absent, the model's only input and its first output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Output labels in output order.
    pub labels: Vec<String>,
    /// Labels whose probabilities add up to p_agitated (e.g. `["angry"]`).
    pub agitated_labels: Vec<String>,
    /// Labels whose probabilities add up to p_tense (may be empty); the rest is p_calm.
    #[serde(default)]
    pub tense_labels: Vec<String>,
    /// Feature models: the input features, in order (must be callqc's [`FEATURE_NAMES`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// Waveform models: the input rate (callqc feeds 16 kHz only).
    #[serde(default = "default_rate")]
    pub sample_rate: u32,
    /// The output holds logits, not probabilities: callqc applies a softmax.
    #[serde(default)]
    pub outputs_logits: bool,
    /// Waveform models: scale each window to zero mean and unit variance before the model (what
    /// wav2vec2-style feature extractors do outside the exported graph).
    #[serde(default)]
    pub normalize_waveform: bool,
    /// Default p_agitated threshold for flagging.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// Where the weights come from: "prior", "fit", or a centre's own description.
    #[serde(default)]
    pub provenance: String,
    /// Date written (UTC, YYYY-MM-DD).
    #[serde(default)]
    pub created: String,
    /// sha256 of the ONNX file; checked on load when present, so a model and its sidecar cannot
    /// drift apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
}

fn default_format() -> String {
    SIDECAR_FORMAT.to_string()
}
fn default_rate() -> u32 {
    TARGET_RATE
}
fn default_threshold() -> f64 {
    DEFAULT_THRESHOLD
}

/// The sidecar path of a model: the same path with a `.json` extension.
pub fn sidecar_path(model: &Path) -> PathBuf {
    model.with_extension("json")
}

impl ToneSidecar {
    /// Read and check a sidecar.
    pub fn load(path: &Path) -> Result<ToneSidecar, ToneError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ToneError::SidecarMissing(path.to_path_buf()));
            }
            Err(source) => {
                return Err(ToneError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let sidecar: ToneSidecar = serde_json::from_str(&text).map_err(|e| ToneError::Sidecar {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        sidecar.validate().map_err(|reason| ToneError::Sidecar {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(sidecar)
    }

    /// Write the sidecar as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), ToneError> {
        let json = serde_json::to_string_pretty(self).expect("sidecar serialises");
        std::fs::write(path, json + "\n").map_err(|source| ToneError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    fn validate(&self) -> Result<(), String> {
        if self.labels.is_empty() {
            return Err("`labels` is empty".into());
        }
        for (i, l) in self.labels.iter().enumerate() {
            if self.labels[..i].contains(l) {
                return Err(format!("label '{l}' appears twice"));
            }
        }
        if self.agitated_labels.is_empty() {
            return Err("`agitated_labels` is empty: which labels count as agitation?".into());
        }
        for l in self.agitated_labels.iter().chain(&self.tense_labels) {
            if !self.labels.contains(l) {
                return Err(format!("'{l}' is not one of the labels {:?}", self.labels));
            }
        }
        if let Some(l) = self
            .tense_labels
            .iter()
            .find(|l| self.agitated_labels.contains(l))
        {
            return Err(format!("'{l}' is both an agitated and a tense label"));
        }
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return Err(format!("threshold {} is not in (0, 1)", self.threshold));
        }
        match self.kind {
            ModelKind::Features => {
                let names: Vec<&str> = self.features.iter().map(String::as_str).collect();
                if names != FEATURE_NAMES {
                    return Err(format!(
                        "feature model inputs {names:?} differ from what this callqc computes {FEATURE_NAMES:?}"
                    ));
                }
            }
            ModelKind::Waveform => {
                if self.sample_rate != TARGET_RATE {
                    return Err(format!(
                        "sample_rate {} is not supported: callqc feeds {TARGET_RATE} Hz audio",
                        self.sample_rate
                    ));
                }
            }
        }
        Ok(())
    }

    /// Output indices of agitated and tense labels.
    fn label_map(&self) -> LabelMap {
        let idx = |set: &[String]| -> Vec<usize> {
            self.labels
                .iter()
                .enumerate()
                .filter(|(_, l)| set.contains(l))
                .map(|(i, _)| i)
                .collect()
        };
        LabelMap {
            n: self.labels.len(),
            agitated: idx(&self.agitated_labels),
            tense: idx(&self.tense_labels),
            logits: self.outputs_logits,
        }
    }
}

/// Turns one row of model output into (p_calm, p_tense, p_agitated).
#[derive(Debug, Clone)]
struct LabelMap {
    n: usize,
    agitated: Vec<usize>,
    tense: Vec<usize>,
    logits: bool,
}

impl LabelMap {
    fn map(&self, row: &[f32]) -> (f64, f64, f64) {
        let mut p: Vec<f64> = row.iter().map(|&v| v as f64).collect();
        if self.logits {
            let m = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            p.iter_mut().for_each(|v| *v = (*v - m).exp());
        }
        // Renormalise (also guards a model whose probabilities do not quite sum to one).
        p.iter_mut()
            .for_each(|v| *v = if v.is_finite() { v.max(0.0) } else { 0.0 });
        let sum: f64 = p.iter().sum();
        if sum <= 0.0 {
            return (1.0, 0.0, 0.0);
        }
        let a: f64 = self.agitated.iter().map(|&i| p[i]).sum::<f64>() / sum;
        let t: f64 = self.tense.iter().map(|&i| p[i]).sum::<f64>() / sum;
        ((1.0 - a - t).max(0.0), t, a)
    }
}

// ------------------------------------------------------------------------------------------------
// Writing models

use crate::onnx::sha256_hex as hex_sha256;

/// Today's UTC date, YYYY-MM-DD.
fn today_utc() -> String {
    now_utc()[..10].to_string()
}

pub use crate::time::now_utc;

/// Write a feature model with these parameters to `path` and its sidecar beside it. The ONNX
/// bytes depend only on `params` and `provenance` (reproducible); the sidecar also records the
/// date and the file's sha256.
pub fn write_feature_model(
    path: &Path,
    params: &LinearToneParams,
    provenance: &str,
    threshold: f64,
    notes: &str,
) -> Result<ToneSidecar, ToneError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| ToneError::Io { path: p, source }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let model = params.to_onnx(provenance);
    model.write(path).map_err(io(path))?;
    let sidecar = ToneSidecar {
        format: SIDECAR_FORMAT.into(),
        kind: ModelKind::Features,
        input: Some(FEATURE_INPUT.into()),
        output: Some(PROBS_OUTPUT.into()),
        labels: LABELS.iter().map(|s| s.to_string()).collect(),
        agitated_labels: vec!["agitated".into()],
        tense_labels: vec!["tense".into()],
        features: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
        sample_rate: TARGET_RATE,
        outputs_logits: false,
        normalize_waveform: false,
        threshold,
        provenance: provenance.into(),
        created: today_utc(),
        model_sha256: Some(hex_sha256(&model.to_bytes())),
        notes: notes.into(),
    };
    sidecar.save(&sidecar_path(path))?;
    Ok(sidecar)
}

/// Write the prior tone model (`tone.onnx` + `tone.json` when `path` is `<models>/tone.onnx`).
/// This is the committed, reproducible generation step behind `callqc tone init`.
pub fn write_prior_model(path: &Path) -> Result<ToneSidecar, ToneError> {
    write_feature_model(
        path,
        &LinearToneParams::prior(),
        "prior",
        DEFAULT_THRESHOLD,
        "Documented prior from the vocal-arousal literature, not trained on emotional speech; \
         see docs/tone.md.",
    )
}

// ------------------------------------------------------------------------------------------------
// Loading and running

/// What both model kinds share: the session, the sidecar and the resolved tensor names.
struct Loaded {
    session: Session,
    path: PathBuf,
    sidecar: ToneSidecar,
    input: String,
    output: String,
    map: LabelMap,
}

impl Loaded {
    fn load(models_dir: &Path, path: &Path, threads: usize) -> Result<Loaded, ToneError> {
        let sidecar = ToneSidecar::load(&sidecar_path(path))?;
        let contract = |reason: String| ToneError::Contract {
            model: path.to_path_buf(),
            reason,
        };
        if let Some(want) = &sidecar.model_sha256 {
            let bytes = std::fs::read(path).map_err(|source| ToneError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            if !hex_sha256(&bytes).eq_ignore_ascii_case(want) {
                return Err(contract(
                    "the file's sha256 differs from `model_sha256` in its sidecar (regenerate the \
                     model, or fix the sidecar)"
                        .into(),
                ));
            }
        }
        let session = crate::onnx::session(models_dir, path, threads)?;
        let inputs: Vec<String> = session
            .inputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        let outputs: Vec<String> = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        let input = match &sidecar.input {
            Some(name) if inputs.contains(name) => name.clone(),
            Some(name) => return Err(contract(format!("no input '{name}' (it has {inputs:?})"))),
            None if inputs.len() == 1 => inputs[0].clone(),
            None => {
                return Err(contract(format!(
                    "it has inputs {inputs:?}; the contract is one input (name it in the sidecar's `input`)"
                )));
            }
        };
        if inputs.len() != 1 {
            return Err(contract(format!(
                "it has inputs {inputs:?}; the contract is exactly one input"
            )));
        }
        let output = match &sidecar.output {
            Some(name) if outputs.contains(name) => name.clone(),
            Some(name) => {
                return Err(contract(format!("no output '{name}' (it has {outputs:?})")));
            }
            None => outputs
                .first()
                .cloned()
                .ok_or_else(|| contract("it has no outputs".into()))?,
        };
        let map = sidecar.label_map();
        Ok(Loaded {
            session,
            path: path.to_path_buf(),
            sidecar,
            input,
            output,
            map,
        })
    }

    /// Run on one f32 tensor; returns the output rows, each checked to have one value per label.
    fn run(&mut self, shape: Vec<i64>, data: Vec<f32>) -> Result<Vec<Vec<f32>>, ToneError> {
        let path = self.path.clone();
        let fail = |reason: String| ToneError::Run {
            model: path.clone(),
            reason,
        };
        let tensor = Tensor::from_array((shape, data)).map_err(|e| fail(e.to_string()))?;
        let outputs = self
            .session
            .run(vec![(self.input.clone(), tensor)])
            .map_err(|e| fail(e.to_string()))?;
        let value = outputs
            .get(&self.output)
            .ok_or_else(|| fail(format!("no output '{}'", self.output)))?;
        let (shape, data) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| fail(format!("output '{}' is not f32: {e}", self.output)))?;
        let n = self.map.n;
        let last = shape.last().copied().unwrap_or(0);
        if last != n as i64 || data.len() % n != 0 {
            return Err(ToneError::Contract {
                model: self.path.clone(),
                reason: format!(
                    "output '{}' has shape {:?}, expected [.., {n}] (one value per label {:?})",
                    self.output,
                    &shape[..],
                    self.sidecar.labels
                ),
            });
        }
        Ok(data.chunks(n).map(|c| c.to_vec()).collect())
    }
}

/// callqc's feature model (`kind: features`): relative features in, calm/tense/agitated out.
pub struct ToneModel {
    inner: Loaded,
}

impl ToneModel {
    /// Load `path` (and its sidecar) once; `threads` intra-op threads.
    pub fn load(models_dir: &Path, path: &Path, threads: usize) -> Result<ToneModel, ToneError> {
        let inner = Loaded::load(models_dir, path, threads)?;
        if inner.sidecar.kind != ModelKind::Features {
            return Err(ToneError::Contract {
                model: path.to_path_buf(),
                reason: "its sidecar says `kind: waveform`; load it as a WaveformModel".into(),
            });
        }
        Ok(ToneModel { inner })
    }

    pub fn sidecar(&self) -> &ToneSidecar {
        &self.inner.sidecar
    }

    /// (p_calm, p_tense, p_agitated) for each window's relative features (clipped), in one batch.
    pub fn score(&mut self, batch: &[RelativeFeatures]) -> Result<Vec<(f64, f64, f64)>, ToneError> {
        let x: Vec<[f32; N_FEATURES]> = batch.iter().map(RelativeFeatures::to_array).collect();
        self.probabilities(&x)
    }

    /// (p_calm, p_tense, p_agitated) for each model input vector, in one batch.
    pub fn probabilities(
        &mut self,
        batch: &[[f32; N_FEATURES]],
    ) -> Result<Vec<(f64, f64, f64)>, ToneError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let flat: Vec<f32> = batch.iter().flat_map(|r| r.iter().copied()).collect();
        let rows = self
            .inner
            .run(vec![batch.len() as i64, N_FEATURES as i64], flat)?;
        if rows.len() != batch.len() {
            return Err(ToneError::Contract {
                model: self.inner.path.clone(),
                reason: format!("{} rows in, {} out", batch.len(), rows.len()),
            });
        }
        Ok(rows.iter().map(|r| self.inner.map.map(r)).collect())
    }
}

/// A centre's waveform-in model (`kind: waveform`): one window's 16 kHz f32 samples as
/// `[1, samples]` in, one probability (or logit) per label out.
pub struct WaveformModel {
    inner: Loaded,
}

impl WaveformModel {
    pub fn load(
        models_dir: &Path,
        path: &Path,
        threads: usize,
    ) -> Result<WaveformModel, ToneError> {
        let inner = Loaded::load(models_dir, path, threads)?;
        if inner.sidecar.kind != ModelKind::Waveform {
            return Err(ToneError::Contract {
                model: path.to_path_buf(),
                reason: "its sidecar says `kind: features`; load it as a ToneModel".into(),
            });
        }
        Ok(WaveformModel { inner })
    }

    pub fn sidecar(&self) -> &ToneSidecar {
        &self.inner.sidecar
    }

    /// (p_calm, p_tense, p_agitated) of one window of 16 kHz samples.
    pub fn probabilities(&mut self, samples: &[f32]) -> Result<(f64, f64, f64), ToneError> {
        let mut x = samples.to_vec();
        if self.inner.sidecar.normalize_waveform && !x.is_empty() {
            let n = x.len() as f64;
            let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
            let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
            let sd = (var + 1e-7).sqrt();
            x.iter_mut()
                .for_each(|v| *v = ((*v as f64 - mean) / sd) as f32);
        }
        let rows = self.inner.run(vec![1, x.len() as i64], x)?;
        match rows.as_slice() {
            [row] => Ok(self.inner.map.map(row)),
            _ => Err(ToneError::Contract {
                model: self.inner.path.clone(),
                reason: format!("expected one output row for one window, got {}", rows.len()),
            }),
        }
    }
}

/// The one seam between callqc and a tone model: both kinds score a role's speech through
/// [`ToneScorer::score_role`] (same windows, same voicing filter, same output).
pub enum ToneScorer {
    Features(ToneModel),
    Waveform(WaveformModel),
}

impl ToneScorer {
    /// Load the model at `path`; its sidecar's `kind` decides which contract it follows.
    pub fn load(models_dir: &Path, path: &Path, threads: usize) -> Result<ToneScorer, ToneError> {
        let sidecar = ToneSidecar::load(&sidecar_path(path))?;
        Ok(match sidecar.kind {
            ModelKind::Features => {
                ToneScorer::Features(ToneModel::load(models_dir, path, threads)?)
            }
            ModelKind::Waveform => {
                ToneScorer::Waveform(WaveformModel::load(models_dir, path, threads)?)
            }
        })
    }

    pub fn sidecar(&self) -> &ToneSidecar {
        match self {
            ToneScorer::Features(m) => m.sidecar(),
            ToneScorer::Waveform(m) => m.sidecar(),
        }
    }

    /// The model's default p_agitated threshold.
    pub fn threshold(&self) -> f64 {
        self.sidecar().threshold
    }

    /// Score one role's speech in `spans` (VAD utterances, seconds; or [`features::sliding_spans`]
    /// for live-style windows). `transcript_rates`, parallel to `spans`, gives characters per
    /// second where a transcript exists. Spans with too little voiced speech are not scored.
    pub fn score_role(
        &mut self,
        audio: &RoleAudio,
        spans: &[(f64, f64)],
        transcript_rates: Option<&[Option<f64>]>,
    ) -> Result<ToneTrack, ToneError> {
        self.score_role_with_history(audio, spans, transcript_rates, None)
    }

    /// [`Self::score_role`] with the agent's stored cross-call baseline blended in
    /// ([`Baseline::blend`]). The returned track carries the in-call baseline, unblended.
    pub fn score_role_with_history(
        &mut self,
        audio: &RoleAudio,
        spans: &[(f64, f64)],
        transcript_rates: Option<&[Option<f64>]>,
        history: Option<&Baseline>,
    ) -> Result<ToneTrack, ToneError> {
        let plan = features::plan_windows(audio.duration_s(), spans, transcript_rates);
        if plan.is_empty() {
            return Ok(ToneTrack::default());
        }
        let bounds: Vec<(f64, f64)> = plan.iter().map(|w| (w.0, w.1)).collect();
        let analysis = FrameAnalysis::analyse(&audio.samples, Some(&bounds));
        let raws: Vec<RawFeatures> = plan
            .iter()
            .filter_map(|&(s, e, r)| analysis.window(s, e, r))
            .collect();
        let call_baseline = Baseline::from_windows(&raws);
        let used = match (&call_baseline, history) {
            (Some(b), Some(h)) => Some(b.blend(h)),
            (b, _) => b.clone(),
        };
        let windows = self.score_windows(audio.role, &audio.samples, 0, &raws, used.as_ref())?;
        Ok(ToneTrack {
            windows,
            baseline: call_baseline,
        })
    }

    /// Score prepared windows: `raws` against `baseline`. A raw's times are seconds from the
    /// start of the audio; `samples` holds that audio from its `first_sample`th sample on (0: all
    /// of it; a live session keeps only its recent audio).
    /// The one place both model kinds turn windows into [`ToneWindow`]s (batch and live).
    pub fn score_windows(
        &mut self,
        role: Role,
        samples: &[f32],
        first_sample: usize,
        raws: &[RawFeatures],
        baseline: Option<&Baseline>,
    ) -> Result<Vec<ToneWindow>, ToneError> {
        let window = |r: &RawFeatures, p: (f64, f64, f64), features: Option<Vec<f32>>| ToneWindow {
            role,
            start: r.start,
            end: r.end,
            p_calm: p.0,
            p_tense: p.1,
            p_agitated: p.2,
            features,
        };
        match self {
            ToneScorer::Features(model) => {
                let Some(baseline) = baseline else {
                    return Ok(Vec::new());
                };
                let x: Vec<[f32; N_FEATURES]> = raws
                    .iter()
                    .map(|r| baseline.relative(r).to_array())
                    .collect();
                let probs = model.probabilities(&x)?;
                Ok(raws
                    .iter()
                    .zip(probs)
                    .zip(x)
                    .map(|((r, p), x)| window(r, p, Some(x.to_vec())))
                    .collect())
            }
            ToneScorer::Waveform(model) => raws
                .iter()
                .map(|r| {
                    let at = |t: f64| {
                        ((t * TARGET_RATE as f64).round() as usize).saturating_sub(first_sample)
                    };
                    let a = at(r.start).min(samples.len());
                    let b = at(r.end).clamp(a, samples.len());
                    Ok(window(r, model.probabilities(&samples[a..b])?, None))
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prior_is_calm_at_baseline_and_agitated_when_everything_rises() {
        let p = LinearToneParams::prior();
        let calm = p.probabilities(&[0.0; N_FEATURES]);
        assert!(calm[0] > 0.9 && calm[2] < 0.01, "{calm:?}");
        // Evidence-weighted: louder by 4.5 dB, 2 semitones higher, faster, brighter, fewer pauses.
        let raised = p.probabilities(&[2.0, 0.5, 4.5, 4.0, 0.1, 0.15, 1.5, -0.05]);
        assert!(raised[2] > 0.9, "{raised:?}");
    }

    #[test]
    fn a_modest_level_step_alone_is_not_agitation() {
        // 2 dB (evidence-weighted, ≈ 3.5 dB in a 2 s window) louder and nothing else: not flagged.
        let p = LinearToneParams::prior();
        let louder = p.probabilities(&[0.0, 0.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0]);
        assert!(louder[2] < 0.2, "{louder:?}");
        // The same step with a higher, brighter voice counts for more.
        let aroused = p.probabilities(&[2.0, 0.0, 2.0, 2.0, 0.05, 0.15, 1.5, 0.0]);
        assert!(aroused[2] > 2.0 * louder[2], "{aroused:?} vs {louder:?}");
    }

    #[test]
    fn every_prior_weight_points_the_documented_way() {
        // Arousal raises F0, range, level, peak, rate, centroid and tilt and shortens pauses, and
        // agitation more than tension (docs/tone.md table).
        for i in 0..N_FEATURES {
            let sign = if FEATURE_NAMES[i] == "pause_ratio" {
                -1.0
            } else {
                1.0
            };
            assert!(PRIOR_TENSE[i] * sign > 0.0, "{}", FEATURE_NAMES[i]);
            assert!(
                PRIOR_AGITATED[i] * sign > PRIOR_TENSE[i] * sign,
                "{}",
                FEATURE_NAMES[i]
            );
        }
    }

    #[test]
    fn sidecar_round_trip_and_checks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tone.onnx");
        let written = write_prior_model(&path).unwrap();
        let read = ToneSidecar::load(&sidecar_path(&path)).unwrap();
        assert_eq!(written, read);
        assert_eq!(read.created.len(), 10);
        let first = std::fs::read(&path).unwrap();
        write_prior_model(&path).unwrap();
        assert_eq!(
            first,
            std::fs::read(&path).unwrap(),
            "generation is reproducible"
        );

        let minimal =
            r#"{"kind":"waveform","labels":["neutral","angry","sad"],"agitated_labels":["angry"]}"#;
        let s: ToneSidecar = serde_json::from_str(minimal).unwrap();
        assert!(s.validate().is_ok());
        assert_eq!(s.threshold, DEFAULT_THRESHOLD);
        let m = s.label_map();
        let (c, t, a) = m.map(&[0.2, 0.7, 0.1]);
        assert!((a - 0.7).abs() < 1e-6 && t == 0.0 && (c - 0.3).abs() < 1e-6);

        let bad = r#"{"kind":"waveform","labels":["neutral"],"agitated_labels":["angry"]}"#;
        let s: ToneSidecar = serde_json::from_str(bad).unwrap();
        assert!(s.validate().unwrap_err().contains("angry"));
        assert!(matches!(
            ToneSidecar::load(&dir.path().join("nope.json")),
            Err(ToneError::SidecarMissing(_))
        ));
    }

    #[test]
    fn utc_date_format() {
        let d = today_utc();
        assert!(
            d.starts_with("20") && d.as_bytes()[4] == b'-' && d.as_bytes()[7] == b'-',
            "{d}"
        );
    }
}
