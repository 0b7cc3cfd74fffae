"""tr_pad_s8 and tr_pad_s16 against their numpy reference (ops/pad.py), and the lowering's choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kernel_cases as kc
from tinyrobust.converter.ir import Graph, Grid, InputNode, PadNode, TensorInfo
from tinyrobust.converter.ops import pad
from tinyrobust.converter.ops.base import HWC, Op
from tinyrobust.converter.ops.lowering import LowerOptions
from tinyrobust.converter.ops.pad import PadParams
from tinyrobust.firmware.runner import RunnerCase


def random_case(rng: np.random.Generator) -> RunnerCase:
    h, w = (int(v) for v in rng.integers(1, 8, size=2))
    c = int(rng.integers(1, 10))
    top, left = (int(v) for v in rng.integers(0, 4, size=2))
    oh, ow = h + top + int(rng.integers(0, 4)), w + left + int(rng.integers(0, 4))
    params = PadParams(HWC(h, w, c), HWC(oh, ow, c), int(rng.integers(-128, 128)), top, left)
    op = Op(pad.FAMILY.kernels[None], "pad", ("x",), "y", params)
    return RunnerCase.of(op, [kc.i8(rng, (h, w, c))], f"pad {params}")


def random_cases(rounds: int, seed: int) -> list[RunnerCase]:
    rng = np.random.default_rng(seed)
    return [random_case(rng) for _ in range(rounds)]


def test_matches_numpy_on_host(host_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(host_runner, random_cases(300, seed=19), tmp_path) == 300


@pytest.mark.qemu
def test_matches_numpy_on_m7(m7_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(m7_runner, random_cases(120, seed=1008), tmp_path) == 120


def random_case_s16(rng: np.random.Generator) -> RunnerCase:
    # odd and even element counts (the fill stores pairs), pad values over int16 (0 from the lowering)
    h, w = (int(v) for v in rng.integers(1, 8, size=2))
    c = int(rng.integers(1, 10))
    top, left = (int(v) for v in rng.integers(0, 4, size=2))
    oh, ow = h + top + int(rng.integers(0, 4)), w + left + int(rng.integers(0, 4))
    value = 0 if rng.random() < 0.3 else int(rng.integers(-32768, 32768))
    params = PadParams(HWC(h, w, c), HWC(oh, ow, c), value, top, left)
    op = Op(pad.FAMILY.kernel(None, 16), "pad", ("x",), "y", params)
    return RunnerCase.of(op, [kc.i16(rng, (h, w, c))], f"pad_s16 {params}")


def random_cases_s16(rounds: int, seed: int) -> list[RunnerCase]:
    rng = np.random.default_rng(seed)
    return [random_case_s16(rng) for _ in range(rounds)]


def test_s16_matches_numpy_on_host(host_runner, tmp_path: Path) -> None:
    cases = random_cases_s16(150, seed=1619)
    assert {c.op.kernel for c in cases} == {"tr_pad_s16"}
    assert kc.saturated_fraction(cases) < 0.10
    assert kc.run_and_check(host_runner, cases, tmp_path) == 150


@pytest.mark.qemu
def test_s16_matches_numpy_on_m7(m7_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(m7_runner, random_cases_s16(60, seed=1620), tmp_path) == 60


def _pad_graph(gi: Grid, go: Grid) -> tuple[PadNode, Graph]:
    node = PadNode("p", ("x",), "y", (1, 2, 1, 1))
    tensors = {"x": TensorInfo("x", (3, 3, 2), "x", gi), "y": TensorInfo("y", (5, 6, 2), "y", go)}
    return node, Graph((InputNode("x", "x"), node), tensors, ("x",), ("y",), "g")


def test_lowered_s16_pad_picks_tr_pad_s16_and_pads_with_zero() -> None:
    g = Grid.wide(-1.0, 1.0, "x")
    node, graph = _pad_graph(g, g)
    (op,) = pad.lower(node, graph, LowerOptions()).ops
    assert op.kernel == "tr_pad_s16" and op.params.pad_value == 0
    x = kc.i16(np.random.default_rng(3), (1, 3, 3, 2))
    y = pad.FAMILY.reference(op)([x])
    assert y.dtype == np.int16 and y.shape == (1, 5, 6, 2)
    np.testing.assert_array_equal(y[:, 1:4, 2:5], x)
    assert int(np.abs(y).sum()) == int(np.abs(x.astype(np.int64)).sum())


def test_lowering_refuses_mixed_widths() -> None:
    node, graph = _pad_graph(Grid(0.01, 0, -128, 127, "x"), Grid.wide(-1.0, 1.0, "y"))
    with pytest.raises(AssertionError, match="layer 'p'"):
        pad.lower(node, graph, LowerOptions())


def test_numpy_pad_refuses_an_input_that_does_not_fit() -> None:
    with pytest.raises(ValueError):
        pad.pad(np.zeros((1, 3, 3, 1), np.int8), PadParams(HWC(3, 3, 1), HWC(4, 4, 1), 0, 2, 0))
