"""A model prepared once for attacks: an nn.Module scripted (or traced, with the trace check on)
once, its normalisation put inside when it is outside (mean/std), and the library's frozen copy
made again only when the module's weights have changed since the last call, so an attack always
attacks the module's current weights and the caller's module is left in the mode it was in."""
import torch

from . import _sdsgsm
from ._sdsgsm import Error


class Normalized(torch.nn.Module):
    """`model` behind (x - mean) / std: images in [0,1] for a model that expects normalised ones."""

    def __init__(self, model, mean, std):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1))
        if self.mean.numel() != self.std.numel() or bool((self.std <= 0).any()):
            raise Error(f"mean and std must have one value per channel and std > 0 (got {mean} and {std})")

    def forward(self, x):
        return self.model((x - self.mean) / self.std)


def first_line(e):
    lines = [s for s in str(e).strip().splitlines() if s.strip()]
    return lines[0].strip() if lines else type(e).__name__


def model_name(model):
    return getattr(model, "_sdsgsm_name", None) or getattr(model, "original_name", None) or type(model).__name__


def script_or_trace(model, example):
    """A ScriptModule as it is; a plain nn.Module scripted, else traced on one image in evaluation
    mode with the trace check on: traced again on other images (the last one, the first one
    inverted), the graphs and outputs must agree, so control flow that depends on the data is an
    error instead of a graph silently fixed to one branch. The module's own mode is put back."""
    if isinstance(model, torch.jit.ScriptModule):
        return model
    if not isinstance(model, torch.nn.Module):
        raise Error(f"model must be a torch.nn.Module or a torch.jit.ScriptModule (got {type(model).__name__})")
    try:
        return torch.jit.script(model)
    except Exception as e:  # noqa: BLE001 - any failure of the compiler: try tracing
        script_error = first_line(e)
    training = model.training
    try:
        model.eval()
        with torch.no_grad():
            first = example[:1].detach().float()
            checks = [(first,), (example[-1:].detach().float(),), (1 - first,)]
            return torch.jit.trace(model, first, check_trace=True, check_inputs=checks)
    except Exception as e:  # noqa: BLE001
        trace_error = first_line(e)
    finally:
        model.train(training)
    inner = model.model if isinstance(model, Normalized) else model
    raise Error(f"model {type(inner).__name__} can be neither scripted (torch.jit.script: {script_error}) "
                f"nor traced (torch.jit.trace with its check: {trace_error}); pass a torch.jit.ScriptModule")


def _state(module):
    """The module's parameters and buffers, as the tensors it holds now."""
    return [t for _, t in module.named_parameters()] + [t for _, t in module.named_buffers()]


class PreparedModel:
    """One model for many attack calls: scripted or traced on the first call, and the library's
    frozen copy remade only when a parameter or buffer changed (in place, as an optimizer step
    does, or replaced by another tensor)."""

    def __init__(self, model, mean=None, std=None, exact=False):
        if not isinstance(model, torch.nn.Module):
            raise Error(f"model must be a torch.nn.Module or a torch.jit.ScriptModule (got {type(model).__name__})")
        if (mean is None) != (std is None):
            raise Error("give both mean and std (the normalisation the model expects outside it), or neither")
        self.model = model
        self.exact = bool(exact)
        self.name = model_name(model)
        self.module = model if mean is None else Normalized(model, mean, std)
        self.script = None
        self.handle = None
        self._ids = None
        self._snapshot = None
        self.prepare_seconds = 0.0

    def handle_for(self, x):
        """The library's copy of the model's current weights (remade when they changed)."""
        import time
        state = _state(self.module)
        ids = [id(t) for t in state]
        if self.script is None or ids != self._ids:
            t0 = time.perf_counter()
            self.script = script_or_trace(self.module, x)
            self.prepare_seconds += time.perf_counter() - t0
            self.handle = None
        if self.handle is not None and all(torch.equal(a, b) for a, b in zip(state, self._snapshot)):
            return self.handle
        with torch.no_grad():
            self._snapshot = [t.detach().clone() for t in state]
        self._ids = ids
        self.handle = _sdsgsm.prepare(self.script, self.name, self.exact)
        return self.handle
