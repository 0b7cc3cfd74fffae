"""tr_requantize_s8 and its width converters tr_requantize_s8_s16 (int8 → int16), tr_requantize_s16_s8
(int16 → int8) and tr_requantize_s16 (int16 → int16) against their numpy reference (ops/requantize.py),
and requantize_op / convert_op: a tensor moved onto another grid, of either width, within half a step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kernel_cases as kc
from tinyrobust.converter import ops
from tinyrobust.converter.ir import Grid
from tinyrobust.converter.ops import requantize
from tinyrobust.converter.ops.base import Clamp, Op
from tinyrobust.converter.ops.requantize import RequantizeParams
from tinyrobust.firmware.runner import RunnerCase

WIDE_KERNELS = ("tr_requantize_s8_s16", "tr_requantize_s16_s8", "tr_requantize_s16")


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


def wide_clamp(rng: np.random.Generator, bits: int) -> Clamp:
    """The full range of the output type mostly, else a range cutting into both halves (a relu's lower
    bound among them), so clamped values are bounds, not rails."""
    top = kc.MAGNITUDE[bits]
    if rng.random() < 0.6:
        return Clamp(-top, top - 1)
    lo = 0 if rng.random() < 0.3 else int(rng.integers(-top, 0))
    return Clamp(lo, int(rng.integers(top // 4, top)))


def wide_case(rng: np.random.Generator, kernel: str) -> RunnerCase:
    """One call of a width converter or of the int16 requantisation, its outputs spread over the output
    type: the shift maps the input's magnitude to about the output's (a scale within 2^±2 of that)."""
    in_bits, out_bits = requantize.FAMILY.bits_of(kernel)
    # sizes around the DSP loops' block of four, then longer tails
    n = int(rng.choice([1, 2, 3, 4, 5, 7, 8, 9])) if rng.random() < 0.4 else int(rng.integers(10, 90))
    mult = int(rng.integers(1 << 30, (1 << 31) - 1, endpoint=True)) if rng.random() > 0.05 else 0
    # Both rounding variants of the DSP loops: shift >= 0 (tr_rq_r0) and shift < 0 (tr_rq_rn).
    coarse = 0
    if in_bits == 8:
        x = kc.i8(rng, n)
        input_offset = int(rng.integers(-127, 129))  # −z of any int8 grid
        magnitude = 256  # |q + input_offset|
        # widening onto a grid much coarser than the input's: a right shift, outputs of a few hundred
        coarse = int(rng.integers(7, 10)) if rng.random() < 0.25 else 0
    else:
        # coarser input scales (shift >= 0) come with inputs small enough for the shift's headroom
        small = rng.random() < 0.4
        left = (int(rng.integers(0, 4)) if out_bits == 16 else int(rng.integers(8, 11))) if small else 0
        x = (kc.i16(rng, n).astype(np.int32) >> left).astype(np.int16)
        magnitude = 32768 >> left
        # int16 grids have zero point 0, but the kernels honour any offset
        input_offset = 0 if rng.random() < 0.5 else int(rng.integers(-magnitude // 16, magnitude // 16 + 1))
    # mult · 2^shift / 2^31 in [0.5, 1) · 2^shift: the shift that maps `magnitude` to the output's
    ratio = kc.MAGNITUDE[out_bits] / magnitude
    shift = int(np.round(np.log2(ratio))) + int(rng.integers(-2, 1)) - coarse
    top = kc.MAGNITUDE[out_bits]
    output_offset = int(rng.integers(-top // 8, top // 8))
    params = RequantizeParams(n, input_offset, output_offset, mult, shift, wide_clamp(rng, out_bits))
    op = Op(kernel, "rq", ("x",), "y", params)
    return RunnerCase.of(op, [x], f"{kernel} {params}")


def wide_cases(rounds: int, seed: int) -> list[RunnerCase]:
    rng = np.random.default_rng(seed)
    return [wide_case(rng, kernel) for _ in range(rounds) for kernel in WIDE_KERNELS]


def test_matches_numpy_on_host(host_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(host_runner, random_cases(300, seed=16), tmp_path) == 300


def test_wide_kernels_match_numpy_on_host(host_runner, tmp_path: Path) -> None:
    cases = wide_cases(100, seed=17)
    assert kc.saturated_fraction(cases) < 0.10
    assert kc.run_and_check(host_runner, cases, tmp_path) == 300


@pytest.mark.qemu
def test_matches_numpy_on_m7(m7_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(m7_runner, random_cases(120, seed=1005), tmp_path) == 120


@pytest.mark.qemu
def test_wide_kernels_match_numpy_on_m7(m7_runner, tmp_path: Path) -> None:
    cases = wide_cases(40, seed=1006)
    assert kc.saturated_fraction(cases) < 0.10
    assert kc.run_and_check(m7_runner, cases, tmp_path) == 120


def test_reference_is_exact_on_every_code() -> None:
    """The reference's table over every input code equals the direct computation."""
    rng = np.random.default_rng(3)
    for kernel in (requantize.FAMILY.kernels[None], *WIDE_KERNELS):
        case = wide_case(rng, kernel) if kernel in WIDE_KERNELS else random_case(rng)
        in_bits, out_bits = requantize.FAMILY.bits_of(kernel)
        codes = np.arange(-(1 << (in_bits - 1)), 1 << (in_bits - 1))
        got = requantize.FAMILY.reference(case.op)([codes[None]])[0]
        want = requantize.requantize_tensor(codes, case.op.params, out_bits)
        assert got.dtype == want.dtype and np.array_equal(got, want), kernel


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


@pytest.mark.parametrize(("gi", "go", "kernel"), [
    (Grid(0.03, 5, -128, 127, "in"), Grid.wide(-4.0, 3.0, "out"), "tr_requantize_s8_s16"),
    (Grid.wide(-5.0, 6.0, "in"), Grid(0.035, -10, -128, 127, "out"), "tr_requantize_s16_s8"),
    (Grid.wide(-5.0, 6.0, "in"), Grid.wide(-2.5, 4.0, "out"), "tr_requantize_s16"),
    (Grid.wide(-3.0, 3.0, "in"), Grid.wide(-1.0, 1.5, "out"), "tr_requantize_s16"),  # a coarser input: left shift
    (Grid(0.03, 5, -128, 127, "in"), Grid(0.07, -20, -128, 127, "out"), "tr_requantize_s8"),
])
def test_convert_op_picks_the_kernel_by_widths_and_matches_real_arithmetic(gi: Grid, go: Grid, kernel: str) -> None:
    """convert_op (= requantize_op) with int8 / int16 grids on either side: the kernel of those widths,
    whose output on every input code is the clipped real value within the double-rounding bound."""
    for relu in (False, True):
        op = requantize.convert_op("rq", "x", "y", gi, go, relu, (7, 3))
        assert op.kernel == kernel and ops.io_bits(op.kernel) == (gi.bits, go.bits)
        q = np.arange(gi.qmin, gi.qmax + 1)
        out = ops.family_of(op.kernel).reference(op)([q[None]])[0]
        assert out.dtype == (np.int16 if go.bits == 16 else np.int8)
        got = go.scale * (out.astype(np.float64) - go.zero_point)
        real = np.clip(gi.scale * (q - gi.zero_point), 0.0 if relu else go.real_min, go.real_max)
        right = max(-op.params.shift, 0)
        assert op.params.shift > 0 or gi.scale < go.scale
        assert (np.abs(got - real) / go.scale).max() <= 0.5 + 0.5 / 2**right + 1e-6
