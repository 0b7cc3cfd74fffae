"""`tinyrobust export`: write a self-describing export directory (firmware/project.py), atomically.

Everything is written into a sibling temporary directory first and renamed into place, so a
failure (bad model, over budget, link error) leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import __version__, console
from ..converter import memplan
from ..converter.pipeline import convert_file
from ..converter.precision import DEFAULT_FIDELITY, Fidelity
from ..converter.program import Placement, Program
from ..errors import BudgetError, ExportError
from ..firmware import budget
from ..firmware.boards import Board, load_board
from ..firmware.buildfiles import project_recipe, write_firmware_project
from ..firmware.codegen import render_model_library
from ..firmware.codegen.c_names import DEFAULT_PREFIX, check_prefix
from ..firmware.crossbuild import build_recipe, read_section_usage
from ..firmware.memory_split import check_split, split_regions
from ..firmware.project import EXPORT_FORMAT, MANIFEST, PROGRAM, export_lock
from ..firmware.sources import tr_nn_dir
from ..targets.protocol import servable_problems
from .report import build_report, precision_line, write_reports


@dataclass(frozen=True)
class ExportResult:
    out_dir: Path
    program: Program
    report: dict[str, Any]


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _input_entry(program: Program, k: int) -> dict[str, Any]:
    t = program.tensor(program.inputs[k])
    q = program.input_quantizations[k]
    return {"shape": list(t.shape), "bytes": t.nbytes, "scale": q.scale, "zero_point": q.zero_point,
            "qmin": q.qmin, "qmax": q.qmax, "grid_source": q.source}


def _output_entry(program: Program, k: int) -> dict[str, Any]:
    t = program.tensor(program.outputs[k])
    return {"shape": list(t.shape), "bytes": t.nbytes, "scale": t.scale, "zero_point": t.zero_point,
            "dtype": "int16" if t.bits == 16 else "int8"}


def io_manifest(program: Program) -> dict[str, Any]:
    """"input" and "output" of a single-input, single-output model (as always); "inputs" and "outputs"
    lists otherwise, each entry also with its tensor's name and its offset in the packed buffer."""
    if len(program.inputs) == 1 and len(program.outputs) == 1:
        return {"input": _input_entry(program, 0), "output": _output_entry(program, 0)}
    return {
        "inputs": [{"name": name, "offset": offset, **_input_entry(program, k)}
                   for k, (name, offset) in enumerate(zip(program.inputs, program.input_offsets(), strict=True))],
        "outputs": [{"name": name, "offset": offset, **_output_entry(program, k)}
                    for k, (name, offset) in enumerate(zip(program.outputs, program.output_offsets(), strict=True))],
    }


def manifest(program: Program, board: Board, model_path: Path | None, arena_region: str | None) -> dict[str, Any]:
    return {
        "format": EXPORT_FORMAT,
        "versions": {
            "tinyrobust": __version__,
            "tensorflow": _version("tensorflow-cpu") or _version("tensorflow"),
            "tf_keras": _version("tf-keras"),
            "qkeras": _version("qkeras"),
        },
        "model": None if model_path is None else {
            "file": model_path.name,
            "sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(),
        },
        "program": PROGRAM,
        "program_sha256": program.sha256().hex(),
        "board": board.name,
        "packing": program.packing,
        "weight_formats": sorted({op.weight_format for op in program.ops if op.weight_format}),
        **io_manifest(program),
        "arena_bytes": program.placement.arena_bytes if program.placement else None,
        "arena_region": arena_region,
    }


def _replace_dir(tmp: Path, out_dir: Path) -> None:
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ExportError(f"{out_dir} exists and is not a directory")
        if any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file():
            raise ExportError(f"{out_dir} exists, is not empty and is not a tinyrobust export; refusing to replace it")
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)


