//! Mono recordings: the two voices told apart and the agent named by the script
//! (`callqc::speakers`), measured on mono down-mixes of the eight samples against their ground
//! truth: the share of each labelled utterance's time given to the right party, the labelled
//! 禁语 still found, the caller's 禁语-like words (call06) not charged to the agent. A recording
//! of one voice is not split: it stays "mixed" with the reason.

mod common;

use std::path::{Path, PathBuf};

use callqc::audio::Role;
use callqc::audio::decode::decode_file;
use callqc::eval::GroundTruth;
use callqc::pipeline::call::Worker;
use callqc::pipeline::events::{CallEvent, Pass, RoleSeparation, Source};
use callqc::pipeline::session::{CallJob, SessionMode, analyze_recording};
use callqc::pipeline::sinks::VecSink;
use callqc::rubric::Rubric;
use callqc::vad::SpeechRegions;

/// Write `samples` (one channel, in [-1, 1]) as a 16-bit mono WAV.
fn write_mono(path: &Path, rate: u32, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    for &x in samples {
        w.write_sample((x.clamp(-1.0, 1.0) * 32767.0) as i16)
            .expect("write");
    }
    w.finalize().expect("finalize");
}

/// The sample as a mono recorder would have written it: both channels summed at half level.
fn down_mix(name: &str, dir: &Path) -> PathBuf {
    let rec = decode_file(&common::sample(&format!("{name}.wav"))).expect("decode");
    let n = rec.channels.iter().map(Vec::len).max().unwrap_or(0);
    let mixed: Vec<f32> = (0..n)
        .map(|i| {
            rec.channels
                .iter()
                .map(|c| c.get(i).copied().unwrap_or(0.0))
                .sum::<f32>()
                / rec.channels.len() as f32
        })
        .collect();
    let out = dir.join(format!("{name}.wav"));
    write_mono(&out, rec.sample_rate, &mixed);
    out
}

struct Analysed {
    separation: RoleSeparation,
    speech: Vec<SpeechRegions>,
    sink: VecSink,
}

fn analyse(w: &mut Worker, rubric: &Rubric, file: &Path) -> Analysed {
    let job = CallJob {
        path: file.to_path_buf(),
        agent_id: None,
        call_id: None,
        channel_map: Default::default(),
        source: Source::Batch,
        started_at: None,
    };
    let mut sink = VecSink::default();
    analyze_recording(w, rubric, &mut sink, 1, &job, None, SessionMode::Recording)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let (separation, speech) = sink
        .iter()
        .find_map(|e| match e {
            CallEvent::RolesSeparated { separation, speech } => {
                Some((separation.clone(), speech.clone()))
            }
            _ => None,
        })
        .unwrap_or_else(|| {
            panic!(
                "{}: a mono call must say how its roles were found",
                file.display()
            )
        });
    Analysed {
        separation,
        speech,
        sink,
    }
}

fn overlap(a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.1.min(b.1) - a.0.max(b.0)).max(0.0)
}

/// Seconds of `span` inside the turns of `role`.
fn time_of(speech: &[SpeechRegions], role: Role, span: (f64, f64)) -> f64 {
    speech
        .iter()
        .filter(|s| s.role == role)
        .flat_map(|s| &s.regions)
        .map(|r| overlap(span, (r.start, r.end)))
        .sum()
}

#[test]
fn mono_down_mixes_attribute_speech_to_the_right_party() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rubric = callqc::rubric::load(&common::root().join("rubrics/12345.toml")).expect("rubric");
    let mut w = common::worker(2);
    let (mut right_s, mut wrong_s) = (0.0, 0.0);
    let (mut utt_right, mut utt_total) = (0, 0);
    let mut separated = 0;
    println!("call    separated  right    utterances  禁语 found  note");
    for n in 1..=8 {
        let name = format!("call{n:02}");
        let truth: GroundTruth =
            serde_json::from_value(common::read_json(&common::sample(&format!("{name}.json"))))
                .expect("truth");
        let file = down_mix(&name, dir.path());
        let a = analyse(&mut w, &rubric, &file);
        let (mut right, mut wrong, mut utts) = (0.0, 0.0, 0);
        for u in &truth.utterances {
            let other = if u.channel == Role::Agent {
                Role::Caller
            } else {
                Role::Agent
            };
            let r = time_of(&a.speech, u.channel, (u.start, u.end));
            let x = time_of(&a.speech, other, (u.start, u.end));
            right += r;
            wrong += x;
            utts += usize::from(r > x);
        }
        let forbidden: Vec<_> = a
            .sink
            .findings(Pass::Final)
            .into_iter()
            .filter(|(f, _)| f.item_id == "refusal" || f.item_id == "flat_refusal")
            .filter(|(f, _)| !f.observation)
            .map(|(f, _)| (f.role, f.start, f.end))
            .collect();
        println!(
            "{name}  {:<9}  {:5.1} %  {utts:>2} / {:<2}     {:<10}  {}",
            a.separation.separated,
            100.0 * right / (right + wrong).max(1e-9),
            truth.utterances.len(),
            forbidden.len(),
            a.separation.note
        );
        separated += usize::from(a.separation.separated);
        if a.separation.separated {
            right_s += right;
            wrong_s += wrong;
            utt_right += utts;
            utt_total += truth.utterances.len();
            // Once separated, every segment is the agent's or the caller's.
            assert!(
                a.sink
                    .segments(Pass::Final)
                    .iter()
                    .all(|s| s.role != Role::Mixed),
                "{name}"
            );
        }
        // The labelled 禁语 are the agent's and found; a caller's are never charged to the agent.
        let charged_to_agent = forbidden
            .iter()
            .filter(|f| f.0 != Some(Role::Caller))
            .count();
        match name.as_str() {
            "call05" => assert!(
                charged_to_agent >= 2,
                "call05: the agent's 禁语 must still be found: {forbidden:?}"
            ),
            "call06" if a.separation.separated => assert_eq!(
                charged_to_agent, 0,
                "call06: the caller's words were charged to the agent: {forbidden:?}"
            ),
            _ => {}
        }
    }
    let share = right_s / (right_s + wrong_s).max(1e-9);
    println!(
        "separated {separated} of 8; of their labelled speech {:.1} % went to the right party; {utt_right} of {utt_total} utterances mostly right",
        100.0 * share
    );
    assert!(separated >= 4, "only {separated} of 8 mono calls separated");
    assert!(
        share >= 0.9,
        "only {:.1} % of speech attributed right",
        100.0 * share
    );
}

