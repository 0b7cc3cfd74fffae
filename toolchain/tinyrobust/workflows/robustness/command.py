"""`tinyrobust robustness`: convert each model, open its target, evaluate, write the reports."""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ... import console, lazy
from ...converter import frontend as _frontend  # noqa: F401  (before .evaluation imports ART: see below)
from ...converter import memplan
from ...converter.pipeline import DeployedModel, convert_file
from ...converter.precision import DEFAULT_FIDELITY, Fidelity
from ...dataset import Dataset
from ...errors import EXIT_MISMATCH
from ...firmware import budget as memory_budget
from ...firmware.boards import load_board
from ...firmware.project import load_export
from ...targets.factory import open_target, parse_target
from ..export import export_program
from .budget import AttackBudget
from .errors import EXIT_MASKING_FLAGGED, RobustnessError
from .evaluation import DEFAULT_ATTACKS, DEFAULT_THREATS, ModelUnderTest, Settings, check_data, evaluate
from .report import table_markdown, write_reports
from .results import Evaluation
from .shards import ModelSpec
from .threats import TRANSFER

# The frontend is imported before evaluation.py imports ART (which imports TensorFlow), so the legacy-Keras
# switch holds and TensorFlow's and ART's start-up lines ("PyTorch not found") are filtered as elsewhere.


