# shellcheck shell=bash
# Sourced by the GPU machine's training jobs that export their data there
# (train_vision_export.sh, train_vision_more.sh, train_vision_variants.sh,
# train_fusion_more.sh), after they set OUT and JOB:
# logs everything to $OUT/$JOB.log as well, sets up the h200-e2e runtime
# (e2e_runtime.sh: R, H) and prints the machine, then defines
#   export_shards PREFIX A-B ARGS...  SHARDS processes of `$H export-training-set
#                                     --negatives -1 --no-sizing ARGS...`, one thread
#                                     each, over seeds A-B into PREFIX-a-b folders
#   wait_exports                      waits for them (a failed one fails the job)
#   export_merged DIR A-B...          exports each range so, waits, and merges them
#                                     all into the one export DIR (merge_exports.py);
#                                     EXPORT_ARGS (a string of options) go to every export
#   parse_variants "NAME:ARGS;..."    fills variant_names and variant_args (one
#                                     string of options each); exits 2 on a bad name
#   started NAME                      records the background job just started ($!) as NAME
#   wait_jobs COLLECT DIR             waits for the recorded jobs in order; after a success
#                                     calls COLLECT NAME (a failing command there ends the job);
#                                     prints "== NAME" and DIR/NAME.log
#   end_job                           prints the time, touches $DONE when set, and exits 1 if
#                                     a job failed
mkdir -p "$OUT"
exec > >(tee "$OUT/$JOB.log") 2>&1
# shellcheck source=scripts/gpu/e2e_runtime.sh
source "$(dirname "${BASH_SOURCE[0]}")/e2e_runtime.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "cores: $(nproc); $("$H" --version)"

export_pids=()
export_shards() {
  local prefix=$1 range=$2 j a b
  shift 2
  local first=${range%-*} last=${range#*-}
  local n=$((last - first + 1))
  for ((j = 0; j < SHARDS; j++)); do
    a=$((first + j * n / SHARDS)) b=$((first + (j + 1) * n / SHARDS - 1))
    ((b >= a)) || continue
    HILUM_NUM_THREADS=1 ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=1 \
      "$H" -q export-training-set --seeds "$a-$b" --out "$prefix-$a-$b" --negatives -1 --no-sizing "$@" &
    export_pids+=($!)
  done
}
wait_exports() {
  local p
  for p in "${export_pids[@]}"; do wait "$p"; done
  export_pids=()
}
export_merged() {
  local dir=$1 range
  shift
  # shellcheck disable=SC2086 # EXPORT_ARGS is a list of options
  for range in "$@"; do export_shards "$dir-part" "$range" ${EXPORT_ARGS:-}; done
  wait_exports
  echo "export: $SECONDS s"
  python3 scripts/train/merge_exports.py --out "$dir" "$dir"-part-*
  rm -rf "$dir"-part-*
}
variant_names=() variant_args=()
parse_variants() {
  local spec specs
  IFS=';' read -ra specs <<<"$1"
  for spec in "${specs[@]}"; do
    [[ ${spec%%:*} =~ ^[A-Za-z0-9_-]+$ ]] || { echo "variant name '${spec%%:*}': letters, digits, _ and - only"; exit 2; }
    variant_names+=("${spec%%:*}") variant_args+=("${spec#*:}")
  done
}
job_names=() job_pids=() jobs_rc=0
started() { job_names+=("$1") job_pids+=("$!"); }
wait_jobs() {
  local collect=$1 dir=$2 k name
  for k in "${!job_names[@]}"; do
    name=${job_names[$k]}
    if wait "${job_pids[$k]}"; then
      "$collect" "$name"
    else
      jobs_rc=1
    fi
    echo "== $name"
    cat "$dir/$name.log"
  done
}
end_job() {
  echo "done: $SECONDS s"
  [[ -n ${DONE:-} ]] && touch "$DONE"
  exit $jobs_rc
}
