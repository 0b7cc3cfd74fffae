"""The batched reference is bit-identical to the per-sample reference it replaced.

The reference kernels take a leading batch axis (a single sample is a batch of one), and the bound
reference looks outputs up in tables of the arithmetic where they are small. The digests
below were computed with the per-sample implementation (before batching, commit fc46953): random
cases of every op family and whole Programs, each run sample by sample. Today's code must give the
same bytes both batched and sample by sample, with and without tables, so no path can drift from
the old numerics.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import numpy as np
import pytest

import kernel_cases as kc
from tinyrobust.converter import packing
from tinyrobust.converter.ops import (
    add,
    arith,
    concat,
    convolve,
    depthwise_conv,
    family_of,
    fully_connected,
    lut,
    mul,
    pad,
    pool,
    requantize,
)
from tinyrobust.converter.ops.add import AddParams
from tinyrobust.converter.ops.base import HWC, Clamp, Op, Tile
from tinyrobust.converter.ops.concat import ConcatParams
from tinyrobust.converter.ops.convolve import ConvParams
from tinyrobust.converter.ops.depthwise_conv import DepthwiseParams
from tinyrobust.converter.ops.fully_connected import FullyConnectedParams
from tinyrobust.converter.ops.lut import LutParams
from tinyrobust.converter.ops.mul import MulParams
from tinyrobust.converter.ops.pad import PadParams
from tinyrobust.converter.ops.pool import PoolParams
from tinyrobust.converter.ops.requantize import RequantizeParams
from tinyrobust.converter.program import InputQuantization, Program, TensorSpec
from tinyrobust.converter.quantmath import quantize_multiplier
from tinyrobust.converter.reference import Reference

BATCH = 5
FULL = Clamp(-128, 127)
# sha256 of every case's per-sample outputs, computed with the per-sample reference (see the docstring).
# The cases behind GOLDEN_OPS draw bias shifts up to 8 (the lowering's limit when it was recorded).
GOLDEN_MAX_BIAS_SHIFT = 8
GOLDEN_OPS = "4f16aeccc2221a2da509264a104d5f496fe2b064afd8f72f7b9f8134c913291e"
GOLDEN_PROGRAMS = "fa52510708132e7a869a845ad70d031cc837b74ad53615c8b91bac35aae61ea6"

Case = tuple[Op, list[np.ndarray]]  # the op and its inputs, each (BATCH, *shape)


def _batch(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return kc.i8(rng, (BATCH, *shape))


def _weighted(rng: np.random.Generator, family: str, fmt: str) -> Case:
    """A random conv / depthwise / dense layer (geometry as the family tests draw it)."""
    h, w = (int(v) for v in rng.integers(1, 10, size=2))
    kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
    pt, pl = int(rng.integers(0, kh)), int(rng.integers(0, kw))
    oh, ow = kc.out_len(h, kh, sh, pt, rng), kc.out_len(w, kw, sw, pl, rng)
    pad_value, out_off = (int(v) for v in rng.integers(-128, 128, size=2))
    scale = 80.0 if fmt == packing.S8 else 1.0
    if family == "conv":
        cin, cout = int(rng.integers(1, 14)), int(rng.integers(1, 12))
        wt = kc.weights(rng, fmt, (cout, kh, kw, cin))
        k = kh * kw * cin
        bias, bias_shift = kc.bias(rng, cout, k, wt, GOLDEN_MAX_BIAS_SHIFT)
        mult, shift = kc.quant(rng, cout, k, scale, bias_shift)
        params: object = ConvParams(HWC(h, w, cin), HWC(oh, ow, cout), Tile(kh, kw), Tile(sh, sw), Tile(pt, pl),
                                    pad_value, out_off, kc.clamp(rng), bias_shift)
        rows, kernel, shape = wt.reshape(cout, k), convolve.FAMILY.kernels[fmt], (h, w, cin)
    elif family == "dw":
        cin, ch_mult = int(rng.integers(1, 10)), int(rng.integers(1, 3))
        cout = cin * ch_mult
        wt = kc.weights(rng, fmt, (kh, kw, cout))
        bias, bias_shift = kc.bias(rng, cout, kh * kw, wt, GOLDEN_MAX_BIAS_SHIFT)
        mult, shift = kc.quant(rng, cout, kh * kw, scale, bias_shift)
        params = DepthwiseParams(HWC(h, w, cin), HWC(oh, ow, cout), Tile(kh, kw), ch_mult, Tile(sh, sw),
                                 Tile(pt, pl), pad_value, out_off, kc.clamp(rng), bias_shift)
        rows, kernel, shape = wt.reshape(kh * kw, cout), depthwise_conv.FAMILY.kernels[fmt], (h, w, cin)
    else:
        cin, cout = int(rng.integers(1, 120)), int(rng.integers(1, 24))
        wt = kc.weights(rng, fmt, (cout, cin))
        bias, bias_shift = kc.bias(rng, cout, cin, wt, GOLDEN_MAX_BIAS_SHIFT)
        mult, shift = kc.quant(rng, cout, cin, scale, bias_shift)
        params = FullyConnectedParams(cin, cout, out_off, kc.clamp(rng), bias_shift)
        rows, kernel, shape = wt, fully_connected.FAMILY.kernels[fmt], (cin,)
    arrays = kc.with_zero_bias(kc.weighted_arrays(packing.pack_rows(rows, fmt), bias, mult, shift), len(mult))
    return Op(kernel, family, ("x",), "y", params, arrays, fmt), [_batch(rng, shape)]


def _unweighted(rng: np.random.Generator, family: str) -> Case:
    n = int(rng.integers(1, 70))
    if family in ("max", "avg"):
        h, w, c = int(rng.integers(1, 10)), int(rng.integers(1, 10)), int(rng.integers(1, 14))
        kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
        sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
        pt, pl = int(rng.integers(0, kh)), int(rng.integers(0, kw))
        oh = kc.out_len(h, kh, sh, pt, rng) + int(rng.random() < 0.1)
        ow = kc.out_len(w, kw, sw, pl, rng) + int(rng.random() < 0.1)
        params: object = PoolParams(HWC(h, w, c), HWC(oh, ow, c), Tile(kh, kw), Tile(sh, sw), Tile(pt, pl),
                                    kc.clamp(rng))
        return Op(pool.FAMILY.kernels[family], family, ("x",), "y", params), [_batch(rng, (h, w, c))]
    if family == "pad":
        h, w, c = int(rng.integers(1, 8)), int(rng.integers(1, 8)), int(rng.integers(1, 10))
        top, left = (int(v) for v in rng.integers(0, 4, size=2))
        params = PadParams(HWC(h, w, c), HWC(h + top + int(rng.integers(0, 4)), w + left + int(rng.integers(0, 4)), c),
                           int(rng.integers(-128, 128)), top, left)
        return Op(pad.FAMILY.kernels[None], "pad", ("x",), "y", params), [_batch(rng, (h, w, c))]
    if family == "add":
        def m() -> int:
            return int(rng.integers(1 << 30, (1 << 31) - 1, endpoint=True))
        params = AddParams(n, int(rng.integers(-127, 129)), m(), int(rng.integers(-8, 1)), int(rng.integers(-127, 129)),
                           m(), int(rng.integers(-8, 1)), add.ADD_LEFT_SHIFT, int(rng.integers(-128, 128)), m(),
                           int(rng.integers(-24, -17)), kc.clamp(rng))
        return Op(add.FAMILY.kernels[None], "add", ("a", "b"), "y", params), [_batch(rng, (n,)), _batch(rng, (n,))]
    if family == "mul":
        z1, z2, zo = (int(v) for v in rng.integers(-128, 128, size=3))
        mult, shift = quantize_multiplier(float(rng.uniform(0.25, 4.0)) / 256)
        params = MulParams(n, -z1, -z2, zo, mult, shift, kc.clamp(rng))
        return Op(mul.FAMILY.kernels[None], "mul", ("a", "b"), "y", params), [_batch(rng, (n,)), _batch(rng, (n,))]
    if family == "lut":
        return (Op(lut.FAMILY.kernels[None], "lut", ("x",), "y", LutParams(n), {"table": kc.i8(rng, 256)}),
                [_batch(rng, (n,))])
    if family == "concat":
        h, w = (int(v) for v in rng.integers(1, 6, size=2))
        chans = tuple(int(c) for c in rng.integers(1, 8, size=int(rng.integers(1, 4))))
        offsets = tuple(int(o) for o in np.cumsum((0, *chans[:-1])))
        params = ConcatParams(HWC(h, w, sum(chans)), chans, offsets)
        names = tuple(f"x{i}" for i in range(len(chans)))
        return Op(concat.FAMILY.kernels[None], "cat", names, "y", params), [_batch(rng, (h, w, c)) for c in chans]
    mult = int(rng.integers(1 << 30, (1 << 31) - 1, endpoint=True)) if rng.random() > 0.05 else 0
    params = RequantizeParams(n, int(rng.integers(-127, 129)), int(rng.integers(-128, 128)), mult,
                              int(rng.integers(-9, 4)), kc.clamp(rng))
    return Op(requantize.FAMILY.kernels[None], "rq", ("x",), "y", params), [_batch(rng, (n,))]


FAMILIES = [("conv", f) for f in packing.FORMATS] + [("dw", f) for f in packing.FORMATS] + \
           [("fc", f) for f in packing.FORMATS] + [(k, None) for k in ("max", "avg", "pad", "add", "mul", "lut",
                                                                       "concat", "rq")]


def op_cases(rounds: int, seed: int) -> Iterator[Case]:
    """`rounds` random cases of every family and weight format; cases whose left shift would
    overflow int32 (never lowered) are skipped, deterministically."""
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        for family, fmt in FAMILIES:
            case = _weighted(rng, family, fmt) if fmt is not None else _unweighted(rng, family)
            fn = family_of(case[0].kernel).reference(case[0])
            try:
                one(fn, [x[0] for x in case[1]])
            except OverflowError:
                continue
            yield case


def one(fn: Callable[[list[np.ndarray]], np.ndarray], xs: list[np.ndarray]) -> np.ndarray:
    """One sample through a batched reference kernel: a batch of one."""
    return np.asarray(fn([x[None] for x in xs]))[0]


def _program(seed: int) -> Program:
    """Every family in one Program: conv → depthwise → add / mul / table / concat → pad → max and
    average pools → add → requantize → a Flatten view → dense (int8 weights)."""
    rng = np.random.default_rng(seed)

    def weighted_arrays(rows: np.ndarray, fmt: str, cout: int, k: int, scale: float) -> tuple[dict, int]:
        # A bias of a few typical accumulators, so outputs spread over the int8 range (few at the rails).
        bias_shift = 2
        bias = (rng.integers(-3, 4, cout) * np.sqrt(k) * 74 * scale).astype(np.int32) << bias_shift
        mult, shift = kc.quant(rng, cout, k, scale, bias_shift)
        return kc.weighted_arrays(packing.pack_rows(rows, fmt), bias, mult, shift), bias_shift

    conv_w = kc.weights(rng, packing.T2, (8, 27))
    conv_a, conv_s = weighted_arrays(conv_w, packing.T2, 8, 27, 1.0)
    dw_w = kc.weights(rng, packing.TRIT5, (9, 8))
    dw_a, dw_s = weighted_arrays(dw_w, packing.TRIT5, 8, 9, 1.0)
    fc_w = kc.i8(rng, (10, 256))
    fc_a, fc_s = weighted_arrays(fc_w, packing.S8, 10, 256, 80.0)

    def mult() -> int:
        return int(rng.integers(1 << 30, (1 << 31) - 1, endpoint=True))

    def add_params(n: int) -> AddParams:
        return AddParams(n, int(rng.integers(-20, 20)), mult(), -1, int(rng.integers(-20, 20)), mult(), -1,
                         add.ADD_LEFT_SHIFT, int(rng.integers(-10, 10)), mult(), -20, FULL)

    m, s = quantize_multiplier(float(rng.uniform(0.5, 2.0)) / 128)
    ops = (
        Op(convolve.FAMILY.kernels[packing.T2], "conv", ("x",), "c",
           ConvParams(HWC(6, 6, 3), HWC(6, 6, 8), Tile(3, 3), Tile(1, 1), Tile(1, 1), -128, -5, FULL, conv_s),
           conv_a, packing.T2),
        Op(depthwise_conv.FAMILY.kernels[packing.TRIT5], "dw", ("c",), "d",
           DepthwiseParams(HWC(6, 6, 8), HWC(6, 6, 8), Tile(3, 3), 1, Tile(1, 1), Tile(1, 1), -5, 3,
                           Clamp(-20, 127), dw_s), dw_a, packing.TRIT5),
        Op(add.FAMILY.kernels[None], "add1", ("c", "d"), "a", add_params(288)),
        Op(mul.FAMILY.kernels[None], "mul", ("a", "c"), "m", MulParams(288, 3, 5, -7, m, s, FULL)),
        Op(lut.FAMILY.kernels[None], "lut", ("m",), "l", LutParams(288), {"table": kc.i8(rng, 256)}),
        Op(concat.FAMILY.kernels[None], "cat", ("l", "d"), "k", ConcatParams(HWC(6, 6, 16), (8, 8), (0, 8))),
        Op(pad.FAMILY.kernels[None], "pad", ("k",), "p", PadParams(HWC(6, 6, 16), HWC(8, 9, 16), -3, 1, 2)),
        Op(pool.FAMILY.kernels["max"], "max", ("p",), "mp",
           PoolParams(HWC(8, 9, 16), HWC(4, 4, 16), Tile(2, 2), Tile(2, 2), Tile(0, 0), FULL)),
        Op(pool.FAMILY.kernels["avg"], "avg", ("p",), "ap",
           PoolParams(HWC(8, 9, 16), HWC(4, 4, 16), Tile(3, 3), Tile(2, 2), Tile(1, 0), Clamp(-100, 100))),
        Op(add.FAMILY.kernels[None], "add2", ("mp", "ap"), "s", add_params(256)),
        Op(requantize.FAMILY.kernels[None], "rq", ("s",), "r", RequantizeParams(256, 4, -2, mult(), -1, FULL)),
        Op(fully_connected.FAMILY.kernels[packing.S8], "fc", ("flat",), "y",
           FullyConnectedParams(256, 10, 1, FULL, fc_s), fc_a, packing.S8),
    )
    shapes = {"x": (6, 6, 3), "c": (6, 6, 8), "d": (6, 6, 8), "a": (6, 6, 8), "m": (6, 6, 8), "l": (6, 6, 8),
              "k": (6, 6, 16), "p": (8, 9, 16), "mp": (4, 4, 16), "ap": (4, 4, 16), "s": (4, 4, 16),
              "r": (4, 4, 16), "flat": (256,), "y": (10,)}
    tensors = {t: TensorSpec(t, shape, 0.05, 0, t, "r" if t == "flat" else None) for t, shape in shapes.items()}
    return Program(tensors, ops, ("x",), ("y",), (InputQuantization(1 / 255, -128, -128, 127, "test"),), packing.T2,
                   f"every_family_{seed}")


PROGRAM_SEEDS = tuple(range(6))


def program_inputs(seed: int) -> np.ndarray:
    return np.random.default_rng(100 + seed).integers(-128, 128, (7, 6, 6, 3)).astype(np.int8)


@pytest.fixture(params=["tables", "arithmetic"])
def lookup_tables(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways the bound reference computes an output stage: looked up in the table of the
    arithmetic, or the arithmetic itself (no tables at all)."""
    if request.param == "arithmetic":
        monkeypatch.setattr(arith, "TABLE_LIMIT", 0)
    return request.param


