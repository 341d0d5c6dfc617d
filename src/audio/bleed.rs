//! # Bleed between channels: the other party's voice leaking into a channel
//!
//! Every centre's recorder has some crosstalk: the agent's channel carries a faint, delayed copy
//! of the caller (line echo, a headset's sidetone, a recorder tapping both legs), and the
//! caller's channel a copy of the agent. Left in, that copy opens speech regions when only the
//! other party speaks, so callqc heard both at once (talk-over findings on clean calls), whisper
//! wrote the caller's words into the agent's transcript, and the tone model scored the caller's
//! voice as the agent's.
//!
//! [`BleedCanceller`] sits between the resampler and the VAD of a two-party call. For every
//! block of 0.256 s it cross-correlates each channel with the other one over delays of 0–80 ms
//! (by FFT); a block where one channel is, to a correlation of 0.8 or more, a scaled and delayed
//! copy of the other is a vote for that leak path (delay, gain). Three votes that agree on the
//! delay (±2 samples) and on the gain (within a factor of two) establish the path for the call,
//! and from then on `g · other(t − d)` is subtracted from the channel: a stretch where only the
//! other party spoke becomes near-silence (no region, no transcript, no tone), and a stretch
//! where both spoke keeps this party's own voice, so real talk-over is still found. Until a path
//! is known the first seconds are held back (at most [`HOLD_S`]) so that they are cleaned too.
//!
//! Limits (docs/pbx-conditions.md): one delay and one gain per direction per call — a
//! recorder's crosstalk or a line echo with a flat response, −12 dB or quieter (a copy louder
//! than half the source is not taken for a leak: that is a mono call written to two channels);
//! an acoustic echo smeared over many reflections is reduced only by its strongest path.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

/// Samples per analysis block (0.256 s at 16 kHz).
pub const BLOCK: usize = 4096;
/// The longest leak delay searched: 80 ms at 16 kHz.
pub const MAX_DELAY: usize = 1280;
/// How long the start of a call is held back while no leak path is known, in seconds.
pub const HOLD_S: f64 = 3.0;
/// A block votes for a path when one channel is this correlated with the other, delayed.
const MIN_CORRELATION: f32 = 0.8;
/// Agreeing votes that establish a path.
const VOTES: usize = 3;
/// A leak is quieter than this (linear gain): a louder copy is the same signal on two channels.
const MAX_GAIN: f32 = 0.5;
/// Below this RMS a block of the source channel carries nothing to leak (about −50 dBFS).
const MIN_SOURCE_RMS: f32 = 0.003;
const FFT_LEN: usize = 8192;

/// One established leak: `into` carries `gain · other(t − delay)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeakPath {
    pub delay: usize,
    pub gain: f32,
}

#[derive(Debug, Default, Clone)]
struct Votes {
    seen: Vec<LeakPath>,
    path: Option<LeakPath>,
}

impl Votes {
    fn add(&mut self, vote: LeakPath) {
        self.seen.push(vote);
        let agreeing: Vec<f32> = self
            .seen
            .iter()
            .filter(|v| {
                v.delay.abs_diff(vote.delay) <= 2
                    && v.gain.signum() == vote.gain.signum()
                    && (v.gain / vote.gain).abs() <= 2.0
                    && (vote.gain / v.gain).abs() <= 2.0
            })
            .map(|v| v.gain)
            .collect();
        if agreeing.len() >= VOTES && self.path.is_none_or(|p| p.delay.abs_diff(vote.delay) <= 2) {
            let mut g = agreeing;
            g.sort_by(f32::total_cmp);
            self.path = Some(LeakPath {
                delay: vote.delay,
                gain: g[g.len() / 2],
            });
        }
    }
}

/// The two-channel stage: push each channel's 16 kHz samples as they come, take back aligned,
/// cleaned audio of both.
pub struct BleedCanceller {
    /// Raw samples per channel from absolute sample `base` on.
    raw: [Vec<f32>; 2],
    base: usize,
    /// Samples analysed and released so far (the same for both channels).
    analysed: usize,
    released: usize,
    hold: usize,
    /// `votes[c]`: the leak into channel `c` from the other.
    votes: [Votes; 2],
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
    scratch: Scratch,
}

struct Scratch {
    time: Vec<f32>,
    spec_src: Vec<Complex<f32>>,
    spec_dst: Vec<Complex<f32>>,
    corr: Vec<f32>,
}

impl Default for BleedCanceller {
    fn default() -> Self {
        Self::new(crate::audio::TARGET_RATE)
    }
}

