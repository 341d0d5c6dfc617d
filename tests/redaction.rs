//! Personal data in exports: a stored call whose caller gives a phone number, an ID number, a
//! bank card and an address — written and spoken forms — is exported with every one masked in
//! the transcript, the findings and the page, and the clip muted where the numbers were said
//! (the rest of the clip is the recording's own samples). `--no-mask` writes them as said.

mod common;

use callqc::asr::Segment;
use callqc::audio::{ChannelMap, Encoding, Role};
use callqc::rubric::{Finding, Kind, Score};
use callqc::store::{CallMeta, CallRows, Source, Store};
use common::{callqc, root, stderr};

fn seg(role: Role, start: f64, end: f64, text: &str) -> Segment {
    Segment {
        role,
        start,
        end,
        text: text.into(),
        confidence: 0.9,
        avg_logprob: -0.2,
        no_speech_prob: 0.01,
    }
}

/// A valid 身份证 number from its first 17 digits.
fn id_number(first17: &str) -> String {
    let d: Vec<u8> = first17.bytes().map(|b| b - b'0').collect();
    match callqc::redact::id_check_digit(&d) {
        10 => format!("{first17}X"),
        c => format!("{first17}{c}"),
    }
}

fn samples(p: &std::path::Path) -> Vec<i16> {
    hound::WavReader::open(p)
        .unwrap()
        .samples::<i16>()
        .map(|s| s.unwrap())
        .collect()
}

