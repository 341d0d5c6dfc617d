//! Subcommands, one file each. Each returns the process exit code; errors become one line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use callqc::asr::AsrParams;
use callqc::asr::pack::PackPolicy;
use callqc::pipeline::call::{VadMode, WorkerConfig};
use callqc::pipeline::identity;
use callqc::settings::{self, Parallelism};
use callqc::vad::VadParams;

mod batch;
mod degrade;
mod eval;
mod export;
mod flagged;
mod models;
mod queue;
mod report;
mod rescore;
mod review;
mod rules;
mod serve;
mod show;
mod simulate;
mod tone;
mod transcribe;

/// callqc: full-volume quality inspection of hotline calls, on your own machines.
#[derive(Debug, Parser)]
#[command(name = "callqc", version, about)]
pub struct Cli {
    /// Directory holding the models (default: ./models, or the checkout's models/).
    #[arg(long, global = true, env = "CALLQC_MODELS")]
    pub models: Option<PathBuf>,
    /// CPU threads callqc may use in all (workers × whisper threads never exceed it).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// More log output (-v, -vv).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The nightly run: transcribe, score tone, check the rubric, store everything (SQLite, or
    /// PostgreSQL shared with other machines' workers).
    Batch(batch::BatchArgs),
    /// Re-check stored calls against a (new) rubric without running ASR again.
    Rescore(rescore::RescoreArgs),
    /// One stored call: score, deductions with evidence, tone, transcript.
    Show(show::ShowArgs),
    /// Transcribe calls: speaker-attributed Mandarin segments with times.
    Transcribe(transcribe::TranscribeArgs),
    /// Measure callqc on labelled calls (NAME.wav + NAME.json): character error rate.
    Eval(eval::EvalArgs),
    /// Degraded copies of labelled calls (bleed, babble, noise, μ-law, hold music, early end).
    Degrade(degrade::DegradeArgs),
    /// Whisper model files: convert CTranslate2 models to whisper.cpp's ggml format.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// The live server: PBX audio in, tone and 禁语 warnings out to agents' desktops.
    Serve(serve::ServeArgs),
    /// Stream recordings to `callqc serve` as a PBX would, and time the warnings.
    Simulate(simulate::SimulateArgs),
    /// The tone model: write the documented prior.
    #[command(subcommand)]
    Tone(tone::ToneCommand),
    /// Calls with findings, filtered and sorted: what a trainer should look at.
    Flagged(flagged::FlaggedArgs),
    /// A trainer's verdict on a finding: --confirm (real hit) or --dismiss (false hit), --history.
    Review(review::ReviewArgs),
    /// The agent's appeal (申诉) against a finding, and a reviewer's final ruling on it.
    Appeal(review::AppealArgs),
    /// Calibration rounds: the same calls reviewed by two or more people, agreement reported.
    #[command(subcommand)]
    Calibrate(review::CalibrateCommand),
    /// Rubric items as reviewed: precision per item, appeals upheld.
    #[command(subcommand)]
    Rules(rules::RulesCommand),
    /// Per call: transcript, findings, a WAV clip per finding, one offline HTML page.
    Export(export::ExportArgs),
    /// The period report: scores per agent and their trend, deductions, tone, rule precision.
    Report(report::ReportArgs),
    /// Register calls in a PostgreSQL store's work queue (the same call twice is one job).
    Enqueue(queue::EnqueueArgs),
    /// Analyse queued calls from a PostgreSQL store, on as many machines as you run it.
    Worker(queue::WorkerArgs),
    /// Where a PostgreSQL store's work queue stands: counts by state, throughput, ETA.
    Progress(queue::ProgressArgs),
}

