//! `callqc rescore --rubric NEW.toml`: re-check stored transcripts, speech regions and tone
//! windows against a (new) rubric — no audio, no ASR, so rubric tuning takes seconds.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;

use callqc::pipeline::analyze::score_call;
use callqc::rubric;
use callqc::store::Store;

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct RescoreArgs {
    /// Rubric file to apply.
    #[arg(long, default_value = "rubrics/12345.toml")]
    pub rubric: PathBuf,
    /// SQLite database written by `callqc batch`.
    #[arg(long, env = "CALLQC_DB", default_value = "callqc.db")]
    pub db: PathBuf,
    /// Only these calls (id, call key, path or file name); default: every analysed call.
    pub calls: Vec<String>,
}

pub fn run(_opts: &GlobalOpts, args: RescoreArgs) -> anyhow::Result<ExitCode> {
    let rubric = rubric::load(&args.rubric)?;
    let started = Instant::now();
    let mut store = Store::open(&args.db)?;
    let ids = if args.calls.is_empty() {
        store.done_call_ids()?
    } else {
        args.calls
            .iter()
            .map(|q| store.find_call(q))
            .collect::<Result<Vec<_>, _>>()?
    };
    let (mut changed, mut before_sum, mut after_sum, mut n_before) = (0usize, 0.0, 0.0, 0usize);
    for &id in &ids {
        let call = store.load_call(id)?;
        let before = store
            .scores(id)?
            .into_iter()
            .find(|s| s.rubric == rubric.name);
        let (findings, score) = score_call(
            &rubric,
            call.duration_s.unwrap_or(0.0),
            &call.segments,
            &call.speech,
            &call.tone,
        );
        // Machine scores on both sides: trainers' verdicts are carried over and applied after.
        if let Some(b) = &before {
            before_sum += b.machine_total;
            n_before += 1;
            if (b.machine_total - score.total).abs() > 1e-9 {
                changed += 1;
            }
        } else {
            changed += 1;
        }
        after_sum += score.total;
        store.replace_scoring(id, &findings, &score, &rubric.source_hash)?;
    }
    let n = ids.len().max(1) as f64;
    println!(
        "rescored {} calls with {} v{} in {:.2} s (no ASR): {changed} machine scores changed; mean machine score {} → {:.1} (trainers' verdicts kept)",
        ids.len(),
        rubric.name,
        rubric.version,
        started.elapsed().as_secs_f64(),
        if n_before > 0 {
            format!("{:.1}", before_sum / n_before as f64)
        } else {
            "-".into()
        },
        after_sum / n
    );
    Ok(ExitCode::SUCCESS)
}
