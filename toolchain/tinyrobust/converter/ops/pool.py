"""Pooling: tr_max_pool_s8 and tr_avg_pool_s8 (firmware/tr_nn/tr_{max,avg}_pool_s8.c), and their int16
twins tr_max_pool_s16 and tr_avg_pool_s16 (tr_{max,avg}_pool_s16.c: int16 in and out, same arithmetic).

Both pool over valid (non-padded) taps only and keep the input grid. An unpadded average whose
output grid is finer than its input's (a coarse activation grid, see passes/grids.py) is lowered
as a depthwise convolution instead: all-ones codes, channel scale 1/(KH·KW), one requantisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import ConvNode, Graph, PoolNode, UnsupportedModelError, WeightTensor
from . import depthwise_conv
from .arith import patches, valid_taps
from .base import HWC, NUMPY_TYPES, Clamp, Op, OpFamily, OpFn, Tile
from .lowering import Lowered, LowerOptions, grids, where

# tr_avg_pool_s16.c's TR_AVG_POOL_S16_MAX_TAPS: 32768 · 65535 + 32767 < 2^31, the int32 sum cannot overflow
AVG_S16_MAX_TAPS = 65535


@dataclass(frozen=True)
class PoolParams:
    """tr_nn_pool_params plus the geometry of the call's dims."""

    input: HWC
    output: HWC
    kernel: Tile
    stride: Tile
    padding: Tile
    activation: Clamp


def _windows(x: np.ndarray, p: PoolParams, fill: int, bits: int) -> np.ndarray:
    """(N, OH, OW, KH, KW, C) windows of x [N, H, W, C] (int8 or int16 by `bits`), padded taps `fill`."""
    x = np.asarray(x, dtype=NUMPY_TYPES[bits]).reshape(-1, p.input.h, p.input.w, p.input.c)
    return patches(x, p.kernel.h, p.kernel.w, (p.stride.h, p.stride.w), (p.padding.h, p.padding.w),
                   (p.output.h, p.output.w), fill)


def max_pool(x: np.ndarray, p: PoolParams, bits: int = 8) -> np.ndarray:
    """Max over valid taps (the type's minimum, -128 or -32768, for a window with none), then clamp:
    [N, H, W, C] -> [N, OH, OW, C], int8 or int16 by `bits`."""
    fill = -(1 << (bits - 1))
    out = np.clip(_windows(x, p, fill, bits).max(axis=(3, 4)), p.activation.min, p.activation.max)
    return out.astype(NUMPY_TYPES[bits])


def avg_pool(x: np.ndarray, p: PoolParams, bits: int = 8) -> np.ndarray:
    """Mean over valid taps, half away from zero, C truncating division (0 if none), then clamp:
    [N, H, W, C] -> [N, OH, OW, C], int8 or int16 by `bits` (int64 sums: exact for either)."""
    total = _windows(x, p, 0, bits).sum(axis=(3, 4), dtype=np.int64)
    cnt = valid_taps(p.input.h, p.input.w, p.kernel.h, p.kernel.w, (p.stride.h, p.stride.w),
                     (p.padding.h, p.padding.w), (p.output.h, p.output.w))[..., None]
    half = cnt // 2
    num = np.where(total > 0, total + half, total - half)
    avg = np.sign(num) * (np.abs(num) // np.maximum(cnt, 1))
    avg = np.where(cnt > 0, avg, 0)
    return np.clip(avg, p.activation.min, p.activation.max).astype(NUMPY_TYPES[bits])


def _average_as_depthwise(node: PoolNode, graph: Graph) -> ConvNode:
    """An unpadded average onto a finer output grid is a depthwise conv whose codes are all +1 and
    whose channel scale is 1/(kh·kw): the sum stays exact and one requantisation rounds it."""
    c = graph.tensors[node.inputs[0]].shape[-1]
    kh, kw = node.pool
    codes = np.ones((kh, kw, c, 1), dtype=np.int8)
    weights = WeightTensor(values=codes / (kh * kw), quantizer="average", kind="ternary", codes=codes,
                           channel_scale=np.full(c, 1.0 / (kh * kw)))
    return ConvNode(name=node.name, inputs=node.inputs, output=node.output, kind="depthwise", weights=weights,
                    post_scale=np.ones(c), post_bias=np.zeros(c), strides=node.strides)


def lower(node: PoolNode, graph: Graph, opts: LowerOptions) -> Lowered:
    (gi,), go = grids(graph, node)
    if node.kind == "avg" and go != gi:
        return depthwise_conv.lower(_average_as_depthwise(node, graph), graph, opts)
    if gi.bits != go.bits:
        raise AssertionError(f"{where(node)}: {node.kind} pool from a {gi.bits}-bit input onto a {go.bits}-bit "
                             "output; the pool kernels keep the input's grid and width")
    if node.kind == "avg" and go.bits == 16 and node.pool[0] * node.pool[1] > AVG_S16_MAX_TAPS:
        raise UnsupportedModelError(f"{where(node)}: an int16 average over {node.pool[0] * node.pool[1]} taps "
                                    f"could overflow its int32 sum (tr_avg_pool_s16 takes <= {AVG_S16_MAX_TAPS})")
    params = PoolParams(
        input=HWC.of(graph.tensors[node.inputs[0]].shape),
        output=HWC.of(graph.tensors[node.output].shape),
        kernel=Tile(*node.pool),
        stride=Tile(*node.strides),
        padding=Tile(node.padding[0], node.padding[1]),
        activation=Clamp(go.qmin, go.qmax),
    )
    return Lowered((Op(FAMILY.kernel(node.kind, go.bits), node.name, node.inputs, node.output, params),))


def _reference(op: Op) -> OpFn:
    bits = FAMILY.bits_of(op.kernel)[0]
    fn = max_pool if op.kernel == FAMILY.kernel("max", bits) else avg_pool
    return lambda xs: fn(xs[0], op.params, bits)


FAMILY = OpFamily(
    name="pool",
    params_type=PoolParams,
    kernels={"max": "tr_max_pool_s8", "avg": "tr_avg_pool_s8"},
    wide_kernels={"max": "tr_max_pool_s16", "avg": "tr_avg_pool_s16"},
    arrays=(),
    inputs_per_call=1,
    reference=_reference,
    macs=lambda p: p.output.elements * p.kernel.h * p.kernel.w,
)
