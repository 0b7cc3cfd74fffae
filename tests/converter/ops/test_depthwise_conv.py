"""tr_depthwise_conv_s8_{t2,t5,s8} and its int16 twins against the numpy reference (ops/depthwise_conv.py),
and the two layers that lower to it: a standalone BatchNorm and an average pool onto a finer grid.
Kernels: tr_depthwise_conv_s8_t2, tr_depthwise_conv_s8_t5, tr_depthwise_conv_s8_s8,
tr_depthwise_conv_s16_t2, tr_depthwise_conv_s16_t5, tr_depthwise_conv_s16_s8.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

import kernel_cases as kc
from tinyrobust.converter import packing
from tinyrobust.converter.ir import (
    Activation,
    BatchNormNode,
    ConvNode,
    Graph,
    Grid,
    InputNode,
    PoolNode,
    TensorInfo,
    WeightTensor,
)
from tinyrobust.converter.ops import depthwise_conv, pool
from tinyrobust.converter.ops.base import HWC, Clamp, Op, Tile
from tinyrobust.converter.ops.depthwise_conv import DepthwiseParams
from tinyrobust.converter.ops.lowering import LowerOptions
from tinyrobust.converter.program import InputQuantization, Program, TensorSpec
from tinyrobust.converter.reference import Reference
from tinyrobust.firmware.runner import RunnerCase


def random_case(rng: np.random.Generator, fmt: str, edges: bool = False, small: bool = False) -> RunnerCase:
    """edges: mostly 3×3 stride-1 ch_mult-1 layers (the DSP plane path: bands of rows, tiles of columns,
    passes of 4) with heights and widths around those limits, some ch_mult 2 and stride 2, outputs
    spread over int8. small: the shapes of published models' late layers, where the path is chosen by
    shape: one side 1..8 and the other up to 29 (the plane path transposed or not; at stride 2 mostly
    9..40 a side, the stride-2 plane path's bands and tiles), odd channel counts
    up to 21 (the channel-block path and its C_out % 4 remainder), strides 1 and 2, any padding; most of
    them with the full int8 output range and right shifts >= 2 (the stride-2 plane path's condition)."""
    while True:
        h, w = (int(v) for v in rng.integers(1, 10, size=2))
        cin, ch_mult = int(rng.integers(1, 10)), int(rng.integers(1, 3))
        kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
        sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
        if edges:
            h = int(rng.choice([1, 2, 3, 13, 14, 15, 16, 29])) if rng.random() < 0.5 else int(rng.integers(1, 20))
            w = int(rng.choice([1, 2, 3, 4, 5, 31, 32, 33, 55, 56, 57, 61])) if rng.random() < 0.5 else int(
                rng.integers(1, 20))
            cin, ch_mult = int(rng.integers(1, 6)), (1 if rng.random() < 0.8 else 2)
            kh, kw = (3, 3) if rng.random() < 0.85 else (kh, kw)
            sh, sw = (1, 1) if rng.random() < 0.85 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        if small:
            h, w = int(rng.integers(1, 9)), int(rng.integers(1, 30))
            h, w = (h, w) if rng.random() < 0.5 else (w, h)
            cin = 4 * int(rng.integers(1, 6)) if rng.random() < 0.5 else int(rng.integers(1, 22))
            ch_mult = 1 if rng.random() < 0.9 else 2
            kh, kw = (3, 3) if rng.random() < 0.85 else (kh, kw)
            sh, sw = ((1, 1), (2, 2), (1, 2), (2, 1))[int(rng.choice(4, p=[0.4, 0.4, 0.1, 0.1]))]
            if (sh, sw) == (2, 2) and rng.random() < 0.7:  # the stride-2 plane path: bands, tiles of 16
                h, w = (int(v) for v in rng.integers(9, 41, size=2))
        cout = cin * ch_mult
        pt, pl = int(rng.integers(0, kh)), int(rng.integers(0, kw))
        oh, ow = kc.out_len(h, kh, sh, pt, rng), kc.out_len(w, kw, sw, pl, rng)
        x = kc.i8(rng, (h, w, cin))
        wt = kc.weights(rng, fmt, (kh, kw, cout))
        bias, bias_shift = kc.bias(rng, cout, kh * kw, wt)
        w_scale = 80.0 if fmt == packing.S8 else 1.0
        mult, shift = kc.quant(rng, cout, kh * kw, w_scale, bias_shift)
        pad_value, out_off = (int(v) for v in rng.integers(-128, 128, size=2))
        if edges or small:
            bias, shift = kc.spread(rng, cout, kh * kw, w_scale, bias, bias_shift)
            out_off = int(rng.integers(-20, 21))
        clamp = kc.clamp(rng)
        if small and rng.random() < 0.6:  # the output stage every DSP plane path takes (stride 2 has no other)
            clamp, shift = Clamp(-128, 127), np.minimum(shift, -2)
        params = DepthwiseParams(HWC(h, w, cin), HWC(oh, ow, cout), Tile(kh, kw), ch_mult, Tile(sh, sw),
                                 Tile(pt, pl), pad_value, out_off, clamp, bias_shift)
        arrays = kc.weighted_arrays(packing.pack_rows(wt.reshape(kh * kw, cout), fmt), bias, mult, shift)
        op = Op(depthwise_conv.FAMILY.kernels[fmt], "dw", ("x",), "y", params, arrays, fmt)
        try:
            return kc.weighted_case(op, [x], f"dw {fmt} {params}")
        except OverflowError:  # the lowering never emits an overflowing left shift; resample
            continue


def random_cases(rounds: int, seed: int, edges: bool = False, small: bool = False) -> list[RunnerCase]:
    rng = np.random.default_rng(seed)
    return [random_case(rng, fmt, edges, small) for _ in range(rounds) for fmt in packing.FORMATS]


def random_wide_case(rng: np.random.Generator, fmt: str) -> RunnerCase:
    """A tr_depthwise_conv_s16_* case, outputs spread over int16: channel counts around the DSP path's
    groups of 4 and blocks of 16 (C_out % 4 left to the plain loop), up to 9 x 9 taps (more than 49 take
    the plain loop, more than 64 without its decoded weights), ch_mult 1 mostly (2 or 3 the plain loop),
    strides 1..3, any padding and pad value, each output stage of the DSP path (full range, relu, any
    clamp; right shifts or none)."""
    while True:
        h, w = (int(v) for v in rng.integers(1, 12, size=2))
        cin = int(rng.choice([1, 2, 3, 4, 5, 7, 8, 12, 15, 16, 17, 20, 31, 32, 33, 36]))
        ch_mult = 1 if rng.random() < 0.8 else int(rng.integers(2, 4))
        kh, kw = (3, 3) if rng.random() < 0.5 else tuple(int(v) for v in rng.integers(1, 9, size=2))
        if rng.random() < 0.08:  # more than 64 taps: the plain loop decodes each weight where it reads it
            kh, kw = 9, int(rng.integers(8, 10))
        sh, sw = (1, 1) if rng.random() < 0.5 else tuple(int(v) for v in rng.integers(1, 4, size=2))
        cout = cin * ch_mult
        pt, pl = int(rng.integers(0, kh)), int(rng.integers(0, kw))
        oh, ow = kc.out_len(h, kh, sh, pt, rng), kc.out_len(w, kw, sw, pl, rng)
        x = kc.i16(rng, (h, w, cin))
        wt = kc.weights(rng, fmt, (kh, kw, cout))
        bias, bias_shift = kc.bias(rng, cout, kh * kw, wt, bits=16)
        w_scale = 80.0 if fmt == packing.S8 else 1.0
        mult, _ = kc.quant(rng, cout, kh * kw, w_scale, bias_shift, bits=16)
        bias, shift = kc.spread(rng, cout, kh * kw, w_scale, bias, bias_shift, bits=16)
        pad_value = 0 if rng.random() < 0.5 else int(rng.integers(-32768, 32768))
        out_off = int(rng.integers(-300, 301))
        if rng.random() < 0.15:  # the same scales as multipliers alone (shift 0: the DSP path's general stage)
            mult, shift = (mult >> -np.minimum(shift, 0)).astype(np.int32), np.maximum(shift, 0)
        # the DSP path's output stages: the whole int16 range (SSAT), a relu (USAT), any other range
        clamp = (Clamp(-32768, 32767), Clamp(0, 32767), None)[int(rng.choice(3, p=[0.5, 0.25, 0.25]))]
        if clamp is None:
            lo, hi = sorted(int(v) for v in rng.integers(-32768, 32768, size=2))
            clamp = Clamp(lo, hi)
        params = DepthwiseParams(HWC(h, w, cin), HWC(oh, ow, cout), Tile(kh, kw), ch_mult, Tile(sh, sw),
                                 Tile(pt, pl), pad_value, out_off, clamp, bias_shift)
        arrays = kc.weighted_arrays(packing.pack_rows(wt.reshape(kh * kw, cout), fmt), bias, mult, shift)
        op = Op(depthwise_conv.FAMILY.kernel(fmt, 16), "dw16", ("x",), "y", params, arrays, fmt)
        try:
            return kc.weighted_case(op, [x], f"dw16 {fmt} {params}")
        except OverflowError:  # the lowering never emits an overflowing accumulator; resample
            continue


def random_wide_cases(rounds: int, seed: int) -> list[RunnerCase]:
    rng = np.random.default_rng(seed)
    return [random_wide_case(rng, fmt) for _ in range(rounds) for fmt in packing.FORMATS]


def test_matches_numpy_on_host(host_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(host_runner, random_cases(120, seed=12), tmp_path) == 360


@pytest.mark.qemu
def test_matches_numpy_on_m7(m7_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(m7_runner, random_cases(50, seed=1001), tmp_path) == 150


@pytest.mark.qemu
def test_fast_path_edges_match_numpy(host_runner, m7_runner, tmp_path: Path) -> None:
    """The DSP plane path's edge shapes, outputs spread over int8, on the host and the M7."""
    cases = random_cases(50, seed=2001, edges=True)
    assert kc.saturated_fraction(cases) < 0.10
    assert kc.run_and_check(host_runner, cases, tmp_path / "host") == 150
    assert kc.run_and_check(m7_runner, cases, tmp_path / "m7") == 150


@pytest.mark.qemu
def test_small_and_narrow_maps_match_numpy(host_runner, m7_runner, tmp_path: Path) -> None:
    """Small, narrow and tall maps with strides 1 and 2 (each DSP path and the choice between them), outputs
    spread over int8, on the host and the M7."""
    cases = random_cases(50, seed=3001, small=True)
    assert kc.saturated_fraction(cases) < 0.10
    assert kc.run_and_check(host_runner, cases, tmp_path / "host") == 150
    assert kc.run_and_check(m7_runner, cases, tmp_path / "m7") == 150


def test_wide_matches_numpy_on_host(host_runner, tmp_path: Path) -> None:
    """tr_depthwise_conv_s16_{t2,t5,s8}, plain C under ASan/UBSan, outputs spread over int16."""
    cases = random_wide_cases(40, seed=4001)
    assert kc.saturated_fraction(cases) < 0.10
    assert kc.run_and_check(host_runner, cases, tmp_path) == 120


@pytest.mark.qemu
def test_wide_matches_numpy_on_m7(m7_runner, tmp_path: Path) -> None:
    """The same draws through the DSP path (blocks of 16 channels, groups of 4, the plain remainder)."""
    cases = random_wide_cases(40, seed=5001)
    assert kc.saturated_fraction(cases) < 0.10
    assert kc.run_and_check(m7_runner, cases, tmp_path) == 120


class Dims(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


def test_needs_no_scratch(tr_nn_lib: ctypes.CDLL) -> None:
    for op in (random_cases(1, seed=0)[0].op, random_wide_cases(1, seed=0)[0].op):
        assert depthwise_conv.FAMILY.scratch_of(op) == 0
    for kernel in depthwise_conv.FAMILY.all_kernels():
        fn = getattr(tr_nn_lib, f"{kernel}_get_buffer_size")
        assert fn(ctypes.byref(Dims(1, 8, 8, 5)), ctypes.byref(Dims(1, 3, 3, 10))) == 0


def _graph(nodes, shapes: dict[str, tuple[int, ...]], grids: dict[str, Grid]) -> Graph:
    tensors = {t: TensorInfo(t, s, t, grids[t]) for t, s in shapes.items()}
    return Graph(tuple(nodes), tensors, inputs=("x",), outputs=(nodes[-1].output,), name="g")


def _run(ops: tuple[Op, ...], x: np.ndarray, shapes: dict[str, tuple[int, ...]]) -> np.ndarray:
    tensors = {t: TensorSpec(t, s, 1.0, 0, t) for t, s in shapes.items()}
    program = Program(tensors, ops, ("x",), (ops[-1].output,), (InputQuantization(1.0, 0, -128, 127, "test"),),
                      packing.T2, "g")
    return Reference(program).run_one(x.reshape(-1))


def test_standalone_batchnorm_lowers_to_a_sign_coded_depthwise() -> None:
    """BN y = s·x + b per channel, s with both signs: codes are sign(s), output within one step of the
    real BN on the grids."""
    scale, offset = np.array([0.5, -1.25, 2.0]), np.array([0.1, 0.0, -0.3])
    gi, go = Grid(0.05, 3, -128, 127, "in"), Grid(0.1, -5, -128, 127, "out")
    shapes = {"x": (2, 2, 3), "y": (2, 2, 3)}
    g = _graph([InputNode("x", "x"), BatchNormNode("bn", ("x",), "y", scale, offset)], shapes, {"x": gi, "y": go})
    (op,) = depthwise_conv.lower_batchnorm(g.nodes[1], g, LowerOptions()).ops
    assert op.kernel == depthwise_conv.FAMILY.kernels[packing.T2]
    codes = packing.unpack_rows(op.arrays["weights"], op.weight_format, 1, 3)
    np.testing.assert_array_equal(codes[0], [1, -1, 1])
    x = np.random.default_rng(0).integers(-128, 128, (2, 2, 3)).astype(np.int8)
    got = go.scale * (_run((op,), x, shapes).astype(np.float64) - go.zero_point)
    real = np.clip(gi.scale * (x.astype(np.float64) - gi.zero_point) * scale + offset, go.real_min, go.real_max)
    assert np.abs(got - real.reshape(-1)).max() <= go.scale * 0.51


def _wide_output(op: Op, x: np.ndarray) -> np.ndarray:
    """The op's reference on one int16 sample (what the s16 kernel must reproduce)."""
    return np.asarray(depthwise_conv.FAMILY.reference(op)([x[None]]))[0]


@pytest.mark.parametrize("input_low", [-3.0, 0.0], ids=["symmetric_input", "relu_input"])
def test_int16_depthwise_lowers_to_the_s16_kernel_and_matches_real_arithmetic(input_low: float) -> None:
    """A 3×3, ch_mult 2, padded depthwise with a relu on int16 grids (Grid.wide) picks
    tr_depthwise_conv_s16_* (the s8 weights of int8 codes, ternary ones of ternary codes) and its output is
    within half a step of the real convolution; an int8 output grid is refused naming the layer. The relu
    output's grid, and a non-negative input's, have zero point −32768 (padded taps read it)."""
    rng = np.random.default_rng(7)
    h, w, cin, mult = 5, 6, 3, 2
    x_real = rng.uniform(input_low, 3.0, (h, w, cin))
    gi = Grid.wide(input_low, 3.0, "in")
    x = np.clip(np.round(x_real / gi.scale) + gi.zero_point, -32768, 32767).astype(np.int16)
    for codes, fmt in ((rng.integers(-1, 2, (3, 3, cin, mult)), packing.T2),
                       (rng.integers(-128, 128, (3, 3, cin, mult)), packing.S8)):
        alpha = rng.uniform(0.01, 0.1, cin * mult)
        bias = rng.uniform(-0.5, 0.5, cin * mult)
        xq = gi.scale * np.pad(x.astype(np.float64) - gi.zero_point, ((1, 1), (1, 1), (0, 0)))
        real = np.zeros((h, w, cin * mult))
        for i in range(3):
            for j in range(3):
                tap_x = np.repeat(xq[i:i + h, j:j + w], mult, axis=2)  # output channel o reads o // mult
                real += tap_x * codes[i, j].reshape(-1)
        real = np.maximum(real * alpha + bias, 0.0)
        go = Grid.wide(0.0, float(real.max()), "out")
        weights = WeightTensor(values=codes * alpha.reshape(cin, mult), quantizer="test",
                               kind="ternary" if fmt == packing.T2 else "int8", codes=codes.astype(np.int8),
                               channel_scale=alpha)
        node = ConvNode("dw_wide", ("x",), "y", "depthwise", weights, np.ones(cin * mult), bias,
                        padding=(1, 1, 1, 1), activation=Activation("relu"))
        shapes = {"x": (h, w, cin), "y": (h, w, cin * mult)}
        g = _graph([InputNode("x", "x"), node], shapes, {"x": gi, "y": go})
        (op,) = depthwise_conv.lower(node, g, LowerOptions()).ops
        assert op.kernel == depthwise_conv.FAMILY.kernel(op.weight_format, 16)
        assert op.kernel.startswith("tr_depthwise_conv_s16_")
        assert go.zero_point == -32768 and op.params.pad_value == gi.zero_point == (0 if input_low < 0 else -32768)
        got = go.scale * (_wide_output(op, x).astype(np.float64) - go.zero_point)
        assert np.abs(got - real).max() <= go.scale * 0.51  # rounding onto the output grid alone
        narrow = _graph([InputNode("x", "x"), node], shapes, {"x": gi, "y": Grid.from_range(0.0, 1.0, "out")})
        with pytest.raises(AssertionError, match="dw_wide"):
            depthwise_conv.lower(node, narrow, LowerOptions())


def test_standalone_batchnorm_on_int16_grids_lowers_to_the_s16_kernel() -> None:
    """BN on int16 grids: a sign-coded tr_depthwise_conv_s16_t2, within a step of the real BN."""
    scale, offset = np.array([0.5, -1.25, 2.0, 0.75, -0.1]), np.array([0.1, 0.0, -0.3, 2.0, 0.05])
    gi, go = Grid.wide(-4.0, 4.0, "in"), Grid.wide(-10.0, 10.0, "out")
    shapes = {"x": (3, 2, 5), "y": (3, 2, 5)}
    g = _graph([InputNode("x", "x"), BatchNormNode("bn", ("x",), "y", scale, offset)], shapes, {"x": gi, "y": go})
    (op,) = depthwise_conv.lower_batchnorm(g.nodes[1], g, LowerOptions()).ops
    assert op.kernel == "tr_depthwise_conv_s16_t2"
    x = np.random.default_rng(1).integers(-32768, 32768, (3, 2, 5)).astype(np.int16)
    got = go.scale * _wide_output(op, x).astype(np.float64)
    real = np.clip(gi.scale * x.astype(np.float64) * scale + offset, go.real_min, go.real_max)
    assert np.abs(got - real).max() <= go.scale * 0.51


def test_average_pool_onto_a_finer_grid_is_an_all_ones_depthwise() -> None:
    """An unpadded 2x2 average of a 16-level grid onto a 256-level grid of the same range: the mean is
    kept (not rounded back onto the coarse grid), via a depthwise conv with codes +1 and α = 1/4."""
    gi = Grid.from_levels(0.0, 0.25, 16, "coarse")  # 4-bit relu-like grid over [0, 3.75]
    go = Grid.from_range(gi.real_min, gi.real_max, "fine")
    shapes = {"x": (2, 2, 2), "y": (1, 1, 2)}
    node = PoolNode("avg", ("x",), "y", "avg", (2, 2), (2, 2), (0, 0, 0, 0))
    g = _graph([InputNode("x", "x"), node], shapes, {"x": gi, "y": go})
    (op,) = pool.lower(node, g, LowerOptions()).ops
    assert op.kernel == depthwise_conv.FAMILY.kernels[packing.T2]
    assert np.all(packing.unpack_rows(op.arrays["weights"], op.weight_format, 4, 2) == 1)
    levels = np.array([[[0, 1], [3, 5]], [[1, 2], [2, 7]]])  # grid steps per tap; channel means 1.5 and 3.75
    x = (levels + gi.zero_point).astype(np.int8)
    got = go.scale * (_run((op,), x, shapes).astype(np.float64) - go.zero_point)
    real = gi.scale * levels.reshape(4, 2).mean(axis=0)
    assert np.abs(got - real).max() <= go.scale * 0.51
    # the same pool onto its own grid keeps the pooling kernel and rounds onto the coarse grid
    g_same = _graph([InputNode("x", "x"), node], shapes, {"x": gi, "y": gi})
    (same,) = pool.lower(node, g_same, LowerOptions()).ops
    assert same.kernel == pool.FAMILY.kernels["avg"]


def test_numpy_depthwise_with_channel_multiplier() -> None:
    """ch_mult = 2: output channel o reads input channel o // 2."""
    x = np.array([[[3, -2]]], np.int8)  # 1x1x2
    w = np.array([[[1, -1, 1, 1]]], np.int8)  # [KH, KW, C_out]
    params = DepthwiseParams(HWC(1, 1, 2), HWC(1, 1, 4), Tile(1, 1), 2, Tile(1, 1), Tile(0, 0), 0, 0,
                             Clamp(-128, 127), 0)
    out = depthwise_conv.depthwise_conv(x[None], w, np.zeros(4, np.int32), np.full(4, 1 << 30, np.int32),
                                        np.ones(4, np.int32), params)[0]  # a batch of one
    np.testing.assert_array_equal(out[0, 0], [3, -3, -2, -2])
