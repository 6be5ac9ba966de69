#!/usr/bin/env python3
"""Speed against a reference measured in the same run: the textbook FGSM, I-FGSM, MI-FGSM and PGD
loops in PyTorch eager (Debian's python3-torch, written the way the most used Python attack library
writes them) against `sdsgsm attack` on the same model, the same images and the same thread count.
Rounds alternate between the sides, so a drift of the machine's speed hits both; the script prints
the median img/s of each side and their ratio.

    python3 bench/reference_eager.py                  # 1,024 test images, 3 rounds, all cores
    python3 bench/reference_eager.py --images 2048 --rounds 5 --threads 2 --json runs/speed.json

The model is the shipped ResNet-20 (`--model`), exported by `sdsgsm export` to TorchScript. The
eager side rebuilds the same network as a torch.nn.Module and loads the exported weights (its logits
are checked against the exported module's); sdsgsm runs both the zoo model itself and the exported
TorchScript file (`--model FILE`, the path every user with their own network takes).

sdsgsm's figure is `images_per_second` from its timing.json: the whole run as the CLI does it
(reading, attacking, the 8-bit re-evaluation, metrics, writing), which is more work than the eager
loop does; the process's start-up and model loading are shown apart.

With the Python module built (build/python, `--python-module`), `sdsgsm.attack` called from this
process on the same tensors and the exported model (sdsgsm.load_model) is timed too: the call's
wall-clock, which includes what the CLI's figure does (the 8-bit re-evaluation, metrics) except
reading and writing files, plus copying and freezing the module.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------------------------------------
# The network, in eager PyTorch: the same CIFAR ResNet as sdsgsm's zoo (option-A shortcuts).

class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride, self.pad = stride, cout - cin

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x
        if self.stride != 1 or self.pad:
            s = F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(y + s)


class ResNet(nn.Module):
    def __init__(self, n, classes=10):
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, 3, 1, 1))
        self.register_buffer("std", torch.ones(1, 3, 1, 1))
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        cin, stages = 16, []
        for width in (16, 32, 64):
            blocks = []
            for b in range(n):
                blocks.append(Block(cin, width, 2 if b == 0 and width != 16 else 1))
                cin = width
            stages.append(nn.Sequential(*blocks))
        self.stage1, self.stage2, self.stage3 = stages
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = F.relu(self.bn(self.conv(x)))
        x = self.stage3(self.stage2(self.stage1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def eager_from_export(path, depth):
    script = torch.jit.load(path).eval()
    flat = {k: v for k, v in script.state_dict().items()}
    net = ResNet((depth - 2) // 6).eval()
    for name, t in net.state_dict().items():
        key = {"mean": "normalize_mean", "std": "normalize_std"}.get(name, name.replace(".", "_"))
        if key not in flat:
            sys.exit(f"reference_eager: the exported model has no '{key}'")
        t.copy_(flat[key].view_as(t))
    for p in net.parameters():
        p.requires_grad_(False)
    return net, script


# --------------------------------------------------------------------------------------------
# The textbook attacks, as short as the algorithms are (untargeted, mean cross-entropy).

def grad_of(model, x, y):
    x = x.clone().detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y)
    return torch.autograd.grad(loss, x)[0]


def fgsm(model, x, y, eps):
    return (x + eps * grad_of(model, x, y).sign()).clamp(0, 1).detach()


def ifgsm(model, x, y, eps, alpha=2 / 255, steps=10, random_start=False):
    adv = x.clone()
    if random_start:
        adv = (adv + torch.empty_like(adv).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        adv = adv + alpha * grad_of(model, adv, y).sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1).detach()
    return adv


def mifgsm(model, x, y, eps, alpha=2 / 255, steps=10, decay=1.0):
    adv, g = x.clone(), torch.zeros_like(x)
    for _ in range(steps):
        grad = grad_of(model, adv, y)
        g = decay * g + grad / grad.abs().mean(dim=(1, 2, 3), keepdim=True)
        adv = adv + alpha * g.sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1).detach()
    return adv


def pgd(model, x, y, eps):
    return ifgsm(model, x, y, eps, random_start=True)


EAGER = {"fgsm": fgsm, "ifgsm": ifgsm, "mifgsm": mifgsm, "pgd": pgd}


def run_eager(model, attack, x, y, correct, batch, eps):
    """img/s of the eager loop over all images (cold: no warm-up), and its ASR over the images
    classified correctly before the attack (as sdsgsm scores it)."""
    fn, fooled = EAGER[attack], 0
    t0 = time.perf_counter()
    for i in range(0, x.shape[0], batch):
        xb, yb = x[i:i + batch], y[i:i + batch]
        adv = fn(model, xb, yb, eps)
        with torch.no_grad():
            fooled += ((model(adv).argmax(1) != yb) & correct[i:i + batch]).sum().item()
    dt = time.perf_counter() - t0
    return x.shape[0] / dt, fooled / max(1, correct.sum().item())


def run_sdsgsm(binary, model, attack, count, batch, threads, extra, data):
    """sdsgsm's images_per_second (timing.json) and the process's wall-clock img/s."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run")
        cmd = [binary, "-q", "--threads", str(threads), "attack", "--attack", attack, "--model", model,
               "--data", data, "--count", str(count), "--batch-size", str(batch), "--no-adversarial",
               "--sheet", "0", "--out", out] + extra
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        with open(os.path.join(out, "timing.json")) as f:
            timing = json.load(f)
        with open(os.path.join(out, "metrics.json")) as f:
            summary = json.load(f)["summary"]
    return timing["images_per_second"], count / wall, summary["float"]["asr"]


