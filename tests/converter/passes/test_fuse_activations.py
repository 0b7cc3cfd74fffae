"""passes/fuse_activations.py on hand-built graphs: a relu or quantizer activation fuses into the
conv / dense / add / multiply that produces its input when that producer is linear and read by nothing else;
sigmoid, tanh and every other producer keep the activation as a node."""

from __future__ import annotations

import numpy as np
import pytest

from tinyrobust.converter.ir import (
    Activation,
    ActivationNode,
    AddNode,
    ConvNode,
    Graph,
    Grid,
    InputNode,
    MulNode,
    Node,
    PoolNode,
    TensorInfo,
    WeightTensor,
)
from tinyrobust.converter.passes.fuse_activations import fuse_activations

LINEAR = Activation("linear")
RELU = Activation("relu", None, "relu")
QRELU = Activation("quantized", Grid.from_levels(0.0, 0.25, 16, "quantized_relu(4,2)"), "quantized_relu(4,2)")


def _conv(name: str, inp: str, kind: str = "conv2d", activation: Activation = LINEAR) -> ConvNode:
    shape = (1, 1, 2, 2) if kind != "depthwise" else (1, 1, 2, 1)
    w = WeightTensor(np.ones(shape), "ternary", "ternary")
    return ConvNode(name, (inp,), name, kind, w, np.ones(2), np.zeros(2), activation=activation)  # type: ignore[arg-type]


def _graph(nodes: list[Node], output: str | None = None) -> Graph:
    tensors = {n.output: TensorInfo(n.output, (2, 2, 2), f"layer {n.output}") for n in nodes}
    return Graph(tuple(nodes), tensors, ("x",), (output or nodes[-1].output,), "g")


def _types(graph: Graph) -> list[str]:
    return [type(n).__name__ for n in graph.nodes]


@pytest.mark.parametrize("activation", [RELU, QRELU])
@pytest.mark.parametrize("kind", ["conv2d", "depthwise", "dense"])
def test_activation_fuses_into_a_linear_conv(kind: str, activation: Activation) -> None:
    g = _graph([InputNode("x", "x"), _conv("c", "x", kind), ActivationNode("act", ("c",), "act", activation)])
    out = fuse_activations(g)
    assert _types(out) == ["InputNode", "ConvNode"]
    fused = out.nodes[1]
    assert isinstance(fused, ConvNode)
    assert fused.name == "c" and fused.output == "act" and fused.activation == activation
    assert set(out.tensors) == {"x", "act"} and out.output == "act"


@pytest.mark.parametrize("activation", [RELU, QRELU])
@pytest.mark.parametrize("elementwise", [AddNode, MulNode])
def test_activation_fuses_into_an_add_or_multiply(elementwise: type, activation: Activation) -> None:
    g = _graph([InputNode("x", "x"), _conv("a", "x"), _conv("b", "x"), elementwise("s", ("a", "b"), "s"),
                ActivationNode("act", ("s",), "act", activation)])
    out = fuse_activations(g)
    assert _types(out) == ["InputNode", "ConvNode", "ConvNode", elementwise.__name__]
    assert out.nodes[3].activation == activation and out.nodes[3].output == "act"
    assert out.nodes[3].activation.grid == activation.grid


def test_a_chain_fuses_every_legal_pair() -> None:
    """c1 → relu → c2 → quantizer: both activations fused; c2 now reads c1's fused output."""
    g = _graph([InputNode("x", "x"), _conv("c1", "x"), ActivationNode("r", ("c1",), "r", RELU),
                _conv("c2", "r"), ActivationNode("q", ("c2",), "q", QRELU)])
    out = fuse_activations(g)
    assert [(n.name, n.output) for n in out.nodes] == [("x", "x"), ("c1", "r"), ("c2", "q")]
    assert out.nodes[2].inputs == ("r",)
    assert [n.activation.kind for n in out.nodes[1:]] == ["relu", "quantized"]


@pytest.mark.parametrize("kind", ["sigmoid", "tanh"])
def test_table_activations_are_not_fused(kind: str) -> None:
    g = _graph([InputNode("x", "x"), _conv("c", "x"), ActivationNode("act", ("c",), "act", Activation(kind))])  # type: ignore[arg-type]
    assert fuse_activations(g) is g


def test_a_relu_before_a_non_negative_quantizer_is_absorbed() -> None:
    """QConv2D(activation="relu") then quantized_relu: the relu is redundant, the quantizer is fused (no
    float relu tensor left to calibrate); the same with a standalone ReLU node in between."""
    g = _graph([InputNode("x", "x"), _conv("c", "x", activation=RELU), ActivationNode("q", ("c",), "q", QRELU)])
    out = fuse_activations(g)
    assert _types(out) == ["InputNode", "ConvNode"] and out.nodes[1].activation == QRELU
    g = _graph([InputNode("x", "x"), _conv("c", "x"), ActivationNode("r", ("c",), "r", RELU),
                ActivationNode("q", ("r",), "q", QRELU)])
    out = fuse_activations(g)
    assert _types(out) == ["InputNode", "ConvNode"] and out.nodes[1].activation == QRELU


def test_a_relu_before_a_signed_quantizer_stays() -> None:
    """quantized_bits has negative levels: the relu's clamp and the grid are both needed, so they stay apart."""
    signed = Activation("quantized", Grid.from_levels(-1.0, 1 / 128, 256, "quantized_bits(8,0)"), "quantized_bits")
    g = _graph([InputNode("x", "x"), _conv("c", "x", activation=RELU), ActivationNode("q", ("c",), "q", signed)])
    out = fuse_activations(g)
    assert _types(out) == ["InputNode", "ConvNode", "ActivationNode"]
    assert out.nodes[1].activation == RELU


def test_a_producer_read_twice_is_not_fused() -> None:
    """The add reads the conv's pre-activation output: fusing would clamp what the add sees."""
    g = _graph([InputNode("x", "x"), _conv("c", "x"), ActivationNode("r", ("c",), "r", RELU),
                AddNode("s", ("r", "c"), "s")])
    out = fuse_activations(g)
    assert _types(out) == ["InputNode", "ConvNode", "ActivationNode", "AddNode"]
    assert out.nodes[1].activation.kind == "linear"


def test_activation_after_a_pool_or_the_input_is_not_fused() -> None:
    pool = PoolNode("mp", ("x",), "mp", "max", (1, 1), (1, 1), (0, 0, 0, 0))
    g = _graph([InputNode("x", "x"), pool, ActivationNode("r", ("mp",), "r", RELU)])
    assert fuse_activations(g) is g
    g2 = _graph([InputNode("x", "x"), ActivationNode("q", ("x",), "q", QRELU)])
    assert fuse_activations(g2) is g2
