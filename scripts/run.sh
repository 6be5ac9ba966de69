#!/usr/bin/env bash
# The main job on the shipped defaults: set up, evaluate both shipped models on the 10,000
# CIFAR-10 test images, then reproduce the paper's comparison and ablation (sdsgsm reproduce: the
# first 1,000 test images, eps 8/255, 10 iterations, ResNet-20 and vgg7bn) into runs/reproduce.
# An interrupted run continues where it stopped when this script is run again (--resume).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p runs
./build/sdsgsm eval --model resnet20 --data data/cifar10 --json runs/eval-resnet20.json
./build/sdsgsm eval --model vgg7bn --data data/cifar10 --json runs/eval-vgg7bn.json
./build/sdsgsm reproduce --data data/cifar10 --out runs/reproduce --resume
