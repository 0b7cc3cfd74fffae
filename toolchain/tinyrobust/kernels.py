"""numpy reference kernels: the exact integer arithmetic of firmware_templates/tr_nn.

One function per C kernel, on *unpacked* weights (see packing.unpack_rows). Activations are int8
arrays, HWC for spatial kernels and (C,) for fully connected; every function returns int8.
Accumulation is exact: sums are formed in float64 only where every partial sum stays far below
2^53 (|w·x| <= 2^14 per tap), which lets numpy use BLAS, then converted back to int64.
"""

from __future__ import annotations

import numpy as np

from .quantmath import requantize

_EXACT_FLOAT_LIMIT = 2**52
MAX_BIAS_SHIFT = 16  # TR_NN_MAX_BIAS_SHIFT: the C kernels reject larger values


def _output_stage(acc: np.ndarray, multiplier, shift, output_offset: int, act_min: int,
                  act_max: int) -> np.ndarray:
    out = requantize(acc, multiplier, shift) + output_offset
    return np.clip(out, act_min, act_max).astype(np.int8)


def _tap_indices(out_len: int, stride: int, pad: int, k: int, in_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(out_len, k) input coordinates of every tap, clipped into range, and their validity mask."""
    idx = np.arange(out_len)[:, None] * stride - pad + np.arange(k)[None, :]
    valid = (idx >= 0) & (idx < in_len)
    return np.clip(idx, 0, max(in_len - 1, 0)), valid


def _patches(x: np.ndarray, kh: int, kw: int, stride, padding, out_hw,
             fill: int) -> tuple[np.ndarray, np.ndarray]:
    """(OH, OW, KH, KW, C) int64 windows with padded taps set to `fill`, plus the (OH, OW, KH, KW) mask."""
    h, w, _ = x.shape
    rows, rvalid = _tap_indices(out_hw[0], stride[0], padding[0], kh, h)
    cols, cvalid = _tap_indices(out_hw[1], stride[1], padding[1], kw, w)
    win = x.astype(np.int64)[rows[:, None, :, None], cols[None, :, None, :]]
    mask = rvalid[:, None, :, None] & cvalid[None, :, None, :]
    return np.where(mask[..., None], win, np.int64(fill)), mask


def _with_bias(sums: np.ndarray, bias, bias_shift: int) -> np.ndarray:
    """acc = Σ w·x · 2^bias_shift + bias: the bias lives in 2^bias_shift finer units (tr_nn_types.h).

    int64 math. The lowering guarantees the result fits int32 (the C kernels assume it: overflow
    there is undefined), so a value outside int32 is reported rather than silently modelled.
    """
    if not 0 <= bias_shift <= MAX_BIAS_SHIFT:
        raise ValueError(f"bias_shift {bias_shift} outside [0, {MAX_BIAS_SHIFT}]")
    acc = sums * np.int64(1 << bias_shift) + np.asarray(bias, dtype=np.int64)
    if acc.size and (acc.min() < -2**31 or acc.max() > 2**31 - 1):
        raise OverflowError("accumulator Σ w·x · 2^bias_shift + bias overflows int32")
    return acc


def _exact_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.shape[-1] * 128 * 128 >= _EXACT_FLOAT_LIMIT:
        return a.astype(np.int64) @ b.astype(np.int64)
    return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)


def convolve(x, weights, bias, multiplier, shift, *, stride, padding, pad_value, output_offset,
             act_min, act_max, out_hw, bias_shift: int = 0) -> np.ndarray:
    """tr_convolve_s8_*: x [H, W, Cin], weights [Cout, KH, KW, Cin] -> [OH, OW, Cout]."""
    cout, kh, kw, cin = weights.shape
    if x.shape[2] != cin:
        raise ValueError(f"input channels {x.shape[2]} != filter channels {cin}")
    win, _ = _patches(x, kh, kw, stride, padding, out_hw, pad_value)
    cols = win.reshape(out_hw[0] * out_hw[1], kh * kw * cin)
    acc = _with_bias(_exact_dot(cols, weights.reshape(cout, -1).T), np.asarray(bias)[None, :], bias_shift)
    out = _output_stage(acc, np.asarray(multiplier)[None, :], np.asarray(shift)[None, :], output_offset,
                        act_min, act_max)
    return out.reshape(out_hw[0], out_hw[1], cout)


def depthwise_conv(x, weights, bias, multiplier, shift, *, ch_mult, stride, padding, pad_value,
                   output_offset, act_min, act_max, out_hw, bias_shift: int = 0) -> np.ndarray:
    """tr_depthwise_conv_s8_*: weights [KH, KW, Cout], Cout = Cin·ch_mult; channel o reads o // ch_mult."""
    kh, kw, cout = weights.shape
    if cout != x.shape[2] * ch_mult:
        raise ValueError(f"depthwise: Cout {cout} != Cin {x.shape[2]} * ch_mult {ch_mult}")
    win, _ = _patches(x, kh, kw, stride, padding, out_hw, pad_value)
    win = win[..., np.arange(cout) // ch_mult]  # (OH, OW, KH, KW, Cout)
    acc = _with_bias(np.einsum("yxhwc,hwc->yxc", win, weights.astype(np.int64)), bias, bias_shift)
    return _output_stage(acc, multiplier, shift, output_offset, act_min, act_max)


def fully_connected(x, weights, bias, multiplier, shift, *, output_offset, act_min, act_max,
                    bias_shift: int = 0) -> np.ndarray:
    """tr_fully_connected_s8_*: x [Cin], weights [Cout, Cin] -> [Cout]."""
    acc = _with_bias(_exact_dot(weights, np.asarray(x)[:, None])[:, 0], bias, bias_shift)
    return _output_stage(acc, multiplier, shift, output_offset, act_min, act_max)


def add(x1, x2, *, input_1_offset, input_1_mult, input_1_shift, input_2_offset, input_2_mult, input_2_shift,
        left_shift, output_offset, output_mult, output_shift, act_min, act_max) -> np.ndarray:
    """tr_add_s8 (formula at tr_nn_add_params in tr_nn_types.h)."""
    a = requantize((np.asarray(x1, dtype=np.int64) + input_1_offset) << left_shift, input_1_mult,
                   input_1_shift)
    b = requantize((np.asarray(x2, dtype=np.int64) + input_2_offset) << left_shift, input_2_mult,
                   input_2_shift)
    return _output_stage(a + b, output_mult, output_shift, output_offset, act_min, act_max)


def requantize_tensor(x, *, input_offset, output_offset, mult, shift, act_min, act_max) -> np.ndarray:
    """tr_requantize_s8."""
    return _output_stage(np.asarray(x, dtype=np.int64) + input_offset, mult, shift, output_offset,
                         act_min, act_max)


def lut(x, table) -> np.ndarray:
    """tr_lut_s8: out = table[q + 128]."""
    table = np.asarray(table, dtype=np.int8)
    if table.shape != (256,):
        raise ValueError("LUT must hold 256 int8 entries")
    return table[np.asarray(x, dtype=np.int64) + 128]


def concat(xs: list, axis: int = -1) -> np.ndarray:
    """tr_concat_s8 called once per input at increasing channel offsets."""
    return np.concatenate([np.asarray(x, dtype=np.int8) for x in xs], axis=axis)


def max_pool(x, *, kernel, stride, padding, act_min, act_max, out_hw) -> np.ndarray:
    """tr_max_pool_s8: max over valid taps (-128 for a window with none), then clamp."""
    win, _ = _patches(x, kernel[0], kernel[1], stride, padding, out_hw, -128)
    return np.clip(win.max(axis=(2, 3)), act_min, act_max).astype(np.int8)


def avg_pool(x, *, kernel, stride, padding, act_min, act_max, out_hw) -> np.ndarray:
    """tr_avg_pool_s8: mean over valid taps, half away from zero, C truncating division (0 if none)."""
    win, mask = _patches(x, kernel[0], kernel[1], stride, padding, out_hw, 0)
    total = win.sum(axis=(2, 3))
    cnt = mask.sum(axis=(2, 3)).astype(np.int64)[..., None]
    half = cnt // 2
    num = np.where(total > 0, total + half, total - half)
    avg = np.sign(num) * (np.abs(num) // np.maximum(cnt, 1))
    avg = np.where(cnt > 0, avg, 0)
    return np.clip(avg, act_min, act_max).astype(np.int8)


def pad(x, *, top, left, out_hw, pad_value) -> np.ndarray:
    """tr_pad_s8: [OH, OW, C] filled with pad_value, x copied in at (top, left)."""
    h, w, c = x.shape
    if top < 0 or left < 0 or top + h > out_hw[0] or left + w > out_hw[1]:
        raise ValueError("pad: input does not fit the output at (top, left)")
    out = np.full((out_hw[0], out_hw[1], c), pad_value, dtype=np.int8)
    out[top:top + h, left:left + w] = x
    return out
