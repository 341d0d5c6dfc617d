//! What every HTTP handler of `callqc serve` sees ([`AppState`]), the trainer pages' own store
//! connection, and the JSON shape of a refused request.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

use super::audiosocket::Registry;
use super::auth::Tokens;
use super::engine::Engine;
use crate::store::Store;

/// What every handler sees.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub tokens: Arc<Tokens>,
    pub registry: Arc<Registry>,
    pub trainer: Arc<TrainerStore>,
    pub shutdown: watch::Receiver<bool>,
}

/// The store the trainer pages read and write (its own connection: SQLite in WAL mode lets it
/// read while the final pass writes).
pub struct TrainerStore {
    pub(super) store: Mutex<Store>,
    /// Seconds around a finding in its clip.
    pub clip_margin_s: f64,
    /// Mask personal data in what the pages show, and mute it in clips.
    pub mask: bool,
}

impl TrainerStore {
    pub fn open(db: &std::path::Path, mask: bool) -> crate::Result<TrainerStore> {
        Ok(TrainerStore {
            store: Mutex::new(Store::open(db)?),
            clip_margin_s: 1.0,
            mask,
        })
    }
}

/// A refused request as JSON: `{"error": message}` with its status.
pub(super) fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({"error": message}))).into_response()
}
