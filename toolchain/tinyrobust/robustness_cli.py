"""`tinyrobust robustness`: arguments and the command (the evaluation is in robustness.py)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .dataset import Dataset, DatasetError
from .pipeline import DeployedModel
from .robustness import evaluate_robustness
from .robustness_report import table_markdown, write_reports
from .robustness_results import ATTACKS, RobustnessError, TargetRunner

# ---------------------------------------------------------------------------------------------------
# CLI glue (the lead's cli.py wires these into `tinyrobust robustness`)
# ---------------------------------------------------------------------------------------------------


def _parse_floats(text: str, what: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{what}: expected comma-separated numbers, got '{text}'") from exc
    if not vals:
        raise argparse.ArgumentTypeError(f"{what}: empty list")
    return vals


def _parse_attacks(text: str) -> list[str]:
    names = [a.strip().lower() for a in text.split(",") if a.strip()]
    bad = [a for a in names if a not in ATTACKS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown attack(s) '{text}'; choose from {','.join(ATTACKS)}")
    return names


def _parse_range(text: str) -> tuple[float, float]:
    vals = _parse_floats(text, "--input-range")
    if len(vals) != 2 or not vals[0] < vals[1]:
        raise argparse.ArgumentTypeError(f"--input-range: expected lo,hi with lo < hi, got '{text}'")
    return vals[0], vals[1]


def add_robustness_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL.h5", help="the trained QKeras model")
    parser.add_argument("--data", required=True, help="dataset .npz with x (N, …) float32 and y (N,) labels")
    parser.add_argument(
        "--target",
        default="reference",
        help="where to run the deployed model: reference|host|qemu|renode|serial[:PORT]",
    )
    parser.add_argument(
        "--attacks",
        type=_parse_attacks,
        default=list(ATTACKS),
        help=f"comma-separated subset of {','.join(ATTACKS)} (default: all)",
    )
    parser.add_argument(
        "--eps",
        type=lambda s: _parse_floats(s, "--eps"),
        default=None,
        help="L∞ budgets in input units, e.g. 0.05,0.1 (default: 0,.02,.05,.1,.2,.3 × range)",
    )
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N samples")
    parser.add_argument("--seed", type=int, default=0, help="seed for numpy, TensorFlow and the attacks")
    parser.add_argument("--json", type=Path, default=None, help="write the JSON report here")
    parser.add_argument("--html", type=Path, default=None, help="write the HTML report (with plots) here")
    # The CLI may already share these model options between subcommands; add only what is missing.
    have = set(getattr(parser, "_option_string_actions", {}))
    if "--calibration" not in have:
        parser.add_argument("--calibration", default=None, help="calibration .npz for tensors without a grid")
    if "--input-range" not in have:
        parser.add_argument(
            "--input-range",
            default="0,1",
            help="lo,hi of the float input when the model has no input quantizer (default 0,1)",
        )
    if "--no-progress" not in have:
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_robustness_command(
    args: argparse.Namespace, run_target_factory: Callable[[DeployedModel, Any], TargetRunner]
) -> int:
    """`tinyrobust robustness`: 0 all good, 1 a target output differed from the reference, 2 bad input.

    `run_target_factory(model, args)` returns the target runner; if the runner has a close() method it is
    called when the evaluation ends, even on error.
    """
    from .pipeline import convert

    def fail(msg: str) -> int:
        print(f"tinyrobust robustness: error: {msg}", file=sys.stderr)
        return 2

    try:
        if args.limit is not None and args.limit <= 0:
            return fail(f"--limit must be positive, got {args.limit}")
        model_path = Path(args.model)
        if not model_path.is_file():
            return fail(f"{model_path}: no such model file")
        data = Dataset.load(args.data)
        calibration = Dataset.load(args.calibration, need_labels=False) if args.calibration else None
        input_range = getattr(args, "input_range", "0,1")
        if isinstance(input_range, str):
            input_range = _parse_range(input_range)
        options: dict[str, Any] = {"input_range": tuple(input_range)}
        if getattr(args, "packing", None):
            options["packing"] = args.packing  # the numerics do not depend on it, but the export does
        model = convert(model_path, calibration=calibration, **options)
        run_target = run_target_factory(model, args)
        try:
            result = evaluate_robustness(
                model,
                data,
                run_target=run_target,
                attacks=args.attacks,
                eps=args.eps,
                limit=args.limit,
                seed=args.seed,
                progress=not args.no_progress,
                target_name=str(args.target),
            )
        finally:
            # A runner that owns a device session (QEMU process, serial port) may expose close().
            close = getattr(run_target, "close", None)
            if callable(close):
                close()
    except (DatasetError, RobustnessError, argparse.ArgumentTypeError) as exc:
        return fail(str(exc))
    except (OSError, ValueError) as exc:  # conversion errors (unsupported model, calibration needed, …)
        return fail(f"{type(exc).__name__}: {exc}")
    write_reports(result, args.json, args.html)
    print(table_markdown(result))
    for m in result.masking:
        if m.flagged:
            print(f"gradient-masking check FLAGGED: {m.check}: {m.detail}")
    if not result.all_confirmed or result.target_mismatches:
        print(
            f"TARGET MISMATCH: {result.target_mismatches} of {result.target_inputs} target outputs differ "
            "from the reference; "
            + "; ".join(
                f"{c.attack}: {c.bytes_identical}/{c.examples} bytes identical, "
                f"{c.flips_confirmed}/{c.reference_flips} flips confirmed"
                for c in result.confirmations
            ),
            file=sys.stderr,
        )
        return 1
    return 0

