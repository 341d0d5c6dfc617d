#!/usr/bin/env bash
# The bundled calls as recorders store them, into tests/data/formats/ (not under samples/, which
# `callqc batch samples/` reads whole): every call as MP3 (64 kbit/s, 32 per side, one channel per side: no
# joint stereo, which would leak the caller into the agent's channel) and as Ogg Vorbis
# (quality 3); call05 also as FLAC and as GSM 6.10 in a WAV (Asterisk's WAV49, mono 8 kHz: the
# format's own limit). Needs apt's lame, sox and libsox-fmt-all. The files are committed, so
# the tests need no encoder; rerun this to make them again.
#
# tests/formats.rs requires the MP3 and Ogg transcripts of the 8 calls within a point of CER of
# the WAVs', FLAC to decode to the WAV's very samples, and the GSM file to fail with the fix.
set -euo pipefail
cd "$(dirname "$0")/../samples"
for tool in lame sox; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install lame sox libsox-fmt-all" >&2; exit 1; }
done
out=../tests/data/formats
mkdir -p "$out"
for wav in call0*.wav; do
  name=${wav%.wav}
  lame --quiet -m s -b 64 "$wav" "$out/$name.mp3"
  sox "$wav" -C 3 "$out/$name.ogg"
done
sox call05.wav "$out/call05.flac"
sox call05.wav -c 1 -e gsm-full-rate "$out/call05-gsm.wav"
ls -l "$out"
