#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang-14, AddressSanitizer and UndefinedBehaviorSanitizer
# into build-asan/ (scripts/sanitizer_build.sh: the build scripts/sanitize.sh runs the test suite
# from, so after it only the fuzz targets are linked), and runs each for SECONDS (default 60) from
# the seed corpus in fuzz/corpus/ (the corpus grows in build-asan/corpus/, the repository's seeds
# stay as they are).
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]     targets: cifar image number model state
# Exits non-zero on the first crash, leaving the input that caused it in build-asan/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(cifar image number model state)

[ -x build/sdsgsm ] || bash scripts/setup.sh sdsgsm_cli  # the other packages

t0=$(date +%s)
source scripts/sanitizer_build.sh
build_targets=()
for t in "${targets[@]}"; do build_targets+=("sdsgsm_fuzz_$t"); done
sanitizer_build "${build_targets[@]}"
echo "fuzz: build $(($(date +%s) - t0)) s"

# LibTorch keeps allocations until exit by design: leak reports would be noise.
export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for t in "${targets[@]}"; do
  corpus=build-asan/corpus/$t
  mkdir -p "$corpus"
  log=build-asan/fuzz-$t.log
  if ! (cd build-asan && ./sdsgsm_fuzz_"$t" -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=30 \
        -print_final_stats=1 "corpus/$t" "../fuzz/corpus/$t") >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz: $t found a crash (log: $log; the input is in build-asan/)"
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  echo "fuzz: $t ${seconds} s, ${runs} executions, corpus $(ls "$corpus" | wc -l) files, no crash"
done
