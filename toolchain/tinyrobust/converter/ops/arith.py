"""numpy helpers shared by the reference kernels: windows over batched NHWC tensors, the accumulator
with its fine bias, exact dot products and the requantising output stage (tr_nn_support.h in C).

Every kernel takes a leading batch axis (N samples; one sample is a batch of one), so a whole batch
of attack queries is one vectorised pass. Accumulation is exact: dot products run in float32 or
float64 BLAS only where every partial sum provably stays an exactly representable integer
(below 2^24 or 2^53), else in int64, and are converted back to int64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..quantmath import requantize

# Sums of integers stay exact in a float format while every partial sum's magnitude is below
# 2^(mantissa bits + 1); we keep one bit of margin.
_EXACT_FLOAT32_LIMIT = 2**23
_EXACT_FLOAT64_LIMIT = 2**52
INT8_MAGNITUDE = 128  # |x| <= 128 for any int8 activation
ACTIVATION_MAGNITUDE = {8: INT8_MAGNITUDE, 16: 32768}  # |x| bound by activation bits
# TR_NN_MAX_BIAS_SHIFT (tr_nn_support.h): the weighted C kernels refuse a larger bias_shift.
KERNEL_MAX_BIAS_SHIFT = 16


def output_stage(acc: np.ndarray, multiplier, shift, output_offset: int, act_min: int, act_max: int,
                 bits: int = 8) -> np.ndarray:
    """clamp(requantize(acc) + output_offset, act_min, act_max) as int8 or int16 (tr_output_stage)."""
    out = requantize(acc, multiplier, shift)
    out += output_offset
    return np.clip(out, act_min, act_max, out=out).astype(np.int16 if bits == 16 else np.int8)


def padded(x: np.ndarray, kh: int, kw: int, stride: tuple[int, int], padding: tuple[int, int],
           out_hw: tuple[int, int], fill: int) -> np.ndarray:
    """x (N, H, W, C) placed at (padding) in a (N, Hp, Wp, C) array of `fill`, just large enough for
    out_hw windows of kh × kw at `stride`; rows/columns no window reads are left out."""
    n, h, w, c = x.shape
    rows = (out_hw[0] - 1) * stride[0] + kh
    cols = (out_hw[1] - 1) * stride[1] + kw
    out = np.full((n, rows, cols, c), fill, dtype=x.dtype)
    top, left = padding
    src = x[:, max(0, -top):max(0, rows - top), max(0, -left):max(0, cols - left)]
    out[:, max(0, top):max(0, top) + src.shape[1], max(0, left):max(0, left) + src.shape[2]] = src
    return out


def tap(xp: np.ndarray, i: int, j: int, stride: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """(N, OH, OW, C) view of the padded input that kernel tap (i, j) reads for every output."""
    return xp[:, i:i + (out_hw[0] - 1) * stride[0] + 1:stride[0], j:j + (out_hw[1] - 1) * stride[1] + 1:stride[1]]


def patches(x: np.ndarray, kh: int, kw: int, stride: tuple[int, int], padding: tuple[int, int],
            out_hw: tuple[int, int], fill: int) -> np.ndarray:
    """(N, OH, OW, KH, KW, C) windows of x (N, H, W, C) (a strided view, x's dtype), padded taps `fill`."""
    xp = padded(x, kh, kw, stride, padding, out_hw, fill)
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))  # (N, H', W', C, KH, KW)
    win = win[:, ::stride[0], ::stride[1]][:, :out_hw[0], :out_hw[1]]
    return win.transpose(0, 1, 2, 4, 5, 3)


def valid_taps(h: int, w: int, kh: int, kw: int, stride: tuple[int, int], padding: tuple[int, int],
               out_hw: tuple[int, int]) -> np.ndarray:
    """(OH, OW) int64: how many of each window's taps fall inside the (h, w) input."""
    ones = np.ones((1, h, w, 1), dtype=np.int64)
    return patches(ones, kh, kw, stride, padding, out_hw, 0).sum(axis=(3, 4, 5))[0]


def with_bias(sums: np.ndarray, bias, bias_shift: int) -> np.ndarray:
    """acc = Σ w·x · 2^bias_shift + bias: the bias lives in 2^bias_shift finer units (tr_nn_types.h).

    int64 math. The lowering guarantees the result fits int32 (the C kernels assume it: overflow
    there is undefined), so a value outside int32 is reported rather than silently modelled.
    """
    if not 0 <= bias_shift <= KERNEL_MAX_BIAS_SHIFT:
        raise ValueError(f"bias_shift {bias_shift} outside [0, {KERNEL_MAX_BIAS_SHIFT}]")
    acc = sums * np.int64(1 << bias_shift) + np.asarray(bias, dtype=np.int64)
    if acc.size and (acc.min() < -2**31 or acc.max() > 2**31 - 1):
        raise OverflowError("accumulator Σ w·x · 2^bias_shift + bias overflows int32")
    return acc


def max_magnitude(w: np.ndarray) -> int:
    """max |w| of an integer array (0 when empty), without widening it first."""
    return max(-int(w.min(initial=0)), int(w.max(initial=0)))


