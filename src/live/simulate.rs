//! A PBX in a box: stream recordings to `callqc serve` the way FreeSWITCH (WebSocket) or
//! Asterisk (AudioSocket) would — 20 ms frames paced at real time or faster, several calls at
//! once — and time the warnings that come back. Used by `callqc simulate`, the tests and the
//! live benchmark.
//!
//! A warning's latency is measured here, on the client's clock: from the moment the frame
//! holding the end of the warning's evidence was sent to the moment the warning arrived.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::audiosocket;
use super::config::random_token;
use crate::audio::frames::FrameEncoding;
use crate::audio::{ChannelMap, Role};
use crate::store::AlertKind;

/// How the simulated PBX streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
pub enum Protocol {
    /// FreeSWITCH mod_audio_fork: WebSocket, metadata then binary frames.
    Ws,
    /// Asterisk AudioSocket: one TCP stream per channel, registered over HTTP first.
    Audiosocket,
}

#[derive(Debug, Clone)]
pub struct SimulateOptions {
    /// The server's HTTP address, e.g. `http://127.0.0.1:8345`.
    pub server: String,
    /// AudioSocket address (for `Protocol::Audiosocket`).
    pub audiosocket: Option<std::net::SocketAddr>,
    pub protocol: Protocol,
    /// 1.0 = real time.
    pub speed: f64,
    pub ingest_token: String,
    /// To watch warnings on `/events` (needed for AudioSocket, which has no way back; for the
    /// WebSocket, warnings of the call's last utterance arrive after the PBX hung up, so the
    /// events socket is preferred there too).
    pub supervisor_token: Option<String>,
    /// Prefix of the call ids sent (each call also gets the file's stem and a number).
    pub call_prefix: String,
    /// Stop after this much audio of each file (the whole file by default).
    pub max_audio_s: Option<f64>,
}

/// One recording to stream.
#[derive(Debug, Clone)]
pub struct SimCall {
    pub path: PathBuf,
    pub agent_id: String,
    pub channel_map: ChannelMap,
}

/// A warning as the simulated PBX (or supervisor) saw it.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedWarning {
    /// `None`: a kind this client does not know (a newer server's).
    pub kind: Option<AlertKind>,
    pub title: String,
    pub text: String,
    pub evidence_end_s: f64,
    /// Client clock: arrival − sending of the evidence's last frame.
    pub latency_ms: f64,
    /// Server clock: sent − arrival of that frame (what the alerts table records).
    pub server_latency_ms: i64,
}

/// What happened to one simulated call.
#[derive(Debug, Clone, Serialize)]
pub struct CallReport {
    pub file: PathBuf,
    pub call_id: String,
    pub agent_id: String,
    pub audio_s: f64,
    pub warnings: Vec<ReceivedWarning>,
    /// The server took the call: its `accepted` reply (WebSocket), or the registered streams'
    /// first audio written (AudioSocket, which has no reply). A call the server accepted must
    /// be stored, however it ends.
    pub accepted: bool,
    pub error: Option<String>,
}

/// Audio ready to stream: frames of one channel each.
struct Prepared {
    rate: u32,
    encoding: FrameEncoding,
    /// (role, samples in [-1, 1]).
    channels: Vec<(Role, Vec<f32>)>,
}

impl Prepared {
    /// Samples per 20 ms frame of one channel, and frames in the call.
    fn frames(&self) -> (usize, usize) {
        let per_frame = (self.rate / 50) as usize;
        let longest = self.channels.iter().map(|c| c.1.len()).max().unwrap_or(0);
        (per_frame, longest.div_ceil(per_frame))
    }
}

fn prepare(call: &SimCall, max_audio_s: Option<f64>) -> Result<Prepared, String> {
    let bytes = std::fs::read(&call.path).map_err(|e| format!("{}: {e}", call.path.display()))?;
    let rec = crate::audio::decode::decode_bytes(&call.path, &bytes).map_err(|e| e.to_string())?;
    if !matches!(rec.sample_rate, 8000 | 16000) {
        return Err(format!(
            "{}: {} Hz; a PBX streams 8000 or 16000 Hz (resample it first)",
            call.path.display(),
            rec.sample_rate
        ));
    }
    let encoding = rec.encoding.frame_encoding().unwrap_or(FrameEncoding::L16);
    let roles = match rec.channels.len() {
        1 => vec![Role::Mixed],
        2 => vec![call.channel_map.left, call.channel_map.right],
        n => {
            return Err(format!(
                "{}: {n} channels; 1 or 2 expected",
                call.path.display()
            ));
        }
    };
    let limit = max_audio_s.map(|s| (s * f64::from(rec.sample_rate)) as usize);
    let channels = roles
        .into_iter()
        .zip(rec.channels)
        .map(|(r, mut s)| {
            if let Some(n) = limit {
                s.truncate(n);
            }
            (r, s)
        })
        .collect();
    Ok(Prepared {
        rate: rec.sample_rate,
        encoding,
        channels,
    })
}

