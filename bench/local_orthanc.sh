# Sourced by the PACS benchmarks (bench/pacs_batch.sh, bench/pacs_vs_dcmtk.sh):
# a throwaway Orthanc on free localhost ports, its database and log in a
# folder of the caller's, plus the timing helpers both use.
#
#   . "$(dirname "$0")/local_orthanc.sh"
#   start_local_orthanc WORK   starts it; sets DICOM_PORT, HTTP_PORT, SCP_PORT,
#                              PASSWORD and ORTHANC_PID; fails (log on stderr)
#                              when it does not answer within 10 s
#   stop_local_orthanc         stops it (harmless when it is not running)
#   orthanc_curl PATH [OPT...] curl on its REST API with the credentials
#   wall_seconds CMD...        runs CMD (output discarded), prints its wall time
#                              in seconds, returns CMD's status
#   median V...                the median of the numbers
#
# The server answers as AE title ORTHANC (the called AE title is checked),
# knows Hilum as modality "hilum" (AE HILUM at 127.0.0.1:$SCP_PORT, for C-MOVE),
# wants HTTP authentication (user "bench", a random password) and refuses
# remote access. Needs Orthanc, curl, bc and /usr/bin/python3.

ORTHANC_PID=

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("",0)); print(s.getsockname()[1])'; }

start_local_orthanc() {
  local work=$1
  DICOM_PORT=$(free_port); HTTP_PORT=$(free_port); SCP_PORT=$(free_port)
  PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  cat > "$work/orthanc.json" <<EOF
{
  "Name": "hilum-bench", "StorageDirectory": "$work/db", "IndexDirectory": "$work/db", "Plugins": [],
  "HttpPort": $HTTP_PORT, "RemoteAccessAllowed": false, "AuthenticationEnabled": true,
  "RegisteredUsers": {"bench": "$PASSWORD"},
  "DicomAet": "ORTHANC", "DicomPort": $DICOM_PORT, "DicomCheckCalledAet": true,
  "DicomModalities": {"hilum": {"AET": "HILUM", "Host": "127.0.0.1", "Port": $SCP_PORT}},
  "SaveJobs": false, "StorageCompression": false
}
EOF
  Orthanc "$work/orthanc.json" > "$work/orthanc.log" 2>&1 &
  ORTHANC_PID=$!
  for _ in $(seq 1 200); do
    orthanc_curl /system > /dev/null && return 0
    sleep 0.05
  done
  echo "$0: Orthanc did not answer within 10 s; its log ends:" >&2
  tail -n 20 "$work/orthanc.log" >&2
  return 1
}

stop_local_orthanc() {
  if [ -n "${ORTHANC_PID:-}" ]; then
    kill "$ORTHANC_PID" 2>/dev/null || true
    wait "$ORTHANC_PID" 2>/dev/null || true
  fi
  ORTHANC_PID=
}

orthanc_curl() {
  local path=$1
  shift
  curl -sf -u "bench:$PASSWORD" "$@" "http://127.0.0.1:$HTTP_PORT$path"
}

wall_seconds() {
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  "$@" > /dev/null 2>&1 || rc=$?
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
  return "$rc"
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