#[test]
fn exports_mask_personal_data_and_mute_it_in_the_clips() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let recording = root().join("samples/call01.wav");
    let id = id_number("11010519491231002");
    let segments = [
        seg(Role::Agent, 0.5, 4.0, "您好，12345热线，工号2051为您服务"),
        seg(Role::Caller, 4.5, 8.5, "我的电话是13812345678"),
        seg(Role::Caller, 9.0, 13.0, &format!("身份证号{id}")),
        seg(
            Role::Caller,
            13.5,
            17.5,
            "卡号6222021000123456，电话幺三八幺二三四五六七八",
        ),
        seg(Role::Caller, 18.0, 22.0, "住在幸福路18号3栋2单元502室"),
        seg(Role::Agent, 22.5, 26.0, "你自己去找物业，电话13812345678"),
    ];
    // Make the card number Luhn-valid.
    let card = (0..10)
        .map(|d| format!("622202100012345{d}"))
        .find(|c| callqc::redact::luhn_ok(&c.bytes().map(|b| b - b'0').collect::<Vec<u8>>()))
        .unwrap();
    let mut segments = segments.to_vec();
    segments[3].text = segments[3].text.replace("6222021000123456", &card);
    let finding = Finding {
        item_id: "refusal".into(),
        kind: Kind::ForbiddenPhrase,
        description: "禁语".into(),
        dimension: "服务用语".into(),
        points: 5.0,
        veto: false,
        role: Some(Role::Agent),
        start: 22.5,
        end: 26.0,
        evidence: "said \"【你自己去找】物业，电话13812345678\" (禁语「你自己去找」)".into(),
        item_points: 5.0,
        max_count: 3,
        observation: false,
    };
    let score = Score {
        rubric: "r".into(),
        version: "1".into(),
        total: 95.0,
        deductions: 5.0,
        vetoed: false,
    };
    let mut store = Store::open(&db).unwrap();
    store
        .save_call(
            &CallMeta {
                call_key: "pii-call".into(),
                path: recording.display().to_string(),
                audio_hash: "h".into(),
                agent_id: Some("2051".into()),
                channel_map: ChannelMap::default(),
                source: Source::Batch,
                models_key: "m".into(),
                run_id: None,
                started_at: None,
            },
            &CallRows {
                duration_s: 41.5,
                sample_rate: 8000,
                channels: 2,
                encoding: Encoding::PcmInt { bits: 16 },
                segments: &segments,
                raw_texts: &[],
                speech: &[],
                tone: &[],
                findings: &[finding],
                speakers: None,
                tone_baseline: None,
                tone_threshold: 0.5,
                score: &score,
                rubric_hash: "rh",
            },
        )
        .unwrap();
    drop(store);

    let out = dir.path().join("export");
    let db_s = db.to_str().unwrap();
    let o = callqc(&[
        "export",
        "pii-call",
        "--out",
        out.to_str().unwrap(),
        "--margin",
        "0",
        "--db",
        db_s,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let folder = out.join("pii-call");
    let mut written = String::new();
    for f in [
        "transcript.txt",
        "transcript.json",
        "findings.json",
        "index.html",
    ] {
        written += &std::fs::read_to_string(folder.join(f)).unwrap();
    }
    for secret in [
        "13812345678",
        &id,
        &card,
        "幺三八幺二三四五六七八",
        "18号3栋",
        "502室",
    ] {
        assert!(!written.contains(secret), "{secret} left in the export");
    }
    for shown in [
        "138****5678",
        "幺三八****五六七八",
        "**号*栋*单元***室",
        "12345热线",
        "2051",
    ] {
        assert!(written.contains(shown), "{shown} missing from the export");
    }
    assert!(written.contains(&format!("110{}{}", "*".repeat(11), &id[14..])));
    assert!(written.contains(&format!("{}{}", "*".repeat(12), &card[12..])));

    // The clip of the finding (22.5–26.0 s, no margin) is the recording's samples except where
    // the phone number was said (the end of the sentence): silent there.
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let muted = report[0]["muted"].as_array().unwrap();
    // phone; ID; card and phone; four address numbers; the agent's phone.
    assert_eq!(muted.len(), 9, "{muted:?}");
    let clip = &report[0]["clips"][0];
    let clip_samples = samples(&folder.join(clip["file"].as_str().unwrap()));
    let original = samples(&recording);
    let first = clip["first_sample"].as_u64().unwrap() as usize;
    let n = clip["samples"].as_u64().unwrap() as usize;
    let (a, b) = (
        muted.last().unwrap()[0].as_f64().unwrap(),
        muted.last().unwrap()[1].as_f64().unwrap(),
    );
    assert!(
        a > 22.5 && b <= 26.0,
        "the phone is at the sentence's end: {a}–{b}"
    );
    let (mut silent, mut kept) = (0, 0);
    for i in 0..n {
        let t = (first + i) as f64 / 8000.0;
        for ch in 0..2 {
            let got = clip_samples[i * 2 + ch];
            if t >= a + 0.01 && t < b - 0.01 {
                assert_eq!(got, 0, "sample at {t:.3} s not muted");
                silent += 1;
            } else if t < a - 0.01 || t >= b + 0.01 {
                assert_eq!(
                    got,
                    original[(first + i) * 2 + ch],
                    "sample at {t:.3} s changed"
                );
                kept += 1;
            }
        }
    }
    assert!(silent > 1000 && kept > 1000, "{silent} muted, {kept} kept");

    // --no-mask: as said.
    let raw = dir.path().join("raw");
    let o = callqc(&[
        "export",
        "pii-call",
        "--out",
        raw.to_str().unwrap(),
        "--no-mask",
        "--db",
        db_s,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(raw.join("pii-call/transcript.txt")).unwrap();
    assert!(text.contains("13812345678") && text.contains(&id));
    // show --mask masks too.
    let o = callqc(&["show", "pii-call", "--mask", "--db", db_s]);
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(
        shown.contains("138****5678") && !shown.contains("13812345678"),
        "{shown}"
    );
}

#[test]
fn a_rubric_can_mask_transcripts_before_anything_stores_them() {
    // The shipped rubric keeps what was said (exports mask anyway); a centre can switch masking
    // on at recognition time. The switch is read from the file, and a misspelt one is refused.
    let shipped = std::fs::read_to_string(root().join("rubrics/12345.toml")).unwrap();
    let path = root().join("rubrics/masked.toml");
    let r = callqc::rubric::parse(&shipped, &path).unwrap();
    assert!(!r.mask_personal_data);
    let masked = shipped.replacen(
        "\nsynonyms = [",
        "\nmask_personal_data = true\nsynonyms = [",
        1,
    );
    assert!(
        callqc::rubric::parse(&masked, &path)
            .unwrap()
            .mask_personal_data
    );
    let typo = shipped.replacen("\nsynonyms = [", "\nmask_personal = true\nsynonyms = [", 1);
    let e = callqc::rubric::parse(&typo, &path).unwrap_err().to_string();
    assert!(e.contains("mask_personal"), "{e}");
}
