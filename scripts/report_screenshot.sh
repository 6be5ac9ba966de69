#!/usr/bin/env bash
# Writes docs/report.png, the README's picture of the HTML report: a compare run of I-FGSM,
# MI-FGSM and SD-SGSM on the first test images (ResNet-20), its report.html, and a screenshot of
# the page's top by headless chromium (Debian's `chromium`), reduced to a palette PNG when
# python3-pil is there (smaller file).
#   scripts/report_screenshot.sh [COUNT] [RUN_DIR]     (defaults: 200, a temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-200}
run=${2:-}
command -v chromium >/dev/null 2>&1 || { echo "report_screenshot: chromium is missing (apt-get install chromium)" >&2; exit 1; }
[ -x build/sdsgsm ] || { echo "report_screenshot: build/sdsgsm is missing (scripts/setup.sh sdsgsm_cli)" >&2; exit 1; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
if [ -z "$run" ]; then
  run="$scratch/cmp"
  build/sdsgsm -q compare --attacks ifgsm,mifgsm,sdsgsm --count "$count" --out "$run"
fi
# The page of the current build (a folder's own report.html may come from an older one).
build/sdsgsm report "$run" --out "$scratch/report.html"
HOME="$scratch" chromium --headless --disable-gpu --no-sandbox --no-first-run --disable-extensions --hide-scrollbars \
  --window-size=1360,1480 --screenshot="$scratch/shot.png" "file://$scratch/report.html" 2>/dev/null
mkdir -p docs
if /usr/bin/python3 -c 'import PIL' 2>/dev/null; then
  /usr/bin/python3 -c "
import sys
from PIL import Image
Image.open(sys.argv[1]).convert('RGB').quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(sys.argv[2], optimize=True)
" "$scratch/shot.png" docs/report.png
else
  cp "$scratch/shot.png" docs/report.png
fi
echo "wrote docs/report.png ($(du -k docs/report.png | cut -f1) KB): the report of $run"
