"""The `tinyrobust` command line: argparse only; the work is in commands.py and friends."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

EXIT_BAD_INPUT = 2


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", default="nucleo_h743zi", help="target board (default: nucleo_h743zi)")
    p.add_argument("--calibration", type=str, default=None,
                   help=".npz with x: samples that give ranges to tensors the model states no grid for")
    p.add_argument("--input-range", default="0,1", help="float range of the model input when it has no "
                   "input quantizer (default 0,1)")
    p.add_argument("--packing", choices=("t2", "trit5"), default="t2", help="ternary weight packing")


def build_parser() -> argparse.ArgumentParser:
    from .robustness_cli import add_robustness_arguments

    parser = argparse.ArgumentParser(prog="tinyrobust", description="Deploy ternary QKeras models on STM32H7 "
                                     "and prove on the target that nothing was lost.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("export", help="QKeras .h5 → C library, firmware project, manifest and report")
    p.add_argument("model", help="QKeras model (.h5)")
    p.add_argument("-o", "--output", help="export directory (default: <model>_<board>)")
    p.add_argument("--build", action="store_true", help="cross-build the firmware and check the linked budget")
    _model_options(p)

    p = sub.add_parser("validate", help="accuracy, bit-exactness and latency on a target")
    p.add_argument("model", help="QKeras model (.h5) or an export directory")
    p.add_argument("--data", required=True, help=".npz with x (N, ...) float32 and y (N,) labels")
    p.add_argument("--target", default="reference", help="reference | host | qemu | renode | serial[:PORT]")
    p.add_argument("--json", help="write the report as JSON here")
    p.add_argument("--limit", type=int, default=None, help="use the first N samples only")
    p.add_argument("--out", help="where to export a .h5 model (default: a temporary directory)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--host-sanitize", action="store_true",
                   help="build the host target with ASan/UBSan (needs libasan in LD_PRELOAD)")
    _model_options(p)

    p = sub.add_parser("robustness", help="adversarial robustness (ART) of the deployed model, confirmed on a target")
    _model_options(p)
    add_robustness_arguments(p)

    p = sub.add_parser("demo", help="train/load the load_digits example, export, build, validate on QEMU")
    p.add_argument("--work-dir", help="keep the demo's files here (default: a temporary directory)")
    p.add_argument("--target", default="qemu", help="where to validate (default: qemu)")
    p.add_argument("--limit", type=int, default=None, help="validate on the first N held-out samples")

    p = sub.add_parser("bench", help="instructions per MAC of the tr_nn kernels and a paper-size model (QEMU)")
    p.add_argument("--json", help="write the results as JSON here")
    p.add_argument("--quick", action="store_true", help="smaller spatial sizes (same kernels), for tests")
    p.add_argument("--no-model", action="store_true", help="kernels only: skip the paper-size model")
    p.add_argument("--work-dir", help="keep the bench's builds and runs here (default: a temporary directory)")

    sub.add_parser("devices", help="list connected boards (mbed-tools detection)")

    p = sub.add_parser("flash", help="copy an export's firmware.bin to a connected board's ST-LINK drive")
    p.add_argument("export_dir", help="export directory built with --build")
    p.add_argument("--mount", help="mount point of the board's drive (default: the one connected board)")

    return parser


def _known_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean bad input or an unusable environment: one line and exit 2, no traceback."""
    from .bench import BenchError
    from .budget import BudgetError
    from .build import BuildError
    from .dataset import DatasetError
    from .export import ExportError
    from .frontend.safe_load import ModelFileError
    from .ir import UnsupportedModelError
    from .targets.factory import TargetSpecError
    from .targets.protocol import ProtocolError
    from .targets.qemu import QemuNotFound
    from .targets.renode import RenodeNotFound
    from .targets.serial_target import FlashError

    return (BenchError, BudgetError, BuildError, DatasetError, ExportError, ModelFileError, UnsupportedModelError,
            TargetSpecError, ProtocolError, QemuNotFound, RenodeNotFound, FlashError, FileNotFoundError)


def _handlers() -> dict[str, Callable[[Any], int]]:
    from . import bench, commands

    return {
        "bench": bench.run_bench,
        "robustness": commands.run_robustness,
        "export": commands.run_export,
        "validate": commands.run_validate,
        "demo": commands.run_demo,
        "devices": commands.run_devices,
        "flash": commands.run_flash,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _handlers()[args.command](args)
    except _known_errors() as exc:
        print(f"tinyrobust {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as exc:  # argument values the parser could not check (ranges, shapes)
        print(f"tinyrobust {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
