"""The CLI's commands from Python: data sources with the CLI's data flags, read batch by batch;
robust accuracy (`sdsgsm robust`), transfer between models (`sdsgsm transfer`), the comparison of
attacks (`sdsgsm attack --attack a,b,...`'s table) and the HTML report of run folders (`sdsgsm
report`), which displays in Jupyter.

Wherever a data source is taken, it may be a data path (as --data), an `open_data` source, images
x with labels y, or any iterable of (x, y) batches such as a torch DataLoader (its batches are
gathered into memory first).
"""
import os

import torch

from . import _sdsgsm
from .attacks import _prepared_for
from ._sdsgsm import Error


def _number(v, name):
    """A number, or the CLI's fraction text "8/255"."""
    if isinstance(v, str):
        try:
            a, _, b = v.partition("/")
            return float(a) / float(b) if b else float(a)
        except (ValueError, ZeroDivisionError):
            raise Error(f"--{name} must be a number or a fraction like 8/255 (got '{v}')") from None
    return float(v)


class DataSource:
    """Images read as the CLI's --data reads them, batch by batch (nothing is loaded at once):
    len(source), source.classes, source.read(start, n) -> (x, y), source.batches(batch_size)."""

    def __init__(self, handle, description):
        self._handle = handle
        self.description = description

    def __len__(self):
        return len(self._handle)

    @property
    def classes(self):
        return list(self._handle.classes)

    @property
    def image_shape(self):
        return tuple(self._handle.image_shape)

    def read(self, start, n):
        """Images [start, start + n) as (x float N x C x H x W in [0,1], y int64 N)."""
        return self._handle.read_float(start, n)

    def batches(self, batch_size=128):
        if batch_size < 1:
            raise Error(f"--batch-size must be >= 1 (got {batch_size})")
        for start in range(0, len(self), batch_size):
            yield self.read(start, min(batch_size, len(self) - start))

    def __iter__(self):
        return self.batches()

    def __repr__(self):
        return f"DataSource({self.description!r}, {len(self)} images)"


def open_data(path="data/cifar10", split="test", offset=0, count=-1, classes=None, resize=0, crop=0):
    """A data source as the CLI's data flags give it: --data (a CIFAR-10 binary folder or file, an
    image folder of class_name/*, or a CSV list), --split, --offset, --count (-1: all), --classes
    (a class names file), --resize (short side) and --crop (centre square)."""
    path = os.fspath(path)
    handle = _sdsgsm.open_source(path, split, offset, count, os.fspath(classes) if classes else "", resize, crop)
    return DataSource(handle, handle.source)


def batches(data="data/cifar10", batch_size=128, **data_flags):
    """An iterator over (x, y) batches of a data path (with open_data's flags) or a DataSource."""
    source = data if isinstance(data, DataSource) else open_data(data, **data_flags)
    return source.batches(batch_size)


def as_source(data, y=None):
    """A DataSource from any data argument (see the module's docstring)."""
    if isinstance(data, DataSource):
        return data
    if isinstance(data, (str, os.PathLike)):
        return open_data(data)
    if isinstance(data, torch.Tensor):
        if y is None:
            raise Error("images given as a tensor need their labels y")
        return DataSource(_sdsgsm.tensor_source(data, y), "tensors")
    x, y = as_tensors(data)
    return DataSource(_sdsgsm.tensor_source(x, y), type(data).__name__)


def as_tensors(data, y=None):
    """(x, y) from any data argument: tensors as they are, a source or an iterable read whole."""
    if isinstance(data, torch.Tensor):
        if y is None:
            raise Error("images given as a tensor need their labels y")
        return data, y
    if isinstance(data, (str, os.PathLike)):
        data = open_data(data)
    if isinstance(data, DataSource):
        return data.read(0, len(data))
    xs, ys = [], []
    try:
        for batch in data:
            bx, by = batch[0], batch[1]
            xs.append(bx)
            ys.append(by)
    except (TypeError, IndexError):
        raise Error(f"data must be a path, a DataSource, tensors x and y, or an iterable of (x, y) batches "
                    f"(got {type(data).__name__})") from None
    if not xs:
        raise Error("the data gave no batches")
    return torch.cat(xs), torch.cat(ys)


class RobustResult:
    """sdsgsm.robust's result: clean_accuracy, robust_accuracy, images, stages (per attack: attacked,
    fooled, passes), checks (the masking checks), warnings, card (robust.json's model card), per image index / label / clean_pred /
    fooled_by (the stage that fooled it: -1 misclassified clean, len(stages) robust), table
    (robust.md's) and csv (robust.csv's). `figures` is robust.json's."""

    def __init__(self, r):
        self.figures = r["figures"]
        self.options = r["options"]
        self.index, self.label, self.clean_pred, self.fooled_by = r["index"], r["label"], r["clean_pred"], r["fooled_by"]
        self.warnings, self.table, self.csv, self.stage_names = r["warnings"], r["table"], r["csv"], r["stages"]
        self.images = self.figures["images"]
        self.clean_accuracy = self.figures["clean_accuracy"]
        self.robust_accuracy = self.figures["robust_accuracy"]
        self.stages = self.figures.get("attacks", [])
        # What a leaderboard entry needs (robust.json's `card`): model, version, threat_model, eps,
        # ensemble, attacks, images, clean and robust accuracy, the checks' outcome, warnings; with
        # a list of eps also `curve` (per radius eps and robust_accuracy).
        self.card = r["card"]
        self.checks = self.figures.get("checks", [])
        # With a list of eps: per radius eps, robust_accuracy, robust, fooled and attacked per attack,
        # seconds; per image fooled_at (the index of the first radius that fooled it: -1 misclassified
        # clean, len(curve) robust at every radius). None for one eps.
        self.curve = self.figures.get("curve")
        self.fooled_at, self.curve_csv = r.get("fooled_at"), r.get("curve_csv")

    def __repr__(self):
        return self.table

    def _repr_markdown_(self):
        return self.table


