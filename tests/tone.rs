//! Agent tone end to end: the prior ONNX model through ONNX Runtime, the waveform drop-in
//! contract through the same scoring path, and real human speech (the pyannote.audio sample
//! call, fetched by scripts/setup.sh) made louder, faster and higher, or scaled ±10 dB.
//!
//! Needs `models/onnxruntime/libonnxruntime.so` and `models/cache/testdata/pyannote-sample.*`:
//! a missing file fails the test with "run scripts/setup.sh first" (never a silent skip).

use std::path::{Path, PathBuf};

use callqc::audio::{Role, RoleAudio, TARGET_RATE};
use callqc::onnx::writer::{AttrValue, Dim, Graph, Model, Node, Tensor, ValueInfo};
use callqc::tone::features::{FEATURE_NAMES, N_FEATURES};
use callqc::tone::model::{self, LinearToneParams, ToneModel, sidecar_path};
use callqc::tone::{self as tone, ToneError, ToneScorer, ToneTrack, features, live::ToneStream};

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

fn require(path: &Path) -> &Path {
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup.sh first",
        path.display()
    );
    path
}

fn require_runtime() {
    require(&callqc::onnx::runtime_path(&models_dir()));
}

/// The pyannote.audio sample: a real 30 s two-speaker telephone-style conversation, 16 kHz mono.
fn sample() -> Vec<f32> {
    let path = models_dir().join("cache/testdata/pyannote-sample.wav");
    let mut reader = hound::WavReader::open(require(&path)).expect("readable WAV");
    let spec = reader.spec();
    assert_eq!(spec.sample_rate, TARGET_RATE);
    assert_eq!(spec.channels, 1);
    reader
        .samples::<i16>()
        .map(|s| s.expect("sample") as f32 / 32768.0)
        .collect()
}

/// Speaker turns (start, end) from the sample's RTTM, per speaker.
fn turns(speaker: &str) -> Vec<(f64, f64)> {
    let path = models_dir().join("cache/testdata/pyannote-sample.rttm");
    let text = std::fs::read_to_string(require(&path)).expect("readable RTTM");
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 7 && f[7] == speaker).then(|| {
                let s: f64 = f[3].parse().unwrap();
                (s, s + f[4].parse::<f64>().unwrap())
            })
        })
        .collect()
}

/// The sample as if it were one speaker's own channel: the other speaker's turns muted (where
/// they do not overlap the speaker's own).
fn own_channel(all: &[f32], speaker: &str) -> Vec<f32> {
    let mine = turns(speaker);
    let inside = |t: f64| mine.iter().any(|&(s, e)| t >= s - 0.1 && t < e + 0.1);
    all.iter()
        .enumerate()
        .map(|(i, &v)| {
            if inside(i as f64 / TARGET_RATE as f64) {
                v
            } else {
                0.0
            }
        })
        .collect()
}

fn slice(x: &[f32], s: f64, e: f64) -> Vec<f32> {
    let r = TARGET_RATE as f64;
    x[(s * r) as usize..((e * r) as usize).min(x.len())].to_vec()
}

/// Play `x` `factor` times faster: shorter, and every frequency (F0, formants) `factor` higher —
/// what a raised, hurried voice does to the measurable prosody.
fn faster_higher(x: &[f32], factor: f64) -> Vec<f32> {
    let n = ((x.len() - 1) as f64 / factor) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 * factor;
            let k = t as usize;
            let f = (t - k as f64) as f32;
            x[k] * (1.0 - f) + x[(k + 1).min(x.len() - 1)] * f
        })
        .collect()
}

fn gain(x: &[f32], db: f64) -> Vec<f32> {
    let g = 10f32.powf(db as f32 / 20.0);
    x.iter().map(|v| v * g).collect()
}

fn prior_scorer(dir: &Path) -> ToneScorer {
    require_runtime();
    let path = dir.join(model::MODEL_FILE);
    model::write_prior_model(&path).expect("prior model written");
    ToneScorer::load(&models_dir(), &path, 1).expect("prior model loads")
}

fn agent(samples: Vec<f32>) -> RoleAudio {
    RoleAudio {
        role: Role::Agent,
        samples,
    }
}

