//! `callqc eval DIR`: measure callqc on labelled calls (NAME.wav + NAME.json): character error
//! rate per call and role, and precision / recall of the QC labels (greeting, closing, forbidden
//! phrases, dead air, agitation).
//!
//! Calls already analysed by `callqc batch` into `--db` — the same audio (by hash), the same
//! models and settings, the same rubric — are read from the database, with that rubric's
//! findings only; the others are analysed here with the same session as `batch`, with the
//! agents' stored voice history as `batch` would use it.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use callqc::audio::Role;
use callqc::eval::{self, CerReport, Detection, FoundIssue, LABEL_KINDS, LabelReport};
use callqc::pipeline::batch;
use callqc::pipeline::call::Worker;
use callqc::pipeline::events::{CallEvent, Pass};
use callqc::pipeline::identity::{ModelsIdentity, file_hash};
use callqc::pipeline::session::{CallJob, SessionMode, analyze_recording};
use callqc::pipeline::sinks::VecSink;
use callqc::rubric::{self, Rubric};
use callqc::settings::Parallelism;
use callqc::store::Store;
use callqc::tone::Baseline;

use super::{AsrArgs, GlobalOpts};

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Directory with NAME.wav + NAME.json pairs (schema: docs/ground-truth.md).
    pub dir: PathBuf,
    /// Database from `callqc batch` to read analysed calls from (ignored if missing).
    #[arg(long, env = "CALLQC_DB", default_value = "callqc.db")]
    pub db: PathBuf,
    /// Analyse every call afresh instead of reading the database.
    #[arg(long)]
    pub fresh: bool,
    /// Rubric for calls analysed here.
    #[arg(long, default_value = "rubrics/12345.toml")]
    pub rubric: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Leave the rubric's lexicon out (measures what its corrections do to CER; with --fresh).
    #[arg(long, requires = "fresh")]
    pub no_lexicon: bool,
    #[command(flatten)]
    pub asr: AsrArgs,
}

fn pct(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_string(), |r| format!("{:.1}%", r * 100.0))
}

/// One call's analysis as evaluation needs it.
struct Evaluated {
    transcript: callqc::asr::Transcript,
    roles: Vec<Role>,
    found: Vec<FoundIssue>,
    duration_s: f64,
}

/// A stored analysis of exactly this audio, made with the current models and settings and
/// scored with this rubric (findings of that rubric only). Found by the audio's hash, so calls
/// stored under a manifest's call id are found too.
fn from_store(
    store: &Store,
    call: &eval::LabelledCall,
    models_key: &str,
    rubric: &Rubric,
) -> anyhow::Result<Option<Evaluated>> {
    let hash = file_hash(&call.audio_path)
        .with_context(|| format!("{}: cannot read", call.audio_path.display()))?;
    let Some(id) = store.find_analysis(&hash, models_key, &rubric.source_hash)? else {
        return Ok(None);
    };
    let stored = store.load_call(id)?;
    let found = store
        .findings(id, Some(&rubric.name))?
        .into_iter()
        .map(|f| {
            FoundIssue::new(
                rubric,
                f.kind,
                &f.item_id,
                (f.start, f.end),
                f.points,
                f.observation,
            )
        })
        .collect();
    Ok(Some(Evaluated {
        roles: stored.speech.iter().map(|s| s.role).collect(),
        transcript: callqc::asr::Transcript {
            segments: stored.segments,
            dropped: Vec::new(),
        },
        found,
        duration_s: stored.duration_s.unwrap_or(0.0),
    }))
}

/// Analyse a labelled call here, through the same session as `batch`.
fn analyse_here(
    worker: &mut Worker,
    rubric: &Rubric,
    call: &eval::LabelledCall,
    history: Option<Baseline>,
) -> anyhow::Result<Evaluated> {
    let job = CallJob {
        path: call.audio_path.clone(),
        agent_id: call.truth.agent_id.clone(),
        call_id: Some(call.truth.call_id.clone()),
        channel_map: call.truth.channel_map(),
        started_at: None,
        source: callqc::pipeline::events::Source::Batch,
    };
    let mut sink = VecSink::default();
    let end = analyze_recording(
        worker,
        rubric,
        &mut sink,
        0,
        &job,
        history,
        SessionMode::Recording,
    )?;
    let roles = sink
        .iter()
        .find_map(|e| match e {
            CallEvent::Began(info) => Some(info.roles.clone()),
            _ => None,
        })
        .unwrap_or_default();
    Ok(Evaluated {
        roles,
        found: sink
            .findings(Pass::Final)
            .into_iter()
            .map(|(f, _)| {
                FoundIssue::new(
                    rubric,
                    f.kind,
                    &f.item_id,
                    (f.start, f.end),
                    f.points,
                    f.observation,
                )
            })
            .collect(),
        duration_s: end.duration_s,
        transcript: callqc::asr::Transcript {
            segments: sink.segments(Pass::Final).into_iter().cloned().collect(),
            dropped: Vec::new(),
        },
    })
}

