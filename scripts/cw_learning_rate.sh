#!/usr/bin/env bash
# C&W's learning rate, measured on the tuning images (test images 5,000-5,099, never the
# evaluation images): for each shipped model, 5 binary-search steps x 100 and x 10 Adam steps at
# each rate. Writes docs/tuning/cw-learning-rate.md (or the file given).
#   bash scripts/cw_learning_rate.sh [OUT.md]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/tuning/cw-learning-rate.md}
[ -x build/sdsgsm ] || bash scripts/setup.sh sdsgsm_cli
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rates=(0.1 0.03 0.01 0.003 0.001 0.0003)
{
  echo "# C&W's learning rate on the tuning images"
  echo
  echo "Command: \`bash scripts/cw_learning_rate.sh\`, which runs, for each model, steps and rate,"
  echo "\`sdsgsm attack --attack cw --model MODEL --offset 5000 --count 100 --steps STEPS --learning-rate RATE\`"
  echo "(5 binary-search steps over c from c0 = 1, kappa 0). Figures over the images each model classifies"
  echo "correctly; l2 of the float adversarials, and ASR after rounding them to 8-bit pixels."
  echo
  echo "| model | Adam steps | learning rate | ASR | l2 mean | l2 median | ASR 8-bit | l2 8-bit |"
  echo "|---|---|---|---|---|---|---|---|"
} >"$out.tmp"
for model in resnet20 vgg7bn; do
  for steps in 100 10; do
    for lr in "${rates[@]}"; do
      run="$tmp/$model-$steps-$lr"
      build/sdsgsm -q attack --attack cw --model "$model" --offset 5000 --count 100 --steps "$steps" \
        --learning-rate "$lr" --out "$run" >/dev/null
      /usr/bin/python3 - "$run/metrics.json" "$model" "$steps" "$lr" >>"$out.tmp" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
f, r = s["float"], s["rounded_8bit"]
print("| %s | 5 x %s | %s | %.2f%% | %.4f | %.4f | %.2f%% | %.4f |" % (
    sys.argv[2], sys.argv[3], sys.argv[4], 100 * f["asr"], f["l2_mean"], f["l2_median"], 100 * r["asr"], r["l2_mean"]))
PY
    done
  done
done
mv "$out.tmp" "$out"
echo "wrote $out"