#[test]
fn one_voice_is_not_split_and_stays_mixed_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rubric = callqc::rubric::load(&common::root().join("rubrics/12345.toml")).expect("rubric");
    let mut w = common::worker(2);
    // Each party's channel alone is one voice: never split (the agitated agents of call03 and
    // call05 are the known exception, see callqc::speakers).
    let mut split = Vec::new();
    for n in [1, 4, 7] {
        for ch in 0..2 {
            let rec = decode_file(&common::sample(&format!("call0{n}.wav"))).expect("decode");
            let file = dir.path().join(format!("call0{n}-channel{ch}.wav"));
            write_mono(&file, rec.sample_rate, &rec.channels[ch]);
            let a = analyse(&mut w, &rubric, &file);
            println!("call0{n} channel {ch} alone: {:?}", a.separation);
            assert!(!a.separation.note.is_empty());
            if a.separation.separated {
                split.push(format!("call0{n} channel {ch}"));
            } else {
                assert!(
                    a.sink
                        .segments(Pass::Final)
                        .iter()
                        .all(|s| s.role == Role::Mixed)
                );
            }
        }
    }
    assert!(split.is_empty(), "one voice split in two: {split:?}");
}

/// Real voices: the pyannote sample (two people talking, human-labelled turns). The split
/// alone (no script: the speakers are not a hotline's) against the labels, for the best match
/// of voices to speakers, over the time where exactly one labelled speaker talks. "Not sure" is
/// an allowed answer; a split that is mostly wrong is not.
#[test]
fn real_voices_of_the_pyannote_sample() {
    use callqc::audio::roles::load_call_audio;
    use callqc::speakers::{VoiceSplit, split_two_voices};
    use callqc::vad::{Vad, VadParams};
    common::require_onnx();
    let wav = common::root().join("models/cache/testdata/pyannote-sample.wav");
    let rttm = std::fs::read_to_string(wav.with_extension("rttm")).expect("run scripts/setup.sh");
    let mut labelled: Vec<(String, f64, f64)> = Vec::new();
    for l in rttm.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if let (Some(s), Some(d), Some(who)) = (f.get(3), f.get(4), f.get(7)) {
            let (s, d): (f64, f64) = (s.parse().expect("start"), d.parse().expect("duration"));
            labelled.push((who.to_string(), s, s + d));
        }
    }
    let (_, roles) = load_call_audio(&wav, Default::default()).expect("decode");
    let mut vad = Vad::load(&common::root().join("models"), VadParams::default()).expect("vad");
    let regions = vad.detect(&roles[0]).expect("vad").regions;
    match split_two_voices(&roles[0].samples, &regions) {
        VoiceSplit::OneVoice { reason } => println!("pyannote sample: not separated ({reason})"),
        VoiceSplit::Two(two) => {
            let names: Vec<String> = {
                let mut n: Vec<String> = labelled.iter().map(|l| l.0.clone()).collect();
                n.sort();
                n.dedup();
                n
            };
            // Seconds of each labelled speaker's solo speech in each voice's turns.
            let mut m = vec![[0.0f64; 2]; names.len()];
            for (i, (who, s, e)) in labelled.iter().enumerate() {
                let others: Vec<(f64, f64)> = labelled
                    .iter()
                    .enumerate()
                    .filter(|(j, l)| *j != i && &l.0 != who)
                    .map(|(_, l)| (l.1, l.2))
                    .collect();
                let k = names.iter().position(|n| n == who).expect("name");
                // 10 ms steps: solo speech only.
                let mut t = *s;
                while t < *e {
                    if !others.iter().any(|o| o.0 <= t && t < o.1) {
                        for (v, turns) in two.turns.iter().enumerate() {
                            if turns.iter().any(|r| r.start <= t && t < r.end) {
                                m[k][v] += 0.01;
                            }
                        }
                    }
                    t += 0.01;
                }
            }
            let total: f64 = m.iter().map(|r| r[0] + r[1]).sum();
            let straight = m[0][0] + m.get(1).map_or(0.0, |r| r[1]);
            let crossed = m[0][1] + m.get(1).map_or(0.0, |r| r[0]);
            let share = straight.max(crossed) / total.max(1e-9);
            println!(
                "pyannote sample: two voices {:.1} semitones apart; {:.1} % of solo speech in the right voice ({:.1} s)",
                two.apart_st,
                100.0 * share,
                total
            );
            // Separating is a claim: when made, it must be mostly right.
            assert!(
                share >= 0.8,
                "two voices claimed, but only {:.1} % of solo speech in the right one",
                100.0 * share
            );
        }
    }
}