def test_every_op_family_is_bit_identical_to_the_per_sample_reference(lookup_tables: str) -> None:
    batched, single = hashlib.sha256(), hashlib.sha256()
    count = 0
    for op, xs in op_cases(12, seed=2024):
        fn = family_of(op.kernel).reference(op)
        out = np.asarray(fn(xs), dtype=np.int8)
        assert out.shape[0] == BATCH
        rows = [one(fn, [x[i] for x in xs]).astype(np.int8) for i in range(BATCH)]
        for i, row in enumerate(rows):
            np.testing.assert_array_equal(out[i], row, err_msg=f"{op.kernel} {op.params}")
            batched.update(out[i].tobytes())
            single.update(row.tobytes())
        count += 1
    assert count > 12 * len(FAMILIES) * 0.8
    assert single.hexdigest() == batched.hexdigest() == GOLDEN_OPS


def test_whole_programs_are_bit_identical_to_the_per_sample_reference(lookup_tables: str) -> None:
    digest = hashlib.sha256()
    for seed in PROGRAM_SEEDS:
        ref = Reference(_program(seed))
        x = program_inputs(seed)
        out = ref.run(x)
        layers = [np.stack(col) for col in zip(*(ref.run_layers(s) for s in x), strict=True)]
        for i, s in enumerate(x):
            np.testing.assert_array_equal(out[i], ref.run_one(s))
        assert len({row.tobytes() for row in out}) >= len(x) - 1  # outputs are not stuck at the rails
        for layer in layers:
            digest.update(layer.tobytes())
        digest.update(out.tobytes())
    assert digest.hexdigest() == GOLDEN_PROGRAMS


@pytest.mark.parametrize("chunk", [1, 2, 3, 64])
def test_run_is_independent_of_the_chunk_size(chunk: int) -> None:
    ref = Reference(_program(1))
    x = program_inputs(1)
    np.testing.assert_array_equal(ref.run(x, chunk=chunk), ref.run(x))
