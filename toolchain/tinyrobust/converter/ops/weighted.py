"""The part of lowering that conv, depthwise and fully connected share: codes, fine bias,
per-channel requantisation and packed rows (the families differ only in row order and params).

acc = Σ t·x · 2^bias_shift + bias, out = clamp(requantize(acc) + output_offset): see tr_nn_types.h.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import packing
from ..ir import ConvNode, Graph, UnsupportedModelError
from ..quantmath import INT32_MAX, round_half_away
from .arith import KERNEL_MAX_BIAS_SHIFT
from .base import ArraySpec, Clamp, Op
from .lowering import ABS_MAX, LowerOptions, grids, multipliers, output_clamp, where

# The finest bias the lowering asks for: 2^14 units per accumulator step where int32 headroom allows
# (the kernels accept up to KERNEL_MAX_BIAS_SHIFT; 14 is the most their fast paths take). 8 bits were
# not enough: a folded BatchNorm's bias decides ties at an activation quantizer's rounding boundaries,
# and QKeras's example_mnist_bn agreed with Keras on 97.8 % of samples at 2^8, 99.8 % at 2^14
# (ResNet-8: 98.5 → 99.0 %).
FINE_BIAS_BITS = 14
assert FINE_BIAS_BITS <= KERNEL_MAX_BIAS_SHIFT

WEIGHTED_ARRAYS = (
    ArraySpec("weights", "uint8_t"),
    ArraySpec("bias", "int32_t"),
    ArraySpec("multiplier", "int32_t"),
    ArraySpec("shift", "int32_t"),
)


@dataclass(frozen=True)
class WeightedParts:
    """What one lowered ConvNode gives every weighted family."""

    arrays: dict[str, np.ndarray]  # weights (packed rows), bias, multiplier, shift
    weight_format: str
    bias_shift: int
    output_offset: int
    activation: Clamp
    pad_value: int  # the input zero point: padded taps read it, so the bias fold cancels
    bits: int  # activation width in and out: 8, or 16 for the tr_<op>_s16_<weights> kernels


def fine_bias(bias_units: np.ndarray, zero_point_fold: np.ndarray, sum_bound: np.ndarray,
              where: str) -> tuple[int, np.ndarray]:
    """(bias_shift, int32 bias) with acc = Σ w·x · 2^bias_shift + bias.

    With ternary weights one accumulator step (α·s_in) can be a large fraction of an output step,
    so a bias rounded to whole steps would shift entire channels; 2^bias_shift finer units make
    that error negligible. The largest shift (up to FINE_BIAS_BITS) whose int32 accumulator
    cannot overflow is used.
    """
    for bias_shift in range(FINE_BIAS_BITS, -1, -1):
        bias = round_half_away(bias_units * (1 << bias_shift)).astype(np.int64) - (zero_point_fold << bias_shift)
        if np.all((sum_bound << bias_shift) + np.abs(bias) <= INT32_MAX):
            return bias_shift, bias
    raise UnsupportedModelError(f"{where}: the int32 accumulator could overflow (bias too large for the scales)")


def lower_weighted(node: ConvNode, graph: Graph, opts: LowerOptions,
                   rows_of: Callable[[np.ndarray], np.ndarray]) -> WeightedParts:
    """Integer arrays of a conv / depthwise / dense node. `rows_of` puts its codes (Keras layout,
    signs already applied) in the kernel's packed row order."""
    at = where(node)
    (gi,), go = grids(graph, node)
    if gi.bits != go.bits:
        raise AssertionError(f"{at}: input int{gi.bits}, output int{go.bits}; the widths pass converts first")
    w = node.weights
    assert w.codes is not None and w.channel_scale is not None, "factor_alpha runs before lowering"
    effective = node.post_scale * w.channel_scale  # per output channel, may be negative (BN)
    sign = np.where(effective < 0, -1, 1).astype(np.int8)
    magnitude = np.abs(effective)
    depthwise = node.kind == "depthwise"
    flat = w.codes.reshape(-1, w.codes.shape[2] * w.codes.shape[3]) if depthwise else w.codes.reshape(
        -1, w.codes.shape[-1])
    flipped = flat.astype(np.int16) * sign[None, :]
    if flipped.max(initial=0) > 127:
        channel = int(np.argmax(flipped.max(axis=0)))
        raise UnsupportedModelError(
            f"{at}: channel {channel} has an int8 weight of -128 and a negative folded BatchNorm scale; "
            "its sign flip (+128) does not fit int8. Use symmetric quantized_bits weights for this layer."
        )
    flat = flipped.astype(np.int8)
    dead = magnitude * gi.scale == 0  # channels that output a constant
    flat[:, dead] = 0
    codes = flat.reshape(w.codes.shape)
    unit = np.where(dead, go.scale, magnitude * gi.scale)  # real value of one accumulator step
    code_sum = flat.astype(np.int64).sum(axis=0)
    sum_bound = np.abs(flat).astype(np.int64).sum(axis=0) * ABS_MAX[gi.bits]  # max |Σ w·x|
    bias_shift, bias = fine_bias(node.post_bias / unit, gi.zero_point * code_sum, sum_bound, at)
    bound = (sum_bound << bias_shift) + np.abs(bias)
    mult, shift = multipliers(unit / (go.scale * (1 << bias_shift)), bound, at)
    fmt = packing.S8 if w.kind == "int8" else opts.ternary_format
    arrays = {
        "weights": packing.pack_rows(rows_of(codes), fmt),
        "bias": bias.astype(np.int32),
        "multiplier": mult,
        "shift": shift,
    }
    return WeightedParts(arrays, fmt, bias_shift, go.zero_point, output_clamp(go, node.activation.kind == "relu"),
                         gi.zero_point, go.bits)


def unpacked_rows(op: Op, rows: int, row_length: int) -> np.ndarray:
    """The op's weight codes as (rows, row_length) int8, decoded from its packed bytes (so the
    reference exercises the packing too)."""
    assert op.weight_format is not None
    return packing.unpack_rows(op.arrays["weights"], op.weight_format, rows, row_length)
