"""Tests of the CLI's commands from Python: data sources with the data flags and batches, robust
accuracy (the CLI's figures on the same images; tensors, a path or a DataLoader), compare,
transfer and the HTML report.

    PYTHONPATH=build/python /usr/bin/python3 -m pytest python/tests/test_commands.py -q
"""
import csv
import io
import json
import os
import subprocess

import numpy as np
import pytest
import torch
import torch.nn as nn

import sdsgsm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.environ.get("SDSGSM_CLI", os.path.join(ROOT, "build", "sdsgsm"))
DATA = os.environ.get("SDSGSM_TEST_DATA_DIR", os.path.join(ROOT, "data", "cifar10"))
needs_data = pytest.mark.skipif(not os.path.exists(os.path.join(DATA, "test_batch.bin")),
                                reason=f"no CIFAR-10 test batch in {DATA}")


def cli(*args):
    r = subprocess.run([CLI, "--threads", "1", "-q", *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r


def cifar_records(offset, count):
    raw = np.fromfile(os.path.join(DATA, "test_batch.bin"), dtype=np.uint8).reshape(-1, 3073)
    rows = raw[offset:offset + count]
    x = torch.from_numpy(rows[:, 1:].reshape(-1, 3, 32, 32).copy()).float().div(255)
    return x, torch.from_numpy(rows[:, 0].astype(np.int64))


@pytest.fixture(scope="module")
def script_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("model") / "resnet20-script.pt")
    cli("export", "--model", "resnet20", "--out", path)
    return path


class Net(nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                                  nn.Linear(32, 10))

    def forward(self, x):
        return self.body(x)


@needs_data
def test_open_data_batches_and_load_data():
    source = sdsgsm.open_data(DATA, offset=5, count=7)
    assert len(source) == 7 and source.image_shape == (3, 32, 32) and len(source.classes) == 10
    parts = list(sdsgsm.batches(DATA, batch_size=3, offset=5, count=7))
    assert [b[0].shape[0] for b in parts] == [3, 3, 1]
    ex, ey = cifar_records(5, 7)
    assert torch.equal(torch.cat([b[0] for b in parts]), ex) and torch.equal(torch.cat([b[1] for b in parts]), ey)
    x, y = sdsgsm.load_data(DATA, offset=5, count=7)
    assert torch.equal(x, ex) and torch.equal(y, ey)
    with pytest.raises(sdsgsm.Error, match=r"^--split must be test or train \(got 'val'\)$"):
        sdsgsm.open_data(DATA, split="val")
    with pytest.raises(sdsgsm.Error, match=r"^--resize must be >= 0"):
        sdsgsm.open_data(DATA, resize=-1)
    with pytest.raises(sdsgsm.Error, match=r"^--batch-size must be >= 1"):
        next(sdsgsm.batches(DATA, batch_size=0, count=2))


def test_image_folder_with_classes_resize_and_crop(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / "images" / cls).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(tmp_path / "images" / cls / f"{i}.png")
    names = tmp_path / "classes.txt"
    names.write_text("airplane\ndog\ncat\n")
    x, y = sdsgsm.load_data(tmp_path / "images", classes=names, resize=20, crop=16)
    assert x.shape == (4, 3, 16, 16) and sorted(y.tolist()) == [1, 1, 2, 2]
    assert sdsgsm.open_data(tmp_path / "images", classes=names).classes == ["airplane", "dog", "cat"]
    x, y = sdsgsm.load_data(tmp_path / "images")
    assert x.shape == (4, 3, 40, 60) and sorted(y.tolist()) == [0, 0, 1, 1]


@needs_data
def test_robust_equals_the_cli(script_file, tmp_path):
    """The CLI's robust accuracy, per-image outcome and checks on the same model and images, from
    tensors, from the data path and from a DataLoader."""
    flags = dict(steps=4, queries=30, check_count=4, seed=1, batch_size=8)
    out = tmp_path / "robust"
    cli("robust", "--model", script_file, "--data", DATA, "--count", "10", "--steps", "4", "--queries", "30",
        "--check-count", "4", "--seed", "1", "--batch-size", "8", "--out", str(out))
    with open(out / "robust.json") as f:
        expected = json.load(f)
    with open(out / "robust.csv") as f:
        rows = list(csv.DictReader(f))
    model = sdsgsm.load_model(script_file)
    x, y = cifar_records(0, 10)
    r = sdsgsm.robust(model, x, y, threads=1, **flags)
    assert r.images == 10
    assert r.robust_accuracy == expected["robust_accuracy"] and r.clean_accuracy == expected["clean_accuracy"]
    assert list(csv.DictReader(io.StringIO(r.csv))) == rows
    assert r.stage_names == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert int((r.fooled_by == len(r.stage_names)).sum()) == round(r.robust_accuracy * 10)
    assert [s["fooled"] for s in r.stages] == [s["fooled"] for s in expected["attacks"]]
    # The model card as robust.json has it, less the file's checksum and with the module's name.
    card = dict(expected["card"], model=r.card["model"])
    card.pop("model_md5", None)
    assert r.card == card and r.card["robust_accuracy"] == r.robust_accuracy and r.card["threat_model"] == "l_inf"
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=3)
    assert sdsgsm.robust(model, loader, threads=1, **flags).csv == r.csv
    assert sdsgsm.robust(model, sdsgsm.open_data(DATA, count=10), threads=1, **flags).csv == r.csv
    assert "Robust accuracy" in repr(r)
    with pytest.raises(sdsgsm.Error, match="labels y"):
        sdsgsm.robust(model, x)
    with pytest.raises(sdsgsm.Error, match="--steps"):
        sdsgsm.robust(model, x, y, steps=0)


