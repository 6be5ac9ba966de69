#!/usr/bin/env bash
# Speed and memory at 224 x 224 on a 1000-class torchvision ResNet-18 exported to TorchScript,
# against PyTorch eager in the same run (bench/resnet18_224.py says what is measured).
#   bash bench/resnet18_224.sh                        # 2 threads, 32 images, batch 16, memory 100 vs 1000
#   THREADS=4 IMAGES=64 BATCH=32 MEMORY=100,400 bash bench/resnet18_224.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/sdsgsm ] || { echo "build sdsgsm first (bash scripts/setup.sh)" >&2; exit 1; }
/usr/bin/python3 -c 'import torchvision' 2>/dev/null || { echo "needs Debian's python3-torchvision (scripts/setup.sh installs it)" >&2; exit 1; }
exec /usr/bin/python3 bench/resnet18_224.py --threads "${THREADS:-2}" --images "${IMAGES:-32}" --batch "${BATCH:-16}" \
  --memory "${MEMORY:-100,1000}" --json "${JSON:-runs/bench-resnet18-224/result.json}"
