"""passes/fold_batchnorm.py on hand-built graphs: an inference BatchNorm after a conv/dense with a
linear activation and no other reader folds into its post_scale/post_bias (codes untouched, also for
a negative scale); in every other case the BatchNorm stays a node of its own."""

from __future__ import annotations

import numpy as np
import pytest

from tinyrobust.converter.ir import (
    Activation,
    ActivationNode,
    AddNode,
    BatchNormNode,
    ConvNode,
    Graph,
    InputNode,
    Node,
    TensorInfo,
    WeightTensor,
)
from tinyrobust.converter.passes.fold_batchnorm import fold_batchnorm

PS = np.array([1.0, 2.0, 0.5])
PB = np.array([0.1, -0.2, 0.0])
BN_SCALE = np.array([2.0, -0.5, 3.0])
BN_OFFSET = np.array([1.0, 0.25, -1.0])


def _dense(name: str, inp: str, activation: str = "linear", codes: bool = False) -> ConvNode:
    values = np.array([[0.3, -0.3, 0.0], [0.0, 0.7, -0.2], [-0.3, 0.0, 0.2], [0.3, 0.7, 0.0]])
    w = WeightTensor(values, "ternary", "ternary")
    if codes:
        w = WeightTensor(values, "ternary", "ternary", np.sign(values).astype(np.int8), np.array([0.3, 0.7, 0.2]))
    return ConvNode(name, (inp,), name, "dense", w, PS.copy(), PB.copy(), activation=Activation(activation))  # type: ignore[arg-type]


def _bn(name: str, inp: str, scale: np.ndarray = BN_SCALE, offset: np.ndarray = BN_OFFSET) -> BatchNormNode:
    return BatchNormNode(name, (inp,), name, scale, offset)


def _graph(nodes: list[Node], output: str | None = None) -> Graph:
    shapes = {n.output: (4,) if isinstance(n, InputNode) else (3,) for n in nodes}
    tensors = {t: TensorInfo(t, s, f"layer {t}") for t, s in shapes.items()}
    return Graph(tuple(nodes), tensors, ("x",), (output or nodes[-1].output,), "g")


def test_batchnorm_folds_into_the_conv_scale_and_bias() -> None:
    """post_scale·s and post_bias·s + offset; the conv now writes the BN's tensor; weights untouched."""
    conv = _dense("fc", "x")
    g = _graph([InputNode("x", "x"), conv, _bn("bn", "fc")])
    out = fold_batchnorm(g)
    assert [n.name for n in out.nodes] == ["x", "fc"]
    folded = out.nodes[1]
    assert isinstance(folded, ConvNode) and folded.output == "bn" and out.output == "bn"
    np.testing.assert_allclose(folded.post_scale, PS * BN_SCALE)
    np.testing.assert_allclose(folded.post_bias, PB * BN_SCALE + BN_OFFSET)
    assert folded.weights is conv.weights
    assert set(out.tensors) == {"x", "bn"}


def test_negative_scale_leaves_the_codes_alone() -> None:
    """A negative BN scale (channel 1) goes into post_scale; the ternary codes are not flipped here."""
    conv = _dense("fc", "x", codes=True)
    out = fold_batchnorm(_graph([InputNode("x", "x"), conv, _bn("bn", "fc")]))
    folded = out.nodes[1]
    assert isinstance(folded, ConvNode)
    assert folded.post_scale[1] == pytest.approx(2.0 * -0.5)
    assert folded.weights.codes is conv.weights.codes
    np.testing.assert_array_equal(folded.weights.codes, np.sign(conv.weights.values))
    np.testing.assert_array_equal(folded.weights.channel_scale, [0.3, 0.7, 0.2])


def test_two_batchnorms_in_a_row_both_fold() -> None:
    s2, o2 = np.array([0.5, 0.5, 2.0]), np.array([0.0, 1.0, 0.0])
    out = fold_batchnorm(_graph([InputNode("x", "x"), _dense("fc", "x"), _bn("bn1", "fc"), _bn("bn2", "bn1", s2, o2)]))
    assert [n.name for n in out.nodes] == ["x", "fc"]
    np.testing.assert_allclose(out.nodes[1].post_scale, PS * BN_SCALE * s2)
    np.testing.assert_allclose(out.nodes[1].post_bias, (PB * BN_SCALE + BN_OFFSET) * s2 + o2)


def test_a_downstream_reader_of_the_batchnorm_reads_the_conv() -> None:
    out = fold_batchnorm(_graph([InputNode("x", "x"), _dense("fc", "x"), _bn("bn", "fc"),
                                 ActivationNode("r", ("bn",), "r", Activation("relu"))]))
    assert [n.name for n in out.nodes] == ["x", "fc", "r"]
    assert out.producer("r").inputs == ("bn",) and out.producer("bn").name == "fc"


def test_conv_read_by_another_layer_keeps_its_batchnorm() -> None:
    """The conv's pre-BN output is also read by an add: folding would change what the add sees."""
    g = _graph([InputNode("x", "x"), _dense("fc", "x"), _bn("bn", "fc"), AddNode("s", ("bn", "fc"), "s")])
    out = fold_batchnorm(g)
    assert [n.name for n in out.nodes] == ["x", "fc", "bn", "s"]
    np.testing.assert_array_equal(out.nodes[1].post_scale, PS)


@pytest.mark.parametrize("activation", ["relu", "quantized", "sigmoid"])
def test_conv_with_an_activation_keeps_its_batchnorm(activation: str) -> None:
    """BN after a nonlinearity is not a per-channel rescale of the conv's accumulator."""
    g = _graph([InputNode("x", "x"), _dense("fc", "x", activation), _bn("bn", "fc")])
    out = fold_batchnorm(g)
    assert [type(n).__name__ for n in out.nodes] == ["InputNode", "ConvNode", "BatchNormNode"]
    np.testing.assert_array_equal(out.nodes[1].post_bias, PB)


def test_batchnorm_after_a_non_conv_stays() -> None:
    g = _graph([InputNode("x", "x"), _dense("fc", "x"), ActivationNode("r", ("fc",), "r", Activation("relu")),
                _bn("bn", "r")])
    assert fold_batchnorm(g) is g
    g2 = _graph([InputNode("x", "x"), _bn("bn", "x")])
    assert fold_batchnorm(g2) is g2
