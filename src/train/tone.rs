//! `callqc tone fit`: refit the feature model's agitation weights from what trainers decided.
//!
//! The shipped tone model is a documented prior (docs/tone.md). Once trainers have confirmed or
//! dismissed `agent_tone` findings in the database (or a centre has ground-truth JSON with
//! `agitated_spans`), those verdicts are labels for the agent windows the batch already stored
//! together with their model input (`tone_windows.features`), so the model can be refitted without
//! the audio:
//!
//! - [`training_set`] turns stored agent windows into labelled examples (agitated / calm).
//! - [`fit_agitated`] fits the agitated logit by L2-regularised logistic regression (Newton, pure
//!   Rust, deterministic), shrunk towards the prior so that a handful of labels nudges the prior
//!   rather than replacing it.
//! - [`cross_validate`] compares prior and fit on held-out windows, folds grouped by call.
//!
//! Only the agitated row changes: there are no tense labels (neither findings nor ground truth
//! say "tense"), so the prior's tense row and bias are kept as they are. Mean, scale and clip stay
//! the prior's too, so the ONNX graph has the same shape and the fitted weights are in the same
//! standard units as the documented prior's.

use std::collections::{BTreeMap, BTreeSet};

use crate::eval::LabelledCall;
use crate::store::{ReviewState, Store, StoreError};
use crate::tone::features::N_FEATURES;
use crate::tone::model::LinearToneParams;

/// Index of the agitated logit in [`super::model::LABELS`].
const AGITATED: usize = 2;
/// Index of the tense logit.
const TENSE: usize = 1;

/// L2 penalty on the distance of each agitated weight from the prior's (in standardised units,
/// summed log-loss): about one window's worth of evidence per unit of weight, so a few dozen
/// labelled windows move the weights clearly and a handful barely do.
pub const LAMBDA: f64 = 1.0;
/// Much weaker pull of the bias towards the prior's: only there to keep it finite when a training
/// fold holds one class only (a call with no agitation at all is common).
pub const LAMBDA_BIAS: f64 = 0.01;

/// One labelled training window.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Model input (relative features, clipped), as stored by the batch.
    pub x: [f32; N_FEATURES],
    pub agitated: bool,
    /// The call's key (folds are grouped by it).
    pub call: String,
}

/// What the labels came from (reported and written into the model's notes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSources {
    /// `agent_tone` findings trainers confirmed / dismissed.
    pub confirmed: usize,
    pub dismissed: usize,
    /// Ground-truth calls found in the database (and how many were given).
    pub labelled_calls: usize,
    pub labelled_given: usize,
}

/// Labelled agent windows (features, agitated?, call key): see [`training_set`].
pub fn training_windows(
    store: &Store,
    labels: Option<&[LabelledCall]>,
) -> Result<Vec<(Vec<f32>, bool, String)>, StoreError> {
    Ok(training_set(store, labels)?
        .0
        .into_iter()
        .map(|e| (e.x.to_vec(), e.agitated, e.call))
        .collect())
}

