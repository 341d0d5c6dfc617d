#!/usr/bin/env bash
# The README's test command: formatting, lints and every test, against the real models that
# scripts/setup.sh provisions (the tests fail, naming the fix, when those are missing).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f models/ggml-base.bin ] && [ -f models/ggml-base-q8_0.bin ] && [ -f models/silero_vad.onnx ] && [ -f models/onnxruntime/libonnxruntime.so ] \
  || { echo "[test] models are missing: run scripts/setup.sh first" >&2; exit 1; }
cargo fmt --all -- --check
# The layers of src/: no import circles, no import from a lower room to a higher one.
python3 scripts/check-imports.py
cargo clippy --all-targets --quiet -- -D warnings
# One test at a time: tests that run whisper use every core, and ggml's threads spin-wait, so
# two of them side by side run ~10x slower than one after the other.
cargo test --release --quiet -- --test-threads=1
