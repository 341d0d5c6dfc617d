//! A real `callqc serve` on loopback ports for the live tests: the real models, a temporary
//! store and recordings folder, known test tokens.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use callqc::live::config::ServeConfig;
use callqc::live::engine::EngineConfig;
use callqc::live::server::Server;
use callqc::live::simulate::{Protocol, SimCall, SimulateOptions};

pub const INGEST: &str = "test-ingest-token-0123456789";
pub const SUPERVISOR: &str = "test-supervisor-token-0123456789";
pub const AGENT_6618: &str = "test-agent-6618-token-0123456789";
pub const AGENT_2051: &str = "test-agent-2051-token-0123456789";
pub const REVIEWER: &str = "test-reviewer-token-0123456789";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn models_dir() -> PathBuf {
    let m = repo().join("models");
    assert!(
        m.join("ggml-base-q8_0.bin").exists() && m.join("silero_vad.onnx").exists(),
        "models are missing: run scripts/setup.sh first"
    );
    m
}

pub struct TestServer {
    pub server: Server,
    pub dir: tempfile::TempDir,
    pub config: ServeConfig,
}

impl TestServer {
    pub fn http(&self) -> String {
        format!("http://{}", self.server.http)
    }

    pub fn db(&self) -> PathBuf {
        self.config.server.db.clone()
    }

    pub fn options(&self, protocol: Protocol, speed: f64) -> SimulateOptions {
        SimulateOptions {
            server: self.http(),
            audiosocket: self.server.audiosocket,
            protocol,
            speed,
            ingest_token: INGEST.into(),
            supervisor_token: Some(SUPERVISOR.into()),
            call_prefix: String::new(),
            max_audio_s: None,
        }
    }

    /// Wait for every ended call's final pass to be stored.
    pub async fn wait_stored(&self) {
        let e = self.server.engine.clone();
        let ok = tokio::task::spawn_blocking(move || e.wait_stored(Duration::from_secs(300)))
            .await
            .unwrap();
        assert!(ok, "final passes still pending after 300 s");
    }
}

/// Start a server; `extra_server` is added to its `[server]` table.
pub async fn start(extra_server: &str) -> TestServer {
    start_in(tempfile::tempdir().unwrap(), extra_server).await
}

/// Start a server in `dir` (its store is `dir/callqc.db`, which may already hold calls).
pub async fn start_in(dir: tempfile::TempDir, extra_server: &str) -> TestServer {
    start_in_db(dir, "callqc.db", extra_server).await
}

/// Write the test configuration `dir/callqc.toml` (store `db`, recordings `dir/recordings`,
/// the test tokens; `extra_server` added to its `[server]` table).
pub fn write_config(dir: &Path, db: &str, extra_server: &str) -> PathBuf {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\naudiosocket = \"127.0.0.1:0\"\ndb = \"{db}\"\n\
         rubric = \"{}\"\nrecordings = \"recordings\"\n{extra_server}\n\
         [tokens.ingest]\npbx = \"{INGEST}\"\n[tokens.supervisors]\nsup = \"{SUPERVISOR}\"\n\
         [tokens.agents]\n\"6618\" = \"{AGENT_6618}\"\n\"2051\" = \"{AGENT_2051}\"\n\
         [tokens.reviewers]\n\"王芳\" = \"{REVIEWER}\"\n",
        repo().join("rubrics/12345.toml").display()
    );
    let path = dir.join("callqc.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Start a server in `dir` on the store `db` (a file relative to `dir`, or a postgres:// URL).
pub async fn start_in_db(dir: tempfile::TempDir, db: &str, extra_server: &str) -> TestServer {
    let path = write_config(dir.path(), db, extra_server);
    let config = ServeConfig::load(&path).unwrap();
    let engine = EngineConfig::for_config(&config, &models_dir(), 2).unwrap();
    let server = Server::start(&config, engine).await.unwrap();
    TestServer {
        server,
        dir,
        config,
    }
}

pub fn sample(name: &str) -> SimCall {
    let path = repo().join("samples").join(format!("{name}.wav"));
    let side: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path.with_extension("json")).unwrap())
            .unwrap();
    SimCall {
        path,
        agent_id: side["agent_id"].as_str().unwrap().to_string(),
        channel_map: Default::default(),
    }
}

/// A desktop page's WebSocket, signed in, collecting what it receives.
pub struct Page {
    pub messages: Arc<Mutex<Vec<serde_json::Value>>>,
    pub closed: Arc<Mutex<Option<(u16, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Page {
    pub async fn open(server: &TestServer, sign_in: serde_json::Value) -> Page {
        let url = format!("ws://{}/events", server.server.http);
        let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap();
        ws.send(Message::text(sign_in.to_string())).await.unwrap();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(Mutex::new(None));
        let (m, c) = (messages.clone(), closed.clone());
        let task = tokio::spawn(async move {
            while let Some(msg) = ws.next().await {
                match msg {
                    Ok(Message::Text(t)) => {
                        m.lock().unwrap().push(serde_json::from_str(&t).unwrap())
                    }
                    Ok(Message::Close(f)) => {
                        *c.lock().unwrap() = Some(
                            f.map(|f| (u16::from(f.code), f.reason.to_string()))
                                .unwrap_or((1005, String::new())),
                        );
                        return;
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        // The greeting (or the refusal) first.
        for _ in 0..100 {
            if !messages.lock().unwrap().is_empty() || closed.lock().unwrap().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Page {
            messages,
            closed,
            task,
        }
    }

    pub fn of_type(&self, kind: &str) -> Vec<serde_json::Value> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m["type"] == kind)
            .cloned()
            .collect()
    }

    pub fn close_code(&self) -> Option<u16> {
        self.closed.lock().unwrap().as_ref().map(|c| c.0)
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Seconds of audio in a WAV file, per channel.
pub fn wav_frames(path: &Path) -> (u32, u16) {
    let r = hound::WavReader::open(path).unwrap();
    (r.duration(), r.spec().channels)
}

/// A `callqc serve` process (the built binary) on a configuration, as a service manager runs
/// it; its stderr is appended to a log file.
pub struct ServeProcess {
    pub child: Child,
    /// The HTTP and WebSocket address it printed.
    pub addr: String,
}

impl ServeProcess {
    pub fn start(config: &Path, log: &Path) -> ServeProcess {
        use std::io::BufRead;
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_callqc"))
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--models")
            .arg(models_dir())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("serve printed its address (see the log)")
                .unwrap();
            if let Some(rest) = line.strip_prefix("callqc serve: http://") {
                break rest.split('/').next().unwrap().to_string();
            }
        };
        // The rest of what it prints is not read: a server whose stdout reader went away must
        // keep serving.
        drop(lines);
        ServeProcess { child, addr }
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: a signal to the child this process started (still a process: it has not
        // been waited for).
        assert_eq!(
            unsafe { libc::kill(self.child.id() as libc::pid_t, sig) },
            0
        );
    }
}

/// The end of a log file, for a failure's message.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
