"""workflows/report.py: build_report's per-layer rows and totals (params, MACs, packed and ideal bytes,
row padding, flash) on a hand-built Program equal sums worked by hand; render_markdown has one row per
op and flags a region over budget with **OVER**."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import program_fixtures
from tinyrobust.converter import memplan, packing
from tinyrobust.converter.ops import fully_connected, lut
from tinyrobust.converter.ops.base import Clamp, Op
from tinyrobust.converter.ops.fully_connected import FullyConnectedParams
from tinyrobust.converter.ops.lut import LutParams
from tinyrobust.converter.program import Program, TensorSpec
from tinyrobust.firmware.budget import Budget, RegionUse
from tinyrobust.workflows.report import build_report, render_markdown, write_reports


def _program() -> Program:
    """The fixture's conv (t2, 4 × 9 weights) → max pool → fc (s8, 16 → 4), then a table (4) and an fc
    in trit5 (4 → 3)."""
    base = program_fixtures.small_program()
    tab = Op(lut.FAMILY.kernels[None], "tab", ("y",), "t", LutParams(4), {"table": np.zeros(256, np.int8)})
    codes = np.array([[1, 0, -1, 1], [0, 0, 1, -1], [1, 1, 1, 1]], np.int8)
    fc5 = Op(fully_connected.FAMILY.kernels[packing.TRIT5], "fc5", ("t",), "z",
             FullyConnectedParams(4, 3, 0, Clamp(-128, 127), 0),
             {"weights": packing.pack_rows(codes, packing.TRIT5), "bias": np.zeros(3, np.int32),
              "multiplier": np.full(3, 1 << 30, np.int32), "shift": np.zeros(3, np.int32)}, packing.TRIT5)
    tensors = {**base.tensors, "t": TensorSpec("t", (4,), 0.1, 0, "tab"), "z": TensorSpec("z", (3,), 0.2, 5, "fc5")}
    return memplan.plan(Program(tensors, (*base.ops, tab, fc5), base.inputs, ("z",), base.input_quantizations,
                                base.packing, "report_model", ("final softmax not deployed",)))


# Worked by hand, op by op: (params, MACs, packed bytes, ideal bytes, padding weights, flash bytes)
BY_HAND = [
    (4 * 9, (4 * 4 * 4) * 9, 4 * 4, 36 * 2 / 8, 4 * (16 - 9), 16 + 3 * 4 * 4),  # conv t2: rows of 9 in 16-trit words
    (0, (2 * 2 * 4) * 4, 0, 0.0, 0, 0),  # 2×2 max pool
    (16 * 4, 16 * 4, 4 * 16, 64.0, 0, 64 + 3 * 4 * 4),  # fc s8: rows of 16 bytes
    (0, 4, 0, 0.0, 0, 256),  # table
    (4 * 3, 4 * 3, 3 * 4, 12 * 1.6 / 8, 3 * (20 - 4), 12 + 3 * 3 * 4),  # fc trit5: rows of 4 in 20-trit words
]
BUDGET = Budget("test_board", "DTCM", (
    RegionUse("FLASH", 4096, 1234, (("packed weights", 92), ("code (estimate)", 1142))),
    RegionUse("DTCM", 1000, 1500, (("arena", 1500),)),
), "estimate")


@pytest.fixture(scope="module")
def report() -> dict:
    return build_report(_program(), board="test_board", budget=BUDGET, linked=None, extra={"extra_key": 1})


def test_layer_rows_match_the_hand_figures(report: dict) -> None:
    rows = report["layers"]
    assert [r["layer"] for r in rows] == ["conv", "pool", "fc", "tab", "fc5"]
    for row, (params, macs, packed, ideal, padding, flash) in zip(rows, BY_HAND, strict=True):
        assert (row["params"], row["macs"], row["packed_bytes"], row["row_padding_weights"], row["flash_bytes"]) == (
            params, macs, packed, padding, flash), row["layer"]
        assert row["ideal_packed_bytes"] == pytest.approx(ideal), row["layer"]
    assert [r["weight_format"] for r in rows] == [packing.T2, None, packing.S8, None, packing.TRIT5]
    assert rows[0]["inputs"] == [[4, 4, 1]] and rows[0]["output"] == [4, 4, 4] and rows[0]["output_bytes"] == 64
    assert rows[0]["scratch_bytes"] > 0 and rows[1]["scratch_bytes"] == 0


def test_totals_are_the_hand_sums(report: dict) -> None:
    t = report["totals"]
    assert t["params"] == 36 + 64 + 12 == 112
    assert t["macs"] == 576 + 64 + 64 + 4 + 12 == 720
    assert t["packed_weight_bytes"] == 16 + 64 + 12 == 92
    assert t["ideal_packed_weight_bytes"] == pytest.approx(9 + 64 + 2.4)
    assert t["row_padding_weights"] == 28 + 48 == 76
    assert t["flash_bytes"] == 64 + 112 + 256 + 48 == 480
    assert t["ternary_params"] == 36 + 12


def test_report_header_arena_and_budget(report: dict) -> None:
    prog = _program()
    assert report["model"] == "report_model" and report["board"] == "test_board"
    assert report["program_sha256"] == prog.sha256().hex()
    assert report["input"] == {"shape": [4, 4, 1], "scale": 1 / 255, "zero_point": -128, "grid_source": "test"}
    assert report["output"] == {"shape": [3], "scale": 0.2, "zero_point": 5}
    assert report["arena"] == {"bytes": prog.placement.arena_bytes,
                               "lower_bound_bytes": prog.placement.lower_bound_bytes, "region": "DTCM"}
    assert [r["arena_offset"] for r in report["layers"]] == [prog.placement.tensor_offsets[o.output] for o in prog.ops]
    assert report["budget"]["estimate"]["regions"]["DTCM"]["fits"] is False
    assert report["budget"]["linked"] is None
    assert report["notes"] == ["final softmax not deployed"] and report["extra_key"] == 1


def test_markdown_has_one_row_per_op_and_the_totals(report: dict) -> None:
    md = render_markdown(report)
    rows = re.findall(r"^\| (\d+) \| (\w+) \| `(\w+)` \|", md, re.M)
    assert [(int(i), name) for i, name, _ in rows] == list(enumerate(["conv", "pool", "fc", "tab", "fc5"]))
    assert [k for _, _, k in rows] == [op.kernel for op in _program().ops]
    assert "| | **total** | | | | | **112** | **720** | **92** | **480** | |" in md
    assert "row padding: 76 weights" in md
    pl = _program().placement
    assert f"Arena: {pl.arena_bytes:,} bytes (lower bound {pl.lower_bound_bytes:,}) in DTCM." in md
    assert "- final softmax not deployed" in md


def test_markdown_flags_only_the_region_over_budget(report: dict) -> None:
    md = render_markdown(report)
    budget_rows = [line for line in md.splitlines() if line.startswith(("| FLASH", "| DTCM")) and "`" in line]
    lines = {line.split(" | ")[0][2:]: line for line in budget_rows}
    assert set(lines) == {"FLASH", "DTCM"}
    assert lines["DTCM"].endswith("**OVER** |") and "1,500 | 1,000" in lines["DTCM"]
    assert "**OVER**" not in lines["FLASH"] and "1,234 | 4,096" in lines["FLASH"]
    assert md.count("**OVER**") == 1
    assert "### Budget (estimate)" in md
    # Without a linked image the split table shows the estimate's contents.
    assert "| region | packed weights | code (estimate) | arena | used |" in md
    assert "| FLASH | 92 | 1,142 | 0 | 1,234 |" in md


def test_markdown_without_budget_or_plan() -> None:
    prog = _program()
    unplanned = Program(prog.tensors, prog.ops, prog.inputs, prog.outputs, prog.input_quantizations, prog.packing,
                        prog.model_name)
    rep = build_report(unplanned, board="b", budget=None, linked=None)
    md = render_markdown(rep)
    assert rep["arena"] is None and "Arena:" not in md and "Budget" not in md and "**OVER**" not in md
    assert all(r["arena_offset"] is None for r in rep["layers"])


def test_write_reports(report: dict, tmp_path: Path) -> None:
    write_reports(report, tmp_path)
    assert json.loads((tmp_path / "report.json").read_text()) == json.loads(json.dumps(report))
    assert (tmp_path / "report.md").read_text() == render_markdown(report)


def test_precision_counts_int16_tensors_and_says_int8_everywhere_otherwise() -> None:
    from tinyrobust.converter.program import InputQuantization, Program, TensorSpec
    from tinyrobust.workflows.report import precision, precision_line

    grid = InputQuantization(1.0, 0, -128, 127, "test")
    narrow = {"x": TensorSpec("x", (2,), 1.0, 0, "x"), "y": TensorSpec("y", (2,), 1.0, 0, "y")}
    wide = {**narrow, "y": TensorSpec("y", (2,), 1.0, 0, "y", bits=16)}
    p8 = precision(Program(narrow, (), ("x",), ("y",), (grid,), "t2r16-v1", "m"), [], None)
    assert precision_line(p8, 64) == "activations: int8 everywhere"
    p16 = precision(Program(wide, (), ("x",), ("y",), (grid,), "t2r16-v1", "m"), [], 32)
    assert (p16["int16_tensors"], p16["tensors"], p16["int8_arena_bytes"]) == (1, 2, 32)
    assert precision_line(p16, 64).endswith("arena 64 B (int8 everywhere: 32 B)")
