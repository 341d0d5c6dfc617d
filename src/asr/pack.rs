//! From speech regions to whisper windows, and from window time back to call time.
//!
//! Whisper's encoder always costs one 30 s window, however little audio it holds, so how regions
//! become windows decides most of the ASR cost. Two policies:
//! - [`PackPolicy::PerRegion`]: one window per VAD region (timestamps are exact region edges);
//! - [`PackPolicy::Packed`]: consecutive regions of a role share a window of up to `max_window_s`,
//!   separated by a short silence so whisper still sees the pause; each piece keeps its call
//!   offset, and segment times are mapped back piece by piece.

use serde::{Deserialize, Serialize};

use crate::audio::{Role, RoleAudio, TARGET_RATE};
use crate::vad::SpeechRegion;

/// How regions are grouped into whisper windows.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "policy")]
pub enum PackPolicy {
    #[default]
    PerRegion,
    Packed {
        max_window_s: f64,
        gap_s: f64,
    },
}

/// One region's audio placed inside a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Piece {
    /// Where the piece starts inside the window (s).
    pub window_start: f64,
    /// The region it came from (call time).
    pub region: SpeechRegion,
}

/// A stretch of audio handed to whisper in one call.
#[derive(Debug, Clone)]
pub struct Window {
    pub role: Role,
    pub samples: Vec<f32>,
    pub pieces: Vec<Piece>,
}

impl Window {
    /// Seconds of real audio in the window (before any padding whisper adds).
    pub fn content_s(&self) -> f64 {
        self.pieces
            .last()
            .map_or(0.0, |p| p.window_start + p.region.duration())
    }

    /// Map a window time to call time: inside a piece, linearly; in the silence between two
    /// pieces, to the nearer edge (a segment boundary there belongs to the pause).
    pub fn to_call_time(&self, t: f64) -> f64 {
        let mut best = None;
        for (i, p) in self.pieces.iter().enumerate() {
            let end = p.window_start + p.region.duration();
            if t < p.window_start {
                // In the gap before piece i: snap to the nearer neighbour edge.
                if i > 0 {
                    let prev = &self.pieces[i - 1];
                    let prev_end = prev.window_start + prev.region.duration();
                    if t - prev_end < p.window_start - t {
                        return prev.region.end;
                    }
                }
                return p.region.start;
            }
            if t <= end {
                return p.region.start + (t - p.window_start);
            }
            best = Some(p.region.end);
        }
        best.unwrap_or(0.0)
    }

    /// The piece a window time falls in (or the last one before it).
    pub fn piece_at(&self, t: f64) -> Option<&Piece> {
        self.pieces
            .iter()
            .rev()
            .find(|p| p.window_start <= t)
            .or(self.pieces.first())
    }
}

/// The samples of `r` (call time) in `audio`, whose first sample is the call's `first_sample`th.
fn slice_of<'a>(audio: &'a RoleAudio, first_sample: usize, r: &SpeechRegion) -> &'a [f32] {
    let rate = TARGET_RATE as f64;
    let n = audio.samples.len();
    let a = ((r.start * rate) as usize)
        .saturating_sub(first_sample)
        .min(n);
    let b = ((r.end * rate).ceil() as usize)
        .saturating_sub(first_sample)
        .clamp(a, n);
    &audio.samples[a..b]
}

/// Group a role's regions into windows under `policy`. Regions longer than a window are
/// expected to have been split by VAD already (`VadParams::max_region_s`).
pub fn pack(audio: &RoleAudio, regions: &[SpeechRegion], policy: PackPolicy) -> Vec<Window> {
    pack_from(audio, 0, regions, policy)
}

