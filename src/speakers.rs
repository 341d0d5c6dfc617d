//! Two voices on one channel: who speaks when on a mono recording (角色识别).
//!
//! Many older recorders mix the agent and the caller into one channel. Analysed as one "mixed"
//! speaker, everything the caller says counts as the agent's — a caller's "我也没办法了" becomes
//! an agent 禁语. This module splits a mono call's speech into two voices; the session then
//! decodes each voice's turns and names the agent as the voice that says the rubric's scripted
//! agent phrases (see [`crate::rubric::Rubric::script_phrases_heard`]).
//!
//! ## Method
//! 1. A voice vector for each VAD region and for each chunk of about [`CHUNK_S`] of it: the
//!    median pitch (semitones) and the mean mel-cepstrum (c1…c12, 250–3500 Hz: the vocal tract
//!    and the line) of its voiced, active 10 ms frames (at least [`MIN_VOICED_FRAMES`]). Each
//!    dimension is scaled by its spread over the call (median absolute deviation); pitch weighs
//!    as much as the twelve cepstra together.
//! 2. Two-means clustering of the regions (a turn is mostly one speaker, and a region's average
//!    is steadier than a chunk's), started three ways, keeping the tightest result.
//! 3. Regions of [`SPLIT_REGION_S`] or more may hold two turns the VAD joined: their chunks go
//!    to the nearer voice; a lone chunk between two of the other voice takes their label; the
//!    change moves to the quietest frame within ±[`BOUNDARY_SEARCH_S`].
//! 4. The session decodes each voice's turns and names the agent: the voice saying at least
//!    two phrases of the rubric's agent script while the other says at most one
//!    (`CallSession`, `attribute_voices`).
//!
//! ## When it says "not sure"
//! The call is analysed as one mixed speaker, with a warning and the reason in the store, when:
//! there are fewer than four voiced regions; the smaller voice has under [`MIN_VOICE_S`] or
//! [`MIN_VOICE_SHARE`] of the speech; the voices' median pitch is under [`MIN_APART_ST`] apart;
//! or the script does not single out one voice.
//!
//! ## Limits
//! Talk-over cannot be measured on a mono recording (overlapping speech is one region, given to
//! one voice). Two voices of similar pitch (two women, say) are "not sure" by design. An
//! agent's strong outbursts can form a cluster of their own: on a one-voice recording of an
//! agitated agent (a recorder of the agent's line only) the outbursts were split off as a
//! "caller". Measured on mono down-mixes of the samples by `tests/mono.rs`.

use crate::tone::features::{FrameAnalysis, HOP_S};
use crate::vad::SpeechRegion;

/// How the speakers of a mono recording were attributed (this module): two voices, one
/// named the agent because it says the script, or one mixed speaker and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RoleSeparation {
    /// The agent's and the caller's turns are known; else the call stays one mixed speaker.
    pub separated: bool,
    /// For people: the evidence for the attribution, or the reason there is none.
    pub note: String,
}

/// Chunk length for voice vectors (seconds; regions are cut into equal chunks near this).
pub const CHUNK_S: f64 = 0.5;
/// Voiced active frames (10 ms) a chunk needs for a voice vector.
pub const MIN_VOICED_FRAMES: usize = 8;
/// Each voice needs this much speech…
pub const MIN_VOICE_S: f64 = 2.0;
/// …and this share of the call's speech, else the call has one voice (or a voice and noise).
pub const MIN_VOICE_SHARE: f64 = 0.08;
/// The two voices' median pitch at least this far apart (semitones). Measured on the samples'
/// channels alone (one voice each), splitting one voice gave 0.7–3.6 semitones (4.5 and 5.3
/// where an agent's outbursts formed the second cluster); on their mono down-mixes the two
/// parties were 3.7–9.0 apart.
pub const MIN_APART_ST: f64 = 3.5;
/// Regions at least this long may hold two turns: their chunks are labelled one by one.
pub const SPLIT_REGION_S: f64 = 3.0;
/// How far a voice change inside a region may move to the quietest frame.
pub const BOUNDARY_SEARCH_S: f64 = 0.35;

/// The outcome of splitting a mono call into voices.
#[derive(Debug, Clone, PartialEq)]
pub enum VoiceSplit {
    Two(TwoVoices),
    /// One voice, or two that cannot be told apart: the reason, for the warning.
    OneVoice {
        reason: String,
    },
}

