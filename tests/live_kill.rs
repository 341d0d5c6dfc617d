//! `callqc serve` stopped as a service manager stops it (SIGTERM) and killed outright (SIGKILL)
//! at random moments while calls stream and end, then started again: every call the server
//! accepted is stored exactly once, none is lost, and a PBX or page connected at a SIGTERM gets
//! a close frame (1001), not a dropped connection. One round kills the server between a call's
//! end and its stored row on purpose. The seed is printed; `CALLQC_LIVE_KILLS=N` runs N rounds
//! (default 3).

mod live_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use callqc::audio::degrade::Lcg;
use callqc::store::{EndReason, Store};
use live_support::*;

/// How one streamed call went, as its PBX saw it.
#[derive(Debug, Default, Clone)]
struct Streamed {
    accepted: bool,
    /// The close frame the server sent (its own, or the echo of ours).
    close: Option<u16>,
    /// The PBX sent all its audio and its close frame.
    hung_up: bool,
}

/// Stream `pcm` (8 kHz stereo, interleaved) as call `id` at about 10× real time, then close.
async fn stream(addr: String, id: String, pcm: Arc<Vec<i16>>, seconds: f64) -> Streamed {
    let mut out = Streamed::default();
    let mut req = format!("ws://{addr}/ingest").into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", format!("Bearer {INGEST}").parse().unwrap());
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(req).await else {
        return out;
    };
    let meta = json!({"call_id": id, "agent_id": "6618", "sample_rate": 8000, "channels": 2});
    if ws.send(Message::text(meta.to_string())).await.is_err() {
        return out;
    }
    match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) if t.contains("accepted") => out.accepted = true,
        Ok(Some(Ok(Message::Close(f)))) => {
            out.close = Some(f.map_or(1005, |f| u16::from(f.code)));
            return out;
        }
        _ => return out,
    }
    let n = ((seconds * 8000.0) as usize * 2).min(pcm.len());
    // 0.1 s of audio every 10 ms.
    for chunk in pcm[..n].chunks(1600) {
        let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
        if ws.send(Message::binary(bytes)).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        // A close frame from the server (it is stopping) ends the stream.
        if let Ok(Some(Ok(Message::Close(f)))) =
            tokio::time::timeout(Duration::ZERO, ws.next()).await
        {
            out.close = Some(f.map_or(1005, |f| u16::from(f.code)));
            // Sends the answer to the server's close frame.
            let _ = ws.flush().await;
            return out;
        }
    }
    if ws.send(Message::Close(None)).await.is_ok() {
        out.hung_up = true;
    }
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        if let Message::Close(f) = msg {
            out.close = Some(f.map_or(1005, |f| u16::from(f.code)));
        }
    }
    out
}

fn recordings(dir: &Path) -> Vec<PathBuf> {
    callqc::live::recording::recording_files(&dir.join("recordings"))
}

fn stored(db: &Path, id: &str) -> bool {
    all_stored(db, &[id])
}