/// [`pack`] over audio that starts `first_sample` samples into the call (a live session keeps
/// only its recent audio); `regions` are in call time, and so are the windows' pieces.
pub fn pack_from(
    audio: &RoleAudio,
    first_sample: usize,
    regions: &[SpeechRegion],
    policy: PackPolicy,
) -> Vec<Window> {
    let mut windows: Vec<Window> = Vec::new();
    let (max_s, gap_s, packed) = match policy {
        PackPolicy::PerRegion => (f64::INFINITY, 0.0, false),
        PackPolicy::Packed {
            max_window_s,
            gap_s,
        } => (max_window_s, gap_s, true),
    };
    let gap = vec![0.0f32; (gap_s * TARGET_RATE as f64) as usize];
    for r in regions {
        let audio_slice = slice_of(audio, first_sample, r);
        if audio_slice.is_empty() {
            continue;
        }
        let fits = windows.last().is_some_and(|w| {
            packed
                && w.samples.len() + gap.len() + audio_slice.len()
                    <= (max_s * TARGET_RATE as f64) as usize
        });
        if !fits {
            windows.push(Window {
                role: audio.role,
                samples: Vec::new(),
                pieces: Vec::new(),
            });
        }
        let w = windows.last_mut().expect("just pushed");
        if !w.pieces.is_empty() {
            w.samples.extend_from_slice(&gap);
        }
        w.pieces.push(Piece {
            window_start: w.samples.len() as f64 / TARGET_RATE as f64,
            region: SpeechRegion {
                start: r.start,
                end: r.start + audio_slice.len() as f64 / TARGET_RATE as f64,
            },
        });
        w.samples.extend_from_slice(audio_slice);
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audio(secs: f64) -> RoleAudio {
        RoleAudio {
            role: Role::Agent,
            samples: vec![0.1; (secs * TARGET_RATE as f64) as usize],
        }
    }

    fn region(start: f64, end: f64) -> SpeechRegion {
        SpeechRegion { start, end }
    }

    #[test]
    fn per_region_gives_one_window_each_with_exact_times() {
        let a = audio(20.0);
        let w = pack(
            &a,
            &[region(1.0, 3.0), region(5.0, 6.5)],
            PackPolicy::PerRegion,
        );
        assert_eq!(w.len(), 2);
        assert!((w[1].to_call_time(0.0) - 5.0).abs() < 1e-9);
        assert!((w[1].to_call_time(1.5) - 6.5).abs() < 1e-9);
        assert!((w[0].content_s() - 2.0).abs() < 1e-3);
    }

    #[test]
    fn packing_the_tail_of_a_call_cuts_what_packing_the_whole_call_cuts() {
        let whole = RoleAudio {
            role: Role::Agent,
            samples: (0..20 * TARGET_RATE).map(|i| i as f32).collect(),
        };
        let first = 7 * TARGET_RATE as usize;
        let tail = RoleAudio {
            role: Role::Agent,
            samples: whole.samples[first..].to_vec(),
        };
        let regions = [region(8.0321, 9.5), region(12.25, 19.9)];
        let a = pack(&whole, &regions, PackPolicy::PerRegion);
        let b = pack_from(&tail, first, &regions, PackPolicy::PerRegion);
        assert_eq!(a.len(), 2);
        assert_eq!(a.len(), b.len());
        for (a, b) in a.iter().zip(&b) {
            assert_eq!(a.samples, b.samples);
            assert_eq!(a.pieces.len(), b.pieces.len());
            assert!((a.pieces[0].region.end - b.pieces[0].region.end).abs() < 1e-12);
        }
        assert_eq!(
            b[0].samples[0],
            (8.0321 * TARGET_RATE as f64) as usize as f32
        );
    }

    #[test]
    fn packed_windows_respect_the_maximum_and_map_back() {
        let a = audio(60.0);
        let regs = [
            region(1.0, 9.0),
            region(12.0, 20.0),
            region(25.0, 35.0),
            region(40.0, 41.0),
        ];
        let policy = PackPolicy::Packed {
            max_window_s: 20.0,
            gap_s: 0.5,
        };
        let w = pack(&a, &regs, policy);
        assert_eq!(w.len(), 2, "8 + 0.5 + 8 fits, +10 does not");
        assert!(
            w.iter()
                .all(|w| w.samples.len() <= 20 * TARGET_RATE as usize)
        );
        // Second piece of the first window starts at 8.5 s window time = 12 s call time.
        assert!((w[0].to_call_time(8.5) - 12.0).abs() < 1e-6);
        assert!((w[0].to_call_time(10.0) - 13.5).abs() < 1e-6);
        // In the gap: snaps to the nearer edge.
        assert!((w[0].to_call_time(8.1) - 9.0).abs() < 1e-6);
        assert!((w[0].to_call_time(8.4) - 12.0).abs() < 1e-6);
        assert!((w[1].to_call_time(10.5) - 40.0).abs() < 1e-6);
    }
}
