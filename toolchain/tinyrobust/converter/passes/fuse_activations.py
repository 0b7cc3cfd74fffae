"""Fuse relu / quantized activations into the conv, dense, add or multiply that produces their input:
the activation becomes that op's output clamp and, for a quantizer, its output grid. A relu followed by a
quantizer with no negative levels (quantized_relu) is that quantizer alone: the relu goes, so a
QConv2D(activation="relu") before a QActivation needs no calibration and no extra requantisation."""

from __future__ import annotations

from dataclasses import replace

from ..ir import Activation, ActivationNode, AddNode, ConvNode, Graph, MulNode
from .rewire import drop_node, merge_into_producer, single_consumer

FUSABLE = ("relu", "quantized")


def _absorbs_relu(activation: Activation) -> bool:
    """A quantizer whose levels are all ≥ 0 already does what a relu before it does."""
    return activation.kind == "quantized" and activation.grid is not None and activation.grid.real_min >= 0


def _can_take(current: Activation, new: Activation) -> bool:
    """Whether an op whose activation is `current` can apply `new` instead, with the same result."""
    return current.kind == "linear" or (current.kind == "relu" and _absorbs_relu(new))


def fuse_activations(graph: Graph) -> Graph:
    for node in graph.nodes:
        if not (isinstance(node, ActivationNode) and node.activation.kind in FUSABLE):
            continue
        producer = graph.producer(node.inputs[0])
        if single_consumer(graph, producer.output) is not node:
            continue
        if isinstance(producer, ActivationNode) and producer.activation.kind == "relu" and _absorbs_relu(
                node.activation):
            return fuse_activations(drop_node(graph, producer, producer.inputs[0]))
        if isinstance(producer, ConvNode | AddNode | MulNode) and _can_take(producer.activation, node.activation):
            merged = replace(producer, output=node.output, activation=node.activation)
            return fuse_activations(merge_into_producer(graph, producer, node, merged))
    return graph
