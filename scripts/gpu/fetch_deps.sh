#!/usr/bin/env bash
# Run HERE (Debian 12) before a GPU-machine call: downloads the Debian packages
# the GPU build needs but the bare GPU image lacks (header-only JSON/CLI
# libraries, Oniguruma, ICU, GoogleTest, Google Benchmark) into .gpu-deps/,
# which the device call carries (name it in `carry`). scripts/gpu/env.sh
# unpacks them there. Nothing is downloaded on the GPU machine itself.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
mkdir -p .gpu-deps
cd .gpu-deps
apt-get download nlohmann-json3-dev libcli11-dev libonig-dev libonig5 libgtest-dev libgmock-dev \
  libbenchmark-dev libbenchmark1debian libicu-dev libicu72 2>&1 | grep -v "^W: Download is performed unsandboxed" || true
ls -la
