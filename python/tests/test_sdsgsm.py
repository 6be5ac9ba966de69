"""Tests of the Python module against the command-line tool: the same adversarials, per-sample
figures and error messages on the same model and images. Run by CTest (test `python`), or:

    PYTHONPATH=build/python /usr/bin/python3 -m pytest python/tests -q

SDSGSM_CLI (default build/sdsgsm) is the tool, SDSGSM_TEST_DATA_DIR (default data/cifar10) the
CIFAR-10 folder; the tests that need the images skip without it.
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

import sdsgsm
from nets import Net as TinyNet, TraceOnly, longest_pause_during

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.environ.get("SDSGSM_CLI", os.path.join(ROOT, "build", "sdsgsm"))
DATA = os.environ.get("SDSGSM_TEST_DATA_DIR", os.path.join(ROOT, "data", "cifar10"))
THREADS = 1  # the same on both sides; one thread is the fastest on a loaded machine

needs_data = pytest.mark.skipif(not os.path.exists(os.path.join(DATA, "test_batch.bin")),
                                reason=f"no CIFAR-10 test batch in {DATA}")


def cli(*args, ok=True):
    r = subprocess.run([CLI, "--threads", str(THREADS), "-q", *args], capture_output=True, text=True)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def cli_error(*args):
    """The one-line message of a failing CLI run, without the 'sdsgsm: error: ' prefix."""
    r = cli(*args, ok=False)
    assert r.returncode != 0
    lines = [s for s in r.stderr.splitlines() if s.startswith("sdsgsm: error: ")]
    assert len(lines) == 1, r.stderr
    return lines[0][len("sdsgsm: error: "):]


def cifar_records(offset, count):
    """The test batch's records read here, independently of the library."""
    raw = np.fromfile(os.path.join(DATA, "test_batch.bin"), dtype=np.uint8).reshape(-1, 3073)
    rows = raw[offset:offset + count]
    x = torch.from_numpy(rows[:, 1:].reshape(-1, 3, 32, 32).copy()).float().div(255)
    return x, torch.from_numpy(rows[:, 0].astype(np.int64))


@pytest.fixture(scope="session")
def script_file(tmp_path_factory):
    """ResNet-20 exported by the CLI: the model both sides attack."""
    path = str(tmp_path_factory.mktemp("model") / "resnet20-script.pt")
    cli("export", "--model", "resnet20", "--out", path)
    return path


@pytest.fixture(scope="session")
def model(script_file):
    return sdsgsm.load_model(script_file)


def cli_flags(options):
    flags = []
    for k, v in options.items():
        flag = "--" + k.replace("_", "-")
        if v is True:
            flags.append(flag)
        elif v is False:
            flags.append("--no-" + k.replace("_", "-"))
        else:
            flags += [flag, str(v)]
    return flags


def run_cli_attack(script_file, out, attack, offset, count, options):
    cli("attack", "--model", script_file, "--data", DATA, "--attack", attack, "--offset", str(offset),
        "--count", str(count), "--batch-size", "8", "--sheet", "0", "--out", str(out), *cli_flags(options))
    shards = sorted(os.listdir(out / "adversarial"))
    adv = torch.cat([torch.load(str(out / "adversarial" / s)) for s in shards])
    with open(out / "metrics.json") as f:
        columns = json.load(f)["sample_columns"]
    return adv, torch.load(str(out / "samples.pt")), columns


def test_names():
    assert "sdsgsm" in sdsgsm.attack_names() and "pgd" in sdsgsm.attack_names()
    for name in ("eps", "alpha", "steps", "decay", "early_stop", "early_stop_8bit", "seed", "targeted",
                 "target_label", "window", "stride", "fill", "score", "rho", "lambda", "lambda_", "map", "gamma",
                 "beta", "step_factor", "rescale_step", "recompute_every", "threads", "offset", "batch_size",
                 "norm", "candidates", "overshoot", "binary_steps", "initial_const", "confidence", "learning_rate",
                 "norm_gamma", "initial_norm", "levels", "restarts", "refine", "refine_step", "refine_gamma"):
        assert name in sdsgsm.option_names(), name
    # The options the attacks set themselves are not keywords.
    assert "random_start" not in sdsgsm.option_names()
    # The docstring's option list is written from the same declarations as the CLI's help.
    help_text = subprocess.run([CLI, "attack", "--help"], capture_output=True, text=True, check=True).stdout
    for keyword, text in sdsgsm._sdsgsm.option_help():
        assert f"      {keyword}: " in sdsgsm.attack.__doc__, keyword
        assert "--" + keyword.replace("_", "-") in help_text, keyword
        assert text.split(";")[0] in help_text, keyword


@needs_data
def test_load_data_reads_the_cli_images():
    x, y = sdsgsm.load_data(DATA, offset=5, count=7)
    ex, ey = cifar_records(5, 7)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x, ex) and torch.equal(y, ey)


