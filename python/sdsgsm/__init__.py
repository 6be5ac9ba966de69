"""sdsgsm from Python: the C++ toolkit's attacks and metrics on PyTorch tensors and models.

    import sdsgsm
    model = sdsgsm.load_model("resnet20")                  # a torch.jit.ScriptModule
    x, y = sdsgsm.load_data("data/cifar10", count=64)      # float N x 3 x 32 x 32 in [0,1], int64
    r = sdsgsm.attack(model, x, y, attack="sdsgsm", eps=8/255)
    r["adversarial"], r["success"], r["ssim"]

    adv = sdsgsm.PGD(model, eps=8/255, alpha=2/255, steps=10)(x, y)   # torchattacks' shape
    adv = sdsgsm.attacks.ddn(model, x, y, steps=100)                   # adversarial-library's

Attacks and options are the command-line tool's (`sdsgsm attack --help`), with '-' written '_';
the results equal `sdsgsm attack --model FILE` on the same images. Errors are `sdsgsm.Error` (a
ValueError) with the tool's one-line message. The library is Debian's LibTorch, the one
python3-torch runs on: tensors and modules are shared, not copied between two torches.
"""
import os
import tempfile

import torch  # first: loads the LibTorch the extension links, and torch's Python bindings

from . import _sdsgsm
from . import attacks
from ._sdsgsm import Error
from .attacks import *  # noqa: F401,F403 - the attack classes: sdsgsm.PGD, sdsgsm.BIM, ...
from .commands import DataSource, batches, compare, open_data, report, robust, transfer

__all__ = ["DataSource", "Error", "attack", "attack_names", "attacks", "batches", "compare", "devices",
           "load_data", "load_model", "metrics", "open_data", "option_names", "report", "robust", "transfer"] + list(attacks.CLASSES)


def devices():
    """The device types this build attacks on: "cpu", and "cuda" where its LibTorch has CUDA and
    a GPU is present. Tensors on another device raise sdsgsm.Error."""
    return _sdsgsm.devices()


def attack_names():
    """The attacks `attack` knows (the CLI's --attack names)."""
    return _sdsgsm.attack_names()


def option_names():
    """The keyword options `attack` takes: the CLI's flags with '-' written '_'."""
    return _sdsgsm.option_names()


def load_model(name_or_path):
    """A zoo model (e.g. "resnet20", `sdsgsm models` lists them), a weights file written by
    `sdsgsm train`, or any TorchScript file, as a torch.jit.ScriptModule in evaluation mode. Resolved
    and checked as the CLI's --model is: a missing or damaged file raises sdsgsm.Error."""
    name_or_path = os.fspath(name_or_path)
    with tempfile.TemporaryDirectory(prefix="sdsgsm-") as tmp:
        module = torch.jit.load(_sdsgsm.model_file(name_or_path, tmp), map_location="cpu")
    module.eval()
    module._sdsgsm_name = name_or_path  # errors while attacking name the model as the CLI does
    return module


def load_data(path="data/cifar10", split="test", offset=0, count=-1, classes=None, resize=0, crop=0):
    """Images and labels as the CLI's data flags read them (see open_data: a CIFAR-10 binary folder
    or file, an image folder, a CSV list; classes, resize, crop), all at once: (x float N x C x H x W
    in [0,1], y int64 N). For a large data set iterate over sdsgsm.batches(...) instead."""
    source = open_data(path, split, offset, count, classes, resize, crop)
    return source.read(0, len(source))


def attack(model, x, y, attack="sdsgsm", eps=8 / 255, **options):
    """Attacks images x (float N x C x H x W in [0,1]) with labels y (int64 N) on `model` (a
    torch.jit.ScriptModule; a plain nn.Module is scripted, else traced with the trace check on,
    once per module object; every call attacks the module's current weights). Returns a dict of
    tensors, one row per image: adversarial (float32 N x C x H x W), success (bool), iterations,
    label, target, clean_pred, adv_pred, index, the metrics l2, linf, l0, ssim, psnr (float64), and
    the same for the adversarials rounded to 8-bit pixels (adv_pred_8bit, success_8bit, l2_8bit,
    ...); also summary (the figures of metrics.json: ASR, means, over the originally correct
    images), report (the comparison table's row, for sdsgsm.compare), config, warnings (the
    evaluation checks'), seconds and ddi_seconds.

    `attack` is one of attack_names(); options are the CLI's flags with '-' written '_' (see
    option_names(), and the list below, written from the options' declarations): the attack's
    options (lambda also as lambda_), and batch_size (128), offset (the data-set index of x[0],
    which seeds per-sample randomness as --offset does), threads (default all cores; the caller's
    torch thread count is restored afterwards) and progress (a progress bar on stderr). Numbers
    also take fractions as text: "8/255". None leaves an option that may be unset to the attack's
    default. Python threads keep running while the attack runs (it releases the GIL).
    """
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise Error(f"sdsgsm.attack: x and y must be tensors (got {type(x).__name__} and {type(y).__name__})")
    options = dict(options, eps=eps)
    _sdsgsm.check_attack(attack, dict(options))
    prepared = attacks._prepared_for(model, None, None)
    return _sdsgsm.attack(prepared.handle_for(x), x, y, attack, prepared.name, options)


attack.__doc__ += "\n    Attack options:\n" + "".join(
    f"      {keyword}: {text}\n" for keyword, text in _sdsgsm.option_help())


def metrics(x, x_adv):
    """Per-sample distortion and similarity of x_adv against x (both float N x C x H x W in [0,1]),
    as float64 N-vectors: l2, linf, l0 (fraction of pixels changed), ssim (scikit-image's), psnr
    (dB). The CLI's samples.csv columns of the same names."""
    return _sdsgsm.metrics(x, x_adv)