/// Turns of two voices (0 and 1: voice 0 is the one with the lower pitch centre).
#[derive(Debug, Clone, PartialEq)]
pub struct TwoVoices {
    /// Each voice's turns, in time order; together they cover the VAD regions exactly.
    pub turns: [Vec<SpeechRegion>; 2],
    /// How far apart the two voices' median pitch is (semitones).
    pub apart_st: f64,
    /// Median pitch of each voice (Hz), for the record.
    pub pitch_hz: [f64; 2],
}

impl TwoVoices {
    /// Seconds of speech of each voice.
    pub fn speech_s(&self) -> [f64; 2] {
        self.turns
            .clone()
            .map(|t| t.iter().map(SpeechRegion::duration).sum())
    }
}

/// One chunk of a region.
struct Chunk {
    region: usize,
    end: f64,
    voice: Option<[f64; DIMS]>,
    label: Option<usize>,
}

/// Mel-cepstral coefficients c1…c12 per voice vector (c0, the level, is left out: loudness says
/// more about the line and the mood than about who speaks).
const CEPSTRA: usize = 12;
const DIMS: usize = 1 + CEPSTRA;
/// Pitch counts as much as the twelve cepstra together.
const PITCH_WEIGHT: f64 = 1.0;
const CEPSTRUM_WEIGHT: f64 = 0.29; // ≈ 1 / sqrt(12)
const MEL_BANDS: usize = 20;
const MEL_LOW_HZ: f64 = 250.0;
const MEL_HIGH_HZ: f64 = 3500.0;
const SPEC_N: usize = 512;

/// Mel filterbank and DCT for the cepstra, built once per call.
struct Cepstra {
    fft: crate::tone::features::Fft,
    window: Vec<f64>,
    /// Per band: (first bin, weights).
    bands: Vec<(usize, Vec<f64>)>,
    dct: Vec<[f64; MEL_BANDS]>,
}

impl Cepstra {
    fn new() -> Self {
        let rate = crate::tone::features::SAMPLE_RATE as f64;
        let mel = |f: f64| 2595.0 * (1.0 + f / 700.0).log10();
        let hz = |m: f64| 700.0 * (10f64.powf(m / 2595.0) - 1.0);
        let edges: Vec<f64> = (0..MEL_BANDS + 2)
            .map(|i| {
                let m = mel(MEL_LOW_HZ)
                    + (mel(MEL_HIGH_HZ) - mel(MEL_LOW_HZ)) * i as f64 / (MEL_BANDS + 1) as f64;
                hz(m) / rate * SPEC_N as f64
            })
            .collect();
        let bands = (0..MEL_BANDS)
            .map(|b| {
                let (lo, mid, hi) = (edges[b], edges[b + 1], edges[b + 2]);
                let first = lo.ceil() as usize;
                let weights = (first..=hi.floor() as usize)
                    .map(|k| {
                        let k = k as f64;
                        if k <= mid {
                            (k - lo) / (mid - lo)
                        } else {
                            (hi - k) / (hi - mid)
                        }
                    })
                    .collect();
                (first, weights)
            })
            .collect();
        let dct = (1..=CEPSTRA)
            .map(|c| {
                std::array::from_fn(|b| {
                    (std::f64::consts::PI * c as f64 * (b as f64 + 0.5) / MEL_BANDS as f64).cos()
                })
            })
            .collect();
        let window = (0..SPEC_N)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / SPEC_N as f64).cos())
            .collect();
        Cepstra {
            fft: crate::tone::features::Fft::new(SPEC_N),
            window,
            bands,
            dct,
        }
    }

    /// c1…c12 of the 32 ms around sample `centre`.
    fn at(&self, samples: &[f32], centre: usize, buf: &mut [(f64, f64)]) -> [f64; CEPSTRA] {
        let start = centre as isize - (SPEC_N / 2) as isize;
        for (k, b) in buf.iter_mut().enumerate() {
            let i = start + k as isize;
            let x = if i >= 0 && (i as usize) < samples.len() {
                f64::from(samples[i as usize])
            } else {
                0.0
            };
            *b = (x * self.window[k], 0.0);
        }
        self.fft.forward(buf);
        let logs: [f64; MEL_BANDS] = std::array::from_fn(|b| {
            let (first, w) = &self.bands[b];
            let e: f64 = w
                .iter()
                .enumerate()
                .map(|(j, w)| {
                    let (re, im) = buf[first + j];
                    w * (re * re + im * im)
                })
                .sum();
            (e + 1e-12).ln()
        });
        std::array::from_fn(|c| {
            self.dct[c]
                .iter()
                .zip(&logs)
                .map(|(d, l)| d * l)
                .sum::<f64>()
        })
    }
}