/// A call built for a test: its samples, the spans to score, and the span of interest.
type TestCall = (Vec<f32>, Vec<(f64, f64)>, (f64, f64));

/// A call on one speaker's channel with `stretch` (seconds of the original) appended after the
/// call, transformed by `f`; returns the audio, the spans to score and the appended span.
fn call_with_appended(
    speaker: &str,
    stretch: (f64, f64),
    f: impl Fn(&[f32]) -> Vec<f32>,
) -> TestCall {
    let mut audio = own_channel(&sample(), speaker);
    let changed = f(&slice(&audio, stretch.0, stretch.1));
    audio.extend(std::iter::repeat_n(0.0, TARGET_RATE as usize / 2));
    let start = audio.len() as f64 / TARGET_RATE as f64;
    audio.extend(&changed);
    let end = audio.len() as f64 / TARGET_RATE as f64;
    let mut spans = turns(speaker);
    spans.push((start, end));
    (audio, spans, (start, end))
}

#[test]
fn prior_onnx_file_computes_the_documented_function() {
    require_runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tone.onnx");
    model::write_prior_model(&path).unwrap();
    let mut m = ToneModel::load(&models_dir(), &path, 1).unwrap();
    let params = LinearToneParams::prior();
    // A grid of inputs, including values far outside the clip range.
    let mut batch = vec![[0f32; N_FEATURES]];
    for i in 0..N_FEATURES {
        for v in [-50.0f32, -1.0, 0.3, 2.5, 50.0] {
            let mut x = [0f32; N_FEATURES];
            x[i] = v;
            x[(i + 3) % N_FEATURES] = v / 4.0;
            batch.push(x);
        }
    }
    let got = m.probabilities(&batch).unwrap();
    for (x, p) in batch.iter().zip(&got) {
        let want = params.probabilities(x);
        let got = [p.0, p.1, p.2];
        for k in 0..3 {
            assert!(
                (got[k] - want[k]).abs() < 1e-5,
                "{x:?}: {got:?} vs {want:?}"
            );
        }
    }
    assert_eq!(m.sidecar().features, FEATURE_NAMES);
}

/// A tiny waveform-in model with the drop-in contract: `waveform` [1, samples] → log mean square
/// → linear → `probs` over four labels, where louder means "angry". `softmax: false` leaves the
/// logits for the sidecar's `outputs_logits` to handle.
fn toy_waveform_model(path: &Path, softmax: bool) {
    let last = if softmax { "logits" } else { "probs" };
    let mut nodes = vec![
        Node::new("Mul", "square", &["waveform", "waveform"], &["sq"]),
        Node::new("ReduceMean", "mean", &["sq"], &["ms"])
            .attr("axes", AttrValue::Ints(vec![1]))
            .attr("keepdims", AttrValue::Int(1)),
        Node::new("Add", "eps", &["ms", "eps"], &["ms_eps"]),
        Node::new("Log", "log", &["ms_eps"], &["log_ms"]),
        Node::new("MatMul", "w", &["log_ms", "W"], &["lw"]),
        Node::new("Add", "b", &["lw", "b"], &[last]),
    ];
    if softmax {
        nodes.push(
            Node::new("Softmax", "softmax", &["logits"], &["probs"])
                .attr("axis", AttrValue::Int(-1)),
        );
    }
    let graph = Graph {
        name: "toy_emotion".into(),
        nodes,
        initializers: vec![
            Tensor::f32("eps", &[1], vec![1e-10]),
            // Labels neutral, happy, angry, fearful: per nat of log power.
            Tensor::f32("W", &[1, 4], vec![0.0, 0.1, 1.0, 0.3]),
            Tensor::f32("b", &[4], vec![0.0, -0.5, 5.0, 0.0]),
        ],
        inputs: vec![ValueInfo::f32(
            "waveform",
            vec![Dim::Fixed(1), Dim::Named("samples".into())],
        )],
        outputs: vec![ValueInfo::f32("probs", vec![Dim::Fixed(1), Dim::Fixed(4)])],
        doc: String::new(),
    };
    Model::new(graph).write(path).unwrap();
    let sidecar = format!(
        r#"{{
  "kind": "waveform",
  "input": "waveform",
  "output": "probs",
  "labels": ["neutral", "happy", "angry", "fearful"],
  "agitated_labels": ["angry"],
  "tense_labels": ["fearful"],
  "outputs_logits": {},
  "threshold": 0.5,
  "provenance": "test toy"
}}"#,
        !softmax
    );
    std::fs::write(sidecar_path(path), sidecar).unwrap();
}

