"""tr_convolve_s8_{t2,t5,s8} and the int16 tr_convolve_s16_{t2,t5,s8} against their numpy reference
(ops/convolve.py): random layers on the host (ASan/UBSan, plain C) and on the emulated Cortex-M7 (DSP and
plain C), a realistic layer, the scratch size twins, and the lowering of an int16 conv node.
Kernels: tr_convolve_s8_t2, tr_convolve_s8_t5, tr_convolve_s8_s8,
tr_convolve_s16_t2, tr_convolve_s16_t5, tr_convolve_s16_s8.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

import kernel_cases as kc
from tinyrobust.converter import packing
from tinyrobust.converter.ir import ConvNode, Graph, Grid, InputNode, TensorInfo, WeightTensor
from tinyrobust.converter.ops import convolve
from tinyrobust.converter.ops.base import HWC, Clamp, Op, Tile
from tinyrobust.converter.ops.convolve import ConvParams
from tinyrobust.converter.ops.lowering import LowerOptions
from tinyrobust.firmware.runner import RunnerCase

# Reduction lengths K = KH·KW·C_in around the t2/trit5 DSP path's limits: one 16-tap code word, a chunk of
# 112 / 110 taps (127 is the exactness bound of its 15-bit fields) and two chunks.
EDGE_K = (1, 15, 16, 17, 109, 110, 111, 112, 113, 127, 128, 129, 219, 220, 223, 224, 225)
# The s16 kernels' DSP loops: s8 words of 4 taps, t2 code words of 16, trit5 byte pairs of 10 and words of 20.
EDGE_K_S16 = (1, 2, 3, 4, 5, 9, 10, 11, 15, 16, 17, 19, 20, 21, 31, 32, 33, 39, 40, 41, 63, 64, 65)


def _geometry(rng: np.random.Generator, edges: bool, edge_k: tuple[int, ...] = EDGE_K) -> tuple[int, ...]:
    """(h, w, cin, cout, kh, kw, sh, sw, pt, pl, oh, ow). edges: C_in 1–3 (first layers), K at the chunk
    limits (EDGE_K, as 1×1 or 1×3 windows), odd C_out, output widths off the 8-pixel block, strides 2 and
    asymmetric padding."""
    h, w = (int(v) for v in rng.integers(1, 13 if edges else 10, size=2))
    cin, cout = int(rng.integers(1, 14)), int(rng.integers(1, 12))
    kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
    direct = rng.random() < 0.25  # 1x1, stride 1: the kernels' direct path
    if edges:
        cout = int(rng.choice([1, 2, 3, 5, 7, 9, 16]))
        if rng.random() < 0.5:
            cin, (kh, kw) = int(rng.integers(1, 4)), (3, 3)
        else:
            target = int(rng.choice(edge_k))
            direct = rng.random() < 0.5
            cin, (kh, kw) = (target, (1, 1)) if direct or target % 3 else (target // 3, (1, 3))
        sh, sw = (int(v) for v in rng.integers(1, 3, size=2))
    if direct:
        kh = kw = sh = sw = 1
    pt, pl = int(rng.integers(0, kh)), int(rng.integers(0, kw))
    oh, ow = kc.out_len(h, kh, sh, pt, rng), kc.out_len(w, kw, sw, pl, rng)
    if direct:
        pt = pl = 0
        oh, ow = h, w
    return h, w, cin, cout, kh, kw, sh, sw, pt, pl, oh, ow


def _clamp16(rng: np.random.Generator) -> Clamp:
    if rng.random() < 0.6:
        return Clamp(-32768, 32767)
    lo, hi = sorted(int(v) for v in rng.integers(-32768, 32768, size=2))
    return Clamp(lo, hi)


def random_case(rng: np.random.Generator, fmt: str, edges: bool = False, bits: int = 8) -> RunnerCase:
    """bits 16: the tr_convolve_s16_* kernels (int16 in and out; pad_value and output offset drawn anyway,
    though the lowering passes 0 for int16 tensors)."""
    while True:
        h, w, cin, cout, kh, kw, sh, sw, pt, pl, oh, ow = _geometry(rng, edges, EDGE_K if bits == 8 else EDGE_K_S16)
        x = kc.i8(rng, (h, w, cin)) if bits == 8 else kc.i16(rng, (h, w, cin))
        wt = kc.weights(rng, fmt, (cout, kh, kw, cin))
        k = kh * kw * cin
        bias, bias_shift = kc.bias(rng, cout, k, wt, bits=bits)
        w_scale = 80.0 if fmt == packing.S8 else 1.0
        mult, shift = kc.quant(rng, cout, k, w_scale, bias_shift, bits=bits)
        if edges:
            bias, shift = kc.spread(rng, cout, k, w_scale, bias, bias_shift, bits=bits)
        magnitude = kc.MAGNITUDE[bits]
        pad_value, out_off = (int(v) for v in rng.integers(-magnitude, magnitude, size=2))
        if edges:
            out_off = int(rng.integers(-20, 21)) * (magnitude // 128)
        params = ConvParams(HWC(h, w, cin), HWC(oh, ow, cout), Tile(kh, kw), Tile(sh, sw), Tile(pt, pl), pad_value,
                            out_off, kc.clamp(rng) if bits == 8 else _clamp16(rng), bias_shift)
        arrays = kc.weighted_arrays(packing.pack_rows(wt.reshape(cout, k), fmt), bias, mult, shift)
        op = Op(convolve.FAMILY.kernel(fmt, bits), "conv", ("x",), "y", params, arrays, fmt)
        try:
            return kc.weighted_case(op, [x], f"conv {fmt} {params}")
        except OverflowError:  # the lowering never emits an overflowing left shift; resample
            continue


def random_cases(rounds: int, seed: int, edges: bool = False, bits: int = 8) -> list[RunnerCase]:
    rng = np.random.default_rng(seed)
    return [random_case(rng, fmt, edges, bits) for _ in range(rounds) for fmt in packing.FORMATS]


def test_matches_numpy_on_host(host_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(host_runner, random_cases(120, seed=11), tmp_path) == 360


@pytest.mark.qemu
def test_matches_numpy_on_m7(m7_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(m7_runner, random_cases(50, seed=1000), tmp_path) == 150


@pytest.mark.qemu
def test_fast_path_edges_match_numpy(host_runner, m7_runner, tmp_path: Path) -> None:
    """The DSP paths' edge shapes (first layers, K at the chunk limits, odd channels, strides, padding),
    with outputs spread over int8 so the comparison compares values, on the host and the M7."""
    cases = random_cases(60, seed=2000, edges=True)
    assert kc.saturated_fraction(cases) < 0.10
    assert kc.run_and_check(host_runner, cases, tmp_path / "host") == 180
    assert kc.run_and_check(m7_runner, cases, tmp_path / "m7") == 180


def test_s16_matches_numpy_on_host(host_runner, tmp_path: Path) -> None:
    """tr_convolve_s16_*: int16 inputs over the whole range, random geometry and pad_value, plain C."""
    cases = random_cases(40, seed=16, bits=16)
    assert {c.op.kernel for c in cases} == set(convolve.FAMILY.wide_kernels.values())
    assert kc.run_and_check(host_runner, cases, tmp_path) == 120


@pytest.mark.qemu
def test_s16_fast_path_edges_match_numpy(host_runner, m7_runner, tmp_path: Path) -> None:
    """tr_convolve_s16_*: K around the DSP loops' blocks (EDGE_K_S16), first layers, odd C_out (the t2
    channel pairs), strides and padding, outputs spread over int16, on the host and the M7 (DSP path)."""
    cases = random_cases(40, seed=1616, edges=True, bits=16) + random_cases(10, seed=1617, bits=16)
    assert kc.saturated_fraction(cases) < 0.10
    assert kc.run_and_check(host_runner, cases, tmp_path / "host") == 150
    assert kc.run_and_check(m7_runner, cases, tmp_path / "m7") == 150


def test_realistic_layer_matches(host_runner, tmp_path: Path) -> None:
    """16x16x24 -> 32, 3x3, stride 1 and 2, every format, the bias 2^bias_shift finer than the
    accumulator (0 and 6, as the lowering emits); outputs spread over the int8 range."""
    rng = np.random.default_rng(5)
    cases = []
    for fmt in packing.FORMATS:
        for stride, bias_shift in ((1, 0), (2, 6), (1, 6)):
            x = rng.integers(-128, 128, (16, 16, 24)).astype(np.int8)
            wt = rng.integers(-1, 2, (32, 3, 3, 24)).astype(np.int8)
            arrays = {"weights": packing.pack_rows(wt.reshape(32, -1), fmt),
                      "bias": rng.integers(-5000 << bias_shift, 5000 << bias_shift, 32).astype(np.int32),
                      "multiplier": rng.integers(1 << 30, 1 << 31, 32).astype(np.int32),
                      "shift": np.full(32, (-7 if fmt != packing.S8 else -12) - bias_shift, np.int32)}
            oh = (16 + 2 - 3) // stride + 1
            params = ConvParams(HWC(16, 16, 24), HWC(oh, oh, 32), Tile(3, 3), Tile(stride, stride), Tile(1, 1), -5,
                                3, Clamp(-128, 127), bias_shift)
            op = Op(convolve.FAMILY.kernels[fmt], "big", ("x",), "y", params, arrays, fmt)
            cases.append(RunnerCase.of(op, [x], f"big {fmt} s{stride} bias_shift {bias_shift}"))
    assert kc.saturated_fraction(cases) < 0.1
    kc.run_and_check(host_runner, cases, tmp_path)


class Dims(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


def test_scratch_bytes_is_the_c_twin(tr_nn_lib: ctypes.CDLL) -> None:
    """scratch_bytes (what the memory planner reserves) equals tr_convolve_s8_*_get_buffer_size,
    over channel counts with every residue of the row granules (4, 16, 20) and some large layers."""
    rng = np.random.default_rng(3)
    for fmt, kernel in convolve.FAMILY.kernels.items():
        fn = getattr(tr_nn_lib, f"{kernel}_get_buffer_size")
        for _ in range(200):
            cin = int(rng.integers(1, 41)) if rng.random() < 0.7 else int(rng.integers(41, 1025))
            kh, kw = (int(v) for v in rng.integers(1, 8, size=2))
            params = ConvParams(HWC(8, 8, cin), HWC(8, 8, 4), Tile(kh, kw), Tile(1, 1), Tile(0, 0), 0, 0,
                                Clamp(-128, 127), 0)
            got = fn(ctypes.byref(Dims(1, 8, 8, cin)), ctypes.byref(Dims(4, kh, kw, cin)))
            assert got == convolve.scratch_bytes(params, fmt) > 0, (kernel, kh, kw, cin)


def test_s16_scratch_bytes_is_the_c_twin(tr_nn_lib: ctypes.CDLL) -> None:
    """What the planner reserves for a tr_convolve_s16_* op (FAMILY.scratch_of) equals its
    _get_buffer_size, over every residue of the row granules (4, 16, 20)."""
    rng = np.random.default_rng(4)
    for fmt, kernel in convolve.FAMILY.wide_kernels.items():
        fn = getattr(tr_nn_lib, f"{kernel}_get_buffer_size")
        for _ in range(100):
            cin = int(rng.integers(1, 41)) if rng.random() < 0.7 else int(rng.integers(41, 1025))
            kh, kw = (int(v) for v in rng.integers(1, 8, size=2))
            params = ConvParams(HWC(8, 8, cin), HWC(8, 8, 4), Tile(kh, kw), Tile(1, 1), Tile(0, 0), 0, 0,
                                Clamp(-32768, 32767), 0)
            op = Op(kernel, "c", ("x",), "y", params, {}, fmt)
            got = fn(ctypes.byref(Dims(1, 8, 8, cin)), ctypes.byref(Dims(4, kh, kw, cin)))
            assert got == convolve.FAMILY.scratch_of(op) == 10 * packing.padded_length(kh * kw * cin, fmt), kernel


def test_rejects_scratch_one_byte_short(tr_nn_lib: ctypes.CDLL) -> None:
    class Ctx(ctypes.Structure):
        _fields_ = [("buf", ctypes.c_void_p), ("size", ctypes.c_int32)]

    params = ConvParams(HWC(4, 4, 4), HWC(2, 2, 2), Tile(3, 3), Tile(1, 1), Tile(0, 0), 0, 0, Clamp(-128, 127), 0)
    size = convolve.scratch_bytes(params, packing.T2)
    buf = ctypes.create_string_buffer(size)
    inp, filt, bias, out = Dims(1, 4, 4, 4), Dims(2, 3, 3, 4), Dims(1, 1, 1, 2), Dims(1, 2, 2, 2)
    c_params = (ctypes.c_int32 * 10)(0, 0, 1, 1, 0, 0, -128, 127)  # tr_nn_conv_params, field order
    mult = (ctypes.c_int32 * 2)(1 << 30, 1 << 30)
    shift = (ctypes.c_int32 * 2)(0, 0)
    quant = (ctypes.c_void_p * 2)(ctypes.addressof(mult), ctypes.addressof(shift))
    x = (ctypes.c_int8 * 64)()
    w = (ctypes.c_uint8 * packing.row_bytes(36, packing.T2) * 2)()
    y = (ctypes.c_int8 * 8)()
    for cap, want in ((size, 0), (size - 1, -1)):
        ctx = Ctx(ctypes.cast(buf, ctypes.c_void_p), cap)
        status = tr_nn_lib.tr_convolve_s8_t2(ctypes.byref(ctx), c_params, quant, ctypes.byref(inp), x,
                                             ctypes.byref(filt), w, ctypes.byref(bias), None, ctypes.byref(out), y)
        assert status == want


def test_numpy_convolution_by_hand() -> None:
    """A 2x2 input, 2x2 kernel, one output channel: Σ w·x with a padded tap reading pad_value."""
    x = np.array([[[1], [2]], [[3], [4]]], np.int8)
    w = np.array([[[[1], [-1]], [[0], [1]]]], np.int8)  # [C_out, KH, KW, C_in]
    params = ConvParams(HWC(2, 2, 1), HWC(2, 2, 1), Tile(2, 2), Tile(1, 1), Tile(0, 0), -3, 0, Clamp(-128, 127), 0)
    out = convolve.convolve(x[None], w, np.zeros(1, np.int32), np.array([1 << 30], np.int32),
                            np.array([1], np.int32), params)[0]  # a batch of one
    # multiplier 2^30 with shift 1 multiplies by exactly 1; bottom and right taps read -3
    want = [[1 - 2 + 4, 2 - (-3) + (-3)], [3 - 4 + (-3), 4 - (-3) + (-3)]]
    np.testing.assert_array_equal(out[..., 0], want)


# ---------------------------------------------------------------- lowering an int16 conv node

def _conv_graph(codes: np.ndarray, alpha: np.ndarray, post_bias: np.ndarray, kind: str, gi: Grid, go: Grid,
                hw: int) -> Graph:
    kh, kw, cin, cout = codes.shape
    w = WeightTensor(values=codes * alpha, quantizer="test", kind=kind, codes=codes.astype(np.int8),  # type: ignore[arg-type]
                     channel_scale=alpha)
    conv = ConvNode("conv16", ("x",), "y", "conv2d", w, np.ones(cout), post_bias, padding=(1, 1, 1, 1))
    tensors = {"x": TensorInfo("x", (hw, hw, cin), "x", gi), "y": TensorInfo("y", (hw, hw, cout), "y", go)}
    return Graph((InputNode("x", "x"), conv), tensors, ("x",), ("y",), "test")


@pytest.mark.parametrize(("kind", "packing_name"), [("ternary", "t2"), ("ternary", "trit5"), ("int8", "t2")])
def test_int16_node_lowers_to_s16_kernel_within_a_step(kind: str, packing_name: str) -> None:
    """A 3x3 'same' conv with int16 grids in and out (Grid.wide) lowers to tr_convolve_s16_<weights>, and its
    integer output is within half a step of the real arithmetic (an int16 step: 1/32767 of the range)."""
    rng = np.random.default_rng(7)
    hw, cin, cout = 6, 5, 7
    codes = rng.integers(-1, 2, (3, 3, cin, cout)) if kind == "ternary" else rng.integers(-127, 128, (3, 3, cin, cout))
    alpha = rng.uniform(0.05, 0.4, cout) / (1 if kind == "ternary" else 100)
    post_bias = rng.uniform(-0.5, 0.5, cout)
    gi, go = Grid.wide(-2.0, 2.0, "test input"), Grid.wide(-6.0, 6.0, "test output")
    # the node alone (a Program's own inputs and outputs stay int8: int16 lives inside a model)
    graph = _conv_graph(codes, alpha, post_bias, kind, gi, go, hw)
    (op,) = convolve.lower(graph.nodes[1], graph, LowerOptions(packing_name)).ops
    fmt = packing.S8 if kind == "int8" else LowerOptions(packing_name).ternary_format
    assert op.kernel == convolve.FAMILY.kernel(fmt, 16) == convolve.FAMILY.wide_kernels[fmt]
    assert op.params.pad_value == 0 and op.params.output_offset == 0
    q = rng.integers(-32768, 32768, (8, hw, hw, cin)).astype(np.int16)
    out = np.asarray(convolve.FAMILY.reference(op)([q]), np.float64)
    x = np.pad(gi.scale * q.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(1, 2))  # (N, OH, OW, C_in, KH, KW)
    real = np.einsum("nhwcij,ijco->nhwo", win, codes * alpha) + post_bias
    real = np.clip(real, go.real_min, go.real_max)
    err = np.abs(go.scale * out - real) / go.scale
    assert err.max() <= 0.5 + 0.02, err.max()
    assert np.abs(out).max() > 2000  # the outputs use the int16 range, not just int8's


def test_mixed_widths_are_refused() -> None:
    codes = np.ones((3, 3, 2, 2), np.int64)
    gi, go = Grid.wide(-2.0, 2.0, "in"), Grid(1 / 32, 0, -128, 127, "out")
    graph = _conv_graph(codes, np.full(2, 0.1), np.zeros(2), "ternary", gi, go, 4)
    with pytest.raises(AssertionError, match="conv16"):
        convolve.lower(graph.nodes[1], graph, LowerOptions())
