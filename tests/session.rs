//! The streaming core on the real models: every sample call pushed through a live
//! `CallSession` in 20 ms frames, compared with the whole-file path.

mod common;

use callqc::audio::AudioFormat;
use callqc::audio::Role;
use callqc::audio::roles::role_channels;
use callqc::eval::{self, LabelledCall};
use callqc::pipeline::call::Worker;
use callqc::pipeline::events::{CallEvent, CallInfo, Pass, Source};
use callqc::pipeline::session::{
    AudioRetention, CallJob, CallSession, SessionMode, analyze_recording,
};
use callqc::pipeline::sinks::VecSink;
use callqc::rubric;
use callqc::rubric::Kind;
use callqc::vad::SpeechRegion;

use common::root;

fn worker() -> Worker {
    common::worker(2)
}

/// Push a labelled call in 20 ms frames of its own encoding (PCM16 / μ-law / A-law bytes) into
/// a live session; `end` ends it. Returns what `end` returned and the most 16 kHz audio the
/// session held (seconds, all channels) after any frame.
fn stream_call_with<T>(
    w: &mut Worker,
    r: &rubric::Rubric,
    call: &LabelledCall,
    sink: &mut VecSink,
    retention: AudioRetention,
    end: impl FnOnce(CallSession<'_>) -> T,
) -> (T, f64) {
    let rec = callqc::audio::decode::decode_file(&call.audio_path).expect("decodes");
    let channels = role_channels(&rec, call.truth.channel_map()).expect("roles");
    let info = CallInfo {
        key: call.truth.call_id.clone(),
        path: call.audio_path.clone(),
        audio_hash: String::new(),
        agent_id: call.truth.agent_id.clone(),
        channel_map: call.truth.channel_map(),
        source: Source::Live,
        started_at: None,
        roles: channels.iter().map(|(r, _)| *r).collect(),
        format: Some(AudioFormat {
            sample_rate: rec.sample_rate,
            channels: rec.channels.len(),
            encoding: rec.encoding,
        }),
    };
    let encoding = rec.encoding.frame_encoding().expect("telephony encoding");
    let mut session =
        CallSession::begin(w, r, sink, 1, info, SessionMode::Live, None).expect("begins");
    session.set_audio_retention(retention);
    let frame = (rec.sample_rate / 50) as usize;
    let n = channels[0].1.len();
    let (mut at, mut most_held) = (0, 0.0f64);
    while at < n {
        for (c, (_, samples)) in channels.iter().enumerate() {
            let end = (at + frame).min(samples.len());
            let bytes = encoding.encode(&samples[at..end]);
            session.push_frame(c, encoding, &bytes).expect("push");
        }
        most_held = most_held.max(session.audio_held_s());
        at += frame;
    }
    (end(session), most_held)
}

/// A labelled call streamed live and finished in the session (the final pass on its audio).
fn stream_call(w: &mut Worker, r: &rubric::Rubric, call: &LabelledCall) -> VecSink {
    let mut sink = VecSink::default();
    let (end, _) = stream_call_with(w, r, call, &mut sink, AudioRetention::WholeCall, |s| {
        s.finish()
    });
    end.expect("finishes");
    sink
}

fn whole_file(w: &mut Worker, r: &rubric::Rubric, call: &LabelledCall) -> VecSink {
    let mut sink = VecSink::default();
    let job = CallJob {
        path: call.audio_path.clone(),
        agent_id: call.truth.agent_id.clone(),
        call_id: Some(call.truth.call_id.clone()),
        channel_map: call.truth.channel_map(),
        started_at: None,
        source: callqc::pipeline::events::Source::Batch,
    };
    analyze_recording(w, r, &mut sink, 1, &job, None, SessionMode::Recording).expect("analyses");
    sink
}

fn sorted(mut v: Vec<SpeechRegion>) -> Vec<SpeechRegion> {
    v.sort_by(|a, b| a.start.total_cmp(&b.start));
    v
}

#[test]
fn streamed_calls_match_the_file_path_and_warn_within_two_seconds() {
    let mut w = worker();
    let r = rubric::load(&root().join("rubrics/12345.toml")).expect("rubric");
    let calls = eval::find_labelled_calls(&root().join("samples")).expect("samples");
    assert_eq!(calls.len(), 8);
    let (mut forbidden, mut agitated) = (0, 0);
    let mut agitation_missed = Vec::new();
    let mut worst_delay: f64 = 0.0;
    for call in &calls {
        let id = &call.truth.call_id;
        let live = stream_call(&mut w, &r, call);
        let file = whole_file(&mut w, &r, call);

        // Speech regions: every edge within 50 ms of the whole-file path's.
        for role in [Role::Agent, Role::Caller] {
            let a = sorted(live.regions(role));
            let b = sorted(file.regions(role));
            assert_eq!(a.len(), b.len(), "{id} {role}: {a:?} vs {b:?}");
            for (x, y) in a.iter().zip(&b) {
                assert!(
                    (x.start - y.start).abs() <= 0.05 && (x.end - y.end).abs() <= 0.05,
                    "{id} {role}: {x:?} vs {y:?}"
                );
            }
        }

        // The record at the end is the recording's analysis: same score and findings.
        let (le, fe) = (live.end().expect("ended"), file.end().expect("ended"));
        assert_eq!(le.score, fe.score, "{id}");
        let items = |s: &VecSink| -> Vec<String> {
            s.findings(Pass::Final)
                .iter()
                .map(|(f, _)| f.item_id.clone())
                .collect()
        };
        assert_eq!(items(&live), items(&file), "{id}");
        assert!(
            file.findings(Pass::Live).is_empty(),
            "{id}: a recording has no live pass"
        );

        // Provisional findings: each labelled 禁语 and agitated span is covered by one, emitted
        // no later than 2 s of audio after the labelled utterance ends.
        let provisional = live.findings(Pass::Live);
        let first_warning = |kind: Kind, start: f64, end: f64| {
            provisional
                .iter()
                .filter(|(f, _)| f.kind == kind)
                .filter(|(f, _)| f.start < end && start < f.end)
                .map(|(_, at)| *at)
                .fold(f64::INFINITY, f64::min)
        };
        let mut covered = |hit: f64, start: f64, end: f64, what: &str| {
            assert!(
                hit.is_finite(),
                "{id}: no provisional finding for {what} [{start}, {end}]: {provisional:?}"
            );
            worst_delay = worst_delay.max(hit - end);
            assert!(
                hit <= end + 2.0,
                "{id}: {what} [{start}, {end}] warned at {hit:.2} s of audio"
            );
        };
        for f in &call.truth.labels.forbidden_detail {
            let (Some(s), Some(e)) = (f.start, f.end) else {
                continue;
            };
            covered(first_warning(Kind::ForbiddenPhrase, s, e), s, e, &f.phrase);
            forbidden += 1;
        }
        for &(s, e) in &call.truth.labels.agitated_spans {
            agitated += 1;
            let hit = first_warning(Kind::AgentTone, s, e);
            if hit.is_finite() {
                covered(hit, s, e, "agitation");
            } else {
                agitation_missed.push(format!("{id} [{s}, {e}]"));
            }
        }
        // Provisional 禁语 and tone warnings only where labelled ones are (no invented warnings
        // on clean calls).
        for (f, _) in &provisional {
            if f.kind == Kind::AgentTone {
                assert!(
                    call.truth
                        .labels
                        .agitated_spans
                        .iter()
                        .any(|&(s, e)| f.start < e && s < f.end),
                    "{id}: provisional tone warning not in the labels: {f:?}"
                );
            }
            if f.kind == Kind::ForbiddenPhrase {
                assert!(
                    call.truth.labels.forbidden_detail.iter().any(|d| d
                        .start
                        .zip(d.end)
                        .is_some_and(|(s, e)| f.start < e && s < f.end)),
                    "{id}: provisional 禁语 not in the labels: {f:?}"
                );
            }
        }
        assert!(
            live.iter().any(|e| matches!(
                e,
                CallEvent::Segment {
                    pass: Pass::Live,
                    ..
                }
            )),
            "{id}: no live transcript"
        );
    }
    assert!(
        forbidden >= 3 && agitated >= 4,
        "{forbidden} 禁语, {agitated} agitated spans"
    );
    // Every labelled agitated span is warned within 2 s (call03's second outburst only since
    // windows already flagged stay out of the live baseline).
    assert!(
        agitation_missed.is_empty(),
        "agitated spans with no live warning: {agitation_missed:?}"
    );
    eprintln!("agitated spans with no live warning: {agitation_missed:?}");
    eprintln!("worst warning delay after the labelled utterance's end: {worst_delay:.2} s");
}

/// A live server's session keeps only the audio its live analysis can still read (the final pass
/// reads the recording): it must emit exactly what a session keeping the whole call emits, while
/// holding a few seconds of audio instead of the call.
#[test]
fn a_live_session_that_keeps_only_open_utterances_emits_what_one_keeping_the_call_emits() {
    let mut w = worker();
    let r = rubric::load(&root().join("rubrics/12345.toml")).expect("rubric");
    let calls = eval::find_labelled_calls(&root().join("samples")).expect("samples");
    // The call with 禁语 and agitation, and one with agitation only.
    for id in ["call05", "call03"] {
        let call = calls
            .iter()
            .find(|c| c.truth.call_id == id)
            .expect("sample call");
        let mut run = |retention| {
            let mut sink = VecSink::default();
            let (end, most_held) =
                stream_call_with(&mut w, &r, call, &mut sink, retention, |mut s| {
                    let received = s.end_live().expect("ends");
                    // Only the trimmed session tries its final pass (refused: its events stop here).
                    let refused =
                        retention == AudioRetention::OpenUtterances && s.finish().is_err();
                    (received, refused)
                });
            (sink, end, most_held)
        };
        let (whole, (whole_s, _), whole_held) = run(AudioRetention::WholeCall);
        let (open, (open_s, refused), open_held) = run(AudioRetention::OpenUtterances);
        assert!(
            refused,
            "{id}: a session without the whole call's audio has no final pass"
        );
        assert_eq!(whole_s, open_s, "{id}");
        assert!(matches!(open.iter().last(), Some(CallEvent::Failed { .. })));
        let events = |s: &VecSink| -> Vec<String> {
            s.iter()
                .filter(|e| !matches!(e, CallEvent::Failed { .. }))
                .map(|e| format!("{e:?}"))
                .collect()
        };
        let (a, b) = (events(&whole), events(&open));
        assert!(
            a.iter().any(|e| e.starts_with("Finding")),
            "{id}: live findings expected"
        );
        assert_eq!(a.len(), b.len(), "{id}: event counts");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "{id}");
        }
        // Bounded by the longest utterance of each channel plus the margin and trim step
        // (1 + 5 s) and the VAD's hang-over; the whole call is ~2 × its duration.
        let longest = |role| {
            whole
                .regions(role)
                .iter()
                .map(|r| r.end - r.start)
                .fold(0.0, f64::max)
        };
        let bound = longest(Role::Agent) + longest(Role::Caller) + 2.0 * 8.0;
        assert!(
            (whole_held - 2.0 * whole_s).abs() < 1.0,
            "{id}: the whole call holds both channels: {whole_held:.1} s for {whole_s:.1} s"
        );
        assert!(
            open_held <= bound && open_held < whole_held / 2.0,
            "{id}: held {open_held:.1} s of audio (bound {bound:.1} s, whole call {whole_held:.1} s)"
        );
        eprintln!("{id}: most audio held {open_held:.1} s (whole call {whole_held:.1} s)");
    }
}
