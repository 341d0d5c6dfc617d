//! Asterisk AudioSocket: one TCP connection per channel of a call. Each message is
//! `kind: u8, length: u16 big-endian, payload`; the first is the stream's UUID (0x01), then
//! signed-linear audio (0x10 = 8 kHz, 0x11 = 12 kHz, 0x12 = 16 kHz … as Asterisk's current
//! documentation lists them), DTMF (0x03), hang-up (0x00) or an error (0xff). The protocol has
//! no authentication: a PBX first registers the call's UUIDs over HTTP with its ingest token
//! (`POST /api/audiosocket/calls`), and only registered UUIDs are accepted.
//! docs/live-protocol.md is the specification.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::sync::lock;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

use super::call::{CallStart, IngestError};
use super::engine::{Engine, LiveCall};
use crate::audio::Role;
use crate::audio::frames::FrameEncoding;
use crate::store::{EndReason, IngestProtocol};

/// One AudioSocket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsMessage<'a> {
    /// 0x00: the stream is over.
    Hangup,
    /// 0x01: the stream's UUID.
    Uuid([u8; 16]),
    /// 0x03: a DTMF digit.
    Dtmf(u8),
    /// 0x10–0x16: signed 16-bit little-endian mono PCM at `rate`.
    Audio { rate: u32, pcm: &'a [u8] },
    /// 0xff: the PBX reports an error (Asterisk: 0x01 hang-up, 0x02 frame forwarding, 0x04 memory).
    Error(Option<u8>),
}

/// Decode one message's kind and payload. Never panics, whatever the bytes.
pub fn decode(kind: u8, payload: &[u8]) -> Result<AsMessage<'_>, String> {
    let rate = match kind {
        0x10 => Some(8000),
        0x11 => Some(12000),
        0x12 => Some(16000),
        0x13 => Some(24000),
        0x14 => Some(32000),
        0x15 => Some(44100),
        0x16 => Some(48000),
        _ => None,
    };
    if let Some(rate) = rate {
        if !payload.len().is_multiple_of(2) {
            return Err(format!(
                "audio message of {} bytes: not whole 16-bit samples",
                payload.len()
            ));
        }
        return Ok(AsMessage::Audio { rate, pcm: payload });
    }
    match kind {
        0x00 => Ok(AsMessage::Hangup),
        0x01 => payload
            .try_into()
            .map(AsMessage::Uuid)
            .map_err(|_| format!("UUID message of {} bytes, 16 expected", payload.len())),
        0x03 => match payload {
            [d] => Ok(AsMessage::Dtmf(*d)),
            _ => Err(format!(
                "DTMF message of {} bytes, 1 expected",
                payload.len()
            )),
        },
        0xff => Ok(AsMessage::Error(payload.first().copied())),
        other => Err(format!("unknown message kind 0x{other:02x}")),
    }
}

/// The largest payload a message can carry (its length is a u16).
pub const MAX_PAYLOAD: usize = u16::MAX as usize;

/// Encode a message (for clients: `simulate` and the tests).
pub fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len().min(u16::MAX as usize);
    let mut out = Vec::with_capacity(3 + len);
    out.push(kind);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&payload[..len]);
    out
}

/// The message kind carrying audio at `rate`, if AudioSocket has one.
pub fn audio_kind(rate: u32) -> Option<u8> {
    match rate {
        8000 => Some(0x10),
        12000 => Some(0x11),
        16000 => Some(0x12),
        24000 => Some(0x13),
        32000 => Some(0x14),
        44100 => Some(0x15),
        48000 => Some(0x16),
        _ => None,
    }
}

