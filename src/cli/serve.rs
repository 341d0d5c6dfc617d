//! `callqc serve`: the live server (PBX audio in, warnings out to agents and supervisors).
//! `callqc serve --new-config callqc.toml --agents 1001,1002` writes a configuration with fresh
//! tokens first.

use std::path::PathBuf;
use std::process::ExitCode;

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
}

pub fn run(opts: &GlobalOpts, args: ServeArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.new_config {
        config::write_new(path, &args.agents)?;
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
    runtime.block_on(async {
        let server = Server::start(&cfg, engine).await?;
        println!(
            "callqc serve: http://{}/agent (agents), http://{}/supervisor (supervisors)",
            server.http, server.http
        );
        println!("  PBX WebSocket: ws://{}/ingest", server.http);
        if let Some(a) = server.audiosocket {
            println!("  AudioSocket:   {a} (register calls with POST /api/audiosocket/calls)");
        }
        println!(
            "  recordings → {}, store → {}; Ctrl-C stops (calls in progress are kept)",
            cfg.server.recordings.display(),
            callqc::store::redacted_url(&cfg.server.db.to_string_lossy())
        );
        tokio::signal::ctrl_c().await?;
        eprintln!("stopping: ending calls in progress and storing them…");
        server.shutdown().await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
