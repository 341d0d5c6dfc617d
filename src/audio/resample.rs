//! Resample one channel to [`TARGET_RATE`] (16 kHz), the rate whisper and the VAD expect.
//!
//! Uses rubato's synchronous FFT resampler: every supported input rate is an integer, so the
//! exact rational ratio is available, and the FFT resampler gives a long, steep anti-aliasing
//! filter cheaply. Its start-up delay is trimmed (rubato's `process_all` does that), so output
//! sample `i` lies at time `i / 16000` s on the input's timeline: timestamps computed on the
//! 16 kHz signal are timestamps in the call. The output is cut or zero-padded to exactly
//! `round(len * 16000 / from_rate)` samples so durations agree with the source.

use std::path::{Path, PathBuf};

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler, WindowFunction};

use super::{AudioError, TARGET_RATE};

/// Length of the FFT block on the 16 kHz side, in samples (64 ms). Longer blocks give a longer
/// filter and so a sharper cut-off close to Nyquist; the price, delay, does not matter offline.
const BLOCK_AT_TARGET: u64 = 1024;

/// Resample mono `samples` taken at `from_rate` Hz to [`TARGET_RATE`].
///
/// Returns exactly `round(samples.len() * 16000 / from_rate)` samples, time-aligned with the
/// input (no resampler delay). At 16 kHz the input is returned unchanged. This is the streaming
/// resampler fed the whole clip at once, so a file and the same audio pushed in 20 ms frames
/// give the same samples.
pub fn to_target_rate(
    path_for_messages: &Path,
    samples: &[f32],
    from_rate: u32,
) -> Result<Vec<f32>, AudioError> {
    let mut stream = StreamResampler::new(path_for_messages, from_rate)?;
    let mut out = stream.push(samples)?;
    out.extend(stream.finish()?);
    Ok(out)
}

/// Chunked resampling of one channel to [`TARGET_RATE`], for audio that arrives in pieces.
///
/// Input is buffered until the FFT resampler has a whole block (64 ms on the 16 kHz side); its
/// start-up delay is dropped from the first output, so output sample `i` always lies at
/// `i / 16000` s on the input's timeline — the same timeline a whole file gets. The price is
/// latency: a pushed sample comes out up to one block plus the filter delay later
/// ([`StreamResampler::latency_s`]). [`StreamResampler::finish`] flushes the tail and cuts the
/// total to exactly `round(len * 16000 / from_rate)` samples.
pub struct StreamResampler {
    /// The file or peer, for messages.
    source: PathBuf,
    from_rate: u32,
    /// None at 16 kHz: samples pass through unchanged.
    fft: Option<Fft<f32>>,
    pending: Vec<f32>,
    /// Output samples still to drop (the resampler's start-up delay).
    to_trim: usize,
    consumed: usize,
    emitted: usize,
    chunk_out: Vec<f32>,
}

impl StreamResampler {
    /// A resampler from `from_rate` Hz for the audio of `source` (a file or peer, named in errors).
    pub fn new(source: &Path, from_rate: u32) -> Result<StreamResampler, AudioError> {
        let err = |reason: String| AudioError::Resample {
            path: source.to_path_buf(),
            reason,
        };
        if from_rate == 0 {
            return Err(err("input sample rate is 0 Hz".to_string()));
        }
        let fft = if from_rate == TARGET_RATE {
            None
        } else {
            // One FFT block: about BLOCK_AT_TARGET samples on the 16 kHz side, a whole number of
            // the smallest block the rate pair allows (`from_rate / gcd` input samples), and an
            // even number of those. The filter's centre sits at half the block, so an odd input
            // block would put the output half an input sample early (11 us at 44.1 kHz); even
            // blocks keep output sample i at exactly i / 16000 s.
            let min_block_in = u64::from(from_rate / gcd(from_rate, TARGET_RATE));
            let wanted_in =
                (BLOCK_AT_TARGET * u64::from(from_rate)).div_ceil(u64::from(TARGET_RATE));
            let blocks = wanted_in.div_ceil(min_block_in).next_multiple_of(2);
            let chunk = blocks * min_block_in;
            Some(
                Fft::<f32>::new_custom(
                    from_rate as usize,
                    TARGET_RATE as usize,
                    chunk as usize,
                    1,
                    1,
                    WindowFunction::BlackmanHarris2,
                    FixedSync::Input,
                )
                .map_err(|e| {
                    err(format!(
                        "cannot set up {from_rate} Hz -> {TARGET_RATE} Hz: {e}"
                    ))
                })?,
            )
        };
        let to_trim = fft.as_ref().map_or(0, |f| f.output_delay());
        let chunk_out = vec![0.0; fft.as_ref().map_or(0, |f| f.output_frames_max())];
        Ok(StreamResampler {
            source: source.to_path_buf(),
            from_rate,
            fft,
            pending: Vec::new(),
            to_trim,
            consumed: 0,
            emitted: 0,
            chunk_out,
        })
    }

