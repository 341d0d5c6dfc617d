//! `callqc simulate FILE… --server URL`: stream recordings as a PBX would, and report the
//! warnings' latency.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use callqc::audio::ChannelMap;
use callqc::live::auth::Identity;
use callqc::live::config::ServeConfig;
use callqc::live::simulate::{self, Protocol, SimCall, SimulateOptions};
use callqc::pipeline::batch;

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Recordings (8 or 16 kHz WAV; NAME.json beside one gives its agent id and channel map).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The server, e.g. http://127.0.0.1:8345 (default: the configuration's listen address).
    #[arg(long)]
    pub server: Option<String>,
    /// The configuration to take the ingest and supervisor tokens from.
    #[arg(long, default_value = "callqc.toml")]
    pub config: PathBuf,
    #[arg(long, value_enum, default_value = "ws")]
    pub protocol: Protocol,
    /// AudioSocket address (default: the configuration's).
    #[arg(long)]
    pub audiosocket: Option<std::net::SocketAddr>,
    /// 1.0 streams at real time, 2.0 twice as fast.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Calls streamed at once.
    #[arg(long, default_value_t = 1)]
    pub concurrent: usize,
    /// Calls in all (default: one per file, or `--concurrent` if more; files are reused in turn).
    #[arg(long)]
    pub calls: Option<usize>,
    /// Print each call's warnings with their latency and the p50 / p95 / max.
    #[arg(long)]
    pub report: bool,
    /// Print the reports as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(_opts: &GlobalOpts, args: SimulateArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.speed > 0.0, "--speed must be > 0");
    let cfg = ServeConfig::load(&args.config)
        .context("simulate takes its tokens from the server's configuration")?;
    let ingest_token = cfg
        .tokens
        .token_of(|w| matches!(w, Identity::Pbx(_)))
        .ok_or_else(|| anyhow::anyhow!("{}: no [tokens.ingest] token", args.config.display()))?;
    let supervisor_token = cfg
        .tokens
        .token_of(|w| matches!(w, Identity::Supervisor(_)));
    if supervisor_token.is_none() && args.protocol == Protocol::Audiosocket {
        anyhow::bail!(
            "{}: AudioSocket has no way back for warnings: simulate needs a [tokens.supervisors] token to watch them",
            args.config.display()
        );
    }
    let jobs = batch::collect_jobs(&args.files, ChannelMap::default())?;
    anyhow::ensure!(!jobs.is_empty(), "no recordings found in the paths given");
    let total = args.calls.unwrap_or(jobs.len().max(args.concurrent));
    let calls: Vec<SimCall> = (0..total)
        .map(|i| {
            let j = &jobs[i % jobs.len()];
            SimCall {
                path: j.path.clone(),
                agent_id: j.agent_id.clone().unwrap_or_else(|| "agent".into()),
                channel_map: j.channel_map,
            }
        })
        .collect();
    let opts = SimulateOptions {
        server: args
            .server
            .unwrap_or_else(|| format!("http://{}", cfg.server.listen)),
        audiosocket: args.audiosocket.or(cfg.server.audiosocket),
        protocol: args.protocol,
        speed: args.speed,
        ingest_token,
        supervisor_token,
        call_prefix: format!("sim-{}-", callqc::live::engine::now_ms()),
        max_audio_s: None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let reports = runtime.block_on(simulate::simulate(calls, &opts, args.concurrent));
    let failed = reports.iter().filter(|r| r.error.is_some()).count();
    let all = simulate::summarize(reports.iter().flat_map(|r| &r.warnings));
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"calls": reports, "latency": all}))?
        );
    } else {
        for r in &reports {
            println!(
                "{}  call {}  agent {}  {:.1} s  {} warnings{}",
                r.file.display(),
                r.call_id,
                r.agent_id,
                r.audio_s,
                r.warnings.len(),
                r.error
                    .as_ref()
                    .map(|e| format!("  ERROR {e}"))
                    .unwrap_or_default()
            );
            if args.report {
                for w in &r.warnings {
                    println!(
                        "    {:>7.2} s  {}：{}  latency {:.0} ms (server {} ms)",
                        w.evidence_end_s, w.title, w.text, w.latency_ms, w.server_latency_ms
                    );
                }
                let s = simulate::summarize(&r.warnings);
                if s.warnings > 0 {
                    println!(
                        "    latency p50 {:.0} ms  p95 {:.0} ms  max {:.0} ms",
                        s.p50_ms, s.p95_ms, s.max_ms
                    );
                }
            }
        }
        if args.report {
            println!(
                "all calls: {} warnings, latency p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
                all.warnings, all.p50_ms, all.p95_ms, all.max_ms
            );
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