fn toy_expected(x: &[f32]) -> (f64, f64, f64) {
    let ms = x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / x.len() as f64;
    let l = (ms + 1e-10).ln();
    let logits = [0.0, 0.1 * l - 0.5, l + 5.0, 0.3 * l];
    let m = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    (1.0 - e[2] / s - e[3] / s, e[3] / s, e[2] / s)
}

#[test]
fn waveform_drop_in_model_runs_through_the_same_path() {
    require_runtime();
    let dir = tempfile::tempdir().unwrap();
    // Quiet then loud speech-like audio (the sample's own speech, so windows pass the voicing check).
    let speech = slice(&own_channel(&sample(), "speaker91"), 21.78, 28.5);
    let mut audio = gain(&speech[..3 * TARGET_RATE as usize], -20.0);
    audio.extend(gain(
        &speech[3 * TARGET_RATE as usize..6 * TARGET_RATE as usize],
        6.0,
    ));
    let role = agent(audio.clone());
    let spans = [(0.0, 3.0), (3.0, 6.0)];
    for softmax in [true, false] {
        let path = dir.path().join(format!("emotion-{softmax}.onnx"));
        toy_waveform_model(&path, softmax);
        let mut scorer = ToneScorer::load(&models_dir(), &path, 1).unwrap();
        assert!(matches!(scorer, ToneScorer::Waveform(_)));
        let track = scorer.score_role(&role, &spans, None).unwrap();
        assert_eq!(track.windows.len(), 2, "{track:?}");
        for w in &track.windows {
            let want = toy_expected(&slice(&audio, w.start, w.end));
            assert!((w.p_agitated - want.2).abs() < 1e-4, "{w:?} vs {want:?}");
            assert!((w.p_tense - want.1).abs() < 1e-4, "{w:?} vs {want:?}");
            assert!((w.p_calm - want.0).abs() < 1e-4, "{w:?} vs {want:?}");
            assert!(w.features.is_none());
        }
        assert!(track.windows[1].p_agitated > track.windows[0].p_agitated);
    }
}

#[test]
fn contract_violations_are_clear_errors() {
    require_runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("emotion.onnx");
    toy_waveform_model(&path, true);
    // Wrong output name in the sidecar.
    let side = sidecar_path(&path);
    let text = std::fs::read_to_string(&side).unwrap();
    std::fs::write(
        &side,
        text.replace(r#""output": "probs""#, r#""output": "emotions""#),
    )
    .unwrap();
    let err = ToneScorer::load(&models_dir(), &path, 1)
        .err()
        .expect("must fail");
    assert!(
        matches!(err, ToneError::Contract { .. }) && err.to_string().contains("emotions"),
        "{err}"
    );
    // More labels than outputs: caught at the first run.
    std::fs::write(
        &side,
        text.replace(r#""fearful"],"#, r#""fearful", "sad"],"#),
    )
    .unwrap();
    let mut scorer = ToneScorer::load(&models_dir(), &path, 1).unwrap();
    let speech = slice(&sample(), 21.78, 24.0);
    let err = scorer
        .score_role(&agent(speech), &[(0.0, 2.0)], None)
        .unwrap_err();
    assert!(err.to_string().contains("one value per label"), "{err}");
    // No sidecar at all.
    std::fs::remove_file(&side).unwrap();
    let err = ToneScorer::load(&models_dir(), &path, 1)
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("scripts/setup.sh"), "{err}");
    // A prior model edited after generation no longer matches its sidecar's sha256.
    let prior = dir.path().join("tone.onnx");
    model::write_prior_model(&prior).unwrap();
    let mut bytes = std::fs::read(&prior).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    std::fs::write(&prior, bytes).unwrap();
    let err = ToneScorer::load(&models_dir(), &prior, 1)
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("sha256"), "{err}");
}

