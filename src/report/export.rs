//! `callqc export`: per call, a folder a trainer can hand on — the transcript per role with
//! times, the findings with their evidence, a WAV clip of each finding cut from the original
//! recording with a margin, and one self-contained HTML page (transcript with findings
//! highlighted, clips playable, nothing fetched from anywhere).
//!
//! ```text
//! OUT/CALL_KEY/index.html  transcript.txt  transcript.json  findings.json  clips/finding-ID-ITEM.wav
//! ```

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Serialize;

use super::html::{clock, esc, page};
use crate::audio::Role;
use crate::store::{ReviewState, Store, StoredCall, StoredFinding, StoredScore};
use crate::{Error, Result};

/// How clips are cut.
#[derive(Debug, Clone, Copy)]
pub struct ExportOptions {
    /// Seconds of audio kept before and after a finding's span.
    pub margin_s: f64,
    /// Mask personal data (phone, ID, bank card, address numbers) in every text written, and
    /// mute it in the clips (see [`crate::redact`]). On by default: an export travels.
    pub mask: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            margin_s: 1.0,
            mask: true,
        }
    }
}

/// Seconds of audio muted on each side of a masked number's estimated time.
const MUTE_MARGIN_S: f64 = 0.4;

/// Mask the personal data in a call's transcript and findings; returns the call time spans to
/// mute. A segment has no word times, so a masked number's time is estimated from its place in
/// the segment's text (characters spread evenly over the segment), widened by
/// [`MUTE_MARGIN_S`]; a number said slowly may be muted a little off, never left out when it
/// fills the segment.
pub fn mask_call(call: &mut StoredCall, findings: &mut [StoredFinding]) -> Vec<(f64, f64)> {
    let mut mute = Vec::new();
    for s in &mut call.segments {
        let (masked, spans) = crate::redact::mask(&s.text);
        if spans.is_empty() {
            continue;
        }
        let n = s.text.chars().count().max(1) as f64;
        let per_char = (s.end - s.start) / n;
        for p in &spans {
            mute.push((
                (s.start + p.start as f64 * per_char - MUTE_MARGIN_S).max(s.start),
                (s.start + p.end as f64 * per_char + MUTE_MARGIN_S).min(s.end),
            ));
        }
        s.text = masked;
    }
    for r in &mut call.raw_texts {
        r.raw_text = crate::redact::mask(&r.raw_text).0;
    }
    for f in findings {
        f.evidence = crate::redact::mask(&f.evidence).0;
    }
    mute
}

/// A finding's clip: where it is and which span of the recording it holds.
#[derive(Debug, Clone, Serialize)]
pub struct Clip {
    pub finding_id: i64,
    /// Relative to the call's folder.
    pub file: String,
    /// The span of the recording the clip holds (the finding's, widened by the margin and
    /// cut to the recording), in seconds, and the same in samples at the recording's rate.
    pub start_s: f64,
    pub end_s: f64,
    pub first_sample: usize,
    pub samples: usize,
    pub sample_rate: u32,
}

/// What was written for one call.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedCall {
    pub call_key: String,
    pub folder: PathBuf,
    pub findings: usize,
    pub clips: Vec<Clip>,
    /// Why there are no clips (the recording could not be read), if so.
    pub audio_error: Option<String>,
    /// Call time spans muted in the clips because their text was masked.
    pub muted: Vec<(f64, f64)>,
}

#[derive(Serialize)]
struct FindingOut<'a> {
    #[serde(flatten)]
    finding: &'a StoredFinding,
    clip: Option<&'a Clip>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A name safe as one path component (call keys come from manifests and PBXs).
pub fn safe_name(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches('.');
    if trimmed.is_empty() {
        "call".into()
    } else {
        trimmed.to_string()
    }
}

fn role_zh(role: Role) -> &'static str {
    match role {
        Role::Agent => "坐席",
        Role::Caller => "来电人",
        _ => "混合",
    }
}

/// The samples of `[start − margin, end + margin)` seconds, cut to the recording: (first
/// sample, one past the last).
pub fn clip_span(
    rec: &crate::audio::Recording,
    start: f64,
    end: f64,
    margin: f64,
) -> (usize, usize) {
    let rate = f64::from(rec.sample_rate);
    let len = rec.channels.first().map_or(0, Vec::len);
    let last = ((((end + margin).max(0.0)) * rate).ceil() as usize).min(len);
    let first = ((((start - margin).max(0.0)) * rate).floor() as usize).min(last);
    (first, last)
}