impl BleedCanceller {
    pub fn new(rate: u32) -> Self {
        let mut planner = RealFftPlanner::<f32>::new();
        let forward = planner.plan_fft_forward(FFT_LEN);
        let inverse = planner.plan_fft_inverse(FFT_LEN);
        let scratch = Scratch {
            time: forward.make_input_vec(),
            spec_src: forward.make_output_vec(),
            spec_dst: forward.make_output_vec(),
            corr: inverse.make_output_vec(),
        };
        BleedCanceller {
            raw: [Vec::new(), Vec::new()],
            base: 0,
            analysed: 0,
            released: 0,
            hold: (HOLD_S * f64::from(rate)) as usize,
            votes: [Votes::default(), Votes::default()],
            forward,
            inverse,
            scratch,
        }
    }

    /// The leak paths known so far: `[into channel 0, into channel 1]`.
    pub fn paths(&self) -> [Option<LeakPath>; 2] {
        [self.votes[0].path, self.votes[1].path]
    }

    /// Samples of `channel` (0 or 1); returns what can be released now, per channel, in order.
    pub fn push(&mut self, channel: usize, samples: &[f32]) -> [Vec<f32>; 2] {
        self.raw[channel.min(1)].extend_from_slice(samples);
        while self.len(0).min(self.len(1)) >= self.analysed + BLOCK {
            self.analyse(self.analysed);
            self.analysed += BLOCK;
        }
        let known = self.votes.iter().any(|v| v.path.is_some());
        let holding = self.released == 0 && !known && self.analysed < self.hold;
        if holding {
            return [Vec::new(), Vec::new()];
        }
        self.release(self.analysed)
    }

    /// The call ended: release everything (the shorter channel padded with silence while the
    /// longer one goes on).
    pub fn flush(&mut self) -> [Vec<f32>; 2] {
        let end = self.len(0).max(self.len(1));
        self.release(end)
    }

    /// Absolute length of a channel's input.
    fn len(&self, c: usize) -> usize {
        self.base + self.raw[c].len()
    }

    fn sample(&self, c: usize, at: isize) -> f32 {
        if at < self.base as isize {
            return 0.0;
        }
        self.raw[c]
            .get(at as usize - self.base)
            .copied()
            .unwrap_or(0.0)
    }

    fn release(&mut self, to: usize) -> [Vec<f32>; 2] {
        let from = self.released;
        let mut out = [Vec::new(), Vec::new()];
        for (c, o) in out.iter_mut().enumerate() {
            let end = to.min(self.len(c));
            if end <= from {
                continue;
            }
            let path = self.votes[c].path;
            o.extend((from..end).map(|t| {
                let own = self.sample(c, t as isize);
                match path {
                    Some(p) => own - p.gain * self.sample(1 - c, t as isize - p.delay as isize),
                    None => own,
                }
            }));
        }
        self.released = to.max(from);
        // Keep the lookback the next blocks need.
        let keep_from = self.released.min(self.analysed).saturating_sub(MAX_DELAY);
        if keep_from > self.base {
            let drop = keep_from - self.base;
            for r in &mut self.raw {
                r.drain(..drop.min(r.len()));
            }
            self.base = keep_from;
        }
        out
    }

    /// Vote on the block `[at, at + BLOCK)` in both directions.
    fn analyse(&mut self, at: usize) {
        for dst in 0..2 {
            if let Some(vote) = self.leak_into(dst, at) {
                self.votes[dst].add(vote);
            }
        }
    }

