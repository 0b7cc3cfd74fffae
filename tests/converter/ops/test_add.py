"""tr_add_s8 against its numpy reference (ops/add.py), and its lowering: a sum of two grids within
one output step of the real sum."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kernel_cases as kc
from tinyrobust.converter.ir import Activation, AddNode, Graph, Grid, InputNode, TensorInfo
from tinyrobust.converter.ops import add
from tinyrobust.converter.ops.add import AddParams
from tinyrobust.converter.ops.base import Op
from tinyrobust.converter.ops.lowering import LowerOptions
from tinyrobust.firmware.runner import RunnerCase


def _mult(rng: np.random.Generator) -> int:
    return int(rng.integers(1 << 30, (1 << 31) - 1, endpoint=True))


def random_case(rng: np.random.Generator) -> RunnerCase:
    # below tr_add_s8.c's TR_ADD_TABLE_MIN (256) elements it requantises per element, from there on it
    # tabulates both inputs first: draw on both sides
    n = int(rng.integers(1, 70)) if rng.random() < 0.6 else int(rng.integers(200, 1500))
    params = AddParams(n, int(rng.integers(-127, 129)), _mult(rng), int(rng.integers(-8, 1)),
                       int(rng.integers(-127, 129)), _mult(rng), int(rng.integers(-8, 1)), add.ADD_LEFT_SHIFT,
                       int(rng.integers(-128, 128)), _mult(rng), int(rng.integers(-24, -17)), kc.clamp(rng))
    op = Op(add.FAMILY.kernels[None], "add", ("a", "b"), "y", params)
    return RunnerCase.of(op, [kc.i8(rng, n), kc.i8(rng, n)], f"add {params}")


def random_cases(rounds: int, seed: int) -> list[RunnerCase]:
    rng = np.random.default_rng(seed)
    return [random_case(rng) for _ in range(rounds)]


def test_matches_numpy_on_host(host_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(host_runner, random_cases(300, seed=15), tmp_path) == 300


@pytest.mark.qemu
def test_matches_numpy_on_m7(m7_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(m7_runner, random_cases(120, seed=1004), tmp_path) == 120


def test_lowered_add_is_within_one_step_of_the_real_sum() -> None:
    g1, g2 = Grid(0.02, -10, -128, 127, "a"), Grid(0.05, 7, -128, 127, "b")
    go = Grid(0.06, -3, -128, 127, "y")
    nodes = (InputNode("a", "a"), InputNode("b", "b"), AddNode("add", ("a", "b"), "y", Activation("linear")))
    tensors = {t: TensorInfo(t, (256,), t, g) for t, g in (("a", g1), ("b", g2), ("y", go))}
    graph = Graph(nodes, tensors, ("a",), ("y",), "g")
    (op,) = add.lower(nodes[2], graph, LowerOptions()).ops
    q1, q2 = np.meshgrid(np.arange(-128, 128, 17), np.arange(-128, 128, 13))
    q1, q2 = q1.reshape(-1).astype(np.int8), q2.reshape(-1).astype(np.int8)
    got = go.scale * (add.add(q1, q2, op.params).astype(np.float64) - go.zero_point)
    f1, f2 = q1.astype(np.float64), q2.astype(np.float64)
    real = np.clip(g1.scale * (f1 - g1.zero_point) + g2.scale * (f2 - g2.zero_point), go.real_min, go.real_max)
    assert np.abs(got - real).max() <= go.scale * 1.0
