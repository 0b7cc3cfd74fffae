"""Lower a legal, quantised Graph to the integer Program, one IR node at a time.

Which op family lowers a node is looked up by the node's class (and, for a conv-like node, its
kind; for an activation, its function): the families in ops/ do the arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import UnsupportedModelError
from .ir import (
    ActivationNode,
    AddNode,
    BatchNormNode,
    ConcatNode,
    ConvNode,
    Graph,
    Grid,
    InputNode,
    MulNode,
    Node,
    PadNode,
    PoolNode,
    ReshapeNode,
)
from .ops import add, concat, convolve, depthwise_conv, fully_connected, lut, mul, pad, pool, requantize
from .ops.lowering import Lowered, LowerOptions, grids
from .program import InputQuantization, Program, TensorSpec

Lowering = Callable[[Node, Graph, LowerOptions], Lowered]

CONV_LOWERINGS: dict[str, Lowering] = {
    "conv2d": convolve.lower,
    "depthwise": depthwise_conv.lower,
    "dense": fully_connected.lower,
}


def _lower_conv(node: ConvNode, graph: Graph, opts: LowerOptions) -> Lowered:
    return CONV_LOWERINGS[node.kind](node, graph, opts)


# An output further than this (in output steps) from the quantizer's own value is reported: above
# float32 noise, far below any real approximation.
EXACT_STEPS = 1e-3


def _lower_table(node: ActivationNode, gi: Grid, go: Grid, shape: tuple[int, ...]) -> Lowered:
    """The activation itself on every input level, rounded onto the output grid. A quantizer's levels
    are the model's statement: where the grid cannot hold them exactly, a note says by how much."""
    act = node.activation
    assert act.table is not None
    y = act.table.evaluate(lut.input_levels(gi))
    entries = lut.onto_grid(y, go)
    op = lut.table_op(node.name, node.inputs[0], node.output, entries, shape)
    off = lut.off_grid_steps(y, entries, gi, go)
    if not act.table.quantizer or off <= EXACT_STEPS:
        return Lowered((op,))
    note = (f"layer '{node.name}': {act.description} has output levels no int8 grid holds exactly; deployed "
            f"on a grid of step {go.scale:.6g} over [{go.real_min:.6g}, {go.real_max:.6g}], at most "
            f"{off:.3g} output steps ({off * go.scale:.4g}) from the quantizer's value")
    return Lowered((op,), notes=(note,))


def _lower_activation(node: ActivationNode, graph: Graph, opts: LowerOptions) -> Lowered:
    """sigmoid / tanh and other elementwise functions become a table; relu and quantizers that round onto
    a uniform grid a requantisation onto the output grid."""
    (gi,), go = grids(graph, node)
    shape = graph.tensors[node.output].shape
    kind = node.activation.kind
    if kind == "table":
        return _lower_table(node, gi, go, shape)
    if kind in lut.FUNCTIONS:
        return Lowered((lut.lut_op(node.name, node.inputs[0], node.output, kind, gi, go, shape),))
    if kind in ("relu", "quantized"):
        return Lowered((requantize.requantize_op(node.name, node.inputs[0], node.output, gi, go, kind == "relu",
                                                 shape),))
    raise UnsupportedModelError(f"layer '{node.name}': activation {kind} cannot be lowered here")


LOWERINGS: dict[type, Lowering] = {
    ConvNode: _lower_conv,
    BatchNormNode: depthwise_conv.lower_batchnorm,
    ActivationNode: _lower_activation,
    AddNode: add.lower,
    MulNode: mul.lower,
    PoolNode: pool.lower,
    PadNode: pad.lower,
    ConcatNode: concat.lower,
}


def lower(graph: Graph, opts: LowerOptions) -> Program:
    tensors: dict[str, TensorSpec] = {}
    ops = []
    notes = list(graph.notes)
    for node in graph.nodes:
        info = graph.tensors[node.output]
        grid = info.grid
        assert grid is not None
        alias = node.inputs[0] if isinstance(node, ReshapeNode) else None
        tensors[node.output] = TensorSpec(node.output, tuple(info.shape), grid.scale, grid.zero_point, info.source,
                                          alias, grid.bits)
        if isinstance(node, InputNode | ReshapeNode):
            continue
        lowering = LOWERINGS.get(type(node))
        if lowering is None:
            raise UnsupportedModelError(f"layer '{node.name}': {type(node).__name__} cannot be lowered")
        lowered = lowering(node, graph, opts)
        for t in lowered.tensors:
            tensors[t.name] = TensorSpec(t.name, tuple(t.shape), t.grid.scale, t.grid.zero_point, t.source,
                                         bits=t.grid.bits)
        ops.extend(lowered.ops)
        notes.extend(lowered.notes)
    in_grids = []
    for t in graph.inputs:
        g = graph.tensors[t].grid
        assert g is not None
        in_grids.append(g)
    return Program(
        tensors=tensors,
        ops=tuple(ops),
        inputs=graph.inputs,
        outputs=graph.outputs,
        input_quantizations=tuple(InputQuantization(g.scale, g.zero_point, g.qmin, g.qmax, g.origin)
                                  for g in in_grids),
        packing=opts.ternary_format,
        model_name=graph.name,
        notes=tuple(notes),
    )
