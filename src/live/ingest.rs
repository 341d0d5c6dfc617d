//! The PBX WebSocket (FreeSWITCH `mod_audio_fork` / `mod_audio_stream` as they are): one text
//! frame of metadata JSON, then binary audio frames, then close. Warnings of the call are echoed
//! back as text frames (mod_audio_fork raises them as events in the dial plan).
//! docs/live-protocol.md is the specification.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use serde::Deserialize;

use super::auth::Identity;
use super::call::{CallStart, IngestError};
use super::config::{IDLE_TIMEOUT, METADATA_TIMEOUT};
use super::engine::{Engine, LiveCall};
use super::hub::Subscriber;
use super::state::AppState;
use crate::audio::Role;
use crate::audio::frames::FrameEncoding;
use crate::store::{EndReason, IngestProtocol};

/// WebSocket close codes callqc sends (4000–4999 are the application's).
pub mod close {
    /// The metadata or a frame is malformed.
    pub const BAD_DATA: u16 = 1007;
    /// Token missing or wrong.
    pub const UNAUTHORIZED: u16 = 4401;
    /// Token valid but not allowed this.
    pub const FORBIDDEN: u16 = 4403;
    /// The same call id is already streaming.
    pub const CONFLICT: u16 = 4409;
    /// callqc is stopping.
    pub const GOING_AWAY: u16 = 1001;
}

/// The metadata text frame. Unknown keys are ignored (dial plans pass what they like);
/// camelCase spellings are accepted too.
#[derive(Debug, Deserialize)]
pub struct Metadata {
    #[serde(alias = "callId", alias = "call_uuid", alias = "uuid")]
    pub call_id: Option<String>,
    #[serde(alias = "agentId")]
    pub agent_id: Option<String>,
    #[serde(alias = "sampleRate")]
    pub sample_rate: Option<u32>,
    pub channels: Option<u32>,
    #[serde(alias = "agentChannel")]
    pub agent_channel: Option<u32>,
    pub encoding: Option<String>,
    pub token: Option<String>,
}

/// Parse and check the metadata frame: the call it announces and the token it carries.
pub fn parse_metadata(text: &str, peer: &str) -> Result<(CallStart, Option<String>), IngestError> {
    let bad = |m: String| IngestError::Metadata(m);
    let m: Metadata = serde_json::from_str(text)
        .map_err(|e| bad(format!("not the expected JSON object: {e}")))?;
    let call_id = m.call_id.ok_or_else(|| bad("call_id is missing".into()))?;
    let agent_id = m
        .agent_id
        .ok_or_else(|| bad("agent_id is missing".into()))?;
    let sample_rate = m
        .sample_rate
        .ok_or_else(|| bad("sample_rate is missing".into()))?;
    if !matches!(sample_rate, 8000 | 16000) {
        return Err(bad(format!(
            "sample_rate {sample_rate}: 8000 or 16000 expected"
        )));
    }
    let encoding = match m
        .encoding
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("L16") | Some("LINEAR16") | Some("PCM") => FrameEncoding::L16,
        Some("PCMU") | Some("ULAW") | Some("MULAW") => FrameEncoding::Pcmu,
        Some("PCMA") | Some("ALAW") => FrameEncoding::Pcma,
        Some(other) => {
            return Err(bad(format!(
                "unknown encoding {other:?}: L16, PCMU or PCMA expected"
            )));
        }
    };
    let roles = match (m.channels.unwrap_or(1), m.agent_channel.unwrap_or(0)) {
        // One channel is both parties mixed, as a mono recording is.
        (1, _) => vec![Role::Mixed],
        (2, 0) => vec![Role::Agent, Role::Caller],
        (2, 1) => vec![Role::Caller, Role::Agent],
        (2, c) => return Err(bad(format!("agent_channel {c}: 0 or 1 expected"))),
        (n, _) => return Err(bad(format!("channels {n}: 1 or 2 expected"))),
    };
    let start = CallStart {
        call_id,
        agent_id,
        roles,
        sample_rate,
        encoding,
        protocol: IngestProtocol::WebSocket,
        peer: peer.to_string(),
    };
    start.validate()?;
    Ok((start, m.token))
}

/// Bytes of interleaved frames → per-channel samples, keeping a partial sample frame for the
/// next message (a PBX may split frames anywhere).
#[derive(Debug, Default)]
pub struct Deinterleaver {
    carry: Vec<u8>,
}

