#!/usr/bin/env python3
"""Sanity checks for the bundled sample calls; standard library only (Python 3.11: audioop, wave).

For every samples/callNN.json + callNN.wav:
  * the WAV header, read by hand: RIFF/WAVE, fmt tag 1 (16-bit PCM), 6 (A-law) or 7 (mu-law),
    2 channels, 8000 Hz, block align, G.711 files with cbSize 0 and a 'fact' chunk whose sample
    count matches; PCM files also open with the `wave` module;
  * duration 25-60 s; 6-12 utterances; the JSON schema of docs/ground-truth.md;
  * "listening by proxy": on each channel the RMS inside every labelled utterance is far above
    the RMS where that channel has no speech; the 50 ms just inside each span boundary carries
    speech while the 50 ms just outside it does not (times are tight); dead-air spans are quiet
    on both channels; agitated agent speech is 6-9 dB louder than the same agent's calm speech;
  * labels agree with the utterances (forbidden_detail spans = agent utterances containing the
    phrase, agitated_spans = agent utterances in the agitated style).
Exit status 1 on any failure.  Usage: python3 samples/gen/check.py [samples-dir]
"""
import json
import math
import struct
import sys
import warnings
import wave
from pathlib import Path

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

FS = 8000
FAILS = []


def fail(msg):
    FAILS.append(msg)
    print("FAIL", msg)


