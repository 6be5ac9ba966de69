"""Every attack of the library as an object shaped like torchattacks' and as a function shaped like
adversarial-library's, generated from the registry (`sdsgsm.attack_names()`):

    atk = sdsgsm.PGD(model, eps=8/255, alpha=2/255, steps=10)
    adv = atk(x, y)                      # a tensor on x's device, of x's dtype
    atk.last_result["success"]           # the per-image outcome of that call

    adv = sdsgsm.attacks.ddn(model, x, y, steps=100)

The options are the CLI's flags with '-' written '_' (`sdsgsm.option_names()`), checked when the
object is made. The model is prepared once per object (per model for the functions): a plain
nn.Module is scripted, else traced with the trace check on; every call attacks its current weights.
The functions keep the prepared models of the last FUNCTION_CACHE_SIZE (8) models they were given.
"""
import collections

import torch

from . import _sdsgsm
from ._prepare import PreparedModel
from ._sdsgsm import Error

# torchattacks' class names where it has the attack; the library's names otherwise.
CLASS_NAMES = {
    "fgsm": "FGSM", "ifgsm": "BIM", "mifgsm": "MIFGSM", "nifgsm": "NIFGSM", "pgd": "PGD", "sdsgsm": "SDSGSM",
    "sd-ifgsm": "SDIFGSM", "sgsm": "SGSM", "deepfool": "DeepFool", "cw": "CW", "ddn": "DDN", "fmn": "FMN",
    "apgd-ce": "APGD", "apgd-dlr": "APGDDLR", "apgd-t": "APGDT", "square": "Square",
}


def class_name(attack):
    """The class an attack of the registry is generated as: torchattacks' name where it has one."""
    return CLASS_NAMES.get(attack) or "".join(p.upper() for p in attack.replace("_", "-").split("-"))


def function_name(attack):
    return attack.replace("-", "_")


class Attack:
    """An attack on one model: `atk(x, y)` returns the adversarial images (x's device and dtype).

    model: an nn.Module or torch.jit.ScriptModule giving logits for images in [0,1]; with mean
    and std, the model takes normalised images ((x - mean) / std per channel), as torchattacks'
    set_normalization_used. exact=True runs the model as PyTorch runs it (not frozen, its own
    memory layout): adversarials equal an eager loop's bit for bit, at the eager loop's speed; by
    default the fast path (a frozen copy on channels-last input). metrics=True computes the run's metrics (l2, linf, l0, ssim, psnr,
    float and 8-bit) and summary into `last_result` (slower); otherwise `last_result` holds the
    attack's outcome: success, iterations, forward_passes, backward_passes, clean_pred, adv_pred,
    target. Other keywords are the attack's options (`sdsgsm.option_names()`).
    """

    attack = None  # the registry's name, set on each generated class

    def __init__(self, model, mean=None, std=None, metrics=False, exact=False, **options):
        if "steps" in options and options["steps"] is None:
            del options["steps"]
        _sdsgsm.check_attack(self.attack, dict(options))
        self.options = options
        self.metrics = bool(metrics)
        self._prepared = PreparedModel(model, mean, std, exact)
        self.last_result = None

    @property
    def model(self):
        return self._prepared.model

    def set_normalization_used(self, mean, std):
        """The normalisation the model expects outside it (torchattacks' method of that name)."""
        self._prepared = PreparedModel(self._prepared.model, mean, std, self._prepared.exact)

    # Target modes, as torchattacks names them.
    @property
    def targeted(self):
        return self.options.get("targeted", "none") not in ("none", None)

    def set_mode_default(self):
        self.options.pop("targeted", None)
        self.options.pop("target_label", None)

    def set_mode_targeted_least_likely(self):
        self._set_targeted("least-likely")

    def set_mode_targeted_random(self):
        self._set_targeted("random")

    def set_mode_targeted_by_label(self, label):
        """Every image towards class `label`; per-image targets: `atk(x, y, target=t)`."""
        self._set_targeted("given", target_label=label)

    def _set_targeted(self, mode, **extra):
        options = dict(self.options, targeted=mode, **extra)
        _sdsgsm.check_attack(self.attack, dict(options))
        self.options = options

    def __call__(self, x, y, target=None):
        return self.forward(x, y, target)

    def forward(self, x, y, target=None):
        """The adversarials of x (float N x C x H x W in [0,1]) with labels y; `target` (int64 N,
        optional) attacks towards a class per image."""
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise Error(f"sdsgsm.{type(self).__name__}: x and y must be tensors "
                        f"(got {type(x).__name__} and {type(y).__name__})")
        if target is None:
            r = self._run(x, y, self.options)
        else:
            r = self._run_towards(x, y, torch.as_tensor(target).reshape(-1))
        self.last_result = r
        return r["adversarial"].to(device=x.device, dtype=x.dtype if x.is_floating_point() else torch.float32)

    def _run(self, x, y, options, sample_ids=None):
        handle = self._prepared.handle_for(x)
        r = _sdsgsm.attack(handle, x, y, self.attack, self._prepared.name, options, self.metrics, sample_ids)
        return {k: (v.to(x.device) if isinstance(v, torch.Tensor) else v) for k, v in r.items()}

    def _run_towards(self, x, y, target):
        """Per-image targets: each target class's images attacked towards it with their own
        sample ids (offset + position), so every image gets what a single call would give it."""
        if target.numel() != x.shape[0]:
            raise Error(f"target must hold one class per image ({x.shape[0]}), got {target.numel()}")
        if self.metrics:
            raise Error("per-image targets are attacked without metrics (metrics=False)")
        target = target.to(torch.int64).cpu()
        ids = torch.arange(x.shape[0], dtype=torch.int64) + int(self.options.get("offset", 0))
        out = {}
        for t in torch.unique(target).tolist():
            rows = (target == t).nonzero().flatten()
            o = dict(self.options, targeted="given", target_label=int(t))
            r = self._run(x[rows.to(x.device)], y[rows.to(y.device)], o, ids[rows])
            for k, v in r.items():
                if isinstance(v, torch.Tensor) and v.dim() >= 1:
                    if k not in out:
                        out[k] = torch.empty((x.shape[0],) + tuple(v.shape[1:]), dtype=v.dtype, device=v.device)
                    out[k][rows.to(v.device)] = v
        return out

    def __repr__(self):
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}(model={self._prepared.name}{', ' if options else ''}{options})"


