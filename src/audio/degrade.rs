//! # Degraded copies of labelled calls: recordings as PBXs really make them
//!
//! `callqc degrade DIR --out OUT` writes, for every labelled call of `DIR` (NAME.wav +
//! NAME.json, docs/ground-truth.md), one copy per [`Condition`] under `OUT/<condition>/`, with
//! its labels carried over (and adjusted where the condition changes what is right: a call cut
//! short has no closing to judge, a talk-over put in is labelled). `callqc eval OUT/<condition>
//! --fresh` then measures callqc on each condition; `scripts/pbx-conditions.sh` does both and
//! prints the table the README quotes.
//!
//! The conditions are the ones a centre's recorder produces on calls where the agent did
//! nothing wrong: the other party's voice leaking into a channel (echo / crosstalk, attenuated
//! and delayed), office babble behind the agent, line noise, G.711 μ-law, music on hold, a
//! wrong-number call that ends after the greeting — and one real fault, an agent cutting into
//! the caller, so that removing bleed can be seen not to remove real talk-over too.
//!
//! Everything is deterministic (a fixed-seed generator), so a copy is the same on every machine.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::audio::Role;

/// One way a recording is degraded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Condition {
    /// `into`'s channel carries the other party at `db` (negative) after `delay_ms`.
    Bleed { into: Role, db: f64, delay_ms: f64 },
    /// Several other voices mixed at `dbfs` RMS behind the agent, all call long.
    Babble { dbfs: f64 },
    /// A steady noise floor at `dbfs` RMS on both channels.
    Noise { dbfs: f64 },
    /// Both channels through G.711 μ-law and back.
    MuLaw,
    /// Music on the agent's channel during every labelled hold.
    HoldMusic,
    /// The agent starts an utterance one second into the caller's longest turn (a real,
    /// labelled talk-over), with the caller's voice bleeding into the agent's channel at −24 dB.
    TalkOverWithBleed,
    /// The call cut after the caller's first turn, within 20 s (a wrong number).
    EndsEarly,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Condition::Bleed { into, db, delay_ms } => {
                write!(f, "bleed-into-{into}-{}db-{}ms", -db, delay_ms)
            }
            Condition::Babble { dbfs } => write!(f, "babble-{}dbfs", -dbfs),
            Condition::Noise { dbfs } => write!(f, "noise-{}dbfs", -dbfs),
            Condition::MuLaw => f.write_str("mulaw"),
            Condition::HoldMusic => f.write_str("hold-music"),
            Condition::TalkOverWithBleed => f.write_str("talk-over-with-bleed"),
            Condition::EndsEarly => f.write_str("ends-early"),
        }
    }
}

/// The conditions `callqc degrade` writes by default (issue 27's list).
pub fn default_conditions() -> Vec<Condition> {
    let bleed = |into, db, delay_ms| Condition::Bleed { into, db, delay_ms };
    vec![
        bleed(Role::Agent, -20.0, 10.0),
        bleed(Role::Agent, -24.0, 30.0),
        bleed(Role::Agent, -30.0, 60.0),
        bleed(Role::Caller, -24.0, 40.0),
        Condition::Babble { dbfs: -30.0 },
        Condition::Noise { dbfs: -46.0 },
        Condition::Noise { dbfs: -32.0 },
        Condition::MuLaw,
        Condition::HoldMusic,
        Condition::TalkOverWithBleed,
        Condition::EndsEarly,
    ]
}

/// Why a copy could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DegradeError {
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    #[error("{path}: cannot write: {source}")]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A labelled stereo call in memory: samples per role at the file's rate, and its sidecar.
/// Copies are written as 16-bit PCM whatever the original's encoding.
struct Call {
    rate: u32,
    agent: Vec<f32>,
    caller: Vec<f32>,
    /// The sidecar as written (unknown fields kept).
    truth: Value,
    /// Whether the agent is the left channel.
    agent_left: bool,
}

