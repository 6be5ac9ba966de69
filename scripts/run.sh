#!/usr/bin/env bash
# The main job on the shipped defaults: set up, evaluate the shipped ResNet-20 on the 10,000
# CIFAR-10 test images, then attack the first 100 with the baselines and SD-SGSM.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p runs
./build/sdsgsm eval --model resnet20 --data data/cifar10 --json runs/eval-resnet20.json
./build/sdsgsm compare --model resnet20 --data data/cifar10 --count 100 \
  --attacks fgsm,ifgsm,mifgsm,sdsgsm --out runs/compare-100
