"""Tests of the attack objects (sdsgsm.PGD(model, ...)(x, y)) and functions (sdsgsm.attacks.ddn):
every registered attack, the same adversarials as sdsgsm.attack (the CLI's), the model prepared
once yet attacked with its current weights, its mode left alone, normalisation outside the model,
target modes, dtypes and devices.

    PYTHONPATH=build/python /usr/bin/python3 -m pytest python/tests/test_objects.py -q
"""
import copy
import math
import os
import re
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

import sdsgsm
from nets import Net, TraceOnly, longest_pause_during

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.environ.get("SDSGSM_TEST_DATA_DIR", os.path.join(ROOT, "data", "cifar10"))

# The attacks that keep the l_inf budget eps (the others minimise a distance, or bound APGD's ball).
BOUNDED_LINF = {"fgsm", "ifgsm", "mifgsm", "nifgsm", "pgd", "sdsgsm", "sd-ifgsm", "sgsm", "apgd-ce", "apgd-dlr",
                "apgd-t", "square"}


class DataDependent(Net):
    def forward(self, *xs):  # not scriptable (varargs); a branch on the data, which a trace bakes in
        if float(xs[0].mean()) > 0.5:
            return self.body(xs[0])
        return -self.body(xs[0])


def data(n=6, size=16, seed=1):
    x = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))
    return x, torch.arange(n) % 10


def small_options(name):
    """Options that keep each attack short on a 16 x 16 image."""
    o = {"steps": 2, "threads": 1}
    if name in BOUNDED_LINF:
        o["eps"] = 0.1
    if name in ("sdsgsm", "sd-ifgsm", "sgsm"):
        o.update(window=4, stride=4)
    return o


def test_every_registered_attack_is_a_class_and_a_function():
    assert set(sdsgsm.attacks.CLASSES) == {sdsgsm.attacks.class_name(a) for a in sdsgsm.attack_names()}
    for name in sdsgsm.attack_names():
        cls = getattr(sdsgsm, sdsgsm.attacks.class_name(name))
        assert cls.attack == name and issubclass(cls, sdsgsm.attacks.Attack)
        assert callable(getattr(sdsgsm.attacks, name.replace("-", "_")))
    # torchattacks' names where it has the attack.
    assert (sdsgsm.BIM.attack, sdsgsm.PGD.attack, sdsgsm.FGSM.attack, sdsgsm.MIFGSM.attack) == \
        ("ifgsm", "pgd", "fgsm", "mifgsm")
    assert (sdsgsm.CW.attack, sdsgsm.DeepFool.attack, sdsgsm.APGD.attack, sdsgsm.APGDT.attack,
            sdsgsm.Square.attack) == ("cw", "deepfool", "apgd-ce", "apgd-t", "square")


@pytest.mark.parametrize("name", sdsgsm.attack_names())
def test_each_attack_object_gives_the_cli_adversarials(name):
    """The object's plain call (no metrics) and the function give sdsgsm.attack's adversarials
    (which equal the CLI's, test_sdsgsm.py) and outcome, within the budget."""
    net = Net().eval()
    x, y = data()
    options = small_options(name)
    atk = getattr(sdsgsm, sdsgsm.attacks.class_name(name))(net, **options)
    adv = atk(x, y)
    full = sdsgsm.attack(net, x, y, attack=name, **options)
    assert adv.shape == x.shape and adv.dtype == x.dtype
    assert torch.equal(adv, full["adversarial"])
    for key in ("success", "iterations", "forward_passes", "backward_passes", "clean_pred", "adv_pred", "target"):
        assert torch.equal(atk.last_result[key], full[key]), key
    assert "ssim" not in atk.last_result  # metrics only when asked
    assert float(adv.min()) >= 0 and float(adv.max()) <= 1
    if name in BOUNDED_LINF:
        assert float((adv - x).abs().max()) <= 0.1 + 1e-6
    assert torch.equal(getattr(sdsgsm.attacks, name.replace("-", "_"))(net, x, y, **options), adv)


