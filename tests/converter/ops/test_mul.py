"""tr_mul_s8 against its numpy reference (ops/mul.py) on the host (ASan/UBSan) and on the emulated
Cortex-M7 (DSP and plain C), and its lowering: a product of two grids within the requantisation's
error of the real product. Kernel: tr_mul_s8."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kernel_cases as kc
from tinyrobust.converter.ir import Graph, Grid, InputNode, MulNode, TensorInfo
from tinyrobust.converter.ops import mul
from tinyrobust.converter.ops.base import Clamp, Op
from tinyrobust.converter.ops.lowering import LowerOptions
from tinyrobust.converter.ops.mul import MulParams
from tinyrobust.converter.quantmath import quantize_multiplier
from tinyrobust.firmware.runner import RunnerCase


def random_case(rng: np.random.Generator) -> RunnerCase:
    n = int(rng.integers(1, 70))
    z1, z2, zo = (int(v) for v in rng.integers(-128, 128, size=3))
    # s1·s2/s_out spread over a few octaves around 1/256: a typical product (~5000) lands mid-range
    mult, shift = quantize_multiplier(float(rng.uniform(0.25, 4.0)) / 256)
    params = MulParams(n, -z1, -z2, zo, mult, shift, kc.clamp(rng))
    op = Op(mul.FAMILY.kernels[None], "mul", ("a", "b"), "y", params)
    return RunnerCase.of(op, [kc.i8(rng, n), kc.i8(rng, n)], f"mul {params}")


def random_cases(rounds: int, seed: int) -> list[RunnerCase]:
    rng = np.random.default_rng(seed)
    return [random_case(rng) for _ in range(rounds)]


def test_matches_numpy_on_host(host_runner, tmp_path: Path) -> None:
    cases = random_cases(300, seed=20)
    assert kc.saturated_fraction(cases) < 0.2
    assert kc.run_and_check(host_runner, cases, tmp_path) == 300


@pytest.mark.qemu
def test_matches_numpy_on_m7(m7_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(m7_runner, random_cases(120, seed=1009), tmp_path) == 120


def test_numpy_mul_by_hand() -> None:
    """(q1 + 1) · (q2 − 2), then exactly ×1 (multiplier 2^30, shift 1), then the offset 5."""
    params = MulParams(3, 1, -2, 5, 1 << 30, 1, Clamp(-128, 127))
    out = mul.mul(np.array([3, -4, 10], np.int8), np.array([7, 2, -1], np.int8), params)
    np.testing.assert_array_equal(out, [4 * 5 + 5, -3 * 0 + 5, np.clip(11 * -3 + 5, -128, 127)])


def test_lowered_mul_is_within_the_requantisation_error_of_the_real_product() -> None:
    g1, g2 = Grid(0.02, -10, -128, 127, "a"), Grid(1 / 255, -128, -128, 127, "b")  # b: a sigmoid-like gate
    go = Grid(0.025, 3, -128, 127, "y")
    node = MulNode("mul", ("a", "b"), "y")
    nodes = (InputNode("a", "a"), InputNode("b", "b"), node)
    tensors = {t: TensorInfo(t, (256,), t, g) for t, g in (("a", g1), ("b", g2), ("y", go))}
    (op,) = mul.lower(node, Graph(nodes, tensors, ("a",), ("y",), "g"), LowerOptions()).ops
    q1, q2 = np.meshgrid(np.arange(-128, 128, 17), np.arange(-128, 128, 13))
    q1, q2 = q1.reshape(-1).astype(np.int8), q2.reshape(-1).astype(np.int8)
    got = go.scale * (mul.mul(q1, q2, op.params).astype(np.float64) - go.zero_point)
    real = g1.scale * (q1.astype(np.float64) - g1.zero_point) * g2.scale * (q2.astype(np.float64) - g2.zero_point)
    err = np.abs(got - np.clip(real, go.real_min, go.real_max)) / go.scale
    right = max(-op.params.output_shift, 0)
    assert err.max() <= 0.5 + 0.5 / 2**right + 1e-6
