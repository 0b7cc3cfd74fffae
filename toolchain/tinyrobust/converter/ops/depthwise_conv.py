"""Depthwise convolution: tr_depthwise_conv_s8_{t2,t5,s8} (firmware/tr_nn/tr_depthwise_conv_s8_*.c) on int8
activations, tr_depthwise_conv_s16_t2, tr_depthwise_conv_s16_t5, tr_depthwise_conv_s16_s8 on int16 ones (in and out).

Input [N, H, W, C_in] (N samples), weights packed one row per kernel tap ([KH·KW] rows of
C_out = C_in·ch_mult weights, matching NHWC activations), output [N, OH, OW, C_out]; output channel
o reads input channel o // ch_mult. Also lowers a standalone BatchNorm (a 1×1 depthwise whose codes are the signs of its
scale) and is what an average pool onto a finer grid becomes (see pool.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import packing
from ..ir import BatchNormNode, ConvNode, Graph, UnsupportedModelError, WeightTensor
from ..quantmath import INT32_MAX
from .arith import ACTIVATION_MAGNITUDE, ChannelStage, max_magnitude, padded, tap, weight_sum_bound
from .base import HWC, Clamp, Op, OpFamily, OpFn, Tile
from .lowering import Lowered, LowerOptions, where
from .weighted import WEIGHTED_ARRAYS, lower_weighted, unpacked_rows


@dataclass(frozen=True)
class DepthwiseParams:
    """tr_nn_dw_conv_params plus the geometry of the call's dims."""

    input: HWC
    output: HWC
    kernel: Tile
    ch_mult: int
    stride: Tile
    padding: Tile
    pad_value: int
    output_offset: int
    activation: Clamp
    bias_shift: int


def depthwise_conv(x: np.ndarray, weights: np.ndarray, bias: np.ndarray, multiplier: np.ndarray,
                   shift: np.ndarray, p: DepthwiseParams, bits: int = 8) -> np.ndarray:
    """The kernels' arithmetic: x [N, H, W, C_in], weights [KH, KW, C_out], C_out = C_in·ch_mult
    -> [N, OH, OW, C_out]; `bits`: the activations' width, in and out (8, or 16 for the _s16 kernels)."""
    stage = ChannelStage(bias, p.bias_shift, multiplier, shift, p.output_offset, p.activation.min, p.activation.max,
                         out_bits=bits)
    return stage(depthwise_sums(x, weights, p, bits))