/// Split the speech `regions` of a mono call (`samples` at 16 kHz) into two voices.
pub fn split_two_voices(samples: &[f32], regions: &[SpeechRegion]) -> VoiceSplit {
    let one = |reason: String| VoiceSplit::OneVoice { reason };
    if regions.is_empty() {
        return one("no speech".into());
    }
    let spans: Vec<(f64, f64)> = regions.iter().map(|r| (r.start, r.end)).collect();
    let analysis = FrameAnalysis::analyse(samples, Some(&spans));
    let frames = &analysis.frames;
    let cepstra = Cepstra::new();
    let mut buf = vec![(0.0, 0.0); SPEC_N];
    let mut chunks = Vec::new();
    for (ri, r) in regions.iter().enumerate() {
        let n = ((r.duration() / CHUNK_S).round() as usize).max(1);
        let len = r.duration() / n as f64;
        for k in 0..n {
            let start = r.start + k as f64 * len;
            let end = if k + 1 == n { r.end } else { start + len };
            chunks.push(Chunk {
                region: ri,
                end,
                voice: voice_vector(
                    samples,
                    frames,
                    analysis.gate_db,
                    (start, end),
                    &cepstra,
                    &mut buf,
                ),
                label: None,
            });
        }
    }
    let voiced: Vec<usize> = (0..chunks.len())
        .filter(|&i| chunks[i].voice.is_some())
        .collect();
    if voiced.len() < 4 {
        return one(format!(
            "too little voiced speech ({} chunk(s) of {CHUNK_S} s)",
            voiced.len()
        ));
    }
    // Scale each dimension by its robust spread over the call.
    let scale: Vec<f64> = (0..DIMS)
        .map(|d| {
            let mut v: Vec<f64> = voiced
                .iter()
                .filter_map(|&i| chunks[i].voice.map(|x| x[d]))
                .collect();
            let med = median(&mut v);
            let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
            (median(&mut dev) * 1.4826).max(1e-6)
        })
        .collect();
    let scaled = |x: [f64; DIMS]| -> [f64; DIMS] {
        std::array::from_fn(|d| {
            let w = if d == 0 {
                PITCH_WEIGHT
            } else {
                CEPSTRUM_WEIGHT
            };
            x[d] / scale[d] * w
        })
    };
    // Voices are found from whole regions (a turn is mostly one speaker, and a region's
    // average is steadier than a chunk's); chunks of long regions are then given to the nearer
    // voice, which finds turns the VAD joined.
    let region_voice: Vec<Option<[f64; DIMS]>> = regions
        .iter()
        .map(|r| {
            voice_vector(
                samples,
                frames,
                analysis.gate_db,
                (r.start, r.end),
                &cepstra,
                &mut buf,
            )
            .map(scaled)
        })
        .collect();
    let voiced_regions: Vec<usize> = (0..regions.len())
        .filter(|&r| region_voice[r].is_some())
        .collect();
    if voiced_regions.len() < 4 {
        return one(format!(
            "too few turns to compare ({} voiced region(s))",
            voiced_regions.len()
        ));
    }
    let points: Vec<[f64; DIMS]> = voiced_regions
        .iter()
        .filter_map(|&r| region_voice[r])
        .collect();
    let (labels, centres) = two_means(&points);
    let mut region_label = vec![None; regions.len()];
    for (&r, &l) in voiced_regions.iter().zip(&labels) {
        region_label[r] = Some(l);
    }
    for c in chunks.iter_mut() {
        c.label = match (c.voice, regions[c.region].duration() >= SPLIT_REGION_S) {
            (Some(v), true) => {
                let v = scaled(v);
                Some(usize::from(dist2(&v, &centres[1]) < dist2(&v, &centres[0])))
            }
            _ => region_label[c.region],
        };
    }
    // Each voice's median pitch, in semitones.
    let register: [f64; 2] = std::array::from_fn(|c| {
        let mut v: Vec<f64> = voiced_regions
            .iter()
            .zip(&labels)
            .filter(|(_, l)| **l == c)
            .filter_map(|(&r, _)| region_voice[r].map(|x| x[0] * scale[0] / PITCH_WEIGHT))
            .collect();
        median(&mut v)
    });
    let pitch_hz = register.map(|st| 100.0 * 2f64.powf(st / 12.0));
    let apart_st = (register[0] - register[1]).abs();
    smooth(&mut chunks);
    let turns = turns(&chunks, regions, frames);
    let split = TwoVoices {
        turns,
        apart_st,
        pitch_hz,
    };
    let speech = split.speech_s();
    let total = speech[0] + speech[1];
    let smaller = speech[0].min(speech[1]);
    if smaller < MIN_VOICE_S || smaller < MIN_VOICE_SHARE * total {
        return one(format!(
            "one voice: the second has {smaller:.1} s of {total:.1} s of speech"
        ));
    }
    if apart_st < MIN_APART_ST {
        return one(format!(
            "no second voice: the two clusters' pitch is {apart_st:.1} semitones apart, {MIN_APART_ST} needed"
        ));
    }
    VoiceSplit::Two(split)
}

