//! Prosodic features of one speaker's speech, in pure Rust, on 16 kHz f32 audio.
//!
//! The tone model never sees absolute measurements: a loud agent, an agent close to the
//! microphone, a quiet line or a high-pitched voice are all normal *for that agent*. So the
//! pipeline is
//!
//! 1. [`FrameAnalysis`]: one pass over the role's audio at a 10 ms hop — frame level (40 ms RMS),
//!    fundamental frequency (normalised cross-correlation on a 2:1 decimated copy, 60–700 Hz,
//!    with a voicing decision), and a 512-point spectrum reduced to a few band powers.
//! 2. [`RawFeatures`] per window (a VAD utterance, or a ~2 s sliding window): F0 median and range,
//!    active-speech level and peak, speaking rate, spectral centroid and tilt, pause ratio.
//! 3. [`Baseline`]: robust (weighted-median) statistics of the agent's own windows in this call,
//!    optionally blended with a stored cross-call baseline.
//! 4. [`RelativeFeatures`]: each window relative to the baseline (semitones, dB, log-ratios), and
//!    clipped to a sane range — this is what the model sees.
//!
//! Level invariance is designed in, not hoped for: the only level-dependent raw measures (level,
//! peak) enter the model as differences from the same call's baseline, every gate is relative to
//! the call's own loud frames, and F0, rate, centroid and tilt are ratios that a gain cancels out
//! of. A whole call 10 dB louder or quieter therefore gives the same relative features (up to
//! the −80 dBFS digital-silence floor).

use serde::{Deserialize, Serialize};

use crate::audio::{RoleAudio, TARGET_RATE};

/// Samples per second everything here assumes (the pipeline's [`TARGET_RATE`]).
pub const SAMPLE_RATE: usize = TARGET_RATE as usize;
/// Analysis hop: one frame every 10 ms.
pub const HOP: usize = SAMPLE_RATE / 100;
/// The hop in seconds.
pub const HOP_S: f64 = HOP as f64 / SAMPLE_RATE as f64;
/// Frame length for the level measurement: 40 ms, centred on the frame.
const LEVEL_FRAME: usize = SAMPLE_RATE / 25;
/// Spectrum frame: 512 samples (32 ms, 31.25 Hz bins), Hann-windowed.
const SPEC_FRAME: usize = 512;
const BIN_HZ: f64 = SAMPLE_RATE as f64 / SPEC_FRAME as f64;
/// Lowest and highest F0 searched. 60 Hz covers low male voices; raised high female voices reach
/// 500–650 Hz, and a ceiling below them makes the tracker fall to the subharmonic (F0/2) exactly
/// when the voice rises.
pub const F0_MIN_HZ: f64 = 60.0;
pub const F0_MAX_HZ: f64 = 700.0;
/// Frames quieter than this are digital silence whatever the call's level (a hard floor far below
/// any real line noise, so that a ±10 dB gain does not move speech across it).
pub const SILENCE_FLOOR_DB: f64 = -80.0;
/// Active speech: frames within this many dB of the call's loud frames (95th percentile). Relative,
/// so a gain on the whole call selects the same frames. 25 dB keeps quiet syllable tails but not
/// typical telephone line noise.
pub const GATE_BELOW_LOUD_DB: f64 = 25.0;
/// A window needs at least this much voiced speech to be scored (F0 median needs something to be
/// the median of; a cough or a breath must not become a tone event).
pub const MIN_VOICED_S: f64 = 0.2;
/// Spans longer than this are split into equal pieces so a long utterance still localises a change.
pub const MAX_WINDOW_S: f64 = 4.0;

/// F0 search on the 8 kHz decimated signal: 32 ms correlation length.
const F0_RATE: f64 = SAMPLE_RATE as f64 / 2.0;
const F0_N: usize = 256;
/// Peak normalised cross-correlation needed to call a frame voiced. Speech vowels reach 0.8–0.95;
/// noise and fricatives stay below ~0.4.
const VOICING_NCCF: f64 = 0.5;
/// Among candidate periods, the shortest one within this fraction of the best is taken: a periodic
/// signal correlates equally well at 2T, 3T…, and picking the longest would halve the F0.
const SUBHARMONIC_RATIO: f64 = 0.9;
/// Voiced runs shorter than this (frames) are dropped as spurious.
const MIN_VOICED_RUN: usize = 3;

/// Bands of the 512-point spectrum, as bin ranges (inclusive start, exclusive end). The telephone
/// band is ~300–3400 Hz; nothing above 4 kHz is used so 8 kHz and 16 kHz sources compare.
const LOW_BAND: (usize, usize) = (3, 32); // ≈ 94–1000 Hz
const HIGH_BAND: (usize, usize) = (32, 128); // ≈ 1000–4000 Hz
const ENV_BAND: (usize, usize) = (10, 80); // ≈ 300–2500 Hz: where vowel energy is, for syllable nuclei

/// Syllable nuclei: an envelope peak must stand this many dB above the dips on both sides.
const NUCLEUS_PROMINENCE_DB: f64 = 2.0;
/// …be at most this far below the window's loudest envelope frame…
const NUCLEUS_RANGE_DB: f64 = 25.0;
/// …and at least this many frames (10 ms) after the previous nucleus.
const NUCLEUS_MIN_GAP: usize = 6;
/// Below this much active speech a window has no syllable rate.
const MIN_RATE_ACTIVE_S: f64 = 0.3;

/// One 10 ms analysis frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// Level of the 40 ms around the frame, dB re full-scale RMS (a ±1 square wave is 0 dB,
    /// a full-scale sine −3 dB).
    pub db: f64,
    /// Fundamental frequency if the frame is voiced.
    pub f0_hz: Option<f64>,
    /// Spectral band powers (arbitrary but consistent units): 94–1000 Hz and 1000–4000 Hz.
    pub p_low: f64,
    pub p_high: f64,
    /// Σ f·P(f) over 94–4000 Hz, for the spectral centroid.
    pub centroid_num: f64,
    /// 300–2500 Hz power, smoothed over 3 frames, in dB: the envelope for syllable nuclei.
    pub env_db: f64,
}

/// Frame-level analysis of one role's audio. Computed once per call; windows aggregate it.
#[derive(Debug, Clone)]
pub struct FrameAnalysis {
    pub frames: Vec<Frame>,
    /// Active-speech gate (dBFS) the frames were judged against.
    pub gate_db: f64,
}