def depthwise_sums(x: np.ndarray, weights: np.ndarray, p: DepthwiseParams, bits: int = 8) -> np.ndarray:
    """Σ w·x of every output, int64 [N, OH, OW, C_out]: one exact multiply-add over the whole
    batch per kernel tap. `bits`: the activations' width (int8, or int16 for the _s16 kernels)."""
    kh, kw, cout = weights.shape
    x = np.asarray(x, dtype=np.int16 if bits == 16 else np.int8)
    if x.ndim != 4 or cout != x.shape[3] * p.ch_mult:
        raise ValueError(f"depthwise: input {x.shape} is not [N, H, W, C_in] with C_in * {p.ch_mult} = {cout}")
    stride, out_hw = (p.stride.h, p.stride.w), (p.output.h, p.output.w)
    xp = padded(x, kh, kw, stride, (p.padding.h, p.padding.w), out_hw, p.pad_value)
    if p.ch_mult != 1:
        xp = xp[..., np.arange(cout) // p.ch_mult]
    # |Σ w·x| <= KH·KW·|x|max·max|w| fits int32 for any kernel the lowering emits; int64 otherwise.
    bound = kh * kw * ACTIVATION_MAGNITUDE[bits] * max_magnitude(weights)
    acc_type = np.int32 if bound <= INT32_MAX else np.int64
    w = weights.astype(acc_type)
    sums = np.zeros((len(x), *out_hw, cout), dtype=acc_type)
    product = np.empty_like(sums)
    for i in range(kh):
        for j in range(kw):
            np.multiply(tap(xp, i, j, stride, out_hw), w[i, j], out=product)  # int8 / int16 · acc_type → acc_type
            sums += product
    return sums.astype(np.int64)


def _rows(codes: np.ndarray) -> np.ndarray:
    """Keras (KH, KW, C_in, mult) codes as one row per tap of C_in·mult weights."""
    kh, kw, cin, mult = codes.shape
    return np.ascontiguousarray(codes.reshape(kh * kw, cin * mult))


def lower(node: ConvNode, graph: Graph, opts: LowerOptions) -> Lowered:
    parts = lower_weighted(node, graph, opts, _rows)
    kh, kw, cin, mult = node.weights.values.shape
    params = DepthwiseParams(
        input=HWC.of(graph.tensors[node.inputs[0]].shape),
        output=HWC.of(graph.tensors[node.output].shape),
        kernel=Tile(int(kh), int(kw)),
        ch_mult=int(mult),
        stride=Tile(*node.strides),
        padding=Tile(node.padding[0], node.padding[1]),
        pad_value=parts.pad_value,
        output_offset=parts.output_offset,
        activation=parts.activation,
        bias_shift=parts.bias_shift,
    )
    op = Op(FAMILY.kernel(parts.weight_format, parts.bits), node.name, node.inputs, node.output, params, parts.arrays,
            parts.weight_format)
    return Lowered((op,))


def lower_batchnorm(node: BatchNormNode, graph: Graph, opts: LowerOptions) -> Lowered:
    """A BatchNorm that follows no conv is a per-channel affine map: a 1×1 depthwise conv whose
    codes are the signs of the BN scale and whose channel scale is its magnitude."""
    if len(graph.tensors[node.inputs[0]].shape) != 3:
        raise UnsupportedModelError(f"{where(node)}: standalone BatchNorm on a non-image tensor")
    c = len(node.scale)
    codes = np.sign(node.scale).astype(np.int8).reshape(1, 1, c, 1)
    weights = WeightTensor(values=node.scale.reshape(1, 1, c, 1), quantizer="batchnorm", kind="ternary",
                           codes=codes, channel_scale=np.abs(node.scale))
    conv = ConvNode(name=node.name, inputs=node.inputs, output=node.output, kind="depthwise", weights=weights,
                    post_scale=np.ones(c), post_bias=node.offset)
    return lower(conv, graph, opts)


def _reference(op: Op) -> OpFn:
    p: DepthwiseParams = op.params
    w = unpacked_rows(op, p.kernel.h * p.kernel.w, p.output.c).reshape(p.kernel.h, p.kernel.w, p.output.c)
    a = op.arrays
    bits, _ = FAMILY.bits_of(op.kernel)  # the same width in and out
    # int16 sums reach 256 times further: ChannelStage.build computes directly when the table would be too large
    stage = ChannelStage.build(weight_sum_bound(w.reshape(-1, p.output.c).T, bits), a["bias"], p.bias_shift,
                               a["multiplier"], a["shift"], p.output_offset, p.activation.min, p.activation.max,
                               out_bits=bits)
    shape = (p.input.h, p.input.w, p.input.c)
    return lambda xs: stage(depthwise_sums(xs[0].reshape(-1, *shape), w, p, bits))


FAMILY = OpFamily(
    name="depthwise_conv",
    params_type=DepthwiseParams,
    kernels={packing.T2: "tr_depthwise_conv_s8_t2", packing.TRIT5: "tr_depthwise_conv_s8_t5",
             packing.S8: "tr_depthwise_conv_s8_s8"},
    wide_kernels={packing.T2: "tr_depthwise_conv_s16_t2", packing.TRIT5: "tr_depthwise_conv_s16_t5",
                  packing.S8: "tr_depthwise_conv_s16_s8"},
    arrays=WEIGHTED_ARRAYS,
    weight_rows=lambda p: (p.kernel.h * p.kernel.w, p.output.c),
    inputs_per_call=1,
    reference=_reference,
    macs=lambda p: p.output.elements * p.kernel.h * p.kernel.w,
)
