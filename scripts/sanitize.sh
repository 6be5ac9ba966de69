#!/usr/bin/env bash
# Builds the project and its test suite with AddressSanitizer and UndefinedBehaviorSanitizer (clang-14,
# scripts/sanitizer_build.sh: the same build the fuzz targets use) into build-asan/, and runs the
# suite under them (all but the network test and the memory test,
# whose peak-memory ratio the sanitizer's own allocations would distort).
#   bash scripts/sanitize.sh [CTEST_REGEX]     e.g. 'Checks|BadInput' for a subset
#   bash scripts/sanitize.sh --ci              what CI runs: the fast label, BadInput, Resume, Checks
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh sdsgsm_cli  # packages, and the data the tests read
t0=$(date +%s)
source scripts/sanitizer_build.sh
sanitizer_build sdsgsm_tests sdsgsm_cli
t1=$(date +%s)
# LibTorch keeps allocations until exit by design: leak reports would be noise.
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
run() { ctest --test-dir build-asan --output-on-failure -j"$(nproc)" --timeout 1800 -E 'data_npm|Memory\.' "$@"; }
if [ "${1:-}" = --ci ]; then
  # CI's share (the whole suite under the sanitizers takes much longer on 2 cores): the
  # library's unit tests (label fast), and the command-line tests that feed the tool bad input
  # and interrupted runs, where a memory error would hide.
  run -L fast
  run -R '^(BadInput|Resume|Checks)\.'
elif [ $# -gt 0 ]; then
  run -R "$1"
else
  run
fi
echo "sanitize: build $((t1 - t0)) s, tests $(($(date +%s) - t1)) s"
