#!/usr/bin/env bash
# One instrumented build for both scripts/sanitize.sh and scripts/fuzz.sh (sourced by them): clang-14
# with AddressSanitizer, UndefinedBehaviorSanitizer and libFuzzer's coverage hooks, into build-asan/,
# so that the test suite under the sanitizers and the fuzz targets share every object file (the
# library is compiled once for both, not twice). -O1 with line tables: enough for the sanitizers'
# stack traces, and much quicker to compile than -O2 -g.
#   sanitizer_build TARGET...      configure (once) and build those targets
set -euo pipefail
sanitizer_build() {
  local missing=() p
  for p in clang-14 libclang-rt-14-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    local SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" -DSDSGSM_FUZZ=ON \
    -DSDSGSM_BUILD_TESTS=ON -DSDSGSM_BUILD_BENCH=OFF -DSDSGSM_BUILD_PYTHON=OFF -DSDSGSM_WITH_MPI=OFF \
    -DSDSGSM_TEST_DATA="$(pwd)/data/cifar10" -DSDSGSM_TEST_TIMEOUT=1800 >/dev/null
  local args=() t
  for t in "$@"; do args+=(--target "$t"); done
  cmake --build build-asan -j"$(nproc)" "${args[@]}"
}