def run_python(module, model, attack, x, y, batch, threads, extra):
    """img/s of one `sdsgsm.attack` call from Python on all images, and its ASR."""
    t0 = time.perf_counter()
    r = module.attack(model, x, y, attack=attack, batch_size=batch, threads=threads, **extra)
    ips = x.shape[0] / (time.perf_counter() - t0)
    return ips, ips, r["summary"]["float"]["asr"]


def import_python_module(path):
    """The sdsgsm module from `path`, or None (with the reason printed) when it is not built."""
    if not path:
        return None
    sys.path.insert(0, path)
    try:
        import sdsgsm
        return sdsgsm
    except ImportError as e:
        print(f"reference_eager: no sdsgsm Python module in {path} ({e}); timing the CLI only", file=sys.stderr)
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "sdsgsm"))
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "cifar10"))
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--attacks", default="fgsm,ifgsm,mifgsm,pgd")
    ap.add_argument("--python-module", default=os.path.join(ROOT, "build", "python"),
                    help="folder holding the sdsgsm Python module ('' to skip the Python side)")
    ap.add_argument("--json", help="also write every measurement here")
    a = ap.parse_args()
    if not a.model.startswith("resnet"):
        sys.exit("reference_eager: the eager side rebuilds CIFAR ResNets only (resnet20/32/44/56)")
    torch.set_num_threads(a.threads)
    eps = 8 / 255

    raw = np.fromfile(os.path.join(a.data, "test_batch.bin"), dtype=np.uint8).reshape(-1, 3073)[:a.images]
    y = torch.from_numpy(raw[:, 0].astype(np.int64))
    x = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255)

    work = tempfile.mkdtemp(prefix="sdsgsm-speed-")
    exported = os.path.join(work, f"{a.model}-script.pt")
    subprocess.run([a.binary, "-q", "export", "--model", a.model, "--out", exported], check=True,
                   stdout=subprocess.DEVNULL)
    eager, script = eager_from_export(exported, int(a.model[len("resnet"):]))
    with torch.no_grad():
        d = (eager(x[:256]) - script(x[:256])).abs().max().item()
        correct = eager(x).argmax(1) == y
    if d > 1e-3:
        sys.exit(f"reference_eager: the eager network's logits differ from the export's by {d}")

    py_sdsgsm = import_python_module(a.python_module)
    py_model = py_sdsgsm.load_model(exported) if py_sdsgsm else None
    PY = "sdsgsm.attack from Python"

    def python_case(attack, extra):
        return lambda: run_python(py_sdsgsm, py_model, attack, x, y, a.batch, a.threads, extra)

    # (label, runner) pairs per attack; each runner returns (img/s, extra figure).
    cases = []
    for attack in a.attacks.split(","):
        cases.append((attack, "PyTorch eager", lambda at=attack: run_eager(eager, at, x, y, correct, a.batch, eps)))
        cases.append((attack, "sdsgsm, zoo model",
                      lambda at=attack: run_sdsgsm(a.binary, a.model, at, a.images, a.batch, a.threads, [], a.data)))
        cases.append((attack, "sdsgsm, TorchScript file",
                      lambda at=attack: run_sdsgsm(a.binary, exported, at, a.images, a.batch, a.threads, [], a.data)))
        if py_sdsgsm:
            cases.append((attack, PY, python_case(attack, {})))
    cases.append(("ifgsm early stop", "sdsgsm, zoo model",
                  lambda: run_sdsgsm(a.binary, a.model, "ifgsm", a.images, a.batch, a.threads, ["--early-stop"], a.data)))
    cases.append(("sdsgsm", "sdsgsm, zoo model",
                  lambda: run_sdsgsm(a.binary, a.model, "sdsgsm", a.images, a.batch, a.threads, [], a.data)))
    if py_sdsgsm:
        cases.append(("ifgsm early stop", "sdsgsm, TorchScript file",
                      lambda: run_sdsgsm(a.binary, exported, "ifgsm", a.images, a.batch, a.threads, ["--early-stop"],
                                         a.data)))
        cases.append(("ifgsm early stop", PY, python_case("ifgsm", {"early_stop": True})))
        cases.append(("sdsgsm", "sdsgsm, TorchScript file",
                      lambda: run_sdsgsm(a.binary, exported, "sdsgsm", a.images, a.batch, a.threads, [], a.data)))
        cases.append(("sdsgsm", PY, python_case("sdsgsm", {})))

    results = {}
    for r in range(a.rounds):
        order = cases if r % 2 == 0 else list(reversed(cases))
        for attack, side, fn in order:
            out = fn()
            results.setdefault((attack, side), []).append(out)
            print(f"round {r + 1}: {attack:<17} {side:<25} {out[0]:8.1f} img/s", flush=True)

    def med(key, i=0):
        return statistics.median(v[i] for v in results[key])

    print(f"\n{a.images} CIFAR-10 test images, batch {a.batch}, {a.threads} threads, {a.rounds} alternating rounds "
          f"(medians); PyTorch {torch.__version__}\n")
    print("| attack | side | img/s | ratio to eager | ASR |")
    print("| --- | --- | --- | --- | --- |")
    rows = []
    for attack, side, _ in cases:
        if any(r[0] == attack and r[1] == side for r in rows):
            continue
        ref_key = (attack, "PyTorch eager")
        if attack == "ifgsm early stop":
            ref_key = ("ifgsm", "PyTorch eager")
        if attack == "sdsgsm":
            ref_key = ("mifgsm", "PyTorch eager")
        ratio = med((attack, side)) / med(ref_key) if ref_key in results else float("nan")
        asr = med((attack, side), 1 if side == "PyTorch eager" else 2)  # the same for every round
        rows.append((attack, side, med((attack, side)), ratio, asr))
        ref_note = "" if ref_key[0] == attack else f" (vs eager {ref_key[0]})"
        print(f"| {attack} | {side} | {med((attack, side)):.1f} | {ratio:.2f}x{ref_note} | {100 * asr:.2f}% |")
    if py_sdsgsm:
        print("\nsdsgsm.attack from Python against the CLI on the same TorchScript file (median img/s ratio):")
        for attack, side, *_ in rows:
            if side == PY and (attack, "sdsgsm, TorchScript file") in results:
                print(f"  {attack:<17} {med((attack, side)) / med((attack, 'sdsgsm, TorchScript file')):.2f}x")
    if any(side not in ("PyTorch eager", PY) for _, side, *_ in rows):
        print("\nsdsgsm's process wall-clock img/s (start-up and model loading included), medians:")
        for attack, side, *_ in rows:
            if side not in ("PyTorch eager", PY):
                print(f"  {attack:<17} {side:<25} {med((attack, side), 1):8.1f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"images": a.images, "batch": a.batch, "threads": a.threads, "rounds": a.rounds,
                       "torch": torch.__version__,
                       "runs": [{"attack": k[0], "side": k[1], "measurements": v} for k, v in results.items()],
                       "medians": [{"attack": r[0], "side": r[1], "img_per_s": r[2], "ratio": r[3], "asr": r[4]}
                                   for r in rows]}, f, indent=2)


if __name__ == "__main__":
    main()
