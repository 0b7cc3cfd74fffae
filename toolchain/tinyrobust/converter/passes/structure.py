"""Structural passes: identities away, final softmax away, zero padding folded into convs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from ...errors import UnsupportedModelError
from ..ir import ActivationNode, ConvNode, Graph, IdentityNode, PadNode
from .rewire import drop_node, single_consumer


def remove_identities(graph: Graph) -> Graph:
    """Dropout and linear activations carry no computation at inference."""
    for node in graph.nodes:
        if isinstance(node, IdentityNode) or (
            isinstance(node, ActivationNode) and node.activation.kind == "linear"
        ):
            return remove_identities(drop_node(graph, node, node.inputs[0]))
    return graph


def final_softmax_note(layer: str) -> str:
    """The Program's note that a final softmax was dropped; `dropped_final_softmax` reads it back."""
    return f"final softmax of '{layer}' not deployed: the output is int8 logits (same argmax)"


def dropped_final_softmax(notes: Iterable[str]) -> str | None:
    """The layer whose final softmax the conversion dropped (from a Program's notes, so an export directory
    says it too), or None: `validate --task auto` takes such a model for a classifier."""
    head, tail = final_softmax_note("\0").split("\0")
    for note in notes:
        if note.startswith(head) and note.endswith(tail) and len(note) > len(head) + len(tail):
            return note[len(head):-len(tail)]
    return None


def drop_final_softmax(graph: Graph) -> Graph:
    """softmax is monotonic: the firmware returns int8 logits, whose argmax is the class.
    Anywhere but at the output it would change values, so it is refused there."""
    for node in graph.nodes:
        if isinstance(node, ActivationNode) and node.activation.kind == "softmax":
            if node.output not in graph.outputs:
                raise UnsupportedModelError(
                    f"layer '{node.name}': softmax is only supported as the model's final activation"
                )
            if node.inputs[0] in graph.outputs:
                raise UnsupportedModelError(
                    f"layer '{node.name}': the model outputs both this softmax and its input; keep one"
                )
            dropped = drop_node(graph, node, node.inputs[0])
            # Every output may end in a softmax (one per head): drop them all.
            return drop_final_softmax(dropped.with_note(final_softmax_note(node.name)))
    return graph


def fold_zero_padding(graph: Graph) -> Graph:
    """ZeroPadding2D before a conv/depthwise becomes that conv's padding: padded taps read the input
    zero point, i.e. real 0, exactly what ZeroPadding2D inserts."""
    for node in graph.nodes:
        if not isinstance(node, PadNode):
            continue
        consumer = single_consumer(graph, node.output)
        if isinstance(consumer, ConvNode) and consumer.kind in ("conv2d", "depthwise"):
            pads = tuple(a + b for a, b in zip(consumer.padding, node.padding, strict=True))
            merged = replace(consumer, padding=pads)
            graph = replace(graph, nodes=tuple(merged if n is consumer else n for n in graph.nodes))
            return fold_zero_padding(drop_node(graph, node, node.inputs[0]))
    return graph
