"""Explicit zero padding: tr_pad_s8 (firmware/tr_nn/tr_pad_s8.c) and, on int16 tensors, tr_pad_s16
(tr_pad_s16.c). A ZeroPadding2D that no conv absorbs (see passes/structure.py): the output is filled
with the zero point, the input copied in at (top, left)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Graph, PadNode
from .base import HWC, NUMPY_TYPES, Op, OpFamily, OpFn
from .lowering import Lowered, LowerOptions, grids, where


@dataclass(frozen=True)
class PadParams:
    """tr_nn_pad_params plus the geometry of the call's dims."""

    input: HWC
    output: HWC
    pad_value: int
    top: int
    left: int


def pad(x: np.ndarray, p: PadParams, bits: int = 8) -> np.ndarray:
    """[N, H, W, C] -> [N, OH, OW, C] (int8 or int16 by `bits`): the input at (top, left), every other
    element pad_value."""
    n, h, w, c = x.shape
    if p.top < 0 or p.left < 0 or p.top + h > p.output.h or p.left + w > p.output.w:
        raise ValueError("pad: input does not fit the output at (top, left)")
    dtype = NUMPY_TYPES[bits]
    if not np.iinfo(dtype).min <= p.pad_value <= np.iinfo(dtype).max:
        raise ValueError(f"pad: pad_value {p.pad_value} outside int{bits}")
    out = np.full((n, p.output.h, p.output.w, c), p.pad_value, dtype=dtype)
    out[:, p.top:p.top + h, p.left:p.left + w] = x
    return out


def lower(node: PadNode, graph: Graph, opts: LowerOptions) -> Lowered:
    (gi,), go = grids(graph, node)
    if gi.bits != go.bits:
        raise AssertionError(f"{where(node)}: pad from a {gi.bits}-bit input onto a {go.bits}-bit output; "
                             "the pad kernels keep the input's width")
    params = PadParams(HWC.of(graph.tensors[node.inputs[0]].shape), HWC.of(graph.tensors[node.output].shape),
                       go.zero_point, node.padding[0], node.padding[1])
    return Lowered((Op(FAMILY.kernel(None, go.bits), node.name, node.inputs, node.output, params),))


def _reference(op: Op) -> OpFn:
    p, bits = op.params, FAMILY.bits_of(op.kernel)[0]
    return lambda xs: pad(xs[0].reshape(-1, p.input.h, p.input.w, p.input.c), p, bits)


FAMILY = OpFamily(
    name="pad",
    params_type=PadParams,
    kernels={None: "tr_pad_s8"},
    wide_kernels={None: "tr_pad_s16"},
    arrays=(),
    inputs_per_call=1,
    reference=_reference,
    macs=lambda p: 0,
)
