#!/usr/bin/env bash
# Hilum's PACS client against DCMTK's command-line tools (storescu, findscu,
# getscu, movescu) on the same local Orthanc and the same study: wall time of
# each operation, median of N runs, and the ratio hilum / DCMTK. Both sides are
# DcmSCU-based clients; the point is that Hilum's layer (atomic writes, progress,
# checks) costs nothing measurable next to the PACS itself.
#
#   bench/pacs_vs_dcmtk.sh [BUILD_DIR] [SLICES] [RUNS]     (defaults: build 100 5)
#
# Needs: Orthanc, dcmtk, curl, bc, /usr/bin/python3 with pydicom and numpy (bench/local_orthanc.sh).
# Prints a Markdown table on stdout.
set -euo pipefail

BUILD=${1:-build}
SLICES=${2:-100}
RUNS=${3:-5}
HILUM=$(realpath "$BUILD/hilum")
WORK=$(mktemp -d /tmp/hilum_pacs_bench.XXXXXX)
. "$(dirname "$0")/local_orthanc.sh"
trap 'stop_local_orthanc; rm -rf "$WORK"' EXIT

start_local_orthanc "$WORK"

# A CT series of 512x512 slices (random HU values, so nothing compresses away).
mkdir -p "$WORK/ct"
STUDY=$(/usr/bin/python3 - "$WORK/ct" "$SLICES" <<'EOF'
import sys, numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
out, n = sys.argv[1], int(sys.argv[2])
study, series = generate_uid(), generate_uid()
rng = np.random.default_rng(1)
for i in range(n):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.2'
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(None, {}, file_meta=meta, preamble=b'\0' * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.StudyDate, ds.Modality = 'BENCH^PATIENT', 'BENCH-1', '20260101', 'CT'
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = study, series, 1, i + 1
    ds.Rows = ds.Columns = 512
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, 'MONOCHROME2'
    ds.PixelData = rng.integers(-1000, 1000, 512 * 512, dtype=np.int16).tobytes()
    ds.save_as(f'{out}/{i:04d}.dcm', write_like_original=False)
print(study)
EOF
)

CONN=(--host 127.0.0.1 --port "$DICOM_PORT" --aet ORTHANC --calling-aet HILUM)
DCMTK_CONN=(-aet HILUM -aec ORTHANC 127.0.0.1 "$DICOM_PORT")
delete_study() {  # so that every store run stores into an empty server
  local id
  id=$(orthanc_curl /tools/lookup -X POST -d "$STUDY" |
       /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin); print(r[0]["ID"] if r else "")')
  [ -n "$id" ] && orthanc_curl "/studies/$id" -X DELETE > /dev/null
  return 0
}

# median_seconds SETUP_CMD CMD...: median wall time of RUNS runs of CMD (SETUP_CMD before each).
median_seconds() {
  local setup=$1; shift
  local times=()
  for _ in $(seq 1 "$RUNS"); do
    eval "$setup"
    times+=("$(wall_seconds "$@" || true)")
  done
  median "${times[@]}"
}

fresh_dir() { rm -rf "$WORK/out" && mkdir -p "$WORK/out"; }

t_store_h=$(median_seconds delete_study "$HILUM" -q pacs store "$WORK/ct" "${CONN[@]}")
t_store_d=$(median_seconds delete_study storescu "${DCMTK_CONN[@]}" "$WORK"/ct/*.dcm)
"$HILUM" -q pacs store "$WORK/ct" "${CONN[@]}" > /dev/null
t_find_h=$(median_seconds : "$HILUM" -q pacs find --level series --study "$STUDY" "${CONN[@]}")
t_find_d=$(median_seconds : findscu -S -k QueryRetrieveLevel=SERIES -k StudyInstanceUID="$STUDY" \
  -k SeriesInstanceUID -k Modality -k NumberOfSeriesRelatedInstances "${DCMTK_CONN[@]}")
t_get_h=$(median_seconds fresh_dir "$HILUM" -q pacs get --study "$STUDY" --out "$WORK/out" "${CONN[@]}")
t_get_d=$(median_seconds fresh_dir getscu -S -k QueryRetrieveLevel=STUDY -k StudyInstanceUID="$STUDY" \
  -od "$WORK/out" "${DCMTK_CONN[@]}")
t_move_h=$(median_seconds fresh_dir "$HILUM" -q pacs move --study "$STUDY" --out "$WORK/out" \
  --scp-port "$SCP_PORT" "${CONN[@]}")
t_move_d=$(median_seconds fresh_dir movescu -S -aem HILUM --port "$SCP_PORT" -k QueryRetrieveLevel=STUDY \
  -k StudyInstanceUID="$STUDY" -od "$WORK/out" "${DCMTK_CONN[@]}")

MB=$(du -sm "$WORK/ct" | cut -f1)
echo "Study: $SLICES CT slices of 512x512 (16 bit), $MB MB; median of $RUNS runs; Orthanc $(Orthanc --version | head -1 | cut -d' ' -f2), DCMTK $(storescu --version | head -1 | sed 's/.*v\([0-9.]*\).*/\1/')"
echo
echo "| operation | hilum s | DCMTK tool | DCMTK s | hilum / DCMTK |"
echo "|---|---:|---|---:|---:|"
row() { printf '| %s | %.3f | %s | %.3f | %.2f |\n' "$1" "$2" "$3" "$4" "$(echo "$2 / $4" | bc -l)"; }
row "C-STORE $SLICES files" "$t_store_h" storescu "$t_store_d"
row "C-FIND series level" "$t_find_h" findscu "$t_find_d"
row "C-GET study" "$t_get_h" getscu "$t_get_d"
row "C-MOVE study (own SCP)" "$t_move_h" "movescu (own SCP)" "$t_move_d"
