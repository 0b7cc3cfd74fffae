"""`tinyrobust train`: train a (robust, ternary) model on an .npz dataset, write it atomically, and with
--then-evaluate export it and run the robustness evaluation on it.

The training itself (schedule, regularisers) is converter/frontend/training.py; this module reads and
checks the inputs, reports progress (a bar on a terminal, one line per epoch otherwise) and writes
the result.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .. import console, lazy
from ..dataset import Dataset
from ..errors import BadInputError, DatasetError
from ..outputs import OutputError, plain_write_mode

DEFAULT_ADV_EPS = 0.1  # fraction of the data's range, when --adv-eps is not given


class TrainingOptionError(BadInputError):
    """A regulariser weight or training option that cannot be used."""


@dataclass(frozen=True)
class TrainOptions:
    arch: str
    quantize: str = "stq"
    jr: float | None = None
    lipschitz: tuple[float, float] | None = None
    adv: str | None = None
    adv_eps: float | None = None
    epochs: int = 30
    patience: int | None = None
    seed: int = 0
    batch_size: int = 64

    def check(self) -> None:
        if self.jr is not None and not (math.isfinite(self.jr) and self.jr > 0):
            raise TrainingOptionError(f"--jr {self.jr}: the Jacobian weight λ must be a positive number")
        if self.lipschitz is not None:
            beta, lam = self.lipschitz
            if not (math.isfinite(beta) and beta > 0 and math.isfinite(lam) and lam > 0):
                raise TrainingOptionError(f"--lipschitz {beta:g},{lam:g}: β and λ must be positive numbers")
        if self.adv_eps is not None and not (math.isfinite(self.adv_eps) and self.adv_eps > 0):
            raise TrainingOptionError(f"--adv-eps {self.adv_eps}: ε must be a positive number")
        if self.adv_eps is not None and self.adv is None:
            raise TrainingOptionError("--adv-eps needs --adv fgsm|pgd")


def _datasets(data: Path, val: Path) -> tuple[Dataset, Dataset, int]:
    train, valid = Dataset.load(data), Dataset.load(val)
    if train.x.shape[1:] != valid.x.shape[1:]:
        raise DatasetError(f"--val {val}: samples have shape {valid.x.shape[1:]}, --data's have {train.x.shape[1:]}")
    assert train.y is not None and valid.y is not None
    classes = int(max(train.y.max(), valid.y.max())) + 1
    if classes < 2:
        raise DatasetError(f"--data {data}: labels hold one class only; nothing to learn")
    return train, valid, classes


def _reporter(total: int, what: str | None, progress: bool) -> tuple[Callable[[Any], None], Callable[[], None]]:
    """(on_epoch, close): a bar with the epoch's numbers on a terminal, else one plain line per epoch on
    stdout (as every command's progress); nothing with --quiet."""
    show = not console.quiet()  # --no-progress keeps the epoch lines, drops the bar
    bar = (tqdm(total=total, desc="train", unit="epoch", file=sys.stdout)
           if show and progress and console.interactive() else None)

    def on_epoch(e: Any) -> None:
        numbers = {"loss": f"{e.loss:.3f}", "acc": f"{e.accuracy:.3f}"}
        if what is not None:  # the weighted regularisers' value (adversarial training has none)
            numbers[what] = f"{e.regulariser:.3g}"
        numbers["val_acc"] = f"{e.val_accuracy:.3f}"
        if bar is not None:
            bar.set_postfix(numbers, refresh=False)
            bar.update(1)
        elif show:
            print(f"epoch {e.epoch}/{total}: " + ", ".join(f"{k} {v}" for k, v in numbers.items())
                  + f" ({e.seconds:.1f} s)", flush=True)

    return on_epoch, (bar.close if bar is not None else (lambda: None))


def save_model_atomically(model: Any, path: Path) -> None:
    """Keras writes to a temporary .h5 beside `path`, renamed over it: never a half-written model."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = plain_write_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".h5", dir=path.parent)
    os.fchmod(fd, mode)  # as outputs.write_text does: not mkstemp's 0600
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras's advice to use its .keras format: .h5 is what export reads
            model.save(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(f"-o {path}: could not be written ({exc.strerror or exc})") from exc
        raise


def train(data: Path, val: Path, output: Path, options: TrainOptions, *, progress: bool = True) -> Any:
    """Train and write the model; returns the training history."""
    options.check()
    train_set, val_set, classes = _datasets(data, val)
    frontend = lazy.frontend()
    quant = frontend.recipe.Quantization(options.quantize)
    arch: str | Path = options.arch if options.arch in frontend.builders.ARCHITECTURES else Path(options.arch)
    model, how = frontend.builders.starting_model(arch, quant, tuple(train_set.x.shape[1:]), classes,
                                                  seed=options.seed)
    lo, hi = float(train_set.x.min()), float(train_set.x.max())
    t = frontend.training
    regs = t.Regularisers(jr=options.jr or 0.0, lipschitz=options.lipschitz, adv=options.adv,
                          adv_eps=options.adv_eps or DEFAULT_ADV_EPS * (hi - lo), input_range=(lo, hi))
    schedule = t.Schedule(epochs=options.epochs, batch_size=options.batch_size, patience=options.patience,
                          seed=options.seed)
    print(f"training {how}: {model.count_params():,} parameters, {len(train_set)} samples, {classes} classes; "
          f"regularisers: {regs.describe()}", flush=True)
    what = "+".join(n for n, on in (("jr", options.jr), ("lip", options.lipschitz)) if on) or None
    on_epoch, close = _reporter(options.epochs, what, progress)
    try:
        history = t.fit(model, train_set.x, train_set.y, val_set.x, val_set.y, schedule=schedule,
                        regularisers=regs, on_epoch=on_epoch)
    finally:
        close()
    save_model_atomically(model, output)
    best = history.epochs[history.best_epoch - 1]
    print(f"wrote {output}: {len(history.epochs)} epochs in {history.seconds:.0f} s "
          f"({history.seconds / len(history.epochs):.2f} s/epoch){' (stopped early)' if history.stopped_early else ''}"
          f"; validation accuracy {best.val_accuracy:.3f} (epoch {history.best_epoch})")
    return history


def train_command(*, data: Path, val: Path, output: Path, options: TrainOptions, then_evaluate: bool,
                  test: Path | None, target: str, limit: int | None, board: str, packing: str,
                  progress: bool) -> int:
    train(data, val, output, options, progress=progress)
    if not then_evaluate:
        return 0
    export = lazy.workflow("export")
    code = export.export_command(model=output, board=board, output=output.with_name(f"{output.stem}_{board}"),
                                 calibration=None, input_range=None, packing=packing, build=False)
    if code:
        return code
    return lazy.workflow("robustness.command").robustness_command(
        models=[output], data=test or val, target=target, attacks=None, threat_models=None, source=None,
        norms=["linf"], eps=None, limit=limit, seed=options.seed, iterations=None, restarts=None, queries=None,
        budget={}, folds=None, jobs=0, shard_size=100, strict=False,
        json_path=output.with_name(f"{output.stem}_robustness.json"), html_path=None, markdown_path=None,
        progress=progress, board=board, calibration=None, input_range=None, packing=packing)
