//! `callqc serve`: live calls from the PBX, warnings on the agent's desktop within seconds.
//!
//! ```text
//! PBX ── WebSocket /ingest (mod_audio_fork) ──┐
//!     └─ AudioSocket TCP (+ POST /api/audiosocket/calls) ─┤
//!                                                 engine::Engine ─ CallSession (Live) per call on
//!                                                 │                one stream worker; whisper on
//!                                                 │                decoding workers
//!                                                 ├─ hub::Hub ─▶ /events ─▶ agent page (own calls only)
//!                                                 │                       └▶ supervisor page (all)
//!                                                 └─ call end: WAV + final pass as `batch` ─▶ store
//! ```
//!
//! - [`config`]: `callqc.toml` (listen addresses, models, rubric, recordings, tokens).
//! - [`auth`]: tokens → [`auth::Identity`], compared in constant time.
//! - [`call`]: a call as its PBX announces it, its checks, why a stream is refused.
//! - [`engine`]: calls in progress, the stream and decoding workers, shedding, the final pass,
//!   alerts.
//! - [`recording`]: each call's WAV, written as its audio arrives; what a killed server left,
//!   recovered at the next start.
//! - [`hub`]: per-subscriber bounded queues; who sees what.
//! - [`ingest`]: the PBX WebSocket and the desktop pages' WebSocket.
//! - [`audiosocket`]: Asterisk AudioSocket messages and listener.
//! - [`state`]: what every HTTP handler sees (engine, tokens, registry, the trainer store).
//! - [`server`]: the axum router and the server's start and stop.
//! - [`simulate`]: a PBX in a box (`callqc simulate`), for trying, testing and benchmarking.
//! - [`pages`]: the agent and supervisor pages.
//!
//! docs/live-protocol.md specifies the wire protocols.

pub mod audiosocket;
pub mod auth;
pub mod call;
pub mod config;
pub mod engine;
pub mod final_pass;
pub mod hub;
pub mod ingest;
pub mod pages;
pub mod recording;
pub mod server;
pub mod simulate;
pub mod sink;
pub mod state;
pub mod trainer;
