#!/usr/bin/env python3
"""A user's own model at real size: a 1000-class torchvision ResNet-18 (random weights, seeded;
Debian's python3-torchvision gives the architecture) exported to TorchScript, on CIFAR-10 test
images upscaled to 224 x 224 PNGs, timed in ONE run against PyTorch eager on the same images and
threads:

  - eager: the textbook FGSM and MI-FGSM loops (bench/reference_eager.py's) on the torch.nn.Module
    itself, the attack loop alone (no metrics, no files);
  - sdsgsm: `sdsgsm attack` whole runs (process wall-clock: start-up, loading, reading, attack,
    8-bit re-evaluation, metrics, writing the run folder) for FGSM, MI-FGSM and SD-SGSM, with the
    phases of its timing.json (attack, DDI, iterations, metrics);
  - peak memory (/usr/bin/time -v, maximum RSS) of FGSM runs on a small and a large image count.

Labels: a random network has no right answers, so each image's label is the eager model's own
prediction (every image is attacked), and the image folder has the model's 1000 classes as folders
c0000..c0999 (most empty). Both sides run 10 steps, eps 8/255, alpha 2/255, no early stop.

    python3 bench/resnet18_224.py --threads 2 --images 32 --batch 16 --memory 100,1000
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import reference_eager  # noqa: E402  (the eager attack loops)


class Normalized(nn.Module):
    """ImageNet normalisation inside the model: sdsgsm's models take images in [0,1]."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


def prepare_model(work):
    """The network (eager) and its TorchScript export, work/model.pt."""
    torch.manual_seed(0)
    model = Normalized(torchvision.models.resnet18(weights=None, num_classes=1000)).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    path = os.path.join(work, "model.pt")
    torch.jit.save(torch.jit.trace(model, torch.rand(2, 3, 224, 224)), path)
    return model, path


def upscaled(data, n):
    """The first n CIFAR-10 test images, bilinearly upscaled to 224 x 224, as uint8."""
    raw = np.fromfile(os.path.join(data, "test_batch.bin"), dtype=np.uint8).reshape(-1, 3073)[:n]
    small = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy())
    big = F.interpolate(small.float(), size=(224, 224), mode="bilinear", align_corners=False)
    return big.round().clamp(0, 255).to(torch.uint8)


def write_folder(folder, u8, labels):
    """The images as PNGs in folders c0000..c0999 (one per class of the model), by label."""
    if os.path.isdir(folder):
        return
    tmp = folder + ".tmp"
    for c in range(1000):
        os.makedirs(os.path.join(tmp, f"c{c:04d}"), exist_ok=True)
    for i in range(u8.shape[0]):
        Image.fromarray(u8[i].permute(1, 2, 0).numpy()).save(os.path.join(tmp, f"c{int(labels[i]):04d}", f"{i:05d}.png"))
    os.rename(tmp, folder)


def eager_seconds(model, attack, x, y, batch):
    fn = reference_eager.EAGER[attack]
    t0 = time.perf_counter()
    for i in range(0, x.shape[0], batch):
        fn(model, x[i:i + batch], y[i:i + batch], 8 / 255)
    return time.perf_counter() - t0


def run_sdsgsm(binary, model, folder, attack, count, batch, threads, out):
    shutil.rmtree(out, ignore_errors=True)
    cmd = ["/usr/bin/time", "-v", binary, "-q", "--threads", str(threads), "attack", "--attack", attack,
           "--model", model, "--data", folder, "--count", str(count), "--batch-size", str(batch), "--eps", "8/255",
           "--steps", "10", "--alpha", "2/255", "--no-early-stop", "--restart", "--out", out]
    if attack == "sdsgsm":
        cmd = cmd[:cmd.index("--alpha")] + cmd[cmd.index("--alpha") + 2:]  # its own step rule
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"sdsgsm failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    rss = next(int(line.split()[-1]) for line in p.stderr.splitlines() if "Maximum resident set size" in line)
    with open(os.path.join(out, "timing.json")) as f:
        timing = json.load(f)
    with open(os.path.join(out, "metrics.json")) as f:
        summary = json.load(f)["summary"]
    return {"wall": wall, "rss_mb": rss / 1024, "timing": timing, "asr": summary["float"]["asr"],
            "ssim": summary["float"].get("ssim_mean", summary["float"].get("ssim"))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "sdsgsm"))
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "cifar10"))
    ap.add_argument("--work", default=os.path.join(ROOT, "runs", "bench-resnet18-224"))
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--memory", default="100,1000", help="image counts of the peak-memory FGSM runs ('' skips)")
    ap.add_argument("--json", help="also write every measurement here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.work, exist_ok=True)
    counts = [int(c) for c in a.memory.split(",") if c]
    model, path = prepare_model(a.work)
    u8 = upscaled(a.data, a.images)
    x = u8.float() / 255
    with torch.no_grad():
        y = torch.cat([model(x[i:i + a.batch]).argmax(1) for i in range(0, a.images, a.batch)])
    folder = os.path.join(a.work, f"images{a.images}-labelled")
    write_folder(folder, u8, y)
    res = {"images": a.images, "batch": a.batch, "threads": a.threads}
    print(f"ResNet-18 (1000 classes, random weights) at 224x224, {a.images} images, batch {a.batch}, "
          f"{a.threads} threads, 10 steps")
    for attack in ("fgsm", "mifgsm", "sdsgsm"):
        eager = eager_seconds(model, attack, x, y, a.batch) if attack in reference_eager.EAGER else None
        r = run_sdsgsm(a.binary, path, folder, attack, a.images, a.batch, a.threads, os.path.join(a.work, attack))
        t = r["timing"]
        res[attack] = {"eager_seconds": eager, **r}
        line = (f"{attack:7s} sdsgsm whole run {r['wall']:7.1f} s (attack {t['attack_seconds']:.1f} s, "
                f"DDI {t['ddi_seconds']:.1f} s, metrics {t['metrics_seconds']:.2f} s), ASR {100 * r['asr']:.1f}%")
        if eager is not None:
            line += f"; eager attack loop {eager:7.1f} s; eager/sdsgsm-whole {eager / r['wall']:.2f}x"
        print(line)
        if attack == "sdsgsm":
            print(f"        DDI / iterations {t['ddi_over_iterations']:.3f}")
    mi = res["mifgsm"]["timing"]
    print(f"metrics / MI-FGSM attack (10 steps): {mi['metrics_seconds'] / mi['attack_seconds']:.3f}")
    mem = {}
    for c in counts:
        # Labels do not change the memory: image i in class i mod 1000.
        folder_c = os.path.join(a.work, f"images{c}")
        write_folder(folder_c, upscaled(a.data, c), torch.arange(c) % 1000)
        r = run_sdsgsm(a.binary, path, folder_c, "fgsm", c, a.batch, a.threads, os.path.join(a.work, f"mem{c}"))
        mem[c] = r["rss_mb"]
        print(f"peak RSS, FGSM on {c} images: {r['rss_mb']:.0f} MB (whole run {r['wall']:.1f} s)")
    if len(counts) == 2:
        print(f"peak RSS {counts[1]} / {counts[0]} images: {mem[counts[1]] / mem[counts[0]]:.3f}")
    res["peak_rss_mb"] = mem
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
