#!/usr/bin/env python3
"""faster-whisper on stereo call recordings, per channel: the peer of `callqc batch` in
scripts/bench-compare.sh.

    fw_run.py --model models/cache/whisper-base-ct2 --threads 2 --beam 5 --vad on \
              --out target/bench/fw-vad.json samples/*.wav

Each WAV is decoded and resampled to 16 kHz with faster-whisper's own `decode_audio(...,
split_stereo=True)` (PyAV/FFmpeg: also reads the G.711 μ-law / A-law samples), and each channel
is transcribed on its own (left = agent, right = caller unless NAME.json beside the file says
otherwise), language zh, with faster-whisper's defaults for everything not set here. Writes the
transcripts as {"calls": [{"audio", "duration_s", "segments": [{"role", "start", "end", "text"}]}]}
for benches/cer.rs, plus timing to stderr. Uses only the local CTranslate2 model directory:
nothing is downloaded.
"""

import argparse
import json
import os
import sys
import time


def channel_roles(wav):
    roles = {"left": "agent", "right": "caller"}
    side = os.path.splitext(wav)[0] + ".json"
    try:
        with open(side, encoding="utf-8") as f:
            m = json.load(f).get("channel_map") or {}
        roles.update({k: v for k, v in m.items() if k in roles})
    except (OSError, ValueError):
        pass
    return roles


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="CTranslate2 model directory")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--vad", choices=["on", "off"], default="on")
    ap.add_argument("--compute-type", default="int8")
    ap.add_argument("--out", required=True)
    ap.add_argument("wavs", nargs="+")
    a = ap.parse_args()

    t0 = time.perf_counter()
    from faster_whisper import WhisperModel, decode_audio

    model = WhisperModel(
        a.model,
        device="cpu",
        compute_type=a.compute_type,
        cpu_threads=a.threads,
        num_workers=1,
        local_files_only=True,
    )
    t_load = time.perf_counter() - t0

    calls = []
    audio_s = 0.0
    t_decode = t_asr = 0.0
    for wav in a.wavs:
        t = time.perf_counter()
        left, right = decode_audio(wav, sampling_rate=16000, split_stereo=True)
        t_decode += time.perf_counter() - t
        duration = len(left) / 16000.0
        audio_s += duration
        roles = channel_roles(wav)
        segments = []
        t = time.perf_counter()
        for side, samples in (("left", left), ("right", right)):
            segs, _info = model.transcribe(
                samples,
                language="zh",
                beam_size=a.beam,
                vad_filter=(a.vad == "on"),
            )
            for s in segs:  # a generator: decoding happens here
                segments.append(
                    {
                        "role": roles[side],
                        "start": round(s.start, 3),
                        "end": round(s.end, 3),
                        "text": s.text,
                    }
                )
        t_asr += time.perf_counter() - t
        calls.append(
            {"audio": os.path.basename(wav), "duration_s": duration, "segments": segments}
        )

    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump({"system": "faster-whisper", "vad": a.vad, "beam": a.beam,
                   "compute_type": a.compute_type, "threads": a.threads, "calls": calls},
                  f, ensure_ascii=False, indent=1)
    wall = time.perf_counter() - t0
    print(
        f"faster-whisper vad={a.vad} beam={a.beam} {a.compute_type} threads={a.threads}: "
        f"{len(calls)} calls, {audio_s:.1f} s audio; load {t_load:.1f} s, decode {t_decode:.1f} s, "
        f"asr {t_asr:.1f} s, total {wall:.1f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