fn all_stored(db: &Path, ids: &[&str]) -> bool {
    Store::open(db).is_ok_and(|s| {
        ids.iter()
            .all(|id| s.live_call(id).is_ok_and(|r| r.is_some()))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_or_stopped_at_random_moments_every_accepted_call_is_stored_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "callqc.db",
        "shed_after_s = 30\nstop_timeout_s = 4",
    );
    let db = dir.path().join("callqc.db");
    let log = dir.path().join("serve.log");
    let rounds: usize = std::env::var("CALLQC_LIVE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("kill seed {seed}, {rounds} rounds");
    let mut rng = Lcg(seed);
    let pcm: Arc<Vec<i16>> = Arc::new(
        hound::WavReader::open(repo().join("samples/call05.wav"))
            .unwrap()
            .samples::<i16>()
            .map(Result::unwrap)
            .collect(),
    );
    let mut calls: BTreeMap<String, Streamed> = BTreeMap::new();

    // Killed between a call's end and its stored row: the recording is whole, the final pass
    // has not stored it yet.
    {
        let mut s = ServeProcess::start(&config, &log);
        let got = stream(s.addr.clone(), "ended-unstored".into(), pcm.clone(), 20.0).await;
        assert!(got.hung_up && got.close.is_some(), "{got:?}");
        let deadline = Instant::now() + Duration::from_secs(60);
        let wav = loop {
            assert!(
                Instant::now() < deadline,
                "the call's recording was not finished"
            );
            let found = recordings(dir.path()).into_iter().find(|p| {
                p.ends_with("ended-unstored.wav")
                    && std::fs::read_to_string(p.with_extension("json"))
                        .is_ok_and(|j| j.contains("end_reason"))
            });
            if let Some(f) = found {
                break f;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        s.signal(libc::SIGKILL);
        s.child.wait().unwrap();
        assert!(
            !stored(&db, "ended-unstored"),
            "the kill was meant to come before the final pass stored the call: make the call longer"
        );
        assert!(wav.exists());
        calls.insert("ended-unstored".into(), got);
    }

    for round in 0..rounds {
        let sigterm = round % 2 == 1;
        let mut s = ServeProcess::start(&config, &log);
        let page = tokio::spawn(page_close_code(s.addr.clone()));
        let mut tasks = Vec::new();
        for k in 0..4 {
            let id = format!("r{round}-c{k}");
            let seconds = 3.0 + 6.0 * rng.unit();
            let delay = Duration::from_secs_f64(0.4 * k as f64 * rng.unit());
            let (addr, pcm) = (s.addr.clone(), pcm.clone());
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                (id.clone(), stream(addr, id, pcm, seconds).await)
            }));
        }
        let at = Duration::from_secs_f64(0.3 + 2.5 * rng.unit());
        tokio::time::sleep(at).await;
        let kill_at = Instant::now();
        if sigterm {
            s.signal(libc::SIGTERM);
            let status = tokio::task::spawn_blocking(move || s.child.wait().unwrap())
                .await
                .unwrap();
            assert!(
                status.success(),
                "SIGTERM: serve exited with {status}; its log:\n{}",
                log_tail(&log)
            );
            // stop_timeout_s = 4, plus the close handshakes.
            assert!(kill_at.elapsed() < Duration::from_secs(15));
        } else {
            s.signal(libc::SIGKILL);
            s.child.wait().unwrap();
        }
        let mut ended = Vec::new();
        for t in tasks {
            let (id, got) = t.await.unwrap();
            if sigterm && got.accepted {
                // Every PBX connected at a SIGTERM saw a close frame: the echo of its own, or
                // the server's 1001.
                assert!(
                    got.close == Some(1001) || (got.hung_up && got.close.is_some()),
                    "{id}: {got:?}"
                );
            }
            ended.push(format!(
                "{id}:{}",
                if got.accepted { "accepted" } else { "refused" }
            ));
            calls.insert(id, got);
        }
        let page = page.await.unwrap();
        if sigterm {
            assert_eq!(
                page,
                Some(1001),
                "a page open at SIGTERM is closed with 1001"
            );
        }
        println!(
            "round {round}: {} after {:.2} s: {}",
            if sigterm { "SIGTERM" } else { "SIGKILL" },
            at.as_secs_f64(),
            ended.join(" ")
        );
    }

    // The last start stores what the others left; then a SIGTERM with nothing pending.
    let mut s = ServeProcess::start(&config, &log);
    let accepted: Vec<&str> = calls
        .iter()
        .filter(|(_, c)| c.accepted)
        .map(|(id, _)| id.as_str())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !all_stored(&db, &accepted) {
        assert!(
            Instant::now() < deadline,
            "not stored after 300 s; serve's log:\n{}",
            log_tail(&log)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s.signal(libc::SIGTERM);
    assert!(s.child.wait().unwrap().success());

    let store = Store::open(&db).unwrap();
    for id in &accepted {
        let live = store.live_call(id).unwrap().unwrap();
        // Its analysis is the one row of its key (call keys are unique in the store).
        store
            .find_call(id)
            .unwrap_or_else(|e| panic!("{id}: no analysis: {e}"));
        let c = &calls[*id];
        if c.close == Some(1001) {
            assert_eq!(live.end_reason, EndReason::Shutdown, "{id}");
        }
    }
    // The call killed after its end kept how it ended.
    let unstored = store.live_call("ended-unstored").unwrap().unwrap();
    assert_eq!(unstored.end_reason, EndReason::Hangup);
    assert_eq!(unstored.samples_received, vec![20 * 8000; 2]);
    // Nothing is left half-done on disk, and nothing was stored that no PBX sent.
    let left: Vec<_> = recordings(dir.path())
        .into_iter()
        .filter(|p| {
            !p.to_string_lossy().ends_with(".wav") && !p.to_string_lossy().ends_with(".json")
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
    for id in calls.iter().filter(|(_, c)| !c.accepted).map(|(id, _)| id) {
        assert!(
            store.live_call(id).unwrap().is_none(),
            "{id} was never accepted"
        );
    }
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !log_text.contains("panicked"),
        "serve panicked:\n{}",
        log_tail(&log)
    );
    println!("{} calls accepted, every one stored once", accepted.len());
}

/// A supervisor page on the server: the close code it ends with (None: dropped without one).
async fn page_close_code(addr: String) -> Option<u16> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/events"))
        .await
        .ok()?;
    ws.send(Message::text(json!({"token": SUPERVISOR}).to_string()))
        .await
        .ok()?;
    while let Some(Ok(msg)) = ws.next().await {
        if let Message::Close(f) = msg {
            return Some(f.map_or(1005, |f| u16::from(f.code)));
        }
    }
    None
}
