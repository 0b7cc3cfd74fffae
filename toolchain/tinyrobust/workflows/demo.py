"""`tinyrobust demo`: the whole promise on the embedded example.

Train (or load the committed) stochastic-ternary QKeras model on load_digits, export it for the
NUCLEO-H743ZI with the firmware built, validate it on the emulated Cortex-M7 (QEMU) over the
held-out split, and print what a user wants to see.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

from .. import lazy
from ..converter.pipeline import convert_file
from ..dataset import Dataset
from ..errors import EXIT_MISMATCH
from ..firmware.project import load_export
from ..resources import checkout_file
from .export import export_program
from .validate import validate

HELD_OUT_FROM = 1200  # load_digits samples [1200:] (597) are never trained on
EXAMPLE = "examples/digits_stq.h5"


@dataclass(frozen=True)
class DigitsSplit:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def digits_split(seed: int = 0) -> DigitsSplit:
    """load_digits (ships with scikit-learn) scaled to [0, 1], shuffled once, split 1200 / 597."""
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    y = d.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    return DigitsSplit(x[:HELD_OUT_FROM], y[:HELD_OUT_FROM], x[HELD_OUT_FROM:], y[HELD_OUT_FROM:])


def train_digits_model(path: Path) -> Path:
    """The example model, as examples/train_digits.py makes it (deterministic)."""
    split = digits_split()
    return lazy.frontend().models.train_digits_cnn(path, split.x_train, split.y_train)


def demo_command(*, work_dir: Path | None = None, target: str = "qemu", limit: int | None = None) -> int:
    with tempfile.TemporaryDirectory(prefix="tinyrobust-demo-") as tmp_name:
        work = work_dir or Path(tmp_name)
        work.mkdir(parents=True, exist_ok=True)
        split = digits_split()
        cal_path, test_path = work / "digits_train.npz", work / "digits_test.npz"
        np.savez(cal_path, x=split.x_train, y=split.y_train)
        np.savez(test_path, x=split.x_test, y=split.y_test)
        model = checkout_file(EXAMPLE)
        if model is None:
            print("training the example model on load_digits (no committed example found)…")
            model = train_digits_model(work / Path(EXAMPLE).name)
        print(f"model: {model}")
        deployed = convert_file(model, calibration=cal_path, input_range=(0.0, 1.0), packing="t2")
        result = export_program(deployed.program, "nucleo_h743zi", work / "export", model_path=model, build=True)
        export = load_export(result.out_dir)
        data = Dataset.load(test_path).limit(limit)
        keras_out = deployed.keras_predict(data.x)
        validation = validate(export, data, target, keras_outputs=keras_out,
                              progress=os.environ.get("CI") is None)
        print()
        print("\n".join(summary(result.report, validation.report)))
        return 0 if validation.bit_exact else EXIT_MISMATCH


def summary(export_report: dict, report: dict) -> list[str]:
    acc = report["accuracy"]
    n = report["samples"]
    lines = [
        "tinyrobust demo: stochastic-ternary CNN on load_digits → NUCLEO-H743ZI (validated on "
        f"{report['target']})",
        f"  held-out samples        {n}",
        f"  accuracy keras          {100 * acc['keras']:.2f} %",
        f"  accuracy reference      {100 * acc['reference']:.2f} %",
        f"  accuracy target         {100 * acc['target']:.2f} %",
        f"  bit-exact vs reference  {report['agreement']['target_reference_exact']}/{n}",
        f"  top-1 ref vs keras      {report['agreement']['reference_keras_top1']}/{n}",
    ]
    lat = report.get("latency") or {}
    if lat.get("unit") not in (None, "none"):
        macs = export_report["totals"]["macs"]
        lines.append(f"  latency                 {lat['mean']:,.0f} {lat['unit']} per inference "
                     f"({lat['mean'] / max(macs, 1):.2f} per MAC, {macs:,} MACs)")
    t = export_report["totals"]
    lines.append(f"  weights                 {t['params']:,} ({export_report['packing']}, "
                 f"{t['packed_weight_bytes']:,} B packed)")
    linked = export_report["budget"]["linked"] or export_report["budget"]["estimate"]
    for name, r in linked["regions"].items():
        lines.append(f"  {name:<23} {r['used']:>9,} / {r['size']:,} B ({100 * r['used'] / r['size']:.1f} %)")
    return lines
