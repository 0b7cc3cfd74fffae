"""tr_concat_s8 against its numpy reference (ops/concat.py): one call copies one input into its
channel slice and leaves the other channels alone; lowering requantises inputs on another grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kernel_cases as kc
from tinyrobust.converter.ir import ConcatNode, Graph, Grid, InputNode, TensorInfo
from tinyrobust.converter.ops import concat, requantize
from tinyrobust.converter.ops.base import HWC, Op
from tinyrobust.converter.ops.concat import ConcatParams
from tinyrobust.converter.ops.lowering import LowerOptions
from tinyrobust.firmware.runner import SENTINEL, RunnerCase


def random_case(rng: np.random.Generator) -> RunnerCase:
    """One call: input [H, W, C_in] into an output whose other channels already hold data."""
    h, w = (int(v) for v in rng.integers(1, 6, size=2))
    cin = int(rng.integers(1, 8))
    before, after = (int(v) for v in rng.integers(0, 6, size=2))
    parts = [kc.i8(rng, (h, w, before)), kc.i8(rng, (h, w, cin)), kc.i8(rng, (h, w, after))]
    initial = concat.concat([parts[0], np.full((h, w, cin), SENTINEL, np.int8), parts[2]])
    params = ConcatParams(HWC(h, w, before + cin + after), (cin,), (before,))
    op = Op(concat.FAMILY.kernels[None], "cat", ("x",), "y", params)
    return RunnerCase(op, (parts[1],), concat.concat(parts).tobytes(), initial.tobytes(), f"concat {params}")


def random_cases(rounds: int, seed: int) -> list[RunnerCase]:
    rng = np.random.default_rng(seed)
    return [random_case(rng) for _ in range(rounds)]


def test_matches_numpy_on_host(host_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(host_runner, random_cases(300, seed=18), tmp_path) == 300


@pytest.mark.qemu
def test_matches_numpy_on_m7(m7_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(m7_runner, random_cases(120, seed=1007), tmp_path) == 120


def test_lowering_requantises_inputs_on_another_grid() -> None:
    go = Grid(0.1, 0, -128, 127, "out")
    other = Grid(0.05, 3, -128, 127, "other")
    nodes = (InputNode("a", "a"), InputNode("b", "b"), ConcatNode("cat", ("a", "b"), "y"))
    tensors = {"a": TensorInfo("a", (2, 2, 3), "a", go), "b": TensorInfo("b", (2, 2, 5), "b", other),
               "y": TensorInfo("y", (2, 2, 8), "y", go)}
    lowered = concat.lower(nodes[2], Graph(nodes, tensors, ("a",), ("y",), "g"), LowerOptions())
    rq, cat = lowered.ops
    assert rq.kernel == requantize.FAMILY.kernels[None] and rq.inputs == ("b",)
    assert cat.inputs == ("a", lowered.tensors[0].name)
    assert cat.params.channel_offsets == (0, 3) and cat.params.input_channels == (3, 5)
    assert [c.scalars.channel_offset for c in concat.FAMILY.kernel_calls(cat)] == [0, 3]