pub fn run(opts: &GlobalOpts, args: EvalArgs) -> anyhow::Result<ExitCode> {
    let calls = eval::find_labelled_calls(&args.dir)?;
    let mut rubric = rubric::load(&args.rubric)?;
    if args.no_lexicon {
        rubric.lexicon = Default::default();
    }
    let par = Parallelism::single(opts.threads);
    let cfg = args.asr.worker_config(opts, par);
    let models = ModelsIdentity::of(&cfg, &cfg.tone_model);
    let store = if args.db.exists() || callqc::store::is_postgres_url(&args.db.to_string_lossy()) {
        Some(Store::open(&args.db)?)
    } else {
        None
    };
    // Agents' voice histories as the batch would use them: from stored calls other than the
    // ones evaluated here.
    let history = match &store {
        Some(s) => {
            let keys: HashSet<String> = calls.iter().map(|c| c.truth.call_id.clone()).collect();
            batch::agent_histories(
                s,
                calls.iter().filter_map(|c| c.truth.agent_id.clone()),
                &keys,
            )?
        }
        None => HashMap::new(),
    };
    let mut worker: Option<Worker> = None;
    let (mut cers, mut labels, mut failed, mut from_db) = (Vec::new(), Vec::new(), 0, 0);
    for call in &calls {
        let stored = match store.as_ref().filter(|_| !args.fresh) {
            Some(s) => from_store(s, call, &models.key, &rubric),
            None => Ok(None),
        };
        let evaluated = match stored {
            Ok(Some(e)) => {
                from_db += 1;
                Ok(e)
            }
            Ok(None) => {
                if worker.is_none() {
                    worker = Some(Worker::load(&cfg)?);
                }
                let hist = call
                    .truth
                    .agent_id
                    .as_ref()
                    .and_then(|a| history.get(a))
                    .cloned();
                analyse_here(worker.as_mut().expect("loaded"), &rubric, call, hist)
            }
            Err(e) => Err(e),
        };
        match evaluated {
            Ok(e) => {
                cers.push(eval::call_cer(&call.truth, &e.transcript, &e.roles));
                labels.push(eval::call_labels(&call.truth, &e.found, e.duration_s));
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {e:#}");
            }
        }
    }
    let cer = CerReport::from_calls(cers);
    let labels = LabelReport::from_calls(labels);
    let mut out = std::io::stdout().lock();
    if args.json {
        let report = serde_json::json!({
            "calls_from_db": from_db,
            "cer": cer,
            "labels": labels,
            // Kept flat too, for scripts that only want CER.
            "overall": cer.overall,
            "per_role": cer.per_role,
            "calls": cer.calls,
        });
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        print_tables(&mut out, &cer, &labels, from_db, calls.len())?;
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_tables(
    out: &mut impl Write,
    cer: &CerReport,
    labels: &LabelReport,
    from_db: usize,
    total: usize,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{from_db} of {total} calls read from the database, the rest analysed now\n"
    )?;
    writeln!(
        out,
        "Character error rate (normalised: no punctuation, Simplified, digits as 一二三)"
    )?;
    writeln!(
        out,
        "{:<10} {:>8} {:>8} {:>8} {:>6}",
        "call", "agent", "caller", "all", "chars"
    )?;
    let role = |m: &std::collections::BTreeMap<Role, callqc::text::CerCount>, r: Role| {
        m.get(&r).map_or("-".to_string(), |c| pct(c.rate()))
    };
    for c in &cer.calls {
        writeln!(
            out,
            "{:<10} {:>8} {:>8} {:>8} {:>6}",
            c.call_id,
            role(&c.per_role, Role::Agent),
            role(&c.per_role, Role::Caller),
            pct(c.total.rate()),
            c.total.reference_chars
        )?;
    }
    writeln!(
        out,
        "{:<10} {:>8} {:>8} {:>8} {:>6}\n",
        "ALL",
        role(&cer.per_role, Role::Agent),
        role(&cer.per_role, Role::Caller),
        pct(cer.overall.rate()),
        cer.overall.reference_chars
    )?;
    writeln!(
        out,
        "QC labels (a finding is right when it overlaps a labelled case)"
    )?;
    writeln!(
        out,
        "{:<10} {:>9} {:>7} {:>9} {:>8} {:>10} {:>8}",
        "label", "labelled", "found", "findings", "correct", "precision", "recall"
    )?;
    for k in LABEL_KINDS {
        let d: Detection = labels.per_kind.get(k).copied().unwrap_or_default();
        writeln!(
            out,
            "{:<10} {:>9} {:>7} {:>9} {:>8} {:>10} {:>8}",
            k,
            d.labelled,
            d.found,
            d.findings,
            d.correct,
            pct(d.precision()),
            pct(d.recall())
        )?;
    }
    writeln!(
        out,
        "clean calls: {}, deductions on them: {}",
        labels.clean_calls, labels.false_deductions_on_clean
    )?;
    for c in &labels.calls {
        for f in &c.false_on_clean {
            writeln!(out, "  {}: {f}", c.call_id)?;
        }
    }
    Ok(())
}
