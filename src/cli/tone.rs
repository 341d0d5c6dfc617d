//! `callqc tone …`: write the prior tone model (set-up runs it) and show what it is.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use callqc::tone::model;

use super::GlobalOpts;

#[derive(Debug, Subcommand)]
pub enum ToneCommand {
    /// Write the documented prior tone model (tone.onnx + tone.json) — a reproducible step.
    Init {
        /// Output ONNX file (default: <models>/tone.onnx). The sidecar JSON is written beside it.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Overwrite an existing model (e.g. one refitted by trainers).
        #[arg(long)]
        force: bool,
    },
}

pub fn run(opts: &GlobalOpts, cmd: ToneCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ToneCommand::Init { output, force } => {
            let out = output.unwrap_or_else(|| opts.models_dir.join(model::MODEL_FILE));
            if out.exists() && !force {
                println!(
                    "{} exists: kept (use --force to replace it with the prior)",
                    out.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let sidecar = model::write_prior_model(&out)?;
            println!(
                "wrote {} (prior tone model, threshold {:.2}) and its sidecar {}",
                out.display(),
                sidecar.threshold,
                model::sidecar_path(&out).display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
