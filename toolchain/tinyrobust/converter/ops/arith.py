"""numpy helpers shared by the reference kernels: windows over NHWC tensors, the accumulator with
its fine bias, exact dot products and the requantising output stage (tr_nn_support.h in C).

Accumulation is exact: sums are formed in float64 only where every partial sum stays far below
2^53 (|w·x| <= 2^14 per tap), which lets numpy use BLAS, then converted back to int64.
"""

from __future__ import annotations

import numpy as np

from ..quantmath import requantize

_EXACT_FLOAT_LIMIT = 2**52
# TR_NN_MAX_BIAS_SHIFT (tr_nn_support.h): the weighted C kernels refuse a larger bias_shift.
KERNEL_MAX_BIAS_SHIFT = 16


def output_stage(acc: np.ndarray, multiplier, shift, output_offset: int, act_min: int, act_max: int) -> np.ndarray:
    """clamp(requantize(acc) + output_offset, act_min, act_max) as int8 (tr_output_stage)."""
    out = requantize(acc, multiplier, shift) + output_offset
    return np.clip(out, act_min, act_max).astype(np.int8)


def _tap_indices(out_len: int, stride: int, pad: int, k: int, in_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(out_len, k) input coordinates of every tap, clipped into range, and their validity mask."""
    idx = np.arange(out_len)[:, None] * stride - pad + np.arange(k)[None, :]
    valid = (idx >= 0) & (idx < in_len)
    return np.clip(idx, 0, max(in_len - 1, 0)), valid


def patches(x: np.ndarray, kh: int, kw: int, stride: tuple[int, int], padding: tuple[int, int],
            out_hw: tuple[int, int], fill: int) -> tuple[np.ndarray, np.ndarray]:
    """(OH, OW, KH, KW, C) int64 windows with padded taps set to `fill`, plus the (OH, OW, KH, KW) mask."""
    h, w, _ = x.shape
    rows, rvalid = _tap_indices(out_hw[0], stride[0], padding[0], kh, h)
    cols, cvalid = _tap_indices(out_hw[1], stride[1], padding[1], kw, w)
    win = x.astype(np.int64)[rows[:, None, :, None], cols[None, :, None, :]]
    mask = rvalid[:, None, :, None] & cvalid[None, :, None, :]
    return np.where(mask[..., None], win, np.int64(fill)), mask


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


def exact_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b for int8-range operands, exact."""
    if a.shape[-1] * 128 * 128 >= _EXACT_FLOAT_LIMIT:
        return a.astype(np.int64) @ b.astype(np.int64)
    return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
