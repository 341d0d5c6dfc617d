//! `callqc review`, `callqc appeal` and `callqc calibrate`: trainers' verdicts on findings, the
//! agent's appeal with its final ruling, and calibration rounds (the same calls judged by two or
//! more reviewers, agreement reported). Every step is kept in the finding's history.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use callqc::review::{Agreement, agreement};
use callqc::store::{FindingOfCall, Store, VerdictAction};

use super::GlobalOpts;

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("verdict").args(["confirm", "dismiss", "history"])))]
pub struct ReviewArgs {
    /// The finding's id (as `flagged` and `show --json` print it).
    pub finding: i64,
    /// A real hit.
    #[arg(long)]
    pub confirm: bool,
    /// A false hit: it no longer counts in the call's score (the finding itself stays).
    #[arg(long)]
    pub dismiss: bool,
    /// Why (with neither --confirm nor --dismiss: a note only).
    #[arg(long)]
    pub note: Option<String>,
    /// Who is reviewing (required for a verdict or a note).
    #[arg(long)]
    pub by: Option<String>,
    /// A verdict in this calibration round (recorded apart; the finding does not change).
    #[arg(long)]
    pub calibration: Option<i64>,
    /// Print the finding's history instead.
    #[arg(long)]
    pub history: bool,
    #[arg(long, env = "CALLQC_DB", default_value = "callqc.db")]
    pub db: PathBuf,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("step").required(true).args(["reason", "uphold", "reject"])))]
