//! Training the sentence scorer ([`crate::rubric::sentence`]): multinomial logistic regression
//! over the scorer's hashed n-gram features, fitted by full-batch Adam with L2 regularisation —
//! deterministic, so the same corpus always gives the same model bytes.
//!
//! Classes are weighted inversely to their size (the clean sentences outnumber each category
//! several times). [`cross_validate`] gives every training sentence a probability from a model
//! that did not see it, which is what thresholds are chosen on: probabilities on training
//! sentences themselves are near 1 and say nothing.

use std::path::Path;

use crate::onnx::writer::{AttrValue, Dim, ElemType, Graph, Model, Node, Tensor, ValueInfo};
use crate::rubric::corpus::{CorpusError, Labelled};
use crate::rubric::rules::forbidden_phrase::split_sentences;
use crate::rubric::sentence::{
    self, BUCKETS, CLEAN, FEATURES_VERSION, INPUT, ModelCard, OUTPUT, features,
};

/// Fitting settings.
#[derive(Debug, Clone, Copy)]
pub struct TrainOptions {
    pub epochs: usize,
    pub learning_rate: f32,
    /// L2 penalty on the weights (not the biases).
    pub l2: f32,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 300,
            learning_rate: 0.05,
            l2: 1e-4,
        }
    }
}

/// A fitted model.
#[derive(Debug, Clone)]
pub struct Trained {
    pub labels: Vec<String>,
    /// `[BUCKETS][labels]`, row-major.
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
}

/// The label set of a corpus: [`CLEAN`] first, then the categories as they first appear.
pub fn labels_of(corpus: &[Labelled]) -> Vec<String> {
    let mut labels = vec![CLEAN.to_string()];
    for s in corpus {
        if !labels.contains(&s.label) {
            labels.push(s.label.clone());
        }
    }
    labels
}

impl Trained {
    /// Probabilities of every label for a feature vector (the graph's arithmetic, in Rust, for
    /// cross-validation without writing files).
    pub fn probabilities(&self, feats: &[i64]) -> Vec<f32> {
        let c = self.labels.len();
        let mut z = self.bias.clone();
        for &f in feats {
            let row = &self.weights[f as usize * c..(f as usize + 1) * c];
            z.iter_mut().zip(row).for_each(|(z, w)| *z += w);
        }
        softmax(&mut z);
        z
    }

    /// The ONNX graph: `Gather(W, features) → ReduceSum(axis 0) → Add(b) → Softmax`.
    pub fn to_onnx(&self, doc: &str) -> Model {
        let c = self.labels.len() as i64;
        let graph = Graph {
            name: "callqc_sentence_scorer".into(),
            nodes: vec![
                Node::new("Gather", "rows", &["W", INPUT], &["rows"])
                    .attr("axis", AttrValue::Int(0)),
                Node::new("ReduceSum", "sum", &["rows", "axes"], &["summed"])
                    .attr("keepdims", AttrValue::Int(1)),
                Node::new("Add", "bias", &["summed", "b"], &["logits"]),
                Node::new("Softmax", "softmax", &["logits"], &[OUTPUT])
                    .attr("axis", AttrValue::Int(-1)),
            ],
            initializers: vec![
                Tensor::f32("W", &[BUCKETS as i64, c], self.weights.clone()),
                Tensor::f32("b", &[c], self.bias.clone()),
                Tensor::i64("axes", &[1], vec![0]),
            ],
            inputs: vec![ValueInfo {
                name: INPUT.into(),
                elem: ElemType::Int64,
                dims: vec![Dim::Named("n".into())],
            }],
            outputs: vec![ValueInfo::f32(OUTPUT, vec![Dim::Fixed(1), Dim::Fixed(c)])],
            doc: doc.into(),
        };
        let mut model = Model::new(graph);
        model.doc = doc.into();
        model.metadata = vec![("labels".into(), self.labels.join(","))];
        model
    }
}

fn softmax(z: &mut [f32]) {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    z.iter_mut().for_each(|v| *v /= sum);
}

/// The sentences of every `every`-th non-empty line of a plain-text file (line 0, `every`, …),
/// labelled clean.
pub fn read_negatives(path: &Path, every: usize) -> Result<Vec<Labelled>, CorpusError> {
    let text = std::fs::read_to_string(path).map_err(|source| CorpusError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    // The tenth is taken by line (so the other nine tenths stay unseen), then split into the
    // sentences the rule judges one at a time: a review paragraph is not what the scorer sees.
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .flat_map(|(i, l)| {
            split_sentences(l).map(move |s| Labelled {
                label: CLEAN.to_string(),
                text: s.to_string(),
                line: i + 1,
            })
        })
        .collect())
}

