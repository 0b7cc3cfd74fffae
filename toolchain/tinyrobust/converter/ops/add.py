"""Elementwise add of two int8 tensors of one shape: tr_add_s8 (firmware/tr_nn/tr_add_s8.c).

Each input is rescaled to a common finer grid, summed, and the sum requantised (TFLite's scheme):
  a = requantize((q1 + input_1_offset) << left_shift, input_1_mult, input_1_shift)   (b likewise)
  out = clamp(requantize(a + b, output_mult, output_shift) + output_offset, activation)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import AddNode, Graph
from ..quantmath import requantize
from .arith import byte_table, output_stage
from .base import Clamp, Op, OpFamily, OpFn
from .lowering import INT8_ABS_MAX, Lowered, LowerOptions, grids, multiplier, output_clamp, where

# int8 inputs << 20 keep 11 bits of headroom in int32 (TFLite's choice).
ADD_LEFT_SHIFT = 20


@dataclass(frozen=True)
class AddParams:
    """tr_nn_add_params plus the element count of the call's dims."""

    elements: int
    input_1_offset: int  # −z1
    input_1_mult: int
    input_1_shift: int
    input_2_offset: int  # −z2
    input_2_mult: int
    input_2_shift: int
    left_shift: int
    output_offset: int
    output_mult: int
    output_shift: int
    activation: Clamp


def add(x1: np.ndarray, x2: np.ndarray, p: AddParams) -> np.ndarray:
    a = requantize((np.asarray(x1, dtype=np.int64) + p.input_1_offset) << p.left_shift, p.input_1_mult,
                   p.input_1_shift)
    b = requantize((np.asarray(x2, dtype=np.int64) + p.input_2_offset) << p.left_shift, p.input_2_mult,
                   p.input_2_shift)
    return output_stage(a + b, p.output_mult, p.output_shift, p.output_offset, p.activation.min, p.activation.max)


def lower(node: AddNode, graph: Graph, opts: LowerOptions) -> Lowered:
    (g1, g2), go = grids(graph, node)
    twice_max = 2.0 * max(g1.scale, g2.scale)
    bound = (2 * INT8_ABS_MAX) << ADD_LEFT_SHIFT
    m1, s1 = multiplier(g1.scale / twice_max, bound, where(node))
    m2, s2 = multiplier(g2.scale / twice_max, bound, where(node))
    mo, so = multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * go.scale), bound, where(node))
    params = AddParams(
        elements=int(np.prod(graph.tensors[node.output].shape)),
        input_1_offset=-g1.zero_point, input_1_mult=m1, input_1_shift=s1,
        input_2_offset=-g2.zero_point, input_2_mult=m2, input_2_shift=s2,
        left_shift=ADD_LEFT_SHIFT,
        output_offset=go.zero_point, output_mult=mo, output_shift=so,
        activation=output_clamp(go, node.activation.kind == "relu"),
    )
    return Lowered((Op(FAMILY.kernels[None], node.name, node.inputs, node.output, params),))


def _reference(op: Op) -> OpFn:
    """add() looked up in its 256×256 table (every pair of int8 inputs, computed by add() itself)."""
    table = byte_table(lambda a, b: add(a, b, op.params), 2)
    return lambda xs: table(xs[0], xs[1])


FAMILY = OpFamily(
    name="add",
    params_type=AddParams,
    kernels={None: "tr_add_s8"},
    arrays=(),
    inputs_per_call=2,
    reference=_reference,
    macs=lambda p: p.elements,
)