/// Every stored agent tone window with features that has a label:
/// - agitated if it overlaps a confirmed `agent_tone` finding or a ground-truth agitated span;
/// - else calm if it overlaps a dismissed `agent_tone` finding, or belongs to a ground-truth call
///   (whose labeller marked every agitated stretch, so the rest is not agitated).
///
/// Positive evidence wins a conflict: a trainer who confirmed agitation there saw something, while
/// a dismissed finding may cover a longer stretch than the part that was fine. Windows with no
/// label source are left out (an unreviewed window is not evidence of calm).
pub fn training_set(
    store: &Store,
    labels: Option<&[LabelledCall]>,
) -> Result<(Vec<Example>, LabelSources), StoreError> {
    let mut sources = LabelSources::default();

    // Reviewed agent_tone findings per call id: (start, end, confirmed?).
    let mut reviewed: BTreeMap<i64, Vec<(f64, f64, bool)>> = BTreeMap::new();
    for r in store.reviewed_findings(crate::rubric::Kind::AgentTone)? {
        let confirmed = r.review == ReviewState::Confirmed;
        if confirmed {
            sources.confirmed += 1;
        } else {
            sources.dismissed += 1;
        }
        reviewed
            .entry(r.call_id)
            .or_default()
            .push((r.start, r.end, confirmed));
    }

    // Ground-truth agitated spans per call id (found the way `callqc eval` finds them).
    let mut truth: BTreeMap<i64, Vec<(f64, f64)>> = BTreeMap::new();
    if let Some(labels) = labels {
        sources.labelled_given = labels.len();
        for lc in labels {
            if let Ok(id) = store.find_call(&lc.truth.call_id) {
                truth.insert(id, lc.truth.labels.agitated_spans.clone());
            }
        }
        sources.labelled_calls = truth.len();
    }

    let rows = store.agent_tone_features()?;

    let overlaps = |a: f64, b: f64, s: f64, t: f64| a < t && s < b;
    let mut out = Vec::new();
    for w in rows {
        let (id, key, start, end, features) = (w.call_id, w.call_key, w.start, w.end, w.features);
        // A window whose features do not parse (or have another length) cannot be model input.
        let Ok(v) = serde_json::from_str::<Vec<f32>>(&features) else {
            continue;
        };
        let Ok(x) = <[f32; N_FEATURES]>::try_from(v.as_slice()) else {
            continue;
        };
        let rev = reviewed.get(&id).map(Vec::as_slice).unwrap_or(&[]);
        let spans = truth.get(&id);
        let confirmed = rev.iter().any(|&(s, t, c)| c && overlaps(start, end, s, t));
        let labelled_agitated =
            spans.is_some_and(|sp| sp.iter().any(|&(s, t)| overlaps(start, end, s, t)));
        let dismissed = rev
            .iter()
            .any(|&(s, t, c)| !c && overlaps(start, end, s, t));
        let label = if confirmed || labelled_agitated {
            Some(true)
        } else if dismissed || spans.is_some() {
            Some(false)
        } else {
            None
        };
        if let Some(agitated) = label {
            out.push(Example {
                x,
                agitated,
                call: key,
            });
        }
    }
    Ok((out, sources))
}

/// Standardised features under the prior's clip, mean and scale (the model's own `z`).
fn standardise(p: &LinearToneParams, x: &[f32; N_FEATURES]) -> [f64; N_FEATURES] {
    let mut z = [0.0; N_FEATURES];
    for i in 0..N_FEATURES {
        let v = (x[i] as f64).clamp(-p.clip[i], p.clip[i]);
        z[i] = (v - p.mean[i]) / p.scale[i];
    }
    z
}

fn sigmoid(v: f64) -> f64 {
    if v >= 0.0 {
        1.0 / (1.0 + (-v).exp())
    } else {
        let e = v.exp();
        e / (1.0 + e)
    }
}

fn softplus(v: f64) -> f64 {
    v.max(0.0) + (-v.abs()).exp().ln_1p()
}

const P: usize = N_FEATURES + 1; // agitated weights + bias