@needs_data
def test_robust_curve_equals_the_cli(script_file, tmp_path):
    """A list of eps: the CLI's curve (--eps A,B) on the same model and images, monotone, and the
    largest radius's figures; an unsorted list is refused as the CLI refuses it."""
    flags = dict(attacks=["apgd-ce", "square"], steps=4, queries=30, check_count=0, seed=1, batch_size=8)
    out = tmp_path / "curve"
    cli("robust", "--model", script_file, "--data", DATA, "--count", "10", "--attacks", "apgd-ce,square", "--steps", "4",
        "--queries", "30", "--check-count", "0", "--seed", "1", "--batch-size", "8", "--eps", "1/255,2/255,4/255",
        "--out", str(out))
    with open(out / "robust.json") as f:
        expected = json.load(f)
    model = sdsgsm.load_model(script_file)
    x, y = cifar_records(0, 10)
    r = sdsgsm.robust(model, x, y, eps=["1/255", 2 / 255, "4/255"], threads=1, **flags)
    assert [p["robust"] for p in r.curve] == [p["robust"] for p in expected["curve"]]
    assert [p["fooled"] for p in r.curve] == [p["fooled"] for p in expected["curve"]]
    accuracy = [p["robust_accuracy"] for p in r.curve]
    assert accuracy == sorted(accuracy, reverse=True) and accuracy[0] <= r.clean_accuracy
    assert r.robust_accuracy == accuracy[-1] == expected["robust_accuracy"]
    assert int((r.fooled_at == len(r.curve)).sum()) == r.curve[-1]["robust"]
    assert [c["robust_accuracy"] for c in r.card["curve"]] == accuracy and r.card["eps"] == 4 / 255
    assert [c["robust_accuracy"] for c in expected["card"]["curve"]] == accuracy
    def without_seconds(text):
        return [line.rsplit(",", 1)[0] for line in text.splitlines()]
    assert without_seconds(r.curve_csv) == without_seconds((out / "robust_curve.csv").read_text())
    assert sdsgsm.robust(model, x, y, eps=4 / 255, threads=1, **flags).curve is None
    with pytest.raises(sdsgsm.Error, match="strictly increasing"):
        sdsgsm.robust(model, x, y, eps=[4 / 255, 2 / 255], threads=1, **flags)