impl Deinterleaver {
    pub fn push(
        &mut self,
        encoding: FrameEncoding,
        channels: usize,
        bytes: &[u8],
    ) -> Vec<Vec<i16>> {
        let frame = encoding.bytes_per_sample() * channels.max(1);
        self.carry.extend_from_slice(bytes);
        let whole = self.carry.len() / frame * frame;
        let pcm = encoding.decode_i16(&self.carry[..whole]);
        self.carry.drain(..whole);
        let mut out = vec![Vec::with_capacity(pcm.len() / channels.max(1)); channels.max(1)];
        for (i, s) in pcm.into_iter().enumerate() {
            out[i % channels.max(1)].push(s);
        }
        out
    }

    /// Bytes left over that do not make a whole sample frame.
    pub fn leftover(&self) -> usize {
        self.carry.len()
    }
}

/// How long callqc waits for the peer's half of a close handshake before it drops the TCP
/// connection anyway.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Close a connection the server ends: a close frame with `code`, then the peer's answering
/// close frame awaited (RFC 6455 §5.5.1), then the TCP connection closed.
async fn close_with(mut socket: WebSocket, code: u16, reason: String) {
    // A close reason is at most 123 bytes, cut on a character boundary.
    let mut reason = reason;
    while reason.len() > 123 {
        reason.pop();
    }
    if socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await
        .is_ok()
    {
        finish_close(&mut socket).await;
    }
}

/// Complete a close handshake: after the peer's close frame, the next read sends the echo that
/// the WebSocket layer queued for it; after ours, reading ends at the peer's answer. Frames
/// that still come are read and dropped; at most [`CLOSE_TIMEOUT`].
async fn finish_close(socket: &mut WebSocket) {
    let deadline = tokio::time::Instant::now() + CLOSE_TIMEOUT;
    while let Ok(Some(Ok(_))) = tokio::time::timeout_at(deadline, socket.recv()).await {}
}

/// One PBX connection, from the metadata to the end of the call.
pub async fn pbx_connection(
    state: AppState,
    mut socket: WebSocket,
    peer: SocketAddr,
    header_identity: Option<Identity>,
) {
    let peer_s = peer.to_string();
    let first = tokio::time::timeout(METADATA_TIMEOUT, socket.recv()).await;
    let text = match first {
        Ok(Some(Ok(Message::Text(t)))) => t.to_string(),
        Ok(Some(Ok(_))) => {
            tracing::warn!("ingest {peer_s}: the first frame must be the metadata JSON (text)");
            return close_with(
                socket,
                close::BAD_DATA,
                "metadata: first frame must be text JSON".into(),
            )
            .await;
        }
        Err(_) => {
            tracing::warn!("ingest {peer_s}: no metadata within {METADATA_TIMEOUT:?}");
            return close_with(socket, close::BAD_DATA, "metadata: none received".into()).await;
        }
        Ok(_) => return,
    };
    let (start, token) = match parse_metadata(&text, &peer_s) {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!("ingest {peer_s}: {e}");
            return close_with(socket, close::BAD_DATA, e.to_string()).await;
        }
    };
    let identity = header_identity.or_else(|| token.and_then(|t| state.tokens.identify(&t)));
    match identity {
        Some(Identity::Pbx(_)) => {}
        Some(other) => {
            tracing::warn!("ingest {peer_s}: {other} may not stream audio");
            return close_with(
                socket,
                close::FORBIDDEN,
                "this token may not stream audio".into(),
            )
            .await;
        }
        None => {
            tracing::warn!("ingest {peer_s}: missing or unknown ingest token");
            return close_with(
                socket,
                close::UNAUTHORIZED,
                "missing or unknown ingest token".into(),
            )
            .await;
        }
    }
    let engine = state.engine.clone();
    let call = match engine.begin(start) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("ingest {peer_s}: {e}");
            let code = match e {
                IngestError::Duplicate(_) => close::CONFLICT,
                IngestError::ShuttingDown => close::GOING_AWAY,
                _ => close::BAD_DATA,
            };
            return close_with(socket, code, e.to_string()).await;
        }
    };
    let link = engine.hub.subscribe(Subscriber::Link {
        call_id: call.start.call_id.clone(),
    });
    let _ = socket
        .send(Message::Text(
            serde_json::json!({"type": "accepted", "call_id": call.start.call_id})
                .to_string()
                .into(),
        ))
        .await;
    let (reason, error) = stream_audio(&state, &engine, &call, &mut socket, &link).await;
    engine.hub.unsubscribe(&link);
    if let Some(e) = &error {
        tracing::warn!("ingest {peer_s}: {e}");
    }
    engine.end(&call, reason, error.clone());
    match reason {
        // The PBX closed: echo its close frame.
        EndReason::Hangup => finish_close(&mut socket).await,
        EndReason::Shutdown => {
            close_with(socket, close::GOING_AWAY, error.unwrap_or_default()).await
        }
        EndReason::Error => close_with(socket, close::BAD_DATA, error.unwrap_or_default()).await,
        // The connection is gone: nobody to close it with.
        EndReason::Vanished => {}
    }
}

