//! The store's conformance suite: every scenario runs on a real SQLite file and on a real
//! PostgreSQL database (a throw-away cluster, see common/pg.rs), asserts the store's guarantees
//! on each, and the two stores must then hold the same rows and answer every read the same.
//!
//! Scenarios: a failed re-read keeps the analysis and reviews; unreadable files stay separate;
//! an analysis is found for its models and rubric only; the trainers' workflow (verdicts,
//! appeals, calibration, ids stable across re-analysis, scores recomputed); the queries behind
//! `flagged`, `rules stats` and `report`; live calls and alerts; voice histories.

use callqc::asr::Segment;
use callqc::audio::frames::FrameEncoding;
use callqc::audio::{ChannelMap, Encoding, Role};
use callqc::pipeline::identity::call_key;
use callqc::rubric::{Finding, Score};
use callqc::store::{
    AlertKind, AlertRecord, CallMeta, CallRows, CallStatus, EndReason, FlaggedQuery,
    IngestProtocol, LiveCallRecord, Period, ReviewState, Source, Store, StoreError, VerdictAction,
};
use callqc::tone::{Baseline, ToneWindow};
use callqc::vad::{SpeechRegion, SpeechRegions};
use serde_json::{Value, json};
use std::path::Path;

#[path = "common/pg.rs"]
mod pg;

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
        started_at: Some("2026-11-30T09:00:00Z".into()),
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
    save_with(store, &meta(key), findings, s, rubric_hash, None)
}

fn baseline(f0: f64) -> Baseline {
    serde_json::from_value(json!({
        "f0_median_hz": f0, "f0_mad_st": 1.0, "f0_range_st": 6.0, "level_db": -20.0,
        "level_mad_db": 2.0, "peak_db": -3.0, "syllable_rate": 4.5, "char_rate": null,
        "centroid_hz": 1500.0, "tilt_db": -12.0, "pause_ratio": 0.2, "windows": 12, "calls": 1
    }))
    .unwrap()
}

fn save_with(
    store: &mut Store,
    meta: &CallMeta,
    findings: &[Finding],
    s: &Score,
    rubric_hash: &str,
    tone_baseline: Option<&Baseline>,
) -> i64 {
    let seg = [Segment {
        role: Role::Agent,
        start: 1.0,
        end: 2.0,
        text: "这个我们管不了".into(),
        confidence: 0.9,
        avg_logprob: -0.2,
        no_speech_prob: 0.01,
    }];
    let speech = [SpeechRegions {
        role: Role::Agent,
        regions: vec![
            SpeechRegion {
                start: 1.0,
                end: 2.0,
            },
            SpeechRegion {
                start: 0.2,
                end: 0.6,
            },
        ],
    }];
    let tone = [ToneWindow {
        role: Role::Agent,
        start: 0.0,
        end: 3.0,
        p_calm: 0.7,
        p_tense: 0.2,
        p_agitated: 0.1,
        features: Some(vec![0.5, -0.25, 1.0]),
    }];
    store
        .save_call(
            meta,
            &CallRows {
                duration_s: 3.0,
                sample_rate: 8000,
                channels: 2,
                encoding: Encoding::MuLaw,
                segments: &seg,
                raw_texts: &[(0, "这个我们管不料".to_string())],
                speech: &speech,
                tone: &tone,
                findings,
                speakers: None,
                tone_baseline,
                tone_threshold: 0.6,
                score: s,
                rubric_hash,
            },
        )
        .expect("save")
}

fn a_failed_reread_keeps_the_analysis_and_its_reviews(store: &mut Store) -> Value {
    let id = save(store, "k1", &[finding("refusal")], &score("r", 95.0), "ha");
    let finding_id = store.findings(id, None).unwrap()[0].id;
    store
        .review_finding(finding_id, VerdictAction::Confirm, "li", None)
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
    json!({"call": call, "findings": f})
}

fn unreadable_files_without_a_call_id_stay_separate_rows(store: &mut Store) -> Value {
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
    json!({"a": store.load_call(a).unwrap().error, "b": store.load_call(b).unwrap().error})
}

fn an_analysis_is_found_only_for_its_models_and_rubric_with_that_rubrics_findings(
    store: &mut Store,
) -> Value {
    let id = save(store, "k1", &[finding("refusal")], &score("r", 95.0), "ha");
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
    json!({"findings": store.findings(id, None).unwrap(), "scores": store.scores(id).unwrap()})
}

fn at(f: &Finding, start: f64, end: f64) -> Finding {
    Finding {
        start,
        end,
        ..f.clone()
    }
}

