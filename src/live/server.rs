//! The HTTP side of `callqc serve` (axum): pages, the PBX and page WebSockets, the AudioSocket
//! registration, and a small JSON API for supervisors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::audiosocket::{self, Registration, Registry};
use super::auth::{Identity, bearer};
use super::config::ServeConfig;
use super::engine::{Engine, EngineConfig};
use super::hub::Hub;
use super::ingest;
use super::state::{AppState, TrainerStore, refuse};

/// The largest WebSocket message accepted from a PBX (a 20 ms stereo L16 frame at 16 kHz is
/// 1,280 bytes; a second of it is 64 KB).
const MAX_MESSAGE: usize = 1 << 20;

/// A running server.
pub struct Server {
    pub http: SocketAddr,
    pub audiosocket: Option<SocketAddr>,
    pub engine: Arc<Engine>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Load the models, open the store, bind the listeners (port 0 picks a free one).
    pub async fn start(config: &ServeConfig, engine: EngineConfig) -> crate::Result<Server> {
        steady_heap();
        let agents: Vec<String> = {
            let mut a = Vec::new();
            for name in config.tokens.names() {
                if let Identity::Agent(id) = name {
                    a.push(id);
                }
            }
            a
        };
        let hub = Arc::new(Hub::new(agents, config.server.client_queue));
        // Opening a store blocks (a PostgreSQL client runs its own small runtime): off the
        // async threads, like every store call of the pages.
        let (db, mask) = (engine.db.clone(), config.server.mask_personal_data);
        let trainer = Arc::new(
            tokio::task::spawn_blocking(move || TrainerStore::open(&db, mask))
                .await
                .map_err(|source| crate::Error::StartUp {
                    step: "opening the store",
                    source,
                })??,
        );
        let engine = tokio::task::spawn_blocking(move || Engine::start(engine, hub))
            .await
            .map_err(|source| crate::Error::StartUp {
                step: "starting the engine",
                source,
            })??;
        let (tx, rx) = watch::channel(false);
        let state = AppState {
            engine: engine.clone(),
            tokens: Arc::new(config.tokens.clone()),
            registry: Arc::new(Registry::default()),
            trainer,
            shutdown: rx.clone(),
        };
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| crate::Error::Listen { addr, source })
        };
        let listener = bind(config.server.listen).await?;
        let http = listener
            .local_addr()
            .map_err(|source| crate::Error::Listen {
                addr: config.server.listen,
                source,
            })?;
        let mut tasks = Vec::new();
        let mut audiosocket_addr = None;
        if let Some(addr) = config.server.audiosocket {
            let l = bind(addr).await?;
            audiosocket_addr = Some(
                l.local_addr()
                    .map_err(|source| crate::Error::Listen { addr, source })?,
            );
            tasks.push(tokio::spawn(audiosocket::serve(
                l,
                engine.clone(),
                state.registry.clone(),
                rx.clone(),
            )));
        }
        let app = router(state);
        let mut stop = rx.clone();
        tasks.push(tokio::spawn(async move {
            let served = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = stop.changed().await;
            })
            .await;
            if let Err(e) = served {
                tracing::error!("http server: {e}");
            }
        }));
        Ok(Server {
            http,
            audiosocket: audiosocket_addr,
            engine,
            shutdown: tx,
            tasks,
        })
    }

    /// Stop accepting, end the calls in progress (each is recorded and stored), wait for the
    /// final passes.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        let engine = self.engine.clone();
        let _ = tokio::task::spawn_blocking(move || engine.shutdown()).await;
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/agent") }))
        .route("/agent", get(|| page(super::pages::AGENT)))
        .route("/supervisor", get(|| page(super::pages::SUPERVISOR)))
        .route("/trainer", get(|| page(super::pages::TRAINER)))
        .route("/api/trainer/me", get(super::trainer::whoami))
        .route("/api/trainer/flagged", get(super::trainer::flagged))
        .route("/api/trainer/calls/{id}", get(super::trainer::call))
        .route("/api/trainer/findings/{id}/clip", get(super::trainer::clip))
        .route(
            "/api/trainer/findings/{id}/verdict",
            post(super::trainer::verdict),
        )
        .route("/api/trainer/rules", get(super::trainer::rules))
        .route("/ingest", get(ingest_upgrade))
        .route("/events", get(events_upgrade))
        .route("/api/audiosocket/calls", post(register_audiosocket))
        .route("/api/calls", get(calls))
        .route("/api/stats", get(stats))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}

async fn page(html: &'static str) -> Response {
    let mut r = Html(html).into_response();
    // Pages load nothing from elsewhere and run only their own script.
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; media-src blob:",
        ),
    );
    r
}

async fn ingest_upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let header_identity = bearer(&state.tokens, &headers);
    if headers.contains_key(header::AUTHORIZATION) && header_identity.is_none() {
        tracing::warn!("ingest {peer}: unknown token in the Authorization header");
        return (StatusCode::UNAUTHORIZED, "unknown ingest token\n").into_response();
    }
    ws.protocols(["audio.drachtio.org", "audiostream.drachtio.org"])
        .max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| ingest::pbx_connection(state, socket, peer, header_identity))
}

async fn events_upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.max_message_size(64 * 1024)
        .on_upgrade(move |socket| ingest::page_connection(state, socket, peer))
}

async fn register_audiosocket(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match bearer(&state.tokens, &headers) {
        Some(Identity::Pbx(_)) => {}
        Some(_) => return refuse(StatusCode::FORBIDDEN, "this token may not register calls"),
        None => return refuse(StatusCode::UNAUTHORIZED, "missing or unknown ingest token"),
    }
    let reg: Registration = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &format!("registration: {e}")),
    };
    match state.registry.register(reg, &peer.to_string()) {
        Ok(()) => (StatusCode::CREATED, Json(serde_json::json!({"ok": true}))).into_response(),
        Err(e) => {
            tracing::warn!("audiosocket registration from {peer}: {e}");
            refuse(StatusCode::BAD_REQUEST, &e.to_string())
        }
    }
}

/// `None` for a supervisor's request, else the refusal to send.
fn supervisor_only(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    match bearer(&state.tokens, headers) {
        Some(Identity::Supervisor(_)) => None,
        Some(_) => Some(refuse(StatusCode::FORBIDDEN, "supervisors only")),
        None => Some(refuse(StatusCode::UNAUTHORIZED, "missing or unknown token")),
    }
}

async fn calls(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(r) = supervisor_only(&state, &headers) {
        return r;
    }
    Json(state.engine.hub.calls()).into_response()
}

async fn stats(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(r) = supervisor_only(&state, &headers) {
        return r;
    }
    Json(state.engine.stats()).into_response()
}

/// A server runs for weeks, so its resident memory should follow what it holds. glibc's malloc
/// raises its mmap threshold each time a large block is freed (up to 32 MB), after which blocks of
/// a call's size (recordings, final-pass audio, whisper windows: 0.3–10 MB) come from the heap
/// and stay resident, fragmented, after the call. A fixed threshold keeps every such block in its
/// own mapping, returned to the system when freed. It is set here, by every server (the CLI's and
/// the one the tests and benchmarks start in their own process), not in `main`: the threshold is
/// one process-wide setting, and `mallopt` takes the allocator's lock, so any time before the
/// first call is early enough.
fn steady_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            const MMAP_THRESHOLD: libc::c_int = 256 * 1024;
            // SAFETY: mallopt only changes allocator parameters, under the allocator's own lock.
            let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
            if ok != 1 {
                tracing::warn!("could not fix malloc's mmap threshold; resident memory may drift");
            }
        });
    }
}
