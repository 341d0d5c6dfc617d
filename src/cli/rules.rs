//! `callqc rules stats`: per rubric item — findings, how many trainers reviewed, the share they
//! confirmed (precision), appeals and how many were upheld — with a flag on items whose
//! precision is below a threshold: what QC leads tune rubrics by.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use callqc::store::{Period, RuleStats, Store};

use super::GlobalOpts;
use super::flagged::{parse_date, parse_end_date};

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Per-item review figures and precision.
    Stats {
        #[arg(long, value_parser = parse_date)]
        from: Option<String>,
        #[arg(long, value_parser = parse_end_date)]
        to: Option<String>,
        /// Flag items whose precision is below this.
        #[arg(long, default_value_t = 0.8)]
        threshold: f64,
        /// Flag only items with at least this many reviewed findings (a precision from two
        /// reviews says little; Alibaba measures after ~200 per rule).
        #[arg(long, default_value_t = 1)]
        min_reviewed: usize,
        #[arg(long, env = "CALLQC_DB", default_value = "callqc.db")]
        db: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// Is this item's precision below the threshold, on enough reviews to say so?
pub fn below_threshold(s: &RuleStats, threshold: f64, min_reviewed: usize) -> bool {
    s.reviewed >= min_reviewed.max(1) && s.precision.is_some_and(|p| p < threshold)
}

pub fn run(_opts: &GlobalOpts, cmd: RulesCommand) -> anyhow::Result<ExitCode> {
    let RulesCommand::Stats {
        from,
        to,
        threshold,
        min_reviewed,
        db,
        json,
    } = cmd;
    let store = Store::open(&db)?;
    let stats = store.rule_stats(&Period { from, to })?;
    if json {
        let rows: Vec<serde_json::Value> = stats
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                v["below_threshold"] = below_threshold(s, threshold, min_reviewed).into();
                v
            })
            .collect();
        let out = serde_json::json!({"threshold": threshold, "min_reviewed": min_reviewed, "items": rows});
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    if stats.is_empty() {
        println!("no findings stored");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<22} {:<10} {:>8} {:>8} {:>9} {:>9} {:>9} {:>7} {:>7}",
        "item",
        "dimension",
        "findings",
        "reviewed",
        "confirmed",
        "dismissed",
        "precision",
        "appeals",
        "upheld"
    );
    for s in &stats {
        println!(
            "{:<22} {:<10} {:>8} {:>8} {:>9} {:>9} {:>9} {:>7} {:>7}{}",
            s.item_id,
            s.dimension,
            s.findings,
            s.reviewed,
            s.confirmed,
            s.dismissed,
            s.precision
                .map_or("-".into(), |p| format!("{:.0}%", p * 100.0)),
            s.appeals,
            s.appeals_upheld,
            if below_threshold(s, threshold, min_reviewed) {
                format!("   ◀ below {:.0}%", threshold * 100.0)
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