/// Those samples of every channel as a 16-bit PCM WAV at the recording's rate.
pub fn clip_wav(rec: &crate::audio::Recording, first: usize, last: usize) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: rec.channels.len().max(1) as u16,
        sample_rate: rec.sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut bytes = std::io::Cursor::new(Vec::new());
    // Writing to memory cannot fail for I/O reasons; a clip is never larger than the recording.
    if let Ok(mut w) = hound::WavWriter::new(&mut bytes, spec) {
        for i in first..last {
            for c in &rec.channels {
                let v = (c.get(i).copied().unwrap_or(0.0) * 32768.0)
                    .round()
                    .clamp(-32768.0, 32767.0) as i16;
                let _ = w.write_sample(v);
            }
        }
        let _ = w.finalize();
    }
    bytes.into_inner()
}

/// Silence `spans` (call seconds) of every channel.
pub fn mute(rec: &mut crate::audio::Recording, spans: &[(f64, f64)]) {
    let rate = f64::from(rec.sample_rate);
    for &(a, b) in spans {
        for c in &mut rec.channels {
            let first = ((a * rate).floor().max(0.0) as usize).min(c.len());
            let last = ((b * rate).ceil().max(0.0) as usize).min(c.len());
            c[first..last].iter_mut().for_each(|x| *x = 0.0);
        }
    }
}

fn write_clip(
    rec: &crate::audio::Recording,
    f: &StoredFinding,
    margin: f64,
    folder: &Path,
) -> Result<Clip> {
    let (first, last) = clip_span(rec, f.start, f.end, margin);
    let file = format!("clips/finding-{}-{}.wav", f.id, safe_name(&f.item_id));
    let path = folder.join(&file);
    std::fs::write(&path, clip_wav(rec, first, last)).map_err(io(&path))?;
    let rate = rec.sample_rate;
    Ok(Clip {
        finding_id: f.id,
        file,
        start_s: first as f64 / f64::from(rate),
        end_s: last as f64 / f64::from(rate),
        first_sample: first,
        samples: last - first,
        sample_rate: rate,
    })
}

