#!/usr/bin/env bash
# `hilum analyze` end to end on the H200 machine, a 300-slice phantom study
# with its clinical note and the demo bundle: three runs on CUDA (the first
# one pays for the CUDA context and cuDNN's set-up) and one on the CPU, each
# with --timings, then six studies in one `hilum batch` process with --jobs 1, 2
# and 4. RUNS picks the single runs, RUN_ENV prefixes them, SKIP_BATCH=1 drops
# the batch. A run named cuda-cpudet-N keeps the candidate detector on the CPU
# (HILUM_CANDIDATES_ON_CPU=1) for a side-by-side comparison (the candidates of
# the last such run and of the last cuda run are compared); cuda-nomass-N
# leaves the lung mask's mass pass out (HILUM_LUNG_MASS_PASS=0); cuda-cpumask-N keeps the lung
# mask's closings on the CPU (HILUM_LUNG_MASK_ON_CPU=1; the candidates of the last such run and of
# the last cuda run are compared byte for byte); cuda-bN-K runs the image branch N patches per
# forward (HILUM_IMAGE_BATCH=N; 128 otherwise); cuda-hostf16-N rounds the image branch's input to f16
# on the host first, as analyze did until 2026-11-30 (HILUM_IMAGE_HOST_F16=1; compared byte for byte
# with the last cuda run); cuda-nocaps-N leaves the candidates' pleural caps out
# (HILUM_PLEURAL_CAPS=0). Test binaries in the
# pack (pack_e2e.sh TESTS=...) run first with GTEST_FILTER (default
# CandidatesCuda.*). Needs .e2e/runtime.tar.xz from scripts/gpu/pack_e2e.sh.
# Results in $OUT/e2e.txt.
set -uo pipefail
# RUN_ENV: settings for the analyze runs (e.g. "env HILUM_KEEP_LARGE_BUFFERS=0").
RUN_ENV=${RUN_ENV:-}
OUT=${OUT:-out}
mkdir -p "$OUT"
# shellcheck source=scripts/gpu/e2e_runtime.sh
source "$(dirname "${BASH_SOURCE[0]}")/e2e_runtime.sh"
TIMEFORMAT='%R s wall, %U s user, %S s sys'
{
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  echo "cores: $(nproc)"
  ldd "$H" | grep "not found" && echo "missing libraries (above)"
  "$H" --version
  for t in "$R"/test_*; do
    [ -x "$t" ] || continue
    echo "== $(basename "$t") --gtest_filter=${GTEST_FILTER:-CandidatesCuda.*}"
    "$t" --gtest_filter="${GTEST_FILTER:-CandidatesCuda.*}" 2>&1 | grep -v -E '^\[ RUN|^\[-+\]|^$' | head -80
  done
  S=/tmp/e2e-s300
  rm -rf "$S" /tmp/e2e-out-*
  time "$H" -q phantom --out "$S" --seed 900999 --slices 300
  last_gpu='' last_cpudet='' last_cpumask='' last_hostf16=''
  for run in ${RUNS:-cuda-1 cuda-2 cuda-3 cpu}; do
    echo "== $run"
    detector=()
    case $run in
      *cpudet*) detector=(HILUM_CANDIDATES_ON_CPU=1) last_cpudet=$run ;;
      *nomass*) detector=(HILUM_LUNG_MASS_PASS=0) ;;
      *cpumask*) detector=(HILUM_LUNG_MASK_ON_CPU=1) last_cpumask=$run ;;
      *nocaps*) detector=(HILUM_PLEURAL_CAPS=0) ;;
      cuda-b[0-9]*) n=${run#cuda-b} && detector=("HILUM_IMAGE_BATCH=${n%%-*}") ;;
      *hostf16*) detector=(HILUM_IMAGE_HOST_F16=1) last_hostf16=$run ;;
      cuda*) last_gpu=$run ;;
    esac
    # shellcheck disable=SC2086 # RUN_ENV is a command prefix
    time env "${detector[@]}" $RUN_ENV "$H" -v analyze "$S/dicom" --clinical-text "$S/clinical.txt" \
      --model-bundle resources/models --device "${run%%-*}" --out "/tmp/e2e-out-$run" --timings 2>&1 |
      grep -v '^progress'
  done
  if [ -n "$last_gpu" ] && [ -n "$last_cpudet" ]; then
    a=/tmp/e2e-out-$last_cpudet/candidates.csv b=/tmp/e2e-out-$last_gpu/candidates.csv
    # Every CPU candidate's nearest CUDA one (positions print with 6 digits, so
    # compare distances), the probabilities' largest difference, the top 20's order.
    echo "== candidates, detector on the CPU ($last_cpudet) vs CUDA ($last_gpu):"
    python3 scripts/gpu/compare_candidates.py "$a" "$b"
  fi
  # same_outputs WHAT RUN: RUN's candidates.csv and findings.json against the last cuda run's, byte for byte.
  same_outputs() {
    [ -n "$last_gpu" ] && [ -n "$2" ] || return 0
    echo "== candidates.csv and findings.json, $1 ($2) vs not ($last_gpu):"
    for f in candidates.csv findings.json; do
      cmp "/tmp/e2e-out-$2/$f" "/tmp/e2e-out-$last_gpu/$f" && echo "$f: identical"
    done
  }
  same_outputs "image input through f16 on the host" "$last_hostf16"
  same_outputs "lung mask on the CPU" "$last_cpumask"
  # Steady state: one process analyses several studies (the CUDA context and
  # the convolution plans are made once), as `hilum batch` does in a hospital.
  # SKIP_BATCH=1 leaves it out.
  if [ "${SKIP_BATCH:-0}" != 1 ]; then
  B=/tmp/e2e-batch
  rm -rf "$B" /tmp/e2e-batch-out && mkdir -p "$B"
  for i in 1 2 3 4 5 6; do "$H" -q phantom --out "$B/study$i" --seed $((900990 + i)) --slices 300 >/dev/null; done
  for jobs in 1 2 4; do
    echo "== batch of 6 studies, cuda, one process, --jobs $jobs"
    rm -rf /tmp/e2e-batch-out
    time "$H" -q batch --input "$B" --out /tmp/e2e-batch-out --device cuda --model-bundle resources/models --jobs $jobs
  done
  head -8 /tmp/e2e-batch-out/summary.csv
  fi
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print('findings:', len(d['findings']), 'device:', d.get('device', d.get('provenance', {})))" "/tmp/e2e-out-${LAST:-$last_gpu}/findings.json"
} >"$OUT/e2e.txt" 2>&1
cat "$OUT/e2e.txt"