/// Parse a UUID's text form (8-4-4-4-12 hex digits; dashes optional).
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = s.bytes().filter(|&b| b != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

pub fn format_uuid(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// `POST /api/audiosocket/calls`: the UUIDs a PBX will connect with for one call.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub call_id: String,
    pub agent_id: String,
    /// The stream carrying the agent's voice.
    pub agent_uuid: String,
    /// The stream carrying the caller's voice, if the PBX sends one.
    #[serde(default)]
    pub caller_uuid: Option<String>,
}

/// A registered call: its legs share one live call once audio flows.
struct CallLegs {
    call_id: String,
    agent_id: String,
    roles: Vec<Role>,
    live: Option<Arc<LiveCall>>,
    rate: Option<u32>,
    /// Per leg: connected, ended.
    connected: Vec<bool>,
    ended: Vec<bool>,
    worst: Option<(EndReason, Option<String>)>,
    registered: Instant,
}

/// A registered call and the channel one of its UUIDs carries.
type Leg = (Arc<Mutex<CallLegs>>, usize);

/// UUID → (call, channel).
#[derive(Default)]
pub struct Registry {
    legs: Mutex<HashMap<[u8; 16], Leg>>,
}

/// A registration nobody connected to is forgotten after this long.
const REGISTRATION_TTL: Duration = Duration::from_secs(600);

impl Registry {
    pub fn register(&self, r: Registration, peer: &str) -> Result<(), IngestError> {
        let bad = |m: String| IngestError::Metadata(m);
        let agent = parse_uuid(&r.agent_uuid)
            .ok_or_else(|| bad(format!("agent_uuid {:?} is not a UUID", r.agent_uuid)))?;
        let caller = match &r.caller_uuid {
            Some(u) => {
                Some(parse_uuid(u).ok_or_else(|| bad(format!("caller_uuid {u:?} is not a UUID")))?)
            }
            None => None,
        };
        if caller == Some(agent) {
            return Err(bad("agent_uuid and caller_uuid are the same stream".into()));
        }
        let roles = if caller.is_some() {
            vec![Role::Agent, Role::Caller]
        } else {
            // One stream is analysed as a mono recording is.
            vec![Role::Mixed]
        };
        // The same checks as a WebSocket call's metadata (the call id becomes a file name).
        CallStart {
            call_id: r.call_id.clone(),
            agent_id: r.agent_id.clone(),
            roles: roles.clone(),
            sample_rate: 8000,
            encoding: FrameEncoding::L16,
            protocol: IngestProtocol::AudioSocket,
            peer: peer.to_string(),
        }
        .validate()?;
        let mut legs = lock(&self.legs);
        legs.retain(|_, (c, _)| {
            let c = lock(c);
            c.connected.iter().any(|&x| x) || c.registered.elapsed() < REGISTRATION_TTL
        });
        for u in [Some(agent), caller].into_iter().flatten() {
            if legs.contains_key(&u) {
                return Err(bad(format!(
                    "stream {} is already registered",
                    format_uuid(&u)
                )));
            }
        }
        let n = roles.len();
        let call = Arc::new(Mutex::new(CallLegs {
            call_id: r.call_id,
            agent_id: r.agent_id,
            roles,
            live: None,
            rate: None,
            connected: vec![false; n],
            ended: vec![false; n],
            worst: None,
            registered: Instant::now(),
        }));
        legs.insert(agent, (call.clone(), 0));
        if let Some(c) = caller {
            legs.insert(c, (call, 1));
        }
        Ok(())
    }

    fn take(&self, uuid: &[u8; 16]) -> Option<Leg> {
        lock(&self.legs).get(uuid).cloned()
    }

    fn forget(&self, call: &Arc<Mutex<CallLegs>>) {
        lock(&self.legs).retain(|_, (c, _)| !Arc::ptr_eq(c, call));
    }
}

/// Accept AudioSocket connections until shutdown.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    registry: Arc<Registry>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let engine = engine.clone();
                    let registry = registry.clone();
                    let shutdown = shutdown.clone();
                    tokio::spawn(async move {
                        leg(stream, peer.to_string(), engine, registry, shutdown).await;
                    });
                }
                Err(e) => tracing::warn!("audiosocket: accept failed: {e}"),
            },
            _ = shutdown.changed() => return,
        }
    }
}

/// How a leg's stream ended.
enum LegEnd {
    Done(EndReason, Option<String>),
}