def read_wav(path):
    raw = path.read_bytes()
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError("not RIFF/WAVE")
    if struct.unpack("<I", raw[4:8])[0] != len(raw) - 8:
        raise ValueError("RIFF size does not match the file size")
    pos, chunks = 12, {}
    while pos + 8 <= len(raw):
        cid, size = raw[pos:pos + 4], struct.unpack("<I", raw[pos + 4:pos + 8])[0]
        chunks[cid] = raw[pos + 8:pos + 8 + size]
        pos += 8 + size + (size & 1)
    fmt = chunks[b"fmt "]
    tag, ch, rate, byte_rate, align, bits = struct.unpack("<HHIIHH", fmt[:16])
    info = {"tag": tag, "channels": ch, "rate": rate, "bits": bits, "fmt_size": len(fmt)}
    data = chunks[b"data"]
    if tag == 1:
        if bits != 16 or align != 4 or byte_rate != rate * 4:
            raise ValueError(f"PCM fields: bits {bits} align {align} byte_rate {byte_rate}")
        pcm = data
    elif tag in (6, 7):
        if bits != 8 or align != 2 or byte_rate != rate * 2:
            raise ValueError(f"G.711 fields: bits {bits} align {align} byte_rate {byte_rate}")
        if len(fmt) != 18 or struct.unpack("<H", fmt[16:18])[0] != 0:
            raise ValueError("G.711 fmt chunk must be 18 bytes with cbSize 0")
        if b"fact" not in chunks:
            raise ValueError("G.711 file without a fact chunk")
        info["fact"] = struct.unpack("<I", chunks[b"fact"][:4])[0]
        if info["fact"] != len(data) // 2:
            raise ValueError(f"fact {info['fact']} != frames {len(data) // 2}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pcm = audioop.ulaw2lin(data, 2) if tag == 7 else audioop.alaw2lin(data, 2)
    else:
        raise ValueError(f"format tag {tag}")
    info["frames"] = len(pcm) // 4
    left = audioop.tomono(pcm, 2, 1, 0)
    right = audioop.tomono(pcm, 2, 0, 1)
    return info, {"agent": left, "caller": right}


def rms_db(mono, s, e):
    s, e = max(0, s), min(len(mono) // 2, e)
    if e - s < 40:
        return None
    r = audioop.rms(mono[2 * s:2 * e], 2)
    return 20 * math.log10(max(r, 1) / 32768)


def check_call(jpath):
    d = json.loads(jpath.read_text(encoding="utf-8"))
    cid = d.get("call_id")
    wpath = jpath.with_name(d["audio"])
    for k, t in (("call_id", str), ("audio", str), ("sample_rate", int), ("channels", int),
                 ("channel_map", dict), ("agent_id", str), ("labels", dict),
                 ("utterances", list)):
        if not isinstance(d.get(k), t):
            fail(f"{cid}: key {k} missing or not {t.__name__}")
    if d["channel_map"] != {"left": "agent", "right": "caller"}:
        fail(f"{cid}: channel_map {d['channel_map']}")
    lab = d["labels"]
    for k, t in (("greeting_ok", bool), ("closing_ok", bool), ("forbidden", list),
                 ("forbidden_detail", list), ("agent_tone", str), ("agitated_spans", list),
                 ("dead_air", list)):
        if not isinstance(lab.get(k), t):
            fail(f"{cid}: labels.{k} missing or not {t.__name__}")
    try:
        info, ch = read_wav(wpath)
    except (ValueError, KeyError) as e:
        fail(f"{cid}: {wpath.name}: {e}")
        return None
    if info["channels"] != 2 or info["rate"] != FS:
        fail(f"{cid}: {info['channels']} channels, {info['rate']} Hz")
    if d["sample_rate"] != info["rate"] or d["channels"] != info["channels"]:
        fail(f"{cid}: JSON sample_rate/channels disagree with the WAV")
    if info["tag"] == 1:
        with wave.open(str(wpath)) as w:
            if (w.getnchannels(), w.getframerate(), w.getsampwidth()) != (2, FS, 2):
                fail(f"{cid}: wave module reads {w.getparams()}")
    dur = info["frames"] / FS
    if not 25 <= dur <= 60:
        fail(f"{cid}: duration {dur:.1f} s")
    utts = d["utterances"]
    if not 6 <= len(utts) <= 12:
        fail(f"{cid}: {len(utts)} utterances")
    n = lambda t: int(round(t * FS))  # noqa: E731

    # Where each channel has speech (the labelled spans).
    speech = {"agent": [], "caller": []}
    for u in utts:
        for k in ("channel", "start", "end", "text", "spoken", "style"):
            if k not in u:
                fail(f"{cid}: utterance without {k}")
        if not 0 <= u["start"] < u["end"] <= dur:
            fail(f"{cid}: utterance span {u['start']}-{u['end']} outside the call")
        if any(c.isdigit() and c.isascii() for c in u["spoken"]):
            fail(f"{cid}: digits in spoken form: {u['spoken']}")
        speech[u["channel"]].append((n(u["start"]), n(u["end"])))
    starts = [u["start"] for u in utts]
    if starts != sorted(starts):
        fail(f"{cid}: utterances not in time order")

    worst = {"agent": 99.0, "caller": 99.0}
    for role, spans in speech.items():
        mono = ch[role]
        # Non-speech of this channel: everything at least 100 ms away from its speech.
        quiet, prev = [], 0
        for s, e in sorted(spans):
            if s - 800 > prev:
                quiet.append((prev, s - 800))
            prev = e + 800
        quiet.append((prev, info["frames"]))
        qbytes = b"".join(mono[2 * a:2 * b] for a, b in quiet if b > a)
        floor = 20 * math.log10(max(audioop.rms(qbytes, 2), 1) / 32768)
        if floor > -45 or floor < -70:
            fail(f"{cid}/{role}: noise floor {floor:.1f} dBFS")
        for s, e in spans:
            lvl = rms_db(mono, s, e)
            worst[role] = min(worst[role], lvl - floor)
            if lvl - floor < 20:
                fail(f"{cid}/{role}: utterance at {s / FS:.2f} s only {lvl - floor:.1f} dB above noise")
            # Tight boundaries: speech right inside, none right outside (unless own speech).
            head, tail_ = rms_db(mono, s, s + 400), rms_db(mono, e - 400, e)
            if head - floor < 10 or tail_ - floor < 10:
                fail(f"{cid}/{role}: span {s / FS:.3f}-{e / FS:.3f} starts/ends on silence "
                     f"({head - floor:.1f}/{tail_ - floor:.1f} dB)")
            before, after = rms_db(mono, s - 400, s), rms_db(mono, e, e + 400)
            for side, v in (("before", before), ("after", after)):
                if v is not None and v - floor > 6:
                    fail(f"{cid}/{role}: speech just {side} span {s / FS:.3f}-{e / FS:.3f} "
                         f"({v - floor:.1f} dB above noise)")

    # Labels agree with utterances.
    for fd in lab["forbidden_detail"]:
        u = utts[fd["utterance_index"]]
        if u["channel"] != "agent" or fd["phrase"] not in u["text"]:
            fail(f"{cid}: forbidden_detail {fd} does not match an agent utterance")
        if (fd["start"], fd["end"]) != (u["start"], u["end"]):
            fail(f"{cid}: forbidden_detail span differs from its utterance")
    if sorted(lab["forbidden"]) != sorted(fd["phrase"] for fd in lab["forbidden_detail"]):
        fail(f"{cid}: forbidden and forbidden_detail disagree")
    agit = [[u["start"], u["end"]] for u in utts if u["style"] == "agitated"]
    if any(u["channel"] != "agent" for u in utts if u["style"] == "agitated"):
        fail(f"{cid}: agitated caller utterance (agitated_spans are agent-only)")
    if agit != lab["agitated_spans"]:
        fail(f"{cid}: agitated_spans {lab['agitated_spans']} != agitated utterances {agit}")
    if lab["agent_tone"] != ("agitated" if agit else "calm"):
        fail(f"{cid}: agent_tone {lab['agent_tone']}")
    if agit:
        calm = [u["level_dbfs"] for u in utts if u["channel"] == "agent" and u["style"] == "calm"]
        loud = [u["level_dbfs"] for u in utts if u["style"] == "agitated"]
        boost = sum(loud) / len(loud) - sum(calm) / len(calm)
        if not 6 <= boost <= 9:
            fail(f"{cid}: agitated speech only {boost:.1f} dB louder than calm")
    for da in lab["dead_air"]:
        if not 12 <= da["duration"] <= 16 or abs(da["end"] - da["start"] - da["duration"]) > 0.002:
            fail(f"{cid}: dead air {da}")
        for role in ("agent", "caller"):
            lvl = rms_db(ch[role], n(da["start"]) + 80, n(da["end"]) - 80)
            if lvl > -45:
                fail(f"{cid}/{role}: dead air is not silent ({lvl:.1f} dBFS)")
        ends = [u["end"] for u in utts if u["end"] <= da["start"] + 0.0005]
        nexts = [u["start"] for u in utts if u["start"] >= da["end"] - 0.0005]
        if not ends or not nexts or abs(max(ends) - da["start"]) > 0.001 \
                or abs(min(nexts) - da["end"]) > 0.001:
            fail(f"{cid}: dead air does not run from the last speech to the next")
    fmt = {1: "pcm16", 6: "alaw", 7: "mulaw"}[info["tag"]]
    print(f"ok   {cid}: {fmt:5s} {dur:5.1f} s {len(utts):2d} utt  speech/noise >= "
          f"agent {worst['agent']:.0f} dB, caller {worst['caller']:.0f} dB")
    return fmt


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    calls = sorted(root.glob("call*.json"))
    if not calls:
        fail(f"no call*.json in {root}")
    fmts = [check_call(p) for p in calls]
    if "mulaw" not in fmts or "alaw" not in fmts:
        fail("the set must contain at least one mu-law and one A-law file")
    print(f"{len(calls)} calls, {len(FAILS)} failures")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
