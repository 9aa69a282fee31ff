#!/usr/bin/env bash
# Hilum set-up: installs the Debian packages the build needs (idempotent),
# configures and builds, then runs the main job on the embedded default (the
# demo model bundle and a generated phantom study).
#
#   scripts/setup.sh                 install + build (preset "default") + demo
#   scripts/setup.sh --no-install    skip apt (packages already there)
#   scripts/setup.sh --no-demo       skip the demo run
#   scripts/setup.sh --preset cpu    build another preset (see CMakePresets.json)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

INSTALL=1
DEMO=1
PRESET=default
while [ $# -gt 0 ]; do
  case "$1" in
    --no-install) INSTALL=0 ;;
    --no-demo) DEMO=0 ;;
    --preset) PRESET="$2"; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  nlohmann-json3-dev libcli11-dev libonig-dev libicu-dev libgtest-dev libgmock-dev libbenchmark-dev
  libdnnl-dev ocl-icd-opencl-dev
  libdcmtk-dev dcmtk libinsighttoolkit5-dev libopencv-dev libopenjp2-7-dev libcharls-dev zlib1g-dev
  qt6-base-dev qt6-base-dev-tools libqt6svg6-dev libgl-dev fonts-dejavu-core
  xvfb xauth
  orthanc curl openssl dicom3tools dcm2niix python3-pydicom python3-numpy python3-gdcm hyperfine r-cran-proc poppler-utils
)

if [ "$INSTALL" = 1 ]; then
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: all Debian packages present"
  fi
  # Orthanc's Debian package starts a system service; Hilum's tests start their
  # own server on other ports, so the system one is not needed.
fi

JOBS=$(nproc 2>/dev/null || echo 2)
cmake --preset "$PRESET"
cmake --build --preset "$PRESET" -j "$JOBS"

case "$PRESET" in
  default) BUILD_DIR=build ;;
  *) BUILD_DIR=build-$PRESET ;;
esac
[ "$PRESET" = gpu-machine ] && BUILD_DIR=build-gpu

if [ "$DEMO" = 1 ] && [ -x "$BUILD_DIR/hilum" ]; then
  "$ROOT/scripts/demo.sh" "$BUILD_DIR"
fi
