//! `callqc eval DIR`: run callqc on every labelled call in DIR and report CER.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use callqc::audio::Role;
use callqc::eval::{self, CerReport};
use callqc::pipeline::call::Worker;
use callqc::settings::Parallelism;

use super::{AsrArgs, GlobalOpts};

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Directory with NAME.wav + NAME.json pairs (schema: docs/ground-truth.md).
    pub dir: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub asr: AsrArgs,
}

fn pct(c: &callqc::text::CerCount) -> String {
    c.rate()
        .map_or_else(|| "-".to_string(), |r| format!("{:.1}%", r * 100.0))
}

pub fn run(opts: &GlobalOpts, args: EvalArgs) -> anyhow::Result<ExitCode> {
    let calls = eval::find_labelled_calls(&args.dir)?;
    let par = Parallelism::single(opts.threads);
    let mut worker = Worker::load(&args.asr.worker_config(opts, par))?;
    let mut results = Vec::new();
    let mut failed = 0;
    for call in &calls {
        match worker.transcribe(&call.audio_path, call.truth.channel_map()) {
            Ok(t) => results.push(eval::call_cer(&call.truth, &t.transcript, &t.roles)),
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
    }
    let report = CerReport::from_calls(results);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{:<12} {:>8} {:>8} {:>8} {:>6}",
            "call", "agent", "caller", "all", "chars"
        )?;
        for c in &report.calls {
            let role = |r: Role| c.per_role.get(&r).map_or("-".into(), pct);
            writeln!(
                out,
                "{:<12} {:>8} {:>8} {:>8} {:>6}",
                c.call_id,
                role(Role::Agent),
                role(Role::Caller),
                pct(&c.total),
                c.total.reference_chars
            )?;
        }
        let role = |r: Role| report.per_role.get(&r).map_or("-".into(), pct);
        writeln!(
            out,
            "{:<12} {:>8} {:>8} {:>8} {:>6}",
            "ALL",
            role(Role::Agent),
            role(Role::Caller),
            pct(&report.overall),
            report.overall.reference_chars
        )?;
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
