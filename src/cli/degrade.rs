//! `callqc degrade DIR --out OUT`: degraded copies of labelled calls — bleed between channels,
//! babble, line noise, μ-law, music on hold, a real talk-over under bleed, a call that ends
//! early — one directory per condition, labels carried over (`callqc::audio::degrade`).
//! `callqc eval OUT/<condition> --fresh` measures each; scripts/pbx-conditions.sh does both.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use callqc::audio::degrade::{self, Condition};

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct DegradeArgs {
    /// Directory with NAME.wav + NAME.json pairs (16-bit stereo).
    pub dir: PathBuf,
    /// Where the copies go: OUT/<condition>/NAME.wav + NAME.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Only the conditions whose name contains this (repeatable; see the list printed).
    #[arg(long)]
    pub only: Vec<String>,
}

pub fn run(_opts: &GlobalOpts, args: DegradeArgs) -> anyhow::Result<ExitCode> {
    let all = degrade::default_conditions();
    let chosen: Vec<Condition> = all
        .iter()
        .copied()
        .filter(|c| {
            let name = c.to_string();
            args.only.is_empty() || args.only.iter().any(|o| name.contains(o.as_str()))
        })
        .collect();
    if chosen.is_empty() {
        let names: Vec<String> = all.iter().map(ToString::to_string).collect();
        anyhow::bail!(
            "--only {:?} names no condition; the conditions are: {}",
            args.only,
            names.join(", ")
        );
    }
    let calls: Vec<_> = callqc::eval::find_labelled_calls(&args.dir)?
        .into_iter()
        .map(|c| (c.audio_path, c.json_path))
        .collect();
    let written = degrade::write_copies(&calls, &args.out, &chosen)?;
    for (dir, n) in &written.dirs {
        println!("{n:>3} calls  {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}