/// Per-window measurements in absolute units (what the agent's voice did in this window).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RawFeatures {
    pub start: f64,
    pub end: f64,
    /// Seconds of voiced / active (above the gate) speech in the window.
    pub voiced_s: f64,
    pub active_s: f64,
    /// Median F0 of voiced frames (Hz) and its spread: 90th − 10th percentile in semitones.
    pub f0_median_hz: f64,
    pub f0_range_st: f64,
    /// Active-speech level: mean power of active frames, dBFS (RMS).
    pub level_db: f64,
    /// Peak: 95th percentile of the 40 ms frame levels in the window, dBFS (robust to clicks).
    pub peak_db: f64,
    /// Syllable nuclei per second of active speech, from the energy envelope.
    pub syllable_rate: Option<f64>,
    /// Characters per second from the transcript, when the caller has one for this window
    /// (a Chinese character is one syllable, so this is the better rate when available).
    pub char_rate: Option<f64>,
    /// Power-weighted mean frequency over 94–4000 Hz of voiced active frames (Hz).
    pub centroid_hz: f64,
    /// Spectral tilt of voiced active frames: energy above 1 kHz relative to below, dB. Pressed,
    /// effortful voice raises it.
    pub tilt_db: f64,
    /// Share of the window's frames that are not active speech.
    pub pause_ratio: f64,
}

/// An agent's normal voice: robust statistics over many windows. Serialisable so the database
/// can keep one per agent across calls ([`Baseline::merge_history`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub f0_median_hz: f64,
    /// Median absolute deviation of window F0 medians, semitones (diagnostic; the prior uses
    /// population scales, see docs/tone.md).
    pub f0_mad_st: f64,
    pub f0_range_st: f64,
    /// Loudness and spectrum depend on the line, handset and microphone placement of *this* call,
    /// so they are never taken from history (see [`Baseline::blend`]).
    pub level_db: f64,
    pub level_mad_db: f64,
    pub peak_db: f64,
    pub syllable_rate: Option<f64>,
    pub char_rate: Option<f64>,
    pub centroid_hz: f64,
    pub tilt_db: f64,
    pub pause_ratio: f64,
    /// Windows the statistics rest on (their weight in a blend).
    pub windows: usize,
    /// Calls merged into this baseline (1 for an in-call baseline).
    pub calls: u32,
}

/// The model's inputs: one window relative to the agent's baseline, weighted by the window's
/// [`evidence`] ([`Baseline::relative`]); [`RelativeFeatures::to_array`] clips to [`FEATURE_CLIP`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RelativeFeatures {
    /// F0 median above the baseline, semitones.
    pub f0_st: f64,
    /// F0 range minus the baseline range, semitones.
    pub f0_range_st: f64,
    /// Active-speech level minus the baseline, dB.
    pub level_db: f64,
    /// Peak minus the baseline peak, dB.
    pub peak_db: f64,
    /// ln(rate / baseline rate): characters/s where both have a transcript rate, else syllables/s.
    pub rate_log: f64,
    /// log2(centroid / baseline centroid): octaves.
    pub centroid_oct: f64,
    /// Tilt minus the baseline tilt, dB.
    pub tilt_db: f64,
    /// Pause ratio minus the baseline pause ratio.
    pub pause_ratio: f64,
}

/// Number of model input features.
pub const N_FEATURES: usize = 8;
/// Model input names, in the order of the ONNX `features` tensor's second axis.
pub const FEATURE_NAMES: [&str; N_FEATURES] = [
    "f0_st",
    "f0_range_st",
    "level_db",
    "peak_db",
    "rate_log",
    "centroid_oct",
    "tilt_db",
    "pause_ratio",
];
/// Symmetric clip of each relative feature before the model (≈ 5 prior scales): beyond these a
/// measurement is more likely an analysis error (an octave jump, a door slam) than a bigger
/// emotion, and no single feature may outvote all the others.
pub const FEATURE_CLIP: [f64; N_FEATURES] = [6.0, 6.0, 6.0, 6.0, 0.35, 0.5, 6.0, 0.35];

impl RelativeFeatures {
    /// Model input vector in [`FEATURE_NAMES`] order, clipped to [`FEATURE_CLIP`].
    pub fn to_array(&self) -> [f32; N_FEATURES] {
        let raw = [
            self.f0_st,
            self.f0_range_st,
            self.level_db,
            self.peak_db,
            self.rate_log,
            self.centroid_oct,
            self.tilt_db,
            self.pause_ratio,
        ];
        let mut out = [0f32; N_FEATURES];
        for i in 0..N_FEATURES {
            let v = if raw[i].is_finite() { raw[i] } else { 0.0 };
            out[i] = v.clamp(-FEATURE_CLIP[i], FEATURE_CLIP[i]) as f32;
        }
        out
    }
}

// ------------------------------------------------------------------------------------------------
// Frame analysis

impl FrameAnalysis {
    /// Analyse `samples` (16 kHz). The active-speech gate is taken from the frames inside `spans`
    /// (the windows that will be scored), or from all frames when `spans` is `None`.
    pub fn analyse(samples: &[f32], spans: Option<&[(f64, f64)]>) -> Self {
        let dbs = frame_levels(samples);
        let gate_db = match spans {
            Some(spans) => {
                let mut inside = Vec::new();
                for &(s, e) in spans {
                    let (a, b) = frame_range(s, e, dbs.len());
                    inside.extend_from_slice(&dbs[a..b]);
                }
                level_gate(&inside)
            }
            None => level_gate(&dbs),
        };
        Self::analyse_with_gate(samples, dbs, gate_db)
    }

    /// Analyse with a given gate (live use: the gate comes from the call so far).
    pub fn analyse_gated(samples: &[f32], gate_db: f64) -> Self {
        let dbs = frame_levels(samples);
        Self::analyse_with_gate(samples, dbs, gate_db)
    }

    fn analyse_with_gate(samples: &[f32], dbs: Vec<f64>, gate_db: f64) -> Self {
        let n = dbs.len();
        // A long call is analysed in pieces (with margins wider than any window reaches), so
        // the decimated copy and the energy sums — 8 bytes per sample — exist for one piece
        // at a time, not for hours of audio.
        let (mut frames, env_power) = if n <= PIECE_FRAMES {
            raw_frames(samples, &dbs, gate_db)
        } else {
            let mut frames = Vec::with_capacity(n);
            let mut env_power = Vec::with_capacity(n);
            for first in (0..n).step_by(PIECE_FRAMES) {
                let last = (first + PIECE_FRAMES).min(n);
                let from = first.saturating_sub(PIECE_MARGIN_FRAMES);
                let to = (last + PIECE_MARGIN_FRAMES).min(n);
                let piece = &samples[from * HOP..(to * HOP).min(samples.len())];
                let (f, e) = raw_frames(piece, &dbs[from..to], gate_db);
                frames.extend_from_slice(&f[first - from..last - from]);
                env_power.extend_from_slice(&e[first - from..last - from]);
            }
            (frames, env_power)
        };
        // Smooth the envelope over 3 frames (30 ms): single-frame wiggles are not syllables.
        for (i, frame) in frames.iter_mut().enumerate() {
            let lo = i.saturating_sub(1);
            let hi = (i + 2).min(n);
            let mean = env_power[lo..hi].iter().sum::<f64>() / (hi - lo) as f64;
            frame.env_db = to_db(mean / (SPEC_FRAME * SPEC_FRAME) as f64);
        }
        drop_short_voiced_runs(&mut frames);
        fix_octave_errors(&mut frames);
        drop_short_voiced_runs(&mut frames);
        FrameAnalysis { frames, gate_db }
    }