/// Fit the agitated weights and bias of `prior` to `examples`; returns `prior` with its agitated
/// row replaced (tense row, clip, mean and scale unchanged).
///
/// The model's p_agitated is the softmax share of the agitated logit `a` against calm (0) and
/// tense `t`: `p = σ(a − softplus(t))`. With `t` fixed (the prior's), that is logistic regression
/// on `a` with the per-window offset `−softplus(t)`, so what is fitted is exactly the number the
/// batch thresholds, not a stand-in. Objective: summed log-loss + LAMBDA/2·‖w − w_prior‖² +
/// LAMBDA_BIAS/2·(b − b_prior)²; strictly convex, solved by damped Newton from the prior.
pub fn fit_agitated(prior: &LinearToneParams, examples: &[Example]) -> LinearToneParams {
    let rows: Vec<([f64; P], f64, f64)> = examples
        .iter()
        .map(|ex| {
            let z = standardise(prior, &ex.x);
            let t = prior.bias[TENSE]
                + z.iter()
                    .enumerate()
                    .map(|(i, zi)| zi * prior.weights[i][TENSE])
                    .sum::<f64>();
            let mut r = [1.0; P];
            r[..N_FEATURES].copy_from_slice(&z);
            (r, -softplus(t), if ex.agitated { 1.0 } else { 0.0 })
        })
        .collect();
    let mut theta0 = [0.0; P];
    for (i, th) in theta0.iter_mut().take(N_FEATURES).enumerate() {
        *th = prior.weights[i][AGITATED];
    }
    theta0[N_FEATURES] = prior.bias[AGITATED];
    let penalty = |j: usize| if j < N_FEATURES { LAMBDA } else { LAMBDA_BIAS };
    let objective = |th: &[f64; P]| {
        let mut f = 0.0;
        for (r, off, y) in &rows {
            let s = dot(th, r) + off;
            // −[y log σ(s) + (1−y) log(1−σ(s))] = softplus(s) − y·s
            f += softplus(s) - y * s;
        }
        for j in 0..P {
            f += 0.5 * penalty(j) * (th[j] - theta0[j]).powi(2);
        }
        f
    };

    let mut theta = theta0;
    let mut f = objective(&theta);
    for _ in 0..100 {
        let mut g = [0.0; P];
        let mut h = [[0.0; P]; P];
        for (r, off, y) in &rows {
            let p = sigmoid(dot(&theta, r) + off);
            let w = p * (1.0 - p);
            for j in 0..P {
                g[j] += (p - y) * r[j];
                for k in 0..P {
                    h[j][k] += w * r[j] * r[k];
                }
            }
        }
        for j in 0..P {
            g[j] += penalty(j) * (theta[j] - theta0[j]);
            h[j][j] += penalty(j);
        }
        let Some(step) = solve(h, g) else { break };
        // Damped: halve until the objective does not rise (Newton can overshoot far from the
        // optimum on nearly separable data).
        let mut a = 1.0;
        let mut improved = false;
        for _ in 0..40 {
            let mut cand = theta;
            for j in 0..P {
                cand[j] -= a * step[j];
            }
            let fc = objective(&cand);
            if fc <= f {
                let done = (f - fc) < 1e-10 * (1.0 + f.abs());
                theta = cand;
                f = fc;
                improved = !done;
                break;
            }
            a *= 0.5;
        }
        if !improved {
            break;
        }
    }

    let mut out = prior.clone();
    for (w, &t) in out.weights.iter_mut().zip(&theta) {
        w[AGITATED] = t;
    }
    out.bias[AGITATED] = theta[N_FEATURES];
    out
}