@needs_data
@pytest.mark.parametrize("attack,offset,options", [
    ("sdsgsm", 0, {}),
    ("pgd", 5, {"seed": 3, "steps": 4}),  # random start: seeded by the data-set index (offset)
    ("mifgsm", 0, {"early_stop": True, "alpha": "1/255", "targeted": "least-likely"}),
    ("sd-ifgsm", 2, {"window": 8, "stride": 4, "rho": 0.1, "lambda": 0.5, "early_stop_8bit": True}),
])
def test_adversarials_and_figures_equal_the_cli(script_file, model, tmp_path, attack, offset, options):
    count = 12  # two batches of 8
    adv_cli, samples, columns = run_cli_attack(script_file, tmp_path / "out", attack, offset, count, options)
    x, y = cifar_records(offset, count)
    r = sdsgsm.attack(model, x, y, attack=attack, offset=offset, batch_size=8, threads=THREADS, **options)
    assert r["adversarial"].dtype == torch.float32 and r["adversarial"].shape == x.shape
    assert torch.equal(r["adversarial"], adv_cli)
    for i, name in enumerate(columns):  # every per-sample column of samples.pt, exactly
        assert torch.equal(r[name].to(torch.float64), samples[:, i]), name
    assert r["success"].dtype == torch.bool and r["iterations"].dtype == torch.int64
    assert 0.0 <= r["summary"]["float"]["asr"] <= 1.0


@needs_data
def test_metrics_equal_the_cli(script_file, tmp_path):
    adv, samples, columns = run_cli_attack(script_file, tmp_path / "out", "ifgsm", 0, 8, {"steps": 3})
    x, _ = cifar_records(0, 8)
    m = sdsgsm.metrics(x, adv)
    for name in ("l2", "linf", "l0", "ssim", "psnr"):
        assert m[name].dtype == torch.float64 and m[name].shape == (8,)
        assert torch.equal(m[name], samples[:, columns.index(name)]), name
    same = sdsgsm.metrics(x, x)
    assert torch.all(same["l2"] == 0) and torch.all(same["ssim"] == 1) and torch.all(same["psnr"] == 100)


@needs_data
@pytest.mark.parametrize("flags,options", [
    (["--eps", "-1"], {"eps": -1}),
    (["--attack", "nope"], {"attack": "nope"}),
    (["--attack", "sdsgsm", "--window", "64"], {"attack": "sdsgsm", "window": 64}),
    (["--attack", "sdsgsm", "--fill", "grey"], {"attack": "sdsgsm", "fill": "grey"}),
    (["--targeted", "given"], {"targeted": "given"}),
    (["--alpha", "2/0"], {"alpha": "2/0"}),
    (["--early-stop-8bit", "--no-early-stop"], {"early_stop_8bit": True, "early_stop": False}),
])
def test_errors_are_the_cli_messages(script_file, model, tmp_path, flags, options):
    message = cli_error("attack", "--model", script_file, "--data", DATA, "--count", "4", "--out",
                        str(tmp_path / "out"), *flags)
    x, y = cifar_records(0, 4)
    with pytest.raises(sdsgsm.Error) as e:
        sdsgsm.attack(model, x, y, **options)
    assert str(e.value) == message
    assert isinstance(e.value, ValueError)