    /// Worst-case seconds between a sample going in and its resampled value coming out.
    pub fn latency_s(&self) -> f64 {
        match &self.fft {
            None => 0.0,
            Some(f) => {
                f.input_frames_next() as f64 / f64::from(self.from_rate)
                    + f.output_delay() as f64 / f64::from(TARGET_RATE)
            }
        }
    }

    /// Feed input samples; returns the 16 kHz samples they complete (possibly none).
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<f32>, AudioError> {
        self.consumed += samples.len();
        let Some(fft) = self.fft.as_mut() else {
            self.emitted += samples.len();
            return Ok(samples.to_vec());
        };
        self.pending.extend_from_slice(samples);
        let mut out = Vec::new();
        let need = fft.input_frames_next();
        let mut at = 0;
        while self.pending.len() - at >= need {
            let block = &self.pending[at..at + need];
            let produced = run_block(fft, block, None, &mut self.chunk_out).map_err(|reason| {
                AudioError::Resample {
                    path: self.source.clone(),
                    reason,
                }
            })?;
            at += need;
            emit(
                &self.chunk_out[..produced],
                &mut self.to_trim,
                &mut self.emitted,
                usize::MAX,
                &mut out,
            );
        }
        self.pending.drain(..at);
        Ok(out)
    }

    /// Flush the buffered tail; after this the total output is exactly
    /// `round(input_len * 16000 / from_rate)` samples.
    pub fn finish(&mut self) -> Result<Vec<f32>, AudioError> {
        let want = target_len(self.consumed, self.from_rate);
        let mut out = Vec::new();
        let Some(fft) = self.fft.as_mut() else {
            return Ok(out);
        };
        let need = fft.input_frames_next();
        let mut block = std::mem::take(&mut self.pending);
        let mut partial = Some(block.len());
        block.resize(need, 0.0);
        // Pump the partial block, then silence, until the delayed output reaches the end.
        while self.emitted < want {
            let produced =
                run_block(fft, &block, partial, &mut self.chunk_out).map_err(|reason| {
                    AudioError::Resample {
                        path: self.source.clone(),
                        reason,
                    }
                })?;
            emit(
                &self.chunk_out[..produced],
                &mut self.to_trim,
                &mut self.emitted,
                want,
                &mut out,
            );
            partial = Some(0);
        }
        Ok(out)
    }
}

/// One FFT block through the resampler; the reason of a failure is worded for [`AudioError`].
fn run_block(
    fft: &mut Fft<f32>,
    block: &[f32],
    partial: Option<usize>,
    out: &mut [f32],
) -> Result<usize, String> {
    let input = InterleavedSlice::new(block, 1, block.len()).map_err(|e| format!("input: {e}"))?;
    let frames = out.len();
    let mut output =
        InterleavedSlice::new_mut(out, 1, frames).map_err(|e| format!("output: {e}"))?;
    let indexing = Indexing {
        partial_len: partial,
        ..Indexing::default()
    };
    let (_, produced) = fft
        .process_into_buffer(&input, &mut output, Some(&indexing))
        .map_err(|e| e.to_string())?;
    Ok(produced)
}

