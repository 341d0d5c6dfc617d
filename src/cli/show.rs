//! `callqc show CALL`: a call's score, every deduction with its evidence, the agent's tone and
//! the transcript with findings marked.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use callqc::audio::Role;
use callqc::store::Store;
use callqc::tone::{self, ToneTrack};

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The call: database id, call id, audio hash prefix, path or file name.
    pub call: String,
    /// SQLite database written by `callqc batch`.
    #[arg(long, env = "CALLQC_DB", default_value = "callqc.db")]
    pub db: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Mask personal data (phone, ID, bank card and address numbers: 138****5678).
    #[arg(long)]
    pub mask: bool,
}

pub fn run(_opts: &GlobalOpts, args: ShowArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open(&args.db)?;
    let id = store.find_call(&args.call)?;
    let mut call = store.load_call(id)?;
    let mut findings = store.findings(id, None)?;
    if args.mask {
        callqc::report::export::mask_call(&mut call, &mut findings);
    }
    let failures = store.failures(&call.call_key)?;
    let scores = store.scores(id)?;
    let live = store.live_call(&call.call_key)?;
    let alerts = store.alerts(&call.call_key)?;
    let track = ToneTrack {
        windows: call
            .tone
            .iter()
            .filter(|w| w.role == Role::Agent)
            .cloned()
            .collect(),
        baseline: None,
    };
    // The threshold of the model that judged the call, not today's default.
    let threshold = call.tone_threshold.unwrap_or(tone::DEFAULT_THRESHOLD);
    let summary = tone::summarize(&track, threshold);
    if args.json {
        let out = serde_json::json!({
            "call": call,
            "scores": scores,
            "findings": findings,
            "tone_summary": summary,
            "tone_threshold": threshold,
            "failed_attempts": failures,
            "live": live,
            "alerts": alerts,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("call {}  {}", call.id, call.path);
    println!(
        "  key {}  agent {}  duration {}  status {}",
        call.call_key,
        call.agent_id.as_deref().unwrap_or("-"),
        call.duration_s.map_or("-".into(), |d| format!("{d:.1} s")),
        call.status
    );
    if let Some(e) = &call.error {
        println!("  error: {e}");
    }
    if let Some(sp) = &call.speakers {
        if sp.separated {
            println!("  speakers: {}", sp.note);
        } else {
            println!(
                "  speakers: NOT SEPARATED ({}): one mixed speaker, findings may be the caller's",
                sp.note
            );
        }
    }
    if call.status == callqc::store::CallStatus::Done
        && let Some((e, at)) = failures.first()
    {
        println!("  note: a later attempt failed ({at}): {e} — the analysis below is kept");
    }
    if let Some(l) = &live {
        println!(
            "  live call over {} from {}: ended {}{}; {} warnings shown, {} utterances shed",
            l.protocol,
            l.peer,
            l.end_reason,
            if l.complete() {
                ""
            } else {
                " (INCOMPLETE: analysed with what arrived)"
            },
            l.alerts,
            l.shed_utterances
        );
        for a in &alerts {
            println!(
                "    [{:6.1}–{:6.1}] {}  latency {} ms, to {} agent page(s), {} supervisor page(s)",
                a.evidence_start_s,
                a.evidence_end_s,
                a.message,
                a.latency_ms(),
                a.agent_pages,
                a.supervisor_pages
            );
        }
    }
    for s in &scores {
        println!(
            "  score {:.1} ({} v{}: −{:.1}{})",
            s.total,
            s.rubric,
            s.rubric_version,
            s.deductions,
            if s.vetoed { ", VETO" } else { "" }
        );
    }
    let (observations, findings): (Vec<_>, Vec<_>) =
        findings.into_iter().partition(|f| f.observation);
    println!("\ndeductions:");
    if findings.is_empty() {
        println!("  none");
    }
    for f in &findings {
        println!(
            "  [{:6.1}–{:6.1}] {:<14} −{:<4} {}{} ({}) {}  [{}]",
            f.start,
            f.end,
            f.item_id,
            f.points,
            if f.veto { "VETO " } else { "" },
            f.description,
            f.role.map_or("-", |r| r.as_str()),
            f.evidence,
            f.review
        );
    }
    if !observations.is_empty() {
        println!("\nobservations (within the rules, no points):");
        for f in &observations {
            println!(
                "  [{:6.1}–{:6.1}] {:<14} {}",
                f.start, f.end, f.item_id, f.evidence
            );
        }
    }
    println!(
        "\nagent tone (threshold {threshold:.2}): {:.0}% tense, {:.0}% agitated, longest agitated stretch {:.1} s (max p {:.2})",
        summary.tense_share * 100.0,
        summary.agitated_share * 100.0,
        summary.longest_agitated_s,
        summary.max_agitated
    );
    println!("\ntranscript:");
    for (i, s) in call.segments.iter().enumerate() {
        let marks: Vec<&str> = findings
            .iter()
            .filter(|f| f.role.is_none_or(|r| r == s.role))
            .filter(|f| f.start < s.end && s.start < f.end)
            .map(|f| f.item_id.as_str())
            .collect();
        println!(
            "  [{:6.1}–{:6.1}] {:<6} {}{}",
            s.start,
            s.end,
            s.role.as_str(),
            s.text,
            if marks.is_empty() {
                String::new()
            } else {
                format!("   ◀ {}", marks.join(", "))
            }
        );
        if let Some(r) = call.raw_texts.iter().find(|r| r.segment == i) {
            println!("  {:>15} (recognised as: {})", "", r.raw_text);
        }
    }
    Ok(ExitCode::SUCCESS)
}
