#!/usr/bin/env bash
# `hilum analyze` end to end on the H200 machine, a 300-slice phantom study
# with its clinical note and the demo bundle: three runs on CUDA (the first
# one pays for the CUDA context and cuDNN's set-up) and one on the CPU, each
# with --timings. Needs .e2e/runtime.tar.xz from scripts/gpu/pack_e2e.sh.
# Results in $OUT/e2e.txt.
set -uo pipefail
OUT=${OUT:-out}
mkdir -p "$OUT"
R=/opt/hilum-e2e
rm -rf "$R" && mkdir -p "$R"
python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" .e2e/runtime.tar.xz "$R"
export LD_LIBRARY_PATH=$R/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
H=$R/hilum
TIMEFORMAT='%R s wall'
{
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  echo "cores: $(nproc)"
  ldd "$H" | grep "not found" && echo "missing libraries (above)"
  "$H" --version
  S=/tmp/e2e-s300
  rm -rf "$S" /tmp/e2e-out-*
  time "$H" -q phantom --out "$S" --seed 900999 --slices 300
  for run in ${RUNS:-cuda-1 cuda-2 cuda-3 cpu}; do
    echo "== $run"
    time "$H" -q analyze "$S/dicom" --clinical-text "$S/clinical.txt" --model-bundle resources/models \
      --device "${run%%-*}" --out "/tmp/e2e-out-$run" --timings
  done
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print('findings:', len(d['findings']), 'device:', d.get('device', d.get('provenance', {})))" "/tmp/e2e-out-${LAST:-cuda-3}/findings.json"
} >"$OUT/e2e.txt" 2>&1
cat "$OUT/e2e.txt"
