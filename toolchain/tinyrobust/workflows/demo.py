"""`tinyrobust demo`: the whole promise on the shipped example, kept in a folder the user can reuse.

Copy the example (a stochastic-ternary QKeras model on load_digits, its calibration and held-out data)
into the demo folder (default ./tinyrobust-demo), export it for the NUCLEO-H743ZI with the firmware
built, validate it on the emulated Cortex-M7 (QEMU) over the held-out split, and print the results,
what ran where, the model's own memory beside the whole firmware's, and the next commands to try,
which work on the folder's files as they stand.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

from .. import console, lazy, preflight
from ..converter.pipeline import convert_file
from ..dataset import Dataset
from ..errors import EXIT_MISMATCH
from ..firmware.boards import load_board
from ..firmware.mapfile import model_usage
from ..firmware.project import MANIFEST, load_export
from ..resources import example_file
from ..targets.factory import parse_target
from ..targets.qemu import QEMU_BOARD
from .export import export_program
from .validate import validate

HELD_OUT_FROM = 1200  # load_digits samples [1200:] (597) are never trained on
EXAMPLE = "examples/digits_stq.h5"
MODEL, CALIBRATION, TEST = "digits_stq.h5", "digits_cal.npz", "digits_test.npz"
BOARD = "nucleo_h743zi"
DEFAULT_DIR = Path("tinyrobust-demo")


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


def demo_folder(folder: Path) -> Path:
    """The demo's folder, created; one from an earlier demo is reused, anything else non-empty refused."""
    preflight.demo_directory(folder)
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _stage_inputs(folder: Path) -> tuple[Path, Path, Path]:
    """The example's model and data in the folder: copied when shipped, otherwise made (and the model trained)."""
    model, cal, test = folder / MODEL, folder / CALIBRATION, folder / TEST
    shipped = {name: example_file(name) for name in (MODEL, CALIBRATION, TEST)}
    if shipped[CALIBRATION] and shipped[TEST]:
        shutil.copyfile(shipped[CALIBRATION], cal)
        shutil.copyfile(shipped[TEST], test)
    else:
        split = digits_split()
        np.savez_compressed(cal, x=split.x_train, y=split.y_train)
        np.savez_compressed(test, x=split.x_test, y=split.y_test)
    if shipped[MODEL]:
        shutil.copyfile(shipped[MODEL], model)
    else:
        console.step("training the example model on load_digits (no shipped example found)")
        train_digits_model(model)
    return model, cal, test


def demo_command(*, work_dir: Path | None = None, target: str = "qemu", limit: int | None = None) -> int:
    folder = demo_folder(work_dir or DEFAULT_DIR)
    (folder / preflight.DEMO_MARKER).write_text("Written by `tinyrobust demo`; its next run replaces these files.\n")
    console.step(f"tinyrobust demo: working in {folder}")
    model, cal, test = _stage_inputs(folder)
    console.step(f"loading TensorFlow and converting {model.name} (calibration: {cal.name})")
    deployed = convert_file(model, calibration=cal, input_range=None, packing="t2")
    console.step("exporting and cross-building the NUCLEO-H743ZI firmware")
    result = export_program(deployed.program, BOARD, folder / "export", model_path=model, build=True)
    export = load_export(result.out_dir)
    data = Dataset.load(test).limit(limit)
    keras_out = deployed.keras_predict(data.x)
    validation = validate(export, data, target, keras_outputs=keras_out, progress=os.environ.get("CI") is None)
    (folder / "validation.json").write_text(json.dumps(validation.report, indent=1, sort_keys=True) + "\n")
    lines = [*summary(result.report, validation.report), "", *what_ran(folder, target),
             "", *memory_lines(result.out_dir), "", *next_commands(folder)]
    print()
    print("\n".join(lines))
    return 0 if validation.bit_exact else EXIT_MISMATCH


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to where they are when it is below it."""
    try:
        text = str(path.relative_to(Path.cwd()))
    except ValueError:
        text = str(path)
    return shlex.quote(text)


def summary(export_report: dict, report: dict) -> list[str]:
    acc = report["accuracy"]
    n = report["samples"]
    lines = [
        "tinyrobust demo: stochastic-ternary CNN on load_digits → NUCLEO-H743ZI",
        f"  held-out samples        {n}",
        f"  accuracy keras          {100 * acc['keras']:.2f} %",
        f"  accuracy reference      {100 * acc['reference']:.2f} %",
        f"  accuracy target         {100 * acc['target']:.2f} %   ({report['target']})",
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
    return lines


def what_ran(folder: Path, target: str) -> list[str]:
    kind = parse_target(target)[0]
    nucleo = _shown(folder / "export" / "firmware" / "firmware.bin")
    if kind == "qemu":
        ran = [f"  ran     {_shown(folder / 'export' / f'firmware-{QEMU_BOARD}' / 'firmware.elf')}: the QEMU build",
               f"          ({QEMU_BOARD}: Cortex-M7 on qemu-system-arm -M mps2-an500) of the same model/ and",
               "          tr_nn/ sources, compiled with the same flags; only start-up, UART and memory map differ"]
    elif kind in ("reference", "host"):
        ran = [f"  ran     the {kind} build of the same model (no Cortex-M7 involved)"]
    else:
        ran = [f"  ran     {nucleo} on {target}"]
    lines = ["What ran", *ran]
    if kind in ("qemu", "reference", "host"):
        lines.append(f"  built   {nucleo}: the NUCLEO-H743ZI image, linked and sized; not run (it needs the board)")
    return lines


def memory_lines(export_dir: Path) -> list[str]:
    """Per region of the NUCLEO image: the model's part (its library and kernels) beside the whole firmware."""
    report = json.loads((export_dir / "report.json").read_text())
    linked = report["budget"]["linked"]
    board = load_board(json.loads((export_dir / MANIFEST).read_text())["board"])
    firmware = export_dir / "firmware"
    model = model_usage(firmware / "firmware.elf", firmware / "firmware.map", board)
    lines = [f"{'Memory of the NUCLEO-H743ZI image':<24}{'model (library + kernels)':>27}   whole evaluation firmware"]
    for name, r in linked["regions"].items():
        if r["used"] == 0:
            continue
        lines.append(f"  {name:<22}{model.get(name, 0):>25,} B   {r['used']:>9,} / {r['size']:,} B "
                     f"({100 * r['used'] / r['size']:.1f} %)")
    arena = report.get("arena") or {}
    lines.append(f"  the model's RAM is its arena ({arena.get('bytes', 0):,} B) and weight-decode tables; the rest "
                 "is the\n  evaluation firmware's stack, UART and protocol buffers, which your own firmware replaces")
    return lines


def next_commands(folder: Path) -> list[str]:
    model, cal, test, export = (_shown(folder / n) for n in (MODEL, CALIBRATION, TEST, "export"))
    return [
        f"Files in {_shown(folder)}/: {MODEL} (the model), {CALIBRATION} and {TEST} (its data), export/ "
        "(report.md, model/, tr_nn/, firmware/), validation.json",
        "Next, try:",
        "  # every deployed tensor against its Keras counterpart",
        f"  tinyrobust validate {model} --calibration {cal} --data {test} --layers",
        "  # adversarial robustness, every adversarial input confirmed on the emulator",
        f"  tinyrobust robustness {model} --calibration {cal} --data {test} --target qemu --limit 50 "
        "--html robustness.html",
        "  # with a NUCLEO-H743ZI on USB: flash the image, then validate on the board",
        f"  tinyrobust flash {export} && tinyrobust validate {export} --data {test} --target serial",
    ]
