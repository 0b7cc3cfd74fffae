"""tr_max_pool_s8 / tr_avg_pool_s8 and their int16 twins against their numpy reference (ops/pool.py),
windows with no valid tap included. (The average onto a finer grid lowers to a depthwise conv:
test_depthwise_conv.py.) Kernels: tr_max_pool_s8, tr_avg_pool_s8, tr_max_pool_s16, tr_avg_pool_s16.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kernel_cases as kc
from tinyrobust.converter.ir import Graph, Grid, InputNode, PoolNode, TensorInfo, UnsupportedModelError
from tinyrobust.converter.ops import pool
from tinyrobust.converter.ops.base import HWC, Clamp, Op, Tile
from tinyrobust.converter.ops.lowering import LowerOptions
from tinyrobust.converter.ops.pool import PoolParams
from tinyrobust.firmware.runner import RunnerCase


def clamp16(rng: np.random.Generator) -> Clamp:
    if rng.random() < 0.6:
        return Clamp(-32768, 32767)
    lo, hi = sorted(int(v) for v in rng.integers(-32768, 32768, size=2))
    return Clamp(lo, hi)


def random_case(rng: np.random.Generator, kind: str, bits: int = 8) -> RunnerCase:
    h, w = (int(v) for v in rng.integers(1, 10, size=2))
    # int16: odd channel counts leave one channel after the DSP path's pairs
    c = int(rng.integers(1, 14))
    kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
    pt, pl = int(rng.integers(0, kh)), int(rng.integers(0, kw))
    # occasionally one row/column more than needed, so windows with no valid tap are exercised
    oh = kc.out_len(h, kh, sh, pt, rng) + int(rng.random() < 0.1)
    ow = kc.out_len(w, kw, sw, pl, rng) + int(rng.random() < 0.1)
    act = kc.clamp(rng) if bits == 8 else clamp16(rng)
    params = PoolParams(HWC(h, w, c), HWC(oh, ow, c), Tile(kh, kw), Tile(sh, sw), Tile(pt, pl), act)
    op = Op(pool.FAMILY.kernel(kind, bits), kind, ("x",), "y", params)
    x = kc.i8(rng, (h, w, c)) if bits == 8 else kc.i16(rng, (h, w, c))
    return RunnerCase.of(op, [x], f"{op.kernel} {params}")


def random_cases(rounds: int, seed: int, bits: int = 8) -> list[RunnerCase]:
    rng = np.random.default_rng(seed)
    return [random_case(rng, kind, bits) for _ in range(rounds) for kind in ("max", "avg")]


def test_matches_numpy_on_host(host_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(host_runner, random_cases(150, seed=14), tmp_path) == 300


def test_s16_matches_numpy_on_host(host_runner, tmp_path: Path) -> None:
    cases = random_cases(100, seed=1614, bits=16)
    assert {c.op.kernel for c in cases} == {"tr_max_pool_s16", "tr_avg_pool_s16"}
    assert kc.saturated_fraction(cases) < 0.10
    assert kc.run_and_check(host_runner, cases, tmp_path) == 200


@pytest.mark.qemu
def test_matches_numpy_on_m7(m7_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(m7_runner, random_cases(60, seed=1003), tmp_path) == 120


@pytest.mark.qemu
def test_s16_matches_numpy_on_m7(m7_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(m7_runner, random_cases(50, seed=1613, bits=16), tmp_path) == 100


def test_numpy_s16_pools_by_hand() -> None:
    # sums beyond int16 (an int8-wide or int16-wide sum would wrap) and rounding half away from zero
    x = np.array([[[32767], [32766]], [[-32768], [32767]]], np.int16)
    full = PoolParams(HWC(2, 2, 1), HWC(1, 1, 1), Tile(2, 2), Tile(2, 2), Tile(0, 0), Clamp(-32768, 32767))
    assert pool.max_pool(x[None], full, 16)[0, 0, 0, 0] == 32767
    assert pool.avg_pool(x[None], full, 16)[0, 0, 0, 0] == 16383  # 65532 / 4 = 16383
    halves = np.array([[[-20001], [-20000]]], np.int16)  # mean -20000.5: half away from zero
    pair = PoolParams(HWC(1, 2, 1), HWC(1, 1, 1), Tile(1, 2), Tile(1, 2), Tile(0, 0), Clamp(-32768, 32767))
    assert pool.avg_pool(halves[None], pair, 16)[0, 0, 0, 0] == -20001
    # a window with no valid tap: the int16 minimum before the clamp
    empty = PoolParams(HWC(1, 1, 1), HWC(1, 2, 1), Tile(1, 1), Tile(1, 1), Tile(0, 0), Clamp(-30000, 32767))
    assert pool.max_pool(np.array([[[[5]]]], np.int16), empty, 16)[0, 0, :, 0].tolist() == [5, -30000]


def test_numpy_pools_by_hand() -> None:
    x = np.array([[[1], [-4]], [[6], [2]]], np.int8)
    full = PoolParams(HWC(2, 2, 1), HWC(1, 1, 1), Tile(2, 2), Tile(2, 2), Tile(0, 0), Clamp(-128, 127))
    assert pool.max_pool(x[None], full)[0, 0, 0, 0] == 6
    assert pool.avg_pool(x[None], full)[0, 0, 0, 0] == 1  # 5 / 4 = 1.25 → 1
    # a window with one valid tap (padding before): the mean of that tap; a clamp bounds the max
    padded = PoolParams(HWC(2, 2, 1), HWC(1, 1, 1), Tile(2, 2), Tile(2, 2), Tile(1, 1), Clamp(-128, 0))
    assert pool.avg_pool(x[None], padded)[0, 0, 0, 0] == 0  # 1 clamped to 0
    assert pool.max_pool(x[None], padded)[0, 0, 0, 0] == 0
    halves = np.array([[[3], [4]]], np.int8)  # mean 3.5: half away from zero
    pair = PoolParams(HWC(1, 2, 1), HWC(1, 1, 1), Tile(1, 2), Tile(1, 2), Tile(0, 0), Clamp(-128, 127))
    assert pool.avg_pool(halves[None], pair)[0, 0, 0, 0] == 4
    assert pool.avg_pool(-halves[None], pair)[0, 0, 0, 0] == -4


def _pool_graph(kind: str, gi: Grid, go: Grid) -> tuple[PoolNode, Graph]:
    node = PoolNode("p", ("x",), "y", kind, (2, 2), (2, 2), (0, 0, 0, 0))
    tensors = {"x": TensorInfo("x", (4, 4, 3), "x", gi), "y": TensorInfo("y", (2, 2, 3), "y", go)}
    return node, Graph((InputNode("x", "x"), node), tensors, ("x",), ("y",), "g")


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_lowered_s16_pool_picks_the_s16_kernel_and_matches_real_arithmetic(kind: str) -> None:
    g = Grid.wide(-2.0, 3.0, "x")
    node, graph = _pool_graph(kind, g, g)
    (op,) = pool.lower(node, graph, LowerOptions()).ops
    assert op.kernel == f"tr_{kind}_pool_s16"
    x = kc.i16(np.random.default_rng(7), (1, 4, 4, 3))
    got = g.scale * pool.FAMILY.reference(op)([x]).astype(np.float64)
    win = (g.scale * x.astype(np.float64)).reshape(1, 2, 2, 2, 2, 3)
    real = win.max(axis=(2, 4)) if kind == "max" else win.mean(axis=(2, 4))
    assert np.abs(got - real).max() <= g.scale * 0.5 * (1 + 1e-9)  # half a step (ties: exactly half)


def test_lowering_refuses_mixed_widths() -> None:
    node, graph = _pool_graph("max", Grid.wide(-1.0, 1.0, "x"), Grid(0.01, 0, -128, 127, "y"))
    with pytest.raises(AssertionError, match="layer 'p'"):
        pool.lower(node, graph, LowerOptions())


def test_lowering_refuses_an_s16_average_whose_sum_could_overflow() -> None:
    g = Grid.wide(-1.0, 1.0, "x")
    node = PoolNode("p", ("x",), "y", "avg", (256, 257), (1, 1), (0, 0, 0, 0))
    tensors = {"x": TensorInfo("x", (256, 257, 1), "x", g), "y": TensorInfo("y", (1, 1, 1), "y", g)}
    graph = Graph((InputNode("x", "x"), node), tensors, ("x",), ("y",), "g")
    with pytest.raises(UnsupportedModelError, match="65535"):
        pool.lower(node, graph, LowerOptions())