    /// Whether frame `i` counts as active speech.
    pub fn is_active(&self, i: usize) -> bool {
        self.frames[i].db >= self.gate_db && self.frames[i].db > SILENCE_FLOOR_DB
    }

    /// Features of the window [start, end) seconds, or `None` when it holds less than
    /// [`MIN_VOICED_S`] of voiced speech.
    pub fn window(&self, start: f64, end: f64, char_rate: Option<f64>) -> Option<RawFeatures> {
        let (a, b) = frame_range(start, end, self.frames.len());
        if b <= a {
            return None;
        }
        let frames = &self.frames[a..b];
        let mut f0s = Vec::new();
        let mut active_power = 0.0;
        let mut active = 0usize;
        let (mut p_low, mut p_high, mut cnum) = (0.0, 0.0, 0.0);
        for (k, f) in frames.iter().enumerate() {
            if self.is_active(a + k) {
                active += 1;
                active_power += db_to_power(f.db);
                if let Some(f0) = f.f0_hz {
                    f0s.push(f0);
                    // Spectral effort from voiced frames only: vocal effort shows in the voice
                    // source, while fricatives (s, sh, x, c…) would make the tilt follow the words.
                    p_low += f.p_low;
                    p_high += f.p_high;
                    cnum += f.centroid_num;
                }
            }
        }
        let voiced_s = f0s.len() as f64 * HOP_S;
        if voiced_s < MIN_VOICED_S || active == 0 || p_low + p_high <= 0.0 {
            return None;
        }
        let f0_median_hz = quantile(&mut f0s, 0.5);
        let f0_range_st = 12.0 * (quantile(&mut f0s, 0.9) / quantile(&mut f0s, 0.1)).log2();
        let mut dbs: Vec<f64> = frames.iter().map(|f| f.db).collect();
        let peak_db = quantile(&mut dbs, 0.95);
        let active_s = active as f64 * HOP_S;
        Some(RawFeatures {
            start,
            end,
            voiced_s,
            active_s,
            f0_median_hz,
            f0_range_st,
            level_db: to_db(active_power / active as f64),
            peak_db,
            syllable_rate: self.syllable_rate(a, b, active_s),
            char_rate: char_rate.filter(|r| r.is_finite() && *r > 0.0),
            centroid_hz: cnum / (p_low + p_high),
            tilt_db: to_db(p_high.max(1e-30) / p_low.max(1e-30)),
            pause_ratio: 1.0 - active as f64 / frames.len() as f64,
        })
    }

    /// Syllable nuclei per second of active speech in frames [a, b): prominent, voiced peaks of
    /// the 300–2500 Hz envelope (after de Jong & Wempe's intensity-peak method). All thresholds
    /// are relative dB, so a gain does not change the count.
    fn syllable_rate(&self, a: usize, b: usize, active_s: f64) -> Option<f64> {
        if active_s < MIN_RATE_ACTIVE_S || b < a + 3 {
            return None;
        }
        let env = |i: usize| self.frames[i].env_db;
        let loudest = (a..b).map(env).fold(f64::NEG_INFINITY, f64::max);
        let voiced_near = |i: usize| {
            let lo = i.saturating_sub(2).max(a);
            let hi = (i + 3).min(b);
            (lo..hi).any(|j| self.frames[j].f0_hz.is_some())
        };
        let mut nuclei: Vec<usize> = Vec::new();
        for i in (a + 1)..(b - 1) {
            let is_peak = env(i) > env(i - 1) && env(i) >= env(i + 1);
            if !is_peak || !self.is_active(i) || env(i) < loudest - NUCLEUS_RANGE_DB {
                continue;
            }
            if !voiced_near(i) {
                continue;
            }
            match nuclei.last().copied() {
                None => nuclei.push(i),
                Some(q) => {
                    let dip = ((q + 1)..i).map(env).fold(f64::INFINITY, f64::min);
                    let separate = i - q >= NUCLEUS_MIN_GAP
                        && env(q) - dip >= NUCLEUS_PROMINENCE_DB
                        && env(i) - dip >= NUCLEUS_PROMINENCE_DB;
                    if separate {
                        nuclei.push(i);
                    } else if env(i) > env(q) {
                        // Same syllable: keep its highest point.
                        *nuclei.last_mut().expect("non-empty") = i;
                    }
                }
            }
        }
        Some(nuclei.len() as f64 / active_s)
    }
}

/// Frames of a long call analysed per piece: 5 minutes, with 2 s on each side.
const PIECE_FRAMES: usize = 30_000;
const PIECE_MARGIN_FRAMES: usize = 200;

/// Per-frame levels, F0 and band powers of `samples` (frame i centred at i·HOP + HOP/2), and
/// each frame's envelope-band power; `dbs` are the frames' levels.
fn raw_frames(samples: &[f32], dbs: &[f64], gate_db: f64) -> (Vec<Frame>, Vec<f64>) {
    let n = dbs.len();
    let dec = decimate2(samples);
    let f0_tracker = F0Tracker::new(&dec);
    let fft = Fft::new(SPEC_FRAME);
    let hann: Vec<f64> = (0..SPEC_FRAME)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / SPEC_FRAME as f64).cos())
        .collect();
    let mut frames = Vec::with_capacity(n);
    let mut env_power = Vec::with_capacity(n);
    let mut buf = vec![(0.0f64, 0.0f64); SPEC_FRAME];
    for (i, &db) in dbs.iter().enumerate() {
        let centre = i * HOP + HOP / 2;
        let mut frame = Frame {
            db,
            f0_hz: None,
            p_low: 0.0,
            p_high: 0.0,
            centroid_num: 0.0,
            env_db: SILENCE_FLOOR_DB,
        };
        let mut p_env = 0.0;
        if db > SILENCE_FLOOR_DB {
            // Spectrum: needed for the envelope even in pauses (the dips between nuclei).
            let start = centre as isize - (SPEC_FRAME / 2) as isize;
            for (k, b) in buf.iter_mut().enumerate() {
                let idx = start + k as isize;
                let x = if idx >= 0 && (idx as usize) < samples.len() {
                    samples[idx as usize] as f64
                } else {
                    0.0
                };
                *b = (x * hann[k], 0.0);
            }
            fft.forward(&mut buf);
            let power = |k: usize| buf[k].0 * buf[k].0 + buf[k].1 * buf[k].1;
            for k in LOW_BAND.0..LOW_BAND.1 {
                let p = power(k);
                frame.p_low += p;
                frame.centroid_num += p * k as f64 * BIN_HZ;
            }
            for k in HIGH_BAND.0..HIGH_BAND.1 {
                let p = power(k);
                frame.p_high += p;
                frame.centroid_num += p * k as f64 * BIN_HZ;
            }
            p_env = (ENV_BAND.0..ENV_BAND.1).map(power).sum::<f64>();
            if db >= gate_db {
                frame.f0_hz = f0_tracker.f0_at(centre / 2);
            }
        }
        env_power.push(p_env);
        frames.push(frame);
    }
    (frames, env_power)
}