def test_load_model_errors_are_the_cli_messages(tmp_path):
    missing = str(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    for path in (missing, str(bad)):
        message = cli_error("attack", "--model", path, "--count", "1", "--out", str(tmp_path / "out"))
        with pytest.raises(sdsgsm.Error) as e:
            sdsgsm.load_model(path)
        assert str(e.value) == message


def test_python_side_errors(model):
    x, y = torch.rand(2, 3, 32, 32), torch.tensor([1, 2])
    with pytest.raises(sdsgsm.Error, match=r"^unknown options 'epz', 'stepz' \(options: .*eps.*\)$"):
        sdsgsm.attack(model, x, y, epz=0.1, stepz=3)
    with pytest.raises(sdsgsm.Error, match=r"^option steps must be an integer \(got float\)$"):
        sdsgsm.attack(model, x, y, steps=2.5)
    with pytest.raises(sdsgsm.Error, match=r"^option early_stop must be True or False \(got int\)$"):
        sdsgsm.attack(model, x, y, early_stop=1)
    with pytest.raises(sdsgsm.Error, match=r"^option rho must be a number \(got list\)$"):
        sdsgsm.attack(model, x, y, rho=[0.1])
    with pytest.raises(sdsgsm.Error, match=r"^--steps must be >= 1 \(got 0\)$"):  # numpy integers are integers
        sdsgsm.attack(model, x, y, steps=np.int64(0))
    with pytest.raises(sdsgsm.Error, match=r"images must lie in \[0,1\] \(got values from 0 to 2\)"):
        sdsgsm.attack(model, x * 0 + torch.tensor([0.0, 2.0]).view(2, 1, 1, 1), y)
    with pytest.raises(sdsgsm.Error, match=r"labels must be an integer tensor of 2 values, one per image \(got 3 of"):
        sdsgsm.attack(model, x, torch.tensor([1, 2, 3]))
    with pytest.raises(sdsgsm.Error, match=r"labels must be an integer tensor of 2 values, one per image \(got 2 of Float\)"):
        sdsgsm.attack(model, x, torch.tensor([1.0, 2.0]))
    with pytest.raises(sdsgsm.Error, match=r"model must be a torch.nn.Module or a torch.jit.ScriptModule \(got str\)"):
        sdsgsm.attack("resnet20", x, y)
    with pytest.raises(sdsgsm.Error, match=r"x and x_adv must be N x C x H x W floating-point tensors of one shape"):
        sdsgsm.metrics(x, x[:1])


def test_load_model_zoo_name_is_the_exported_file(model):
    zoo = sdsgsm.load_model("resnet20")
    assert isinstance(zoo, torch.jit.ScriptModule) and not zoo.training
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(zoo(x), model(x), atol=1e-5)


class Neither(TinyNet):
    def forward(self, x):
        return float(np.mean(x.numpy()))


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # from tracing Neither, which fails as it should
def test_plain_module_is_scripted_or_traced():
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    net = TinyNet().train()
    with torch.no_grad():
        y = net.eval()(x).argmax(1)
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    options = dict(attack="ifgsm", eps=0.3, alpha=0.075, steps=5, threads=1)  # a random net needs a large budget
    r = sdsgsm.attack(net, x, y, **options)
    # The user's module is left as it was: its mode, parameters, buffers (no batch-norm update).
    assert net.training and all(p.requires_grad for p in net.parameters())
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    expected = sdsgsm.attack(torch.jit.script(net), x, y, **options)
    assert torch.equal(r["adversarial"], expected["adversarial"])
    assert r["success"].float().mean() >= 0.5
    traced = sdsgsm.attack(TraceOnly(), x, y, **options)
    assert torch.equal(traced["adversarial"], expected["adversarial"])  # the same weights (seed 0)
    with pytest.raises(sdsgsm.Error, match=r"^model Neither can be neither scripted \(torch.jit.script: .*\) "
                                           r"nor traced \(torch.jit.trace with its check: .*\); pass a torch.jit.ScriptModule$"):
        sdsgsm.attack(Neither(), x, y, **options)


def test_callers_module_and_threads_are_left_as_they_were(model):
    """The attack runs on a copy in evaluation mode with frozen parameters, on its own thread count."""
    x, y = torch.rand(2, 3, 32, 32), torch.tensor([1, 2])
    threads = torch.get_num_threads()
    model.train()
    for p in model.parameters():
        p.requires_grad_(True)
    try:
        torch.set_num_threads(2)
        sdsgsm.attack(model, x, y, attack="fgsm", threads=1)
        assert torch.get_num_threads() == 2
        assert model.training and all(p.requires_grad for p in model.parameters())
    finally:
        torch.set_num_threads(threads)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)


def test_the_gil_is_released_during_an_attack(model):
    """Another Python thread keeps running while an attack runs: the longest pause between its
    iterations stays far below the attack's duration (holding the GIL, it would span it all)."""
    x = torch.rand(32, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    y = torch.arange(32) % 10
    duration, pause = longest_pause_during(lambda: sdsgsm.attack(model, x, y, attack="ifgsm", steps=10, early_stop=False, threads=1))
    assert duration > 0.2, "the attack was too short to tell"
    assert pause < duration / 2, (pause, duration)


def readme_block():
    """The README's Python example."""
    for path in (os.path.join(ROOT, "README.md"),):
        with open(path) as f:
            text = f.read()
        m = re.search(r"<!-- python-example -->\s*```python\n(.*?)```", text, re.S)
        if m:
            return path, m.group(1)
    pytest.fail("no Python example (a ```python block after <!-- python-example -->) in README.md")


def test_example_script_is_the_readme_example():
    """examples/python/attack.py (run against the installed package by scripts/package_check.sh)
    is the README's example, its data folder taken from the command line."""
    _, code = readme_block()
    with open(os.path.join(ROOT, "examples", "python", "attack.py")) as f:
        script = f.read()
    marker = "# --- the README's example (its data folder the argument) ---\n"
    assert marker in script
    words = lambda t: " ".join(t.split())
    expected = code.replace("import sdsgsm\n", "", 1).replace('"data/cifar10"', "data")
    assert words(script.split(marker, 1)[1]) == words(expected)


@pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "data", "cifar10", "test_batch.bin")),
                    reason="no CIFAR-10 in data/cifar10")
def test_readme_example_runs_as_written():
    path, code = readme_block()
    # From the repository root with the module on the path (CTest's build folder, else build/python).
    env = dict(os.environ, PYTHONPATH=os.environ.get("PYTHONPATH") or os.path.join(ROOT, "build", "python"))
    # (seconds on an idle machine; the generous limit is for a shared one)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{path}: {r.stderr}"
    assert "ASR" in r.stdout, r.stdout