def test_options_are_checked_when_the_object_is_made():
    net = Net()
    with pytest.raises(sdsgsm.Error, match=r"^unknown option 'epz' \(options: "):
        sdsgsm.PGD(net, epz=0.1)
    with pytest.raises(sdsgsm.Error, match=r"^option steps must be an integer \(got float\)$"):
        sdsgsm.BIM(net, steps=2.5)
    with pytest.raises(sdsgsm.Error, match=r"^--eps must be"):
        sdsgsm.FGSM(net, eps=-1)
    with pytest.raises(sdsgsm.Error, match=r"model must be a torch.nn.Module or a torch.jit.ScriptModule \(got str\)"):
        sdsgsm.PGD("resnet20")
    with pytest.raises(sdsgsm.Error, match=r"x and y must be tensors"):
        sdsgsm.PGD(net)([1], [2])
    assert repr(sdsgsm.PGD(net, eps=0.1)) == "PGD(model=Net, eps=0.1)"


def test_metrics_and_return_result():
    net = Net().eval()
    x, y = data()
    atk = sdsgsm.BIM(net, eps=0.1, steps=3, metrics=True, threads=1)
    adv = atk(x, y)
    full = sdsgsm.attack(net, x, y, attack="ifgsm", eps=0.1, steps=3, threads=1)
    for key in ("ssim", "l2", "linf", "success_8bit"):
        assert torch.equal(atk.last_result[key], full[key]), key
    assert atk.last_result["summary"]["float"]["asr"] == full["summary"]["float"]["asr"]
    adv2, result = sdsgsm.attacks.ifgsm(net, x, y, eps=0.1, steps=3, threads=1, return_result=True)
    assert torch.equal(adv2, adv) and torch.equal(result["psnr"], full["psnr"])


def test_the_attack_follows_the_current_weights():
    """Prepared once, yet never stale: a weight changed in place (an optimizer step) or replaced
    changes the next result to the one a fresh object gives on the new weights."""
    net = Net().eval()
    x, y = data()
    atk = sdsgsm.BIM(net, eps=0.1, steps=3, threads=1)
    first = atk(x, y)
    script = atk._prepared.script
    with torch.no_grad():
        net.body[0].weight.mul_(-1.5)  # in place, as optimizer.step() does
    second = atk(x, y)
    assert not torch.equal(first, second)
    assert torch.equal(second, sdsgsm.BIM(copy.deepcopy(net), eps=0.1, steps=3, threads=1)(x, y))
    assert atk._prepared.script is script  # scripted once: only the library's copy was remade
    net.body[5].weight = nn.Parameter(torch.randn_like(net.body[5].weight))  # replaced
    third = atk(x, y)
    assert torch.equal(third, sdsgsm.BIM(copy.deepcopy(net), eps=0.1, steps=3, threads=1)(x, y))
    assert not torch.equal(third, second)
    handle = atk._prepared.handle
    atk(x, y)
    assert atk._prepared.handle is handle  # unchanged weights: the same frozen copy


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_the_callers_mode_and_gradients_are_left_as_they_were():
    x, y = data()
    for net in (Net(), TraceOnly()):
        net.train()
        before = {k: v.clone() for k, v in net.state_dict().items()}
        adv = sdsgsm.PGD(net, eps=0.1, steps=2, threads=1)(x, y)
        assert net.training and all(p.requires_grad and p.grad is None for p in net.parameters())
        assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())  # no batch-norm update
        assert adv.shape == x.shape
    # The traced model is the scripted one's network (same seed): the same adversarials.
    assert torch.equal(sdsgsm.BIM(TraceOnly().eval(), eps=0.1, threads=1)(x, y),
                       sdsgsm.BIM(Net().eval(), eps=0.1, threads=1)(x, y))


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_a_model_neither_scripted_nor_traced_is_named():
    x, y = data()
    with pytest.raises(sdsgsm.Error, match=r"^model DataDependent can be neither scripted \(torch.jit.script: .*\) "
                                           r"nor traced \(torch.jit.trace with its check: .*\); "
                                           r"pass a torch.jit.ScriptModule$"):
        sdsgsm.FGSM(DataDependent(), eps=0.1)(x, y)


