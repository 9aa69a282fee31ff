#!/usr/bin/env bash
# Tokenizer parity and speed against the Python Hugging Face tokenizers library
# (GPU machine: it has tokenizers; no network needed). Run from the repo root:
#
#   OUT=/path/to/out scripts/gpu/tokenizer_golden.sh
#
# Writes to $OUT (4 files):
#   tokenizer_check.txt            the committed golden files (made with the npm
#                                  binding, tokenizers 0.23.2) re-checked with the
#                                  Python library: "all equal" or the differences
#   tokenizer_golden_python.tar.gz tokenizers retrained with the Python library and
#                                  their expected.json (tests/golden/tokenizers layout)
#   bench_tokenizer_hf_python.json HF encode timings on the benchmark text
#   bench_tokenizer_compare.md     side by side with hilum, when build-gpu/bench/bench_tokenizer exists
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
: "${OUT:?set OUT to the output folder}"
mkdir -p "$OUT"
PY=${PYTHON:-python3}
status=0

"$PY" tests/golden/tokenizer_golden.py --check tests/golden/tokenizers 2>&1 | tee "$OUT/tokenizer_check.txt"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

work=$(mktemp -d)
if "$PY" tests/golden/tokenizer_golden.py --out "$work/tokenizers"; then
  tar -czf "$OUT/tokenizer_golden_python.tar.gz" -C "$work" tokenizers
else
  status=1
fi
rm -rf "$work"

"$PY" bench/bench_tokenizer_hf.py > "$OUT/bench_tokenizer_hf_python.json" || status=1
if [ -x build-gpu/bench/bench_tokenizer ]; then
  "$PY" bench/bench_tokenizer_compare.py --bench build-gpu/bench/bench_tokenizer --hf python --python "$PY" \
    --out "$OUT/bench_tokenizer_compare.md" || status=1
fi
exit $status
