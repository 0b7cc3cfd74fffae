"""`tinyrobust bench --quick`: JSON schema, every figure positive and finite, counts reproducible.

No timing asserts: the instruction counts belong to the bench report, not to pass/fail."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tinyrobust.cli import main
from tinyrobust.converter import packing
from tinyrobust.firmware import runner
from tinyrobust.workflows import bench

pytestmark = [
    pytest.mark.slow,
    pytest.mark.qemu,
    pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                       reason="needs qemu-system-arm and arm-none-eabi-gcc"),
]

KERNELS = ("conv3x3", "conv1x1", "depthwise3x3", "fc", "firstconv", "add")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    work = tmp_path_factory.mktemp("bench")
    out = work / "bench.json"
    assert main(["bench", "--quick", "--json", str(out), "--work-dir", str(work / "run")]) == 0
    return json.loads(out.read_text()), work / "run"


def _positive(x: object) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


def test_json_schema_and_figures(quick_run: tuple[dict, Path]) -> None:
    report, _ = quick_run
    assert set(report["kernels"]) == set(KERNELS)
    for name in KERNELS:
        k = report["kernels"][name]
        for key in ("t2", "trit5", "plain_c"):
            assert _positive(k[key]), (name, key, k[key])
            assert isinstance(k["instructions"][key], int) and k["instructions"][key] > 0
            assert k[key] == pytest.approx(k["instructions"][key] / k["macs"])
    assert report["counter_resolution_instructions"] == 40
    model = report["model"]
    assert _positive(model["insn_per_mac"]) and _positive(model["flash_bytes_per_weight"])
    for pk, bits in (("t2", 2.0), ("trit5", 1.6)):
        m = model["packings"][pk]
        assert _positive(m["insn_per_mac"]) and 0.9e6 < m["weights"] < 1.1e6
        # packed bytes per weight: the format's bits / 8 plus a little row padding
        assert bits / 8 <= m["flash_bytes_per_weight"] < bits / 8 * 1.05
        assert m["flash_table_bytes_per_weight"] >= m["flash_bytes_per_weight"]
        assert sum(layer["instructions"] for layer in m["layers"]) == m["instructions"]
        for layer in m["layers"]:
            assert layer["instructions"] > 0
            assert layer["insn_per_mac"] is None or _positive(layer["insn_per_mac"])
    rt = model["reference_throughput"]
    assert rt["queries_batched"] == 64 and rt["queries_single"] == 8
    assert _positive(rt["batched_queries_per_second"]) and _positive(rt["single_queries_per_second"])
    for name in KERNELS:  # the quick shapes are not the anchors' shapes: no anchor beside them
        assert "anchor" in report["kernels"][name] and report["kernels"][name]["anchor"] is None


def test_published_models_end_to_end(quick_run: tuple[dict, Path]) -> None:
    """Each bench model ran on QEMU bit-exact (the bench raises otherwise) at its published input shape;
    its per-layer counts sum to the inference and its figures are the paper model's where they overlap."""
    report, _ = quick_run
    models = report["models"]
    assert set(models) == set(bench.MODEL_NAMES)  # the JSON sorts its keys
    shapes = {"resnet8": [32, 32, 3], "dscnn": [49, 10, 1], "mbv1_vww": [96, 96, 3], "paper": [32, 32, 1],
              "mnist_cnn": [28, 28, 1]}
    for name, m in models.items():
        assert m["input_shape"] == shapes[name] and m["packing"] == "t2"
        assert _positive(m["insn_per_mac"]) and m["insn_per_mac"] == pytest.approx(m["instructions"] / m["macs"])
        assert sum(layer["instructions"] for layer in m["layers"]) == m["instructions"]
        assert sum(layer["macs"] for layer in m["layers"]) == m["macs"]
        assert m["model_flash_bytes"] >= m["packed_weight_bytes"] > 0 and m["arena_bytes"] > 0
    assert models["paper"]["instructions"] == report["model"]["packings"]["t2"]["instructions"]
    assert models["mbv1_vww"]["macs"] > 7e6 and models["resnet8"]["macs"] > 12e6  # the published sizes


def _dsp_runner(work: Path) -> runner.Runner:
    """The DSP kernel runner the bench built (same board and image)."""
    elf = work / "kernels" / "fw" / f"runner_{bench.QEMU_BOARD}" / "firmware.elf"
    return runner.Runner(elf, on_host=False, board=bench.QEMU_BOARD)


def test_second_run_gives_identical_counts(quick_run: tuple[dict, Path], tmp_path: Path) -> None:
    """A fresh QEMU run of one kernel (icount) reproduces the count in the report exactly."""
    report, work = quick_run
    shape = next(s for s in bench.QUICK_SHAPES if s.name == "conv3x3")
    (result,) = bench.run_cases(_dsp_runner(work), [bench.make_case(shape, packing.T2)], tmp_path)
    assert result.counts[0] == report["kernels"]["conv3x3"]["instructions"]["t2"]


def test_wrong_output_fails_the_bench(quick_run: tuple[dict, Path], tmp_path: Path) -> None:
    """A count is only reported for a bit-exact output: a corrupted expectation must raise."""
    _, work = quick_run
    shape = next(s for s in bench.QUICK_SHAPES if s.name == "fc")
    case = bench.make_case(shape, packing.TRIT5)
    bad = replace(case, expected=bytes([case.expected[0] ^ 1]) + case.expected[1:])
    with pytest.raises(bench.BenchError, match="elements differ"):
        bench.run_cases(_dsp_runner(work), [bad], tmp_path)


@pytest.mark.parametrize("shapes", [bench.SHAPES, bench.QUICK_SHAPES], ids=["full", "quick"])
def test_bench_outputs_are_not_saturated(shapes: tuple[bench.KernelShape, ...]) -> None:
    """Counts measured on outputs pinned at -128 / 127 would flatter a kernel (and hide wrong sums): at
    most 10 % of each bench case's reference outputs may saturate, and they must spread."""
    for shape in shapes:
        for fmt in (packing.T2, packing.TRIT5):
            out = np.frombuffer(bench.make_case(shape, fmt).expected, np.int8)
            saturated = np.mean((out == -128) | (out == 127))
            assert saturated <= 0.10, (shape.name, fmt, saturated)
            assert out.std() > 16, (shape.name, fmt, out.std())


def test_cmsis_nn_figures_are_recorded_anchors_with_provenance() -> None:
    """The CMSIS-NN column is read from the anchors file and labelled as recorded, never as measured."""
    recorded = bench.anchors()
    assert "not measured by this project" in recorded["what"]
    report = {"unit": "u", "kernels": {"conv3x3": {"shape": "s", "goal_t2": 0.7, "t2": 0.69, "trit5": 0.77,
                                                   "plain_c": 20.0, "anchor": {"cmsis_nn_s8": 1.75}}}}
    table = bench.format_table(report)
    assert "1.75" in table and "recorded anchor, not measured here" in table
