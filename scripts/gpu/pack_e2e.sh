#!/usr/bin/env bash
# Packs, on the development machine, what the H200 machine needs to run
# `hilum analyze` end to end: the hilum command built by the h200-e2e preset
# (CUDA for sm_90a, DCMTK/ITK imaging, no Qt and no oneDNN) and the shared
# libraries it loads that the GPU machine lacks (every one but glibc's, the
# compiler run time and CUDA's own). Writes .e2e/runtime.tar.xz (ignored by
# git; carry it to the GPU machine: run(carry=[".e2e"]) and then
# scripts/gpu/e2e_analyze.sh there). No PDF report in that build (Qt renders it).
# TESTS="test_vision_io ..." packs those test binaries too (run there with
# --gtest_filter; the CUDA detector's tests are CandidatesCuda.*).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
TESTS=${TESTS:-}
cmake --preset h200-e2e -DHILUM_BUILD_TESTS="$([ -n "$TESTS" ] && echo ON || echo OFF)" >/dev/null
# shellcheck disable=SC2086 # TESTS is a list of targets
cmake --build build-e2e -j"${JOBS:-2}" --target hilum $TESTS
rm -rf .e2e && mkdir -p .e2e/stage/lib
cp build-e2e/hilum .e2e/stage/hilum
for t in $TESTS; do cp "build-e2e/tests/$t" .e2e/stage/; done
# shellcheck disable=SC2086
strip .e2e/stage/hilum $(for t in $TESTS; do echo ".e2e/stage/$t"; done)
# shellcheck disable=SC2086
for b in build-e2e/hilum $(for t in $TESTS; do echo "build-e2e/tests/$t"; done); do ldd "$b"; done |
  awk '/=> \//{print $3}' | sort -u |
  grep -v -E '/(libc|libm|libdl|libpthread|librt|libresolv|libstdc\+\+|libgcc_s)\.so|/libcu|/libcudnn|/libnv' |
  while read -r lib; do cp -L "$lib" .e2e/stage/lib/; done
# DCMTK's data dictionaries (the GPU machine has no DCMTK; DCMDICTPATH points here).
mkdir -p .e2e/stage/share
dict_dir=$(dirname "$(ls /usr/share/libdcmtk*/dicom.dic | head -1)")
cp "$dict_dir/dicom.dic" "$dict_dir/private.dic" .e2e/stage/share/
tar -C .e2e/stage -cf - . | xz -T"${JOBS:-2}" -9 >.e2e/runtime.tar.xz
rm -rf .e2e/stage
echo "packed: $(du -h .e2e/runtime.tar.xz | cut -f1) ($(tar -tJf .e2e/runtime.tar.xz | grep -c '^./lib/.') libraries)"
# The device tool carries the working tree and the carried paths, 64 MiB in all.
# With OpenCV's libraries the pack is ~26 MiB and the tree ~40 MiB: move
# tests/golden (6 MiB, not needed there) out of the working tree for the run
# and `git checkout tests/golden` after it.
tree=$(git ls-files -z | xargs -0 cat 2>/dev/null | wc -c)
pack=$(stat -c %s .e2e/runtime.tar.xz)
if ((tree + pack > 64 * 1024 * 1024)); then
  awk -v t="$tree" -v p="$pack" 'BEGIN { printf "warning: tree %.1f MiB + pack %.1f MiB exceed the device tool'"'"'s 64 MiB\n", t / 1048576, p / 1048576 }' >&2
fi