/// The sentence a 禁语 finding quotes (`said "…"`), without the 【】 marks and the ellipses
/// of its excerpt.
pub fn sentence_of(evidence: &str) -> Option<String> {
    let start = evidence.find("said \"")? + "said \"".len();
    let len = evidence[start..].find('"')?;
    let text: String = evidence[start..start + len]
        .chars()
        .filter(|c| !matches!(c, '【' | '】' | '…'))
        .collect();
    let text = text.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// Trainers' verdicts as training sentences: a confirmed finding's sentence is an example of its
/// item's category, a dismissed one's a clean example. `category` maps an item id to its
/// category (items of other kinds or rubrics are skipped). Each (label, sentence) once.
pub fn examples_from_reviews(
    findings: &[crate::store::StoredFinding],
    category: &dyn Fn(&str) -> Option<String>,
) -> Vec<Labelled> {
    let mut out: Vec<Labelled> = Vec::new();
    for f in findings {
        let Some(cat) = category(&f.item_id) else {
            continue;
        };
        let Some(text) = sentence_of(&f.evidence) else {
            continue;
        };
        let label = match f.review {
            crate::store::ReviewState::Confirmed => cat,
            crate::store::ReviewState::Dismissed => CLEAN.to_string(),
            crate::store::ReviewState::Open => continue,
        };
        if !out.iter().any(|l| l.label == label && l.text == text) {
            out.push(Labelled {
                label,
                text,
                line: 0,
            });
        }
    }
    out
}

/// Fit the model on labelled sentences with the given label set.
pub fn train(corpus: &[Labelled], labels: &[String], opts: TrainOptions) -> Trained {
    let c = labels.len();
    let data: Vec<(usize, Vec<i64>)> = corpus
        .iter()
        .filter_map(|s| {
            let y = labels.iter().position(|l| *l == s.label)?;
            let f = features(&s.text);
            (!f.is_empty()).then_some((y, f))
        })
        .collect();
    let mut counts = vec![0usize; c];
    data.iter().for_each(|(y, _)| counts[*y] += 1);
    let present = counts.iter().filter(|&&n| n > 0).count().max(1);
    let class_weight: Vec<f32> = counts
        .iter()
        .map(|&n| {
            if n == 0 {
                0.0
            } else {
                data.len() as f32 / (present as f32 * n as f32)
            }
        })
        .collect();
    let total_weight: f32 = data
        .iter()
        .map(|(y, _)| class_weight[*y])
        .sum::<f32>()
        .max(1e-6);

    let mut model = Trained {
        labels: labels.to_vec(),
        weights: vec![0.0; BUCKETS * c],
        bias: vec![0.0; c],
    };
    // Adam state.
    let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    let mut m_w = vec![0.0f32; BUCKETS * c];
    let mut v_w = vec![0.0f32; BUCKETS * c];
    let mut m_b = vec![0.0f32; c];
    let mut v_b = vec![0.0f32; c];
    let mut g_w = vec![0.0f32; BUCKETS * c];
    let mut g_b = vec![0.0f32; c];
    let mut touched = vec![false; BUCKETS];
    data.iter()
        .flat_map(|(_, f)| f.iter())
        .for_each(|&f| touched[f as usize] = true);
    let rows: Vec<usize> = (0..BUCKETS).filter(|&r| touched[r]).collect();
    for epoch in 1..=opts.epochs {
        g_w.iter_mut().for_each(|g| *g = 0.0);
        g_b.iter_mut().for_each(|g| *g = 0.0);
        for (y, f) in &data {
            let p = model.probabilities(f);
            let w = class_weight[*y] / total_weight;
            for k in 0..c {
                let d = w * (p[k] - f32::from(u8::from(k == *y)));
                g_b[k] += d;
                for &i in f {
                    g_w[i as usize * c + k] += d;
                }
            }
        }
        let t = epoch as i32;
        let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        for &r in &rows {
            for k in 0..c {
                let i = r * c + k;
                let g = g_w[i] + opts.l2 * model.weights[i];
                m_w[i] = b1 * m_w[i] + (1.0 - b1) * g;
                v_w[i] = b2 * v_w[i] + (1.0 - b2) * g * g;
                model.weights[i] -=
                    opts.learning_rate * (m_w[i] / c1) / ((v_w[i] / c2).sqrt() + eps);
            }
        }
        for k in 0..c {
            m_b[k] = b1 * m_b[k] + (1.0 - b1) * g_b[k];
            v_b[k] = b2 * v_b[k] + (1.0 - b2) * g_b[k] * g_b[k];
            model.bias[k] -= opts.learning_rate * (m_b[k] / c1) / ((v_b[k] / c2).sqrt() + eps);
        }
    }
    model
}

/// Out-of-fold probabilities: sentence `i` is scored by the model trained on the folds that do
/// not hold it (fold = `i % k`).
pub fn cross_validate(
    corpus: &[Labelled],
    labels: &[String],
    k: usize,
    opts: TrainOptions,
) -> Vec<Vec<f32>> {
    let k = k.max(2);
    let mut out = vec![Vec::new(); corpus.len()];
    for fold in 0..k {
        let train_part: Vec<Labelled> = corpus
            .iter()
            .enumerate()
            .filter(|(i, _)| i % k != fold)
            .map(|(_, s)| s.clone())
            .collect();
        let model = train(&train_part, labels, opts);
        for (i, s) in corpus.iter().enumerate().filter(|(i, _)| i % k == fold) {
            out[i] = model.probabilities(&features(&s.text));
        }
    }
    out
}

/// (threshold, precision, recall) of one category at one threshold.
pub type ThresholdRow = (f32, f64, f64);

/// Per category and threshold: (threshold, precision, recall) of "top label and p ≥ threshold"
/// over out-of-fold probabilities.
pub fn threshold_table(
    corpus: &[Labelled],
    labels: &[String],
    probs: &[Vec<f32>],
    thresholds: &[f32],
) -> Vec<(String, Vec<ThresholdRow>)> {
    labels
        .iter()
        .enumerate()
        .filter(|(_, l)| *l != CLEAN)
        .map(|(li, l)| {
            let rows = thresholds
                .iter()
                .map(|&t| {
                    let (mut tp, mut fp, mut pos) = (0usize, 0usize, 0usize);
                    for (s, p) in corpus.iter().zip(probs) {
                        let is = s.label == *l;
                        pos += usize::from(is);
                        let top = p
                            .iter()
                            .enumerate()
                            .max_by(|a, b| a.1.total_cmp(b.1))
                            .is_some_and(|(i, _)| i == li);
                        if top && p[li] >= t {
                            if is {
                                tp += 1;
                            } else {
                                fp += 1;
                            }
                        }
                    }
                    let precision = if tp + fp == 0 {
                        1.0
                    } else {
                        tp as f64 / (tp + fp) as f64
                    };
                    let recall = if pos == 0 {
                        0.0
                    } else {
                        tp as f64 / pos as f64
                    };
                    (t, precision, recall)
                })
                .collect();
            (l.clone(), rows)
        })
        .collect()
}

/// Write the model and its sidecar (`sentences.onnx` + `sentences.json`).
pub fn write(
    model: &Trained,
    corpus: &[Labelled],
    path: &Path,
    training: serde_json::Value,
) -> std::io::Result<()> {
    let onnx = model.to_onnx("callqc sentence scorer: logistic regression over hashed n-grams");
    let bytes = onnx.to_bytes();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("onnx.tmp");
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, path)?;
    let card = ModelCard {
        features_version: FEATURES_VERSION,
        buckets: BUCKETS,
        labels: model.labels.clone(),
        model_sha256: crate::onnx::sha256_hex(&bytes),
        examples: corpus
            .iter()
            .filter(|s| s.label != CLEAN)
            .map(|s| (s.label.clone(), s.text.clone()))
            .collect(),
        training,
    };
    let json = serde_json::to_string_pretty(&card).map_err(std::io::Error::other)?;
    std::fs::write(sentence::card_path(path), json + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(label: &str, text: &str) -> Labelled {
        Labelled {
            label: label.into(),
            text: text.into(),
            line: 0,
        }
    }

    #[test]
    fn a_findings_sentence_is_its_quote_without_marks() {
        let e = "said \"…这事【不归我们管】，你自己去找物业！\" (禁语「不归我们管」)";
        assert_eq!(
            sentence_of(e).as_deref(),
            Some("这事不归我们管，你自己去找物业！")
        );
        assert_eq!(sentence_of("replied only \"不行\""), None);
    }

    #[test]
    fn learns_a_separable_toy_corpus_and_is_deterministic() {
        let corpus = vec![
            s("refusal", "这个跟我们没关系"),
            s("refusal", "跟我们这边没关系你找物业"),
            s("ok", "我帮您转接物业"),
            s("ok", "请问您的地址是"),
        ];
        let labels = labels_of(&corpus);
        let opts = TrainOptions {
            epochs: 100,
            ..Default::default()
        };
        let a = train(&corpus, &labels, opts);
        let b = train(&corpus, &labels, opts);
        assert_eq!(a.weights, b.weights);
        let p = a.probabilities(&features("跟我们没关系"));
        assert!(p[1] > 0.8, "{p:?}");
        let p = a.probabilities(&features("请问您的地址"));
        assert!(p[0] > 0.8, "{p:?}");
    }
}
