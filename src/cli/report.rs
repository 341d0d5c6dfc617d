//! `callqc report --from … --to … --out report.html`: the period's figures as one offline page
//! with inline SVG charts, or `--json` for the figures behind it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use callqc::report::figures::ReportFigures;
use callqc::report::page::report_page;
use callqc::store::{Period, Store};

use super::GlobalOpts;
use super::flagged::{parse_date, parse_end_date};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// First day (YYYY-MM-DD), UTC.
    #[arg(long, value_parser = parse_date)]
    pub from: Option<String>,
    /// Last day, included.
    #[arg(long, value_parser = parse_end_date)]
    pub to: Option<String>,
    /// The HTML page to write.
    #[arg(long, required_unless_present = "json")]
    pub out: Option<PathBuf>,
    /// Print the figures as JSON (with --out, also write the page).
    #[arg(long)]
    pub json: bool,
    #[arg(long, env = "CALLQC_DB", default_value = "callqc.db")]
    pub db: PathBuf,
}

pub fn run(_opts: &GlobalOpts, a: ReportArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open(&a.db)?;
    let figures = ReportFigures::compute(
        &store,
        &Period {
            from: a.from,
            to: a.to,
        },
    )?;
    if let Some(out) = &a.out {
        std::fs::write(out, report_page(&figures))
            .with_context(|| format!("cannot write {}", out.display()))?;
        if !a.json {
            println!(
                "{}: {} call(s) over {} day(s), {} agent(s)",
                out.display(),
                figures.calls,
                figures.days.len(),
                figures.agents.len()
            );
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    }
    Ok(ExitCode::SUCCESS)
}
