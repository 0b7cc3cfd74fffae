"""Elementwise multiply of two int8 tensors of one shape: tr_mul_s8 (firmware/tr_nn/tr_mul_s8.c).

  out = clamp(requantize((q1 + input_1_offset) · (q2 + input_2_offset), output_mult, output_shift)
              + output_offset, activation)
The product of two offset inputs is at most 256² in magnitude, so it needs no pre-scaling:
one requantisation by s1·s2 / s_out is exact to the rounding of that multiplier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Graph, MulNode
from .arith import byte_table, output_stage
from .base import Clamp, Op, OpFamily, OpFn
from .lowering import INT8_ABS_MAX, Lowered, LowerOptions, grids, multiplier, output_clamp, where


@dataclass(frozen=True)
class MulParams:
    """tr_nn_mul_params plus the element count of the call's dims."""

    elements: int
    input_1_offset: int  # −z1
    input_2_offset: int  # −z2
    output_offset: int
    output_mult: int
    output_shift: int
    activation: Clamp


def mul(x1: np.ndarray, x2: np.ndarray, p: MulParams) -> np.ndarray:
    prod = (np.asarray(x1, dtype=np.int64) + p.input_1_offset) * (np.asarray(x2, dtype=np.int64) + p.input_2_offset)
    return output_stage(prod, p.output_mult, p.output_shift, p.output_offset, p.activation.min, p.activation.max)


def lower(node: MulNode, graph: Graph, opts: LowerOptions) -> Lowered:
    (g1, g2), go = grids(graph, node)
    bound = (2 * INT8_ABS_MAX) ** 2
    mo, so = multiplier(g1.scale * g2.scale / go.scale, bound, where(node))
    params = MulParams(
        elements=int(np.prod(graph.tensors[node.output].shape)),
        input_1_offset=-g1.zero_point, input_2_offset=-g2.zero_point,
        output_offset=go.zero_point, output_mult=mo, output_shift=so,
        activation=output_clamp(go, node.activation.kind == "relu"),
    )
    return Lowered((Op(FAMILY.kernels[None], node.name, node.inputs, node.output, params),))


def _reference(op: Op) -> OpFn:
    """mul() looked up in its 256×256 table (every pair of int8 inputs, computed by mul() itself)."""
    table = byte_table(lambda a, b: mul(a, b, op.params), 2)
    return lambda xs: table(xs[0], xs[1])


FAMILY = OpFamily(
    name="mul",
    params_type=MulParams,
    kernels={None: "tr_mul_s8"},
    arrays=(),
    inputs_per_call=2,
    reference=_reference,
    macs=lambda p: p.elements,
)
