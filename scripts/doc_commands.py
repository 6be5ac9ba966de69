#!/usr/bin/env python3
"""Runs the documentation's commands, so that a renamed flag breaks CI rather than the reader.

It extracts the fenced blocks marked runnable from README.md, docs/own-model.md and docs/python.md
(when present) and runs them in order, in a scratch folder that links build/, data/, models/,
examples/ and bench/ of the repository (so the commands read as if run from its root, and what
they write stays in the scratch folder). A block is runnable when an HTML comment right above it
(blank lines and other comments may come between) says `doc-test`:

    <!-- doc-test -->                                 run the block as written
    <!-- doc-test replace 'TEXT' 'OTHER' ... -->      run it with TEXT replaced by OTHER (pairs, quoted
                                                      as a shell would): fewer images, no download
    <!-- doc-test fixture=NAME -->                    make the fixture NAME first (see FIXTURES)

```sh and ```bash blocks run with `bash -eo pipefail`, ```python blocks with Debian's python3 and
PYTHONPATH=build/python. The first failure stops the run with the block's file and line.

    python3 scripts/doc_commands.py            # run them all (about a minute or two on 2 cores)
    python3 scripts/doc_commands.py --list     # show what would run, with the replacements made
    python3 scripts/doc_commands.py --keep     # keep the scratch folder and say where it is
"""
import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md", "docs/own-model.md", "docs/python.md"]
LINKED = ["build", "data", "models", "examples", "bench"]
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
FENCE = re.compile(r"^```(\w+)?(.*)$")
COMMENT = re.compile(r"^<!--(.*?)-->\s*$")


class Block:
    def __init__(self, page, line, lang, code, directives):
        self.page, self.line, self.lang, self.code = page, line, lang, code
        self.replace, self.fixtures = [], []
        for d in directives:
            words = shlex.split(d)
            if not words or words[0] != "doc-test":
                continue
            rest = words[1:]
            while rest:
                w = rest.pop(0)
                if w.startswith("fixture="):
                    self.fixtures.append(w.split("=", 1)[1])
                elif w == "replace":
                    while len(rest) >= 2 and not rest[0].startswith("fixture=") and rest[0] != "replace":
                        self.replace.append((rest.pop(0), rest.pop(0)))
                else:
                    raise SystemExit(f"doc_commands: {page}:{line}: unknown doc-test word '{w}'")

    def where(self):
        return f"{self.page}:{self.line} (```{self.lang} block)"

    def text(self):
        code = self.code
        for old, new in self.replace:
            if old not in code:
                raise SystemExit(f"doc_commands: {self.where()}: the replacement's text {old!r} is not in the block")
            code = code.replace(old, new)
        return code


def blocks_of(page):
    path = os.path.join(ROOT, page)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = f.read().split("\n")
    out, pending, i = [], [], 0
    while i < len(lines):
        line = lines[i]
        m = COMMENT.match(line.strip())
        fence = FENCE.match(line)
        if m:
            pending.append(m.group(1).strip())
        elif fence:
            lang = fence.group(1) or ""
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            if any(d.split()[:1] == ["doc-test"] for d in pending if d):
                if lang not in ("sh", "bash", "python"):
                    raise SystemExit(f"doc_commands: {page}:{i + 1}: a doc-test block must be sh, bash or python")
                out.append(Block(page, i + 1, lang, "\n".join(lines[i + 1:j]) + "\n", pending))
            pending = []
            i = j
        elif line.strip():
            pending = []
        i += 1
    return out


# --- fixtures --------------------------------------------------------------------------------------