class DeviceRunner:
    """int8 inputs → the target's int8 outputs and counts; owns the target and the temporary export it
    was built from until close()."""

    def __init__(self, model: DeployedModel, board: str, target_spec: str):
        self._tmp = tempfile.TemporaryDirectory(prefix="tinyrobust-robustness-")
        try:
            out = Path(self._tmp.name) / "export"
            export_program(model.program, board, out)
            export = load_export(out)
            self._target = open_target(target_spec, export)
            self._target.check_model_hash(bytes.fromhex(export.manifest["program_sha256"]))
            self.counter_unit = self._target.counter_unit
        except BaseException:
            self._tmp.cleanup()
            raise

    def __call__(self, x_int8: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return self._target.infer_batch(x_int8)

    def close(self) -> None:
        try:
            self._target.close()
        finally:
            self._tmp.cleanup()


def flash_bytes(model: DeployedModel, board: str) -> int:
    """Bytes of the board's flash the model uses: packed weights, tables and the code estimate (what
    `export` reports before building; the same for every target)."""
    the_board = load_board(board)
    estimate = memory_budget.estimate(memplan.plan(model.program), the_board)
    flash = {r.name for r in the_board.regions if r.kind == "flash"}
    return sum(r.used for r in estimate.regions if r.region in flash)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def model_names(paths: Sequence[Path]) -> list[str]:
    """Each model's file stem, with its parent folder added where stems repeat."""
    stems = [p.stem for p in paths]
    return [f"{p.parent.name}/{p.stem}" if stems.count(p.stem) > 1 else p.stem for p in paths]


def settings_from(*, attacks: Sequence[str] | None, threat_models: Sequence[str] | None, source: Path | None,
                  norms: Sequence[str], eps: Sequence[tuple[str | None, list[float]]] | None, limit: int | None,
                  seed: int, iterations: int | None, restarts: int | None, queries: int | None,
                  budget: Mapping[str, str], folds: int | None, jobs: int, shard_size: int) -> Settings:
    """The command's options as Settings (ε per norm, budget overrides), checked."""
    norms = tuple(norms)
    per_norm: dict[str, tuple[float, ...]] | None = None
    if eps:
        per_norm = {}
        for norm, values in eps:
            if norm is None:
                if len(norms) != 1:
                    raise RobustnessError("with several --norm values, give ε per norm: --eps linf:0.05,0.1")
                norm = norms[0]
            per_norm[norm] = tuple(per_norm.get(norm, ())) + tuple(values)
    threats = tuple(threat_models) if threat_models else DEFAULT_THREATS + ((TRANSFER,) if source else ())
    if source is None and TRANSFER in threats:
        raise RobustnessError("--threat-models transfer needs a float source model: --source model.h5")
    overrides = dict(budget)
    for name, value in (("iterations", iterations), ("restarts", restarts), ("queries", queries)):
        if value is not None:
            overrides[name] = str(value)
    attack_budget = AttackBudget().with_overrides(overrides)
    return Settings(attacks=tuple(attacks or DEFAULT_ATTACKS), threat_models=threats, norms=norms, eps=per_norm,
                    budget=attack_budget, seed=seed, limit=limit, folds=folds,
                    jobs=jobs or (os.cpu_count() or 1), shard_size=shard_size).normalised()


def robustness_command(*, models: Sequence[Path], data: Path, target: str, attacks: Sequence[str] | None,
                       threat_models: Sequence[str] | None, source: Path | None, norms: Sequence[str],
                       eps: Sequence[tuple[str | None, list[float]]] | None, limit: int | None, seed: int,
                       iterations: int | None, restarts: int | None, queries: int | None, budget: Mapping[str, str],
                       folds: int | None, jobs: int, shard_size: int, strict: bool, json_path: Path | None,
                       html_path: Path | None, markdown_path: Path | None, progress: bool, board: str,
                       calibration: Path | None, input_range: tuple[float, float] | None, packing: str,
                       fidelity: Fidelity = DEFAULT_FIDELITY) -> int:
    """0 all good; 1 a target output differed from the reference; 4 (--strict) gradient masking flagged."""
    settings = settings_from(attacks=attacks, threat_models=threat_models, source=source, norms=norms, eps=eps,
                             limit=limit, seed=seed, iterations=iterations, restarts=restarts, queries=queries,
                             budget=budget, folds=folds, jobs=jobs, shard_size=shard_size)
    dataset = Dataset.load(data).limit(limit)  # the samples evaluated are the ones checked
    kind, _ = parse_target(target)
    source_model = lazy.frontend().load_model(source) if source is not None else None
    runs: list[ModelUnderTest] = []
    devices: list[DeviceRunner] = []
    try:
        for path, name in zip(models, model_names(models), strict=True):
            console.step(f"loading TensorFlow and converting {Path(path).name}")
            deployed = convert_file(path, calibration=calibration, input_range=input_range, packing=packing,
                                    fidelity=fidelity)
            check_data(deployed, dataset)  # before a firmware is built for it
            device = None if kind == "reference" else DeviceRunner(deployed, board, target)
            if device is not None:
                devices.append(device)
            spec = ModelSpec(Path(path).resolve(), None if calibration is None else Path(calibration).resolve(),
                             None if input_range is None else tuple(input_range), packing,
                             deployed.program.sha256().hex(), None if source is None else Path(source).resolve(),
                             fidelity)
            runs.append(ModelUnderTest(
                name=name, deployed=deployed, run_target=device, target_name=target,
                counter_unit=None if device is None else device.counter_unit,
                flash_bytes=flash_bytes(deployed, board), model_sha256=file_sha256(path), spec=spec,
                source=source_model))
        result = evaluate(runs, dataset, settings, progress=progress)
    finally:
        for device in devices:
            device.close()
    return finish(result, json_path, html_path, markdown_path, strict=strict)


def finish(result: Evaluation, json_path: Path | None, html_path: Path | None, markdown_path: Path | None = None,
           *, strict: bool = False) -> int:
    """Write the reports and print the table; the exit code for what was found."""
    write_reports(result, json_path, html_path, markdown_path)
    print(table_markdown(result))
    for m in result.models:
        for c in m.masking:
            if c.flagged:
                print(f"gradient-masking check FLAGGED for {m.name}: {c.check}: {c.meaning} "
                      f"Evidence: {'; '.join(c.evidence)}")
    if not result.all_confirmed:
        for m in result.models:
            bad = [r for r in m.rows if r.confirmation is not None and not r.confirmation.all_confirmed]
            if m.target_mismatches or bad:
                print(f"TARGET MISMATCH for {m.name}: {m.target_mismatches} of {m.target_inputs} distinct target "
                      "outputs differ from the reference"
                      + "".join(f"; {r.key.id}: {r.confirmation.flips_confirmed}/{r.confirmation.reference_flips} "
                                f"flips confirmed" for r in bad if r.confirmation is not None), file=sys.stderr)
        return EXIT_MISMATCH
    if strict and result.masking_flagged:
        print("--strict: gradient masking flagged; exit 4", file=sys.stderr)
        return EXIT_MASKING_FLAGGED
    return 0
