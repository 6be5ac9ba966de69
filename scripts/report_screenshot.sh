#!/usr/bin/env bash
# Writes docs/report.png, the README's picture of the HTML report: the page of a reproduce folder,
# which leads with its findings (the paper's claims beside ours, then the frontier), rebuilt by the
# current build and screenshot at its top by headless chromium (Debian's `chromium`), reduced to a
# palette PNG when python3-pil is there (smaller file).
#   scripts/report_screenshot.sh [REPRODUCE_DIR]     (default: runs/reproduce, written by
#   `sdsgsm reproduce --data data/cifar10 --out runs/reproduce`)
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/reproduce}
command -v chromium >/dev/null 2>&1 || { echo "report_screenshot: chromium is missing (apt-get install chromium)" >&2; exit 1; }
[ -x build/sdsgsm ] || { echo "report_screenshot: build/sdsgsm is missing (scripts/setup.sh sdsgsm_cli)" >&2; exit 1; }
[ -f "$run/results.json" ] || {
  echo "report_screenshot: '$run' is not a reproduce folder (no results.json); run" \
    "'build/sdsgsm reproduce --data data/cifar10 --out $run' first" >&2
  exit 1
}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
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
