//! `callqc models …`: convert CTranslate2 whisper models to ggml.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use callqc::provision::convert::{self, ConvertOptions, Quantization};

use super::GlobalOpts;

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Convert a CTranslate2 (faster-whisper) model directory to whisper.cpp's ggml format.
    ///
    /// Accepts any whisper size, float16/float32/int8 weights. The directory must hold model.bin,
    /// config.json and vocabulary.txt.
    Convert {
        /// CTranslate2 model directory.
        ct2_dir: PathBuf,
        /// Output ggml file (default: <models>/ggml-<name>.bin, name from the directory).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Also quantise the weights: q8_0 or q5_0.
        #[arg(long)]
        quantize: Option<Quantization>,
    },
}

pub fn run(opts: &GlobalOpts, cmd: ModelsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ModelsCommand::Convert {
            ct2_dir,
            output,
            quantize,
        } => {
            let output = output.unwrap_or_else(|| {
                let suffix = quantize.map(|q| format!("-{q}")).unwrap_or_default();
                opts.models_dir.join(format!("ggml-converted{suffix}.bin"))
            });
            let report = convert::convert(&ct2_dir, &output, &ConvertOptions { quantize })?;
            println!(
                "wrote {} ({} tensors, {} bytes, sha256 {})",
                output.display(),
                report.tensors,
                report.bytes,
                report.sha256
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
