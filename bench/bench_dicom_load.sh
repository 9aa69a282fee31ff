#!/usr/bin/env bash
# Side by side on the same machine and the same files: `hilum volume` (DICOM
# series -> float32 NPY + meta.json) against `dcm2niix` (DICOM -> NIfTI, no
# compression) on a 300-slice 512x512 CT series. Prints a Markdown block for
# bench/RESULTS.md with the command, date, machine and the time ratio.
#
#   bench/bench_dicom_load.sh [--build DIR] [--series DIR] [--out-dir DIR] [--runs N]
#
# Without --series it makes the series: `hilum phantom --slices 300` when the
# build has that command, else bench/make_ct_series.py (pydicom). --out-dir
# picks where both tools write (default: under $HILUM_BENCH_WORK or
# /tmp/hilum-bench); use /dev/shm to leave the disk out of the comparison.
# Needs hyperfine (Debian package) and dcm2niix.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD=build
SERIES=""
WORK=${HILUM_BENCH_WORK:-/tmp/hilum-bench}
OUT=""
RUNS=10
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD="$2"; shift ;;
    --series) SERIES="$2"; shift ;;
    --out-dir) OUT="$2"; shift ;;
    --runs) RUNS="$2"; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "bench_dicom_load.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
HILUM="$BUILD/app/hilum"
[ -x "$HILUM" ] || { echo "bench_dicom_load.sh: $HILUM not built" >&2; exit 2; }
command -v hyperfine >/dev/null || { echo "bench_dicom_load.sh: needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }
command -v dcm2niix >/dev/null || { echo "bench_dicom_load.sh: needs dcm2niix (apt-get install dcm2niix)" >&2; exit 2; }
mkdir -p "$WORK"
OUT=${OUT:-$WORK/out}
mkdir -p "$OUT"

if [ -z "$SERIES" ]; then
  if "$HILUM" --help 2>/dev/null | grep -qE '^  phantom '; then
    if [ ! -d "$WORK/phantom300/dicom" ]; then
      "$HILUM" -q phantom --out "$WORK/phantom300" --seed 1 --slices 300
    fi
    SERIES="$WORK/phantom300/dicom"
    SOURCE="hilum phantom --seed 1 --slices 300"
  else
    if [ ! -d "$WORK/ct300" ]; then
      /usr/bin/python3 bench/make_ct_series.py "$WORK/ct300" --slices 300 --size 512
    fi
    SERIES="$WORK/ct300"
    SOURCE="bench/make_ct_series.py --slices 300 --size 512"
  fi
else
  SOURCE="$SERIES"
fi

# Check once that both tools read the whole series.
"$HILUM" -q volume "$SERIES" --out "$OUT/vol.npy" --meta "$OUT/meta.json"
SHAPE=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['shape'])" "$OUT/meta.json")
rm -rf "$OUT/nifti" && mkdir -p "$OUT/nifti"
dcm2niix -z n -o "$OUT/nifti" -f vol "$SERIES" >/dev/null

HILUM_CMD="$HILUM -q volume $SERIES --out $OUT/vol.npy --meta $OUT/meta.json"
D2N_CMD="dcm2niix -z n -o $OUT/nifti -f vol $SERIES"
# hilum volume fsyncs its outputs before renaming them (model/file_io.h); dcm2niix
# leaves them in the page cache. The third command makes dcm2niix durable too.
D2N_SYNC_CMD="$D2N_CMD && sync $OUT/nifti/vol.nii"
hyperfine --style basic --warmup 2 --runs "$RUNS" --export-json "$WORK/hyperfine.json" \
  --prepare "rm -f $OUT/vol.npy $OUT/meta.json" -n hilum "$HILUM_CMD" \
  --prepare "rm -rf $OUT/nifti && mkdir -p $OUT/nifti" -n dcm2niix "$D2N_CMD" \
  --prepare "rm -rf $OUT/nifti && mkdir -p $OUT/nifti" -n dcm2niix+sync "$D2N_SYNC_CMD" \
  --prepare "true" -n hilum-startup "$HILUM --version" >&2

/usr/bin/python3 - "$WORK/hyperfine.json" "$SOURCE" "$SHAPE" "$OUT" "$HILUM_CMD" "$D2N_CMD" <<'EOF'
import json, platform, subprocess, sys, datetime
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
h, d, ds, st = res["hilum"], res["dcm2niix"], res["dcm2niix+sync"], res["hilum-startup"]
cpu = subprocess.run("lscpu | sed -n 's/^Model name: *//p'", shell=True, capture_output=True, text=True).stdout.strip()
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
load = open("/proc/loadavg").read().split()[:3]
print(f"### DICOM load: `hilum volume` vs `dcm2niix` ({datetime.date.today()})")
print()
print(f"- series: {sys.argv[2]} (shape {sys.argv[3]}, z/y/x), outputs under `{sys.argv[4]}`")
print(f"- machine: {cpu}, {cores} cores, {platform.system()} {platform.release()}, load average {' '.join(load)}")
print(f"- commands: `{sys.argv[5]}` vs `{sys.argv[6]}` (and the same followed by `sync` of its output); "
      f"hyperfine, {len(h['times'])} runs, 2 warm-up")
print()
print("| tool | median s | mean s | stddev s | min s | CPU s (user + system, mean) |")
print("|---|---|---|---|---|---|")
for name, r in (("hilum volume (fsync)", h), ("dcm2niix -z n", d), ("dcm2niix -z n + sync", ds),
                ("hilum --version (process start-up)", st)):
    print(f"| {name} | {r['median']:.3f} | {r['mean']:.3f} | {r['stddev']:.3f} | {r['min']:.3f} | "
          f"{r['user'] + r['system']:.3f} |")
print()
print(f"Ratio hilum / dcm2niix: median {h['median']/d['median']:.2f}, mean {h['mean']/d['mean']:.2f}, "
      f"min {h['min']/d['min']:.2f}; hilum / (dcm2niix + sync): median {h['median']/ds['median']:.2f}, "
      f"mean {h['mean']/ds['mean']:.2f}, min {h['min']/ds['min']:.2f}; CPU time hilum / dcm2niix "
      f"{(h['user'] + h['system']) / (d['user'] + d['system']):.2f} (below 1 = Hilum faster).")
EOF
