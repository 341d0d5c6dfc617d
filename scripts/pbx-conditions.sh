#!/usr/bin/env bash
# Recordings as PBXs make them: build degraded copies of the bundled samples (`callqc degrade`)
# and measure callqc on each condition beside the clean originals (`callqc eval --fresh`).
# Prints, per condition: CER of all speech, talk-over findings (right / made / labelled), agent
# tone findings, holds recognised, and deductions on calls labelled clean (each listed).
#
#   scripts/pbx-conditions.sh [--only NAME]...     (NAME as in `callqc degrade --only`)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/callqc
out=${CALLQC_PBX_DIR:-target/pbx-conditions}
rm -rf "$out"
"$bin" degrade samples --out "$out" "$@" >/dev/null
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores;" \
  "SIMD: $(grep -m1 -o -w -E 'avx2|avx512f|avx512bw|avx_vnni|fma' /proc/cpuinfo | sort -u | tr '\n' ' ')"
printf '%-30s %6s %7s %14s %9s %7s %s\n' condition calls CER "talk-over r/m/l" tone holds "deductions on clean calls"
row() {
  local name=$1 dir=$2 report
  report=$("$bin" eval "$dir" --fresh --db /nonexistent.db 2>/dev/null || true)
  local calls cer to tone holds clean
  calls=$(ls "$dir"/*.json | wc -l)
  cer=$(awk '$1=="ALL"{print $4}' <<<"$report")
  to=$(awk '$1=="talk_over"{print $5"/"$4"/"$2}' <<<"$report")
  tone=$(awk '$1=="agitation"{print $5"/"$4}' <<<"$report")
  holds=$(awk '$1=="hold"{print $3"/"$2}' <<<"$report")
  clean=$(awk -F': ' '/^clean calls/{print $3}' <<<"$report")
  printf '%-30s %6s %7s %14s %9s %7s %s\n' "$name" "$calls" "$cer" "$to" "$tone" "$holds" "$clean"
  grep '^  call' <<<"$report" | sed 's/^/    /' || true
}
row clean samples
for d in "$out"/*/; do
  row "$(basename "$d")" "$d"
done