/// Median pitch (semitones re 100 Hz) and mean cepstrum of the voiced active frames in the span.
fn voice_vector(
    samples: &[f32],
    frames: &[crate::tone::features::Frame],
    gate_db: f64,
    (start, end): (f64, f64),
    cepstra: &Cepstra,
    buf: &mut [(f64, f64)],
) -> Option<[f64; DIMS]> {
    let a = ((start / HOP_S).round() as usize).min(frames.len());
    let b = ((end / HOP_S).round() as usize).min(frames.len());
    let mut pitch = Vec::new();
    let mut cep = [0.0; CEPSTRA];
    for (i, f) in frames.iter().enumerate().take(b).skip(a) {
        let Some(f0) = f.f0_hz else { continue };
        if f.db < gate_db {
            continue;
        }
        pitch.push(12.0 * (f0 / 100.0).log2());
        let centre = i * crate::tone::features::HOP + crate::tone::features::HOP / 2;
        for (acc, c) in cep.iter_mut().zip(cepstra.at(samples, centre, buf)) {
            *acc += c;
        }
    }
    if pitch.len() < MIN_VOICED_FRAMES {
        return None;
    }
    let n = pitch.len() as f64;
    let p = median(&mut pitch);
    let v: [f64; DIMS] = std::array::from_fn(|d| if d == 0 { p } else { cep[d - 1] / n });
    v.iter().all(|x| x.is_finite()).then_some(v)
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn dist2(a: &[f64; DIMS], b: &[f64; DIMS]) -> f64 {
    (0..DIMS).map(|d| (a[d] - b[d]).powi(2)).sum()
}

/// Two-means, started three ways (the lowest and highest pitch; the 10th and 90th pitch
/// percentiles; the point farthest from the mean and the one farthest from it), keeping the
/// clustering with the least within-cluster spread. Cluster 0 ends with the lower pitch.
fn two_means(points: &[[f64; DIMS]]) -> (Vec<usize>, [[f64; DIMS]; 2]) {
    let mut by_pitch: Vec<usize> = (0..points.len()).collect();
    by_pitch.sort_by(|&a, &b| points[a][0].total_cmp(&points[b][0]));
    let (Some(&lo), Some(&hi)) = (by_pitch.first(), by_pitch.last()) else {
        return (Vec::new(), [[0.0; DIMS]; 2]);
    };
    let pct = |q: f64| by_pitch[((by_pitch.len() - 1) as f64 * q) as usize];
    let mean: [f64; DIMS] =
        std::array::from_fn(|d| points.iter().map(|p| p[d]).sum::<f64>() / points.len() as f64);
    let far = |from: &[f64; DIMS]| {
        (0..points.len())
            .max_by(|&a, &b| dist2(&points[a], from).total_cmp(&dist2(&points[b], from)))
            .unwrap_or(0)
    };
    let f1 = far(&mean);
    let f2 = far(&points[f1]);
    let mut best: Option<(f64, Vec<usize>, [[f64; DIMS]; 2])> = None;
    for (a, b) in [(lo, hi), (pct(0.1), pct(0.9)), (f1, f2)] {
        let (labels, centres) = lloyd(points, [points[a], points[b]]);
        let within: f64 = points
            .iter()
            .zip(&labels)
            .map(|(p, &l)| dist2(p, &centres[l]))
            .sum();
        if best.as_ref().is_none_or(|(w, _, _)| within < *w) {
            best = Some((within, labels, centres));
        }
    }
    let (_, mut labels, mut centres) = best.unwrap_or_default();
    if centres[0][0] > centres[1][0] {
        centres.swap(0, 1);
        labels.iter_mut().for_each(|l| *l = 1 - *l);
    }
    (labels, centres)
}

/// Lloyd's iterations from two centres.
fn lloyd(points: &[[f64; DIMS]], mut centres: [[f64; DIMS]; 2]) -> (Vec<usize>, [[f64; DIMS]; 2]) {
    let mut labels = vec![0; points.len()];
    for _ in 0..50 {
        let mut changed = false;
        for (p, l) in points.iter().zip(labels.iter_mut()) {
            let new = usize::from(dist2(p, &centres[1]) < dist2(p, &centres[0]));
            changed |= new != *l;
            *l = new;
        }
        for (c, centre) in centres.iter_mut().enumerate() {
            let members: Vec<&[f64; DIMS]> = points
                .iter()
                .zip(&labels)
                .filter(|(_, l)| **l == c)
                .map(|(p, _)| p)
                .collect();
            if !members.is_empty() {
                *centre = std::array::from_fn(|d| {
                    members.iter().map(|p| p[d]).sum::<f64>() / members.len() as f64
                });
            }
        }
        if !changed {
            break;
        }
    }
    (labels, centres)
}

/// Lone chunks between two of the other voice take their label; unvoiced chunks take the label
/// of the nearest labelled chunk of their region (else of the call).
fn smooth(chunks: &mut [Chunk]) {
    for i in 1..chunks.len().saturating_sub(1) {
        let (a, b, c) = (&chunks[i - 1], &chunks[i], &chunks[i + 1]);
        if a.region == b.region
            && b.region == c.region
            && a.label.is_some()
            && a.label == c.label
            && b.label.is_some()
            && b.label != a.label
        {
            chunks[i].label = chunks[i - 1].label;
        }
    }
    let known: Vec<(usize, usize, usize)> = chunks
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.label.map(|l| (i, c.region, l)))
        .collect();
    for (i, chunk) in chunks.iter_mut().enumerate() {
        if chunk.label.is_some() {
            continue;
        }
        let region = chunk.region;
        let nearest = known
            .iter()
            .filter(|(_, r, _)| *r == region)
            .min_by_key(|(j, _, _)| j.abs_diff(i))
            .or_else(|| known.iter().min_by_key(|(j, _, _)| j.abs_diff(i)));
        chunk.label = nearest.map(|&(_, _, l)| l);
    }
}