fn ws_url(server: &str, path: &str) -> String {
    let base = server.trim_end_matches('/');
    let base = base
        .strip_prefix("https://")
        .map(|h| format!("wss://{h}"))
        .or_else(|| base.strip_prefix("http://").map(|h| format!("ws://{h}")))
        .unwrap_or_else(|| format!("ws://{base}"));
    format!("{base}{path}")
}

/// Stream every call, at most `concurrent` at once; reports in the order given.
pub async fn simulate(
    calls: Vec<SimCall>,
    opts: &SimulateOptions,
    concurrent: usize,
) -> Vec<CallReport> {
    let opts = Arc::new(opts.clone());
    let gate = Arc::new(tokio::sync::Semaphore::new(concurrent.max(1)));
    let mut tasks = Vec::new();
    for (i, call) in calls.into_iter().enumerate() {
        let opts = opts.clone();
        let gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            let stem = call
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let call_id: String = format!("{}{stem}-{i}", opts.call_prefix)
                .chars()
                .map(|c| {
                    if c.is_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            run_call(&call, call_id, &opts).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        match t.await {
            Ok(r) => out.push(r),
            Err(e) => tracing::error!("simulated call: {e}"),
        }
    }
    out
}

/// Stream one call and collect its warnings.
pub async fn run_call(call: &SimCall, call_id: String, opts: &SimulateOptions) -> CallReport {
    let mut report = CallReport {
        file: call.path.clone(),
        call_id: call_id.clone(),
        agent_id: call.agent_id.clone(),
        audio_s: 0.0,
        warnings: Vec::new(),
        accepted: false,
        error: None,
    };
    let prepared = match prepare(call, opts.max_audio_s) {
        Ok(p) => p,
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    report.audio_s =
        prepared.channels.first().map_or(0.0, |c| c.1.len() as f64) / f64::from(prepared.rate);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(serde_json::Value, Instant)>();
    // Watch the warnings on /events when a supervisor token is at hand.
    let watcher = match &opts.supervisor_token {
        Some(token) => match watch_events(&opts.server, token, call_id.clone(), tx.clone()).await {
            Ok(w) => Some(w),
            Err(e) => {
                report.error = Some(e);
                return report;
            }
        },
        None => None,
    };
    let started = Instant::now();
    let accepted = Arc::new(AtomicBool::new(false));
    let streamed = match opts.protocol {
        Protocol::Ws => {
            stream_ws(
                &prepared,
                &call_id,
                call,
                opts,
                watcher.is_none().then_some(tx.clone()),
                accepted.clone(),
            )
            .await
        }
        Protocol::Audiosocket => {
            stream_audiosocket(&prepared, &call_id, call, opts, &accepted).await
        }
    };
    report.accepted = accepted.load(Ordering::Relaxed);
    drop(tx);
    if let Err(e) = streamed {
        report.error = Some(e);
    }
    // The call's last warnings come after it ends; the events socket says when it has ended.
    let mut rx = rx;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let next = tokio::time::timeout_at(deadline, rx.recv()).await;
        let Ok(Some((msg, at))) = next else { break };
        match msg["type"].as_str() {
            Some("warning") => {
                let end = msg["evidence_end_s"].as_f64().unwrap_or(0.0);
                let sent_at = started + Duration::from_secs_f64(end / opts.speed.max(1e-3));
                report.warnings.push(ReceivedWarning {
                    kind: msg["kind"].as_str().and_then(|k| k.parse().ok()),
                    title: msg["title"].as_str().unwrap_or_default().to_string(),
                    text: msg["text"].as_str().unwrap_or_default().to_string(),
                    evidence_end_s: end,
                    latency_ms: at.saturating_duration_since(sent_at).as_secs_f64() * 1000.0
                        - sent_at.saturating_duration_since(at).as_secs_f64() * 1000.0,
                    server_latency_ms: msg["sent_ms"].as_i64().unwrap_or(0)
                        - msg["frame_ms"].as_i64().unwrap_or(0),
                });
            }
            Some("call_ended") => break,
            _ => {}
        }
    }
    if let Some(w) = watcher {
        w.abort();
    }
    report
}

/// Subscribe to `/events` and forward this call's messages.
async fn watch_events(
    server: &str,
    token: &str,
    call_id: String,
    tx: tokio::sync::mpsc::UnboundedSender<(serde_json::Value, Instant)>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let url = ws_url(server, "/events");
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    ws.send(Message::text(
        serde_json::json!({"token": token}).to_string(),
    ))
    .await
    .map_err(|e| format!("{url}: {e}"))?;
    // Wait for the greeting, so no warning of the call can be missed.
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"hello\"") => break,
            Some(Ok(Message::Close(c))) => return Err(format!("{url}: refused: {c:?}")),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("{url}: {e}")),
            None => return Err(format!("{url}: closed")),
        }
    }
    Ok(tokio::spawn(async move {
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Text(t) = msg
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&t)
                && v["call_id"].as_str() == Some(call_id.as_str())
                && tx.send((v, Instant::now())).is_err()
            {
                return;
            }
        }
    }))
}

