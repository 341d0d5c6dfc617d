//! The mel filter bank that whisper.cpp reads from the model file.
//!
//! whisper.cpp does not compute its filters: it uses the matrix stored in the ggml file, which
//! whisper's own converter copies from openai-whisper's `mel_filters.npz` (`mel_80`, `mel_128`).
//! Those were made by `librosa.filters.mel(sr=16000, n_fft=400, n_mels=…)` — Slaney mel scale,
//! Slaney area normalisation, fmin 0, fmax sr/2. We recompute them here so that the converter needs
//! no Python asset, replaying librosa's arithmetic step by step (f64 ramps, stored to f32, scaled
//! by an f64 norm, stored to f32 again) so that the result is bit-identical, down to the sign of
//! zeros: librosa's `np.maximum(0, -0.0)` keeps `-0.0` (`w[0][0]`).

/// Sample rate whisper works at.
pub const SAMPLE_RATE: f64 = 16_000.0;
/// FFT size of whisper's STFT (25 ms).
pub const N_FFT: usize = 400;
/// Number of frequency bins of a real FFT of [`N_FFT`] points.
pub const N_FREQ: usize = N_FFT / 2 + 1;

// Slaney mel scale constants, spelled as librosa computes them.
const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;

fn min_log_mel() -> f64 {
    MIN_LOG_HZ / F_SP
}

fn logstep() -> f64 {
    6.4f64.ln() / 27.0
}

/// Hz → Slaney mel: linear below 1 kHz, logarithmic above.
pub fn hz_to_mel(f: f64) -> f64 {
    if f >= MIN_LOG_HZ {
        min_log_mel() + (f / MIN_LOG_HZ).ln() / logstep()
    } else {
        f / F_SP
    }
}

/// Slaney mel → Hz (inverse of [`hz_to_mel`]).
pub fn mel_to_hz(m: f64) -> f64 {
    if m >= min_log_mel() {
        MIN_LOG_HZ * (logstep() * (m - min_log_mel())).exp()
    } else {
        F_SP * m
    }
}

/// `n` mel-band edge frequencies in Hz, evenly spaced in mel between `fmin` and `fmax`
/// (numpy's `linspace`: `k * step + start`, with the last point set to the end exactly).
fn mel_frequencies(n: usize, fmin: f64, fmax: f64) -> Vec<f64> {
    let (lo, hi) = (hz_to_mel(fmin), hz_to_mel(fmax));
    let step = (hi - lo) / (n as f64 - 1.0);
    (0..n)
        .map(|k| if k + 1 == n { hi } else { k as f64 * step + lo })
        .map(mel_to_hz)
        .collect()
}

/// numpy's `maximum` as its SIMD loops behave for equal operands: the second one wins, which is
/// why `max(0, -0.0)` is `-0.0`.
fn np_max(a: f64, b: f64) -> f64 {
    if a > b { a } else { b }
}

fn np_min(a: f64, b: f64) -> f64 {
    if a < b { a } else { b }
}