/// Mean p_agitated of the windows inside [from, to].
fn mean_agitated(track: &ToneTrack, from: f64, to: f64) -> f64 {
    let ps: Vec<f64> = track
        .windows
        .iter()
        .filter(|w| w.start >= from - 1e-6 && w.end <= to + 1e-6)
        .map(|w| w.p_agitated)
        .collect();
    assert!(!ps.is_empty(), "no scored window in {from}..{to}");
    ps.iter().sum::<f64>() / ps.len() as f64
}

/// Turns long enough to be a stretch of speech worth transforming.
fn long_turns(speaker: &str) -> Vec<(f64, f64)> {
    turns(speaker)
        .into_iter()
        .filter(|t| t.1 - t.0 > 1.5)
        .collect()
}

#[test]
fn real_speech_scores_more_agitated_when_louder_faster_and_higher() {
    let dir = tempfile::tempdir().unwrap();
    let mut scorer = prior_scorer(dir.path());
    let threshold = scorer.threshold();
    let mut pairs = 0;
    for speaker in ["speaker90", "speaker91"] {
        for turn in long_turns(speaker) {
            // The same stretch of real speech, 8 dB louder and played 1.25× faster (so 25 % faster
            // and 3.9 semitones higher), appended to the speaker's own call.
            let (audio, spans, app) =
                call_with_appended(speaker, turn, |x| gain(&faster_higher(x, 1.25), 8.0));
            let track = scorer.score_role(&agent(audio), &spans, None).unwrap();
            let before = mean_agitated(&track, turn.0, turn.1);
            let after = mean_agitated(&track, app.0, app.1);
            assert!(
                after > before + 0.3,
                "{speaker} {turn:?}: p_agitated {before:.3} → {after:.3}"
            );
            assert!(
                after >= threshold,
                "{speaker} {turn:?}: {after:.3} not flagged"
            );
            // Louder alone moves it less than louder, faster and higher together.
            let (audio, spans, app) = call_with_appended(speaker, turn, |x| gain(x, 8.0));
            let louder = scorer.score_role(&agent(audio), &spans, None).unwrap();
            let louder_only = mean_agitated(&louder, app.0, app.1);
            assert!(
                louder_only < after,
                "{speaker} {turn:?}: louder only {louder_only:.3} ≥ {after:.3}"
            );
            pairs += 1;
        }
    }
    assert!(pairs >= 4, "the sample has at least four long turns");
}

#[test]
fn whole_call_ten_db_louder_or_quieter_changes_scores_by_less_than_0_02() {
    let dir = tempfile::tempdir().unwrap();
    let mut scorer = prior_scorer(dir.path());
    for speaker in ["speaker90", "speaker91"] {
        let own = own_channel(&sample(), speaker);
        let sliding = features::sliding_spans(own.len() as f64 / TARGET_RATE as f64, 2.0, 0.5);
        for spans in [turns(speaker), sliding] {
            let base = scorer
                .score_role(&agent(own.clone()), &spans, None)
                .unwrap();
            assert!(base.windows.len() >= 5);
            for db in [10.0, -10.0] {
                let scaled = scorer
                    .score_role(&agent(gain(&own, db)), &spans, None)
                    .unwrap();
                assert_eq!(
                    scaled.windows.len(),
                    base.windows.len(),
                    "{speaker} {db} dB"
                );
                let n = base.windows.len() as f64;
                let mean = |t: &ToneTrack| t.windows.iter().map(|w| w.p_agitated).sum::<f64>() / n;
                let d = (mean(&scaled) - mean(&base)).abs();
                assert!(
                    d < 0.02,
                    "{speaker} {db:+} dB: mean p_agitated moved {d:.4}"
                );
                for (a, b) in base.windows.iter().zip(&scaled.windows) {
                    assert!((a.p_agitated - b.p_agitated).abs() < 0.05, "{a:?} vs {b:?}");
                    assert!((a.p_tense - b.p_tense).abs() < 0.05, "{a:?} vs {b:?}");
                }
                // The raw level moved with the gain; the baseline absorbed it.
                let (lb, ls) = (
                    base.baseline.as_ref().unwrap(),
                    scaled.baseline.as_ref().unwrap(),
                );
                assert!((ls.level_db - lb.level_db - db).abs() < 0.1);
            }
        }
    }
}

