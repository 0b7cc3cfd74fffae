"""What the three weighted families share (ops/weighted.py): the accumulator with its fine bias,
checked by hand on all nine kernels, and the lowering of a conv-like node on hand-built graphs (sign
flips, dead channels, bias precision)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import kernel_cases as kc
from tinyrobust.converter import packing
from tinyrobust.converter.ir import ConvNode, Graph, Grid, InputNode, TensorInfo, WeightTensor
from tinyrobust.converter.lower import lower
from tinyrobust.converter.ops import convolve, depthwise_conv, fully_connected
from tinyrobust.converter.ops.base import HWC, Clamp, Op, Tile
from tinyrobust.converter.ops.convolve import ConvParams
from tinyrobust.converter.ops.depthwise_conv import DepthwiseParams
from tinyrobust.converter.ops.fully_connected import FullyConnectedParams
from tinyrobust.converter.ops.lowering import LowerOptions
from tinyrobust.converter.reference import Reference
from tinyrobust.errors import UnsupportedModelError
from tinyrobust.firmware import runner
from tinyrobust.firmware.runner import SENTINEL, RunnerCase

OUT_OFFSET = 10


def _round_half_away(num: int, log2_den: int) -> int:
    den = 1 << log2_den
    assert (2 * abs(num)) % den != 0 or abs(num) % den == 0, "tie: pick another value"
    q = (abs(num) + den // 2) // den
    return q if num >= 0 else -q


# (name, bias_shift, bias or None, requantise shift, acc = Σ w·x · 2^bias_shift + bias for one tap)
HAND_ROWS = [
    ("single", 3, 6, -2, 3 * 8 + 6),  # x = 3, w = +1: Σ = 3
    ("single_neg", 3, 6, -2, -3 * 8 + 6),  # x = -3
    ("single_null", 0, None, -2, 6),  # x = 6, NULL bias
    ("single_null", 5, None, -2, 6 * 32),
    ("single_max", 16, 40000, -14, -(1 << 16) + 40000),  # x = -1, the largest accepted bias_shift
    # 3x3 window around a 1x1 input, all weights +1, x = 2, pad_value = -1: Σ = 2 - 8 = -6;
    # fully connected x = [4, -2, 1], w = [1, -1, 1]: Σ = 7
    ("window", 2, 10, -2, None),
]
X_OF = {"single": 3, "single_neg": -3, "single_null": 6, "single_max": -1}


def _hand_op(kind: str, fmt: str, name: str, bias_shift: int, bias: int | None,
             shift: int) -> tuple[Op, np.ndarray, int]:
    act = Clamp(-128, 127)
    if name == "window":
        if kind == "fc":
            x, wt, acc = np.array([4, -2, 1], np.int8), np.array([[1, -1, 1]], np.int8), 7 * 4 + 10
        else:
            x, acc = np.array([2], np.int8), -6 * 4 + 10
            wt = np.ones((1, 9) if kind == "conv" else (9, 1), np.int8)
        kk, pad = 3, 1
    else:
        x, wt, kk, pad = np.array([X_OF[name]], np.int8), np.ones((1, 1), np.int8), 1, 0
        acc = next(r[4] for r in HAND_ROWS if r[0] == name and r[1] == bias_shift)
    arrays = kc.weighted_arrays(packing.pack_rows(wt, fmt), None if bias is None else np.array([bias], np.int32),
                                np.array([1 << 30], np.int32), np.array([shift], np.int32))
    if kind == "fc":
        op = Op(fully_connected.FAMILY.kernels[fmt], name, ("x",), "y",
                FullyConnectedParams(x.size, 1, OUT_OFFSET, act, bias_shift), arrays, fmt)
    elif kind == "conv":
        op = Op(convolve.FAMILY.kernels[fmt], name, ("x",), "y",
                ConvParams(HWC(1, 1, 1), HWC(1, 1, 1), Tile(kk, kk), Tile(1, 1), Tile(pad, pad), -1, OUT_OFFSET, act,
                           bias_shift), arrays, fmt)
        x = x.reshape(1, 1, 1)
    else:
        op = Op(depthwise_conv.FAMILY.kernels[fmt], name, ("x",), "y",
                DepthwiseParams(HWC(1, 1, 1), HWC(1, 1, 1), Tile(kk, kk), 1, Tile(1, 1), Tile(pad, pad), -1, OUT_OFFSET,
                                act, bias_shift), arrays, fmt)
        x = x.reshape(1, 1, 1)
    return op, x, acc


def hand_cases() -> list[RunnerCase]:
    """With multiplier 2^30 (x0.5) and an even acc the requantised value is exactly acc · 2^(shift-1)
    rounded half away from zero, so the expectation needs no model of the kernels."""
    cases = []
    for fmt in packing.FORMATS:
        for name, bias_shift, bias, shift, _ in HAND_ROWS:
            for kind in ("conv", "dw", "fc"):
                op, x, acc = _hand_op(kind, fmt, name, bias_shift, bias, shift)
                assert acc % 2 == 0
                want = np.int8(np.clip(_round_half_away(acc, 1 - shift) + OUT_OFFSET, -128, 127)).tobytes()
                label = f"{kind} {fmt} {name} bias_shift={bias_shift}"
                case = kc.weighted_case(op, [x], label)
                assert case.expected == want, label  # the numpy reference agrees with the hand value
                cases.append(case)
    return cases


def test_bias_shift_by_hand(host_runner, tmp_path: Path) -> None:
    """acc = Σ w·x · 2^bias_shift + bias on hand-worked cases (padded taps, NULL bias, bias_shift 16)
    for all nine weighted kernels: numpy and C each match the hand value."""
    assert kc.run_and_check(host_runner, hand_cases(), tmp_path) == 6 * 3 * 3


def test_bias_shift_out_of_range_is_refused(host_runner, tmp_path: Path) -> None:
    """bias_shift outside [0, 16] is TR_NN_ARG_ERROR (1 << bias_shift would be undefined), and the
    output is left untouched."""
    cases = []
    for case in hand_cases():
        if case.label.split()[2] != "single":
            continue
        for bad in (-1, 17, 31):
            op = replace(case.op, params=replace(case.op.params, bias_shift=bad))
            cases.append(RunnerCase(op, case.inputs, case.expected, None, f"{case.label} -> {bad}"))
    results = runner.run(host_runner, cases, tmp_path)
    for case, res in zip(cases, results, strict=True):
        assert res.status == -1, case.label
        assert res.output == bytes([SENTINEL]) * len(res.output), case.label
    assert {c.op.kernel for c in cases} == {k for f in (convolve.FAMILY, depthwise_conv.FAMILY,
                                                          fully_connected.FAMILY) for k in f.kernels.values()}


# ---------------------------------------------------------------- lowering a conv-like node

IN = Grid(1 / 16, -128, -128, 127, "test input")
OUT = Grid(1 / 32, 0, -128, 127, "test output")


def _dense_graph(codes: np.ndarray, alpha: np.ndarray, post_scale: np.ndarray, post_bias: np.ndarray,
                 kind: str = "ternary") -> Graph:
    cin, cout = codes.shape
    w = WeightTensor(values=codes * alpha, quantizer="test", kind=kind, codes=codes.astype(np.int8),  # type: ignore[arg-type]
                     channel_scale=alpha)
    nodes = (InputNode("x", "x"), ConvNode("fc", ("x",), "y", "dense", w, post_scale, post_bias))
    tensors = {"x": TensorInfo("x", (cin,), "x", IN), "y": TensorInfo("y", (cout,), "y", OUT)}
    return Graph(nodes, tensors, ("x",), ("y",), "test")


@pytest.mark.parametrize("seed", range(20))
def test_lowered_dense_is_within_half_a_step_of_the_real_arithmetic(seed: int) -> None:
    """Negative BN scales (sign flips), dead channels and biases that are not multiples of the
    accumulator unit: every output within 0.5 step (+ a hair) of the exact real result."""
    rng = np.random.default_rng(seed)
    cin, cout = 24, 9
    codes = rng.integers(-1, 2, (cin, cout))
    alpha = rng.uniform(0.05, 0.4, cout)
    alpha[0] = 0.0  # a dead channel: outputs its bias only
    post_scale = rng.uniform(0.5, 1.5, cout) * np.where(rng.random(cout) < 0.4, -1, 1)
    post_bias = rng.uniform(-1.0, 1.0, cout)
    program = lower(_dense_graph(codes, alpha, post_scale, post_bias), LowerOptions())
    q = rng.integers(-128, 128, (64, cin)).astype(np.int8)
    out = Reference(program).run(q).astype(np.float64)
    x = IN.scale * (q.astype(np.float64) - IN.zero_point)
    real = np.clip(post_scale * ((x @ codes) * alpha) + post_bias, OUT.real_min, OUT.real_max)
    err = np.abs(OUT.scale * (out - OUT.zero_point) - real) / OUT.scale
    assert err.max() <= 0.5 + 0.02, err.max()
    assert program.ops[0].params.bias_shift > 0


def test_int8_minus_128_with_a_negative_scale_is_refused() -> None:
    g = _dense_graph(np.array([[-128], [5]]), np.array([0.01]), np.array([-1.0]), np.array([0.0]), kind="int8")
    with pytest.raises(UnsupportedModelError, match="-128"):
        lower(g, LowerOptions())