/// One leg (channel) of a call.
async fn leg(
    mut stream: TcpStream,
    peer: String,
    engine: Arc<Engine>,
    registry: Arc<Registry>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut buf = Box::new([0u8; MAX_PAYLOAD]);
    // The UUID first.
    let uuid = match read_message(&mut stream, &mut buf).await {
        Ok(Some((0x01, n))) => match decode(0x01, &buf[..n]) {
            Ok(AsMessage::Uuid(u)) => u,
            Ok(_) | Err(_) => {
                tracing::warn!("audiosocket {peer}: malformed UUID message");
                return;
            }
        },
        Ok(Some((kind, _))) => {
            tracing::warn!(
                "audiosocket {peer}: first message is 0x{kind:02x}, the UUID (0x01) expected"
            );
            return;
        }
        Ok(None) => return,
        Err(e) => {
            tracing::warn!("audiosocket {peer}: {e}");
            return;
        }
    };
    let Some((call, channel)) = registry.take(&uuid) else {
        tracing::warn!(
            "audiosocket {peer}: stream {} is not registered (POST /api/audiosocket/calls first)",
            format_uuid(&uuid)
        );
        return;
    };
    {
        let mut c = lock(&call);
        if c.connected[channel] {
            tracing::warn!(
                "audiosocket {peer}: stream {} is already connected",
                format_uuid(&uuid)
            );
            return;
        }
        c.connected[channel] = true;
    }
    let LegEnd::Done(reason, error) = read_leg(
        &mut stream,
        &mut buf,
        &peer,
        &engine,
        &call,
        channel,
        &mut shutdown,
    )
    .await;
    if let Some(e) = &error {
        tracing::warn!("audiosocket {peer}: {e}");
    }
    // The call ends when every leg that connected has ended.
    let finished = {
        let mut c = lock(&call);
        c.ended[channel] = true;
        let rank = |r: EndReason| match r {
            EndReason::Hangup => 0,
            EndReason::Shutdown => 1,
            EndReason::Error => 2,
            EndReason::Vanished => 3,
        };
        if c.worst
            .as_ref()
            .is_none_or(|(w, _)| rank(reason) > rank(*w))
        {
            c.worst = Some((reason, error));
        }
        let all = c
            .connected
            .iter()
            .zip(&c.ended)
            .all(|(&conn, &end)| !conn || end);
        if all {
            Some((c.live.clone(), c.worst.clone()))
        } else {
            None
        }
    };
    if let Some((live, worst)) = finished {
        registry.forget(&call);
        if let Some(live) = live {
            let (reason, error) = worst.unwrap_or((EndReason::Hangup, None));
            engine.end(&live, reason, error);
        }
    }
}

/// Read one message's kind and payload (into `buf`, which must hold [`MAX_PAYLOAD`] bytes):
/// `Ok(None)` at a clean end of stream before a header. Generic over the reader so the fuzzer
/// feeds it bytes without a socket.
pub async fn read_message<R: tokio::io::AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut [u8; MAX_PAYLOAD],
) -> std::io::Result<Option<(u8, usize)>> {
    let mut header = [0u8; 3];
    match stream.read_exact(&mut header[..1]).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    stream.read_exact(&mut header[1..]).await?;
    let len = u16::from_be_bytes([header[1], header[2]]) as usize;
    stream.read_exact(&mut buf[..len]).await?;
    Ok(Some((header[0], len)))
}

