#!/usr/bin/env bash
# The --device cuda check (docs/cuda.md): build sdsgsm against the CUDA LibTorch bundled with a
# machine's PyTorch and run the same attacks on cuda and on the CPU.
#   bash scripts/cuda_check.sh prepare   here (Debian 12): the Debian packages the build needs
#                                        (.gpu/debs) and CIFAR-10's test batch (.gpu/c10), for a
#                                        GPU machine that cannot download anything
#   bash scripts/cuda_check.sh run       on the GPU machine, from the repository's root, with .gpu
#                                        beside it: writes its logs and figures to $OUT (default
#                                        .gpu/out)
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = prepare ]; then
  mkdir -p .gpu/debs .gpu/c10
  (cd .gpu/debs && apt-get download libcli11-dev nlohmann-json3-dev libfmt-dev libfmt9 libspdlog-dev libspdlog1.10 \
    libarchive-dev libarchive13 zlib1g-dev libssl-dev libssl3 libacl1 libbz2-1.0 liblz4-1 liblzma5 libnettle8 \
    libxml2 libzstd1 libicu72 libstb-dev libstb0)
  cp data/cifar10/test_batch.bin data/cifar10/batches.meta.txt .gpu/c10/
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
  exit 0
fi
[ "${1:-}" = run ] || { echo "usage: cuda_check.sh prepare|run" >&2; exit 2; }
OUT=${OUT:-.gpu/out}; mkdir -p "$OUT"
D=/tmp/deb; mkdir -p $D; for f in .gpu/debs/*.deb; do dpkg -x $f $D; done
mkdir -p /tmp/inc && cp -r $D/usr/include/fmt $D/usr/include/spdlog /tmp/inc/
export LD_LIBRARY_PATH=$D/usr/lib/x86_64-linux-gnu:$D/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
# pip's libtorch.so (2.11) exports a std::filesystem::remove_all that crashes: let libstdc++ come first.
export LD_PRELOAD=$(g++ -print-file-name=libstdc++.so.6)
echo "LD_PRELOAD=$LD_PRELOAD"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee $OUT/gpu.txt
g++ --version | head -1; cmake --version | head -1; nproc
TP=$(python3 -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
python3 -c 'import torch; print(torch.__version__, torch.version.cuda)' | tee -a $OUT/gpu.txt
t0=$(date +%s)
cmake -S . -B /tmp/b -G Ninja -DCMAKE_BUILD_TYPE=Release -DSDSGSM_BUILD_TESTS=OFF -DSDSGSM_BUILD_BENCH=OFF \
  -DSDSGSM_BUILD_PYTHON=OFF -DSDSGSM_WITH_MPI=OFF -DSDSGSM_SHARED=OFF -DCMAKE_PREFIX_PATH="$TP;$D/usr" \
  -DOPENSSL_ROOT_DIR=$D/usr -DCMAKE_CXX_FLAGS="-I/tmp/inc" -DCMAKE_LIBRARY_ARCHITECTURE=x86_64-linux-gnu > $OUT/cmake.log 2>&1 || { tail -40 $OUT/cmake.log; exit 1; }
cmake --build /tmp/b -j16 --target sdsgsm_cli -- -k 0 > $OUT/build.log 2>&1 || { grep -A3 "error:" $OUT/build.log | head -80; exit 1; }
echo "build $(($(date +%s)-t0)) s" | tee -a $OUT/gpu.txt
S=/tmp/b/sdsgsm
rm -rf /tmp/.*.partial /tmp/sd-* /tmp/ddn-* /tmp/sdr-* /tmp/cmp-*
run() { local name=$1; shift; local t=$(date +%s.%N); "$S" -q "$@" > $OUT/$name.log 2>&1; local rc=$?
  echo "$name rc $rc $(python3 -c "print(round($(date +%s.%N)-$t,1))") s" | tee -a $OUT/gpu.txt; tail -3 $OUT/$name.log; }
run eval-cuda --device cuda eval --model resnet20 --data .gpu/c10 --json /tmp/e-cuda.json
run eval-cpu --threads 16 eval --model resnet20 --data .gpu/c10 --json /tmp/e-cpu.json
for dev in cuda cpu; do
  run sd-$dev --device $dev --threads 16 attack --attack sdsgsm --model resnet20 --data .gpu/c10 --count 1000 --out /tmp/sd-$dev --sheet 0 --no-adversarial
  run ddn-$dev --device $dev --threads 16 attack --attack ddn --model resnet20 --data .gpu/c10 --count 200 --out /tmp/ddn-$dev --sheet 0 --no-adversarial
  run sdr-$dev --device $dev --threads 16 attack --attack sdsgsm --early-stop-8bit --refine 20 --model resnet20 --data .gpu/c10 --count 200 --out /tmp/sdr-$dev --sheet 0 --no-adversarial
done
run cmp-cuda --device cuda compare --model vgg7bn --data .gpu/c10 --count 500 --out /tmp/cmp-cuda
python3 - <<'PY' | tee -a $OUT/gpu.txt
import json
for a in ["e-cuda", "e-cpu"]:
    try: print(a, {k: v for k, v in json.load(open(f"/tmp/{a}.json")).items() if isinstance(v, (int, float, str))})
    except Exception as e: print(a, "missing", e)
for r in ["sd", "ddn", "sdr"]:
    for d in ["cuda", "cpu"]:
        try:
            m = json.load(open(f"/tmp/{r}-{d}/metrics.json")); s = m["summary"]
            t = json.load(open(f"/tmp/{r}-{d}/timing.json"))
            f, r8 = s["float"], s["rounded_8bit"]
            print(r, d, "asr", f["asr"], "l2_med", f["l2_median"], "ssim", f["ssim_mean"], "asr8", r8["asr"], "l2_8_med", r8["l2_median"],
                  "passes", s.get("passes_mean"), "attack_s", round(t["attack_seconds"], 2), "wall_s", round(t["wall_seconds"], 2))
        except Exception as e: print(r, d, "missing", e)
PY
cp /tmp/sd-cuda/metrics.json $OUT/sd-cuda-metrics.json 2>/dev/null; cp /tmp/sd-cpu/metrics.json $OUT/sd-cpu-metrics.json 2>/dev/null
cp /tmp/cmp-cuda/*.md $OUT/ 2>/dev/null; ls /tmp/cmp-cuda
