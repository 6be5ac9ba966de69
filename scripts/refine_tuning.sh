#!/usr/bin/env bash
# The 8-bit refinement's step and norm factor (--refine-step, --refine-gamma), chosen on the tuning
# images (test images 5,000-5,099, never the evaluation images) by the minimum-norm rule: 8-bit ASR
# 100%, then the smallest median l2 of the 8-bit adversarials. SD-SGSM on its shipped defaults,
# early-stopped on its first 8-bit success, then --refine 20, on ResNet-20; quantised DDN at 100
# steps beside it for reference. Writes docs/tuning/refine.md (or the file given).
#   bash scripts/refine_tuning.sh [OUT.md]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/tuning/refine.md}
[ -x build/sdsgsm ] || bash scripts/setup.sh sdsgsm_cli
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
row() {  # NAME ARGS...: one table row from a run on the tuning images
  local name=$1
  shift
  build/sdsgsm -q attack --model resnet20 --offset 5000 --count 100 --no-adversarial --sheet 0 --out "$tmp/run" "$@" >/dev/null
  /usr/bin/python3 - "$tmp/run/metrics.json" "$name" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
q = s["rounded_8bit"]
print("| %s | %.1f | %.1f%% (%d) | %.4f | %.4f | %.4f |" % (
    sys.argv[2], s["passes_mean"], 100 * q["asr"], q["fooled"], q["l2_median"], q["l2_mean"], q["ssim_median"]))
PY
  rm -rf "$tmp/run"
}
{
  echo "# The 8-bit refinement's settings on the tuning images"
  echo
  echo "Command: \`bash scripts/refine_tuning.sh\`. ResNet-20, test images 5,000-5,099 (the tuning images); SD-SGSM"
  echo "on its shipped defaults with \`--early-stop-8bit\`, then \`--refine 20 --refine-step S --refine-gamma G\`."
  echo "Figures over the images the model classifies correctly whose 8-bit adversarial fools it; passes: model"
  echo "passes per image (a gradient step is one; DDI and the 8-bit checks included). The rule: 8-bit ASR 100%,"
  echo "then the smallest median 8-bit l2."
  echo
  echo "| attack | passes | 8-bit ASR (fooled) | median 8-bit l2 | mean 8-bit l2 | median 8-bit SSIM |"
  echo "|---|---|---|---|---|---|"
  row "DDN, 100 steps, quantised (reference)" --attack ddn
  row "SD-SGSM, no refinement" --attack sdsgsm --early-stop-8bit
  for step in 1 2 3; do
    for gamma in 0.1 0.15 0.2; do
      row "SD-SGSM + refine 20, step $step, gamma $gamma" --attack sdsgsm --early-stop-8bit --refine 20 \
        --refine-step "$step" --refine-gamma "$gamma"
    done
  done
  echo
  echo "The shipped defaults, \\`--refine-step 2 --refine-gamma 0.2\\`, were the rule's choice when this file was"
  echo "written (by 0.0002 over gamma 0.15: within the noise of 94 images). Exploratory runs with an earlier version"
  echo "(not reproducible by this script) found that bisecting the scale of the rounded"
  echo "perturbation before the DDN steps gave no smaller l2 than spending those passes on DDN steps."
} >"$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out"
