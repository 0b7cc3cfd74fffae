"""Explicit zero padding: tr_pad_s8 (firmware/tr_nn/tr_pad_s8.c). A ZeroPadding2D that no conv
absorbs (see passes/structure.py): the output is filled with the zero point, the input copied in
at (top, left)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Graph, PadNode
from .base import HWC, Op, OpFamily
from .lowering import Lowered, LowerOptions, grids


@dataclass(frozen=True)
class PadParams:
    """tr_nn_pad_params plus the geometry of the call's dims."""

    input: HWC
    output: HWC
    pad_value: int
    top: int
    left: int


def pad(x: np.ndarray, p: PadParams) -> np.ndarray:
    """[N, H, W, C] -> [N, OH, OW, C]: the input at (top, left), every other byte pad_value."""
    n, h, w, c = x.shape
    if p.top < 0 or p.left < 0 or p.top + h > p.output.h or p.left + w > p.output.w:
        raise ValueError("pad: input does not fit the output at (top, left)")
    out = np.full((n, p.output.h, p.output.w, c), p.pad_value, dtype=np.int8)
    out[:, p.top:p.top + h, p.left:p.left + w] = x
    return out


def lower(node: PadNode, graph: Graph, opts: LowerOptions) -> Lowered:
    _, go = grids(graph, node)
    params = PadParams(HWC.of(graph.tensors[node.inputs[0]].shape), HWC.of(graph.tensors[node.output].shape),
                       go.zero_point, node.padding[0], node.padding[1])
    return Lowered((Op(FAMILY.kernels[None], node.name, node.inputs, node.output, params),))


FAMILY = OpFamily(
    name="pad",
    params_type=PadParams,
    kernels={None: "tr_pad_s8"},
    arrays=(),
    inputs_per_call=1,
    reference=lambda op: lambda xs: pad(xs[0].reshape(-1, op.params.input.h, op.params.input.w, op.params.input.c),
                                        op.params),
    macs=lambda p: 0,
)
