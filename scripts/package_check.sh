#!/usr/bin/env bash
# CI: sdsgsm as a user installs it. From the existing build/ (scripts/setup.sh; nothing is rebuilt
# from scratch): builds the Debian package (cpack -G DEB), installs it with apt (only Debian's
# packages come with it), then, from a temporary folder with no build tree, no PYTHONPATH and no
# SDSGSM_MODEL_DIR: `sdsgsm eval --model resnet20 --count 100`, `import sdsgsm`, the Python example
# (examples/python) and the C++ example (examples/cpp, built with find_package(sdsgsm CONFIG
# REQUIRED) and no hints); then removes the package and checks that none of its files is left.
# Prints the package's size and how long each step took; stops at the first error, naming it.
#   bash scripts/package_check.sh
set -eEuo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
trap 'echo "package_check: FAILED (line $LINENO: $BASH_COMMAND)" >&2' ERR
now() { date +%s; }
t0=$(now)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
PY=/usr/bin/python3  # Debian's, whose python3-torch the module is for (python3 on PATH may be another)

[ -f build/CMakeCache.txt ] || { echo "package_check: no build/ (run scripts/setup.sh first)" >&2; exit 1; }
[ -f data/cifar10/test_batch.bin ] || { echo "package_check: no data/cifar10 (run scripts/setup.sh first)" >&2; exit 1; }
if dpkg-query -W -f='${Status}' sdsgsm 2>/dev/null | grep -q "install ok installed"; then
  echo "package_check: the package sdsgsm is installed already; remove it first (apt-get remove sdsgsm)" >&2
  exit 1
fi

work=$(mktemp -d /tmp/sdsgsm-package.XXXXXX)
chmod 755 "$work"  # apt's _apt user reads the .deb from here
installed=0
cleanup() {
  if [ "$installed" = 1 ]; then
    echo "package_check: removing the package after a failure"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq --purge sdsgsm >/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# 1. The package, from the build as it is (what it installs brought up to date first).
targets=(--target sdsgsm_cli)
help=$(cmake --build build --target help)
if grep -qw sdsgsm_python <<< "$help"; then targets+=(--target sdsgsm_python); fi
cmake --build build -j"$(nproc)" "${targets[@]}" >/dev/null
rm -f build/sdsgsm_*.deb
(cd build && cpack -G DEB >/dev/null)
rm -rf build/_CPack_Packages
deb=$(ls build/sdsgsm_*.deb)
cp "$deb" "$work/"
deb="$work/$(basename "$deb")"
bytes=$(stat -c %s "$deb")
echo "package_check: $(basename "$deb"): $bytes bytes ($(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }') MiB)," \
     "$(dpkg-deb -c "$deb" | grep -vc '/$') files, $(($(dpkg-deb -f "$deb" Installed-Size) / 1024)) MiB installed"
echo "package_check: Depends: $(dpkg-deb -f "$deb" Depends)"
echo "package_check: Recommends: $(dpkg-deb -f "$deb" Recommends)"
t1=$(now)

# 2. Install with apt, which resolves the dependencies from the machine's (Debian) sources.
new=$($SUDO apt-get install -s "$deb" 2>/dev/null | awk '/^Inst / { print $2 }' | tr '\n' ' ')
echo "package_check: apt installs: ${new:-nothing}"
installed=1
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" >/dev/null
files=$(dpkg -L sdsgsm)
t2=$(now)

# 3. Use it from elsewhere: a folder holding only a link to the data set and copies of the examples.
cd "$work"
mkdir data examples
ln -s "$repo/data/cifar10" data/cifar10
cp -r "$repo/examples/cpp" "$repo/examples/python" examples/
unset PYTHONPATH SDSGSM_MODEL_DIR CMAKE_PREFIX_PATH
[ "$(command -v sdsgsm)" = /usr/bin/sdsgsm ]
sdsgsm --version
models=$(sdsgsm models)
grep -q " /usr/share/sdsgsm/models/resnet20.pt$" <<< "$models" ||
  { echo "package_check: 'sdsgsm models' does not find resnet20 in /usr/share/sdsgsm/models: $models" >&2; false; }
grep -q " /usr/share/sdsgsm/models/resnet20-at.pt$" <<< "$models" ||
  { echo "package_check: 'sdsgsm models' does not find resnet20-at in /usr/share/sdsgsm/models: $models" >&2; false; }
sdsgsm -q eval --model resnet20 --count 100
$PY -c "import sdsgsm; print('import sdsgsm:', sdsgsm.__file__, len(sdsgsm.attack_names()), 'attacks')"
$PY -c "import sdsgsm, sys; sys.exit(not sdsgsm.__file__.startswith('/usr/lib/python3/dist-packages/'))"
$PY examples/python/attack.py data/cifar10
cmake -S examples/cpp -B cpp-build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build cpp-build -j"$(nproc)" >/dev/null
out=$(./cpp-build/attack_asr data/cifar10 16)
echo "$out"
grep -q "(/usr/share/sdsgsm/models/resnet20.pt)" <<< "$out"
grep -q "^ASR " <<< "$out"
pkg-config --exists --print-errors sdsgsm
echo "package_check: pkg-config sdsgsm $(pkg-config --modversion sdsgsm): $(pkg-config --libs sdsgsm)"
[ -f /usr/share/man/man1/sdsgsm.1 ] || [ -f /usr/share/man/man1/sdsgsm.1.gz ]
cd "$repo"
t3=$(now)

# 4. Remove it: nothing of it may be left (Python's byte code included).
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq --purge sdsgsm >/dev/null
installed=0
left=()
while IFS= read -r f; do
  if [ -f "$f" ] || [ -L "$f" ]; then left+=("$f"); fi  # the package's files (its folders may be shared)
done <<< "$files"
for d in /usr/share/sdsgsm /usr/include/sdsgsm /usr/lib/python3/dist-packages/sdsgsm /usr/lib/cmake/sdsgsm; do
  [ ! -e "$d" ] || left+=("$d")
done
if [ ${#left[@]} -gt 0 ]; then
  echo "package_check: left after removal: ${left[*]}" >&2
  false
fi
if $PY -c "import sdsgsm" 2>/dev/null; then echo "package_check: sdsgsm still imports after removal" >&2; false; fi
t4=$(now)
echo "package_check: ok: package $((t1 - t0)) s, install $((t2 - t1)) s, use $((t3 - t2)) s, remove $((t4 - t3)) s; $((t4 - t0)) s in all"
