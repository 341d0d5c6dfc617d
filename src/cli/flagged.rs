//! `callqc flagged`: the calls a trainer should look at — filtered, sorted, as a table, JSON or
//! CSV (the same query the trainer pages use).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use callqc::store::{FlaggedCall, FlaggedOrder, FlaggedQuery, ReviewState, Source, Store};

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct FlaggedArgs {
    #[command(flatten)]
    pub filters: FlaggedFilters,
    #[arg(long, env = "CALLQC_DB", default_value = "callqc.db")]
    pub db: PathBuf,
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// One line per finding, for spreadsheets.
    #[arg(long)]
    pub csv: bool,
}

/// The filters of `flagged` (also how `export` chooses calls).
#[derive(Debug, Args, Default)]
pub struct FlaggedFilters {
    /// Calls that took place on or after this date (YYYY-MM-DD[THH:MM[:SS]]), UTC.
    #[arg(long, value_parser = parse_date)]
    pub from: Option<String>,
    /// Calls that took place before this date (a bare date: up to the end of that day).
    #[arg(long, value_parser = parse_end_date)]
    pub to: Option<String>,
    #[arg(long)]
    pub agent: Option<String>,
    /// A rubric item id (e.g. forbidden_refusal).
    #[arg(long)]
    pub item: Option<String>,
    /// A rubric dimension (e.g. 服务规范).
    #[arg(long)]
    pub dimension: Option<String>,
    /// Findings deducting at least this many points.
    #[arg(long)]
    pub min_points: Option<f64>,
    /// Calls scoring at most this (after trainers' verdicts).
    #[arg(long)]
    pub max_score: Option<f64>,
    /// Only findings of veto items.
    #[arg(long)]
    pub veto: bool,
    /// Findings in this review state.
    #[arg(long)]
    pub review: Option<ReviewState>,
    /// Calls from the nightly batch or from `serve`.
    #[arg(long)]
    pub source: Option<Source>,
    /// Calls whose transcript contains this text.
    #[arg(long)]
    pub text: Option<String>,
    /// Count observations (announced holds and pauses within the rules) as findings too.
    #[arg(long)]
    pub observations: bool,
    #[arg(long, value_enum, default_value_t = FlaggedOrder::Score)]
    pub sort: FlaggedOrder,
    #[arg(long)]
    pub limit: Option<usize>,
}

pub fn parse_date(s: &str) -> Result<String, String> {
    callqc::time::parse_date(s)
        .ok_or_else(|| format!("'{s}' is not a date: YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]"))
}

/// `--to 2026-12-01` means up to the end of that day.
pub fn parse_end_date(s: &str) -> Result<String, String> {
    let at = parse_date(s)?;
    if s.trim().len() == 10 {
        let (y, m, d) = (&at[0..4], &at[5..7], &at[8..10]);
        let days = callqc::time::days_from_civil(
            y.parse().unwrap_or(1970),
            m.parse().unwrap_or(1),
            d.parse().unwrap_or(1),
        );
        return Ok(callqc::time::iso_utc((days + 1) * 86_400_000));
    }
    Ok(at)
}

impl FlaggedFilters {
    pub fn query(&self) -> FlaggedQuery {
        FlaggedQuery {
            from: self.from.clone(),
            to: self.to.clone(),
            agent: self.agent.clone(),
            item: self.item.clone(),
            dimension: self.dimension.clone(),
            min_points: self.min_points,
            max_score: self.max_score,
            veto_only: self.veto,
            review: self.review,
            source: self.source,
            text: self.text.clone(),
            observations: self.observations,
            order: self.sort,
            limit: self.limit,
        }
    }
}

/// A CSV field, quoted when it needs to be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn print_csv(calls: &[FlaggedCall]) {
    println!(
        "call_key,agent_id,source,started_at,score,machine_score,vetoed,finding_id,item_id,dimension,points,veto,start_s,end_s,review,appeal,evidence"
    );
    for c in calls {
        for f in &c.findings {
            let fields = [
                c.call_key.clone(),
                c.agent_id.clone().unwrap_or_default(),
                format!("{:?}", c.source).to_lowercase(),
                c.started_at.clone().unwrap_or_default(),
                format!("{:.1}", c.score),
                format!("{:.1}", c.machine_score),
                c.vetoed.to_string(),
                f.id.to_string(),
                f.item_id.clone(),
                f.dimension.clone(),
                f.points.to_string(),
                f.veto.to_string(),
                format!("{:.2}", f.start),
                format!("{:.2}", f.end),
                f.review.to_string(),
                f.appeal.to_string(),
                f.evidence.clone(),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            println!("{}", line.join(","));
        }
    }
}

pub fn run(_opts: &GlobalOpts, args: FlaggedArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open(&args.db)?;
    let calls = store.flagged(&args.filters.query())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&calls)?);
        return Ok(ExitCode::SUCCESS);
    }
    if args.csv {
        print_csv(&calls);
        return Ok(ExitCode::SUCCESS);
    }
    if calls.is_empty() {
        println!("no call matches");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<14} {:<6} {:<5} {:<20} {:>6} {:>7}  findings",
        "call", "agent", "from", "date", "score", "machine"
    );
    for c in &calls {
        println!(
            "{:<14} {:<6} {:<5} {:<20} {:>6.1} {:>7.1}  {}",
            c.call_key,
            c.agent_id.as_deref().unwrap_or("-"),
            format!("{:?}", c.source).to_lowercase(),
            c.started_at.as_deref().unwrap_or("-"),
            c.score,
            c.machine_score,
            if c.vetoed { "VETO" } else { "" }
        );
        for f in &c.findings {
            println!(
                "    #{:<5} [{:6.1}–{:6.1}] {:<20} −{:<4} {:<9} {}",
                f.id, f.start, f.end, f.item_id, f.points, f.review, f.evidence
            );
        }
    }
    println!(
        "{} call(s), {} finding(s)",
        calls.len(),
        calls.iter().map(|c| c.findings.len()).sum::<usize>()
    );
    Ok(ExitCode::SUCCESS)
}
