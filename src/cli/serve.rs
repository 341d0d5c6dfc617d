//! `callqc serve`: the live server (PBX audio in, warnings out to agents and supervisors).
//! `callqc serve --new-config callqc.toml --agents 1001,1002` writes a configuration with fresh
//! tokens first.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use callqc::live::config::{self, ServeConfig};
use callqc::live::engine::EngineConfig;
use callqc::live::server::Server;

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (listen addresses, models, rubric, recordings, tokens).
    #[arg(long, default_value = "callqc.toml")]
    pub config: PathBuf,
    /// Listen here instead of the configuration's `[server] listen` (e.g. 0.0.0.0:8345 to
    /// accept other machines: put TLS in front, README).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// AudioSocket address instead of the configuration's.
    #[arg(long)]
    pub audiosocket: Option<std::net::SocketAddr>,
    /// Write a new configuration with fresh random tokens to this file, and stop.
    #[arg(long, value_name = "PATH")]
    pub new_config: Option<PathBuf>,
    /// Agent ids to give tokens in the new configuration (with --new-config).
    #[arg(long, value_delimiter = ',')]
    pub agents: Vec<String>,
    /// The rubric the new configuration names (with --new-config; written as an absolute path).
    /// Default: rubrics/12345.toml here, else the checkout's.
    #[arg(long, requires = "new_config")]
    pub rubric: Option<PathBuf>,
}

/// `rubrics/12345.toml` of the working directory, else of the checkout the binary was built in.
fn shipped_rubric() -> PathBuf {
    let local = PathBuf::from("rubrics/12345.toml");
    if local.is_file() {
        return local;
    }
    let built = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rubrics/12345.toml");
    if built.is_file() { built } else { local }
}

pub fn run(opts: &GlobalOpts, args: ServeArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.new_config {
        let rubric = args.rubric.clone().unwrap_or_else(shipped_rubric);
        anyhow::ensure!(
            rubric.is_file(),
            "{}: no such rubric file",
            rubric.display()
        );
        config::write_new(path, &args.agents, &rubric)?;
        println!(
            "wrote {} (tokens for {} agents, one PBX, one supervisor, one reviewer); keep it private",
            path.display(),
            args.agents.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut cfg = ServeConfig::load(&args.config).with_context(|| {
        "no configuration: `callqc serve --new-config callqc.toml --agents 1001,1002` writes one"
    })?;
    if let Some(l) = args.listen {
        cfg.server.listen = l;
    }
    if let Some(a) = args.audiosocket {
        cfg.server.audiosocket = Some(a);
    }
    cfg.check_paths()?;
    if !cfg.server.listen.ip().is_loopback() {
        eprintln!(
            "warning: listening on {} (not loopback): tokens and audio cross the network in clear unless TLS is in front (README, Live)",
            cfg.server.listen
        );
    }
    let engine = EngineConfig::for_config(&cfg, &opts.models_dir, opts.threads)?;
    for p in [
        &engine.live_worker.whisper_model,
        &engine.live_worker.tone_model,
    ] {
        anyhow::ensure!(
            p.exists(),
            "{}: missing (run scripts/setup.sh)",
            p.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let stopped = runtime.block_on(async {
        let server = Server::start(&cfg, engine).await?;
        // The banner is written once and its errors ignored: a server whose stdout was closed
        // (a pipe whose reader went away, a service manager's) must keep serving.
        let mut banner = format!(
            "callqc serve: http://{}/agent (agents), http://{}/supervisor (supervisors)\n",
            server.http, server.http
        );
        banner.push_str(&format!("  PBX WebSocket: ws://{}/ingest\n", server.http));
        if let Some(a) = server.audiosocket {
            banner.push_str(&format!(
                "  AudioSocket:   {a} (register calls with POST /api/audiosocket/calls)\n"
            ));
        }
        banner.push_str(&format!(
            "  recordings → {}, store → {}; Ctrl-C or SIGTERM stops (calls in progress are kept)\n",
            cfg.server.recordings.display(),
            callqc::store::redacted_url(&cfg.server.db.to_string_lossy())
        ));
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
        }
        let mut signals = Signals::new()?;
        let which = signals.next().await;
        let timeout = Duration::from_secs_f64(cfg.server.stop_timeout_s);
        eprintln!(
            "{which}: stopping: ending the calls in progress and storing them (at most {:.0} s; again to stop at once)…",
            timeout.as_secs_f64()
        );
        let stopped = tokio::select! {
            done = tokio::time::timeout(timeout, server.shutdown()) => done.is_ok(),
            again = signals.next() => {
                eprintln!("{again}: stopping at once");
                false
            }
        };
        if !stopped {
            // Recordings are on disk; the next start stores what was not (recovery).
            eprintln!(
                "stopped before every final pass was stored: the next `callqc serve` on these recordings stores the rest"
            );
        }
        anyhow::Ok(stopped)
    })?;
    if !stopped {
        // The final-pass thread may still be inside whisper or ONNX Runtime: exit without
        // waiting for it, and without the C++ libraries' exit-time destructors, which would
        // tear down what that thread is using (a store write it had begun is a transaction
        // that never commits; the recordings are on disk for the next start).
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        // SAFETY: `_exit` ends the process at once; nothing after it runs.
        unsafe { libc::_exit(0) };
    }
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM (systemd, Kubernetes, `docker stop`) and SIGINT (Ctrl-C) alike.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
        })
    }

    /// The next signal's name.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