/// The frame index range [a, b) whose frame centres fall in [start, end) seconds.
fn frame_range(start: f64, end: f64, n: usize) -> (usize, usize) {
    let a = (start.max(0.0) / HOP_S).round() as usize;
    let b = (end.max(0.0) / HOP_S).round() as usize;
    (a.min(n), b.min(n))
}

/// 40 ms RMS level (dB) of each 10 ms frame (per piece on a long call: its running sums would
/// otherwise take 8 bytes per sample of the whole call).
pub(crate) fn frame_levels(samples: &[f32]) -> Vec<f64> {
    let n = samples.len().div_ceil(HOP);
    if n <= PIECE_FRAMES {
        return piece_levels(samples);
    }
    let mut out = Vec::with_capacity(n);
    for first in (0..n).step_by(PIECE_FRAMES) {
        let last = (first + PIECE_FRAMES).min(n);
        let from = first.saturating_sub(PIECE_MARGIN_FRAMES);
        let to = (last + PIECE_MARGIN_FRAMES).min(n);
        let levels = piece_levels(&samples[from * HOP..(to * HOP).min(samples.len())]);
        out.extend_from_slice(&levels[first - from..last - from]);
    }
    out
}

fn piece_levels(samples: &[f32]) -> Vec<f64> {
    let n = samples.len().div_ceil(HOP);
    let mut prefix = Vec::with_capacity(samples.len() + 1);
    prefix.push(0.0f64);
    let mut acc = 0.0f64;
    for &x in samples {
        acc += x as f64 * x as f64;
        prefix.push(acc);
    }
    (0..n)
        .map(|i| {
            let centre = i * HOP + HOP / 2;
            let lo = centre.saturating_sub(LEVEL_FRAME / 2);
            let hi = (centre + LEVEL_FRAME / 2).min(samples.len());
            if hi <= lo {
                return SILENCE_FLOOR_DB - 40.0;
            }
            to_db((prefix[hi] - prefix[lo]) / (hi - lo) as f64)
        })
        .collect()
}

/// The active-speech gate for frames with these levels: [`GATE_BELOW_LOUD_DB`] under their 95th
/// percentile (ignoring digital silence). No frames above the floor: nothing is active.
pub fn level_gate(dbs: &[f64]) -> f64 {
    let mut loud: Vec<f64> = dbs
        .iter()
        .copied()
        .filter(|d| *d > SILENCE_FLOOR_DB)
        .collect();
    if loud.is_empty() {
        return f64::INFINITY;
    }
    (quantile(&mut loud, 0.95) - GATE_BELOW_LOUD_DB).max(SILENCE_FLOOR_DB)
}

fn drop_short_voiced_runs(frames: &mut [Frame]) {
    let mut i = 0;
    while i < frames.len() {
        if frames[i].f0_hz.is_none() {
            i += 1;
            continue;
        }
        let start = i;
        while i < frames.len() && frames[i].f0_hz.is_some() {
            i += 1;
        }
        if i - start < MIN_VOICED_RUN {
            for f in &mut frames[start..i] {
                f.f0_hz = None;
            }
        }
    }
}

/// Correct isolated octave errors: a frame more than ~9 semitones from the median of the voiced
/// frames around it (±0.3 s) is halved or doubled when that brings it within ~5 semitones, else
/// called unvoiced. Autocorrelation pitch sometimes locks onto 2·F0 or F0/2 at syllable edges, and
/// those frames would otherwise inflate the F0 range.
fn fix_octave_errors(frames: &mut [Frame]) {
    const CONTEXT: usize = 30;
    const FAR_OCT: f64 = 0.75;
    const NEAR_OCT: f64 = 0.4;
    let f0: Vec<Option<f64>> = frames.iter().map(|f| f.f0_hz).collect();
    for i in 0..frames.len() {
        let Some(v) = f0[i] else { continue };
        let lo = i.saturating_sub(CONTEXT);
        let hi = (i + CONTEXT + 1).min(f0.len());
        let mut ctx: Vec<f64> = f0[lo..hi].iter().flatten().copied().collect();
        if ctx.len() < 5 {
            continue;
        }
        let med = quantile(&mut ctx, 0.5);
        let off = (v / med).log2();
        if off.abs() <= FAR_OCT {
            continue;
        }
        let fixed = if off > 0.0 { v / 2.0 } else { v * 2.0 };
        frames[i].f0_hz = ((fixed / med).log2().abs() <= NEAR_OCT
            && (F0_MIN_HZ..=F0_MAX_HZ).contains(&fixed))
        .then_some(fixed);
    }
}

pub(crate) fn to_db(power: f64) -> f64 {
    10.0 * power.max(1e-20).log10()
}

fn db_to_power(db: f64) -> f64 {
    10f64.powf(db / 10.0)
}

/// Linear-interpolated quantile (sorts `v`). `v` must not be empty.
pub(crate) fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Weighted median of (value, weight) pairs; `None` when there are none with positive weight.
fn weighted_median(mut pairs: Vec<(f64, f64)>) -> Option<f64> {
    pairs.retain(|(v, w)| v.is_finite() && *w > 0.0);
    if pairs.is_empty() {
        return None;
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = pairs.iter().map(|p| p.1).sum();
    let mut acc = 0.0;
    for &(v, w) in &pairs {
        acc += w;
        if acc >= total / 2.0 {
            return Some(v);
        }
    }
    pairs.last().map(|p| p.0)
}

// ------------------------------------------------------------------------------------------------
// F0

/// Halve the sample rate (31-tap Hamming-windowed sinc low-pass at 3.6 kHz, then every other
/// sample) with a DC blocker: F0 needs nothing above 4 kHz and the search costs half as much.
fn decimate2(x: &[f32]) -> Vec<f64> {
    const TAPS: usize = 31;
    let fc = 3600.0 / SAMPLE_RATE as f64;
    let mid = (TAPS / 2) as f64;
    let mut h: Vec<f64> = (0..TAPS)
        .map(|k| {
            let t = k as f64 - mid;
            let sinc = if t == 0.0 {
                2.0 * fc
            } else {
                (2.0 * std::f64::consts::PI * fc * t).sin() / (std::f64::consts::PI * t)
            };
            let w = 0.54 - 0.46 * (2.0 * std::f64::consts::PI * k as f64 / (TAPS - 1) as f64).cos();
            sinc * w
        })
        .collect();
    let sum: f64 = h.iter().sum();
    h.iter_mut().for_each(|v| *v /= sum);
    let n = x.len() / 2;
    let mut out = Vec::with_capacity(n);
    let (mut prev_in, mut prev_out) = (0.0, 0.0);
    for m in 0..n {
        let c = 2 * m;
        let mut acc = 0.0;
        for (k, hk) in h.iter().enumerate() {
            let idx = c as isize + k as isize - mid as isize;
            if idx >= 0 && (idx as usize) < x.len() {
                acc += hk * x[idx as usize] as f64;
            }
        }
        // DC blocker (pole at 0.995 ≈ 6 Hz at 8 kHz).
        let y = acc - prev_in + 0.995 * prev_out;
        prev_in = acc;
        prev_out = y;
        out.push(y);
    }
    out
}

/// Normalised cross-correlation pitch estimator on the 8 kHz signal.
struct F0Tracker<'a> {
    y: &'a [f64],
    prefix: Vec<f64>,
    lag_min: usize,
    lag_max: usize,
}