/// Verdicts, an appeal and its ruling, calibration, and ids that survive re-analysis.
fn trainers_work_is_kept_and_scores_follow_verdicts(store: &mut Store) -> Value {
    let mut insult = finding("insult");
    insult.points = 0.0;
    insult.item_points = 0.0;
    insult.veto = true;
    let f = [
        at(&finding("refusal"), 1.0, 2.0),
        at(&finding("refusal"), 5.0, 6.0),
        at(&insult, 8.0, 9.0),
    ];
    let id = save(store, "t1", &f, &score("r", 0.0), "ha");
    let ids: Vec<i64> = store
        .findings(id, None)
        .unwrap()
        .iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(ids.len(), 3);
    // Dismissing the veto gives the score back (less the two refusals).
    store
        .review_finding(ids[2], VerdictAction::Dismiss, "li", Some("误报"))
        .unwrap();
    let s = &store.scores(id).unwrap()[0];
    assert!(!s.vetoed);
    assert_eq!(s.total, 90.0);
    assert_eq!(s.machine_total, 0.0);
    // The agent appeals one refusal; while pending a plain verdict is refused; upheld, it leaves
    // the score.
    store.appeal_finding(ids[0], "6618", "转接了").unwrap();
    assert!(matches!(
        store.review_finding(ids[0], VerdictAction::Confirm, "li", None),
        Err(StoreError::Refused { .. })
    ));
    assert!(matches!(
        store.appeal_finding(ids[1], "9999", "不是我"),
        Err(StoreError::Refused { .. })
    ));
    assert!(matches!(
        store.rule_on_appeal(ids[0], true, "6618", None),
        Err(StoreError::Refused { .. })
    ));
    store
        .rule_on_appeal(ids[0], true, "wang", Some("属实"))
        .unwrap();
    assert_eq!(store.scores(id).unwrap()[0].total, 95.0);
    store
        .review_finding(ids[1], VerdictAction::Note, "li", Some("语气尚可"))
        .unwrap();
    // Re-analysis of the same call: the same items over the same spans keep their ids and
    // verdicts, a new finding gets a new id, and the score still follows the verdicts.
    let again = [
        at(&finding("refusal"), 1.1, 2.0),
        at(&finding("refusal"), 5.0, 6.2),
        at(&insult, 8.0, 9.0),
        at(&finding("interrupt"), 12.0, 13.0),
    ];
    let id2 = save(store, "t1", &again, &score("r", 0.0), "ha");
    let after = store.findings(id2, None).unwrap();
    assert_eq!(after.iter().map(|f| f.id).collect::<Vec<_>>()[..3], ids[..]);
    assert!(after[3].id > ids[2]);
    assert_eq!(after[2].review, ReviewState::Dismissed);
    assert_eq!(store.scores(id2).unwrap()[0].total, 90.0);
    let history: Vec<Value> = ids
        .iter()
        .flat_map(|i| store.verdict_history(*i).unwrap())
        .map(|v| json!([v.finding_id, v.action, v.by, v.note]))
        .collect();
    assert_eq!(history.len(), 4);
    // Calibration: verdicts recorded apart, no finding changes.
    let round = store
        .create_calibration(
            "十一月",
            "zhao",
            &["li".into(), "wang".into()],
            &["t1".into()],
        )
        .unwrap();
    store
        .calibration_verdict(round, after[3].id, true, "li", None)
        .unwrap();
    store
        .calibration_verdict(round, after[3].id, false, "wang", Some("不算"))
        .unwrap();
    assert!(matches!(
        store.calibration_verdict(round, after[3].id, true, "zhao", None),
        Err(StoreError::Refused { .. })
    ));
    let cal = store.calibration(round).unwrap();
    assert_eq!(cal.verdicts.len(), 2);
    assert_eq!(cal.findings.len(), 4);
    assert_eq!(
        store.finding(after[3].id).unwrap().finding.review,
        ReviewState::Open
    );
    assert!(matches!(
        store.finding(99_999),
        Err(StoreError::NoSuchFinding { .. })
    ));
    json!({
        "findings": after,
        "scores": store.scores(id2).unwrap(),
        "history": history,
        "calibration": [cal.name, cal.reviewers, cal.call_keys, cal.verdicts.len()],
    })
}

