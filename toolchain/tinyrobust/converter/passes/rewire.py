"""Small graph-editing helpers shared by the passes (each returns a new Graph)."""

from __future__ import annotations

from dataclasses import replace

from ..ir import Graph, Node, rename_input


def drop_node(graph: Graph, node: Node, replacement_tensor: str) -> Graph:
    """Remove `node`; its consumers (and the graph output) read `replacement_tensor` instead."""
    old = node.output
    nodes = tuple(rename_input(n, old, replacement_tensor) for n in graph.nodes if n is not node)
    tensors = {k: v for k, v in graph.tensors.items() if k != old}
    outputs = tuple(replacement_tensor if t == old else t for t in graph.outputs)
    return replace(graph, nodes=nodes, tensors=tensors, outputs=outputs)


def merge_into_producer(graph: Graph, producer: Node, consumer: Node, merged: Node) -> Graph:
    """Replace `producer` by `merged` (which writes consumer's output) and drop `consumer`;
    the producer's old output tensor disappears."""
    nodes = tuple(merged if n is producer else n for n in graph.nodes if n is not consumer)
    tensors = {k: v for k, v in graph.tensors.items() if k != producer.output}
    return replace(graph, nodes=nodes, tensors=tensors)


def single_consumer(graph: Graph, tensor: str) -> Node | None:
    """The only consumer of `tensor`, or None when it has several, none, or is a graph output."""
    if tensor in graph.outputs:
        return None
    consumers = graph.consumers(tensor)
    return consumers[0] if len(consumers) == 1 else None