impl<'a> F0Tracker<'a> {
    fn new(y: &'a [f64]) -> Self {
        let mut prefix = Vec::with_capacity(y.len() + 1);
        prefix.push(0.0);
        let mut acc = 0.0;
        for v in y {
            acc += v * v;
            prefix.push(acc);
        }
        F0Tracker {
            y,
            prefix,
            lag_min: (F0_RATE / F0_MAX_HZ).floor() as usize,
            lag_max: (F0_RATE / F0_MIN_HZ).ceil() as usize,
        }
    }

    fn energy(&self, start: usize, len: usize) -> f64 {
        self.prefix[start + len] - self.prefix[start]
    }

    /// F0 at 8 kHz sample `centre`, or `None` when unvoiced (or too near the edges).
    fn f0_at(&self, centre: usize) -> Option<f64> {
        let span = F0_N + self.lag_max + 1;
        let start = centre.checked_sub(span / 2)?;
        if start + span >= self.y.len() {
            return None;
        }
        let e0 = self.energy(start, F0_N);
        if e0 <= 1e-18 {
            return None;
        }
        let lo = self.lag_min - 1;
        let hi = self.lag_max + 1;
        let x0 = &self.y[start..start + F0_N];
        let r: Vec<f64> = (lo..=hi)
            .map(|lag| {
                let x1 = &self.y[start + lag..start + lag + F0_N];
                let dot = dot(x0, x1);
                let e1 = self.energy(start + lag, F0_N);
                if e1 <= 1e-18 {
                    0.0
                } else {
                    dot / (e0 * e1).sqrt()
                }
            })
            .collect();
        // Interior local maxima only (index 0 and the last are the guard lags).
        let peaks: Vec<usize> = (1..r.len() - 1)
            .filter(|&k| r[k] >= r[k - 1] && r[k] >= r[k + 1] && r[k] > 0.0)
            .collect();
        let best = peaks
            .iter()
            .map(|&k| r[k])
            .fold(f64::NEG_INFINITY, f64::max);
        if best < VOICING_NCCF {
            return None;
        }
        let k = *peaks.iter().find(|&&k| r[k] >= SUBHARMONIC_RATIO * best)?;
        // Parabolic interpolation for a sub-sample period.
        let denom = r[k - 1] - 2.0 * r[k] + r[k + 1];
        let delta = if denom.abs() > 1e-12 {
            (0.5 * (r[k - 1] - r[k + 1]) / denom).clamp(-1.0, 1.0)
        } else {
            0.0
        };
        let lag = (lo + k) as f64 + delta;
        Some(F0_RATE / lag)
    }
}

/// Dot product with eight independent sums: a plain `zip().sum()` over f64 is one serial chain
/// of additions the compiler may not reorder, so it runs ~4× slower; this is the F0 tracker's
/// inner loop (about a hundred lags per 10 ms frame).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f64>() + tail
}

// ------------------------------------------------------------------------------------------------
// A small radix-2 FFT (one size, reused for every frame): enough for 512-point band powers
// without another dependency.

pub(crate) struct Fft {
    n: usize,
    twiddles: Vec<(f64, f64)>,
}

impl Fft {
    pub(crate) fn new(n: usize) -> Self {
        assert!(n.is_power_of_two());
        let twiddles = (0..n / 2)
            .map(|k| {
                let a = -2.0 * std::f64::consts::PI * k as f64 / n as f64;
                (a.cos(), a.sin())
            })
            .collect();
        Fft { n, twiddles }
    }

