"""Fully connected: tr_fully_connected_s8_{t2,t5,s8} (firmware/tr_nn/tr_fully_connected_s8_*.c) and
their int16-activation twins tr_fully_connected_s16_t2, tr_fully_connected_s16_t5, tr_fully_connected_s16_s8.

Input [N, C_in] int8 or int16 (N samples, each a flattened tensor), one packed row of C_in weights per
output channel, bias [C_out], output [N, C_out] of the input's width.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import packing
from ..ir import ConvNode, Graph
from .arith import ChannelStage, ExactMatrix, weight_sum_bound
from .base import NUMPY_TYPES, Clamp, Op, OpFamily, OpFn
from .lowering import Lowered, LowerOptions
from .weighted import WEIGHTED_ARRAYS, lower_weighted, unpacked_rows


@dataclass(frozen=True)
class FullyConnectedParams:
    """tr_nn_fc_params plus the channel counts of the call's dims."""

    input_channels: int
    output_channels: int
    output_offset: int
    activation: Clamp
    bias_shift: int


def fully_connected(x: np.ndarray, weights: np.ndarray, bias: np.ndarray, multiplier: np.ndarray,
                    shift: np.ndarray, p: FullyConnectedParams, bits: int = 8) -> np.ndarray:
    """The kernels' arithmetic: x [N, C_in] (any trailing shape of C_in values, `bits` wide), weights
    [C_out, C_in] -> [N, C_out] of the same width."""
    stage = ChannelStage(bias, p.bias_shift, multiplier, shift, p.output_offset, p.activation.min, p.activation.max,
                         out_bits=bits)
    return stage(fully_connected_sums(x, weights, bits=bits))


def fully_connected_sums(x: np.ndarray, weights: np.ndarray, matrix: ExactMatrix | None = None,
                         bits: int = 8) -> np.ndarray:
    """Σ w·x of every output, int64 [N, C_out]: one exact matrix product for the whole batch
    (`matrix`: the weights already prepared by ExactMatrix.of for `bits`-wide activations)."""
    x = np.asarray(x, dtype=NUMPY_TYPES[bits])
    return (matrix or ExactMatrix.of(weights.T, bits)).dot(x.reshape(len(x), -1))


# TR_FC_TABLE_MIN_ROWS in tr_fully_connected_s8_t2.c: from this many outputs on, the t2 kernel's
# per-group tables of ternary partial sums pay for building them.
FC_TABLE_MIN_ROWS = 192


def scratch_bytes(p: FullyConnectedParams, fmt: str, bits: int = 8) -> int:
    """tr_fully_connected_s<bits>_<fmt>_get_buffer_size: the DSP path's int16 copy of the input (2 bytes
    per padded weight); int8 t2 layers with at least FC_TABLE_MIN_ROWS outputs take the table path
    instead: 8 tables of 256 int16 partial sums and one int32 accumulator per output row, whichever is
    larger (int16 activations have no table path: four of them do not sum within int16)."""
    copy = 2 * packing.padded_length(p.input_channels, fmt)
    if bits != 8 or fmt != packing.T2 or p.output_channels < FC_TABLE_MIN_ROWS:
        return copy
    return max(copy, 8 * 256 * 2 + 4 * p.output_channels)


def lower(node: ConvNode, graph: Graph, opts: LowerOptions) -> Lowered:
    parts = lower_weighted(node, graph, opts, lambda codes: np.ascontiguousarray(codes.T))
    cin, cout = node.weights.values.shape
    params = FullyConnectedParams(int(cin), int(cout), parts.output_offset, parts.activation, parts.bias_shift)
    op = Op(FAMILY.kernel(parts.weight_format, parts.bits), node.name, node.inputs, node.output, params, parts.arrays,
            parts.weight_format)
    return Lowered((op,))


def _reference(op: Op) -> OpFn:
    p: FullyConnectedParams = op.params
    bits = FAMILY.bits_of(op.kernel)[0]  # in and out: the weighted kernels do not change widths
    w = unpacked_rows(op, p.output_channels, p.input_channels)
    a = op.arrays
    stage = ChannelStage.build(weight_sum_bound(w, bits), a["bias"], p.bias_shift, a["multiplier"], a["shift"],
                               p.output_offset, p.activation.min, p.activation.max, out_bits=bits)
    matrix = ExactMatrix.of(w.T, bits)
    return lambda xs: stage(fully_connected_sums(xs[0], w, matrix, bits))


FAMILY = OpFamily(
    name="fully_connected",
    params_type=FullyConnectedParams,
    kernels={packing.T2: "tr_fully_connected_s8_t2", packing.TRIT5: "tr_fully_connected_s8_t5",
             packing.S8: "tr_fully_connected_s8_s8"},
    wide_kernels={packing.T2: "tr_fully_connected_s16_t2", packing.TRIT5: "tr_fully_connected_s16_t5",
                  packing.S8: "tr_fully_connected_s16_s8"},
    arrays=WEIGHTED_ARRAYS,
    weight_rows=lambda p: (p.output_channels, p.input_channels),
    inputs_per_call=1,
    reference=_reference,
    macs=lambda p: p.input_channels * p.output_channels,
    scratch_bytes=lambda op: scratch_bytes(op.params, op.weight_format, FAMILY.bits_of(op.kernel)[0]),
)
