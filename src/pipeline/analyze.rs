//! The whole analysis of one call: transcript → agent tone → rubric findings and score.
//!
//! [`score_call`] is the part that needs no audio (rubric over stored facts): `batch` calls it
//! right after ASR and tone, `rescore` calls it on what the database holds.

use serde::Serialize;

use crate::asr::Segment;
use crate::audio::Role;
use crate::rubric::{self, CallFacts, Finding, Rubric, Score};
use crate::text::spoken_char_count;
use crate::tone::{self, Baseline, ToneScorer, ToneSummary, ToneTrack, ToneWindow};
use crate::vad::SpeechRegions;

use super::call::{CallError, CallTranscript};

/// A call after every stage.
#[derive(Debug, Clone, Serialize)]
pub struct CallAnalysis {
    pub call: CallTranscript,
    pub tone: ToneTrack,
    pub tone_summary: ToneSummary,
    pub findings: Vec<Finding>,
    pub score: Score,
}

/// Characters per second of the agent's transcript inside each span (tone uses it as the
/// speaking-rate feature where a transcript exists).
pub fn transcript_rates(
    segments: &[Segment],
    role: Role,
    spans: &[(f64, f64)],
) -> Vec<Option<f64>> {
    spans
        .iter()
        .map(|&(s, e)| {
            let chars: usize = segments
                .iter()
                .filter(|g| g.role == role)
                .filter(|g| {
                    let mid = (g.start + g.end) / 2.0;
                    mid >= s && mid <= e
                })
                .map(|g| spoken_char_count(&g.text))
                .sum();
            (chars > 0 && e > s).then(|| chars as f64 / (e - s))
        })
        .collect()
}

/// Score the agent's tone over its VAD utterances.
pub fn score_tone(
    scorer: &mut ToneScorer,
    call: &CallTranscript,
    history: Option<&Baseline>,
) -> Result<ToneTrack, tone::ToneError> {
    let Some(agent) = call.audio.iter().find(|a| a.role == Role::Agent) else {
        // Mono calls carry both parties on one channel: an agent baseline would mix two voices.
        return Ok(ToneTrack::default());
    };
    let spans: Vec<(f64, f64)> = call
        .speech
        .iter()
        .filter(|s| s.role == Role::Agent)
        .flat_map(|s| s.regions.iter().map(|r| (r.start, r.end)))
        .collect();
    let rates = transcript_rates(&call.transcript.segments, Role::Agent, &spans);
    scorer.score_role_with_history(agent, &spans, Some(&rates), history)
}

/// Check the rubric over a call's facts.
pub fn score_call(
    rubric: &Rubric,
    duration_s: f64,
    segments: &[Segment],
    speech: &[SpeechRegions],
    tone: &[ToneWindow],
) -> (Vec<Finding>, Score) {
    let facts = CallFacts {
        duration_s,
        segments,
        speech,
        tone,
    };
    rubric::check(rubric, &facts)
}

/// Tone + rubric on a transcribed call.
pub fn analyze(
    call: CallTranscript,
    scorer: &mut ToneScorer,
    rubric: &Rubric,
    history: Option<&Baseline>,
) -> Result<CallAnalysis, CallError> {
    let tone = score_tone(scorer, &call, history).map_err(|source| CallError::Tone {
        path: call.path.clone(),
        source,
    })?;
    let tone_summary = tone::summarize(&tone, scorer.threshold());
    let (findings, score) = score_call(
        rubric,
        call.duration_s,
        &call.transcript.segments,
        &call.speech,
        &tone.windows,
    );
    Ok(CallAnalysis {
        call,
        tone,
        tone_summary,
        findings,
        score,
    })
}
