#!/usr/bin/env bash
# Fuzz every parser of untrusted input for SECONDS each (default 60), or only TARGET
# (wav, compressed, rubric, manifest, sidecar, ws_metadata, ws_frames, audiosocket).
# Prints one line per target: inputs tried, outcome shapes, corpus size, slowest input, crashes.
# A crashing input is saved under target/fuzz-crashes/; copy it into tests/data/fuzz/TARGET/ to
# keep it as a regression input. CALLQC_FUZZ_SEED=N repeats a run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
target="${2:-}"
export CALLQC_FUZZ_S="$seconds"
cargo test --release --test fuzz -- --nocapture --test-threads=1 ${target:+"fuzz_$target"} \
  | grep -E '^fuzz |panicked|test result'
