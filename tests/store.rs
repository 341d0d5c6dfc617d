//! The store's guarantees that the review of issue 9 found broken, each on a real SQLite file.

use callqc::asr::Segment;
use callqc::audio::{ChannelMap, Encoding, Role};
use callqc::pipeline::identity::call_key;
use callqc::rubric::{Finding, Score};
use callqc::store::{CallMeta, CallRows, CallStatus, ReviewState, Source, Store};
use std::path::Path;

fn meta(key: &str) -> CallMeta {
    CallMeta {
        call_key: key.into(),
        path: format!("/calls/{key}.wav"),
        audio_hash: format!("hash-{key}"),
        agent_id: Some("6618".into()),
        channel_map: ChannelMap::default(),
        source: Source::Batch,
        models_key: "models-a".into(),
        run_id: None,
        started_at: None,
    }
}

fn finding(item: &str) -> Finding {
    Finding {
        item_id: item.into(),
        kind: callqc::rubric::Kind::ForbiddenPhrase,
        description: "禁语".into(),
        dimension: "服务用语".into(),
        points: 5.0,
        veto: false,
        role: Some(Role::Agent),
        start: 1.0,
        end: 2.0,
        evidence: "【管不了】".into(),
        item_points: 5.0,
        max_count: 3,
        observation: false,
    }
}

fn score(rubric: &str, total: f64) -> Score {
    Score {
        rubric: rubric.into(),
        version: "1".into(),
        total,
        deductions: 100.0 - total,
        vetoed: false,
    }
}

fn save(store: &mut Store, key: &str, findings: &[Finding], s: &Score, rubric_hash: &str) -> i64 {
    let seg = [Segment {
        role: Role::Agent,
        start: 1.0,
        end: 2.0,
        text: "管不了".into(),
        confidence: 0.9,
        avg_logprob: -0.2,
        no_speech_prob: 0.01,
    }];
    store
        .save_call(
            &meta(key),
            &CallRows {
                duration_s: 3.0,
                sample_rate: 8000,
                channels: 2,
                encoding: Encoding::MuLaw,
                segments: &seg,
                raw_texts: &[],
                speech: &[],
                tone: &[],
                findings,
                tone_baseline: None,
                tone_threshold: 0.6,
                score: s,
                rubric_hash,
            },
        )
        .expect("save")
}

#[test]
fn a_failed_reread_keeps_the_analysis_and_its_reviews() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let mut store = Store::open(&db).unwrap();
    let id = save(
        &mut store,
        "k1",
        &[finding("refusal")],
        &score("r", 95.0),
        "ha",
    );
    // A trainer confirms the finding (the review command comes with the trainers' issue).
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE findings SET review = 'confirmed', reviewer = 'li' WHERE call_id = ?1",
            [id],
        )
        .unwrap();
    // Later the file is archived: the batch cannot read it.
    store
        .save_failure(&meta("k1"), "/calls/k1.wav: cannot read file: not found")
        .unwrap();
    let call = store.load_call(store.find_call("k1").unwrap()).unwrap();
    assert_eq!(call.status, CallStatus::Done);
    assert_eq!(call.segments.len(), 1);
    assert_eq!(call.tone_threshold, Some(0.6));
    let f = store.findings(call.id, None).unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].review, ReviewState::Confirmed);
    assert_eq!(store.failures("k1").unwrap().len(), 1);
}

#[test]
fn unreadable_files_without_a_call_id_stay_separate_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("t.db")).unwrap();
    for name in ["a.wav", "b.wav"] {
        let key = call_key(None, None, Path::new(name));
        let mut m = meta(&key);
        m.audio_hash = String::new();
        store
            .save_failure(&m, &format!("{name}: unreadable"))
            .unwrap();
    }
    // A second failure of the same file updates its row (one row per key).
    let mut m = meta(&call_key(None, None, Path::new("a.wav")));
    m.audio_hash = String::new();
    store.save_failure(&m, "a.wav: still unreadable").unwrap();
    let a = store.find_call("unreadable:a.wav").unwrap();
    assert_eq!(
        store.load_call(a).unwrap().error.as_deref(),
        Some("a.wav: still unreadable")
    );
    assert_eq!(store.failures("unreadable:a.wav").unwrap().len(), 2);
    let b = store.find_call("unreadable:b.wav").unwrap();
    assert_ne!(a, b);
    assert_eq!(store.load_call(a).unwrap().status, CallStatus::Failed);
}

#[test]
fn an_analysis_is_found_only_for_its_models_and_rubric_with_that_rubrics_findings() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("t.db")).unwrap();
    let id = save(
        &mut store,
        "k1",
        &[finding("refusal")],
        &score("r", 95.0),
        "ha",
    );
    // `rescore --rubric OTHER.toml` adds a second rubric's findings to the same call.
    store
        .replace_scoring(id, &[finding("other_item")], &score("other", 90.0), "hb")
        .unwrap();
    assert_eq!(store.findings(id, None).unwrap().len(), 2);
    assert_eq!(
        store.find_analysis("hash-k1", "models-a", "ha").unwrap(),
        Some(id)
    );
    assert_eq!(
        store.find_analysis("hash-k1", "models-a", "hb").unwrap(),
        Some(id)
    );
    assert_eq!(
        store.find_analysis("hash-k1", "models-b", "ha").unwrap(),
        None
    );
    assert_eq!(
        store.find_analysis("hash-k1", "models-a", "hc").unwrap(),
        None
    );
    let only_r = store.findings(id, Some("r")).unwrap();
    assert_eq!(only_r.len(), 1);
    assert_eq!(only_r[0].item_id, "refusal");
}