def fixture_my_images(work, env):
    """my_images/CLASS/NNN.png: 8 CIFAR-10 test images, each in the folder of the class that the
    exported model resnet18.pt (with classes.txt, both made by the block before) predicts for it,
    so the images are classified correctly whatever the model's weights (names two classes share
    are skipped, as they would be ambiguous). Made once per scratch folder."""
    if os.path.isdir(os.path.join(work, "my_images")):
        return "fixture my_images: already there"
    code = r'''
import os, sys, collections
import numpy as np, torch
from PIL import Image
from torchvision import transforms as T
work = sys.argv[1]
names = open(os.path.join(work, "classes.txt")).read().split("\n")
count = collections.Counter(names)
model = torch.jit.load(os.path.join(work, "resnet18.pt")).eval()
raw = np.fromfile(os.path.join(work, "data", "cifar10", "test_batch.bin"), dtype=np.uint8).reshape(-1, 3073)[:32]
prep = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor()])
made = 0
for i, row in enumerate(raw):
    img = Image.fromarray(row[1:].reshape(3, 32, 32).transpose(1, 2, 0))
    with torch.no_grad():
        c = int(model(prep(img).unsqueeze(0)).argmax(1))
    name = names[c]
    if count[name] != 1 or "/" in name:
        continue
    os.makedirs(os.path.join(work, "my_images", name), exist_ok=True)
    img.save(os.path.join(work, "my_images", name, f"{i:03d}.png"))
    made += 1
    if made == 8:
        break
print(f"fixture my_images: {made} images in {len(os.listdir(os.path.join(work, 'my_images')))} class folders")
'''
    r = subprocess.run([PYTHON, "-c", code, work], cwd=work, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip() or r.stdout.strip())
    return r.stdout.strip()


FIXTURES = {"my_images": fixture_my_images}


# --- running ---------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--list", action="store_true", help="print the blocks (replacements made) and run nothing")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per block")
    ap.add_argument("pages", nargs="*", default=PAGES, help="Markdown files, relative to the repository root")
    a = ap.parse_args()

    blocks = [b for p in a.pages for b in blocks_of(p)]
    if a.list:
        for b in blocks:
            fx = f" [fixture {', '.join(b.fixtures)}]" if b.fixtures else ""
            print(f"--- {b.where()}{fx}\n{b.text()}")
        return 0
    if not blocks:
        print("doc_commands: no doc-test block found", file=sys.stderr)
        return 1
    for need in ("build/sdsgsm", "build/python", "data/cifar10/test_batch.bin"):
        if not os.path.exists(os.path.join(ROOT, need)):
            print(f"doc_commands: {need} is missing: run `bash scripts/test.sh` first", file=sys.stderr)
            return 2

    work = tempfile.mkdtemp(prefix="sdsgsm-doc-")
    for name in LINKED:
        os.symlink(os.path.join(ROOT, name), os.path.join(work, name))
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "build", "python"))
    t_all = time.monotonic()
    failed = None
    for b in blocks:
        t0 = time.monotonic()
        try:
            for fx in b.fixtures:
                print(f"doc_commands: {FIXTURES[fx](work, env)}")
        except KeyError as e:
            failed = (b, f"unknown fixture {e}")
            break
        except RuntimeError as e:
            failed = (b, f"fixture failed: {e}")
            break
        cmd = ["bash", "-eo", "pipefail", "-c", b.text()] if b.lang in ("sh", "bash") else [PYTHON, "-c", b.text()]
        try:
            r = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=a.timeout)
        except subprocess.TimeoutExpired:
            failed = (b, f"timed out after {a.timeout} s")
            break
        if r.returncode != 0:
            tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
            failed = (b, f"exit {r.returncode}:\n{tail}")
            break
        print(f"doc_commands: ok {b.where()} ({time.monotonic() - t0:.1f} s)")
    if failed:
        b, why = failed
        print(f"doc_commands: FAILED {b.where()}: {why}", file=sys.stderr)
        print(f"doc_commands: scratch folder kept: {work}", file=sys.stderr)
        return 1
    if a.keep:
        print(f"doc_commands: scratch folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(f"doc_commands: {len(blocks)} blocks ran in {time.monotonic() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