/// Speech-recognition options shared by every command that runs whisper.
#[derive(Debug, Clone, Args)]
pub struct AsrArgs {
    /// Whisper model: a name under the models directory (base-q8_0, base) or a path to a
    /// ggml-*.bin. q8_0 is the default: 1.2× faster than f16, CER within a point (README,
    /// Performance).
    #[arg(long, default_value = "base-q8_0")]
    pub model: String,
    /// Beam width (1 = greedy, the default; 5 is ~1.7× slower for ~1.3 points less CER: README,
    /// Performance).
    #[arg(long, default_value_t = AsrParams::default().beam_size)]
    pub beam: u32,
    /// Initial prompt for whisper (domain sentence). Off by default: see README for its effect on CER.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Hot words, comma-separated, turned into a prompt (e.g. "12345,热线,工号,您好").
    #[arg(long, value_delimiter = ',')]
    pub hotwords: Vec<String>,
    /// Feed whisper whole channels instead of VAD speech regions (the naive approach).
    #[arg(long)]
    pub no_vad: bool,
    /// Pack consecutive speech regions of a speaker into shared whisper windows of up to this
    /// many seconds (0 = one window per region). Encoder cost is per window: packing was ~3×
    /// faster at equal or better CER (README, Performance).
    #[arg(long, default_value_t = default_pack().0)]
    pub pack: f64,
    /// Seconds of silence put between packed regions (whisper hears the pause as a sentence end).
    #[arg(long, default_value_t = default_pack().1)]
    pub pack_gap: f64,
    /// Encoder frames (20 ms) kept after a window's audio when the context is shrunk.
    #[arg(long, default_value_t = AsrParams::default().ctx_margin_frames)]
    pub ctx_margin: u32,
    /// Switch whisper's temperature fallback off (no re-decoding of doubtful windows).
    #[arg(long)]
    pub no_fallback: bool,
    /// Shrink whisper's encoder context to the window's length (the default).
    #[arg(long, overrides_with = "no_shrink_ctx")]
    pub shrink_ctx: bool,
    /// Always run whisper's encoder over a full 30 s context.
    #[arg(long)]
    pub no_shrink_ctx: bool,
    /// Tone model (ONNX + sidecar JSON); default <models>/tone.onnx.
    #[arg(long)]
    pub tone_model: Option<PathBuf>,
    /// Whisper on the agent's channel only; the caller's channel still gets VAD (silence,
    /// talk-over). Faster, but the caller's words are not transcribed (README, Scale-out).
    #[arg(long)]
    pub agent_only: bool,
    /// Leave the other party's voice that leaks into each channel (echo, crosstalk) in, instead
    /// of cancelling it before VAD and whisper (docs/pbx-conditions.md): for comparison.
    #[arg(long)]
    pub keep_bleed: bool,
}

/// (window length, gap) of the default packing.
fn default_pack() -> (f64, f64) {
    match AsrParams::default().pack {
        PackPolicy::Packed {
            max_window_s,
            gap_s,
        } => (max_window_s, gap_s),
        PackPolicy::PerRegion => (0.0, 0.0),
    }
}

impl AsrArgs {
    pub fn params(&self) -> AsrParams {
        let mut prompt = self.prompt.clone();
        if prompt.is_none() && !self.hotwords.is_empty() {
            prompt = Some(self.hotwords.join("，"));
        }
        AsrParams {
            beam_size: self.beam,
            prompt,
            pack: if self.pack > 0.0 {
                PackPolicy::Packed {
                    max_window_s: self.pack.min(30.0),
                    gap_s: self.pack_gap.clamp(0.0, 5.0),
                }
            } else {
                PackPolicy::PerRegion
            },
            shrink_audio_ctx: !self.no_shrink_ctx,
            ctx_margin_frames: self.ctx_margin,
            temperature_fallback: !self.no_fallback,
            ..AsrParams::default()
        }
    }

    pub fn worker_config(&self, cli: &GlobalOpts, par: Parallelism) -> WorkerConfig {
        WorkerConfig {
            models_dir: cli.models_dir.clone(),
            whisper_model: settings::whisper_model_path(&cli.models_dir, &self.model),
            tone_model: self
                .tone_model
                .clone()
                .unwrap_or_else(|| identity::default_tone_model(&cli.models_dir)),
            onnx_threads: par.onnx_threads,
            asr: self.params(),
            vad: VadParams::default(),
            vad_mode: if self.no_vad {
                VadMode::Off
            } else {
                VadMode::Silero
            },
            whisper_threads: par.whisper_threads,
            agent_only: self.agent_only,
            keep_bleed: self.keep_bleed,
        }
    }
}

/// Options every command sees, resolved.
#[derive(Debug, Clone)]
pub struct GlobalOpts {
    pub models_dir: PathBuf,
    pub threads: usize,
}

pub fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let opts = GlobalOpts {
        models_dir: settings::models_dir(cli.models.as_deref()),
        threads: cli
            .threads
            .unwrap_or_else(settings::available_threads)
            .max(1),
    };
    match cli.command {
        Command::Batch(a) => batch::run(&opts, a),
        Command::Rescore(a) => rescore::run(&opts, a),
        Command::Show(a) => show::run(&opts, a),
        Command::Tone(c) => tone::run(&opts, c),
        Command::Transcribe(a) => transcribe::run(&opts, a),
        Command::Eval(a) => eval::run(&opts, a),
        Command::Degrade(a) => degrade::run(&opts, a),
        Command::Models(c) => models::run(&opts, c),
        Command::Serve(a) => serve::run(&opts, a),
        Command::Simulate(a) => simulate::run(&opts, a),
        Command::Flagged(a) => flagged::run(&opts, a),
        Command::Review(a) => review::review(&opts, a),
        Command::Appeal(a) => review::appeal(&opts, a),
        Command::Calibrate(c) => review::calibrate(&opts, c),
        Command::Rules(c) => rules::run(&opts, c),
        Command::Export(a) => export::run(&opts, a),
        Command::Report(a) => report::run(&opts, a),
        Command::Enqueue(a) => queue::enqueue(&opts, a),
        Command::Worker(a) => queue::worker(&opts, a),
        Command::Progress(a) => queue::progress(&opts, a),
    }
}
