#!/usr/bin/env bash
# What the bleed canceller costs a batch: the bundled samples analysed twice into fresh stores,
# with the canceller (the default) and with --keep-bleed, alternating, $1 rounds (default 2).
# Prints the CPU and its SIMD flags, then each run's wall time and the ratio of the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-2}"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); SIMD: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512bw|avx_vnni|fma)$' | xargs); cores: $(nproc)"
run() { # $1 label, rest: extra flags
  local label=$1; shift
  rm -f "$tmp/$label.db"
  local t0 t1; t0=$(date +%s.%N)
  target/release/callqc batch samples/ --db "$tmp/$label.db" "$@" > /dev/null 2>&1
  t1=$(date +%s.%N)
  echo "$label $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')"
}
for _ in $(seq "$rounds"); do run cancelled; run kept --keep-bleed; done | tee "$tmp/times"
median() { grep "^$1 " "$tmp/times" | cut -d' ' -f2 | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
c=$(median cancelled); k=$(median kept)
echo "median wall: cancelled ${c} s, kept ${k} s: the canceller adds $(awk -v c="$c" -v k="$k" 'BEGIN {printf "%+.1f", 100 * (c - k) / k}') %"
