#!/usr/bin/env python3
"""`sdsgsm robust --ensemble standard` beside AutoAttack's own standard version, same weights, same
images, same run: robust accuracy after each attack, the images each leaves robust, and each
attack's time.

AutoAttack is not part of this project and is never run by its tests or CI. Point --autoattack at a
checkout of https://github.com/fra31/auto-attack (the folder that holds the `autoattack` package);
it runs here with Debian's python3-torch on the TorchScript file the CLI attacks (`sdsgsm export
--model resnet20-at --out /tmp/resnet20-at-script.pt` writes one).

    /usr/bin/python3 bench/autoattack_compare.py --autoattack /path/to/auto-attack \
        --model /tmp/resnet20-at-script.pt --count 1000 --out /tmp/aa-compare

`--norm 2` or `--norm 1` (with an --eps in that norm) compares the l2 or l1 standard version.

Writes OUT/compare.json and OUT/compare.md, and prints the table.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

ORDER = ["apgd-ce", "apgd-t", "fab-t", "square"]
LABEL = {"apgd-ce": "APGD-CE", "apgd-t": "APGD-T", "fab-t": "FAB-T", "square": "Square"}
AA_NORM = {"inf": "Linf", "2": "L2", "1": "L1"}
THREAT = {"inf": "l_inf", "2": "l2", "1": "l1"}


def cifar_test(folder, offset, count):
    raw = np.fromfile(Path(folder) / "test_batch.bin", dtype=np.uint8)
    if raw.size != 10000 * 3073:
        sys.exit(f"autoattack_compare: {folder}/test_batch.bin is not a CIFAR-10 test batch")
    rows = raw.reshape(10000, 3073)[offset:offset + count]
    y = torch.from_numpy(rows[:, 0].astype(np.int64))
    x = torch.from_numpy(rows[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
    return x, y


class Wrapped(torch.nn.Module):
    """AutoAttack hooks into nn.Module children in its dynamic-model check: give it one."""

    def __init__(self, scripted):
        super().__init__()
        self.net = scripted

    def forward(self, x):
        return self.net(x)


class Tee:
    """Keeps AutoAttack's log lines (with their cumulative times) while printing them."""

    def __init__(self):
        self.lines = []

    def log(self, s):
        print(s, flush=True)
        self.lines.append(str(s))


def run_autoattack(args, x, y):
    sys.path.insert(0, args.autoattack)
    from autoattack import AutoAttack  # noqa: E402  (the checkout given on the command line)

    model = Wrapped(torch.jit.load(args.model, map_location="cpu")).eval()
    aa = AutoAttack(model, norm=AA_NORM[args.norm], eps=args.eps, version="standard", device="cpu", seed=0)
    tee = Tee()
    aa.logger = tee
    for a in (aa.apgd, aa.apgd_targeted):
        a.logger = tee
    t0 = time.time()
    _, y_adv = aa.run_standard_evaluation(x, y, bs=args.aa_batch_size, return_labels=True)
    total = time.time() - t0
    after, cumulative = {}, {}
    for line in tee.lines:
        if line.startswith("robust accuracy after "):
            name = line.split()[3].rstrip(":").lower()
            after[name] = float(line.split()[4].rstrip("%")) / 100
            cumulative[name] = float(line.split("total time ")[1].split()[0])
    seconds, prev = {}, 0.0
    for name in ORDER:
        if name in cumulative:
            seconds[name] = cumulative[name] - prev
            prev = cumulative[name]
    robust = (y_adv == y).numpy()
    return {"robust": robust, "after": after, "seconds": seconds, "total_seconds": total}