async fn read_leg(
    stream: &mut TcpStream,
    buf: &mut [u8; MAX_PAYLOAD],
    peer: &str,
    engine: &Arc<Engine>,
    call: &Arc<Mutex<CallLegs>>,
    channel: usize,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> LegEnd {
    let mut first_audio = true;
    loop {
        let msg = tokio::select! {
            m = tokio::time::timeout(super::config::IDLE_TIMEOUT, read_message(stream, buf)) => m,
            _ = shutdown.changed() => return LegEnd::Done(EndReason::Shutdown, None),
        };
        let (kind, n) = match msg {
            Err(_) => {
                return LegEnd::Done(
                    EndReason::Vanished,
                    Some(format!("no message for {:?}", super::config::IDLE_TIMEOUT)),
                );
            }
            // "Socket closure is also sufficient" to end a stream.
            Ok(Ok(None)) => return LegEnd::Done(EndReason::Hangup, None),
            Ok(Err(e)) => {
                return LegEnd::Done(EndReason::Vanished, Some(format!("connection lost: {e}")));
            }
            Ok(Ok(Some(m))) => m,
        };
        match decode(kind, &buf[..n]) {
            Err(e) => return LegEnd::Done(EndReason::Error, Some(e)),
            Ok(AsMessage::Hangup) => return LegEnd::Done(EndReason::Hangup, None),
            Ok(AsMessage::Error(code)) => {
                let what = match code {
                    Some(0x01) => "hang-up".to_string(),
                    Some(0x02) => "frame forwarding".to_string(),
                    Some(0x04) => "memory".to_string(),
                    Some(c) => format!("code 0x{c:02x}"),
                    None => "no code".to_string(),
                };
                return LegEnd::Done(
                    EndReason::Error,
                    Some(format!("the PBX reports an error ({what})")),
                );
            }
            Ok(AsMessage::Uuid(_)) => {
                return LegEnd::Done(EndReason::Error, Some("a second UUID message".into()));
            }
            Ok(AsMessage::Dtmf(d)) => {
                tracing::debug!("audiosocket {peer}: DTMF {:?}", char::from(d));
            }
            Ok(AsMessage::Audio { rate, pcm }) => {
                let live = match live_call(engine, call, rate, peer) {
                    Ok(l) => l,
                    Err(e) => return LegEnd::Done(EndReason::Error, Some(e.to_string())),
                };
                if first_audio {
                    first_audio = false;
                    if let Err(e) = engine.align(&live, channel) {
                        return LegEnd::Done(EndReason::Error, Some(e.to_string()));
                    }
                }
                let samples = FrameEncoding::L16.decode_i16(pcm);
                if let Err(e) = engine.push(&live, channel, &samples) {
                    return LegEnd::Done(EndReason::Error, Some(e.to_string()));
                }
            }
        }
    }
}

/// The call's live session, begun by the first audio of either leg (the rate is known then).
fn live_call(
    engine: &Arc<Engine>,
    call: &Arc<Mutex<CallLegs>>,
    rate: u32,
    peer: &str,
) -> Result<Arc<LiveCall>, IngestError> {
    let mut c = lock(call);
    if let Some(r) = c.rate
        && r != rate
    {
        return Err(IngestError::Frame {
            call: c.call_id.clone(),
            message: format!("audio at {rate} Hz, but the call's other audio is {r} Hz"),
        });
    }
    if let Some(l) = &c.live {
        return Ok(l.clone());
    }
    let live = engine.begin(CallStart {
        call_id: c.call_id.clone(),
        agent_id: c.agent_id.clone(),
        roles: c.roles.clone(),
        sample_rate: rate,
        encoding: FrameEncoding::L16,
        protocol: IngestProtocol::AudioSocket,
        peer: peer.to_string(),
    })?;
    c.rate = Some(rate);
    c.live = Some(live.clone());
    Ok(live)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_decode_and_garbage_is_an_error_not_a_panic() {
        assert_eq!(decode(0x00, &[]), Ok(AsMessage::Hangup));
        assert_eq!(decode(0x01, &[7; 16]), Ok(AsMessage::Uuid([7; 16])));
        assert!(decode(0x01, &[7; 15]).is_err());
        assert_eq!(decode(0x03, b"5"), Ok(AsMessage::Dtmf(b'5')));
        assert_eq!(
            decode(0x10, &[0; 320]),
            Ok(AsMessage::Audio {
                rate: 8000,
                pcm: &[0; 320]
            })
        );
        assert_eq!(
            decode(0x12, &[0; 640]),
            Ok(AsMessage::Audio {
                rate: 16000,
                pcm: &[0; 640]
            })
        );
        assert!(decode(0x10, &[0; 3]).is_err());
        assert_eq!(decode(0xff, &[0x01]), Ok(AsMessage::Error(Some(1))));
        assert!(decode(0x42, &[]).unwrap_err().contains("0x42"));
        for kind in 0..=255u8 {
            for len in [0usize, 1, 2, 15, 16, 17] {
                let _ = decode(kind, &vec![0xAB; len]);
            }
        }
        let m = encode(0x10, &[1, 2]);
        assert_eq!(m, vec![0x10, 0, 2, 1, 2]);
    }

    #[test]
    fn uuids_round_trip() {
        let u = parse_uuid("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0").unwrap();
        assert_eq!(format_uuid(&u), "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
        assert!(parse_uuid("nope").is_none());
        assert!(parse_uuid("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1fz").is_none());
    }
}