@dataclass(frozen=True)
class ExactMatrix:
    """Integer weights w (K, M), cast once to the narrowest type in which x @ w is exact for int8
    activations x: every partial sum is bounded by K · 128 · max|w|, so BLAS in float32 or float64 is
    used when that bound keeps it an exactly representable integer (any summation order), else int64."""

    values: np.ndarray

    @staticmethod
    def of(w: np.ndarray, bits: int = 8) -> ExactMatrix:
        """`bits`: the activations' width (int16 activations bound a partial sum 256 times higher)."""
        bound = w.shape[0] * ACTIVATION_MAGNITUDE[bits] * max_magnitude(w)
        dtype = np.float32 if bound < _EXACT_FLOAT32_LIMIT else np.float64 if bound < _EXACT_FLOAT64_LIMIT else np.int64
        return ExactMatrix(np.ascontiguousarray(w, dtype=dtype))

    def dot(self, x: np.ndarray) -> np.ndarray:
        """x (…, K) @ w as int64."""
        return (x.astype(self.values.dtype) @ self.values).astype(np.int64, copy=False)


def exact_dot(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x @ w as int64, exactly, for int8 activations x (…, K) and integer weights w (K, M)."""
    return ExactMatrix.of(w).dot(x)


# ---------------------------------------------------------------- tables of the arithmetic above
#
# Where an op's output byte is a function of one small integer (an accumulator sum in a bounded
# range) or of one or two int8 inputs, the bound reference looks it up in that function's table,
# computed once from the very functions above on every possible argument: the same bytes, in a
# fraction of the passes over a batch. Where a table would be large, or where computing it would
# raise (an overflow the lowering never emits), the function itself runs, so errors stay identical.

TABLE_LIMIT = 1 << 22  # int8 entries per op (4 MiB)


@dataclass(frozen=True)
class ChannelStage:
    """acc = sums · 2^bias_shift + bias, then the output stage, per output channel (the last axis).

    With a table (one row of 2·B + 1 entries per channel, B the largest bound on |sums| for any int8
    input: 128 · Σ|w| of a channel's weights) the output is table[c, sums + B].
    """

    bias: np.ndarray
    bias_shift: int
    multiplier: np.ndarray
    shift: np.ndarray
    output_offset: int
    act_min: int
    act_max: int
    table: np.ndarray | None = None  # flattened (C_out, 2·bound + 1)
    base: np.ndarray | None = None  # per channel: where sum 0 sits in `table`
    out_bits: int = 8  # int8 or int16 outputs

    def __call__(self, sums: np.ndarray) -> np.ndarray:
        if self.table is None:
            acc = with_bias(sums, self.bias, self.bias_shift)
            return output_stage(acc, self.multiplier, self.shift, self.output_offset, self.act_min, self.act_max,
                                self.out_bits)
        index = sums + self.base
        return self.table.take(index)

    @staticmethod
    def build(sum_bound: np.ndarray, bias: np.ndarray, bias_shift: int, multiplier: np.ndarray, shift: np.ndarray,
              output_offset: int, act_min: int, act_max: int, out_bits: int = 8) -> ChannelStage:
        """The stage with its table when the table is small and computes without error."""
        direct = ChannelStage(np.asarray(bias), bias_shift, np.asarray(multiplier), np.asarray(shift), output_offset,
                              act_min, act_max, out_bits=out_bits)
        sum_bound = np.asarray(sum_bound, dtype=np.int64)
        bound = int(sum_bound.max(initial=0))
        if (2 * bound + 1) * len(sum_bound) > TABLE_LIMIT:
            return direct
        sums = np.arange(-bound, bound + 1, dtype=np.int64)[:, None]
        # Sums a channel cannot reach are evaluated at 0: their entries are never read.
        reachable = np.where(np.abs(sums) <= sum_bound[None, :], sums, 0)
        try:
            table = direct(reachable)
        except OverflowError:
            return direct
        width = 2 * bound + 1
        base = np.arange(len(sum_bound), dtype=np.int64) * width + bound
        return ChannelStage(direct.bias, bias_shift, direct.multiplier, direct.shift, output_offset, act_min, act_max,
                            np.ascontiguousarray(table.T).reshape(-1), base, out_bits)


def weight_sum_bound(rows: np.ndarray, bits: int = 8) -> np.ndarray:
    """Per output channel (rows of `rows`), max |Σ w·x| over `bits`-wide x: 128 · Σ|w| for int8."""
    return ACTIVATION_MAGNITUDE[bits] * np.abs(rows.astype(np.int64)).sum(axis=1)


def byte_table(fn: Callable[..., np.ndarray], arity: int) -> Callable[..., np.ndarray]:
    """An elementwise int8 function of one or two int8 inputs as a lookup in its table (256 or
    256² entries, computed by `fn` itself); `fn` itself when computing the table raises."""
    if 256**arity > TABLE_LIMIT:
        return fn
    levels = np.arange(-128, 128, dtype=np.int8)
    grid = np.meshgrid(*([levels] * arity), indexing="ij")
    try:
        table = np.asarray(fn(*grid), dtype=np.int8).reshape(-1)
    except OverflowError:
        return fn

    def lookup(*xs: np.ndarray) -> np.ndarray:
        index = np.asarray(xs[0], dtype=np.intp) + 128
        for x in xs[1:]:
            index = index * 256 + (np.asarray(x, dtype=np.intp) + 128)
        return table.take(index)

    return lookup
