"""tr_fully_connected_s8_{t2,t5,s8} and the int16 tr_fully_connected_s16_{t2,t5,s8} against their
numpy reference (ops/fully_connected.py) on the host (ASan/UBSan) and on the emulated Cortex-M7, their
scratch size twins, and the lowering of a dense node on int16 grids.
Kernels: tr_fully_connected_s8_t2, tr_fully_connected_s8_t5, tr_fully_connected_s8_s8,
tr_fully_connected_s16_t2, tr_fully_connected_s16_t5, tr_fully_connected_s16_s8.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

import kernel_cases as kc
from tinyrobust.converter import packing
from tinyrobust.converter.ir import ConvNode, Graph, Grid, InputNode, TensorInfo, WeightTensor
from tinyrobust.converter.ops import fully_connected
from tinyrobust.converter.ops.base import Clamp, Op
from tinyrobust.converter.ops.fully_connected import FullyConnectedParams
from tinyrobust.converter.ops.lowering import LowerOptions
from tinyrobust.firmware.runner import RunnerCase


def random_case(rng: np.random.Generator, fmt: str, edges: bool = False) -> RunnerCase:
    """edges: wide layers around the t2 table path's row threshold (192), C_in around its 16/32-value
    slices, outputs spread over int8."""
    while True:
        cin, cout = int(rng.integers(1, 120)), int(rng.integers(1, 24))
        if edges:
            cin = int(rng.choice([1, 3, 4, 15, 16, 17, 31, 32, 33, 47, 48, 49, 64, 100, 130]))
            cout = int(rng.choice([4, 5, 6, 7, 191, 192, 193, 200, 257]))
        x = kc.i8(rng, cin)
        wt = kc.weights(rng, fmt, (cout, cin))
        bias, bias_shift = kc.bias(rng, cout, cin, wt)
        w_scale = 80.0 if fmt == packing.S8 else 1.0
        mult, shift = kc.quant(rng, cout, cin, w_scale, bias_shift)
        out_off = int(rng.integers(-128, 128))
        if edges:
            bias, shift = kc.spread(rng, cout, cin, w_scale, bias, bias_shift)
            out_off = int(rng.integers(-20, 21))
        params = FullyConnectedParams(cin, cout, out_off, kc.clamp(rng), bias_shift)
        arrays = kc.weighted_arrays(packing.pack_rows(wt, fmt), bias, mult, shift)
        op = Op(fully_connected.FAMILY.kernels[fmt], "fc", ("x",), "y", params, arrays, fmt)
        try:
            return kc.weighted_case(op, [x], f"fc {fmt} {params}")
        except OverflowError:  # the lowering never emits an overflowing left shift; resample
            continue


def random_cases(rounds: int, seed: int, edges: bool = False) -> list[RunnerCase]:
    rng = np.random.default_rng(seed)
    return [random_case(rng, fmt, edges) for _ in range(rounds) for fmt in packing.FORMATS]


def test_matches_numpy_on_host(host_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(host_runner, random_cases(120, seed=13), tmp_path) == 360


@pytest.mark.qemu
def test_matches_numpy_on_m7(m7_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(m7_runner, random_cases(50, seed=1002), tmp_path) == 150


@pytest.mark.qemu
def test_fast_path_edges_match_numpy(host_runner, m7_runner, tmp_path: Path) -> None:
    """Wide layers (the t2 table path from 192 rows) and C_in at its slice limits, on the host and the M7."""
    cases = random_cases(30, seed=2002, edges=True)
    assert kc.saturated_fraction(cases) < 0.10
    assert kc.run_and_check(host_runner, cases, tmp_path / "host") == 90
    assert kc.run_and_check(m7_runner, cases, tmp_path / "m7") == 90


# ---------------------------------------------------------------- int16 activations (the _s16 kernels)

# C_in around the DSP paths' blocks: t2 code words of 16, trit5 byte pairs of 10 and rows of 20, s8
# words of 4; C_out around the row pairs (odd counts leave a last row alone).
WIDE_CIN = [1, 2, 3, 4, 5, 9, 10, 11, 15, 16, 17, 19, 20, 21, 31, 32, 33, 40, 41, 63, 64, 65, 130]
WIDE_COUT = [1, 2, 3, 4, 5, 7, 8, 13]


def wide_clamp(rng: np.random.Generator) -> Clamp:
    if rng.random() < 0.6:
        return Clamp(-32768, 32767)
    lo, hi = sorted(int(v) for v in rng.integers(-32768, 32768, size=2))
    return Clamp(lo, hi)


def wide_case(rng: np.random.Generator, fmt: str, edges: bool = False) -> RunnerCase:
    """A random int16 case, outputs spread over int16; edges: C_in and C_out from the block edges."""
    while True:
        cin, cout = int(rng.integers(1, 150)), int(rng.integers(1, 24))
        if edges:
            cin, cout = int(rng.choice(WIDE_CIN)), int(rng.choice(WIDE_COUT))
        x = kc.i16(rng, cin)
        wt = kc.weights(rng, fmt, (cout, cin))
        bias, bias_shift = kc.bias(rng, cout, cin, wt, bits=16)
        w_scale = 80.0 if fmt == packing.S8 else 1.0
        bias, shift = kc.spread(rng, cout, cin, w_scale, bias, bias_shift, bits=16)
        mult = rng.integers(1 << 30, (1 << 31) - 1, size=cout, endpoint=True).astype(np.int32)
        # the lowering passes offset 0 for int16 tensors; the kernels honour any
        out_off = 0 if rng.random() < 0.5 else int(rng.integers(-2000, 2001))
        params = FullyConnectedParams(cin, cout, out_off, wide_clamp(rng), bias_shift)
        arrays = kc.weighted_arrays(packing.pack_rows(wt, fmt), bias, mult, shift)
        kernel = fully_connected.FAMILY.kernel(fmt, 16)
        op = Op(kernel, "fc", ("x",), "y", params, arrays, fmt)
        try:
            return kc.weighted_case(op, [x], f"fc16 {fmt} {params}")
        except OverflowError:  # the lowering never emits an overflowing left shift; resample
            continue


def wide_cases(rounds: int, seed: int, edges: bool = False) -> list[RunnerCase]:
    rng = np.random.default_rng(seed)
    return [wide_case(rng, fmt, edges) for _ in range(rounds) for fmt in packing.FORMATS]


def test_int16_matches_numpy_on_host(host_runner, tmp_path: Path) -> None:
    cases = wide_cases(40, seed=16) + wide_cases(20, seed=17, edges=True)
    assert {c.op.kernel for c in cases} == set(fully_connected.FAMILY.wide_kernels.values())
    assert kc.saturated_fraction(cases) < 0.10
    assert kc.run_and_check(host_runner, cases, tmp_path) == 180


@pytest.mark.qemu
def test_int16_matches_numpy_on_m7(m7_runner, tmp_path: Path) -> None:
    """The DSP path's row pairs, odd last rows and padded columns (C_in at its block edges)."""
    cases = wide_cases(20, seed=1016) + wide_cases(30, seed=1017, edges=True)
    assert kc.saturated_fraction(cases) < 0.10
    assert kc.run_and_check(m7_runner, cases, tmp_path) == 150