# The functions' prepared models, newest last: a model's entry is found by identity; the oldest
# goes beyond FUNCTION_CACHE_SIZE models (a scripted module keeps its nn.Module alive, so entries
# for every model ever attacked would keep them all).
FUNCTION_CACHE_SIZE = 8
_function_cache = collections.OrderedDict()


def _prepared_for(model, mean, std, exact=False):
    """The functions' prepared model: one per model object, normalisation and mode."""
    if not isinstance(model, torch.nn.Module):
        return PreparedModel(model, mean, std, exact)  # raises the model error
    norm = None if mean is None else (tuple(torch.as_tensor(mean).flatten().tolist()),
                                      tuple(torch.as_tensor(std).flatten().tolist()))
    key = (id(model), norm, bool(exact))
    entry = _function_cache.get(key)
    if entry is None or entry.model is not model:
        entry = PreparedModel(model, mean, std, exact)
        _function_cache[key] = entry
    _function_cache.move_to_end(key)
    while len(_function_cache) > FUNCTION_CACHE_SIZE:
        _function_cache.popitem(last=False)
    return entry


def _make_function(cls):
    def run(model, x, y, mean=None, std=None, return_result=False, target=None, exact=False, **options):
        atk = cls.__new__(cls)
        Attack.__init__(atk, model, mean, std, metrics=return_result, exact=exact, **options)
        atk._prepared = _prepared_for(model, mean, std, exact)
        adv = atk(x, y, target=target)
        return (adv, atk.last_result) if return_result else adv

    run.__name__ = run.__qualname__ = function_name(cls.attack)
    run.__doc__ = (f"{cls.__doc__.splitlines()[0]}\n\n    adv = sdsgsm.attacks.{run.__name__}(model, x, y, **options); "
                   f"return_result=True gives (adv, result) with the metrics. The model is prepared once "
                   f"per model object.")
    return run


CLASSES = {}
FUNCTIONS = {}
for _name in _sdsgsm.attack_names():
    _cls = type(class_name(_name), (Attack,), {
        "attack": _name,
        "__doc__": f"{_name}: `atk = sdsgsm.{class_name(_name)}(model, **options); adv = atk(x, y)`.\n\n"
                   + Attack.__doc__,
    })
    CLASSES[_cls.__name__] = _cls
    FUNCTIONS[function_name(_name)] = _make_function(_cls)
    globals()[_cls.__name__] = _cls
    globals()[function_name(_name)] = FUNCTIONS[function_name(_name)]

__all__ = ["Attack"] + list(CLASSES) + list(FUNCTIONS)
