"""tr_requantize_s8 against its numpy reference (ops/requantize.py), and requantize_op: a tensor moved
onto another grid within half a step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kernel_cases as kc
from tinyrobust.converter.ir import Grid
from tinyrobust.converter.ops import requantize
from tinyrobust.converter.ops.base import Op
from tinyrobust.converter.ops.requantize import RequantizeParams
from tinyrobust.firmware.runner import RunnerCase


def random_case(rng: np.random.Generator) -> RunnerCase:
    n = int(rng.integers(1, 70))
    mult = int(rng.integers(1 << 30, (1 << 31) - 1, endpoint=True)) if rng.random() > 0.05 else 0
    params = RequantizeParams(n, int(rng.integers(-127, 129)), int(rng.integers(-128, 128)), mult,
                              int(rng.integers(-9, 4)), kc.clamp(rng))
    op = Op(requantize.FAMILY.kernels[None], "rq", ("x",), "y", params)
    return RunnerCase.of(op, [kc.i8(rng, n)], f"requantize {params}")


def random_cases(rounds: int, seed: int) -> list[RunnerCase]:
    rng = np.random.default_rng(seed)
    return [random_case(rng) for _ in range(rounds)]


def test_matches_numpy_on_host(host_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(host_runner, random_cases(300, seed=16), tmp_path) == 300


@pytest.mark.qemu
def test_matches_numpy_on_m7(m7_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(m7_runner, random_cases(120, seed=1005), tmp_path) == 120


def test_requantize_op_error_is_the_double_rounding_bound() -> None:
    """Half a step of rounding plus CMSIS-NN's double rounding: the doubling high multiply rounds to
    an integer before the right shift by r rounds again, which adds up to 0.5 / 2^r of a step."""
    gi, go = Grid(0.03, 5, -128, 127, "in"), Grid(0.07, -20, -128, 127, "out")
    op = requantize.requantize_op("rq", "x", "y", gi, go, False, (256,))
    q = np.arange(-128, 128).astype(np.int8)
    got = go.scale * (requantize.requantize_tensor(q, op.params).astype(np.float64) - go.zero_point)
    real = np.clip(gi.scale * (q.astype(np.float64) - gi.zero_point), go.real_min, go.real_max)
    err = np.abs(got - real) / go.scale
    right = -op.params.shift
    assert right > 0 and err.max() <= 0.5 + 0.5 / 2**right + 1e-9
    relu = requantize.requantize_op("rq", "x", "y", gi, go, True, (256,))
    assert requantize.requantize_tensor(q, relu.params).min() == go.zero_point  # relu clips at real 0
