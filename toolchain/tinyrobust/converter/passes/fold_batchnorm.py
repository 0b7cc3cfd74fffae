"""Fold inference BatchNorm into the producing conv/dense's per-channel scale and bias.

The ternary codes are never touched: BN only rescales post_scale/post_bias, and a negative BN
scale later flips the sign of that channel's codes in lowering, keeping the multiplier positive.
"""

from __future__ import annotations

from dataclasses import replace

from ..ir import BatchNormNode, ConvNode, Graph
from .rewire import merge_into_producer, single_consumer


def fold_batchnorm(graph: Graph) -> Graph:
    for node in graph.nodes:
        if not isinstance(node, BatchNormNode):
            continue
        producer = graph.producer(node.inputs[0])
        if (
            isinstance(producer, ConvNode)
            and producer.activation.kind == "linear"
            and single_consumer(graph, producer.output) is node
        ):
            merged = replace(
                producer,
                output=node.output,
                post_scale=producer.post_scale * node.scale,
                post_bias=producer.post_bias * node.scale + node.offset,
            )
            return fold_batchnorm(merge_into_producer(graph, producer, node, merged))
    return graph