/// What `flagged`, `rules stats` and `report` ask, and live calls with their alerts.
fn queries_answer_the_same(store: &mut Store) -> Value {
    let mut m1 = meta("q1");
    m1.agent_id = Some("1001".into());
    m1.started_at = Some("2026-11-02T08:00:00Z".into());
    let mut m2 = meta("q2");
    m2.agent_id = Some("1002".into());
    m2.started_at = Some("2026-11-20T08:00:00Z".into());
    m2.source = Source::Live;
    let mut small = finding("slow_greeting");
    small.points = 2.0;
    small.item_points = 2.0;
    small.kind = callqc::rubric::Kind::RequiredPhrase;
    let mut obs = finding("hold");
    obs.points = 0.0;
    obs.observation = true;
    let b1 = baseline(180.0);
    let id1 = save_with(
        store,
        &m1,
        &[at(&finding("refusal"), 1.0, 2.0), at(&small, 0.0, 1.0)],
        &score("r", 93.0),
        "ha",
        Some(&b1),
    );
    let id2 = save_with(
        store,
        &m2,
        &[at(&obs, 3.0, 20.0)],
        &score("r", 100.0),
        "ha",
        Some(&baseline(190.0)),
    );
    let first = store.findings(id1, None).unwrap();
    let refusal_id = first.iter().find(|f| f.item_id == "refusal").unwrap().id;
    store
        .review_finding(refusal_id, VerdictAction::Dismiss, "li", None)
        .unwrap();
    let all = store.flagged(&FlaggedQuery::default()).unwrap();
    assert_eq!(all.len(), 1, "an observation alone does not flag a call");
    let with_obs = store
        .flagged(&FlaggedQuery {
            observations: true,
            ..FlaggedQuery::default()
        })
        .unwrap();
    assert_eq!(with_obs.len(), 2);
    let by_text = store
        .flagged(&FlaggedQuery {
            text: Some("管不了".into()),
            min_points: Some(3.0),
            ..FlaggedQuery::default()
        })
        .unwrap();
    assert_eq!(by_text.len(), 1);
    assert_eq!(by_text[0].findings.len(), 1);
    let none = store
        .flagged(&FlaggedQuery {
            from: Some("2026-11-10".into()),
            agent: Some("1001".into()),
            ..FlaggedQuery::default()
        })
        .unwrap();
    assert!(none.is_empty());
    let dismissed = store
        .flagged(&FlaggedQuery {
            review: Some(ReviewState::Dismissed),
            source: Some(Source::Batch),
            ..FlaggedQuery::default()
        })
        .unwrap();
    assert_eq!(dismissed.len(), 1);
    let november = Period {
        from: Some("2026-11-01".into()),
        to: Some("2026-12-01".into()),
    };
    let stats = store.rule_stats(&november).unwrap();
    let refusal = stats.iter().find(|s| s.item_id == "refusal").unwrap();
    assert_eq!(
        (refusal.findings, refusal.reviewed, refusal.dismissed),
        (1, 1, 1)
    );
    assert_eq!(refusal.precision, Some(0.0));
    assert_eq!(refusal.points, 0.0);
    let scored = store.scored_calls(&november).unwrap();
    assert_eq!(scored.len(), 2);
    let facts = store.finding_facts(&november).unwrap();
    assert_eq!(facts.len(), 2);
    // Live: the call's record and two alerts.
    let live = LiveCallRecord {
        call_key: "q2".into(),
        agent_id: Some("1002".into()),
        protocol: IngestProtocol::WebSocket,
        peer: "127.0.0.1:5555".into(),
        started_ms: 1_795_000_000_000,
        ended_ms: 1_795_000_060_000,
        end_reason: EndReason::Vanished,
        error: Some("connection reset".into()),
        recording: "/rec/q2.wav".into(),
        sample_rate: 8000,
        encoding: FrameEncoding::Pcmu,
        samples_received: vec![480_000, 480_000],
        samples_stored: vec![480_000, 480_000],
        shed_utterances: 1,
        alerts: 2,
    };
    store.save_live_call(&live).unwrap();
    store.save_live_call(&live).unwrap();
    for (i, kind) in [AlertKind::Tone, AlertKind::Forbidden]
        .into_iter()
        .enumerate()
    {
        store
            .save_alert(&AlertRecord {
                call_key: "q2".into(),
                agent_id: Some("1002".into()),
                kind,
                item_id: "x".into(),
                message: "语气提醒：请注意语气".into(),
                evidence: "e".into(),
                evidence_start_s: 1.0,
                evidence_end_s: 2.0 + i as f64,
                frame_ms: 1_795_000_010_000,
                sent_ms: 1_795_000_010_400 + i as i64,
                agent_pages: 1,
                supervisor_pages: 2,
                pbx_links: 1,
            })
            .unwrap();
    }
    assert_eq!(store.live_call("q2").unwrap().as_ref(), Some(&live));
    assert!(!store.live_call("q2").unwrap().unwrap().complete());
    assert_eq!(store.alerts("q2").unwrap()[1].latency_ms(), 401);
    let days = store.alert_days(&Period::default()).unwrap();
    assert_eq!(days.iter().map(|d| d.count).sum::<usize>(), 2);
    // Histories, tone features, lookups.
    let history = store.agent_history("1001").unwrap();
    assert_eq!(history, vec![("q1".to_string(), b1)]);
    assert_eq!(store.agent_tone_features().unwrap().len(), 2);
    assert_eq!(store.done_call_ids().unwrap().len(), 2);
    assert_eq!(store.find_call("q1.wav").unwrap(), id1);
    assert_eq!(store.find_call("/calls/q2.wav").unwrap(), id2);
    assert!(matches!(
        store.find_call("nothing-like-it"),
        Err(StoreError::NoSuchCall { .. })
    ));
    assert!(store.is_done("q1", "hash-q1", "models-a", "ha").unwrap());
    assert!(!store.is_done("q1", "hash-q1", "models-b", "ha").unwrap());
    let loaded = store.load_call(id1).unwrap();
    assert_eq!(loaded.raw_texts.len(), 1);
    assert_eq!(loaded.speech[0].regions.len(), 2);
    assert_eq!(loaded.tone[0].features, Some(vec![0.5, -0.25, 1.0]));
    let run = store
        .begin_run("batch", "{}", Some(("r", "1", "ha")), "{}")
        .unwrap();
    store
        .finish_run(
            run,
            &callqc::store::RunTotals {
                done: 2,
                ..Default::default()
            },
        )
        .unwrap();
    json!({
        "flagged": [all, with_obs, by_text, dismissed],
        "stats": stats,
        "scored": scored,
        "facts": facts,
        "live": live,
        "alerts": store.alerts("q2").unwrap(),
        "days": days,
        "loaded": loaded,
    })
}