/// Join chunks of one voice into turns, moving each change inside a region to its quietest frame.
fn turns(
    chunks: &[Chunk],
    regions: &[SpeechRegion],
    frames: &[crate::tone::features::Frame],
) -> [Vec<SpeechRegion>; 2] {
    let mut out: [Vec<SpeechRegion>; 2] = [Vec::new(), Vec::new()];
    let mut i = 0;
    while i < chunks.len() {
        let region = chunks[i].region;
        let mut start = regions[region].start;
        let mut j = i;
        while j < chunks.len() && chunks[j].region == region {
            let label = chunks[j].label.unwrap_or(0);
            let mut k = j;
            while k + 1 < chunks.len()
                && chunks[k + 1].region == region
                && chunks[k + 1].label.unwrap_or(0) == label
            {
                k += 1;
            }
            let last = k + 1 == chunks.len() || chunks[k + 1].region != region;
            let end = if last {
                regions[region].end
            } else {
                quietest(frames, chunks[k].end, start, regions[region].end)
            };
            if end > start {
                out[label].push(SpeechRegion { start, end });
            }
            start = end;
            j = k + 1;
        }
        i = j;
    }
    out
}

/// The quietest 10 ms frame within the search window around `at`, kept inside `(lo, hi)`.
fn quietest(frames: &[crate::tone::features::Frame], at: f64, lo: f64, hi: f64) -> f64 {
    let from = (at - BOUNDARY_SEARCH_S).max(lo + HOP_S);
    let to = (at + BOUNDARY_SEARCH_S).min(hi - HOP_S);
    let a = (from / HOP_S).ceil() as usize;
    let b = ((to / HOP_S).floor() as usize).min(frames.len().saturating_sub(1));
    (a..=b)
        .filter(|&i| i < frames.len())
        .min_by(|&x, &y| frames[x].db.total_cmp(&frames[y].db))
        .map_or(at, |i| i as f64 * HOP_S + HOP_S / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vowel-like tone: harmonics of `f0` with a spectral slope, at 16 kHz.
    fn voice(f0: f64, seconds: f64, bright: f64) -> Vec<f32> {
        let n = (seconds * 16000.0) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / 16000.0;
                let mut x = 0.0;
                for h in 1..20 {
                    let f = f0 * h as f64;
                    if f > 3800.0 {
                        break;
                    }
                    x += (2.0 * std::f64::consts::PI * f * t).sin() / (h as f64).powf(bright);
                }
                (0.1 * x) as f32
            })
            .collect()
    }

    fn silence(seconds: f64) -> Vec<f32> {
        vec![0.0; (seconds * 16000.0) as usize]
    }

    #[test]
    fn two_voices_are_told_apart_and_one_is_not_split() {
        // A high, bright voice and a low, dark one taking turns, 3 s each, 0.6 s apart.
        let mut samples = Vec::new();
        let mut regions = Vec::new();
        for k in 0..6 {
            let (f0, bright) = if k % 2 == 0 {
                (220.0, 1.0)
            } else {
                (110.0, 1.6)
            };
            let start = samples.len() as f64 / 16000.0;
            samples.extend(voice(f0, 3.0, bright));
            regions.push(SpeechRegion {
                start,
                end: start + 3.0,
            });
            samples.extend(silence(0.6));
        }
        let VoiceSplit::Two(two) = split_two_voices(&samples, &regions) else {
            panic!("two voices expected");
        };
        assert_eq!(two.turns[0].len(), 3, "{two:?}");
        assert_eq!(two.turns[1].len(), 3, "{two:?}");
        assert!(
            two.pitch_hz[0] < 130.0 && two.pitch_hz[1] > 190.0,
            "{two:?}"
        );
        // Voice 0 (lower) has the odd regions.
        assert!((two.turns[0][0].start - regions[1].start).abs() < 1e-9);

        // One voice with a little pitch movement: not split.
        let mut samples = Vec::new();
        let mut regions = Vec::new();
        for k in 0..6 {
            let start = samples.len() as f64 / 16000.0;
            samples.extend(voice(200.0 + 4.0 * k as f64, 3.0, 1.0));
            regions.push(SpeechRegion {
                start,
                end: start + 3.0,
            });
            samples.extend(silence(0.6));
        }
        assert!(
            matches!(
                split_two_voices(&samples, &regions),
                VoiceSplit::OneVoice { .. }
            ),
            "one voice must not be split"
        );
    }

    #[test]
    fn a_turn_change_inside_a_region_moves_to_the_pause() {
        // Two voices 0.2 s apart: one VAD region over both.
        let mut samples = voice(220.0, 3.0, 1.0);
        samples.extend(silence(0.2));
        samples.extend(voice(110.0, 3.0, 1.6));
        samples.extend(silence(0.5));
        samples.extend(voice(220.0, 3.0, 1.0));
        samples.extend(silence(0.5));
        samples.extend(voice(110.0, 3.0, 1.6));
        samples.extend(silence(0.5));
        samples.extend(voice(220.0, 3.0, 1.0));
        let regions = [
            SpeechRegion {
                start: 0.0,
                end: 6.2,
            },
            SpeechRegion {
                start: 6.7,
                end: 9.7,
            },
            SpeechRegion {
                start: 10.2,
                end: 13.2,
            },
            SpeechRegion {
                start: 13.7,
                end: 16.7,
            },
        ];
        let VoiceSplit::Two(two) = split_two_voices(&samples, &regions) else {
            panic!("two voices expected");
        };
        let change = two.turns[1][0].end;
        assert!(
            (3.0..=3.2).contains(&change),
            "the change is at {change}, the pause at 3.0–3.2: {two:?}"
        );
    }
}
