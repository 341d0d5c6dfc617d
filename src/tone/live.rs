//! Live tone: score an agent's audio as it arrives, one ~2 s window every ~0.5 s.
//!
//! The batch path knows the whole call, so its baseline and level gate come from all of it; live,
//! both come from the call so far (plus the agent's stored history, if any). Early windows are
//! therefore judged against little: with no history, the first seconds of a call can only say
//! "calm" (they *are* the baseline). The windows go through the same
//! [`ToneScorer::score_windows`] as the batch.

use super::features::{
    self, Baseline, FrameAnalysis, GATE_BELOW_LOUD_DB, HOP, RawFeatures, SAMPLE_RATE,
    SILENCE_FLOOR_DB,
};
use super::{ToneError, ToneScorer, ToneWindow};
use crate::audio::Role;

/// Default live window and hop, seconds.
pub const LIVE_WINDOW_S: f64 = 2.0;
pub const LIVE_HOP_S: f64 = 0.5;
/// Windows kept for the running baseline (the last ten minutes at the default hop).
const MAX_BASELINE_WINDOWS: usize = 1200;

/// Frame levels seen so far, in 0.5 dB bins, for the running active-speech gate.
#[derive(Debug, Clone)]
struct LevelHistogram {
    counts: Vec<u64>,
    total: u64,
}

const BIN_DB: f64 = 0.5;
const TOP_DB: f64 = 20.0;

impl LevelHistogram {
    fn new() -> Self {
        let bins = ((TOP_DB - SILENCE_FLOOR_DB) / BIN_DB).ceil() as usize;
        LevelHistogram {
            counts: vec![0; bins],
            total: 0,
        }
    }

    fn add(&mut self, db: f64) {
        if db <= SILENCE_FLOOR_DB || !db.is_finite() {
            return;
        }
        let i = (((db - SILENCE_FLOOR_DB) / BIN_DB) as usize).min(self.counts.len() - 1);
        self.counts[i] += 1;
        self.total += 1;
    }

    /// Same rule as [`features::level_gate`]: 95th percentile minus the gate margin.
    fn gate(&self) -> f64 {
        if self.total == 0 {
            return f64::INFINITY;
        }
        let want = (self.total as f64 * 0.95).ceil() as u64;
        let mut acc = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            acc += c;
            if acc >= want {
                let db = SILENCE_FLOOR_DB + (i as f64 + 0.5) * BIN_DB;
                return (db - GATE_BELOW_LOUD_DB).max(SILENCE_FLOOR_DB);
            }
        }
        SILENCE_FLOOR_DB
    }
}

/// A live tone stream for one role.
pub struct ToneStream {
    role: Role,
    history: Option<Baseline>,
    win: usize,
    hop: usize,
    /// Samples from `buf_start` (absolute sample index) on.
    buf: Vec<f32>,
    buf_start: usize,
    /// Absolute sample index where the next window starts.
    next: usize,
    levels: LevelHistogram,
    /// Frames up to this absolute frame index are already in `levels`.
    levels_upto: usize,
    seen: Vec<RawFeatures>,
}

impl ToneStream {
    /// A stream with the default 2 s window and 0.5 s hop.
    pub fn new(role: Role, history: Option<Baseline>) -> ToneStream {
        ToneStream::with_window(role, history, LIVE_WINDOW_S, LIVE_HOP_S)
    }

    pub fn with_window(
        role: Role,
        history: Option<Baseline>,
        win_s: f64,
        hop_s: f64,
    ) -> ToneStream {
        let win = ((win_s * SAMPLE_RATE as f64).round() as usize).max(HOP * 10);
        let hop = ((hop_s * SAMPLE_RATE as f64).round() as usize).clamp(HOP, win);
        ToneStream {
            role,
            history,
            win,
            hop,
            buf: Vec::new(),
            buf_start: 0,
            next: 0,
            levels: LevelHistogram::new(),
            levels_upto: 0,
            seen: Vec::new(),
        }
    }

    /// Feed the next 16 kHz samples; returns the windows completed by them (possibly none).
    /// Windows with too little voiced speech are skipped, as in the batch.
    pub fn push(
        &mut self,
        scorer: &mut ToneScorer,
        samples: &[f32],
    ) -> Result<Vec<ToneWindow>, ToneError> {
        self.buf.extend_from_slice(samples);
        let mut out = Vec::new();
        while self.next + self.win <= self.buf_start + self.buf.len() {
            let local = self.next - self.buf_start;
            let seg = &self.buf[local..local + self.win];
            let offset = self.next as f64 / SAMPLE_RATE as f64;
            // Running gate: add the frames not yet counted, then judge this window by the call so far.
            let first_frame = self.next / HOP;
            let dbs = features::frame_levels(seg);
            for (k, &db) in dbs.iter().enumerate() {
                if first_frame + k >= self.levels_upto {
                    self.levels.add(db);
                }
            }
            self.levels_upto = self.levels_upto.max(first_frame + dbs.len());
            let analysis = FrameAnalysis::analyse_gated(seg, self.levels.gate());
            let dur = self.win as f64 / SAMPLE_RATE as f64;
            if let Some(raw) = analysis.window(0.0, dur, None) {
                let mut absolute = raw;
                absolute.start += offset;
                absolute.end += offset;
                self.seen.push(absolute);
                if self.seen.len() > MAX_BASELINE_WINDOWS {
                    self.seen.remove(0);
                }
                let baseline = self.baseline_in_use();
                let mut scored =
                    scorer.score_windows(self.role, seg, 0, &[raw], baseline.as_ref())?;
                for w in &mut scored {
                    w.start += offset;
                    w.end += offset;
                }
                out.extend(scored);
            }
            self.next += self.hop;
        }
        // Keep only what the next window needs.
        let keep_from = self.next.saturating_sub(self.buf_start).min(self.buf.len());
        self.buf.drain(..keep_from);
        self.buf_start += keep_from;
        Ok(out)
    }

    /// The in-call baseline so far (unblended), for storing at the end of the call.
    pub fn baseline(&self) -> Option<Baseline> {
        Baseline::from_windows(&self.seen)
    }

    fn baseline_in_use(&self) -> Option<Baseline> {
        let call = self.baseline()?;
        Some(match &self.history {
            Some(h) => call.blend(h),
            None => call,
        })
    }
}
