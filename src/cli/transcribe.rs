//! `callqc transcribe FILE…`: speaker-attributed transcripts, human-readable or JSON lines.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use callqc::audio::ChannelMap;
use callqc::pipeline::call::{CallTranscript, Worker};
use callqc::settings::Parallelism;

use super::{AsrArgs, GlobalOpts};

#[derive(Debug, Args)]
pub struct TranscribeArgs {
    /// WAV files (PCM, float, μ-law, A-law; mono or stereo; 8–48 kHz).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Stereo channel roles, e.g. "left=agent,right=caller" (the default) or "caller,agent".
    #[arg(long, default_value = "left=agent,right=caller")]
    pub channels: ChannelMap,
    /// One JSON object per file (JSON lines) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also show segments the hallucination guards dropped, with the reason.
    #[arg(long)]
    pub show_dropped: bool,
    #[command(flatten)]
    pub asr: AsrArgs,
}

pub fn run(opts: &GlobalOpts, args: TranscribeArgs) -> anyhow::Result<ExitCode> {
    let par = Parallelism::single(opts.threads);
    let mut worker = Worker::load(&args.asr.worker_config(opts, par))?;
    let mut failed = 0usize;
    let stdout = std::io::stdout();
    for path in &args.files {
        match worker.transcribe(path, args.channels) {
            Ok(call) => {
                let mut out = stdout.lock();
                if args.json {
                    serde_json::to_writer(&mut out, &call)?;
                    writeln!(out)?;
                } else {
                    print_human(&mut out, &call, args.show_dropped)?;
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
                if args.json {
                    let mut out = stdout.lock();
                    serde_json::to_writer(
                        &mut out,
                        &serde_json::json!({"path": path, "error": e.to_string()}),
                    )?;
                    writeln!(out)?;
                }
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_human(
    out: &mut impl Write,
    call: &CallTranscript,
    show_dropped: bool,
) -> std::io::Result<()> {
    writeln!(
        out,
        "== {}  ({:.1} s, {} ch, {} Hz, {:?})",
        call.path.display(),
        call.duration_s,
        call.channels,
        call.sample_rate,
        call.encoding
    )?;
    for s in &call.transcript.segments {
        writeln!(
            out,
            "[{:7.2} – {:7.2}] {:<6} {}",
            s.start,
            s.end,
            s.role.as_str(),
            s.text
        )?;
    }
    if show_dropped {
        for d in &call.transcript.dropped {
            writeln!(
                out,
                "  dropped [{:7.2} – {:7.2}] {:<6} {:?}: {}",
                d.segment.start,
                d.segment.end,
                d.segment.role.as_str(),
                d.segment.text,
                d.reason
            )?;
        }
    }
    writeln!(out)
}