    /// Is channel `dst`'s block a delayed, scaled copy of the other channel?
    fn leak_into(&mut self, dst: usize, at: usize) -> Option<LeakPath> {
        let src = 1 - dst;
        let start = at as isize - MAX_DELAY as isize;
        // x: the source with its lookback (BLOCK + MAX_DELAY); y: the destination block.
        let x: Vec<f32> = (0..BLOCK + MAX_DELAY)
            .map(|k| self.sample(src, start + k as isize))
            .collect();
        let y: Vec<f32> = (0..BLOCK)
            .map(|k| self.sample(dst, (at + k) as isize))
            .collect();
        let e_y: f32 = y.iter().map(|v| v * v).sum();
        let src_block = &x[MAX_DELAY..];
        let src_rms = (src_block.iter().map(|v| v * v).sum::<f32>() / BLOCK as f32).sqrt();
        if src_rms < MIN_SOURCE_RMS || e_y <= 1e-9 {
            return None;
        }
        let s = &mut self.scratch;
        s.time.iter_mut().for_each(|v| *v = 0.0);
        s.time[..x.len()].copy_from_slice(&x);
        self.forward.process(&mut s.time, &mut s.spec_src).ok()?;
        s.time.iter_mut().for_each(|v| *v = 0.0);
        s.time[..y.len()].copy_from_slice(&y);
        self.forward.process(&mut s.time, &mut s.spec_dst).ok()?;
        // corr[j] = Σ_t y[t] · x[t + j]: the cross-spectrum conj(Y) · X.
        for (a, b) in s.spec_src.iter_mut().zip(&s.spec_dst) {
            *a *= b.conj();
        }
        self.inverse.process(&mut s.spec_src, &mut s.corr).ok()?;
        let scale = 1.0 / FFT_LEN as f32;
        // Energy of x over each lag's window, by prefix sums.
        let mut prefix = Vec::with_capacity(x.len() + 1);
        prefix.push(0.0f64);
        for v in &x {
            let last = *prefix.last().unwrap_or(&0.0);
            prefix.push(last + f64::from(v * v));
        }
        let mut best: Option<(f32, usize, f32)> = None;
        for j in 0..=MAX_DELAY {
            let e_x = (prefix[j + BLOCK] - prefix[j]) as f32;
            if e_x <= 1e-9 {
                continue;
            }
            let c = s.corr[j] * scale;
            let rho = c / (e_y * e_x).sqrt();
            if best.is_none_or(|(r, _, _)| rho.abs() > r.abs()) {
                best = Some((rho, j, c / e_x));
            }
        }
        let (rho, j, gain) = best?;
        (rho.abs() >= MIN_CORRELATION && gain.abs() <= MAX_GAIN).then_some(LeakPath {
            delay: MAX_DELAY - j,
            gain,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A speech-like test signal: noise bursts under a slow envelope.
    fn voice(n: usize, seed: u64, on: impl Fn(usize) -> bool) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|i| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5;
                if on(i) { u * 0.3 } else { 0.0 }
            })
            .collect()
    }

    fn run(a: &[f32], b: &[f32]) -> (BleedCanceller, [Vec<f32>; 2]) {
        let mut bc = BleedCanceller::new(16_000);
        let mut out = [Vec::new(), Vec::new()];
        for (ca, cb) in a.chunks(320).zip(b.chunks(320)) {
            for (c, chunk) in [(0, ca), (1, cb)] {
                let r = bc.push(c, chunk);
                out[0].extend(&r[0]);
                out[1].extend(&r[1]);
            }
        }
        let r = bc.flush();
        out[0].extend(&r[0]);
        out[1].extend(&r[1]);
        (bc, out)
    }

    fn rms(v: &[f32]) -> f32 {
        (v.iter().map(|x| x * x).sum::<f32>() / v.len().max(1) as f32).sqrt()
    }

    #[test]
    fn a_delayed_copy_is_found_and_removed_and_real_overlap_stays() {
        let n = 16_000 * 8;
        // The caller talks in the first half; the agent talks over them from 3 s to 5 s.
        let caller = voice(n, 1, |i| i < 16_000 * 4);
        let own = voice(n, 2, |i| (16_000 * 3..16_000 * 5).contains(&i));
        let delay = 480; // 30 ms
        let g = 10f32.powf(-24.0 / 20.0);
        let agent: Vec<f32> = (0..n)
            .map(|i| {
                own[i]
                    + if i >= delay {
                        g * caller[i - delay]
                    } else {
                        0.0
                    }
            })
            .collect();
        let (bc, out) = run(&agent, &caller);
        let path = bc.paths()[0].expect("the leak into the agent's channel is found");
        assert_eq!(path.delay, delay);
        assert!((path.gain - g).abs() < 0.01, "{path:?}");
        assert!(
            bc.paths()[1].is_none(),
            "nothing leaks into the caller's channel"
        );
        assert_eq!(out[0].len(), n);
        assert_eq!(out[1].len(), n);
        // Caller alone (1–3 s): the agent's channel is silent after cleaning.
        let alone = &out[0][16_000..16_000 * 3];
        assert!(rms(alone) < 0.001, "residual {}", rms(alone));
        // Both (3–4 s): the agent's own voice is all that is left.
        let both = &out[0][16_000 * 3..16_000 * 4];
        let err: Vec<f32> = both
            .iter()
            .zip(&own[16_000 * 3..16_000 * 4])
            .map(|(a, b)| a - b)
            .collect();
        assert!(rms(&err) < 0.001 && rms(both) > 0.05);
        // The caller's channel is untouched.
        assert_eq!(out[1], caller);
    }

    #[test]
    fn independent_voices_and_duplicated_channels_are_left_alone() {
        let n = 16_000 * 6;
        let a = voice(n, 3, |i| i % 32_000 < 16_000);
        let b = voice(n, 4, |i| i % 32_000 >= 12_000);
        let (bc, out) = run(&a, &b);
        assert_eq!(bc.paths(), [None, None]);
        assert_eq!(out[0], a);
        // The same signal on both channels (a mono call written as stereo) is no leak.
        let (bc, _) = run(&a, &a);
        assert_eq!(bc.paths(), [None, None]);
    }
}
