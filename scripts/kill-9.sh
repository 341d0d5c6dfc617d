#!/usr/bin/env bash
# kill -9 a batch at 30 (or $1) random moments, resuming after each, and check that the final
# database equals an uninterrupted run row for row (tests/batch.rs,
# kill_9_at_random_moments_and_resume_equals_an_uninterrupted_run; the test suite runs it with
# 3 kills). Prints the seed, the number of kills and rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
CALLQC_KILLS="${1:-30}" cargo test --release --test batch kill_9_at_random_moments -- --nocapture 2>&1 \
  | grep -E "kill seed|kills over|test result|panicked|differs"
