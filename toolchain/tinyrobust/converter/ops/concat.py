"""Channel concatenation: tr_concat_s8 (firmware/tr_nn/tr_concat_s8.c), called once per input at
increasing channel offsets. Inputs on another grid are first requantised onto the output's."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import ConcatNode, Graph
from .base import HWC, KernelCall, Op, OpFamily
from .lowering import Lowered, LowerOptions, NewTensor, grids
from .requantize import requantize_op


@dataclass(frozen=True)
class ConcatParams:
    output: HWC
    input_channels: tuple[int, ...]
    channel_offsets: tuple[int, ...]


@dataclass(frozen=True)
class ConcatCall:
    """One tr_concat_s8 call: copy an input [H, W, C_in] into the output at channel_offset."""

    input: HWC
    output: HWC
    channel_offset: int


def concat(xs: list[np.ndarray]) -> np.ndarray:
    """Inputs [N, H, W, C_i] (or any leading axes) joined along the channel (last) axis."""
    return np.concatenate([np.asarray(x, dtype=np.int8) for x in xs], axis=-1)


def lower(node: ConcatNode, graph: Graph, opts: LowerOptions) -> Lowered:
    in_grids, go = grids(graph, node)
    ops: list[Op] = []
    tensors: list[NewTensor] = []
    sources: list[str] = []
    for i, (t, gi) in enumerate(zip(node.inputs, in_grids, strict=True)):
        src = t
        if (gi.scale, gi.zero_point) != (go.scale, go.zero_point):
            src = f"{node.output}/requantized_{i}"
            shape = graph.tensors[t].shape
            tensors.append(NewTensor(src, shape, go, f"{node.name} (input {i} on the output grid)"))
            ops.append(requantize_op(f"{node.name}/requantize_{i}", t, src, gi, go, False, shape))
        sources.append(src)
    channels = tuple(int(graph.tensors[t].shape[-1]) for t in node.inputs)
    offsets = tuple(int(o) for o in np.cumsum((0, *channels[:-1])))
    params = ConcatParams(HWC.of(graph.tensors[node.output].shape), channels, offsets)
    ops.append(Op(FAMILY.kernels[None], node.name, tuple(sources), node.output, params))
    return Lowered(tuple(ops), tuple(tensors))


def _calls(op: Op) -> list[KernelCall]:
    p: ConcatParams = op.params
    return [
        KernelCall(op.kernel, ConcatCall(HWC(p.output.h, p.output.w, c), p.output, off), (i,))
        for i, (c, off) in enumerate(zip(p.input_channels, p.channel_offsets, strict=True))
    ]


FAMILY = OpFamily(
    name="concat",
    params_type=ConcatParams,
    kernels={None: "tr_concat_s8"},
    arrays=(),
    inputs_per_call=1,
    reference=lambda op: concat,
    macs=lambda p: 0,
    call_type=ConcatCall,
    calls=_calls,
)