async fn stream_audio(
    state: &AppState,
    engine: &Arc<Engine>,
    call: &Arc<LiveCall>,
    socket: &mut WebSocket,
    link: &Arc<super::hub::Client>,
) -> (EndReason, Option<String>) {
    let channels = call.start.roles.len();
    let encoding = call.start.encoding;
    let mut frames = Deinterleaver::default();
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            msg = tokio::time::timeout(IDLE_TIMEOUT, socket.recv()) => match msg {
                Err(_) => return (EndReason::Vanished, Some(format!("call {}: no frame for {IDLE_TIMEOUT:?}", call.start.call_id))),
                Ok(None) => return (EndReason::Vanished, None),
                Ok(Some(Err(e))) => return (EndReason::Vanished, Some(format!("call {}: connection lost: {e}", call.start.call_id))),
                Ok(Some(Ok(Message::Close(_)))) => {
                    if frames.leftover() > 0 {
                        tracing::warn!("call {}: {} trailing bytes are not a whole sample", call.start.call_id, frames.leftover());
                    }
                    return (EndReason::Hangup, None);
                }
                Ok(Some(Ok(Message::Binary(bytes)))) => {
                    for (c, pcm) in frames.push(encoding, channels, &bytes).into_iter().enumerate() {
                        if let Err(e) = engine.push(call, c, &pcm) {
                            return (EndReason::Error, Some(e.to_string()));
                        }
                    }
                }
                // Metadata updates and keep-alives carry nothing callqc uses.
                Ok(Some(Ok(_))) => {}
            },
            out = link.next() => {
                if let Some(json) = out
                    && socket.send(Message::Text(json.to_string().into())).await.is_err() {
                        return (EndReason::Vanished, None);
                    }
            },
            _ = shutdown.changed() => return (EndReason::Shutdown, Some("callqc is stopping".into())),
        }
    }
}

/// A desktop page's first message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    token: String,
    /// Watch one agent only (supervisors); an agent may only name themself.
    #[serde(default)]
    agent_id: Option<String>,
}