/// Frame `k` of a channel (20 ms).
fn frame(samples: &[f32], k: usize, per_frame: usize) -> &[f32] {
    let a = (k * per_frame).min(samples.len());
    let b = ((k + 1) * per_frame).min(samples.len());
    &samples[a..b]
}

async fn pace(started: tokio::time::Instant, k: usize, speed: f64) {
    let at = started + Duration::from_secs_f64(k as f64 * 0.02 / speed.max(1e-3));
    tokio::time::sleep_until(at).await;
}

async fn stream_ws(
    p: &Prepared,
    call_id: &str,
    call: &SimCall,
    opts: &SimulateOptions,
    warnings: Option<tokio::sync::mpsc::UnboundedSender<(serde_json::Value, Instant)>>,
    accepted: Arc<AtomicBool>,
) -> Result<(), String> {
    let url = ws_url(&opts.server, "/ingest");
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("{url}: {e}"))?;
    let bearer = format!("Bearer {}", opts.ingest_token);
    request.headers_mut().insert(
        "Authorization",
        bearer
            .parse()
            .map_err(|_| "the ingest token is not a valid header value".to_string())?,
    );
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "audio.drachtio.org".parse().expect("static"),
    );
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let (mut out, mut incoming) = ws.split();
    let agent_channel = p
        .channels
        .iter()
        .position(|(r, _)| *r == Role::Agent)
        .unwrap_or(0);
    let meta = serde_json::json!({
        "call_id": call_id,
        "agent_id": call.agent_id,
        "sample_rate": p.rate,
        "channels": p.channels.len(),
        "agent_channel": agent_channel,
        "encoding": match p.encoding { FrameEncoding::L16 => "L16", FrameEncoding::Pcmu => "PCMU", FrameEncoding::Pcma => "PCMA" },
    });
    out.send(Message::text(meta.to_string()))
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let reader = tokio::spawn(async move {
        // RFC 6455: the server answers the end of the call with a close frame of its own; a
        // connection dropped without one is what a client sees as 1006.
        let mut closed = false;
        while let Some(Ok(msg)) = incoming.next().await {
            closed |= matches!(msg, Message::Close(_));
            if let Message::Text(t) = &msg
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(t)
            {
                if v["type"] == "accepted" {
                    accepted.store(true, Ordering::Relaxed);
                }
                if let Some(tx) = &warnings {
                    let _ = tx.send((v, Instant::now()));
                }
            }
            if let Message::Close(Some(c)) = &msg
                && c.code
                    != tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal
            {
                return Err(format!(
                    "server closed the stream: {} {}",
                    u16::from(c.code),
                    c.reason
                ));
            }
        }
        if closed {
            Ok(())
        } else {
            Err("the server dropped the connection without a close frame (1006)".to_string())
        }
    });
    let (per_frame, n) = p.frames();
    let started = tokio::time::Instant::now();
    let mut interleaved = Vec::with_capacity(per_frame * p.channels.len());
    for k in 0..n {
        pace(started, k, opts.speed).await;
        interleaved.clear();
        for i in 0..per_frame {
            for (_, s) in &p.channels {
                interleaved.push(s.get(k * per_frame + i).copied().unwrap_or(0.0));
            }
        }
        if out
            .send(Message::binary(p.encoding.encode(&interleaved)))
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = out.send(Message::Close(None)).await;
    match tokio::time::timeout(Duration::from_secs(30), reader).await {
        Ok(Ok(r)) => r,
        _ => Ok(()),
    }
}

