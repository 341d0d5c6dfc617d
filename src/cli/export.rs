//! `callqc export CALL… --out DIR` (or `--flagged` with `flagged`'s filters): per call a folder
//! with the transcript, findings with evidence, a WAV clip of each finding and one offline HTML
//! page (see [`callqc::report::export`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use callqc::report::export::{ExportOptions, export_call};
use callqc::store::Store;

use super::GlobalOpts;
use super::flagged::FlaggedFilters;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Calls (id, call key, audio hash prefix, path or file name).
    pub calls: Vec<String>,
    /// Export the calls `callqc flagged` lists with the filters below instead.
    #[arg(long, conflicts_with = "calls")]
    pub flagged: bool,
    #[command(flatten)]
    pub filters: FlaggedFilters,
    /// Where the call folders go.
    #[arg(long)]
    pub out: PathBuf,
    /// Seconds of audio kept around each finding in its clip.
    #[arg(long, default_value_t = ExportOptions::default().margin_s)]
    pub margin: f64,
    /// Write personal data (phone, ID, card and address numbers) unmasked, and do not mute it
    /// in the clips.
    #[arg(long)]
    pub no_mask: bool,
    #[arg(long, env = "CALLQC_DB", default_value = "callqc.db")]
    pub db: PathBuf,
    #[arg(long)]
    pub json: bool,
}

pub fn run(_opts: &GlobalOpts, a: ExportArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open(&a.db)?;
    let ids: Vec<i64> = if a.flagged {
        store
            .flagged(&a.filters.query())?
            .iter()
            .map(|c| c.call_id)
            .collect()
    } else if a.calls.is_empty() {
        anyhow::bail!("name the calls to export, or --flagged with filters");
    } else {
        a.calls
            .iter()
            .map(|q| store.find_call(q))
            .collect::<Result<_, _>>()?
    };
    let mut ids_seen = std::collections::HashSet::new();
    let opts = ExportOptions {
        margin_s: a.margin.max(0.0),
        mask: !a.no_mask,
    };
    let mut out = Vec::new();
    let mut failed = 0;
    for id in ids.into_iter().filter(|id| ids_seen.insert(*id)) {
        match export_call(&store, id, &a.out, opts) {
            Ok(e) => {
                if !a.json {
                    println!(
                        "{}: {} finding(s), {} clip(s) → {}{}",
                        e.call_key,
                        e.findings,
                        e.clips.len(),
                        e.folder.join("index.html").display(),
                        e.audio_error
                            .as_ref()
                            .map_or(String::new(), |err| format!("  (no clips: {err})"))
                    );
                }
                out.push(e);
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: call {id}: {e}");
            }
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
