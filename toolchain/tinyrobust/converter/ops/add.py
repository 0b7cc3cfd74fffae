"""Elementwise add of two tensors of one shape: tr_add_s8 on int8, tr_add_s16 on int16 (inputs and output
alike; firmware/tr_nn/tr_add_s8.c, tr_add_s16.c).

Each input is rescaled to a common finer grid, summed, and the sum requantised (TFLite's scheme):
  a = requantize((q1 + input_1_offset) << left_shift, input_1_mult, input_1_shift)   (b likewise)
  out = clamp(requantize(a + b, output_mult, output_shift) + output_offset, activation)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import AddNode, Graph, UnsupportedModelError
from ..quantmath import INT32_MAX, INT32_MIN, check_left_shift_headroom, requantize
from .arith import byte_table, output_stage
from .base import Clamp, Op, OpFamily, OpFn
from .lowering import ABS_MAX, Lowered, LowerOptions, grids, multiplier, output_clamp, where

# int8 inputs << 20 keep 11 bits of headroom in int32 (TFLite's choice).
ADD_LEFT_SHIFT = 20
# By activation bits. Symmetric int16 inputs (zero point 0, |q| <= 32768) << 15 reach 2^30; << 16 would reach
# 2^31, past INT32_MAX, so 15 is the largest shift whose bound fits (CMSIS-NN's s16 add uses 15 too). With
# input multipliers <= 1/2 (see lower()), |a| and |b| stay <= 2^29 and their sum within int32. An input on
# a non-negative int16 grid (zero point −32768: |q − z| <= 65535) takes one bit less: LEFT_SHIFT_WIDE_ASYMMETRIC.
LEFT_SHIFT = {8: ADD_LEFT_SHIFT, 16: 15}
LEFT_SHIFT_WIDE_ASYMMETRIC = 14


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


def _within_int32(x: np.ndarray, what: str) -> np.ndarray:
    """x itself; an int32 overflow in the C (wrap or undefined behaviour) is reported, not modelled."""
    if x.size and (x.min() < INT32_MIN or x.max() > INT32_MAX):
        raise OverflowError(f"add: {what} overflows int32")
    return x


def add(x1: np.ndarray, x2: np.ndarray, p: AddParams, bits: int = 8) -> np.ndarray:
    """tr_add_s8 (bits 8) or tr_add_s16 (bits 16) on int64 arrays: the output as int8 or int16."""
    a = requantize(_within_int32((np.asarray(x1, dtype=np.int64) + p.input_1_offset) << p.left_shift, "input 1"),
                   p.input_1_mult, p.input_1_shift)
    b = requantize(_within_int32((np.asarray(x2, dtype=np.int64) + p.input_2_offset) << p.left_shift, "input 2"),
                   p.input_2_mult, p.input_2_shift)
    return output_stage(_within_int32(a + b, "a + b"), p.output_mult, p.output_shift, p.output_offset,
                        p.activation.min, p.activation.max, bits)


def lower(node: AddNode, graph: Graph, opts: LowerOptions) -> Lowered:
    (g1, g2), go = grids(graph, node)
    bits = go.bits
    if g1.bits != bits or g2.bits != bits:
        raise AssertionError(f"{where(node)}: add of {g1.bits}- and {g2.bits}-bit inputs onto a {bits}-bit "
                             "output; the add kernels need one width throughout")
    # the C shifts q − z left in int32 (int8: |q − z| <= 255; int16: <= 32768, or 65535 on a grid for [0, hi])
    shifted = max(max(abs(g.qmin - g.zero_point), abs(g.qmax - g.zero_point)) for g in (g1, g2))
    left_shift = LEFT_SHIFT_WIDE_ASYMMETRIC if bits == 16 and shifted > ABS_MAX[16] else LEFT_SHIFT[bits]
    try:
        check_left_shift_headroom(shifted, left_shift)
    except OverflowError as exc:
        raise UnsupportedModelError(f"{where(node)}: {exc}") from exc
    # the input multipliers are <= 1/2, the larger exactly 1/2: |a + b| <= max(2 · ABS_MAX, shifted) << left_shift
    twice_max = 2.0 * max(g1.scale, g2.scale)
    bound = max(2 * ABS_MAX[bits], shifted) << left_shift
    m1, s1 = multiplier(g1.scale / twice_max, bound, where(node))
    m2, s2 = multiplier(g2.scale / twice_max, bound, where(node))
    mo, so = multiplier(twice_max / ((1 << left_shift) * go.scale), bound, where(node))
    params = AddParams(
        elements=int(np.prod(graph.tensors[node.output].shape)),
        input_1_offset=-g1.zero_point, input_1_mult=m1, input_1_shift=s1,
        input_2_offset=-g2.zero_point, input_2_mult=m2, input_2_shift=s2,
        left_shift=left_shift,
        output_offset=go.zero_point, output_mult=mo, output_shift=so,
        activation=output_clamp(go, node.activation.kind == "relu"),
    )
    return Lowered((Op(FAMILY.kernel(None, bits), node.name, node.inputs, node.output, params),))


def _reference(op: Op) -> OpFn:
    """int8: add() looked up in its 256×256 table (every pair of int8 inputs, computed by add() itself);
    int16 (65536² pairs): add() itself, elementwise."""
    bits = FAMILY.bits_of(op.kernel)[0]
    if bits == 16:
        return lambda xs: add(xs[0], xs[1], op.params, 16)
    table = byte_table(lambda a, b: add(a, b, op.params), 2)
    return lambda xs: table(xs[0], xs[1])


FAMILY = OpFamily(
    name="add",
    params_type=AddParams,
    kernels={None: "tr_add_s8"},
    wide_kernels={None: "tr_add_s16"},
    arrays=(),
    inputs_per_call=2,
    reference=_reference,
    macs=lambda p: p.elements,
)
