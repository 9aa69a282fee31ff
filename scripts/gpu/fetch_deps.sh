#!/usr/bin/env bash
# Downloads (here, where Debian's archive is reachable) the C++ packages the
# gpu-machine build needs but a bare GPU image may lack, into .gpudeps/. Carry
# that folder in the device run; scripts/gpu/resnet.sh unpacks it into /tmp.
#
#   echo /.gpudeps/ >> .git/info/exclude; scripts/gpu/fetch_deps.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
mkdir -p .gpudeps
cd .gpudeps
apt-get download nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev libonig-dev libonig5
ls -l