fn input_error(path: &Path, message: impl Into<String>) -> DegradeError {
    DegradeError::Input {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn read_call(wav: &Path, json: &Path) -> Result<Call, DegradeError> {
    let text = std::fs::read_to_string(json).map_err(|e| input_error(json, e.to_string()))?;
    let truth: Value =
        serde_json::from_str(&text).map_err(|e| input_error(json, format!("not JSON: {e}")))?;
    let rec = super::decode::decode_file(wav).map_err(|e| input_error(wav, e.to_string()))?;
    let [left, right]: [Vec<f32>; 2] = rec.channels.try_into().map_err(|c: Vec<Vec<f32>>| {
        input_error(
            wav,
            format!(
                "degraded copies are made of stereo recordings; this one has {} channel(s)",
                c.len()
            ),
        )
    })?;
    let agent_left = truth
        .pointer("/channel_map/left")
        .and_then(Value::as_str)
        .is_none_or(|r| r == "agent");
    let (agent, caller) = if agent_left {
        (left, right)
    } else {
        (right, left)
    };
    Ok(Call {
        rate: rec.sample_rate,
        agent,
        caller,
        truth,
        agent_left,
    })
}

fn write_call(call: &Call, wav: &Path, json: &Path) -> Result<(), DegradeError> {
    let out_err = |path: &Path, e: std::io::Error| DegradeError::Output {
        path: path.to_path_buf(),
        source: e,
    };
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: call.rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let to_io = |e: hound::Error| std::io::Error::other(e.to_string());
    let mut w = hound::WavWriter::create(wav, spec).map_err(|e| out_err(wav, to_io(e)))?;
    let (left, right) = if call.agent_left {
        (&call.agent, &call.caller)
    } else {
        (&call.caller, &call.agent)
    };
    let n = left.len().max(right.len());
    let pcm = |v: &[f32], i: usize| {
        (v.get(i).copied().unwrap_or(0.0) * 32767.0)
            .round()
            .clamp(-32768.0, 32767.0) as i16
    };
    for i in 0..n {
        w.write_sample(pcm(left, i))
            .map_err(|e| out_err(wav, to_io(e)))?;
        w.write_sample(pcm(right, i))
            .map_err(|e| out_err(wav, to_io(e)))?;
    }
    w.finalize().map_err(|e| out_err(wav, to_io(e)))?;
    let text =
        serde_json::to_string_pretty(&call.truth).map_err(|e| out_err(json, to_io_json(e)))?;
    std::fs::write(json, text).map_err(|e| out_err(json, e))
}

fn to_io_json(e: serde_json::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// A small deterministic generator (so copies are the same everywhere; the tests use it for
/// replayable randomness too).
pub struct Lcg(pub u64);

impl Lcg {
    /// Uniform in [0, 1), 53 bits.
    pub fn unit(&mut self) -> f64 {
        self.step();
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn step(&mut self) {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
    }

    fn uniform(&mut self) -> f32 {
        self.step();
        ((self.0 >> 40) as f32) / ((1u64 << 24) as f32)
    }
    /// Roughly normal (the sum of four uniforms), unit variance.
    fn normal(&mut self) -> f32 {
        let s: f32 = (0..4).map(|_| self.uniform()).sum();
        (s - 2.0) * (3.0f32).sqrt()
    }
}

fn rms(v: &[f32]) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    (v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32).sqrt()
}

fn gain(db: f64) -> f32 {
    10f64.powf(db / 20.0) as f32
}

/// `into += g · from(t − delay)`.
fn add_delayed(into: &mut [f32], from: &[f32], g: f32, delay: usize) {
    for (i, s) in into.iter_mut().enumerate().skip(delay) {
        if let Some(&x) = from.get(i - delay) {
            *s += g * x;
        }
    }
}

/// G.711 μ-law encode of one linear sample (16-bit range).
fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let exponent = (0..8).rev().find(|&e| s & (0x80 << e) != 0).unwrap_or(0);
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

fn mulaw(v: &mut [f32]) {
    for s in v.iter_mut() {
        let pcm = (*s * 32767.0).round().clamp(-32768.0, 32767.0) as i16;
        *s = f32::from(super::decode::ulaw_to_linear(linear_to_ulaw(pcm))) / 32768.0;
    }
}

/// Music on hold: a slow melody of soft harmonic tones (a recorded announcement's stand-in
/// that no VAD should take for an agent speaking).
fn music(len: usize, rate: u32, level: f32) -> Vec<f32> {
    let notes = [262.0f32, 330.0, 392.0, 349.0, 294.0, 392.0, 440.0, 330.0];
    let note_len = (rate as f32 * 0.4) as usize;
    let mut out = vec![0.0f32; len];
    for (i, s) in out.iter_mut().enumerate() {
        let n = (i / note_len.max(1)) % notes.len();
        let t = i as f32 / rate as f32;
        let within = (i % note_len.max(1)) as f32 / note_len.max(1) as f32;
        let env = (within * 8.0).min(1.0) * (1.0 - within).sqrt();
        let f = notes[n];
        let tone = (2.0 * std::f32::consts::PI * f * t).sin()
            + 0.5 * (4.0 * std::f32::consts::PI * f * t).sin()
            + 0.25 * (6.0 * std::f32::consts::PI * f * t).sin()
            + 0.4 * (2.0 * std::f32::consts::PI * f * 0.5 * t).sin();
        *s = tone * env;
    }
    let r = rms(&out).max(1e-9);
    out.iter_mut().for_each(|s| *s *= level / r);
    out
}

fn spans(truth: &Value, key: &str) -> Vec<(f64, f64)> {
    truth
        .pointer(&format!("/labels/{key}"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|h| Some((h.get("start")?.as_f64()?, h.get("end")?.as_f64()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn utterances(truth: &Value) -> Vec<(Role, f64, f64, usize)> {
    truth
        .get("utterances")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .enumerate()
                .filter_map(|(i, u)| {
                    let role: Role = u.get("channel")?.as_str()?.parse().ok()?;
                    Some((role, u.get("start")?.as_f64()?, u.get("end")?.as_f64()?, i))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Apply one condition to a call; `others` lends voices for babble. `None`: the condition does
/// not apply to this call (hold music on a call without a hold, a first caller turn after 20 s).
fn degrade(call: &Call, cond: Condition, others: &[&[f32]], seed: u64) -> Option<Call> {
    let rate = call.rate as f64;
    let at = |s: f64| (s * rate).round().max(0.0) as usize;
    let mut out = Call {
        rate: call.rate,
        agent: call.agent.clone(),
        caller: call.caller.clone(),
        truth: call.truth.clone(),
        agent_left: call.agent_left,
    };
    let mut rng = Lcg(seed);
    match cond {
        Condition::Bleed { into, db, delay_ms } => {
            let delay = at(delay_ms / 1000.0);
            match into {
                Role::Caller => add_delayed(&mut out.caller, &call.agent, gain(db), delay),
                _ => add_delayed(&mut out.agent, &call.caller, gain(db), delay),
            }
        }
        Condition::Babble { dbfs } => {
            let n = out.agent.len();
            let mut babble = vec![0.0f32; n];
            for (k, voice) in others.iter().enumerate().take(4) {
                if voice.is_empty() {
                    continue;
                }
                let offset = (k + 1) * voice.len() / 5;
                for (i, b) in babble.iter_mut().enumerate() {
                    *b += voice[(i + offset) % voice.len()];
                }
            }
            let r = rms(&babble);
            if r <= 0.0 {
                return None;
            }
            let g = gain(dbfs) / r;
            out.agent
                .iter_mut()
                .zip(&babble)
                .for_each(|(s, b)| *s += g * b);
        }
        Condition::Noise { dbfs } => {
            let g = gain(dbfs);
            for s in out.agent.iter_mut().chain(out.caller.iter_mut()) {
                *s += g * rng.normal();
            }
        }
        Condition::MuLaw => {
            mulaw(&mut out.agent);
            mulaw(&mut out.caller);
        }
        Condition::HoldMusic => {
            let holds = spans(&call.truth, "holds");
            if holds.is_empty() {
                return None;
            }
            for (s, e) in holds {
                // Music starts a moment after the agent's "请稍等" and stops before they return.
                let (a, b) = (at(s + 0.5), at(e - 0.5).min(out.agent.len()));
                if b > a {
                    let m = music(b - a, call.rate, gain(-24.0));
                    out.agent[a..b]
                        .iter_mut()
                        .zip(&m)
                        .for_each(|(x, y)| *x += y);
                }
            }
        }
        Condition::TalkOverWithBleed => {
            let utts = utterances(&call.truth);
            let (_, cs, ce, _) = *utts
                .iter()
                .filter(|u| u.0 == Role::Caller)
                .max_by(|a, b| (a.2 - a.1).total_cmp(&(b.2 - b.1)))?;
            // The agent's shortest mid-call utterance of at least 2 s (not the greeting or the
            // goodbye): its words said again, over the caller.
            let agent: Vec<_> = utts.iter().filter(|u| u.0 == Role::Agent).collect();
            let &&(_, us, ue, idx) = agent
                .iter()
                .skip(1)
                .take(agent.len().saturating_sub(2))
                .filter(|u| u.2 - u.1 >= 2.0)
                .min_by(|a, b| (a.2 - a.1).total_cmp(&(b.2 - b.1)))?;
            let start = cs + 1.0;
            let len = ue - us;
            if ce - start < 1.5 {
                return None;
            }
            let words = call.agent[at(us)..at(ue).min(call.agent.len())].to_vec();
            let from = at(start);
            for (i, w) in words.iter().enumerate() {
                if let Some(s) = out.agent.get_mut(from + i) {
                    *s += w;
                }
            }
            add_delayed(&mut out.agent, &call.caller, gain(-24.0), at(0.03));
            let mut said = call.truth["utterances"][idx].clone();
            said["start"] = Value::from((start * 100.0).round() / 100.0);
            said["end"] = Value::from(((start + len) * 100.0).round() / 100.0);
            if let Some(list) = out.truth["utterances"].as_array_mut() {
                list.push(said);
                list.sort_by(|a, b| {
                    let t = |v: &Value| v["start"].as_f64().unwrap_or(0.0);
                    t(a).total_cmp(&t(b))
                });
            }
            let overlap_end = (start + len).min(ce);
            out.truth["labels"]["talk_over"] = serde_json::json!([
                { "start": (start * 100.0).round() / 100.0, "end": (overlap_end * 100.0).round() / 100.0 }
            ]);
        }
        Condition::EndsEarly => {
            let utts = utterances(&call.truth);
            let (_, _, first_caller_end, idx) = *utts.iter().find(|u| u.0 == Role::Caller)?;
            let cut = first_caller_end + 1.0;
            if cut > 20.0 {
                return None;
            }
            out.agent.truncate(at(cut));
            out.caller.truncate(at(cut));
            if let Some(list) = out.truth["utterances"].as_array_mut() {
                list.truncate(idx + 1);
            }
            let labels = &mut out.truth["labels"];
            // Nothing wrong in a wrong number: the greeting is judged as said, the rest is not
            // there to judge.
            labels["closing_ok"] = Value::Null;
            for key in [
                "forbidden",
                "forbidden_detail",
                "agitated_spans",
                "dead_air",
                "holds",
            ] {
                labels[key] = serde_json::json!([]);
            }
            labels["agent_tone"] = Value::from("calm");
        }
    }
    out.truth["condition"] = Value::from(cond.to_string());
    Some(out)
}

/// What [`write_copies`] made.
#[derive(Debug, Default)]
pub struct Written {
    /// `(condition directory, calls written there)`.
    pub dirs: Vec<(PathBuf, usize)>,
}

/// Write a degraded copy of every labelled call, given as (audio, ground-truth JSON) paths (the
/// caller lists them: `eval::find_labelled_calls`), under `out/<condition>/`.
pub fn write_copies(
    calls: &[(PathBuf, PathBuf)],
    out: &Path,
    conditions: &[Condition],
) -> Result<Written, DegradeError> {
    let loaded: Vec<(String, Call)> = calls
        .iter()
        .map(|(audio, json)| {
            let name = json
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            read_call(audio, json).map(|call| (name, call))
        })
        .collect::<Result<_, _>>()?;
    let mut written = Written::default();
    for &cond in conditions {
        let sub = out.join(cond.to_string());
        std::fs::create_dir_all(&sub).map_err(|e| DegradeError::Output {
            path: sub.clone(),
            source: e,
        })?;
        let mut n = 0;
        for (k, (name, call)) in loaded.iter().enumerate() {
            let others: Vec<&[f32]> = loaded
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != k)
                .map(|(_, (_, c))| c.caller.as_slice())
                .collect();
            let Some(copy) = degrade(call, cond, &others, 0x5eed + k as u64) else {
                continue;
            };
            let mut copy = copy;
            let audio = format!("{name}.wav");
            copy.truth["audio"] = Value::from(audio.clone());
            write_call(&copy, &sub.join(&audio), &sub.join(format!("{name}.json")))?;
            n += 1;
        }
        written.dirs.push((sub, n));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mulaw_round_trip_is_close() {
        for s in [-32000i16, -1000, -1, 0, 1, 77, 1000, 12345, 32000] {
            let back = super::super::decode::ulaw_to_linear(linear_to_ulaw(s));
            let err = (i32::from(back) - i32::from(s)).abs();
            assert!(err <= i32::from(s).abs() / 16 + 8, "{s} -> {back}");
        }
    }

    #[test]
    fn bleed_is_a_delayed_attenuated_copy() {
        let mut into = vec![0.0f32; 10];
        let from: Vec<f32> = (0..10).map(|i| i as f32).collect();
        add_delayed(&mut into, &from, 0.5, 3);
        assert_eq!(&into[..4], &[0.0, 0.0, 0.0, 0.0]);
        assert_eq!(into[5], 1.0);
    }
}