type Scenario = fn(&mut Store) -> Value;

const SCENARIOS: &[(&str, Scenario)] = &[
    (
        "failed_reread",
        a_failed_reread_keeps_the_analysis_and_its_reviews,
    ),
    (
        "unreadable",
        unreadable_files_without_a_call_id_stay_separate_rows,
    ),
    (
        "models_and_rubric",
        an_analysis_is_found_only_for_its_models_and_rubric_with_that_rubrics_findings,
    ),
    ("trainers", trainers_work_is_kept_and_scores_follow_verdicts),
    ("queries", queries_answer_the_same),
];

/// What differs between two stores with the same content: row ids of calls (each database
/// numbers its own) and timestamps.
fn comparable(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| !matches!(k.as_str(), "call_id" | "reviewed_at" | "at" | "id"))
                .map(|(k, v)| (k, comparable(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(comparable).collect()),
        v => v,
    }
}

fn run_on_sqlite(dir: &Path) -> Vec<(Value, callqc::store::Dump)> {
    SCENARIOS
        .iter()
        .map(|(name, scenario)| {
            let mut store = Store::open(&dir.join(format!("{name}.db"))).unwrap();
            let seen = scenario(&mut store);
            (comparable(seen), store.dump().unwrap())
        })
        .collect()
}

#[test]
fn every_scenario_holds_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let results = run_on_sqlite(dir.path());
    assert_eq!(results.len(), SCENARIOS.len());
}

#[test]
fn every_scenario_holds_on_postgres_with_the_same_rows_and_answers_as_sqlite() {
    let cluster = pg::PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = run_on_sqlite(dir.path());
    for ((name, scenario), (seen_sqlite, dump_sqlite)) in SCENARIOS.iter().zip(sqlite) {
        let url = cluster.database(name);
        let mut store = Store::open(Path::new(&url)).unwrap();
        let seen = comparable(scenario(&mut store));
        assert_eq!(seen, seen_sqlite, "{name}: PostgreSQL answered differently");
        let dump = store.dump().unwrap();
        for ((table, rows), (_, rows_sqlite)) in dump.iter().zip(&dump_sqlite) {
            assert_eq!(rows, rows_sqlite, "{name}: table {table} differs");
        }
        assert!(
            dump.iter().any(|(_, rows)| !rows.is_empty()),
            "{name}: nothing stored"
        );
        // Opening again migrates nothing and keeps everything.
        let again = Store::open(Path::new(&url)).unwrap();
        assert_eq!(again.dump().unwrap(), dump);
    }
}

#[test]
fn a_wrong_postgres_url_is_a_clear_error_without_the_password() {
    let err = Store::open(Path::new("postgres://qc:secret@127.0.0.1:1/none"))
        .err()
        .expect("no server on port 1")
        .to_string();
    assert!(err.contains("postgres://qc@127.0.0.1:1/none"), "{err}");
    assert!(!err.contains("secret"), "{err}");
}
