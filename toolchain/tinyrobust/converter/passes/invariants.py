"""Checks run after every pass: a pass that breaks the graph fails loudly, naming itself."""

from __future__ import annotations

import numpy as np

from ...errors import InternalError
from ..ir import ActivationNode, ConvNode, Graph, IdentityNode, InputNode


class InvariantError(InternalError):
    """A pass broke the graph: a bug in tinyrobust, named by the pass."""


def check_graph(graph: Graph, after: str, *, quantized: bool = False) -> None:
    def fail(msg: str) -> None:
        raise InvariantError(f"after pass '{after}': {msg}")

    heads = graph.nodes[:len(graph.inputs)]
    if not graph.inputs or len(heads) != len(graph.inputs) or any(
            not isinstance(n, InputNode) or n.output != t for n, t in zip(heads, graph.inputs, strict=True)):
        fail("the first node must be the input (with several, the first nodes are the inputs, in order)")
    seen: set[str] = set()
    for node in graph.nodes:
        if not isinstance(node, InputNode):
            for t in node.inputs:
                if t not in seen:
                    fail(f"node '{node.name}' reads '{t}' before it is produced")
        if node.output in seen:
            fail(f"tensor '{node.output}' is produced twice")
        if node.output not in graph.tensors:
            fail(f"tensor '{node.output}' has no TensorInfo")
        seen.add(node.output)
        if isinstance(node, ConvNode) and node.weights.codes is not None:
            codes = node.weights.codes
            if node.weights.kind == "ternary" and not np.isin(codes, (-1, 0, 1)).all():
                fail(f"layer '{node.name}': ternary codes outside {{-1, 0, 1}}")
            if node.weights.kind == "binary" and not np.isin(codes, (-1, 1)).all():
                fail(f"layer '{node.name}': binary codes outside {{-1, 1}}")
            scale = node.weights.channel_scale
            if scale is None or np.any(scale < 0):
                fail(f"layer '{node.name}': channel scales missing or negative")
    for output in graph.outputs:
        if output not in seen:
            fail(f"graph output '{output}' is not produced")
    if len(set(graph.outputs)) != len(graph.outputs):
        fail(f"graph outputs {graph.outputs} name a tensor twice")
    if quantized:
        for node in graph.nodes:
            if isinstance(node, IdentityNode):
                fail(f"identity '{node.name}' survived")
            if isinstance(node, ActivationNode) and node.activation.kind in ("linear", "softmax"):
                fail(f"activation '{node.name}' ({node.activation.kind}) survived")
            if graph.tensors[node.output].grid is None:
                fail(f"tensor '{node.output}' has no grid")