/// A minimal HTTP/1.1 POST (the registration), returning the status code and body.
pub async fn http_post(
    server: &str,
    path: &str,
    token: &str,
    body: &str,
) -> Result<(u16, String), String> {
    let host = server
        .trim_end_matches('/')
        .trim_start_matches("http://")
        .to_string();
    let mut s = TcpStream::connect(&host)
        .await
        .map_err(|e| format!("{host}: {e}"))?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("{host}: {e}"))?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)
        .await
        .map_err(|e| format!("{host}: {e}"))?;
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{host}: not an HTTP response"))?;
    let body = resp
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    Ok((status, body))
}

fn random_uuid() -> Result<String, String> {
    let hex = random_token().map_err(|e| e.to_string())?;
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

async fn stream_audiosocket(
    p: &Prepared,
    call_id: &str,
    call: &SimCall,
    opts: &SimulateOptions,
    accepted: &AtomicBool,
) -> Result<(), String> {
    let addr = opts.audiosocket.ok_or_else(|| {
        "AudioSocket: no address (--audiosocket, or [server] audiosocket in the config)".to_string()
    })?;
    if p.encoding != FrameEncoding::L16
        && p.encoding != FrameEncoding::Pcmu
        && p.encoding != FrameEncoding::Pcma
    {
        return Err("AudioSocket carries linear PCM only".into());
    }
    let kind = audiosocket::audio_kind(p.rate)
        .ok_or_else(|| format!("AudioSocket has no {} Hz audio", p.rate))?;
    // One stream per channel: agent (or the mixed mono channel) and caller.
    let agent = p
        .channels
        .iter()
        .position(|(r, _)| *r != Role::Caller)
        .unwrap_or(0);
    let caller = p.channels.iter().position(|(r, _)| *r == Role::Caller);
    let uuids: Vec<String> = (0..p.channels.len())
        .map(|_| random_uuid())
        .collect::<Result<_, _>>()?;
    let mut reg = serde_json::json!({"call_id": call_id, "agent_id": call.agent_id, "agent_uuid": uuids[agent]});
    if let Some(c) = caller {
        reg["caller_uuid"] = serde_json::Value::String(uuids[c].clone());
    }
    let (status, body) = http_post(
        &opts.server,
        "/api/audiosocket/calls",
        &opts.ingest_token,
        &reg.to_string(),
    )
    .await?;
    if status != 201 {
        return Err(format!("registration refused ({status}): {body}"));
    }
    let mut legs = Vec::new();
    for (c, uuid) in uuids.iter().enumerate() {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        let u = audiosocket::parse_uuid(uuid).expect("made above");
        s.write_all(&audiosocket::encode(0x01, &u))
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        legs.push((c, s));
    }
    let (per_frame, n) = p.frames();
    let started = tokio::time::Instant::now();
    for k in 0..n {
        pace(started, k, opts.speed).await;
        for (c, s) in legs.iter_mut() {
            let pcm = FrameEncoding::L16.encode(frame(&p.channels[*c].1, k, per_frame));
            if pcm.is_empty() {
                continue;
            }
            s.write_all(&audiosocket::encode(kind, &pcm))
                .await
                .map_err(|e| format!("{addr}: {e}"))?;
        }
        accepted.store(true, Ordering::Relaxed);
    }
    for (_, s) in legs.iter_mut() {
        let _ = s.write_all(&audiosocket::encode(0x00, &[])).await;
        let _ = s.shutdown().await;
    }
    Ok(())
}

/// p50 / p95 / max of the warnings' client-side latencies, in ms.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LatencySummary {
    pub warnings: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
}

pub fn summarize<'a>(warnings: impl IntoIterator<Item = &'a ReceivedWarning>) -> LatencySummary {
    let mut v: Vec<f64> = warnings.into_iter().map(|w| w.latency_ms).collect();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return LatencySummary::default();
    }
    // Nearest rank.
    let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    LatencySummary {
        warnings: v.len(),
        p50_ms: rank(0.5),
        p95_ms: rank(0.95),
        max_ms: *v.last().expect("non-empty"),
    }
}