def test_int16_reference_is_exact_at_the_rails() -> None:
    """Inputs at -32768 / 32767 (never cast to int8) and sums beyond float32's exact range: the
    reference's sums and outputs are the hand values."""
    cin = 300
    x = np.full((1, cin), -32768, np.int16)
    x[0, 1::2] = 32767
    # row 0: every weight w, Σ = 150 · w · (32767 − 32768) = −150 w; row 1: w on the −32768 inputs only
    # multiplier 2^30 halves (even sums: exactly), shift −10 then divides row 1 by 1024 (exactly)
    hand = {packing.T2: (1, [-75, -2400]), packing.TRIT5: (-1, [75, 2400]), packing.S8: (-128, [9600, 32767])}
    for fmt, (w, want) in hand.items():
        wt = np.full((2, cin), w, np.int8)
        wt[1, 1::2] = 0
        sums = fully_connected.fully_connected_sums(x, wt, bits=16)
        assert sums.tolist() == [[-150 * w, -32768 * 150 * w]], fmt
        params = FullyConnectedParams(cin, 2, 0, Clamp(-32768, 32767), 0)
        quant = (np.array([1 << 30] * 2, np.int32), np.array([0, -10], np.int32))
        out = fully_connected.fully_connected(x, wt, np.zeros(2, np.int32), *quant, params, bits=16)
        assert out.dtype == np.int16 and out.tolist() == [want], fmt