pub struct AppealArgs {
    /// The finding's id.
    pub finding: i64,
    /// The agent appealing (the call's own agent), or the reviewer ruling.
    #[arg(long)]
    pub by: String,
    /// File the appeal, with its reason.
    #[arg(long)]
    pub reason: Option<String>,
    /// Final ruling: the appeal is upheld (the finding is dismissed).
    #[arg(long)]
    pub uphold: bool,
    /// Final ruling: the appeal is rejected (the finding is confirmed).
    #[arg(long)]
    pub reject: bool,
    /// The ruling's grounds.
    #[arg(long)]
    pub note: Option<String>,
    #[arg(long, env = "CALLQC_DB", default_value = "callqc.db")]
    pub db: PathBuf,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum CalibrateCommand {
    /// Start a round: these calls, judged independently by these reviewers.
    New {
        /// Calls (id, call key, path or file name).
        #[arg(required = true)]
        calls: Vec<String>,
        /// Reviewers, comma-separated (two or more).
        #[arg(long, value_delimiter = ',', required = true)]
        reviewers: Vec<String>,
        /// The QC lead asking for it.
        #[arg(long)]
        by: String,
        #[arg(long, default_value = "calibration")]
        name: String,
        #[arg(long, env = "CALLQC_DB", default_value = "callqc.db")]
        db: PathBuf,
    },
    /// Each reviewer's verdicts side by side and how often they agree.
    Report {
        id: i64,
        #[arg(long, env = "CALLQC_DB", default_value = "callqc.db")]
        db: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

fn print_finding(f: &FindingOfCall, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(f)?);
    } else {
        let x = &f.finding;
        println!(
            "finding {} of call {} ({}): {} [{:.1}–{:.1}] −{}  review {}  appeal {}",
            x.id, f.call_key, x.rubric, x.item_id, x.start, x.end, x.points, x.review, x.appeal
        );
    }
    Ok(())
}

fn print_score(store: &Store, f: &FindingOfCall) -> anyhow::Result<()> {
    for s in store.scores(f.finding.call_id)? {
        if s.rubric == f.finding.rubric {
            println!(
                "call {} score {:.1} (machine {:.1}{})",
                f.call_key,
                s.total,
                s.machine_total,
                if s.vetoed { ", VETO" } else { "" }
            );
        }
    }
    Ok(())
}

pub fn review(_opts: &GlobalOpts, a: ReviewArgs) -> anyhow::Result<ExitCode> {
    let mut store = Store::open(&a.db)?;
    if a.history {
        let history = store.verdict_history(a.finding)?;
        let f = store.finding(a.finding)?;
        if a.json {
            let out = serde_json::json!({"finding": f, "history": history});
            println!("{}", serde_json::to_string_pretty(&out)?);
            return Ok(ExitCode::SUCCESS);
        }
        print_finding(&f, false)?;
        for v in &history {
            println!(
                "  {}  {:<8} by {}{}{}",
                v.at,
                v.action,
                v.by,
                v.calibration_id
                    .map_or(String::new(), |c| format!(" (calibration {c})")),
                v.note.as_ref().map_or(String::new(), |n| format!(": {n}"))
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(by) = a.by.as_deref() else {
        anyhow::bail!("say who is reviewing: --by NAME");
    };
    let action = match (a.confirm, a.dismiss) {
        (true, _) => VerdictAction::Confirm,
        (_, true) => VerdictAction::Dismiss,
        _ if a.note.is_some() => VerdictAction::Note,
        _ => anyhow::bail!("give a verdict: --confirm, --dismiss, or --note alone"),
    };
    if let Some(round) = a.calibration {
        if action == VerdictAction::Note {
            anyhow::bail!("a calibration verdict is --confirm or --dismiss");
        }
        store.calibration_verdict(
            round,
            a.finding,
            action == VerdictAction::Confirm,
            by,
            a.note.as_deref(),
        )?;
        println!(
            "finding {}: {} by {by} in calibration {round} (the finding itself is unchanged)",
            a.finding, action
        );
        return Ok(ExitCode::SUCCESS);
    }
    let f = store.review_finding(a.finding, action, by, a.note.as_deref())?;
    print_finding(&f, a.json)?;
    if !a.json {
        print_score(&store, &f)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn appeal(_opts: &GlobalOpts, a: AppealArgs) -> anyhow::Result<ExitCode> {
    let mut store = Store::open(&a.db)?;
    let f = if let Some(reason) = &a.reason {
        store.appeal_finding(a.finding, &a.by, reason)?
    } else {
        store.rule_on_appeal(a.finding, a.uphold, &a.by, a.note.as_deref())?
    };
    print_finding(&f, a.json)?;
    if !a.json {
        print_score(&store, &f)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn calibrate(_opts: &GlobalOpts, cmd: CalibrateCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CalibrateCommand::New {
            calls,
            reviewers,
            by,
            name,
            db,
        } => {
            if reviewers.len() < 2 {
                anyhow::bail!("a calibration needs two or more reviewers (--reviewers a,b)");
            }
            let mut store = Store::open(&db)?;
            let mut keys = Vec::new();
            for q in &calls {
                let id = store.find_call(q)?;
                keys.push(store.load_call(id)?.call_key);
            }
            let id = store.create_calibration(&name, &by, &reviewers, &keys)?;
            println!(
                "calibration {id}: {} call(s) for {}; each reviews with `callqc review FINDING --confirm|--dismiss --by NAME --calibration {id}`",
                keys.len(),
                reviewers.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        CalibrateCommand::Report { id, db, json } => {
            let store = Store::open(&db)?;
            let round = store.calibration(id)?;
            let Agreement {
                pairs,
                judged_by_all,
                findings,
            } = agreement(&round);
            if json {
                let out = serde_json::json!({
                    "calibration": round,
                    "findings": findings,
                    "judged_by_all": judged_by_all,
                    "pairs": pairs,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "calibration {} \"{}\" by {} ({}): {} call(s), {} finding(s), {} judged by every reviewer",
                round.id,
                round.name,
                round.requested_by,
                round.created_at,
                round.call_keys.len(),
                round.findings.len(),
                judged_by_all
            );
            print!("  {:>7} {:<12} {:<16}", "finding", "call", "item");
            for r in &round.reviewers {
                print!(" {r:>10}");
            }
            println!();
            for f in &findings {
                print!("  {:>7} {:<12} {:<16}", f.finding_id, f.call_key, f.item_id);
                for v in &f.verdicts {
                    print!(" {:>10}", v.map_or("-", |v| v.as_str()));
                }
                println!("{}", if f.disagree { "   ◀ differs" } else { "" });
            }
            for p in &pairs {
                println!(
                    "  {} vs {}: agree on {} of {} ({}), Cohen's kappa {}",
                    p.a,
                    p.b,
                    p.agreed,
                    p.both,
                    p.share.map_or("-".into(), |s| format!("{:.0}%", s * 100.0)),
                    p.kappa.map_or("-".into(), |k| format!("{k:.2}"))
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