    pub(crate) fn forward(&self, buf: &mut [(f64, f64)]) {
        let n = self.n;
        debug_assert_eq!(buf.len(), n);
        let bits = n.trailing_zeros();
        for i in 0..n {
            let j = i.reverse_bits() >> (usize::BITS - bits);
            if j > i {
                buf.swap(i, j);
            }
        }
        let mut len = 2;
        while len <= n {
            let step = n / len;
            for start in (0..n).step_by(len) {
                for k in 0..len / 2 {
                    let (wr, wi) = self.twiddles[k * step];
                    let (ar, ai) = buf[start + k];
                    let (br, bi) = buf[start + k + len / 2];
                    let (tr, ti) = (br * wr - bi * wi, br * wi + bi * wr);
                    buf[start + k] = (ar + tr, ai + ti);
                    buf[start + k + len / 2] = (ar - tr, ai - ti);
                }
            }
            len *= 2;
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Windows

/// The windows to score for these spans, in time order: spans clipped to the audio, and spans
/// longer than [`MAX_WINDOW_S`] split into equal pieces (each inheriting the span's transcript
/// rate).
pub fn plan_windows(
    duration_s: f64,
    spans: &[(f64, f64)],
    transcript_rates: Option<&[Option<f64>]>,
) -> Vec<(f64, f64, Option<f64>)> {
    let mut out = Vec::new();
    for (i, &(s, e)) in spans.iter().enumerate() {
        let (s, e) = (s.max(0.0), e.min(duration_s));
        if !s.is_finite() || !e.is_finite() || e <= s {
            continue;
        }
        let rate = transcript_rates.and_then(|r| r.get(i).copied().flatten());
        let pieces = ((e - s) / MAX_WINDOW_S).ceil().max(1.0) as usize;
        let len = (e - s) / pieces as f64;
        for p in 0..pieces {
            out.push((s + p as f64 * len, s + (p + 1) as f64 * len, rate));
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// Sliding windows of `win` seconds every `hop` seconds over `duration_s` (live-style scoring of
/// a whole recording). The last window ends at or before the end.
pub fn sliding_spans(duration_s: f64, win: f64, hop: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    if win <= 0.0 || hop <= 0.0 {
        return out;
    }
    let mut s = 0.0;
    while s + win <= duration_s + 1e-9 {
        out.push((s, s + win));
        s += hop;
    }
    out
}

/// Live: the windows of one new utterance `span` (call seconds) of `samples`, analysed on the
/// utterance's own stretch of audio (plus a small margin) instead of the whole call, so scoring
/// the n-th utterance costs the same as scoring the first. The active-speech gate comes from the
/// levels of every utterance so far: `levels` holds them and gets this one's. Frames are on the
/// same 10 ms grid as a whole-call analysis.
///
/// `samples` start at the call's `first_sample`th sample (a live session keeps only its recent
/// audio; a multiple of [`HOP`], so the grid stays the call's); windows are in call time.
pub fn utterance_windows(
    samples: &[f32],
    first_sample: usize,
    span: (f64, f64),
    char_rate: Option<f64>,
    levels: &mut Vec<f64>,
) -> Vec<RawFeatures> {
    const MARGIN_S: f64 = 0.2;
    debug_assert_eq!(first_sample % HOP, 0, "kept audio starts on the 10 ms grid");
    let end = first_sample + samples.len();
    let hop_of = |t: f64| ((t.max(0.0) / HOP_S).floor() as usize).min(end / HOP);
    let first = hop_of(span.0 - MARGIN_S).max(first_sample.div_ceil(HOP));
    let last = (hop_of(span.1 + MARGIN_S) + 1).min(end.div_ceil(HOP));
    let (a, b) = (first * HOP, (last * HOP).min(end));
    if b <= a {
        return Vec::new();
    }
    let offset = first as f64 * HOP_S;
    let slice = &samples[a - first_sample..b - first_sample];
    let dbs = frame_levels(slice);
    let (fa, fb) = frame_range(span.0 - offset, span.1 - offset, dbs.len());
    levels.extend_from_slice(&dbs[fa..fb]);
    let gate = level_gate(levels);
    let analysis = FrameAnalysis::analyse_with_gate(slice, dbs, gate);
    plan_windows(
        slice.len() as f64 / SAMPLE_RATE as f64,
        &[(span.0 - offset, span.1 - offset)],
        Some(&[char_rate]),
    )
    .into_iter()
    .filter_map(|(s, e, r)| analysis.window(s, e, r))
    .map(|mut w| {
        w.start += offset;
        w.end += offset;
        w
    })
    .collect()
}

/// Raw features for each VAD utterance (long ones split, see [`plan_windows`]); windows with too
/// little voiced speech are left out.
pub fn windows_for_utterances(audio: &RoleAudio, spans: &[(f64, f64)]) -> Vec<RawFeatures> {
    let plan = plan_windows(audio.duration_s(), spans, None);
    let bounds: Vec<(f64, f64)> = plan.iter().map(|w| (w.0, w.1)).collect();
    let analysis = FrameAnalysis::analyse(&audio.samples, Some(&bounds));
    plan.iter()
        .filter_map(|&(s, e, r)| analysis.window(s, e, r))
        .collect()
}

/// Raw features for sliding windows of `win` s every `hop` s (defaults for live use: 2 s, 0.5 s);
/// windows with too little voiced speech are left out.
pub fn sliding_windows(audio: &RoleAudio, win: f64, hop: f64) -> Vec<RawFeatures> {
    let analysis = FrameAnalysis::analyse(&audio.samples, None);
    sliding_spans(audio.duration_s(), win, hop)
        .into_iter()
        .filter_map(|(s, e)| analysis.window(s, e, None))
        .collect()
}

// ------------------------------------------------------------------------------------------------
// Baseline

/// Voiced seconds at which a window's deviations count half ([`evidence`]).
pub const EVIDENCE_HALF_S: f64 = 1.5;

/// How much a window's deviations from the baseline count: `voiced / (voiced + 1.5 s)`, from
/// 0.12 at the 0.2 s minimum through 0.4 at 1 s to 0.67 at 3 s of voiced speech. A short window's
/// medians rest on few frames (a single rising "Hello?" is all intonation), and agitation is a
/// sustained state, so a brief excursion must not weigh like a sustained one. Level-invariant:
/// voicing does not depend on gain.
pub fn evidence(voiced_s: f64) -> f64 {
    let v = voiced_s.max(0.0);
    v / (v + EVIDENCE_HALF_S)
}

/// How many windows of history at most count against the current call in a blend: history
/// informs, but a long record must not drown out today's call.
pub const HISTORY_CAP_WINDOWS: usize = 200;

impl Baseline {
    /// The agent's in-call baseline: weighted medians (weight = active speech seconds) over the
    /// windows. `None` when there are no windows.
    pub fn from_windows(windows: &[RawFeatures]) -> Option<Baseline> {
        if windows.is_empty() {
            return None;
        }
        let med = |f: &dyn Fn(&RawFeatures) -> f64| {
            weighted_median(windows.iter().map(|w| (f(w), w.active_s)).collect())
        };
        let med_opt = |f: &dyn Fn(&RawFeatures) -> Option<f64>| {
            weighted_median(
                windows
                    .iter()
                    .filter_map(|w| f(w).map(|v| (v, w.active_s)))
                    .collect(),
            )
        };
        let f0 = med(&|w| w.f0_median_hz)?;
        let level = med(&|w| w.level_db)?;
        let f0_mad_st = med(&|w| (12.0 * (w.f0_median_hz / f0).log2()).abs()).unwrap_or(0.0);
        let level_mad_db = med(&|w| (w.level_db - level).abs()).unwrap_or(0.0);
        Some(Baseline {
            f0_median_hz: f0,
            f0_mad_st,
            f0_range_st: med(&|w| w.f0_range_st)?,
            level_db: level,
            level_mad_db,
            peak_db: med(&|w| w.peak_db)?,
            syllable_rate: med_opt(&|w| w.syllable_rate),
            char_rate: med_opt(&|w| w.char_rate),
            centroid_hz: med(&|w| w.centroid_hz)?,
            tilt_db: med(&|w| w.tilt_db)?,
            pause_ratio: med(&|w| w.pause_ratio)?,
            windows: windows.len(),
            calls: 1,
        })
    }

    /// This call's baseline blended with the agent's stored `history`: voice properties (F0, F0
    /// range, rates, pausing) are averaged, history weighted by its windows up to
    /// [`HISTORY_CAP_WINDOWS`]; loudness and spectrum stay this call's own, because they depend on
    /// the line, the handset and how close the microphone is — exactly what must not be flagged.
    /// History is what catches an agent who is tense for a whole call: the in-call baseline alone
    /// would call that their normal.
    pub fn blend(&self, history: &Baseline) -> Baseline {
        let wc = self.windows as f64;
        let wh = history.windows.min(HISTORY_CAP_WINDOWS) as f64;
        if wh <= 0.0 {
            return self.clone();
        }
        let mix = |a: f64, b: f64| (a * wc + b * wh) / (wc + wh);
        let mix_log = |a: f64, b: f64| (a.ln() * wc + b.ln() * wh) / (wc + wh);
        let mix_opt = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(mix_log(a, b).exp()),
            (a, b) => a.or(b),
        };
        Baseline {
            f0_median_hz: mix_log(self.f0_median_hz, history.f0_median_hz).exp(),
            f0_mad_st: mix(self.f0_mad_st, history.f0_mad_st),
            f0_range_st: mix(self.f0_range_st, history.f0_range_st),
            syllable_rate: mix_opt(self.syllable_rate, history.syllable_rate),
            char_rate: mix_opt(self.char_rate, history.char_rate),
            pause_ratio: mix(self.pause_ratio, history.pause_ratio),
            ..self.clone()
        }
    }

    /// The stored baseline after one more call: a running, capped average of voice properties
    /// (old calls fade once [`HISTORY_CAP_WINDOWS`] is reached) and the latest call's channel
    /// properties, kept for reference only.
    pub fn merge_history(history: Option<&Baseline>, call: &Baseline) -> Baseline {
        match history {
            None => call.clone(),
            Some(h) => {
                let mut merged = call.blend(h);
                merged.windows = (h.windows + call.windows).min(HISTORY_CAP_WINDOWS);
                merged.calls = h.calls.saturating_add(call.calls);
                merged
            }
        }
    }

    /// `w` relative to this baseline, each deviation weighted by the window's evidence
    /// ([`evidence`]); unclipped ([`RelativeFeatures::to_array`] clips).
    pub fn relative(&self, w: &RawFeatures) -> RelativeFeatures {
        let k = evidence(w.voiced_s);
        let rate_log = match (
            w.char_rate,
            self.char_rate,
            w.syllable_rate,
            self.syllable_rate,
        ) {
            (Some(c), Some(bc), _, _) if c > 0.0 && bc > 0.0 => (c / bc).ln(),
            (_, _, Some(s), Some(bs)) if s > 0.0 && bs > 0.0 => (s / bs).ln(),
            _ => 0.0,
        };
        RelativeFeatures {
            f0_st: k * 12.0 * (w.f0_median_hz / self.f0_median_hz).log2(),
            f0_range_st: k * (w.f0_range_st - self.f0_range_st),
            level_db: k * (w.level_db - self.level_db),
            peak_db: k * (w.peak_db - self.peak_db),
            rate_log: k * rate_log,
            centroid_oct: k * (w.centroid_hz / self.centroid_hz).log2(),
            tilt_db: k * (w.tilt_db - self.tilt_db),
            pause_ratio: k * (w.pause_ratio - self.pause_ratio),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::Role;

    /// A harmonic complex (10 harmonics, 1/k amplitudes) at `f0`, scaled to `rms_db` dBFS.
    fn harmonic(f0: f64, seconds: f64, rms_db: f64) -> Vec<f32> {
        let n = (seconds * SAMPLE_RATE as f64) as usize;
        let mut x: Vec<f64> = (0..n)
            .map(|i| {
                let t = i as f64 / SAMPLE_RATE as f64;
                (1..=10)
                    .map(|k| (2.0 * std::f64::consts::PI * f0 * k as f64 * t).sin() / k as f64)
                    .sum()
            })
            .collect();
        let rms = (x.iter().map(|v| v * v).sum::<f64>() / n as f64).sqrt();
        let g = 10f64.powf(rms_db / 20.0) / rms;
        x.iter_mut().for_each(|v| *v *= g);
        x.into_iter().map(|v| v as f32).collect()
    }

    fn role(samples: Vec<f32>) -> RoleAudio {
        RoleAudio {
            role: Role::Agent,
            samples,
        }
    }

    #[test]
    fn a_long_call_analysed_in_pieces_equals_one_piece() {
        // 11 minutes (more than two pieces): speech-like tones with pauses, then compare the
        // piecewise analysis with the same frames computed over the whole signal at once.
        let mut x = Vec::new();
        let mut k = 0;
        while x.len() < 11 * 60 * SAMPLE_RATE {
            x.extend(harmonic(150.0 + 10.0 * (k % 7) as f64, 1.3, -22.0));
            x.extend(vec![0.001f32; SAMPLE_RATE * 7 / 10]);
            k += 1;
        }
        let levels = frame_levels(&x);
        let whole_levels = piece_levels(&x);
        assert_eq!(levels.len(), whole_levels.len());
        // Running sums over the whole call lose precision in quiet frames late in the call
        // (a difference of two large sums): the pieces are the more exact of the two.
        for (a, b) in levels.iter().zip(&whole_levels) {
            assert!((a - b).abs() < 1e-2, "level {a} vs {b}");
        }
        let pieces = FrameAnalysis::analyse(&x, None);
        let (mut whole, _) = raw_frames(&x, &whole_levels, pieces.gate_db);
        drop_short_voiced_runs(&mut whole);
        fix_octave_errors(&mut whole);
        drop_short_voiced_runs(&mut whole);
        assert_eq!(pieces.frames.len(), whole.len());
        let voicing_differs = pieces
            .frames
            .iter()
            .zip(&whole)
            .filter(|(a, b)| a.f0_hz.is_some() != b.f0_hz.is_some())
            .count();
        assert_eq!(voicing_differs, 0);
        for (a, b) in pieces.frames.iter().zip(&whole) {
            if let (Some(fa), Some(fb)) = (a.f0_hz, b.f0_hz) {
                assert!((fa - fb).abs() < 1e-3 * fb, "f0 {fa} vs {fb}");
            }
            assert!((a.p_low - b.p_low).abs() <= 1e-9 * b.p_low.max(1e-30));
        }
    }

    #[test]
    fn fft_matches_dft() {
        let n = 16;
        let x: Vec<f64> = (0..n).map(|i| ((i * 7 % 5) as f64) - 2.0).collect();
        let mut buf: Vec<(f64, f64)> = x.iter().map(|&v| (v, 0.0)).collect();
        Fft::new(n).forward(&mut buf);
        for (k, b) in buf.iter().enumerate() {
            let (mut re, mut im) = (0.0, 0.0);
            for (i, v) in x.iter().enumerate() {
                let a = -2.0 * std::f64::consts::PI * (k * i) as f64 / n as f64;
                re += v * a.cos();
                im += v * a.sin();
            }
            assert!(
                (b.0 - re).abs() < 1e-9 && (b.1 - im).abs() < 1e-9,
                "bin {k}"
            );
        }
    }

    #[test]
    fn dot_matches_the_plain_sum_for_every_length() {
        for n in 0..40 {
            let a: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..n).map(|i| (i as f64 * 0.11).cos() - 0.2).collect();
            let plain: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-12, "n = {n}");
        }
    }

    #[test]
    fn f0_of_harmonic_complexes() {
        for f0 in [80.0, 150.0, 220.0, 400.0] {
            let a = role(harmonic(f0, 1.0, -20.0));
            let w = windows_for_utterances(&a, &[(0.0, 1.0)]);
            assert_eq!(w.len(), 1, "f0 {f0}");
            let got = w[0].f0_median_hz;
            assert!((got - f0).abs() <= 0.02 * f0, "f0 {f0}: measured {got}");
            assert!(w[0].f0_range_st < 0.5, "steady tone has no range");
        }
    }

    #[test]
    fn f0_range_of_a_glide() {
        // 150 → 300 Hz exponential glide over 1 s: 12 semitones, 10th–90th percentile ≈ 9.6.
        let n = SAMPLE_RATE;
        let mut phase = 0.0f64;
        let x: Vec<f32> = (0..n)
            .map(|i| {
                let f = 150.0 * 2f64.powf(i as f64 / n as f64);
                phase += 2.0 * std::f64::consts::PI * f / SAMPLE_RATE as f64;
                (0.1 * (1..=6)
                    .map(|k| (k as f64 * phase).sin() / k as f64)
                    .sum::<f64>()) as f32
            })
            .collect();
        let w = windows_for_utterances(&role(x), &[(0.0, 1.0)]);
        let r = w[0].f0_range_st;
        assert!((r - 9.6).abs() < 1.0, "range {r}");
    }

    #[test]
    fn level_is_measured_in_dbfs() {
        let a = role(harmonic(150.0, 1.0, -20.0));
        let w = &windows_for_utterances(&a, &[(0.0, 1.0)])[0];
        assert!((w.level_db + 20.0).abs() < 1.0, "level {}", w.level_db);
        assert!((w.peak_db + 20.0).abs() < 1.0, "peak {}", w.peak_db);
        assert!(w.pause_ratio < 0.05);
    }

    #[test]
    fn noise_is_not_voiced() {
        let mut seed = 1u64;
        let x: Vec<f32> = (0..SAMPLE_RATE)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
            })
            .collect();
        assert!(windows_for_utterances(&role(x), &[(0.0, 1.0)]).is_empty());
    }

    /// Syllable-like bursts: 150 Hz vowels of 120 ms every 200 ms (5 per second) with silence
    /// between, so the nuclei count and the pause ratio are known.
    fn syllables(per_s: f64, seconds: f64, db: f64) -> Vec<f32> {
        let tone = harmonic(150.0, seconds, db);
        let period = (SAMPLE_RATE as f64 / per_s) as usize;
        let on = (0.6 * period as f64) as usize;
        tone.iter()
            .enumerate()
            .map(|(i, &v)| {
                let p = i % period;
                if p < on {
                    // Raised-cosine envelope so each burst has one envelope peak.
                    let e = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * p as f64 / on as f64).cos();
                    v * e as f32
                } else {
                    0.0
                }
            })
            .collect()
    }

    #[test]
    fn syllable_rate_and_pauses_from_bursts() {
        let a = role(syllables(5.0, 2.0, -20.0));
        let w = &windows_for_utterances(&a, &[(0.0, 2.0)])[0];
        // 10 nuclei in 2 s; the active part is the bursts (≈ 60 % minus the gated tails).
        let nuclei = w.syllable_rate.unwrap() * w.active_s;
        assert!((nuclei - 10.0).abs() <= 1.0, "nuclei {nuclei}");
        assert!(
            w.pause_ratio > 0.3 && w.pause_ratio < 0.7,
            "pause {}",
            w.pause_ratio
        );
    }

    #[test]
    fn gain_changes_raw_level_but_not_relative_features() {
        let base = syllables(4.0, 6.0, -25.0);
        let spans = [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)];
        let raw = windows_for_utterances(&role(base.clone()), &spans);
        let louder: Vec<f32> = base.iter().map(|v| v * 10f32.powf(0.5)).collect();
        let raw_loud = windows_for_utterances(&role(louder), &spans);
        assert_eq!(raw.len(), 3);
        assert_eq!(raw_loud.len(), 3);
        for (a, b) in raw.iter().zip(&raw_loud) {
            assert!((b.level_db - a.level_db - 10.0).abs() < 0.01);
            assert!((b.f0_median_hz - a.f0_median_hz).abs() < 1e-6);
            assert!((b.tilt_db - a.tilt_db).abs() < 1e-6);
        }
        let ba = Baseline::from_windows(&raw).unwrap();
        let bb = Baseline::from_windows(&raw_loud).unwrap();
        for (a, b) in raw.iter().zip(&raw_loud) {
            let (ra, rb) = (ba.relative(a).to_array(), bb.relative(b).to_array());
            for i in 0..N_FEATURES {
                assert!((ra[i] - rb[i]).abs() < 1e-3, "{}", FEATURE_NAMES[i]);
            }
        }
    }

    #[test]
    fn relative_features_of_a_raised_voice() {
        let mut x = harmonic(150.0, 3.0, -26.0);
        x.extend(harmonic(150.0 * 2f64.powf(4.0 / 12.0), 1.0, -18.0));
        let w = windows_for_utterances(&role(x), &[(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 4.0)]);
        let b = Baseline::from_windows(&w).unwrap();
        let r = b.relative(&w[3]);
        // 1 s of voiced speech: deviations count with evidence(1.0) = 0.4.
        let k = evidence(w[3].voiced_s);
        assert!(k > 0.35 && k < 0.45, "{k}");
        assert!((r.f0_st / k - 4.0).abs() < 0.3, "{r:?}");
        assert!((r.level_db / k - 8.0).abs() < 0.5, "{r:?}");
        assert!(b.relative(&w[0]).f0_st.abs() < 0.1);
    }

    #[test]
    fn long_spans_are_split_and_short_ones_kept() {
        let plan = plan_windows(100.0, &[(0.0, 10.0), (20.0, 21.0), (99.0, 120.0)], None);
        assert_eq!(plan.len(), 3 + 1 + 1);
        assert!((plan[0].1 - 10.0 / 3.0).abs() < 1e-9);
        assert_eq!(plan[4], (99.0, 100.0, None));
        assert_eq!(sliding_spans(3.0, 2.0, 0.5).len(), 3);
    }

    #[test]
    fn history_blend_keeps_channel_properties_of_the_call() {
        let raw = windows_for_utterances(&role(harmonic(200.0, 2.0, -20.0)), &[(0.0, 2.0)]);
        let call = Baseline::from_windows(&raw).unwrap();
        let mut hist = call.clone();
        hist.f0_median_hz = 100.0;
        hist.level_db = -50.0;
        hist.windows = 1;
        let b = call.blend(&hist);
        assert!((b.f0_median_hz - (200.0f64 * 100.0).sqrt()).abs() < 1.0);
        assert_eq!(b.level_db, call.level_db);
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(serde_json::from_str::<Baseline>(&json).unwrap(), b);
    }
}