/// Append `chunk` to `out`, dropping what is left of the start-up delay and stopping at `limit`
/// samples emitted in all.
fn emit(chunk: &[f32], to_trim: &mut usize, emitted: &mut usize, limit: usize, out: &mut Vec<f32>) {
    let skip = (*to_trim).min(chunk.len());
    *to_trim -= skip;
    let rest = &chunk[skip..];
    let take = rest.len().min(limit.saturating_sub(*emitted));
    out.extend_from_slice(&rest[..take]);
    *emitted += take;
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `round(len * TARGET_RATE / from_rate)` in integer arithmetic (no float rounding surprises).
fn target_len(len: usize, from_rate: u32) -> usize {
    let num = len as u128 * u128::from(TARGET_RATE);
    let den = u128::from(from_rate);
    ((num + den / 2) / den) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn p() -> &'static Path {
        Path::new("/calls/x.wav")
    }

    fn sine(freq: f64, rate: u32, secs: f64, amp: f64) -> Vec<f32> {
        let n = (secs * f64::from(rate)).round() as usize;
        (0..n)
            .map(|i| (amp * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin()) as f32)
            .collect()
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / x.len() as f64).sqrt()
    }

    /// Amplitude of the `freq` component (Goertzel-style single-bin DFT).
    fn tone_amplitude(x: &[f32], rate: u32, freq: f64) -> f64 {
        let (mut re, mut im) = (0.0, 0.0);
        for (i, &s) in x.iter().enumerate() {
            let ph = 2.0 * PI * freq * i as f64 / f64::from(rate);
            re += f64::from(s) * ph.cos();
            im += f64::from(s) * ph.sin();
        }
        2.0 * (re * re + im * im).sqrt() / x.len() as f64
    }

    /// Middle part of a signal, away from the edges where the filter sees the zero padding.
    fn middle(x: &[f32]) -> &[f32] {
        let q = x.len() / 8;
        &x[q..x.len() - q]
    }

    fn db(a: f64, b: f64) -> f64 {
        20.0 * (a / b).log10()
    }

    #[test]
    fn lengths_are_rounded_exactly() {
        for (len, rate, want) in [
            (8000, 8000, 16000),
            (1, 8000, 2),
            (3, 48000, 1),
            (1, 48000, 0),
            (2, 48000, 1), // 0.667 -> 1
            (44100, 44100, 16000),
            (11025, 11025, 16000),
            (12345, 22050, 8958), // 8957.8
        ] {
            assert_eq!(target_len(len, rate), want, "{len} @ {rate}");
            let out = to_target_rate(p(), &vec![0.1; len], rate).unwrap();
            assert_eq!(out.len(), want, "{len} @ {rate}");
        }
        assert!(to_target_rate(p(), &[], 8000).unwrap().is_empty());
        assert!(to_target_rate(p(), &[0.0], 0).is_err());
    }

    #[test]
    fn pushing_20ms_frames_gives_the_same_samples_as_the_whole_clip() {
        for rate in [8000, 16000, 44100] {
            let x = sine(330.0, rate, 1.37, 0.5);
            let whole = to_target_rate(p(), &x, rate).unwrap();
            let mut s = StreamResampler::new(p(), rate).unwrap();
            let mut streamed = Vec::new();
            for frame in x.chunks((rate / 50) as usize) {
                streamed.extend(s.push(frame).unwrap());
            }
            streamed.extend(s.finish().unwrap());
            assert_eq!(streamed.len(), whole.len(), "{rate} Hz");
            let worst = streamed
                .iter()
                .zip(&whole)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 1e-5, "{rate} Hz: differs by {worst}");
            assert!(s.latency_s() < 0.2, "{rate} Hz: latency {}", s.latency_s());
        }
    }

    #[test]
    fn identity_at_16k() {
        let x = sine(300.0, 16000, 0.1, 0.5);
        assert_eq!(to_target_rate(p(), &x, 16000).unwrap(), x);
    }

    #[test]
    fn sine_8k_keeps_frequency_and_level() {
        let x = sine(440.0, 8000, 1.0, 0.5);
        let y = to_target_rate(p(), &x, 8000).unwrap();
        assert_eq!(y.len(), 16000);
        let ym = middle(&y);
        // Level within 1 dB (in fact much closer).
        assert!(
            db(rms(ym), rms(middle(&x))).abs() < 0.1,
            "{}",
            db(rms(ym), rms(&x))
        );
        // Frequency: zero crossings in the middle 0.75 s of a 440 Hz tone.
        let crossings = ym
            .windows(2)
            .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
            .count();
        let expected = 2.0 * 440.0 * ym.len() as f64 / 16000.0;
        assert!(
            (crossings as f64 - expected).abs() <= 2.0,
            "{crossings} vs {expected}"
        );
        // And the DFT bin agrees: all the energy is still at 440 Hz.
        assert!((tone_amplitude(ym, 16000, 440.0) - 0.5).abs() < 0.01);
        // Phase/time alignment of the whole waveform: compare to the ideal 16 kHz sine.
        let ideal = sine(440.0, 16000, 1.0, 0.5);
        let err = middle(&y)
            .iter()
            .zip(middle(&ideal))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 0.01, "max deviation from ideal sine {err}");
    }

    /// Where a step from silence to a tone starts, in seconds.
    fn onset(x: &[f32], rate: u32) -> f64 {
        let i = x.iter().position(|s| s.abs() > 0.05).unwrap();
        i as f64 / f64::from(rate)
    }

    #[test]
    fn onsets_and_impulses_stay_in_place() {
        for rate in [8000, 11025, 22050, 44100, 48000] {
            // A click at about 0.25 s.
            let mut x = vec![0.0f32; rate as usize / 2];
            let at = rate as usize / 4;
            x[at] = 1.0;
            let t_in = at as f64 / f64::from(rate);
            let y = to_target_rate(p(), &x, rate).unwrap();
            let peak = y
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                .unwrap()
                .0;
            let t = peak as f64 / 16000.0;
            assert!(
                (t - t_in).abs() <= 0.001,
                "{rate} Hz: click at {t}, want {t_in}"
            );
            // Far better than the 1 ms promise: the energy centroid is within 5 us.
            let (num, den) = y.iter().enumerate().fold((0.0, 0.0), |(n, d), (i, &s)| {
                let e = f64::from(s) * f64::from(s);
                (n + e * i as f64, d + e)
            });
            let centroid = num / den / 16000.0;
            assert!(
                (centroid - t_in).abs() < 5e-6,
                "{rate} Hz: centroid {centroid} vs {t_in}"
            );

            // A 300 Hz tone that starts at 0.3 s.
            let mut x = vec![0.0f32; (rate as f64 * 0.3) as usize];
            x.extend(sine(300.0, rate, 0.2, 0.8).iter().map(|s| -s));
            let y = to_target_rate(p(), &x, rate).unwrap();
            let (tin, tout) = (onset(&x, rate), onset(&y, 16000));
            assert!(
                (tin - tout).abs() <= 0.001,
                "{rate} Hz: onset {tin} -> {tout}"
            );
        }
    }

    #[test]
    fn downsampling_keeps_passband_and_removes_aliases() {
        for rate in [44100, 48000, 22050] {
            let x = sine(1000.0, rate, 0.5, 0.5);
            let y = to_target_rate(p(), &x, rate).unwrap();
            assert!(db(rms(middle(&y)), rms(&x)).abs() < 0.1, "{rate}");
        }
        for rate in [44100, 48000] {
            // 7 kHz is inside the 8 kHz band: it must survive (within 1 dB).
            let x = sine(7000.0, rate, 0.5, 0.5);
            let y = to_target_rate(p(), &x, rate).unwrap();
            let keep = db(tone_amplitude(middle(&y), 16000, 7000.0), 0.5);
            assert!(keep.abs() < 1.0, "{rate} Hz: 7 kHz changed by {keep:.2} dB");
            // 10 kHz cannot be represented; without filtering it would alias to 6 kHz.
            let x = sine(10000.0, rate, 0.5, 0.5);
            let y = to_target_rate(p(), &x, rate).unwrap();
            let left = db(rms(middle(&y)), rms(&x));
            assert!(left < -30.0, "{rate} Hz: 10 kHz only down {left:.1} dB");
        }
    }

    #[test]
    fn odd_rates_work() {
        // 8001 and 16000 share no factor, so rubato's block is a whole second; still aligned.
        let mut x = vec![0.0f32; 8001];
        x[2000] = 1.0;
        let y = to_target_rate(p(), &x, 8001).unwrap();
        let peak = y
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert!((peak as f64 / 16000.0 - 2000.0 / 8001.0).abs() < 1.0 / 16000.0);
        let x = sine(440.0, 8001, 0.5, 0.5);
        let y = to_target_rate(p(), &x, 8001).unwrap();
        assert_eq!(y.len(), target_len(x.len(), 8001));
        assert!((tone_amplitude(middle(&y), 16000, 440.0) - 0.5).abs() < 0.01);
    }
}
