#!/usr/bin/env bash
# The main job on the shipped defaults: set up (building only the command-line tool), evaluate
# the three shipped models on the 10,000 CIFAR-10 test images, then reproduce the paper's
# comparison and ablation (sdsgsm reproduce: the first 1,000 test images, eps 8/255, 10
# iterations, ResNet-20 and vgg7bn), the strength table of the adversarially trained resnet20-at
# with its robust accuracy (AutoAttack's standard version at 4/255 and 8/255) and the transfer
# matrices between the three, into runs/reproduce.
# An interrupted run continues where it stopped when this script is run again (--resume).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh sdsgsm_cli
t0=$(date +%s)
mkdir -p runs
./build/sdsgsm eval --model resnet20 --data data/cifar10 --json runs/eval-resnet20.json
./build/sdsgsm eval --model vgg7bn --data data/cifar10 --json runs/eval-vgg7bn.json
./build/sdsgsm eval --model resnet20-at --data data/cifar10 --json runs/eval-resnet20-at.json
./build/sdsgsm reproduce --data data/cifar10 --out runs/reproduce --resume
echo "run: main job $(($(date +%s) - t0)) s"
echo
echo "Results:"
echo "  runs/reproduce/report.html     the HTML report: tables, curves, paired statistics, examples (open it in a browser)"
echo "  runs/reproduce/results.md      the tables (Markdown), one section per model"
echo "  runs/reproduce/results.json    the same figures, machine-readable"
echo "  runs/reproduce/MODEL/          resnet20, vgg7bn, resnet20_at: curves.csv/json, paired.csv/json, frontier.csv (robust/ for"
echo "                                 resnet20_at), and REGIME-ATTACK/: each run's metrics.json, samples.csv, ..."
echo "  runs/reproduce/transfer.md     the transfer matrices between the three models"
echo "  runs/eval-MODEL.json           clean accuracy, per class, confusion matrix (resnet20, vgg7bn, resnet20-at)"
echo
echo "python3 scripts/docs_figures.py writes README.md's claims table and docs/results.md from these."