fn dot(a: &[f64; P], b: &[f64; P]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Solve `h · x = g` for the symmetric positive-definite `h` (Gaussian elimination with partial
/// pivoting; P is 9).
fn solve(mut h: [[f64; P]; P], mut g: [f64; P]) -> Option<[f64; P]> {
    for c in 0..P {
        let piv = (c..P).max_by(|&a, &b| h[a][c].abs().total_cmp(&h[b][c].abs()))?;
        if h[piv][c].abs() < 1e-12 {
            return None;
        }
        h.swap(c, piv);
        g.swap(c, piv);
        let (top, rest) = h.split_at_mut(c + 1);
        let pivot_row = &top[c];
        for (i, row) in rest.iter_mut().enumerate() {
            let f = row[c] / pivot_row[c];
            for (v, p) in row[c..].iter_mut().zip(&pivot_row[c..]) {
                *v -= f * p;
            }
            g[c + 1 + i] -= f * g[c];
        }
    }
    let mut x = [0.0; P];
    for c in (0..P).rev() {
        let s: f64 = (c + 1..P).map(|k| h[c][k] * x[k]).sum();
        x[c] = (g[c] - s) / h[c][c];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Fold of each example: calls (in order of first appearance) go round-robin into
/// k = min(5, calls) folds, so every window of a call is held out together — windows of one call
/// share its speaker and baseline, and splitting them would flatter the fit. With ≤ 5 calls this
/// is leave-one-call-out.
pub fn grouped_folds(examples: &[Example]) -> (usize, Vec<usize>) {
    let mut order: Vec<&str> = Vec::new();
    for e in examples {
        if !order.contains(&e.call.as_str()) {
            order.push(&e.call);
        }
    }
    let k = order.len().min(5);
    let folds = examples
        .iter()
        .map(|e| order.iter().position(|c| *c == e.call).unwrap_or(0) % k.max(1))
        .collect();
    (k, folds)
}

/// Confusion counts of p_agitated ≥ threshold against the labels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Confusion {
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    pub fn_: usize,
}

impl Confusion {
    fn add(&mut self, predicted: bool, actual: bool) {
        match (predicted, actual) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, false) => self.tn += 1,
            (false, true) => self.fn_ += 1,
        }
    }
    pub fn n(&self) -> usize {
        self.tp + self.fp + self.tn + self.fn_
    }
    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.n())
    }
    /// Precision; `None` when nothing was flagged.
    pub fn precision(&self) -> Option<f64> {
        (self.tp + self.fp > 0).then(|| ratio(self.tp, self.tp + self.fp))
    }
    /// Recall; `None` when there was nothing to find.
    pub fn recall(&self) -> Option<f64> {
        (self.tp + self.fn_ > 0).then(|| ratio(self.tp, self.tp + self.fn_))
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Held-out results of prior and fit on the same grouped folds.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossValidation {
    pub folds: usize,
    pub prior: Confusion,
    pub fit: Confusion,
}

/// Grouped k-fold cross-validation (see [`grouped_folds`]): each fold is fitted on the others and
/// both the prior and that fit are scored on it; counts are pooled over folds.
pub fn cross_validate(
    prior: &LinearToneParams,
    examples: &[Example],
    threshold: f64,
) -> CrossValidation {
    let (k, folds) = grouped_folds(examples);
    let mut cv = CrossValidation {
        folds: k,
        prior: Confusion::default(),
        fit: Confusion::default(),
    };
    for f in 0..k {
        let train: Vec<Example> = examples
            .iter()
            .zip(&folds)
            .filter(|&(_, &g)| g != f)
            .map(|(e, _)| e.clone())
            .collect();
        let fitted = fit_agitated(prior, &train);
        for (e, _) in examples.iter().zip(&folds).filter(|&(_, &g)| g == f) {
            cv.prior
                .add(prior.probabilities(&e.x)[AGITATED] >= threshold, e.agitated);
            cv.fit.add(
                fitted.probabilities(&e.x)[AGITATED] >= threshold,
                e.agitated,
            );
        }
    }
    cv
}

/// Counts of a training set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub windows: usize,
    pub calls: usize,
    pub positives: usize,
}

pub fn counts(examples: &[Example]) -> Counts {
    Counts {
        windows: examples.len(),
        calls: examples
            .iter()
            .map(|e| e.call.as_str())
            .collect::<BTreeSet<_>>()
            .len(),
        positives: examples.iter().filter(|e| e.agitated).count(),
    }
}