/// Export one stored call into `out/CALL_KEY/`.
pub fn export_call(
    store: &Store,
    call_id: i64,
    out: &Path,
    opts: ExportOptions,
) -> Result<ExportedCall> {
    let mut call = store.load_call(call_id)?;
    let mut findings = store.findings(call_id, None)?;
    let scores = store.scores(call_id)?;
    let muted = if opts.mask {
        mask_call(&mut call, &mut findings)
    } else {
        Vec::new()
    };
    let folder = out.join(safe_name(&call.call_key));
    std::fs::create_dir_all(folder.join("clips")).map_err(io(&folder))?;

    let (clips, audio_error) = match crate::audio::decode::decode_file(Path::new(&call.path)) {
        Ok(mut rec) => {
            mute(&mut rec, &muted);
            let mut clips = Vec::new();
            for f in &findings {
                clips.push(write_clip(&rec, f, opts.margin_s.max(0.0), &folder)?);
            }
            (clips, None)
        }
        Err(e) => {
            tracing::warn!("{}: no clips: {e}", call.call_key);
            (Vec::new(), Some(e.to_string()))
        }
    };

    let mut text = String::new();
    for s in &call.segments {
        text += &format!(
            "[{}–{}] {}: {}\n",
            clock(s.start),
            clock(s.end),
            role_zh(s.role),
            s.text
        );
    }
    let write = |name: &str, body: &[u8]| -> Result<()> {
        let p = folder.join(name);
        std::fs::write(&p, body).map_err(io(&p))
    };
    write("transcript.txt", text.as_bytes())?;
    write(
        "transcript.json",
        serde_json::to_string_pretty(&call.segments)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    let out_findings: Vec<FindingOut> = findings
        .iter()
        .map(|f| FindingOut {
            finding: f,
            clip: clips.iter().find(|c| c.finding_id == f.id),
        })
        .collect();
    write(
        "findings.json",
        serde_json::to_string_pretty(&out_findings)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    let html = call_page(
        &call,
        &findings,
        &scores,
        &clips,
        &folder,
        audio_error.as_deref(),
    )?;
    write("index.html", html.as_bytes())?;
    Ok(ExportedCall {
        call_key: call.call_key,
        folder,
        findings: findings.len(),
        clips,
        audio_error,
        muted,
    })
}

fn review_zh(r: ReviewState) -> &'static str {
    match r {
        ReviewState::Open => "待复核",
        ReviewState::Confirmed => "确认",
        ReviewState::Dismissed => "驳回（误报）",
    }
}

/// The call's page: everything inline (clips as data: URIs), so it opens from a USB stick.
fn call_page(
    call: &StoredCall,
    findings: &[StoredFinding],
    scores: &[StoredScore],
    clips: &[Clip],
    folder: &Path,
    audio_error: Option<&str>,
) -> Result<String> {
    let mut b = format!(
        "<h1>通话质检：{}</h1><p class=\"meta\">坐席 {} · {} · 时长 {} · 来源 {}</p>",
        esc(&call.call_key),
        esc(call.agent_id.as_deref().unwrap_or("-")),
        esc(&call.path),
        call.duration_s.map_or("-".into(), clock),
        match call.source {
            crate::store::Source::Batch => "录音批量质检",
            crate::store::Source::Live => "实时通话",
        }
    );
    for s in scores {
        b += &format!(
            "<p><span class=\"score\">{:.1}</span> 分（{} v{}；机器评分 {:.1}{}）</p>",
            s.total,
            esc(&s.rubric),
            esc(&s.rubric_version),
            s.machine_total,
            if s.vetoed { "，一票否决" } else { "" }
        );
    }
    b += "<h2>扣分项与证据</h2>";
    if let Some(e) = audio_error {
        b += &format!("<p class=\"low\">录音无法读取，没有片段：{}</p>", esc(e));
    }
    if findings.is_empty() {
        b += "<p>无</p>";
    } else {
        b += "<table><tr><th>#</th><th>时间</th><th>项目</th><th class=\"num\">扣分</th><th>证据</th><th>复核</th><th>片段</th></tr>";
        for f in findings {
            let audio = match clips.iter().find(|c| c.finding_id == f.id) {
                Some(c) => {
                    let p = folder.join(&c.file);
                    let bytes = std::fs::read(&p).map_err(io(&p))?;
                    format!(
                        "<audio controls preload=\"none\" src=\"data:audio/wav;base64,{}\"></audio><br><span class=\"meta\">{}–{}</span>",
                        base64::engine::general_purpose::STANDARD.encode(bytes),
                        clock(c.start_s),
                        clock(c.end_s)
                    )
                }
                None => "-".into(),
            };
            b += &format!(
                "<tr class=\"{}\" id=\"f{}\"><td>{}</td><td>{}–{}</td><td><span class=\"tag item\">{}</span>{}{}<br><span class=\"meta\">{} · {}</span></td><td class=\"num\">{}</td><td>{}</td><td>{}{}</td><td>{}</td></tr>",
                if f.review == ReviewState::Dismissed {
                    "dismissed"
                } else {
                    "hit"
                },
                f.id,
                f.id,
                clock(f.start),
                clock(f.end),
                esc(&f.item_id),
                if f.veto {
                    "<span class=\"tag veto\">一票否决</span>"
                } else if f.observation {
                    "<span class=\"tag\">记录·不扣分</span>"
                } else {
                    ""
                },
                esc(&f.description),
                esc(&f.dimension),
                esc(f.kind.name()),
                f.points,
                highlight(&f.evidence),
                review_zh(f.review),
                f.review_note.as_ref().map_or(String::new(), |n| format!(
                    "<br><span class=\"meta\">{}</span>",
                    esc(n)
                )),
                audio
            );
        }
        b += "</table>";
    }
    b += "<h2>转写</h2><table><tr><th>时间</th><th>说话人</th><th>内容</th><th>命中</th></tr>";
    for s in &call.segments {
        let hits: Vec<&StoredFinding> = findings
            .iter()
            .filter(|f| f.role.is_none_or(|r| r == s.role))
            .filter(|f| f.start < s.end && s.start < f.end)
            .collect();
        b += &format!(
            "<tr class=\"{}\"><td>{}–{}</td><td class=\"role-{}\">{}</td><td>{}</td><td>{}</td></tr>",
            if hits.is_empty() { "" } else { "hit" },
            clock(s.start),
            clock(s.end),
            s.role.as_str(),
            role_zh(s.role),
            esc(&s.text),
            hits.iter()
                .map(|f| format!(
                    "<a href=\"#f{}\" class=\"tag item\">{}</a>",
                    f.id,
                    esc(&f.item_id)
                ))
                .collect::<Vec<_>>()
                .join("")
        );
    }
    b += "</table><p class=\"meta\">由 callqc 生成；离线可看，片段内嵌于本页。</p>";
    Ok(page(&format!("通话质检 {}", call.call_key), &b))
}

/// Evidence text with its 【hit】 marked.
fn highlight(evidence: &str) -> String {
    esc(evidence)
        .replace('【', "<mark>【")
        .replace('】', "】</mark>")
}
