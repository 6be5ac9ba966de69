#!/usr/bin/env bash
# Builds the project and its test suite with AddressSanitizer and UndefinedBehaviorSanitizer (g++)
# into build-asan/, and runs the suite under them (all but the network test and the memory test,
# whose peak-memory ratio the sanitizer's own allocations would distort).
#   bash scripts/sanitize.sh [CTEST_REGEX]     e.g. 'Checks|BadInput' for a subset
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh sdsgsm_cli  # packages, and the data the tests read
t0=$(date +%s)
flags="-fsanitize=address,undefined -fno-sanitize=vptr -fno-omit-frame-pointer"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSDSGSM_BUILD_BENCH=OFF \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DSDSGSM_TEST_DATA="$(pwd)/data/cifar10" >/dev/null
cmake --build build-asan -j"$(nproc)"
t1=$(date +%s)
# LibTorch keeps allocations until exit by design: leak reports would be noise.
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
select=()
[ $# -gt 0 ] && select=(-R "$1")
ctest --test-dir build-asan --output-on-failure -j"$(nproc)" --timeout 1800 -E 'data_npm|Memory\.' "${select[@]}"
echo "sanitize: build $((t1 - t0)) s, tests $(($(date +%s) - t1)) s"
