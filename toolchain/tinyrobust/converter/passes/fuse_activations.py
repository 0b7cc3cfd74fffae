"""Fuse relu / quantized activations into the conv, dense, add or multiply that produces their input:
the activation becomes that op's output clamp and, for a quantizer, its output grid."""

from __future__ import annotations

from dataclasses import replace

from ..ir import ActivationNode, AddNode, ConvNode, Graph, MulNode
from .rewire import merge_into_producer, single_consumer

FUSABLE = ("relu", "quantized")


def fuse_activations(graph: Graph) -> Graph:
    for node in graph.nodes:
        if not (isinstance(node, ActivationNode) and node.activation.kind in FUSABLE):
            continue
        producer = graph.producer(node.inputs[0])
        if (
            isinstance(producer, ConvNode | AddNode | MulNode)
            and producer.activation.kind == "linear"
            and single_consumer(graph, producer.output) is node
        ):
            merged = replace(producer, output=node.output, activation=node.activation)
            return fuse_activations(merge_into_producer(graph, producer, node, merged))
    return graph