def robust(model, data, y=None, eps=8 / 255, norm="inf", attacks=None, ensemble=None, eot_samples=None, steps=100,
           restarts=1, queries=5000, seed=0, check_count=100, batch_size=128, offset=0, threads=None, progress=False,
           mean=None, std=None):
    """Robust accuracy as `sdsgsm robust` computes it: each image's worst case over the sequence
    (default APGD-CE, APGD-T, FAB-T, Square, in every norm; norm="1" with AutoAttack's l1 settings),
    each attack run on the images still robust, with the gradient-masking checks. `data`: any data source (the module's docstring).
    The same figures as the CLI on the same model and images. `eps` a list (strictly increasing, e.g.
    [2/255, 4/255, 8/255]): robust accuracy at each radius in one run, as `sdsgsm robust --eps A,B,C`
    (the result's `curve` and `fooled_at`; its other figures are the largest radius's). `ensemble`:
    AutoAttack's version, "standard" (the default), "plus" or "rand" (APGD-CE and APGD-DLR averaging
    `eot_samples`, default 20, passes per step), as `--ensemble`; a model whose two passes differ
    switches the default to rand, and stops a version asked for; `attacks` a custom sequence."""
    source = as_source(data, y)
    prepared = _prepared_for(model, mean, std)
    device = str(data.device) if isinstance(data, torch.Tensor) else "cpu"
    example = source.read(0, 1)[0]
    before = torch.get_num_threads()
    try:
        if threads:
            torch.set_num_threads(int(threads))
        args = (str(norm), list(attacks or []), str(ensemble or ""), int(eot_samples or 0), steps, restarts, queries, seed, check_count, batch_size, offset,
                device, progress)
        if isinstance(eps, (list, tuple)):  # a curve over eps: strictly increasing, as the CLI's --eps list
            radii = [_number(e, "eps") for e in eps]
            r = _sdsgsm.robust_curve(prepared.handle_for(example), prepared.name, source._handle, radii, *args)
        else:
            r = _sdsgsm.robust(prepared.handle_for(example), prepared.name, source._handle, _number(eps, "eps"), *args)
    finally:
        torch.set_num_threads(before)
    return RobustResult(r)


class Comparison:
    """sdsgsm.compare's result: `results` (attack -> sdsgsm.attack's dict) and `table` (the CLI's
    comparison table, markdown)."""

    def __init__(self, results, table):
        self.results, self.table = results, table

    def __repr__(self):
        return self.table

    def _repr_markdown_(self):
        return self.table


def compare(model, data, y=None, attacks=("fgsm", "ifgsm", "pgd", "sdsgsm"), eps=8 / 255, **options):
    """The attacks on the same model and images, and the CLI's comparison table of them (ASR,
    distortions, SSIM, PSNR; float and 8-bit). Options as sdsgsm.attack's, for every attack."""
    from . import attack
    x, y = as_tensors(data, y)
    results = {name: attack(model, x, y, attack=name, eps=eps, **options) for name in attacks}
    return Comparison(results, _sdsgsm.comparison_markdown([r["report"] for r in results.values()]))


class Transfer:
    """sdsgsm.transfer's result: `cells` (per target: counted, fooled, asr, and the 8-bit ones) and
    `table` (the CLI's transfer matrix, markdown)."""

    def __init__(self, cells, table):
        self.cells, self.table = cells, table

    def __repr__(self):
        return self.table

    def _repr_markdown_(self):
        return self.table


def transfer(source, targets, data, y=None, attack="mifgsm", eps=8 / 255, **options):
    """Adversarials made on `source` evaluated on each target (a dict name -> model, or a list of
    models): per target, the share of the images fooled on the source and classified correctly
    by the target that fool the target too (the CLI's transfer cells)."""
    x, y = as_tensors(data, y)
    if isinstance(targets, dict):
        named = list(targets.items())
    else:
        named = [(_prepared_for(t, None, None).name, t) for t in targets]
    src = _prepared_for(source, None, None)
    _sdsgsm.check_attack(attack, dict(options, eps=eps))
    pairs = [(name, _prepared_for(t, None, None).handle_for(x)) for name, t in named]
    r = _sdsgsm.transfer(src.handle_for(x), src.name, pairs, x, y, attack, dict(options, eps=eps))
    return Transfer(r["cells"], r["table"])


class Report:
    """The HTML report of run folders (`sdsgsm report`): `html`, shown in Jupyter, `save(path)`."""

    def __init__(self, html):
        self.html = html

    def _repr_html_(self):
        return self.html

    def save(self, path):
        tmp = os.fspath(path) + ".partial"
        with open(tmp, "w") as f:
            f.write(self.html)
        os.replace(tmp, path)


def report(run_dirs, examples=4, model=True):
    """The report of a run folder, or of folders holding run folders (a compare or reproduce
    output), as `sdsgsm report` writes it. model=False skips loading the models for the examples."""
    if isinstance(run_dirs, (str, os.PathLike)):
        run_dirs = [run_dirs]
    return Report(_sdsgsm.report_html([os.fspath(d) for d in run_dirs], examples, model))
