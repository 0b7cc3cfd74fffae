"""tr_max_pool_s8 / tr_avg_pool_s8 against their numpy reference (ops/pool.py), windows with no valid
tap included. (The average onto a finer grid lowers to a depthwise conv: test_depthwise_conv.py.)
Kernels: tr_max_pool_s8, tr_avg_pool_s8.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kernel_cases as kc
from tinyrobust.converter.ops import pool
from tinyrobust.converter.ops.base import HWC, Clamp, Op, Tile
from tinyrobust.converter.ops.pool import PoolParams
from tinyrobust.firmware.runner import RunnerCase


def random_case(rng: np.random.Generator, kind: str) -> RunnerCase:
    h, w = (int(v) for v in rng.integers(1, 10, size=2))
    c = int(rng.integers(1, 14))
    kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
    pt, pl = int(rng.integers(0, kh)), int(rng.integers(0, kw))
    # occasionally one row/column more than needed, so windows with no valid tap are exercised
    oh = kc.out_len(h, kh, sh, pt, rng) + int(rng.random() < 0.1)
    ow = kc.out_len(w, kw, sw, pl, rng) + int(rng.random() < 0.1)
    params = PoolParams(HWC(h, w, c), HWC(oh, ow, c), Tile(kh, kw), Tile(sh, sw), Tile(pt, pl), kc.clamp(rng))
    op = Op(pool.FAMILY.kernels[kind], kind, ("x",), "y", params)
    return RunnerCase.of(op, [kc.i8(rng, (h, w, c))], f"{kind}_pool {params}")


def random_cases(rounds: int, seed: int) -> list[RunnerCase]:
    rng = np.random.default_rng(seed)
    return [random_case(rng, kind) for _ in range(rounds) for kind in ("max", "avg")]


def test_matches_numpy_on_host(host_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(host_runner, random_cases(150, seed=14), tmp_path) == 300


@pytest.mark.qemu
def test_matches_numpy_on_m7(m7_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(m7_runner, random_cases(60, seed=1003), tmp_path) == 120


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
