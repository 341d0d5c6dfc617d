//! `callqc serve` end to end on real loopback sockets, with the real models: a PBX streams
//! sample calls (WebSocket and AudioSocket), pages receive warnings, the store ends up with what
//! `batch` would store — and bad peers, vanished peers, silent lines and overload are handled.
//! No timing is asserted here (latency is measured in benches/live.rs).

mod live_support;
#[path = "common/pg.rs"]
mod pg;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use callqc::live::audiosocket;
use callqc::live::simulate::{self, Protocol};
use callqc::pipeline::call::Worker;
use callqc::pipeline::events::{Pass, Source};
use callqc::pipeline::session::{CallJob, SessionMode, analyze_recording};
use callqc::pipeline::sinks::VecSink;
use callqc::store::{AlertKind, EndReason, Store};
use live_support::*;

/// Open an ingest WebSocket with an optional bearer token.
async fn ingest(
    server: &TestServer,
    bearer: Option<&str>,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    tokio_tungstenite::tungstenite::Error,
> {
    let url = format!("ws://{}/ingest", server.server.http);
    let mut req = url.as_str().into_client_request().unwrap();
    if let Some(t) = bearer {
        req.headers_mut()
            .insert("Authorization", format!("Bearer {t}").parse().unwrap());
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

/// The close code the server ends a stream with, reading until it does.
async fn close_code(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Option<(u16, String)> {
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(15), ws.next()).await {
        match msg {
            Ok(Message::Close(Some(f))) => return Some((u16::from(f.code), f.reason.to_string())),
            Ok(Message::Close(None)) => return Some((1005, String::new())),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

fn l16(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// The stored analysis of a live call equals `batch`'s analysis of the recording it wrote.
fn assert_stored_as_batch_would(server: &TestServer, call_id: &str) {
    let store = Store::open(&server.db()).unwrap();
    let live = store.live_call(call_id).unwrap().expect("a live record");
    let id = store.find_call(call_id).unwrap();
    let stored = store.load_call(id).unwrap();
    assert_eq!(stored.source, Source::Live);
    let findings = store.findings(id, None).unwrap();

    let cfg = &server.server.engine.config().final_worker;
    let mut worker = Worker::load(cfg).unwrap();
    let side: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(std::path::Path::new(&live.recording).with_extension("json"))
            .unwrap(),
    )
    .unwrap();
    let job = CallJob {
        path: live.recording.clone().into(),
        agent_id: side["agent_id"].as_str().map(String::from),
        call_id: side["call_id"].as_str().map(String::from),
        channel_map: serde_json::from_value(side["channel_map"].clone()).unwrap(),
        started_at: None,
        source: Source::Batch,
    };
    let mut sink = VecSink::default();
    let rubric = server.server.engine.config().rubric.clone();
    analyze_recording(
        &mut worker,
        &rubric,
        &mut sink,
        0,
        &job,
        None,
        SessionMode::Recording,
    )
    .unwrap();
    let ms = |x: f64| (x * 1000.0).round() as i64;
    let batch_text: Vec<(String, i64, i64)> = sink
        .segments(Pass::Final)
        .iter()
        .map(|s| (s.text.clone(), ms(s.start), ms(s.end)))
        .collect();
    let live_text: Vec<(String, i64, i64)> = stored
        .segments
        .iter()
        .map(|s| (s.text.clone(), ms(s.start), ms(s.end)))
        .collect();
    assert_eq!(
        live_text, batch_text,
        "{call_id}: transcript differs from batch"
    );
    let mut batch_f: Vec<(String, i64, i64)> = sink
        .findings(Pass::Final)
        .iter()
        .map(|(f, _)| (f.item_id.clone(), ms(f.start), ms(f.end)))
        .collect();
    let mut live_f: Vec<(String, i64, i64)> = findings
        .iter()
        .map(|f| (f.item_id.clone(), ms(f.start), ms(f.end)))
        .collect();
    batch_f.sort();
    live_f.sort();
    assert_eq!(live_f, batch_f, "{call_id}: findings differ from batch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_call_warns_its_own_agent_only_and_is_stored_as_batch_would() {
    let server = start("shed_after_s = 30").await;
    let agent = Page::open(&server, json!({"token": AGENT_6618})).await;
    let other = Page::open(&server, json!({"token": AGENT_2051})).await;
    assert_eq!(agent.of_type("hello")[0]["agent_id"], "6618");

    // Security: another agent's warnings are refused; wrong or missing tokens are refused.
    let snoop = Page::open(&server, json!({"token": AGENT_2051, "agent_id": "6618"})).await;
    assert_eq!(
        snoop.close_code(),
        Some(4403),
        "an agent may not watch another agent"
    );
    let nobody = Page::open(&server, json!({"token": "not-a-token-at-all-xxxx"})).await;
    assert_eq!(nobody.close_code(), Some(4401));
    let wrong = ingest(&server, Some("wrong-token-wrong-token")).await;
    assert!(
        matches!(&wrong, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 401),
        "a wrong bearer token is refused before the upgrade"
    );
    let mut no_token = ingest(&server, None).await.unwrap();
    no_token
        .send(Message::text(
            json!({"call_id": "x1", "agent_id": "6618", "sample_rate": 8000}).to_string(),
        ))
        .await
        .unwrap();
    assert_eq!(close_code(&mut no_token).await.map(|c| c.0), Some(4401));
    let mut agent_as_pbx = ingest(&server, Some(AGENT_6618)).await.unwrap();
    agent_as_pbx
        .send(Message::text(
            json!({"call_id": "x2", "agent_id": "6618", "sample_rate": 8000}).to_string(),
        ))
        .await
        .unwrap();
    assert_eq!(close_code(&mut agent_as_pbx).await.map(|c| c.0), Some(4403));
    let api = simulate::http_post(&server.http(), "/api/audiosocket/calls", AGENT_6618, "{}")
        .await
        .unwrap();
    assert_eq!(api.0, 403, "an agent token cannot register calls");

    // A desktop page that never reads must not hold anything up.
    let url = format!("ws://{}/events", server.server.http);
    let (mut stalled, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    stalled
        .send(Message::text(json!({"token": AGENT_6618}).to_string()))
        .await
        .unwrap();

    let call = sample("call05");
    let report = simulate::run_call(
        &call,
        "live-call05".into(),
        &server.options(Protocol::Ws, 4.0),
    )
    .await;
    assert_eq!(report.error, None);
    server.wait_stored().await;

    let kinds: Vec<&str> = report
        .warnings
        .iter()
        .filter_map(|w| w.kind.map(AlertKind::as_str))
        .collect();
    assert!(kinds.contains(&"forbidden"), "{kinds:?}");
    assert!(kinds.contains(&"tone"), "{kinds:?}");
    let texts: Vec<String> = agent
        .of_type("warning")
        .iter()
        .map(|w| {
            format!(
                "{}：{}",
                w["title"].as_str().unwrap(),
                w["text"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("禁语提醒：「") && t.contains("没办法")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t == "语气提醒：请注意语气"),
        "{texts:?}"
    );
    assert_eq!(agent.of_type("call_started").len(), 1);
    assert_eq!(agent.of_type("call_ended").len(), 1);
    assert!(
        other.of_type("warning").is_empty(),
        "agent 2051 saw 6618's warnings"
    );
    assert!(other.of_type("call_started").is_empty());
    drop(stalled);

    // Stored: the call (as batch would), its live record, every alert with its latency.
    let store = Store::open(&server.db()).unwrap();
    let live = store.live_call("live-call05").unwrap().unwrap();
    assert_eq!(live.end_reason, EndReason::Hangup);
    assert!(live.complete());
    let (frames, channels) = wav_frames(std::path::Path::new(&live.recording));
    assert_eq!(channels, 2);
    assert_eq!(live.samples_received, vec![u64::from(frames); 2]);
    assert_eq!(live.samples_stored, live.samples_received);
    let alerts = store.alerts("live-call05").unwrap();
    assert_eq!(alerts.len(), report.warnings.len());
    assert!(
        alerts
            .iter()
            .all(|a| a.agent_pages >= 1 && a.supervisor_pages >= 1)
    );
    assert!(alerts.iter().all(|a| a.frame_ms <= a.sent_ms));
    assert!(alerts.iter().any(|a| a.kind == AlertKind::Forbidden));
    // /api/stats counts what was sent, as the store does.
    let stats = server.server.engine.stats();
    assert_eq!(stats.warnings, alerts.len() as u64, "{stats:?}");
    assert_eq!(stats.samples_received, 2 * u64::from(frames));
    drop(store);
    assert_stored_as_batch_would(&server, "live-call05");
    server.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audiosocket_legs_make_one_call_and_bad_peers_do_not_disturb_it() {
    let server = start("shed_after_s = 30").await;
    let addr = server.server.audiosocket.unwrap();
    // Registration is refused without the ingest token and for malformed UUIDs.
    let reg = |call: &str, a: &str, c: &str| {
        json!({"call_id": call, "agent_id": "6618", "agent_uuid": a, "caller_uuid": c}).to_string()
    };
    let (status, _) = simulate::http_post(
        &server.http(),
        "/api/audiosocket/calls",
        "wrong-token-wrong-token",
        &reg(
            "a",
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
            "1f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        ),
    )
    .await
    .unwrap();
    assert_eq!(status, 401);
    let (status, body) = simulate::http_post(
        &server.http(),
        "/api/audiosocket/calls",
        INGEST,
        &reg("a", "not-a-uuid", "1f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
    )
    .await
    .unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("agent_uuid"), "{body}");

    // An unregistered stream and a garbage stream are dropped, each on its own.
    let mut stranger = tokio::net::TcpStream::connect(addr).await.unwrap();
    stranger
        .write_all(&audiosocket::encode(0x01, &[9; 16]))
        .await
        .unwrap();
    stranger
        .write_all(&audiosocket::encode(0x10, &[0; 320]))
        .await
        .unwrap();
    let mut garbage = tokio::net::TcpStream::connect(addr).await.unwrap();
    garbage.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();

    // A short registered call: audio, a DTMF digit, hang-up, then frames after the end.
    let uuid = "2a2e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
    let (status, _) = simulate::http_post(
        &server.http(),
        "/api/audiosocket/calls",
        INGEST,
        &json!({"call_id": "as-short", "agent_id": "2051", "agent_uuid": uuid}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(status, 201);
    let mut leg = tokio::net::TcpStream::connect(addr).await.unwrap();
    leg.write_all(&audiosocket::encode(
        0x01,
        &audiosocket::parse_uuid(uuid).unwrap(),
    ))
    .await
    .unwrap();
    for _ in 0..50 {
        leg.write_all(&audiosocket::encode(0x10, &l16(&[100; 160])))
            .await
            .unwrap();
    }
    leg.write_all(&audiosocket::encode(0x03, b"5"))
        .await
        .unwrap();
    leg.write_all(&audiosocket::encode(0x00, &[]))
        .await
        .unwrap();
    let _ = leg
        .write_all(&audiosocket::encode(0x10, &l16(&[100; 160])))
        .await;

    // The real call, both legs, through the simulated Asterisk.
    let report = simulate::run_call(
        &sample("call05"),
        "as-call05".into(),
        &server.options(Protocol::Audiosocket, 4.0),
    )
    .await;
    assert_eq!(report.error, None);
    server.wait_stored().await;
    let kinds: Vec<&str> = report
        .warnings
        .iter()
        .filter_map(|w| w.kind.map(AlertKind::as_str))
        .collect();
    assert!(kinds.contains(&"forbidden"), "{kinds:?}");

    let store = Store::open(&server.db()).unwrap();
    let short = store
        .live_call("as-short")
        .unwrap()
        .expect("the short call is stored");
    assert_eq!(
        short.samples_received,
        vec![50 * 160],
        "frames after the hang-up are not taken"
    );
    assert_eq!(short.end_reason, EndReason::Hangup);
    let live = store.live_call("as-call05").unwrap().unwrap();
    assert_eq!(live.samples_received.len(), 2, "one call of two legs");
    assert_eq!(live.samples_stored, live.samples_received);
    // Both legs sent the whole file and started together: neither is padded by a whole 20 ms
    // frame (the padding follows arrival, to the sample), and padding is not counted received.
    let (frames, _) = wav_frames(std::path::Path::new(&live.recording));
    assert_eq!(live.samples_received[0], live.samples_received[1]);
    let padded = u64::from(frames) - live.samples_received[0];
    assert!(padded < 160, "{padded} samples of padding");
    drop(store);
    assert_stored_as_batch_would(&server, "as-call05");
    server.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_vanished_and_silent_streams_are_handled_and_other_calls_go_on() {
    let server = start("shed_after_s = 30").await;
    let agent = Page::open(&server, json!({"token": AGENT_6618})).await;
    // A good call streams the whole time.
    let good = {
        let opts = server.options(Protocol::Ws, 4.0);
        tokio::spawn(async move {
            simulate::run_call(&sample("call05"), "good-call".into(), &opts).await
        })
    };

    // Malformed or missing metadata: closed with 1007 and a reason naming the problem.
    for (meta, says) in [
        ("not json".to_string(), "JSON"),
        (
            json!({"agent_id": "1", "sample_rate": 8000}).to_string(),
            "call_id",
        ),
        (
            json!({"call_id": "m1", "agent_id": "1", "sample_rate": 8000, "encoding": "opus"})
                .to_string(),
            "OPUS",
        ),
        (
            json!({"call_id": "m2", "agent_id": "1", "sample_rate": 11025}).to_string(),
            "11025",
        ),
        (
            json!({"call_id": "../../etc/passwd", "agent_id": "1", "sample_rate": 8000})
                .to_string(),
            "call_id",
        ),
    ] {
        let mut ws = ingest(&server, Some(INGEST)).await.unwrap();
        ws.send(Message::text(meta.clone())).await.unwrap();
        let (code, reason) = close_code(&mut ws).await.expect("closed with a reason");
        assert_eq!(code, 1007, "{meta}");
        assert!(reason.contains(says), "{meta}: {reason}");
    }
    // Binary before metadata.
    let mut ws = ingest(&server, Some(INGEST)).await.unwrap();
    ws.send(Message::binary(vec![0u8; 320])).await.unwrap();
    assert_eq!(close_code(&mut ws).await.map(|c| c.0), Some(1007));
    // The same call id twice at once.
    let dup_meta = json!({"call_id": "good-call", "agent_id": "6618", "sample_rate": 8000});
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut dup = ingest(&server, Some(INGEST)).await.unwrap();
    dup.send(Message::text(dup_meta.to_string())).await.unwrap();
    assert_eq!(close_code(&mut dup).await.map(|c| c.0), Some(4409));

    // A PBX that vanishes mid-call: 3 s of audio, then the TCP connection drops.
    let mut ws = ingest(&server, Some(INGEST)).await.unwrap();
    ws.send(Message::text(
        json!({"call_id": "vanished", "agent_id": "2051", "sample_rate": 8000, "channels": 2})
            .to_string(),
    ))
    .await
    .unwrap();
    for _ in 0..150 {
        ws.send(Message::binary(l16(&[50; 320]))).await.unwrap();
    }
    // An odd trailing byte, then the socket is dropped without a close frame.
    ws.send(Message::binary(vec![1u8])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(ws);

    // Ten minutes of silence and line noise (hum + hiss), streamed 30× real time: no warning.
    let mut ws = ingest(&server, Some(INGEST)).await.unwrap();
    ws.send(Message::text(
        json!({"call_id": "noise", "agent_id": "6618", "sample_rate": 8000, "channels": 2, "encoding": "PCMU"})
            .to_string(),
    ))
    .await
    .unwrap();
    let mut seed = 12345u32;
    let started = tokio::time::Instant::now();
    for k in 0..(10 * 60 * 50) {
        let mut frame = Vec::with_capacity(320);
        for i in 0..160 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let hiss = ((seed >> 16) as f32 / 65536.0 - 0.5) * 0.004;
            let t = (k * 160 + i) as f32 / 8000.0;
            let hum = if k < 15_000 {
                0.003 * (2.0 * std::f32::consts::PI * 50.0 * t).sin()
            } else {
                0.0
            };
            frame.push(hiss + hum);
            frame.push(hiss * 0.5);
        }
        ws.send(Message::binary(
            callqc::audio::frames::FrameEncoding::Pcmu.encode(&frame),
        ))
        .await
        .unwrap();
        if k % 50 == 0 {
            tokio::time::sleep_until(started + Duration::from_secs_f64(k as f64 * 0.02 / 30.0))
                .await;
        }
    }
    ws.send(Message::Close(None)).await.unwrap();
    let _ = close_code(&mut ws).await;

    let good = good.await.unwrap();
    assert_eq!(good.error, None);
    assert!(
        !good.warnings.is_empty(),
        "the good call still got its warnings"
    );
    server.wait_stored().await;
    let noise_warnings = agent
        .of_type("warning")
        .into_iter()
        .filter(|w| w["call_id"] == "noise")
        .count();
    assert_eq!(noise_warnings, 0, "silence and line noise raised a warning");

    let store = Store::open(&server.db()).unwrap();
    let v = store
        .live_call("vanished")
        .unwrap()
        .expect("a vanished call is kept");
    assert_eq!(v.end_reason, EndReason::Vanished);
    assert!(!v.complete());
    assert_eq!(
        v.samples_received,
        vec![150 * 160; 2],
        "every whole sample kept"
    );
    assert_eq!(v.samples_stored, v.samples_received);
    assert!(
        store.find_call("vanished").is_ok(),
        "analysed with what arrived"
    );
    let n = store.live_call("noise").unwrap().unwrap();
    assert_eq!(n.samples_received, vec![10 * 60 * 8000; 2]);
    assert!(store.alerts("noise").unwrap().is_empty());
    let noise = store.load_call(store.find_call("noise").unwrap()).unwrap();
    assert!(
        noise.segments.is_empty(),
        "text invented from noise: {:?}",
        noise.segments
    );
    assert!(store.live_call("m1").unwrap().is_none());
    server.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_overload_live_decoding_is_shed_and_counted_but_no_audio_is_lost() {
    // A budget no decode can meet: every finished utterance is shed.
    let server = start("shed_after_s = 0.000001").await;
    let report = simulate::run_call(
        &sample("call05"),
        "shed-call".into(),
        &server.options(Protocol::Ws, 8.0),
    )
    .await;
    assert_eq!(report.error, None);
    server.wait_stored().await;
    assert!(
        report
            .warnings
            .iter()
            .all(|w| w.kind != Some(AlertKind::Forbidden)),
        "a shed utterance was decoded live"
    );
    let stats = server.server.engine.stats();
    assert!(stats.shed_utterances > 0);
    let store = Store::open(&server.db()).unwrap();
    let live = store.live_call("shed-call").unwrap().unwrap();
    assert!(live.shed_utterances > 0);
    assert_eq!(live.samples_stored, live.samples_received);
    let (frames, _) = wav_frames(std::path::Path::new(&live.recording));
    assert_eq!(live.samples_received, vec![u64::from(frames); 2]);
    // The final pass still finds the 禁语.
    let id = store.find_call("shed-call").unwrap();
    let found = store.findings(id, None).unwrap();
    assert!(
        found
            .iter()
            .any(|f| f.kind == callqc::rubric::Kind::ForbiddenPhrase),
        "{found:?}"
    );
    drop(store);
    server.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_progress_when_the_server_is_killed_is_stored_at_the_next_start() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "callqc.db", "shed_after_s = 30");
    // A real `callqc serve` process, so that it can be killed (SIGKILL: no shutdown at all).
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_callqc"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--models")
        .arg(models_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("serve printed its address").unwrap();
        if let Some(rest) = line.strip_prefix("callqc serve: http://") {
            break rest.split('/').next().unwrap().to_string();
        }
    };

    // 12 s of call05 (8 kHz stereo), sent at once; the stream stays open.
    let mut reader = hound::WavReader::open(repo().join("samples/call05.wav")).unwrap();
    let sent: Vec<i16> = reader
        .samples::<i16>()
        .take(12 * 8000 * 2)
        .map(Result::unwrap)
        .collect();
    let mut req = format!("ws://{addr}/ingest").into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", format!("Bearer {INGEST}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::text(
        json!({"call_id": "killed", "agent_id": "6618", "sample_rate": 8000, "channels": 2})
            .to_string(),
    ))
    .await
    .unwrap();
    for frame in sent.chunks(320) {
        ws.send(Message::binary(l16(frame))).await.unwrap();
    }
    // Kill it once the recording on disk holds 10 s (its checkpoints come each second).
    let part = {
        let mut found = None;
        for _ in 0..600 {
            found = std::fs::read_dir(dir.path().join("recordings"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|d| d.path().join("killed.wav.part"))
                .find(|p| hound::WavReader::open(p).is_ok_and(|r| r.duration() >= 10 * 8000));
            if found.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        found.expect("the running call's recording reached 10 s on disk")
    };
    // A second server on the same folder is refused before it touches the running call.
    let cfg = callqc::live::config::ServeConfig::load(&config).unwrap();
    let engine = callqc::live::engine::EngineConfig::for_config(&cfg, &models_dir(), 2).unwrap();
    let second = callqc::live::server::Server::start(&cfg, engine).await;
    let refused = second
        .err()
        .expect("a second server is refused")
        .to_string();
    assert!(
        refused.contains("in use by another callqc serve"),
        "{refused}"
    );
    assert!(part.exists(), "the running call's recording is left alone");
    child.kill().unwrap();
    child.wait().unwrap();
    drop(ws);

    // The next start stores the call from what its recording held.
    let server = start_in(dir, "shed_after_s = 30").await;
    server.wait_stored().await;
    assert!(!part.exists(), "the part file is turned into the recording");
    let store = Store::open(&server.db()).unwrap();
    let live = store.live_call("killed").unwrap().expect("a live record");
    assert_eq!(live.end_reason, EndReason::Shutdown);
    assert!(!live.complete());
    assert!(
        live.error.as_deref().unwrap_or("").contains("recovered"),
        "{:?}",
        live.error
    );
    let n = live.samples_stored[0];
    assert!((10 * 8000..=12 * 8000).contains(&n), "{n} samples kept");
    assert_eq!(live.samples_stored, vec![n; 2]);
    // The recording is exactly the audio sent, up to its last checkpoint.
    let kept: Vec<i16> = hound::WavReader::open(&live.recording)
        .unwrap()
        .samples::<i16>()
        .map(Result::unwrap)
        .collect();
    assert_eq!(kept.len() as u64, 2 * n);
    assert_eq!(kept[..], sent[..kept.len()]);
    drop(store);
    assert_stored_as_batch_would(&server, "killed");
    server.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_postgres_store_a_streamed_call_its_alerts_and_the_trainer_pages_work_as_on_sqlite() {
    // The store and the cluster block: off the async threads.
    let cluster = tokio::task::block_in_place(pg::PgCluster::start);
    let url = tokio::task::block_in_place(|| cluster.database("live"));
    let server = start_in_db(tempfile::tempdir().unwrap(), &url, "shed_after_s = 30").await;
    assert_eq!(server.db(), std::path::Path::new(&url));
    let agent = Page::open(&server, json!({"token": AGENT_6618})).await;
    let report = simulate::run_call(
        &sample("call05"),
        "pg-call05".into(),
        &server.options(Protocol::Ws, 4.0),
    )
    .await;
    assert_eq!(report.error, None);
    server.wait_stored().await;
    assert!(!agent.of_type("warning").is_empty());
    tokio::task::block_in_place(|| {
        let store = Store::open(std::path::Path::new(&url)).unwrap();
        let live = store
            .live_call("pg-call05")
            .unwrap()
            .expect("a live record");
        assert!(live.complete());
        assert_eq!(
            store.alerts("pg-call05").unwrap().len(),
            report.warnings.len()
        );
        drop(store);
        assert_stored_as_batch_would(&server, "pg-call05");
    });
    // The trainer pages read the same store.
    let mut http = tokio::net::TcpStream::connect(server.server.http)
        .await
        .unwrap();
    http.write_all(
        format!(
            "GET /api/trainer/flagged HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {REVIEWER}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut response = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut http, &mut response)
        .await
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("pg-call05"), "{response}");
    server.server.shutdown().await;
    tokio::task::block_in_place(move || drop(cluster));
}