#[test]
fn a_calm_real_conversation_is_not_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let mut scorer = prior_scorer(dir.path());
    let threshold = scorer.threshold();
    for speaker in ["speaker90", "speaker91"] {
        let own = agent(own_channel(&sample(), speaker));
        let sliding = features::sliding_spans(own.duration_s(), 2.0, 0.5);
        for spans in [turns(speaker), sliding] {
            let track = scorer.score_role(&own, &spans, None).unwrap();
            let s = tone::summarize(&track, threshold);
            assert!(s.max_agitated < threshold, "{speaker}: {s:?}\n{track:?}");
            assert_eq!(s.agitated_share, 0.0);
            assert!(s.speech_s > 5.0);
        }
    }
}

#[test]
fn stored_history_catches_a_voice_raised_for_the_whole_call() {
    // In-call, a whole call spoken higher than usual is this call's normal; the agent's stored
    // baseline (here: the same voice 3 semitones lower) shows the rise.
    let dir = tempfile::tempdir().unwrap();
    let mut scorer = prior_scorer(dir.path());
    let own = agent(own_channel(&sample(), "speaker91"));
    let spans = turns("speaker91");
    let alone = scorer.score_role(&own, &spans, None).unwrap();
    let mut history = alone.baseline.clone().unwrap();
    history.f0_median_hz /= 2f64.powf(3.0 / 12.0);
    history.windows = 100;
    history.calls = 12;
    let with = scorer
        .score_role_with_history(&own, &spans, None, Some(&history))
        .unwrap();
    let mean = |t: &ToneTrack| {
        t.windows.iter().map(|w| w.p_agitated).sum::<f64>() / t.windows.len() as f64
    };
    assert!(
        mean(&with) > mean(&alone) + 0.01,
        "{} vs {}",
        mean(&with),
        mean(&alone)
    );
    assert_eq!(
        with.baseline, alone.baseline,
        "the track keeps the unblended in-call baseline"
    );
    let merged =
        callqc::tone::Baseline::merge_history(Some(&history), with.baseline.as_ref().unwrap());
    assert_eq!(merged.calls, 13);
}

#[test]
fn live_stream_flags_the_raised_stretch_as_it_happens() {
    let dir = tempfile::tempdir().unwrap();
    let mut scorer = prior_scorer(dir.path());
    let threshold = scorer.threshold();
    let turn = long_turns("speaker91")[0];
    let (audio, _, app) =
        call_with_appended("speaker91", turn, |x| gain(&faster_higher(x, 1.25), 8.0));
    let mut stream = ToneStream::new(Role::Agent, None);
    let mut windows = Vec::new();
    for chunk in audio.chunks(1600) {
        windows.extend(stream.push(&mut scorer, chunk).unwrap());
    }
    assert!(windows.len() > 20, "{}", windows.len());
    for w in &windows {
        assert!((w.end - w.start - 2.0).abs() < 1e-6);
        assert!(
            (w.start * 2.0 - (w.start * 2.0).round()).abs() < 1e-6,
            "on the 0.5 s hop grid"
        );
        assert!(w.features.is_some());
    }
    let raised = windows
        .iter()
        .filter(|w| w.start >= app.0 - 0.5)
        .map(|w| w.p_agitated)
        .fold(0.0, f64::max);
    assert!(
        raised >= threshold,
        "live windows over the raised stretch: max p_agitated {raised:.3}"
    );
    assert!(stream.baseline().is_some());
}