def test_normalisation_outside_the_model():
    """mean/std (torchattacks' set_normalization_used): the model takes normalised images."""
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    inner = Net().eval()
    x, y = data()
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)

    class Inside(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner

        def forward(self, z):
            return self.inner((z - m) / s)

    expected = sdsgsm.BIM(Inside(), eps=0.1, steps=3, threads=1)(x, y)
    assert torch.allclose(sdsgsm.BIM(inner, mean=mean, std=std, eps=0.1, steps=3, threads=1)(x, y), expected,
                          atol=1e-6)
    atk = sdsgsm.BIM(inner, eps=0.1, steps=3, threads=1)
    atk.set_normalization_used(mean=mean, std=std)
    assert torch.allclose(atk(x, y), expected, atol=1e-6)
    assert torch.allclose(sdsgsm.attacks.ifgsm(inner, x, y, mean=mean, std=std, eps=0.1, steps=3, threads=1),
                          expected, atol=1e-6)
    with pytest.raises(sdsgsm.Error, match="give both mean and std"):
        sdsgsm.BIM(inner, mean=mean)


def test_target_modes():
    net = Net().eval()
    x, y = data()
    atk = sdsgsm.PGD(net, eps=0.3, steps=5, threads=1)
    assert not atk.targeted
    atk.set_mode_targeted_least_likely()
    assert atk.targeted
    ll = atk(x, y)
    assert torch.equal(ll, sdsgsm.attack(net, x, y, attack="pgd", eps=0.3, steps=5, threads=1,
                                         targeted="least-likely")["adversarial"])
    atk.set_mode_targeted_by_label(3)
    assert torch.equal(atk(x, y), sdsgsm.attack(net, x, y, attack="pgd", eps=0.3, steps=5, threads=1,
                                                targeted="given", target_label=3)["adversarial"])
    atk.set_mode_default()
    assert not atk.targeted
    # One target per image: each image as a call for its target alone, at its own index.
    target = torch.tensor([3, 1, 3, 7, 1, 0])
    adv = atk(x, y, target=target)
    assert torch.equal(atk.last_result["target"], target)
    for i in (0, 3):
        one = sdsgsm.attack(net, x[i:i + 1], y[i:i + 1], attack="pgd", eps=0.3, steps=5, threads=1,
                            targeted="given", target_label=int(target[i]), offset=i)
        assert torch.equal(adv[i:i + 1], one["adversarial"])
    with pytest.raises(sdsgsm.Error, match="target must hold one class per image"):
        atk(x, y, target=torch.tensor([1, 2]))


def test_dtype_and_devices():
    net = Net().eval()
    x, y = data()
    adv = sdsgsm.BIM(net, eps=0.1, threads=1)(x.double(), y)
    assert adv.dtype == torch.float64
    assert torch.equal(adv.float(), sdsgsm.BIM(net, eps=0.1, threads=1)(x, y))
    assert "cpu" in sdsgsm.devices()
    with pytest.raises(sdsgsm.Error, match=r"^sdsgsm.attack: the tensors are on meta; sdsgsm runs on cpu"):
        sdsgsm.BIM(net, eps=0.1)(x.to("meta"), y.to("meta"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA in this torch")
def test_cuda_tensors_run_on_cuda_or_are_refused():
    net = Net().eval()
    x, y = data()
    atk = sdsgsm.BIM(net, eps=0.1, threads=1)
    if "cuda" in sdsgsm.devices():
        adv = atk(x.cuda(), y.cuda())
        assert adv.is_cuda and atk.last_result["success"].is_cuda
        assert torch.allclose(adv.cpu(), atk(x, y), atol=1e-5)
    else:
        with pytest.raises(sdsgsm.Error, match="runs on the CPU only"):
            atk(x.cuda(), y.cuda())


def test_functions_prepare_a_model_once():
    net = Net().eval()
    x, y = data()
    sdsgsm.attacks.pgd(net, x, y, eps=0.1, steps=2, threads=1)
    key = (id(net), None, False)
    prepared = sdsgsm.attacks._function_cache[key]
    script = prepared.script
    sdsgsm.attacks.fgsm(net, x, y, eps=0.1, threads=1)
    assert sdsgsm.attacks._function_cache[key] is prepared and prepared.script is script
    # exact=True is a model of its own (not frozen), kept beside the fast one.
    sdsgsm.attacks.fgsm(net, x, y, eps=0.1, threads=1, exact=True)
    assert sdsgsm.attacks._function_cache[(id(net), None, True)].exact
    assert not prepared.exact and sdsgsm.attacks._function_cache[key] is prepared
    # The newest FUNCTION_CACHE_SIZE models are kept, and no more.
    others = [Net(seed=i) for i in range(sdsgsm.attacks.FUNCTION_CACHE_SIZE)]
    for other in others:
        sdsgsm.attacks.fgsm(other, x, y, eps=0.1, threads=1)
    assert key not in sdsgsm.attacks._function_cache
    assert len(sdsgsm.attacks._function_cache) == sdsgsm.attacks.FUNCTION_CACHE_SIZE


def test_the_gil_is_released_during_an_object_call():
    """Another Python thread runs while atk(x, y) runs: its longest pause stays far below the call."""
    net = Net().eval()
    x, y = data(n=64, size=32)
    atk = sdsgsm.BIM(net, eps=0.1, steps=40, threads=1)
    atk(x[:2], y[:2])  # scripting and freezing hold the GIL; the attack alone is timed
    duration, pause = longest_pause_during(lambda: atk(x, y))
    assert duration > 0.1, "the attack was too short to tell"
    assert pause < duration / 2, (pause, duration)


@pytest.mark.skipif(not os.path.exists(os.path.join(DATA, "data_batch_1.bin")), reason=f"no CIFAR-10 in {DATA}")
def test_adversarial_training_example_runs():
    """examples/python/adversarial_training.py: sdsgsm.PGD inside a training loop."""
    env = dict(os.environ, PYTHONPATH=os.environ.get("PYTHONPATH") or os.path.join(ROOT, "build", "python"))
    r = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "python", "adversarial_training.py"),
                        "--data", DATA, "--count", "256", "--epochs", "2", "--steps", "2"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    losses = [float(re.fullmatch(r"epoch (\d): adversarial loss (\S+)", s).group(2)) for s in lines[:2]]
    assert all(math.isfinite(v) and v > 0 for v in losses)
    m = re.fullmatch(r"clean accuracy (\S+)%, PGD-2 accuracy (\S+)% \(eps 8/255, 256 test images\)", lines[2])
    assert m and all(0 <= float(v) <= 100 for v in m.groups())


def test_exact_equals_an_eager_loop_bit_for_bit():
    """exact=True runs the module as PyTorch does: BIM's adversarials equal an eager loop's."""
    import torch.nn.functional as F
    net = Net().eval()
    x, y = data(n=8, size=16)
    eps, alpha = 0.1, 0.02
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the attack's threads=1
    try:
        adv = x.clone()
        for _ in range(5):
            adv.requires_grad_(True)
            grad = torch.autograd.grad(F.cross_entropy(net(adv), y), adv)[0]
            adv = adv.detach() + alpha * grad.sign()
            adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
    finally:
        torch.set_num_threads(threads)
    ours = sdsgsm.BIM(net, eps=eps, alpha=alpha, steps=5, exact=True, threads=1)(x, y)
    assert torch.equal(ours, adv)