def _dense_graph16(codes: np.ndarray, alpha: np.ndarray, post_scale: np.ndarray, post_bias: np.ndarray,
                   grid_in: Grid, grid_out: Grid) -> Graph:
    cin, cout = codes.shape
    w = WeightTensor(values=codes * alpha, quantizer="test", kind="ternary", codes=codes.astype(np.int8),  # type: ignore[arg-type]
                     channel_scale=alpha)
    nodes = (InputNode("x", "x"), ConvNode("fc", ("x",), "y", "dense", w, post_scale, post_bias))
    tensors = {"x": TensorInfo("x", (cin,), "x", grid_in), "y": TensorInfo("y", (cout,), "y", grid_out)}
    return Graph(nodes, tensors, ("x",), ("y",), "test")


@pytest.mark.parametrize("seed", range(4))
def test_int16_dense_lowers_to_the_s16_kernel_within_a_step_of_the_real_arithmetic(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cin, cout = 40, 9
    codes = rng.integers(-1, 2, (cin, cout))
    alpha = rng.uniform(0.05, 0.4, cout)
    post_scale = rng.uniform(0.5, 1.5, cout) * np.where(rng.random(cout) < 0.4, -1, 1)
    post_bias = rng.uniform(-1.0, 1.0, cout)
    grid_in = Grid.wide(-4.0, 4.0, "test input")
    q = rng.integers(-32768, 32768, (64, cin)).astype(np.int16)
    x = grid_in.scale * q.astype(np.float64)
    real = post_scale * ((x @ codes) * alpha) + post_bias
    grid_out = Grid.wide(-0.8 * np.abs(real).max(), 0.8 * np.abs(real).max(), "test output")  # some clip
    graph = _dense_graph16(codes, alpha, post_scale, post_bias, grid_in, grid_out)
    (op,) = fully_connected.lower(graph.nodes[1], graph, LowerOptions()).ops
    assert op.kernel == "tr_fully_connected_s16_t2"
    assert fully_connected.FAMILY.bits_of(op.kernel) == (16, 16)
    out = fully_connected.FAMILY.reference(op)([q]).astype(np.float64)
    assert out.shape == (64, cout) and np.abs(out).max() > 20000  # the int16 range is used
    clipped = np.clip(real, grid_out.real_min, grid_out.real_max)
    err = np.abs(grid_out.scale * out - clipped) / grid_out.scale
    assert err.max() <= 1.0, err.max()


def test_mixed_widths_are_refused_naming_the_layer() -> None:
    codes = np.ones((4, 2), np.int64)
    one = np.ones(2)
    wide, narrow = Grid.wide(-1.0, 1.0, "wide"), Grid(1 / 32, 0, -128, 127, "narrow")
    for grid_in, grid_out in ((wide, narrow), (narrow, wide)):
        graph = _dense_graph16(codes, one * 0.1, one, one * 0.0, grid_in, grid_out)
        with pytest.raises(AssertionError, match="fc"):
            fully_connected.lower(graph.nodes[1], graph, LowerOptions())


class Dims(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


def test_scratch_bytes_is_the_c_twin(tr_nn_lib: ctypes.CDLL) -> None:
    rng = np.random.default_rng(4)
    family = fully_connected.FAMILY
    for fmt, kernel in (*family.kernels.items(), *family.wide_kernels.items()):
        bits = family.bits_of(kernel)[0]
        fn = getattr(tr_nn_lib, f"{kernel}_get_buffer_size")
        for _ in range(200):
            cin = int(rng.integers(1, 41)) if rng.random() < 0.7 else int(rng.integers(41, 4097))
            cout = int(rng.integers(1, 600))  # from 192 rows on, the t2 kernel's table path
            params = FullyConnectedParams(cin, cout, 0, Clamp(-128, 127), 0)
            got = fn(ctypes.byref(Dims(cout, 1, 1, cin)))
            assert got == fully_connected.scratch_bytes(params, fmt, bits) > 0, (kernel, cin)


def test_numpy_guards_what_the_c_cannot_do() -> None:
    """bias_shift outside [0, 16] and an accumulator beyond int32 are refused, not modelled."""
    x, wt = np.array([[127]], np.int8), np.array([[1]], np.int8)  # a batch of one sample
    one = (np.array([1 << 30], np.int32), np.array([0], np.int32))

    def run(bias: int, bias_shift: int) -> np.ndarray:
        params = FullyConnectedParams(1, 1, 0, Clamp(-128, 127), bias_shift)
        return fully_connected.fully_connected(x, wt, np.array([bias], np.int32), *one, params)

    for bad in (-1, 17):
        with pytest.raises(ValueError):
            run(0, bad)
    with pytest.raises(OverflowError):
        run(2**31 - 200, 1)
    run(2**31 - 257, 1)  # 127 * 2 + (2^31 - 257) = 2^31 - 3: just inside
