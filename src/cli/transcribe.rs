//! `callqc transcribe FILE…`: speaker-attributed transcripts, human-readable or JSON lines.
//! The printer is a sink on the same analysis as `batch` (with an empty rubric).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use callqc::asr::{DroppedSegment, Segment};
use callqc::audio::AudioFormat;
use callqc::audio::{ChannelMap, Role};
use callqc::pipeline::call::Worker;
use callqc::pipeline::events::{CallEvent, CallSeq, CallSink, Pass};
use callqc::pipeline::session::{CallJob, SessionMode, analyze_recording};
use callqc::rubric::Rubric;
use callqc::settings::Parallelism;
use callqc::time::round_ms;
use callqc::vad::SpeechRegions;

use super::{AsrArgs, GlobalOpts};

#[derive(Debug, Args)]
pub struct TranscribeArgs {
    /// WAV files (PCM, float, μ-law, A-law; mono or stereo; 8–48 kHz).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Stereo channel roles, e.g. "left=agent,right=caller" (the default) or "caller,agent".
    #[arg(long, default_value = "left=agent,right=caller")]
    pub channels: ChannelMap,
    /// One JSON object per file (JSON lines) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also show segments the hallucination guards dropped, with the reason.
    #[arg(long)]
    pub show_dropped: bool,
    #[command(flatten)]
    pub asr: AsrArgs,
}

/// One file's transcript, as printed.
#[derive(Debug, Default, Serialize)]
struct Printed {
    path: PathBuf,
    #[serde(serialize_with = "round_ms")]
    duration_s: f64,
    sample_rate: u32,
    channels: usize,
    encoding: Option<callqc::audio::Encoding>,
    roles: Vec<Role>,
    speech: Vec<SpeechRegions>,
    transcript: PrintedTranscript,
}

#[derive(Debug, Default, Serialize)]
struct PrintedTranscript {
    segments: Vec<Segment>,
    dropped: Vec<DroppedSegment>,
}

/// Prints each file when its session ends: text, or one JSON object per line.
struct Printer {
    json: bool,
    show_dropped: bool,
    current: Printed,
    failed: usize,
}

impl CallSink for Printer {
    fn event(&mut self, _call: CallSeq, event: &CallEvent) -> Result<(), callqc::Error> {
        let io = |e: std::io::Error| callqc::Error::Io {
            path: "stdout".into(),
            source: e,
        };
        match event {
            CallEvent::Began(info) => {
                let format: Option<AudioFormat> = info.format;
                self.current = Printed {
                    path: info.path.clone(),
                    sample_rate: format.map_or(0, |f| f.sample_rate),
                    channels: format.map_or(0, |f| f.channels),
                    encoding: format.map(|f| f.encoding),
                    roles: info.roles.clone(),
                    speech: info
                        .roles
                        .iter()
                        .map(|&role| SpeechRegions {
                            role,
                            regions: Vec::new(),
                        })
                        .collect(),
                    ..Printed::default()
                };
            }
            CallEvent::RegionClosed { role, region, .. } => {
                if let Some(s) = self.current.speech.iter_mut().find(|s| s.role == *role) {
                    s.regions.push(*region);
                }
            }
            CallEvent::Segment {
                pass: Pass::Final,
                segment,
                ..
            } => self.current.transcript.segments.push(segment.clone()),
            CallEvent::SegmentDropped {
                pass: Pass::Final,
                dropped,
            } => self.current.transcript.dropped.push(dropped.clone()),
            CallEvent::Ended(end) => {
                self.current.duration_s = end.duration_s;
                let mut out = std::io::stdout().lock();
                if self.json {
                    serde_json::to_writer(&mut out, &self.current).map_err(|e| io(e.into()))?;
                    writeln!(out).map_err(io)?;
                } else {
                    print_human(&mut out, &self.current, self.show_dropped).map_err(io)?;
                }
            }
            CallEvent::Failed { error, .. } => {
                self.failed += 1;
                eprintln!("error: {error}");
                if self.json {
                    let mut out = std::io::stdout().lock();
                    serde_json::to_writer(
                        &mut out,
                        &serde_json::json!({"path": self.current.path, "error": error}),
                    )
                    .map_err(|e| io(e.into()))?;
                    writeln!(out).map_err(io)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

pub fn run(opts: &GlobalOpts, args: TranscribeArgs) -> anyhow::Result<ExitCode> {
    let par = Parallelism::single(opts.threads);
    let mut worker = Worker::load(&args.asr.worker_config(opts, par))?;
    // Transcripts only: no rubric items to check.
    let rubric = Rubric {
        name: "transcribe".into(),
        version: "0".into(),
        items: Vec::new(),
        lexicon: Default::default(),
        mask_personal_data: false,
        source_hash: String::new(),
    };
    let mut printer = Printer {
        json: args.json,
        show_dropped: args.show_dropped,
        current: Printed::default(),
        failed: 0,
    };
    for (i, path) in args.files.iter().enumerate() {
        let job = CallJob {
            path: path.clone(),
            agent_id: None,
            call_id: None,
            channel_map: args.channels,
            started_at: None,
            source: callqc::pipeline::events::Source::Batch,
        };
        // A failed file is reported by the printer (Failed event); the others go on. Only an
        // error of the printer itself (stdout closed) stops the run.
        match analyze_recording(
            &mut worker,
            &rubric,
            &mut printer,
            i as CallSeq,
            &job,
            None,
            SessionMode::Recording,
        ) {
            Ok(_) => {}
            Err(callqc::Error::Io { path, source }) if path.as_os_str() == "stdout" => {
                return Err(callqc::Error::Io { path, source }.into());
            }
            Err(_) => {}
        }
    }
    Ok(if printer.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_human(out: &mut impl Write, call: &Printed, show_dropped: bool) -> std::io::Result<()> {
    writeln!(
        out,
        "== {}  ({:.1} s, {} ch, {} Hz, {:?})",
        call.path.display(),
        call.duration_s,
        call.channels,
        call.sample_rate,
        call.encoding
            .map_or_else(|| "-".to_string(), |e| format!("{e:?}"))
    )?;
    for s in &call.transcript.segments {
        writeln!(
            out,
            "[{:7.2} – {:7.2}] {:<6} {}",
            s.start,
            s.end,
            s.role.as_str(),
            s.text
        )?;
    }
    if show_dropped {
        for d in &call.transcript.dropped {
            writeln!(
                out,
                "  dropped [{:7.2} – {:7.2}] {:<6} {:?}: {}",
                d.segment.start,
                d.segment.end,
                d.segment.role.as_str(),
                d.segment.text,
                d.reason
            )?;
        }
    }
    writeln!(out)
}
