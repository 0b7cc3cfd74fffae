"""2-D convolution: tr_convolve_s8_{t2,t5,s8} (firmware/tr_nn/tr_convolve_s8_*.c) and their int16
twins tr_convolve_s16_t2, tr_convolve_s16_t5, tr_convolve_s16_s8 (tr_convolve_s16_*.c).

Input [N, H, W, C_in] int8 or int16 (N samples), filter rows per output channel in order [KH][KW][C_in],
bias [C_out], output [N, OH, OW, C_out] of the input's width; padded taps read pad_value (the input
zero point, 0 on int16 tensors).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import packing
from ..ir import ConvNode, Graph
from .arith import ChannelStage, ExactMatrix, patches, weight_sum_bound
from .base import HWC, NUMPY_TYPES, Clamp, Op, OpFamily, OpFn, Tile
from .lowering import Lowered, LowerOptions
from .weighted import WEIGHTED_ARRAYS, lower_weighted, unpacked_rows


@dataclass(frozen=True)
class ConvParams:
    """tr_nn_conv_params plus the geometry of the call's dims."""

    input: HWC
    output: HWC
    kernel: Tile
    stride: Tile
    padding: Tile  # rows / columns of padding before the first input row / column
    pad_value: int
    output_offset: int
    activation: Clamp
    bias_shift: int  # acc = Σ w·x · 2^bias_shift + bias


def convolve(x: np.ndarray, weights: np.ndarray, bias: np.ndarray, multiplier: np.ndarray, shift: np.ndarray,
             p: ConvParams, bits: int = 8) -> np.ndarray:
    """The kernels' arithmetic: x [N, H, W, C_in], weights [C_out, KH, KW, C_in] -> [N, OH, OW, C_out];
    `bits`: the activations' width, in and out (8 or 16)."""
    stage = ChannelStage(bias, p.bias_shift, multiplier, shift, p.output_offset, p.activation.min, p.activation.max,
                         out_bits=bits)
    return stage(convolve_sums(x, weights, p, bits=bits))


def convolve_sums(x: np.ndarray, weights: np.ndarray, p: ConvParams, matrix: ExactMatrix | None = None,
                  bits: int = 8) -> np.ndarray:
    """Σ w·x of every output, int64 [N, OH, OW, C_out]: im2col, then one exact matrix product for
    the whole batch (`matrix`: the weights already prepared by ExactMatrix.of with the same `bits`,
    the activations' width)."""
    cout, kh, kw, cin = weights.shape
    x = np.asarray(x, dtype=NUMPY_TYPES[bits])
    if x.ndim != 4 or x.shape[3] != cin:
        raise ValueError(f"input {x.shape} is not [N, H, W, {cin}] (the filter's channels)")
    n, out_hw = len(x), (p.output.h, p.output.w)
    win = patches(x, kh, kw, (p.stride.h, p.stride.w), (p.padding.h, p.padding.w), out_hw, p.pad_value)
    cols = win.reshape(n * out_hw[0] * out_hw[1], kh * kw * cin)
    matrix = matrix or ExactMatrix.of(weights.reshape(cout, -1).T, bits)
    return matrix.dot(cols).reshape(n, out_hw[0], out_hw[1], cout)


def scratch_bytes(p: ConvParams, fmt: str) -> int:
    """tr_convolve_s8_<fmt>_get_buffer_size, 8-byte aligned.

    t2 / trit5: eight pixels' int32 X words, one per pixel pair and padded tap (16 bytes per padded
    weight), and a pad row of c_in bytes (17 in all).
    s8: four interleaved int16 columns, one plain int16 column and an int8 staging row (11).
    Every build asks for the same size so arena plans do not depend on the path.
    """
    per_weight = 11 if fmt == packing.S8 else 17
    return per_weight * packing.padded_length(p.kernel.h * p.kernel.w * p.input.c, fmt)


def scratch_bytes_s16(p: ConvParams, fmt: str) -> int:
    """tr_convolve_s16_<fmt>_get_buffer_size, 8-byte aligned: int16 im2col columns zero-filled to the
    packed row length, four interleaved (the DSP path's pixel block) and one staging column (10 bytes
    per padded weight), the same on every build."""
    return 10 * packing.padded_length(p.kernel.h * p.kernel.w * p.input.c, fmt)


def _rows(codes: np.ndarray) -> np.ndarray:
    """Keras (KH, KW, C_in, C_out) codes as one row per output channel, [KH][KW][C_in] order."""
    return np.ascontiguousarray(codes.transpose(3, 0, 1, 2).reshape(codes.shape[3], -1))


def lower(node: ConvNode, graph: Graph, opts: LowerOptions) -> Lowered:
    parts = lower_weighted(node, graph, opts, _rows)
    kh, kw = node.weights.values.shape[:2]
    params = ConvParams(
        input=HWC.of(graph.tensors[node.inputs[0]].shape),
        output=HWC.of(graph.tensors[node.output].shape),
        kernel=Tile(int(kh), int(kw)),
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


def _reference(op: Op) -> OpFn:
    p: ConvParams = op.params
    k = p.kernel.h * p.kernel.w * p.input.c
    w = unpacked_rows(op, p.output.c, k).reshape(p.output.c, p.kernel.h, p.kernel.w, p.input.c)
    a = op.arrays
    bits = FAMILY.bits_of(op.kernel)[0]  # in and out alike
    if bits == 8:
        stage = ChannelStage.build(weight_sum_bound(w.reshape(p.output.c, -1)), a["bias"], p.bias_shift,
                                   a["multiplier"], a["shift"], p.output_offset, p.activation.min, p.activation.max)
    else:
        # int16 sums span ±32768·Σ|w|: a table would hold >= 65537 entries per channel, costlier to build than
        # the direct stage is per batch (which is measured as fast per element as the lookup)
        stage = ChannelStage(np.asarray(a["bias"]), p.bias_shift, np.asarray(a["multiplier"]), np.asarray(a["shift"]),
                             p.output_offset, p.activation.min, p.activation.max, out_bits=bits)
    shape = (p.input.h, p.input.w, p.input.c)
    matrix = ExactMatrix.of(w.reshape(p.output.c, -1).T, bits)
    return lambda xs: stage(convolve_sums(xs[0].reshape(-1, *shape), w, p, matrix, bits))


def _macs(p: ConvParams) -> int:
    return p.output.elements * p.kernel.h * p.kernel.w * p.input.c


FAMILY = OpFamily(
    name="convolve",
    params_type=ConvParams,
    kernels={packing.T2: "tr_convolve_s8_t2", packing.TRIT5: "tr_convolve_s8_t5", packing.S8: "tr_convolve_s8_s8"},
    wide_kernels={packing.T2: "tr_convolve_s16_t2", packing.TRIT5: "tr_convolve_s16_t5",
                  packing.S8: "tr_convolve_s16_s8"},
    arrays=WEIGHTED_ARRAYS,
    weight_rows=lambda p: (p.output.c, p.kernel.h * p.kernel.w * p.input.c),
    inputs_per_call=1,
    reference=_reference,
    macs=_macs,
    scratch_bytes=lambda op: (scratch_bytes_s16 if FAMILY.bits_of(op.kernel)[0] == 16 else scratch_bytes)(
        op.params, op.weight_format),
)
