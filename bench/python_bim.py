#!/usr/bin/env python3
"""sdsgsm.BIM from Python against an eager torchattacks-style BIM loop on the same plain nn.Module
ResNet-20 (the zoo's network rebuilt in PyTorch, the shipped weights loaded from `sdsgsm export`),
the same images, in the same process and run, rounds alternating between the sides.

    PYTHONPATH=build/python /usr/bin/python3 bench/python_bim.py --images 256 --rounds 2

Two settings, each side timed on every image per round, median img/s reported:
- fixed weights: `atk = sdsgsm.BIM(model, eps=8/255, alpha=2/255, steps=10)` made once, `atk(x, y)`
  per batch; the first call (scripting, the library's frozen copy, one batch) is timed apart.
- training loop: the weights change in place before every batch (as an optimizer step does), so
  sdsgsm remakes its frozen copy on every call; the change itself is not timed on either side.
- exact: fixed weights, the object made with exact=True (the model run as PyTorch runs it, not
  frozen), whose adversarials equal the eager loop's bit for bit.
Parity: the share of pixels of identical value between the two sides' adversarials, and each
side's ASR over the images the model classifies correctly.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from reference_eager import eager_from_export  # noqa: E402 - the network rebuilt in PyTorch

import sdsgsm  # noqa: E402


def eager_bim(model, x, y, eps, alpha, steps):
    """torchattacks' BIM: steps of alpha * sign(grad) kept within eps of x and within [0,1]."""
    adv = x.clone().detach()
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = F.cross_entropy(model(adv), y)
        grad = torch.autograd.grad(loss, adv)[0]
        adv = adv.detach() + alpha * grad.sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1).detach()
    return adv


def nudge(model, k):
    """An in-place change of every weight, as an optimizer step makes (deterministic)."""
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1 + 1e-4 * ((k % 3) - 1))


def run(side, model, x, y, batch, atk, args, training):
    advs, t = [], 0.0
    for k, i in enumerate(range(0, x.shape[0], batch)):
        if training:
            nudge(model, k)
        xb, yb = x[i:i + batch], y[i:i + batch]
        t0 = time.perf_counter()
        adv = atk(xb, yb) if side == "sdsgsm" else eager_bim(model, xb, yb, args.eps, args.alpha, args.steps)
        t += time.perf_counter() - t0
        advs.append(adv)
    return x.shape[0] / t, torch.cat(advs)


def asr(model, x, adv, y):
    with torch.no_grad():
        correct = model(x).argmax(1) == y
        fooled = (model(adv).argmax(1) != y) & correct
    return fooled.sum().item() / max(1, correct.sum().item())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "sdsgsm"))
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "cifar10"))
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--settings", default="fixed,training,exact", help="comma-separated: fixed, training, exact")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    args.eps, args.alpha, args.steps = 8 / 255, 2 / 255, 10
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "resnet20-script.pt")
        subprocess.run([args.binary, "-q", "export", "--model", "resnet20", "--out", path], check=True)
        model, _ = eager_from_export(path, 20)
    x, y = sdsgsm.load_data(args.data, count=args.images)
    out = {"images": args.images, "batch": args.batch, "threads": args.threads, "rounds": args.rounds}
    for setting in args.settings.split(","):
        for p in model.parameters():
            p.requires_grad_(setting == "training")  # a training loop's parameters take gradients
        atk = sdsgsm.BIM(model, eps=args.eps, alpha=args.alpha, steps=args.steps, batch_size=args.batch,
                         threads=args.threads, exact=setting == "exact")
        t0 = time.perf_counter()
        atk(x[:args.batch], y[:args.batch])
        first = time.perf_counter() - t0
        state = {k: v.clone() for k, v in model.state_dict().items()}
        speeds = {"sdsgsm": [], "eager": []}
        advs = {}
        for _ in range(args.rounds):
            for side in ("eager", "sdsgsm"):
                model.load_state_dict(state)  # both sides start from the same weights each round
                ips, advs[side] = run(side, model, x, y, args.batch, atk, args, setting == "training")
                speeds[side].append(ips)
        model.load_state_dict(state)
        same = (advs["sdsgsm"] == advs["eager"]).float().mean().item()
        med = {side: statistics.median(v) for side, v in speeds.items()}
        out[setting] = {
            "first_call_seconds": first, "prepare_seconds": atk._prepared.prepare_seconds,
            "img_per_s": speeds, "median_img_per_s": med, "speedup": med["sdsgsm"] / med["eager"],
            "identical_pixels": same,
            "asr": {"sdsgsm": asr(model, x, advs["sdsgsm"], y), "eager": asr(model, x, advs["eager"], y)}
            if setting != "training" else None,
        }
        o = out[setting]
        print(f"{setting:8s}: sdsgsm.BIM {med['sdsgsm']:7.1f} img/s, eager BIM {med['eager']:7.1f} img/s, "
              f"{o['speedup']:.2f}x; first call {first:.2f} s (scripting {o['prepare_seconds']:.2f} s); "
              f"identical pixels {same:.2%}" + (f"; ASR {o['asr']['sdsgsm']:.2%} vs {o['asr']['eager']:.2%}"
                                                 if o["asr"] else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
