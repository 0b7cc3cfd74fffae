"""Everything a command line can get wrong, checked before any work (and before TensorFlow is imported).

A wrong --board used to fail after a 25–35 s conversion, a missing QEMU after a 10 s build, an
unwritable --json after the whole run. Here each command's arguments are checked in well under a
second: the board exists, the target is known and its tools are installed (QEMU, Renode, the cross
compiler, a serial port that exists), the model file is one tinyrobust can read (converter/model_file.py:
no TensorFlow), the data files exist, and every output path can be written (outputs.py). Each check
raises the TinyRobustError the command would have raised later.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from . import outputs
from .converter import model_file
from .errors import BadInputError, DatasetError, ExportError
from .firmware.boards import load_board
from .firmware.crossbuild import find_toolchain
from .firmware.hostbuild import host_compiler
from .firmware.project import MANIFEST
from .targets.factory import TargetSpecError, parse_target
from .targets.qemu import find_qemu
from .targets.renode import find_renode

TRAIN_ARCHITECTURES = ("digits_cnn", "paper", "resnet8", "ds_cnn")  # converter/frontend/builders.py's names


def model(path: Path, *, export_dir_allowed: bool) -> None:
    """A .h5 tinyrobust can read, or (when allowed) an export directory."""
    path = Path(path)
    if export_dir_allowed and path.is_dir():
        model_file.check_model_path_kind(path)  # a SavedModel directory is named as such
        if not (path / MANIFEST).is_file():
            raise ExportError(f"{path}: neither a model file (.h5) nor a tinyrobust export directory (no {MANIFEST})")
        return
    model_file.read_model_config(path)


def data_file(path: Path | None, option: str) -> None:
    if path is not None and not Path(path).is_file():
        raise DatasetError(f"{option} {path}: no such file")


def board(name: str) -> None:
    load_board(name)


def target(spec: str, *, builds_firmware: bool) -> None:
    """The target is known and what it needs is installed: the emulator, and the cross compiler when
    the firmware will be built; a named serial port exists."""
    kind, arg = parse_target(spec)
    if kind == "qemu":
        find_qemu()
    elif kind == "renode":
        find_renode()
    elif kind == "host":
        host_compiler()
    elif kind == "serial" and arg is not None and "://" not in arg and not Path(arg).exists():
        raise TargetSpecError(f"--target {spec}: no serial port {arg} (is the board plugged in?)")
    if builds_firmware and kind in ("qemu", "renode"):
        find_toolchain()


def export_directory(path: Path) -> None:
    """-o can be written, and holds nothing export would refuse to replace."""
    path = Path(path)
    outputs.check_directory(path, "-o")
    if path.exists():
        if not path.is_dir():
            raise ExportError(f"{path} exists and is not a directory")
        if any(path.iterdir()) and not (path / MANIFEST).is_file():
            raise ExportError(f"{path} exists, is not empty and is not a tinyrobust export; refusing to replace it")


def _optional_file(path: Path | None, option: str) -> None:
    if path is not None:
        outputs.check_file(path, option)


def _optional_directory(path: Path | None, option: str) -> None:
    if path is not None:
        outputs.check_directory(path, option)


def _export(a: argparse.Namespace) -> None:
    board(a.board)
    export_directory(a.output or Path(f"{a.model.stem}_{a.board}"))
    data_file(a.calibration, "--calibration")
    if a.build:
        find_toolchain()
    model(a.model, export_dir_allowed=False)


def _validate(a: argparse.Namespace) -> None:
    board(a.board)
    is_export = a.model.is_dir() and (a.model / MANIFEST).is_file()
    target(a.target, builds_firmware=not is_export)
    data_file(a.data, "--data")
    data_file(a.calibration, "--calibration")
    _optional_file(a.json, "--json")
    if a.out is not None:
        export_directory(a.out)
    if a.profile:
        profile_options(a.target, export=a.model if is_export else None, out=a.out)
    model(a.model, export_dir_allowed=True)


def profile_options(spec: str, *, export: Path | None, out: Path | None) -> None:
    """validate --profile needs a target that counts and an export directory that stays to hold the counts
    (one given must already have the report.json they go into)."""
    kind, _ = parse_target(spec)
    if kind in ("reference", "host"):
        raise BadInputError(f"--profile: target {kind} counts neither instructions nor cycles; "
                            "use --target qemu, renode or serial")
    if export is None and out is None:
        raise BadInputError("--profile writes the counts into the export's report: give an export directory, "
                            "or --out DIR with the .h5")
    if export is not None:
        outputs.check_file(Path(export) / "report.json", "--profile")
        if not (Path(export) / "report.json").is_file():
            raise BadInputError(f"--profile: {export} has no report.json to add the counts to; export it again")


def _robustness(a: argparse.Namespace) -> None:
    board(a.board)
    target(a.target, builds_firmware=True)
    data_file(a.data, "--data")
    data_file(a.calibration, "--calibration")
    _optional_file(a.json, "--json")
    _optional_file(a.html, "--html")
    _optional_file(a.markdown, "--markdown")
    for path in a.models:
        model(path, export_dir_allowed=False)
    if a.source is not None:
        model(a.source, export_dir_allowed=False)


DEMO_MARKER = "TINYROBUST-DEMO.txt"  # a folder holding it is an earlier demo's, refreshed by the next run


def demo_directory(path: Path) -> None:
    """The demo's folder can be written and is empty, new or an earlier demo's: a user's files are never replaced."""
    path = Path(path)
    outputs.check_directory(path, "-o")
    if path.exists():
        if not path.is_dir():
            raise ExportError(f"{path} exists and is not a directory")
        if any(path.iterdir()) and not (path / DEMO_MARKER).is_file():
            raise ExportError(f"{path} exists, is not empty and is not a tinyrobust demo folder; name another with -o")


def _train(a: argparse.Namespace) -> None:
    data_file(a.data, "--data")
    data_file(a.val, "--val")
    data_file(a.test, "--test")
    outputs.check_file(a.output, "-o")
    if a.arch.endswith((".h5", ".hdf5", ".keras")) or Path(a.arch).exists():
        model(Path(a.arch), export_dir_allowed=False)
    elif a.arch not in TRAIN_ARCHITECTURES:
        raise BadInputError(f"--arch {a.arch}: neither a built-in architecture ({', '.join(TRAIN_ARCHITECTURES)}) "
                            "nor a model file")
    if a.then_evaluate:
        board(a.board)
        target(a.target, builds_firmware=True)


def _demo(a: argparse.Namespace) -> None:
    target(a.target, builds_firmware=True)
    demo_directory(a.work_dir)


def _bench(a: argparse.Namespace) -> None:
    target("qemu", builds_firmware=True)
    _optional_file(a.json, "--json")
    _optional_directory(a.work_dir, "--work-dir")


def _flash(a: argparse.Namespace) -> None:
    if not (Path(a.export_dir) / MANIFEST).is_file():
        raise BadInputError(f"{a.export_dir}: not a tinyrobust export directory (no {MANIFEST})")


CHECKS: dict[str, Callable[[argparse.Namespace], None]] = {
    "export": _export,
    "validate": _validate,
    "robustness": _robustness,
    "train": _train,
    "demo": _demo,
    "bench": _bench,
    "flash": _flash,
}


def check(command: str, args: argparse.Namespace) -> None:
    """Raise the first problem with `command`'s arguments; silent when there is none."""
    checker = CHECKS.get(command)
    if checker is not None:
        checker(args)
