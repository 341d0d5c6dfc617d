//! `callqc tone …`: write the prior tone model (set-up runs it), and refit it from trainers'
//! verdicts (`tone fit`, see [`callqc::train::tone`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use anyhow::{Context, bail};

use callqc::eval;
use callqc::store::Store;
use callqc::tone::model;
use callqc::train::tone as fit;

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
    /// Refit the agitation weights from confirmed / dismissed agent_tone findings (and labelled
    /// spans of ground-truth JSON), report cross-validated accuracy against the prior, and write
    /// a new model (never the default tone.onnx unless --output says so).
    Fit {
        /// Database written by `callqc batch`.
        #[arg(long, env = "CALLQC_DB", default_value = "callqc.db")]
        db: PathBuf,
        /// Folder of ground-truth NAME.json files (with agitated_spans) for calls in the database.
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Output ONNX file (default: <models>/tone-fit.onnx). The sidecar JSON is written beside it.
        #[arg(long, short)]
        output: Option<PathBuf>,
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
        ToneCommand::Fit { db, labels, output } => run_fit(opts, db, labels, output),
    }
}

fn run_fit(
    opts: &GlobalOpts,
    db: PathBuf,
    labels: Option<PathBuf>,
    output: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    // Store::open would create an empty database: a typo should not look like "no labels".
    if !callqc::store::is_postgres_url(&db.to_string_lossy()) && !db.exists() {
        bail!("{} does not exist (run `callqc batch` first)", db.display());
    }
    let store = Store::open(&db)?;
    let labelled = match &labels {
        Some(dir) => Some(
            eval::find_labelled_calls(dir)
                .with_context(|| format!("reading ground truth in {}", dir.display()))?,
        ),
        None => None,
    };
    let (examples, sources) = fit::training_set(&store, labelled.as_deref())?;
    let counts = fit::counts(&examples);
    if let Some(why) = fit::refusal(&counts) {
        bail!(
            "not enough labels to fit the tone model: {why}; the prior stays in use \
             ({} confirmed and {} dismissed agent_tone findings, {} of {} ground-truth calls found in {})",
            sources.confirmed,
            sources.dismissed,
            sources.labelled_calls,
            sources.labelled_given,
            store.location()
        );
    }

    let prior = model::LinearToneParams::prior();
    let threshold = model::DEFAULT_THRESHOLD;
    let cv = fit::cross_validate(&prior, &examples, threshold);
    let fitted = fit::fit_agitated(&prior, &examples);

    let pct = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{:.1}%", 100.0 * v));
    let line = |c: &fit::Confusion| {
        format!(
            "accuracy {}  precision {}  recall {}",
            pct(Some(c.accuracy())),
            pct(c.precision()),
            pct(c.recall())
        )
    };
    let source_text = format!(
        "{} confirmed + {} dismissed agent_tone findings, {} ground-truth calls",
        sources.confirmed, sources.dismissed, sources.labelled_calls
    );
    println!(
        "training data: {} agent windows from {} calls, {} agitated ({source_text})",
        counts.windows, counts.calls, counts.positives
    );
    println!(
        "cross-validated ({} folds grouped by call, p_agitated ≥ {threshold:.2}, {} held-out windows):",
        cv.folds,
        cv.fit.n()
    );
    println!("  prior: {}", line(&cv.prior));
    println!("  fit:   {}", line(&cv.fit));

    let date = callqc::tone::model::now_utc();
    let notes = format!(
        "Fitted {date} by `callqc tone fit` from {db}: {} agent windows of {} calls, {} agitated; \
         labels: {source_text}. Agitated weights and bias refitted (L2 towards the prior, \
         lambda {}); tense row, clip, mean and scale are the prior's (no tense labels). \
         Cross-validated ({} folds grouped by call, threshold {threshold:.2}): prior {}; fit {}.",
        counts.windows,
        counts.calls,
        counts.positives,
        fit::LAMBDA,
        cv.folds,
        line(&cv.prior),
        line(&cv.fit),
        db = store.location(),
    );
    let out = output.unwrap_or_else(|| opts.models_dir.join("tone-fit.onnx"));
    model::write_feature_model(&out, &fitted, "fit", threshold, &notes)?;
    println!(
        "wrote {} and its sidecar {}",
        out.display(),
        model::sidecar_path(&out).display()
    );
    println!(
        "use it with: callqc batch --tone-model {} … (add --force to rescore calls already done)",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