def export_program(program: Program, board_name: str, out_dir: Path, *, model_path: Path | None = None,
                   build: bool = False, prefix: str = DEFAULT_PREFIX,
                   int8_program: Program | None = None) -> ExportResult:
    """`prefix` starts every C name of the model library (--name; codegen/c_names.py). `int8_program`: the
    model with int8 activations everywhere, whose arena the report sets beside this one's."""
    check_prefix(prefix)
    board = load_board(board_name)
    if not program.ops:
        raise ExportError("the model has no computation to deploy")
    served = servable_problems(program.input_bytes, program.output_bytes, len(program.ops))
    if served:
        raise ExportError("the evaluation firmware cannot serve this model: " + "; ".join(served))
    planned = memplan.plan(program)
    memplan.check_no_overlap(planned)
    estimate = budget.estimate(planned, board)
    budget.check(planned, board, estimate)
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with export_lock(out_dir):
        return _write_export(planned, board, estimate, out_dir, model_path=model_path, build=build, prefix=prefix,
                             int8_arena=None if int8_program is None else memplan.plan(int8_program).placement)


def _write_export(planned: Program, board: Board, estimate: budget.Budget, out_dir: Path, *,
                  model_path: Path | None, build: bool, prefix: str, int8_arena: Placement | None) -> ExportResult:
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        planned.save(tmp / PROGRAM)
        model_dir = tmp / "model"
        model_dir.mkdir()
        render_model_library(planned, model_dir, prefix)
        shutil.copytree(tr_nn_dir(), tmp / "tr_nn", ignore=shutil.ignore_patterns("*.md"))
        arena_region = estimate.arena_region or ""  # budget.check refused an export with no region
        write_firmware_project(tmp, board, arena_region)
        linked = None
        if build:
            linked = _build_into(tmp, board, arena_region)
        report = build_report(planned, board=board.name, budget=estimate, linked=linked,
                              int8_arena_bytes=None if int8_arena is None else int8_arena.arena_bytes)
        write_reports(report, tmp)
        (tmp / MANIFEST).write_text(
            json.dumps(manifest(planned, board, model_path, estimate.arena_region) | {"c_prefix": prefix}, indent=1,
                       sort_keys=True) + "\n"
        )
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(out_dir, planned, report)


def _build_into(export_dir: Path, board: Board, arena_region: str) -> budget.Budget:
    # From the export's own copies, with the recipe its Makefile and CMakeLists.txt print: the same image.
    artifacts = build_recipe(project_recipe(export_dir, board), board, export_dir / "firmware",
                             arena_region=arena_region)
    usage = read_section_usage(artifacts.elf, board)
    split = split_regions(artifacts.elf, artifacts.map, board)
    check_split(split, usage)
    linked = budget.from_elf_usage(usage, board, arena_region, split)
    over = [r for r in linked.regions if not r.fits]
    if over:
        raise BudgetError(
            "; ".join(f"{r.region}: linked image needs {r.used} bytes, has {r.size} (over by {-r.free})" for r in over)
        )
    return linked


def export_command(*, model: Path, board: str, output: Path | None, calibration: Path | None,
                   input_range: tuple[float, float] | None, packing: str, build: bool,
                   name: str = DEFAULT_PREFIX, fidelity: Fidelity = DEFAULT_FIDELITY) -> int:
    """`tinyrobust export`: convert, export (and build), print what was written."""
    check_prefix(name)
    console.step(f"loading TensorFlow and converting {model.name}")
    deployed = convert_file(model, calibration=calibration, input_range=input_range, packing=packing,
                            fidelity=fidelity)
    out = output or Path(f"{model.stem}_{board}")
    if build:
        console.step(f"writing the export and cross-building the {board} firmware")
    result = export_program(deployed.program, board, out, model_path=model, build=build, prefix=name,
                            int8_program=deployed.int8_program)
    t = result.report["totals"]
    arena = result.report["arena"]
    precision = result.report["precision"]
    print(f"exported {model.name} → {result.out_dir}")
    print(f"  {len(deployed.program.ops)} ops, {t['params']:,} weights, {t['macs']:,} MACs")
    print(f"  packed weights {t['packed_weight_bytes']:,} B ({deployed.program.packing}), flash tables "
          f"{t['flash_bytes']:,} B; arena {arena['bytes']:,} B in {arena['region']}")
    print(f"  {precision_line(precision, arena['bytes'])}")
    if build:
        print(f"  firmware: {result.out_dir / 'firmware' / 'firmware.elf'}")
    print(f"  C names: {name}_model_run() in model/{name}_model.h; firmware project: "
          f"{result.out_dir / 'firmware'} (make, or CMake)")
    return 0
