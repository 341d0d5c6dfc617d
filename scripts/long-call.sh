#!/usr/bin/env bash
# A long recording and how much memory callqc needs for it (issue: resource limits).
#   scripts/long-call.sh [HOURS...]      default: 1 4
# For each length, writes target/long-call/long-Nh.wav — stereo 8 kHz 16-bit, call01's 41.5 s
# of dialogue every 10 minutes, the line's noise floor in between (a recorder left running) —
# analyses it with `callqc batch` into a fresh database, and prints the wall time and the peak
# resident memory (GNU time's "Maximum resident set size") beside the audio's own size.
set -euo pipefail
cd "$(dirname "$0")/.."
hours=("$@"); [ ${#hours[@]} -eq 0 ] && hours=(1 4)
out=target/long-call; mkdir -p "$out"
bin=target/release/callqc; [ -x "$bin" ] || cargo build --release
for h in "${hours[@]}"; do
  wav="$out/long-${h}h.wav"
  [ -f "$wav" ] || python3 - "$h" "$wav" <<'PY'
import random, struct, sys, wave
hours, path = float(sys.argv[1]), sys.argv[2]
with wave.open("samples/call01.wav") as w:
    call = w.readframes(w.getnframes())          # stereo s16le, 8 kHz
rate, every = 8000, 600                          # a call's dialogue every 10 minutes
rng = random.Random(1)
noise = struct.pack("<%dh" % (2 * rate), *[rng.randint(-6, 6) for _ in range(2 * rate)])  # ≈ −70 dBFS, 1 s
total = int(hours * 3600)
with wave.open(path, "wb") as o:
    o.setnchannels(2); o.setsampwidth(2); o.setframerate(rate)
    t = 0
    while t < total:
        o.writeframes(call)
        gap = min(every, total - t) - len(call) // (4 * rate)
        for _ in range(max(gap, 0)):
            o.writeframes(noise)
        t += every
PY
  db="$out/long-${h}h.db"; rm -f "$db" "$db"-wal "$db"-shm
  size=$(stat -c %s "$wav")
  /usr/bin/time -v "$bin" batch "$wav" --db "$db" --force > "$out/long-${h}h.log" 2> "$out/long-${h}h.time" || { cat "$out/long-${h}h.time"; exit 1; }
  rss_kb=$(grep "Maximum resident" "$out/long-${h}h.time" | awk '{print $NF}')
  wall=$(grep "Elapsed (wall" "$out/long-${h}h.time" | awk '{print $NF}')
  printf '%s h: file %d MB (16 kHz float of both channels: %d MB), peak RSS %d MB, wall %s\n' \
    "$h" $((size / 1000000)) $((size / 1000000 * 4)) $((rss_kb / 1000)) "$wall"
done
