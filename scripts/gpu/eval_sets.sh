#!/usr/bin/env bash
# Held-out phantom sets evaluated side by side on the H200 machine. For each
# seed range of SETS: the phantoms (`hilum phantom`, P at a time) and their
# truth.csv, then for each entry of VARIANTS (';'-separated NAME=SETTINGS, the
# settings an environment prefix such as HILUM_PLEURAL_CAPS=0, or empty) one
# `hilum batch --device cuda --jobs 4` run and `hilum eval batch` (CPM, fused
# malignancy AUC); with PARALLEL=1 the variants' batch runs go side by side
# (4 jobs each; the H200 machine has 16 cores). BY (e.g. "--by juxtavascular
# --by diameter_mm:6,8,15") adds `hilum eval batch`'s subgroup lines. W (default
# /tmp/eval-sets) is the work folder, emptied first: concurrent runs need one
# each. POOLS (';'-separated NAME=RANGE,RANGE...; ranges of SETS) evaluates each
# variant again on the named sets pooled (one `hilum eval batch` over all their
# studies: the CPM of their nodules together, not a mean of the sets'). For each range of EXPORTS: the candidate sensitivity, as
# `export-training-set --negatives 0 --no-sizing --no-truth-patches` reports it,
# the range split over P processes (EXPORT_ENV prefixes them). Then, with
# TIMING=1, `hilum analyze --timings` of the 300-slice phantom of seed 900999
# on CUDA once per variant. Test binaries in the pack run first with
# GTEST_FILTER. Each set's phantoms are deleted once it is evaluated (KEEP_INPUTS=1
# keeps them). Needs .e2e/runtime.tar.xz (scripts/gpu/pack_e2e.sh). Results:
# $OUT/eval_sets.txt. ENSEMBLES (';'-separated NAME=A+B[+...], names of
# VARIANTS) scores each set and pool again with the mean nodule logit of those
# variants' candidates (average_candidates.py): the CPM of an ensemble of
# bundles; its malignancy AUC line is A's own. BATCH_ARGS go to every `hilum
# batch` (e.g. "--min-probability 0.02"). With KEEP_FINDINGS=1 each set's truth
# and each variant's candidates.csv and findings.json come back in
# $OUT/findings.tar.xz, for `hilum eval batch` here (a few MB for 500 studies).
#
#   run(carry=[".e2e"], command="SETS=2000-2049 OUT=$OUT bash scripts/gpu/eval_sets.sh")
set -uo pipefail
OUT=${OUT:-out}
mkdir -p "$OUT"
# shellcheck source=scripts/gpu/e2e_runtime.sh
source "$(dirname "${BASH_SOURCE[0]}")/e2e_runtime.sh"
SETS=${SETS:-}
VARIANTS=${VARIANTS:-"caps=;nocaps=HILUM_PLEURAL_CAPS=0"}
EXPORTS=${EXPORTS:-}
EXPORT_ENV=${EXPORT_ENV:-}
P=${P:-16}
W=${W:-/tmp/eval-sets}  # the work folder (emptied first): one per concurrent run
rm -rf "$W" && mkdir -p "$W"
IFS=';' read -ra variants <<<"$VARIANTS"
IFS=';' read -ra ensembles <<<"${ENSEMBLES:-}"
{
  nvidia-smi --query-gpu=name --format=csv,noheader
  echo "cores: $(nproc); $(date -u)"
  for t in "$R"/test_*; do
    [ -x "$t" ] || continue
    echo "== $(basename "$t") --gtest_filter=${GTEST_FILTER:-*}"
    "$t" --gtest_filter="${GTEST_FILTER:-*}" 2>&1 | grep -E '^\[  (PASSED|FAILED|SKIPPED) |Failure|tests ran' | head -40
  done
  for range in $SETS; do
    a=${range%-*} b=${range#*-} d=$W/$range
    mkdir -p "$d/in"
    SECONDS=0
    seq "$a" "$b" | xargs -P "$P" -I{} "$H" -q phantom --out "$d/in/s{}" --seed {}
    head -1 "$d/in/s$a/truth.csv" >"$d/truth.csv"
    for s in $(seq "$a" "$b"); do tail -n +2 "$d/in/s$s/truth.csv"; done >>"$d/truth.csv"
    echo "== set $range: $((b - a + 1)) phantoms, $(($(wc -l <"$d/truth.csv") - 1)) nodules, $SECONDS s"
    batch_one() {  # NAME SETTINGS
      local t0=$SECONDS
      # shellcheck disable=SC2086 # settings: a list of NAME=VALUE words; BATCH_ARGS: options
      env $2 "$H" -q batch --input "$d/in" --out "$d/$1" --jobs 4 --device cuda ${BATCH_ARGS:-} >"$d/$1.log" 2>&1 ||
        { echo "batch $1 failed:"; tail -5 "$d/$1.log"; }
      echo "-- $range $1 (${2:-defaults}): batch $((SECONDS - t0)) s"
    }
    SECONDS=0
    for v in "${variants[@]}"; do
      if [ "${PARALLEL:-0}" = 1 ]; then batch_one "${v%%=*}" "${v#*=}" >"$d/${v%%=*}.line" & else batch_one "${v%%=*}" "${v#*=}"; fi
    done
    wait
    for e in "${ensembles[@]}"; do
      IFS='+' read -ra members <<<"${e#*=}"
      python3 "$(dirname "${BASH_SOURCE[0]}")/average_candidates.py" --out "$d/${e%%=*}" "${members[@]/#/$d/}" |
        sed "s|^|-- $range ${e%%=*}: |"
    done
    for v in "${variants[@]}" "${ensembles[@]}"; do
      name=${v%%=*}
      [ -f "$d/$name.line" ] && cat "$d/$name.line"
      # shellcheck disable=SC2086 # BY: a list of --by options
      "$H" eval batch --batch "$d/$name" --truth "$d/truth.csv" --out "$d/$name-eval" ${BY:-} |
        grep -E '^(detection|malignancy|findings|measurement|by )'
    done
    # The phantoms' DICOM (about 7 GB a set of 50) go once the set is evaluated: fourteen sets
    # filled the H200 machine's 64 GB disk on 2026-11-30. Pools need only the truth and
    # the runs' outputs. KEEP_INPUTS=1 keeps them.
    [ "${KEEP_INPUTS:-0}" = 1 ] || rm -rf "$d/in"
  done
  IFS=';' read -ra pools <<<"${POOLS:-}"
  for pool in "${pools[@]}"; do
    pname=${pool%%=*} pd=$W/pool-${pool%%=*}
    IFS=',' read -ra pranges <<<"${pool#*=}"
    mkdir -p "$pd"
    head -1 "$W/${pranges[0]}/truth.csv" >"$pd/truth.csv"
    for range in "${pranges[@]}"; do tail -n +2 "$W/$range/truth.csv"; done >>"$pd/truth.csv"
    echo "== pool $pname (${pranges[*]}): $(($(wc -l <"$pd/truth.csv") - 1)) nodules"
    for v in "${variants[@]}" "${ensembles[@]}"; do
      name=${v%%=*}
      mkdir -p "$pd/$name"
      head -1 "$W/${pranges[0]}/$name/candidates.csv" >"$pd/$name/candidates.csv"
      for range in "${pranges[@]}"; do
        for study in "$W/$range/$name"/*/; do  # the study folders
          [ -f "$study/findings.json" ] && ln -s "${study%/}" "$pd/$name/"
        done
        tail -n +2 "$W/$range/$name/candidates.csv" >>"$pd/$name/candidates.csv"
      done
      echo "-- pool $pname $name"
      # shellcheck disable=SC2086 # BY: a list of --by options
      "$H" eval batch --batch "$pd/$name" --truth "$pd/truth.csv" --out "$pd/$name-eval" ${BY:-} |
        grep -E '^(detection|malignancy|findings|measurement|by )'
    done
  done
  for range in $EXPORTS; do
    a=${range%-*} b=${range#*-} n=$((${range#*-} - ${range%-*} + 1))
    SECONDS=0
    for ((k = 0; k < P && k < n; k++)); do
      lo=$((a + k * n / P)) hi=$((a + (k + 1) * n / P - 1))
      ((hi < lo)) && continue
      # shellcheck disable=SC2086 # EXPORT_ENV: a list of NAME=VALUE words
      env HILUM_NUM_THREADS=1 $EXPORT_ENV "$H" -q export-training-set --seeds "$lo-$hi" --out "$W/x$range/$k" \
        --negatives 0 --no-sizing --no-truth-patches >"$W/x$range-$k.log" 2>&1 &
    done
    wait
    # nodules.csv (export-training-set's): the columns by their names.
    cat "$W/x$range"/*/nodules.csv | awk -F, -v r="$range" -v t="$SECONDS" '
      $1 == "study" { for (i = 1; i <= NF; i++) c[$i] = i; next }
      $c["diameter_mm"] >= 3 { n++; h += $c["detected"]
        if (!$c["detected"]) miss = miss sprintf("   missed: seed %s, %s mm %s, juxtapleural %s, juxtavascular %s\n",
          $c["seed"], $c["diameter_mm"], $c["type"], $c["juxtapleural"], $c["juxtavascular"]) }
      END { printf "== export %s: %d of %d nodules >= 3 mm have a candidate (%.1f %%), %d s\n%s", r, h, n, 100 * h / n, t, miss }'
  done
  if [ "${TIMING:-0}" = 1 ]; then
    "$H" -q phantom --out "$W/s300" --seed 900999 --slices 300
    for v in "${variants[@]}" "${variants[@]}"; do
      name=${v%%=*} settings=${v#*=}
      echo "-- analyze $name"
      # shellcheck disable=SC2086
      env $settings "$H" -v analyze "$W/s300/dicom" --clinical-text "$W/s300/clinical.txt" --device cuda --timings \
        --out "$W/a-$name" 2>&1 | grep -E 'pleural caps|^timing: (lung mask|candidates|patches|image branch|total)|study'
    done
  fi
  if [ "${KEEP_FINDINGS:-0}" = 1 ]; then
    (cd "$W" && { find . -mindepth 2 -maxdepth 2 -name truth.csv; find . -mindepth 3 -maxdepth 3 -name candidates.csv
      find . -mindepth 4 -maxdepth 4 -name findings.json; } | grep -v '^\./pool-' | tar -cJf "$OUT/findings.tar.xz" -T -) && echo "findings: $(du -h "$OUT/findings.tar.xz" | cut -f1)"
  fi
} 2>&1 | tee "$OUT/eval_sets.txt"