#[test]
fn transcript_rates_drive_the_rate_feature() {
    let dir = tempfile::tempdir().unwrap();
    let mut scorer = prior_scorer(dir.path());
    let own = agent(own_channel(&sample(), "speaker91"));
    let spans = turns("speaker91");
    // 4 characters/s throughout, except one turn at 6/s (the baseline stays at 4/s).
    let fast = spans
        .iter()
        .position(|t| t.1 - t.0 > 3.0 && t.1 - t.0 < 4.0)
        .unwrap();
    let mut rates: Vec<Option<f64>> = vec![Some(4.0); spans.len()];
    rates[fast] = Some(6.0);
    let track = scorer.score_role(&own, &spans, Some(&rates)).unwrap();
    assert_eq!(track.baseline.as_ref().unwrap().char_rate, Some(4.0));
    let rate_of = |w: &tone::ToneWindow| w.features.as_ref().unwrap()[4];
    for w in &track.windows {
        if (w.start - spans[fast].0).abs() < 1e-6 {
            assert!(rate_of(w) > 0.1, "{w:?}");
        } else {
            assert!(rate_of(w).abs() < 1e-6, "{w:?}");
        }
    }
}

/// Every bundled sample call (samples/callNN.wav + .json, generated by samples/gen): each labelled
/// agitated stretch has a window at or above the default threshold, and no calm call has any.
/// Spans are the labelled agent utterances and rates their characters per second, standing in
/// for the VAD segments and transcript of the full pipeline.
#[test]
fn samples_agitated_stretches_flagged_and_calm_calls_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut scorer = prior_scorer(dir.path());
    let threshold = scorer.threshold();
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    assert!(
        samples.is_dir(),
        "{} is missing (the sample calls ship with the repository; samples/gen regenerates them)",
        samples.display()
    );
    let mut jsons: Vec<PathBuf> = std::fs::read_dir(&samples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    jsons.sort();
    let (mut calm_calls, mut agitated_spans) = (0, 0);
    for json in jsons {
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let wav = samples.join(meta["audio"].as_str().unwrap());
        let (_, roles) = callqc::audio::roles::load_call_audio(&wav, Default::default())
            .unwrap_or_else(|e| panic!("{}: {e}", wav.display()));
        let audio = roles.into_iter().find(|r| r.role == Role::Agent).unwrap();
        let utts: Vec<&serde_json::Value> = meta["utterances"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["channel"] == "agent")
            .collect();
        let span =
            |u: &serde_json::Value| (u["start"].as_f64().unwrap(), u["end"].as_f64().unwrap());
        let spans: Vec<(f64, f64)> = utts.iter().map(|u| span(u)).collect();
        let rates: Vec<Option<f64>> = utts
            .iter()
            .map(|u| {
                let chars = u["text"]
                    .as_str()
                    .unwrap()
                    .chars()
                    .filter(|c| c.is_alphanumeric())
                    .count();
                let (s, e) = span(u);
                Some(chars as f64 / (e - s))
            })
            .collect();
        let track = scorer.score_role(&audio, &spans, Some(&rates)).unwrap();
        let summary = tone::summarize(&track, threshold);
        let labelled: Vec<(f64, f64)> = meta["labels"]["agitated_spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s[0].as_f64().unwrap(), s[1].as_f64().unwrap()))
            .collect();
        let name = json.file_name().unwrap().to_string_lossy().to_string();
        if labelled.is_empty() {
            calm_calls += 1;
            assert!(
                summary.max_agitated < threshold,
                "{name}: calm call flagged: {summary:?}"
            );
        }
        let flagged = tone::agitated_stretches(&track, threshold);
        for (s, e) in labelled {
            agitated_spans += 1;
            assert!(
                flagged.iter().any(|f| f.0 < e && f.1 > s),
                "{name}: agitated {s}..{e} not flagged (stretches {flagged:?}; windows {:?})",
                track.windows
            );
        }
    }
    assert!(
        calm_calls >= 1 && agitated_spans >= 1,
        "samples/ must hold calm and agitated calls"
    );
}

/// The calibration table in docs/tone.md ("How the threshold was chosen"): p_agitated of every
/// group of windows under the prior. Run by hand:
/// `cargo test --test tone -- --ignored calibration_report --nocapture`.
#[test]
#[ignore = "a report for docs/tone.md, not a check"]
fn calibration_report() {
    let dir = tempfile::tempdir().unwrap();
    let mut scorer = prior_scorer(dir.path());
    let mut groups: Vec<(String, Vec<f64>)> = Vec::new();
    let mut add = |name: &str, track: &ToneTrack, from: f64, to: f64| {
        let ps = track
            .windows
            .iter()
            .filter(|w| w.start >= from - 1e-6 && w.end <= to + 1e-6)
            .map(|w| w.p_agitated);
        match groups.iter_mut().find(|g| g.0 == name) {
            Some(g) => g.1.extend(ps),
            None => groups.push((name.to_string(), ps.collect())),
        }
    };
    for speaker in ["speaker90", "speaker91"] {
        let own = agent(own_channel(&sample(), speaker));
        let t = scorer.score_role(&own, &turns(speaker), None).unwrap();
        add("real speech, calm, utterances", &t, 0.0, 1e9);
        let sliding = features::sliding_spans(own.duration_s(), 2.0, 0.5);
        let t = scorer.score_role(&own, &sliding, None).unwrap();
        add("real speech, calm, 2 s sliding", &t, 0.0, 1e9);
        for turn in long_turns(speaker) {
            type Change = Box<dyn Fn(&[f32]) -> Vec<f32>>;
            let changes: [(&str, Change); 3] = [
                (
                    "real speech, +8 dB, 1.25x faster+higher",
                    Box::new(|x| gain(&faster_higher(x, 1.25), 8.0)),
                ),
                ("real speech, +8 dB only", Box::new(|x| gain(x, 8.0))),
                (
                    "real speech, 1.25x faster+higher only",
                    Box::new(|x| faster_higher(x, 1.25)),
                ),
            ];
            for (name, f) in changes {
                let (audio, spans, app) = call_with_appended(speaker, turn, f);
                let t = scorer.score_role(&agent(audio), &spans, None).unwrap();
                add(name, &t, app.0, app.1);
            }
        }
    }
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut jsons: Vec<PathBuf> = std::fs::read_dir(&samples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    jsons.sort();
    for json in jsons {
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let wav = samples.join(meta["audio"].as_str().unwrap());
        let (_, roles) = callqc::audio::roles::load_call_audio(&wav, Default::default()).unwrap();
        let audio = roles.into_iter().find(|r| r.role == Role::Agent).unwrap();
        let utts: Vec<(f64, f64, String, f64)> = meta["utterances"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["channel"] == "agent")
            .map(|u| {
                let (s, e) = (u["start"].as_f64().unwrap(), u["end"].as_f64().unwrap());
                let chars = u["text"]
                    .as_str()
                    .unwrap()
                    .chars()
                    .filter(|c| c.is_alphanumeric())
                    .count();
                (
                    s,
                    e,
                    u["style"].as_str().unwrap_or("calm").to_string(),
                    chars as f64 / (e - s),
                )
            })
            .collect();
        let spans: Vec<(f64, f64)> = utts.iter().map(|u| (u.0, u.1)).collect();
        let rates: Vec<Option<f64>> = utts.iter().map(|u| Some(u.3)).collect();
        let t = scorer.score_role(&audio, &spans, Some(&rates)).unwrap();
        for u in &utts {
            add(&format!("samples (TTS), {}, utterances", u.2), &t, u.0, u.1);
        }
        let sliding = features::sliding_spans(audio.duration_s(), 2.0, 0.5);
        let t = scorer.score_role(&audio, &sliding, None).unwrap();
        for w in &t.windows {
            let agitated = utts
                .iter()
                .any(|u| u.2 == "agitated" && w.start < u.1 && w.end > u.0);
            let one = ToneTrack {
                windows: vec![w.clone()],
                baseline: None,
            };
            let name = if agitated {
                "samples (TTS), overlapping agitated, 2 s sliding"
            } else {
                "samples (TTS), calm, 2 s sliding"
            };
            add(name, &one, 0.0, 1e9);
        }
    }
    println!("| windows | n | min | median | max |\n|---|---:|---:|---:|---:|");
    for (name, mut ps) in groups {
        ps.sort_by(|a, b| a.total_cmp(b));
        println!(
            "| {name} | {} | {:.3} | {:.3} | {:.3} |",
            ps.len(),
            ps[0],
            ps[ps.len() / 2],
            ps[ps.len() - 1]
        );
    }
}