def test_compare_and_transfer():
    x = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    a, b = Net(0).eval(), Net(1).eval()
    with torch.no_grad():
        y = a(x).argmax(1)  # every image correct on the source
    options = dict(eps=0.3, alpha=0.1, steps=3, threads=1)
    c = sdsgsm.compare(a, x, y, attacks=("fgsm", "ifgsm"), **options)
    assert set(c.results) == {"fgsm", "ifgsm"}
    one = sdsgsm.attack(a, x, y, attack="ifgsm", **options)
    asr = one["summary"]["float"]["asr"]
    assert asr > 0.5
    assert f"| ifgsm | {asr:.2%} |" in c.table and "| fgsm | " in c.table
    assert torch.equal(c.results["ifgsm"]["adversarial"], one["adversarial"])
    t = sdsgsm.transfer(a, {"same": a, "other": b}, x, y, attack="ifgsm", **options)
    cells = {cell["target"]: cell for cell in t.cells}
    # The cell by its definition: fooled on the source, correct on the target clean, fooled there too.
    adv = one["adversarial"]
    with torch.no_grad():
        correct_b = b(x).argmax(1) == y
        fools_b = b(adv).argmax(1) != y
    counted = one["success"] & correct_b
    assert cells["other"]["counted"] == int(counted.sum()) and cells["other"]["fooled"] == int((counted & fools_b).sum())
    assert cells["same"]["counted"] == int(one["success"].sum()) == cells["same"]["fooled"] > 0
    assert "same" in t.table and "other" in t.table


@needs_data
def test_report_of_a_run_folder(script_file, tmp_path):
    run = tmp_path / "run"
    cli("attack", "--model", script_file, "--data", DATA, "--count", "4", "--attack", "fgsm", "--sheet", "0",
        "--out", str(run))
    cli("report", str(run), "--no-model", "--out", str(tmp_path / "cli.html"))
    rep = sdsgsm.report(run, model=False)
    assert rep._repr_html_() == rep.html and "<html" in rep.html.lower()
    assert rep.html == (tmp_path / "cli.html").read_text()
    rep.save(tmp_path / "py.html")
    assert (tmp_path / "py.html").read_text() == rep.html
    with pytest.raises(sdsgsm.Error):
        sdsgsm.report(tmp_path / "missing")


class Noisy(nn.Module):
    """A randomised defence: noise on the input at every pass."""

    def __init__(self):
        super().__init__()
        self.net = Net()

    def forward(self, x):
        return self.net(x + 0.05 * torch.randn_like(x))


def test_robust_versions_by_name_and_a_randomised_model():
    """AutoAttack's versions by name, as --ensemble; a randomised model switches the default to the
    rand version (APGD-CE and APGD-DLR) with a warning, and stops a version asked for."""
    torch.manual_seed(0)
    x = torch.rand(6, 3, 8, 8)
    net = Net().eval()
    with torch.no_grad():
        y = net(x).argmax(1)
    flags = dict(steps=2, queries=20, check_count=0, batch_size=6, threads=1)
    assert sdsgsm.robust(net, x, y, **flags).stage_names == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert sdsgsm.robust(net, x, y, ensemble="rand", **flags).stage_names == ["apgd-ce", "apgd-dlr"]
    plus = sdsgsm.robust(net, x, y, ensemble="plus", **flags)
    assert plus.stage_names == ["apgd-ce", "apgd-dlr", "square", "apgd-t", "fab-t"]
    assert plus.options["ensemble"] == "plus"
    noisy = Noisy().eval()
    switched = sdsgsm.robust(noisy, x, y, **flags)
    assert switched.stage_names == ["apgd-ce", "apgd-dlr"]
    assert any("randomised" in w for w in switched.warnings)
    with pytest.raises(sdsgsm.Error, match="the model is randomised"):
        sdsgsm.robust(noisy, x, y, ensemble="standard", **flags)
    with pytest.raises(sdsgsm.Error, match="--ensemble"):
        sdsgsm.robust(net, x, y, ensemble="full", **flags)
    # l1: AutoAttack's l1 standard version (Square included), every adversarial within the radius.
    l1 = sdsgsm.robust(net, x, y, eps=2.0, norm="1", **flags)
    assert l1.stage_names == ["apgd-ce", "apgd-t", "fab-t", "square"] and l1.card["threat_model"] == "l1"
    atk = sdsgsm.APGD(net, eps=2.0, norm="1", steps=10, shrinking_radius=True)
    adv = atk(x, y)
    assert float((adv - x).abs().flatten(1).sum(1).max()) <= 2.0 * (1 + 1e-5)
    assert atk.last_result["iterations"].tolist() == [10] * 6  # the three radii share the 10 steps
    with pytest.raises(sdsgsm.Error, match="--shrinking-radius"):
        sdsgsm.APGD(net, eps=8 / 255, shrinking_radius=True)