/// Why there is nothing to fit: two calls (so something can be held out) and both classes are
/// the minimum. `None` when fitting may go ahead.
pub fn refusal(c: &Counts) -> Option<String> {
    if c.calls < 2 {
        Some(format!(
            "labelled windows from {} call(s); at least 2 calls are needed (review agent_tone \
             findings, or pass --labels DIR with ground-truth JSON of calls in the database)",
            c.calls
        ))
    } else if c.positives == 0 {
        Some(format!(
            "no agitated example among {} labelled windows (confirm agent_tone findings, or label \
             agitated_spans)",
            c.windows
        ))
    } else if c.positives == c.windows {
        Some(format!(
            "no calm example among {} labelled windows (dismiss agent_tone findings, or pass \
             --labels with calls that have calm stretches)",
            c.windows
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random numbers in [0, 1) (no rand dependency in the lib).
    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Windows where only `peak_db` (index 3, a small prior weight) tells agitation apart.
    fn synthetic(n_calls: usize, per_call: usize) -> Vec<Example> {
        let mut seed = 7;
        let mut out = Vec::new();
        for c in 0..n_calls {
            for i in 0..per_call {
                let agitated = i % 3 == 0;
                let mut x = [0f32; N_FEATURES];
                for v in x.iter_mut() {
                    *v = (lcg(&mut seed) - 0.5) as f32 * 0.02;
                }
                x[3] = if agitated { 3.0 } else { -1.0 } + (lcg(&mut seed) - 0.5) as f32;
                out.push(Example {
                    x,
                    agitated,
                    call: format!("call{c}"),
                });
            }
        }
        out
    }

    #[test]
    fn separable_data_is_learnt_and_the_tense_row_is_kept() {
        let prior = LinearToneParams::prior();
        let data = synthetic(4, 30);
        let fitted = fit_agitated(&prior, &data);
        // The prior misses these (peak alone is weak evidence for it); the fit separates them.
        let acc = |p: &LinearToneParams| {
            data.iter()
                .filter(|e| (p.probabilities(&e.x)[AGITATED] >= 0.5) == e.agitated)
                .count() as f64
                / data.len() as f64
        };
        assert!(acc(&prior) < 0.8, "prior {}", acc(&prior));
        assert_eq!(acc(&fitted), 1.0);
        assert!(fitted.weights[3][AGITATED] > prior.weights[3][AGITATED] + 0.5);
        for i in 0..N_FEATURES {
            assert_eq!(fitted.weights[i][TENSE], prior.weights[i][TENSE]);
            assert_eq!(fitted.weights[i][0], 0.0);
        }
        assert_eq!(fitted.bias[TENSE], prior.bias[TENSE]);
        assert_eq!(
            (fitted.clip, fitted.mean, fitted.scale),
            (prior.clip, prior.mean, prior.scale)
        );
        // Deterministic, and finite even with one class only.
        assert_eq!(fit_agitated(&prior, &data), fitted);
        let calm: Vec<Example> = data.iter().filter(|e| !e.agitated).cloned().collect();
        let one = fit_agitated(&prior, &calm);
        assert!(one.bias[AGITATED].is_finite() && one.bias[AGITATED] < prior.bias[AGITATED]);
        // No data: the prior itself.
        assert_eq!(fit_agitated(&prior, &[]), prior);
    }

    #[test]
    fn folds_hold_out_whole_calls() {
        let data = synthetic(3, 4);
        let (k, folds) = grouped_folds(&data);
        assert_eq!(k, 3, "leave-one-call-out with few calls");
        for (e, f) in data.iter().zip(&folds) {
            let same: BTreeSet<usize> = data
                .iter()
                .zip(&folds)
                .filter(|(o, _)| o.call == e.call)
                .map(|(_, &g)| g)
                .collect();
            assert_eq!(same, BTreeSet::from([*f]));
        }
        let (k, folds) = grouped_folds(&synthetic(12, 2));
        assert_eq!(k, 5);
        assert_eq!(folds.iter().collect::<BTreeSet<_>>().len(), 5);

        let cv = cross_validate(&LinearToneParams::prior(), &synthetic(4, 30), 0.5);
        assert_eq!(cv.prior.n(), 120);
        assert_eq!(cv.fit.n(), 120);
        assert!(cv.fit.accuracy() > cv.prior.accuracy(), "{cv:?}");
    }

    #[test]
    fn refusals_and_counts() {
        let data = synthetic(2, 3);
        let c = counts(&data);
        assert_eq!((c.windows, c.calls, c.positives), (6, 2, 2));
        assert!(refusal(&c).is_none());
        assert!(refusal(&counts(&data[..3])).unwrap().contains("2 calls"));
        let calm: Vec<Example> = data.iter().filter(|e| !e.agitated).cloned().collect();
        assert!(refusal(&counts(&calm)).unwrap().contains("no agitated"));
        let now = crate::tone::model::now_utc();
        assert!(
            now.len() == 20 && now.starts_with("20") && now.ends_with('Z'),
            "{now}"
        );
    }
}
