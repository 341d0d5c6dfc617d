//! `callqc serve`: the live server (PBX audio in, warnings out to agents and supervisors).
//! `callqc serve --new-config callqc.toml --agents 1001,1002` writes a configuration with fresh
//! tokens first.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use callqc::asr::AsrParams;
use callqc::live::config::{self, ServeConfig};
use callqc::live::engine::EngineConfig;
use callqc::live::server::Server;
use callqc::pipeline::call::{VadMode, WorkerConfig};
use callqc::pipeline::identity::{self, ModelsIdentity};
use callqc::rubric;
use callqc::settings::{self, Parallelism};
use callqc::vad::VadParams;

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
    /// Write a new configuration with fresh random tokens to `--config`, and stop.
    #[arg(long)]
    pub new_config: bool,
    /// Agent ids to give tokens in the new configuration (with --new-config).
    #[arg(long, value_delimiter = ',')]
    pub agents: Vec<String>,
}

/// Worker settings as `batch` has them by default, with `model`.
pub fn worker_config(opts: &GlobalOpts, model: &str, whisper_threads: usize) -> WorkerConfig {
    WorkerConfig {
        models_dir: opts.models_dir.clone(),
        whisper_model: settings::whisper_model_path(&opts.models_dir, model),
        tone_model: identity::default_tone_model(&opts.models_dir),
        asr: AsrParams::default(),
        vad: VadParams::default(),
        vad_mode: VadMode::Silero,
        whisper_threads,
        onnx_threads: 1,
    }
}

/// The engine a configuration asks for, on `opts.threads` cores.
pub fn engine_config(opts: &GlobalOpts, cfg: &ServeConfig) -> anyhow::Result<EngineConfig> {
    let rubric = Arc::new(rubric::load(&cfg.server.rubric)?);
    let par = Parallelism::split(opts.threads, cfg.server.workers.unwrap_or(2));
    let live_worker = worker_config(opts, &cfg.server.model, par.whisper_threads);
    // The final pass runs niced, on whatever the live work leaves: it may use every core.
    let final_worker = worker_config(opts, &cfg.server.model, opts.threads);
    let models = ModelsIdentity::of(&final_worker, &final_worker.tone_model);
    for p in [&live_worker.whisper_model, &live_worker.tone_model] {
        anyhow::ensure!(
            p.exists(),
            "{}: missing (run scripts/setup.sh)",
            p.display()
        );
    }
    Ok(EngineConfig {
        live_worker,
        live_workers: par.workers,
        final_worker,
        rubric,
        models_key: models.key,
        models_description: models.description.to_string(),
        db: cfg.server.db.clone(),
        recordings: cfg.server.recordings.clone(),
        shed_after: Duration::from_secs_f64(cfg.server.shed_after_s),
    })
}

pub fn run(opts: &GlobalOpts, args: ServeArgs) -> anyhow::Result<ExitCode> {
    if args.new_config {
        config::write_new(&args.config, &args.agents)?;
        println!(
            "wrote {} (tokens for {} agents, one PBX, one supervisor, one reviewer); keep it private",
            args.config.display(),
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
    let engine = engine_config(opts, &cfg)?;
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
            cfg.server.db.display()
        );
        tokio::signal::ctrl_c().await?;
        eprintln!("stopping: ending calls in progress and storing them…");
        server.shutdown().await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
