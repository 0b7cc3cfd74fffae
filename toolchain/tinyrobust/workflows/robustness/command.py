"""`tinyrobust robustness`: convert the model, open the target, evaluate, write the reports."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ... import console
from ...converter.pipeline import DeployedModel, convert_file
from ...dataset import Dataset
from ...errors import EXIT_MISMATCH
from ...firmware.project import load_export
from ...targets.factory import open_target, parse_target
from ..export import export_program
from .evaluation import evaluate_robustness
from .report import table_markdown, write_reports
from .results import RobustnessResult, TargetRunner


class DeviceRunner:
    """int8 inputs → the target's int8 outputs, for the attacks; owns the target and the temporary
    export it was built from until close()."""

    def __init__(self, model: DeployedModel, board: str, target_spec: str):
        self._tmp = tempfile.TemporaryDirectory(prefix="tinyrobust-robustness-")
        try:
            out = Path(self._tmp.name) / "export"
            export_program(model.program, board, out)
            export = load_export(out)
            self._target = open_target(target_spec, export)
            self._target.check_model_hash(bytes.fromhex(export.manifest["program_sha256"]))
        except BaseException:
            self._tmp.cleanup()
            raise

    def __call__(self, x_int8: np.ndarray) -> np.ndarray:
        return self._target.infer_batch(x_int8)[0]

    def close(self) -> None:
        try:
            self._target.close()
        finally:
            self._tmp.cleanup()


def robustness_command(*, model: Path, data: Path, target: str, attacks: Sequence[str], eps: Sequence[float] | None,
                       limit: int | None, seed: int, json_path: Path | None, html_path: Path | None, progress: bool,
                       board: str, calibration: Path | None, input_range: tuple[float, float], packing: str) -> int:
    """0 all good, 1 a target output differed from the reference."""
    dataset = Dataset.load(data)
    console.step(f"loading TensorFlow and converting {model.name}")
    deployed = convert_file(model, calibration=calibration, input_range=input_range, packing=packing)
    kind, _ = parse_target(target)
    device = None if kind == "reference" else DeviceRunner(deployed, board, target)
    run_target: TargetRunner = deployed.reference.run if device is None else device
    try:
        result = evaluate_robustness(deployed, dataset, run_target=run_target, attacks=attacks, eps=eps, limit=limit,
                                     seed=seed, progress=progress, target_name=target)
    finally:
        if device is not None:
            device.close()
    return finish(result, json_path, html_path)


def finish(result: RobustnessResult, json_path: Path | None, html_path: Path | None) -> int:
    """Write the reports and print the table; 1 when any target output differed from the reference."""
    write_reports(result, json_path, html_path)
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
        return EXIT_MISMATCH
    return 0
