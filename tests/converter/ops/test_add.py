"""tr_add_s8 and tr_add_s16 against their numpy reference (ops/add.py), and their lowering: a sum of two
grids within one output step of the real sum."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kernel_cases as kc
from tinyrobust.converter.ir import Activation, AddNode, Graph, Grid, InputNode, TensorInfo
from tinyrobust.converter.ops import add
from tinyrobust.converter.ops.add import AddParams
from tinyrobust.converter.ops.base import Clamp, Op
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


def random_case_s16(rng: np.random.Generator) -> RunnerCase:
    # odd and even counts around the DSP path's pairs; input multipliers <= 1/2 as the lowering's (shift 0
    # with a mantissa <= 2^30, or shift <= -1: the DSP path specialises on both kinds of rounding), offsets
    # mostly 0 (symmetric int16 grids) and otherwise small enough that (q + offset) << 15 fits int32; a
    # third of the cases are the lowering's non-negative grids (zero point −32768, left shift 14)
    n = int(rng.integers(1, 9)) if rng.random() < 0.3 else int(rng.integers(9, 600))
    non_negative = rng.random() < 0.33
    def offset() -> int:
        if non_negative:
            return 32768
        return 0 if rng.random() < 0.7 else int(rng.integers(-1000, 1001))
    def mult_for(shift: int) -> int:
        return int(rng.integers(1 << 29, 1 << 30, endpoint=True)) if shift == 0 else _mult(rng)
    s1, s2 = (int(v) for v in rng.integers(-4, 1, size=2))
    # |a + b| is about 2^29.5 · 2^max(s1, s2) (inputs over int16, << 15): an output shift that lands ~2^14
    so = -15 - max(s1, s2) + int(rng.integers(-1, 2))
    act = Clamp(-32768, 32767)
    if rng.random() < 0.3:
        lo, hi = sorted(int(v) for v in rng.integers(-32768, 32768, size=2))
        act = Clamp(lo, hi)
    left_shift = add.LEFT_SHIFT_WIDE_ASYMMETRIC if non_negative else add.LEFT_SHIFT[16]
    params = AddParams(n, offset(), mult_for(s1), s1, offset(), mult_for(s2), s2, left_shift,
                       -offset(), _mult(rng), so, act)
    op = Op(add.FAMILY.kernel(None, 16), "add", ("a", "b"), "y", params)
    return RunnerCase.of(op, [kc.i16(rng, n), kc.i16(rng, n)], f"add_s16 {params}")


def random_cases_s16(rounds: int, seed: int) -> list[RunnerCase]:
    rng = np.random.default_rng(seed)
    return [random_case_s16(rng) for _ in range(rounds)]


def test_matches_numpy_on_host(host_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(host_runner, random_cases(300, seed=15), tmp_path) == 300


def test_s16_matches_numpy_on_host(host_runner, tmp_path: Path) -> None:
    cases = random_cases_s16(150, seed=1615)
    assert {c.op.kernel for c in cases} == {"tr_add_s16"}
    assert kc.saturated_fraction(cases) < 0.10
    assert kc.run_and_check(host_runner, cases, tmp_path) == 150


@pytest.mark.qemu
def test_matches_numpy_on_m7(m7_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(m7_runner, random_cases(120, seed=1004), tmp_path) == 120


@pytest.mark.qemu
def test_s16_matches_numpy_on_m7(m7_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(m7_runner, random_cases_s16(80, seed=1616), tmp_path) == 80


def test_numpy_add_refuses_an_int32_overflow() -> None:
    # (32767 + 1000) << 16 is past INT32_MAX: the C would wrap, so the reference refuses
    p = AddParams(1, 1000, 1 << 30, -1, 0, 1 << 30, -1, 16, 0, 1 << 30, -15, Clamp(-32768, 32767))
    with pytest.raises(OverflowError):
        add.add(np.array([32767], np.int16), np.array([0], np.int16), p, 16)
    # inputs fine, but two terms near 2^31 (multipliers ~2) sum past INT32_MAX
    big = AddParams(1, 0, (1 << 31) - 1, 1, 0, (1 << 31) - 1, 1, 15, 0, 1 << 30, -15, Clamp(-32768, 32767))
    with pytest.raises(OverflowError):
        add.add(np.array([32767], np.int16), np.array([32767], np.int16), big, 16)


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


@pytest.mark.parametrize(("low", "left_shift"), [(-0.4, 15), (0.0, 14)], ids=["symmetric", "relu_inputs"])
def test_lowered_s16_add_picks_tr_add_s16_and_is_within_one_step_of_the_real_sum(low: float,
                                                                                   left_shift: int) -> None:
    """A residual add of two ReLU outputs has non-negative int16 grids (zero point −32768, |q − z| up to
    65535): one bit less of left shift keeps it within int32."""
    g1, g2 = Grid.wide(min(low, 0.0) * 7.5, 2.5, "a"), Grid.wide(low, 0.7, "b")
    go = Grid.wide(min(low, 0.0) * 8.75, 3.5, "y")
    nodes = (InputNode("a", "a"), InputNode("b", "b"), AddNode("add", ("a", "b"), "y", Activation("linear")))
    tensors = {t: TensorInfo(t, (300,), t, g) for t, g in (("a", g1), ("b", g2), ("y", go))}
    graph = Graph(nodes, tensors, ("a",), ("y",), "g")
    (op,) = add.lower(nodes[2], graph, LowerOptions()).ops
    assert op.kernel == "tr_add_s16" and op.params.left_shift == left_shift
    q1, q2 = np.meshgrid(np.arange(-32768, 32768, 517), np.arange(-32768, 32768, 331))
    q1, q2 = q1.reshape(-1).astype(np.int16), q2.reshape(-1).astype(np.int16)
    out = add.add(q1, q2, op.params, 16)
    assert out.dtype == np.int16
    got = go.scale * (out.astype(np.float64) - go.zero_point)
    real = np.clip(g1.scale * (q1 - float(g1.zero_point)) + g2.scale * (q2 - float(g2.zero_point)),
                   go.real_min, go.real_max)
    assert np.abs(got - real).max() <= go.scale * 1.0


def test_lowering_refuses_mixed_widths() -> None:
    g8, g16 = Grid(0.02, 0, -128, 127, "a"), Grid.wide(-1.0, 1.0, "b")
    nodes = (InputNode("a", "a"), InputNode("b", "b"), AddNode("mixed", ("a", "b"), "y", Activation("linear")))
    tensors = {t: TensorInfo(t, (8,), t, g) for t, g in (("a", g8), ("b", g16), ("y", g16))}
    with pytest.raises(AssertionError, match="mixed"):
        add.lower(nodes[2], Graph(nodes, tensors, ("a",), ("y",), "g"), LowerOptions())
