//! The stages after speech recognition, as plain functions of their inputs: agent tone over the
//! VAD utterances, and the rubric over a call's facts. [`super::session::CallSession`] calls
//! them at the end of every call; `rescore` calls [`score_call`] on what the store holds.

use crate::asr::Segment;
use crate::audio::{Role, RoleAudio};
use crate::rubric::{self, CallFacts, Finding, Rubric, Score};
use crate::text::spoken_char_count;
use crate::tone::{self, Baseline, ToneScorer, ToneTrack, ToneWindow};
use crate::vad::SpeechRegions;

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

/// Score the agent's tone over its VAD utterances, against the call's own baseline blended
/// with the agent's `history`.
pub fn score_tone(
    scorer: &mut ToneScorer,
    audio: &[RoleAudio],
    speech: &[SpeechRegions],
    segments: &[Segment],
    history: Option<&Baseline>,
) -> Result<ToneTrack, tone::ToneError> {
    let Some(agent) = audio.iter().find(|a| a.role == Role::Agent) else {
        // Mono calls carry both parties on one channel: an agent baseline would mix two voices.
        return Ok(ToneTrack::default());
    };
    let spans: Vec<(f64, f64)> = speech
        .iter()
        .filter(|s| s.role == Role::Agent)
        .flat_map(|s| s.regions.iter().map(|r| (r.start, r.end)))
        .collect();
    let rates = transcript_rates(segments, Role::Agent, &spans);
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
