#!/usr/bin/env bash
# Set up, then build and run the whole test suite with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
t0=$(date +%s)
# --repeat until-pass:2: one rare, not yet reproduced failure of a TorchScript test under load
# (see the session notes); a test that fails twice still fails the run.
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 900 --repeat until-pass:2
echo "test: test suite $(($(date +%s) - t0)) s"