/// A desktop page (agent or supervisor): sign in with a token, then receive what it may see.
pub async fn page_connection(state: AppState, mut socket: WebSocket, peer: SocketAddr) {
    let first = tokio::time::timeout(METADATA_TIMEOUT, socket.recv()).await;
    let Ok(Some(Ok(Message::Text(text)))) = first else {
        return close_with(
            socket,
            close::UNAUTHORIZED,
            "sign in first: {\"token\": …}".into(),
        )
        .await;
    };
    let Ok(sign_in) = serde_json::from_str::<SignIn>(&text) else {
        return close_with(
            socket,
            close::BAD_DATA,
            "sign in with {\"token\": …}".into(),
        )
        .await;
    };
    let identity = match state.tokens.identify(&sign_in.token) {
        Some(who @ (Identity::Agent(_) | Identity::Supervisor(_))) => who,
        Some(_) => {
            return close_with(
                socket,
                close::FORBIDDEN,
                "this token has no desktop page".into(),
            )
            .await;
        }
        None => {
            tracing::warn!("page {peer}: unknown token");
            return close_with(socket, close::UNAUTHORIZED, "unknown token".into()).await;
        }
    };
    if let Some(wanted) = &sign_in.agent_id
        && !identity.may_watch(wanted)
    {
        tracing::warn!("page {peer}: {identity} asked for agent {wanted}'s warnings: refused");
        return close_with(
            socket,
            close::FORBIDDEN,
            format!("{identity} may not watch agent {wanted}"),
        )
        .await;
    }
    let hub = state.engine.hub.clone();
    let client = hub.subscribe(Subscriber::Page(identity.clone()));
    let (role, agent_id) = match &identity {
        Identity::Agent(a) => ("agent", Some(a.clone())),
        _ => ("supervisor", None),
    };
    hub.send_to(
        &client,
        &super::hub::LiveMessage::Hello {
            who: identity.to_string(),
            role,
            agent_id: agent_id.clone(),
        },
    );
    if let Some(a) = &agent_id {
        // The agent's call in progress, if any (the page may open mid-call).
        for c in hub.calls().into_iter().filter(|c| &c.agent_id == a) {
            hub.send_to(
                &client,
                &super::hub::LiveMessage::CallStarted {
                    call_id: c.call_id,
                    agent_id: c.agent_id,
                    started_ms: c.started_ms,
                },
            );
        }
    } else {
        hub.send_to(&client, &hub.snapshot());
    }
    let mut shutdown = state.shutdown.clone();
    let end = loop {
        tokio::select! {
            out = client.next() => match out {
                Some(json) => if socket.send(Message::Text(json.to_string().into())).await.is_err() { break PageEnd::Gone },
                None => break PageEnd::Stopping,
            },
            msg = socket.recv() => match msg {
                None | Some(Err(_)) => break PageEnd::Gone,
                Some(Ok(Message::Close(_))) => break PageEnd::Closed,
                Some(Ok(_)) => {}
            },
            _ = shutdown.changed() => break PageEnd::Stopping,
        }
    };
    hub.unsubscribe(&client);
    match end {
        PageEnd::Closed => finish_close(&mut socket).await,
        PageEnd::Stopping => {
            close_with(socket, close::GOING_AWAY, "callqc is stopping".into()).await;
        }
        PageEnd::Gone => {}
    }
}

/// Why a page's connection ends.
enum PageEnd {
    /// The page sent a close frame.
    Closed,
    /// The server is stopping.
    Stopping,
    /// The connection broke.
    Gone,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_of_mod_audio_fork_parses_and_bad_metadata_says_what_is_wrong() {
        let (s, token) = parse_metadata(
            r#"{"callId":"c-1","agentId":"1001","sampleRate":8000,"channels":2,"agent_channel":1,"encoding":"PCMU","token":"t","extra":{"x":1}}"#,
            "peer",
        )
        .unwrap();
        assert_eq!(s.roles, vec![Role::Caller, Role::Agent]);
        assert_eq!(s.encoding, FrameEncoding::Pcmu);
        assert_eq!(token.as_deref(), Some("t"));
        for (text, says) in [
            ("not json", "JSON"),
            (r#"{"agent_id":"1","sample_rate":8000}"#, "call_id"),
            (r#"{"call_id":"c","sample_rate":8000}"#, "agent_id"),
            (r#"{"call_id":"c","agent_id":"1"}"#, "sample_rate"),
            (
                r#"{"call_id":"c","agent_id":"1","sample_rate":44100}"#,
                "44100",
            ),
            (
                r#"{"call_id":"c","agent_id":"1","sample_rate":8000,"encoding":"opus"}"#,
                "OPUS",
            ),
            (
                r#"{"call_id":"c","agent_id":"1","sample_rate":8000,"channels":3}"#,
                "channels 3",
            ),
            (
                r#"{"call_id":"../../etc","agent_id":"1","sample_rate":8000}"#,
                "call_id",
            ),
            (r#"[1,2]"#, "JSON"),
        ] {
            let e = parse_metadata(text, "peer").unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn frames_split_anywhere_are_deinterleaved_whole() {
        let mut d = Deinterleaver::default();
        // Two stereo sample frames (L, R) = (1, -1), (2, -2) split after 3 bytes.
        let bytes: Vec<u8> = [1i16, -1, 2, -2]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let a = d.push(FrameEncoding::L16, 2, &bytes[..3]);
        assert!(a.iter().all(|c| c.is_empty()));
        assert_eq!(d.leftover(), 3);
        let b = d.push(FrameEncoding::L16, 2, &bytes[3..]);
        assert_eq!(b, vec![vec![1, 2], vec![-1, -2]]);
        assert_eq!(d.leftover(), 0);
    }
}