def run_ours(args):
    out = Path(args.out) / "sdsgsm"
    cmd = [args.sdsgsm, "robust", "--model", args.model, "--data", args.data, "--count", str(args.count),
           "--offset", str(args.offset), "--eps", args.eps_text, "--norm", args.norm, "--ensemble", "standard",
           "--threads", str(args.threads), "--out", str(out)]
    if out.exists():
        shutil.rmtree(out)
    print("+", " ".join(cmd), flush=True)
    t0 = time.time()
    subprocess.run(cmd, check=True)
    total = time.time() - t0
    res = json.loads((out / "robust.json").read_text())
    timing = json.loads((out / "timing.json").read_text())
    robust = np.zeros(args.count, dtype=bool)
    with open(out / "robust.csv") as f:
        next(f)
        for row in f:
            index, _, _, fooled_by = row.strip().split(",")
            robust[int(index) - args.offset] = fooled_by == "robust"
    after, n = {}, args.count
    left = res["clean_correct"]
    for stage in res["attacks"]:
        left -= stage["fooled"]
        after[stage["attack"]] = left / n
    return {"robust": robust, "after": after, "seconds": dict(timing["attacks"]), "total_seconds": total,
            "clean": res["clean_accuracy"]}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--autoattack", required=True, help="folder holding AutoAttack's `autoattack` package")
    p.add_argument("--model", required=True, help="TorchScript model taking [0,1] images (sdsgsm export)")
    p.add_argument("--data", default="data/cifar10", help="CIFAR-10 binary folder")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--eps", dest="eps_text", default="8/255")
    p.add_argument("--norm", choices=sorted(AA_NORM), default="inf", help="inf, 2 or 1 (AutoAttack's Linf, L2, L1)")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--aa-batch-size", type=int, default=250, help="AutoAttack's bs (its default: 250)")
    p.add_argument("--sdsgsm", default="build/sdsgsm")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    args.eps = float(Fraction(args.eps_text))
    torch.set_num_threads(args.threads)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    x, y = cifar_test(args.data, args.offset, args.count)

    ours = run_ours(args)
    theirs = run_autoattack(args, x, y)

    both = int((ours["robust"] & theirs["robust"]).sum())
    only_ours = int((ours["robust"] & ~theirs["robust"]).sum())
    only_theirs = int((~ours["robust"] & theirs["robust"]).sum())
    rows = []
    for name in ORDER:
        s, t = ours["seconds"].get(name), theirs["seconds"].get(name)
        rows.append({"attack": name, "sdsgsm_after": ours["after"].get(name), "autoattack_after": theirs["after"].get(name),
                     "sdsgsm_seconds": s, "autoattack_seconds": t, "speed_ratio": (t / s) if s and t else None})
    result = {
        "model": args.model, "images": args.count, "offset": args.offset, "eps": args.eps_text, "norm": args.norm,
        "threads": args.threads, "torch": torch.__version__,
        "clean_accuracy": ours["clean"],
        "robust_accuracy": {"sdsgsm": float(ours["robust"].mean()), "autoattack": float(theirs["robust"].mean())},
        "robust_images": {"both": both, "only_sdsgsm": only_ours, "only_autoattack": only_theirs},
        "attacks": rows,
        "total_seconds": {"sdsgsm": ours["total_seconds"], "autoattack": theirs["total_seconds"]},
    }
    (Path(args.out) / "compare.json").write_text(json.dumps(result, indent=2) + "\n")

    def pct(v):
        return "" if v is None else f"{100 * v:.2f}%"

    def sec(v):
        return "" if v is None else f"{v:.1f}"

    md = [f"`sdsgsm robust --ensemble standard` and AutoAttack's standard version, {args.model}, "
          f"the first {args.count} test images from {args.offset}, {THREAT[args.norm]} {args.eps_text}, {args.threads} threads, "
          f"torch {torch.__version__}, same run",
          "",
          "| attack | robust after (sdsgsm) | robust after (AutoAttack) | sdsgsm s | AutoAttack s | speed |",
          "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        ratio = "" if r["speed_ratio"] is None else f"{r['speed_ratio']:.2f}x"
        md.append(f"| {LABEL[r['attack']]} | {pct(r['sdsgsm_after'])} | {pct(r['autoattack_after'])} | "
                  f"{sec(r['sdsgsm_seconds'])} | {sec(r['autoattack_seconds'])} | {ratio} |")
    md += ["",
           f"robust accuracy: sdsgsm {pct(result['robust_accuracy']['sdsgsm'])}, "
           f"AutoAttack {pct(result['robust_accuracy']['autoattack'])}; "
           f"robust in both {both}, only in sdsgsm's {only_ours}, only in AutoAttack's {only_theirs}",
           f"whole command: sdsgsm {ours['total_seconds']:.1f} s (with its masking checks), "
           f"AutoAttack {theirs['total_seconds']:.1f} s"]
    text = "\n".join(md) + "\n"
    (Path(args.out) / "compare.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