/// The `n_mels × N_FREQ` filter bank, row-major (row = mel band), for 16 kHz audio and a 400-point
/// FFT, as whisper uses (`n_mels` is 80 for all models up to large-v2, 128 for large-v3).
pub fn mel_filters(n_mels: usize) -> Vec<f32> {
    let mel_f = mel_frequencies(n_mels + 2, 0.0, SAMPLE_RATE / 2.0);
    // numpy's rfftfreq: j / (n * d) with d = 1/sr; for 400 points at 16 kHz this is exactly 40·j.
    let bin_hz = 1.0 / (N_FFT as f64 * (1.0 / SAMPLE_RATE));
    let fft_f: Vec<f64> = (0..N_FREQ).map(|j| j as f64 * bin_hz).collect();

    let mut w = vec![0f32; n_mels * N_FREQ];
    for (i, row) in w.chunks_exact_mut(N_FREQ).enumerate() {
        let (f0, f1, f2) = (mel_f[i], mel_f[i + 1], mel_f[i + 2]);
        let enorm = 2.0 / (f2 - f0);
        for (cell, &f) in row.iter_mut().zip(&fft_f) {
            // librosa: ramps = mel_f - fft_f; lower = -ramps[i] / fdiff[i] (hence -0.0 at f == f0).
            let lower = -(f0 - f) / (f1 - f0);
            let upper = (f2 - f) / (f2 - f1);
            let tri = np_max(0.0, np_min(lower, upper)) as f32;
            *cell = (tri as f64 * enorm) as f32;
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_weight_is_negative_zero() {
        let w = mel_filters(80);
        assert_eq!(w.len(), 80 * 201);
        assert_eq!(w[0].to_bits(), (-0.0f32).to_bits());
    }

    #[test]
    fn mel_scale_round_trips_and_is_continuous_at_1khz() {
        for f in [0.0, 40.0, 999.0, 1000.0, 2500.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(f)) - f).abs() < 1e-9, "{f}");
        }
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
        assert!((hz_to_mel(8000.0) - (15.0 + 8f64.ln() / (6.4f64.ln() / 27.0))).abs() < 1e-12);
    }

    /// Slaney normalisation scales each triangle (height 1, base f2 - f0) by 2/(f2 - f0), so its
    /// area in Hz is 1. Sampled every 40 Hz, the sum of weights × 40 Hz approximates that area
    /// well once a band spans many bins (the upper bands, hundreds of Hz wide).
    #[test]
    fn slaney_normalisation_gives_unit_area_for_wide_bands() {
        let w = mel_filters(80);
        for band in 60..80 {
            let area: f64 = w[band * N_FREQ..(band + 1) * N_FREQ]
                .iter()
                .map(|&x| x as f64 * 40.0)
                .sum();
            assert!((area - 1.0).abs() < 0.02, "band {band}: {area}");
        }
        assert!(w.iter().all(|&x| x >= 0.0 && x.is_finite()));
        // Every band has some weight.
        for band in 0..80 {
            assert!(
                w[band * N_FREQ..(band + 1) * N_FREQ]
                    .iter()
                    .any(|&x| x > 0.0)
            );
        }
    }

    /// A few entries recomputed from the definition in plain f64, then rounded like librosa.
    #[test]
    fn known_values_from_the_formula() {
        let w = mel_filters(80);
        let hi_mel = 15.0 + (8.0f64).ln() / (6.4f64.ln() / 27.0);
        let edge = |k: usize| {
            let m = k as f64 * hi_mel / 81.0;
            if m >= 15.0 {
                1000.0 * ((6.4f64.ln() / 27.0) * (m - 15.0)).exp()
            } else {
                m * 200.0 / 3.0
            }
        };
        for (i, j) in [
            (0usize, 1usize),
            (1, 2),
            (10, 10),
            (10, 11),
            (40, 43),
            (79, 199),
        ] {
            let (f0, f1, f2) = (edge(i), edge(i + 1), edge(i + 2));
            let f = 40.0 * j as f64;
            let tri = ((f - f0) / (f1 - f0)).min((f2 - f) / (f2 - f1)).max(0.0) as f32;
            let expect = (tri as f64 * 2.0 / (f2 - f0)) as f32;
            let got = w[i * N_FREQ + j];
            assert!(expect > 0.0, "w[{i}][{j}] should be inside band {i}");
            assert!(
                (got - expect).abs() <= f32::EPSILON * expect.abs(),
                "w[{i}][{j}] = {got}, formula gives {expect}"
            );
        }
        // Band 0 rises from 0 Hz to its peak at f1 ≈ 37 Hz and falls to zero at f2 ≈ 74 Hz: bin 1
        // (40 Hz) is on the falling edge, bin 2 (80 Hz) is past the band.
        assert!(w[1] > 0.0);
        assert_eq!(w[2], 0.0);
    }

    #[test]
    fn supports_128_bands() {
        let w = mel_filters(128);
        assert_eq!(w.len(), 128 * 201);
        assert_eq!(w[0].to_bits(), (-0.0f32).to_bits());
        assert!(w.iter().all(|&x| x.is_finite() && x >= 0.0));
    }
}
