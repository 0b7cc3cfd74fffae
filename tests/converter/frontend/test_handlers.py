"""converter/frontend (walk.py + handlers.py) on tiny untrained tf-keras / QKeras models: each Keras
layer becomes the IR nodes it should ('same' padding exactly as TensorFlow pads, built-in activations
as separate nodes, separable convs as depthwise + pointwise), and what cannot be deployed is refused
naming the layer."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest

from tinyrobust.converter.frontend import build_graph  # sets TF_USE_LEGACY_KERAS before TensorFlow loads
from tinyrobust.converter.frontend.handlers import PRE_ACTIVATION, SEPARABLE_MID, same_padding
from tinyrobust.converter.ir import ActivationNode, ConcatNode, ConvNode, Graph, InputNode, PoolNode
from tinyrobust.errors import UnsupportedModelError

keras: Any = importlib.import_module("tf_keras")  # only after the frontend import above
qkeras: Any = importlib.import_module("qkeras")
kl = keras.layers


def _functional(inputs: Any, outputs: Any, name: str = "m") -> Graph:
    return build_graph(keras.Model(inputs, outputs), name)


def _kinds(graph: Graph) -> list[str]:
    return [type(n).__name__ for n in graph.nodes]


def _numpy_conv(x: np.ndarray, kernel: np.ndarray, strides: tuple[int, int],
                padding: tuple[int, int, int, int]) -> np.ndarray:
    """Plain valid convolution of an explicitly zero-padded (H, W, C_in) input."""
    top, left, bottom, right = padding
    xp = np.pad(x, ((top, bottom), (left, right), (0, 0)))
    kh, kw, _, cout = kernel.shape
    oh = (xp.shape[0] - kh) // strides[0] + 1
    ow = (xp.shape[1] - kw) // strides[1] + 1
    out = np.zeros((oh, ow, cout))
    for i in range(oh):
        for j in range(ow):
            win = xp[i * strides[0]:i * strides[0] + kh, j * strides[1]:j * strides[1] + kw]
            out[i, j] = np.tensordot(win, kernel, axes=3)
    return out


@pytest.mark.parametrize("hw,kernel,strides", [
    ((6, 7), (3, 2), (2, 1)),  # odd total padding: the extra row/column goes after (bottom/right)
    ((5, 5), (3, 3), (1, 1)),
    ((8, 9), (4, 5), (3, 2)),
    ((4, 4), (1, 1), (2, 2)),  # no padding at all
])
def test_same_padding_is_what_tensorflow_pads(hw: tuple[int, int], kernel: tuple[int, int],
                                              strides: tuple[int, int]) -> None:
    """The IR padding, applied explicitly before a valid convolution, reproduces Keras's 'same' output."""
    inp = keras.Input((*hw, 2))
    conv = kl.Conv2D(3, kernel, strides=strides, padding="same", use_bias=False, name="conv")
    model = keras.Model(inp, conv(inp))
    graph = build_graph(model, "m")
    node = graph.producer("conv")
    assert isinstance(node, ConvNode) and node.kind == "conv2d" and node.strides == strides
    x = np.random.default_rng(0).normal(size=(1, *hw, 2)).astype(np.float32)
    want = model(x).numpy()[0]
    got = _numpy_conv(x[0].astype(np.float64), conv.kernel.numpy().astype(np.float64), strides, node.padding)
    assert got.shape == want.shape == graph.tensors["conv"].shape
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_same_padding_by_hand() -> None:
    """6 rows, kernel 3, stride 2: 3 outputs, 1 padded row, after the input (TensorFlow's rule)."""
    assert same_padding(6, 3, 2) == (3, 0, 1)
    assert same_padding(5, 3, 1) == (5, 1, 1)
    assert same_padding(4, 1, 2) == (2, 0, 0)


def test_valid_padding_is_zero() -> None:
    inp = keras.Input((5, 5, 1))
    graph = _functional(inp, kl.Conv2D(2, 3, padding="valid", name="c")(inp))
    assert graph.producer("c").padding == (0, 0, 0, 0) and graph.tensors["c"].shape == (3, 3, 2)


def test_conv_with_an_activation_becomes_conv_plus_activation() -> None:
    inp = keras.Input((4, 4, 1), name="img")
    graph = _functional(inp, kl.Conv2D(2, 3, padding="same", activation="relu", name="c")(inp))
    assert _kinds(graph) == ["InputNode", "ConvNode", "ActivationNode"]
    conv, act = graph.nodes[1], graph.nodes[2]
    assert isinstance(conv, ConvNode) and isinstance(act, ActivationNode)
    assert conv.output == "c" + PRE_ACTIVATION and conv.activation.kind == "linear" and conv.inputs == ("img",)
    assert act.name == "c" and act.inputs == (conv.output,) and act.output == "c" and act.activation.kind == "relu"
    assert graph.tensors[conv.output].shape == graph.tensors["c"].shape == (4, 4, 2)
    assert graph.input == "img" and graph.output == "c"


def test_qdense_with_a_quantized_activation_carries_its_grid() -> None:
    """QDense(ternary, activation quantized_relu(4, 2)): a dense node plus a quantizer activation with
    the 16-level grid [0, 3.75]; the ternary weights are what QKeras's quantizer gives."""
    inp = keras.Input((6,))
    layer = qkeras.QDense(3, kernel_quantizer=qkeras.ternary(alpha=1), activation=qkeras.quantized_relu(4, 2),
                          name="qd")
    graph = _functional(inp, layer(inp))
    assert _kinds(graph) == ["InputNode", "ConvNode", "ActivationNode"]
    dense, act = graph.nodes[1], graph.nodes[2]
    assert dense.kind == "dense" and dense.weights.kind == "ternary" and dense.weights.quantizer == "ternary"
    assert set(np.unique(dense.weights.values)) <= {-1.0, 0.0, 1.0}
    assert act.activation.kind == "quantized" and act.activation.grid is not None
    g = act.activation.grid
    assert (g.scale, g.zero_point, g.qmin, g.qmax) == (0.25, -128, -128, -113)


def test_separable_conv_becomes_depthwise_then_pointwise() -> None:
    inp = keras.Input((5, 5, 3))
    layer = kl.SeparableConv2D(4, 3, depth_multiplier=2, padding="same", name="sep")
    graph = _functional(inp, layer(inp))
    assert _kinds(graph) == ["InputNode", "ConvNode", "ConvNode"]
    dw, pw = graph.nodes[1], graph.nodes[2]
    mid = "sep" + SEPARABLE_MID
    assert (dw.name, dw.kind, dw.output, dw.padding) == (mid, "depthwise", mid, (1, 1, 1, 1))
    assert (pw.name, pw.kind, pw.inputs, pw.output, pw.padding) == ("sep", "conv2d", (mid,), "sep", (0, 0, 0, 0))
    assert graph.tensors[mid].shape == (5, 5, 6) and graph.tensors["sep"].shape == (5, 5, 4)
    np.testing.assert_array_equal(dw.weights.values, layer.depthwise_kernel.numpy())
    np.testing.assert_array_equal(pw.weights.values, layer.pointwise_kernel.numpy())
    assert pw.weights.values.shape == (1, 1, 6, 4)
    np.testing.assert_array_equal(dw.post_bias, np.zeros(6))
    np.testing.assert_array_equal(pw.post_bias, layer.bias.numpy())


def test_dense_on_a_multi_dimensional_input_is_refused() -> None:
    inp = keras.Input((4, 5))
    with pytest.raises(UnsupportedModelError, match=r"layer 'fc' \(Dense\): Dense on a 2-D input; Flatten first"):
        _functional(inp, kl.Dense(3, name="fc")(inp))


def test_relu_with_max_value_is_a_table_of_the_layer() -> None:
    """ReLU(max_value, negative_slope, threshold) is no plain relu: a table of the layer's own call."""
    inp = keras.Input((4,))
    graph = _functional(inp, kl.ReLU(max_value=6.0, negative_slope=0.5, threshold=1.0, name="relu6")(inp))
    act = graph.nodes[-1].activation
    assert act.kind == "table" and act.grid is None and act.table is not None and not act.table.quantizer
    x = np.array([-2.0, 0.5, 1.0, 3.0, 9.0])
    # Keras's own edge case, which the layer's call keeps: exactly at the threshold the output is 0.
    np.testing.assert_allclose(act.table.evaluate(x), [-1.5, -0.25, 0.0, 3.0, 6.0])


def test_plain_relu_is_an_activation() -> None:
    inp = keras.Input((4,))
    graph = _functional(inp, kl.ReLU(name="r")(inp))
    assert graph.nodes[-1].activation.kind == "relu"


def test_add_with_broadcasting_is_refused() -> None:
    inp = keras.Input((4, 4, 2))
    small = kl.AveragePooling2D(4, name="small")(inp)  # (1, 1, 2)
    with pytest.raises(UnsupportedModelError, match=r"layer 'add' \(Add\): Add with broadcasting"):
        _functional(inp, kl.Add(name="add")([inp, small]))


def test_concatenate_on_a_spatial_axis_is_refused() -> None:
    inp = keras.Input((4, 4, 2))
    with pytest.raises(UnsupportedModelError, match=r"layer 'cat' \(Concatenate\): only channel concatenation"):
        _functional(inp, kl.Concatenate(axis=1, name="cat")([inp, inp]))


@pytest.mark.parametrize("axis", [-1, 3])
def test_concatenate_on_channels_is_a_concat(axis: int) -> None:
    inp = keras.Input((4, 4, 2))
    a = kl.Conv2D(3, 1, name="a")(inp)
    graph = _functional(inp, kl.Concatenate(axis=axis, name="cat")([inp, a]))
    cat = graph.producer("cat")
    assert isinstance(cat, ConcatNode) and cat.inputs == (graph.input, "a")
    assert graph.tensors["cat"].shape == (4, 4, 5)


def test_global_average_pooling_is_a_global_pool() -> None:
    inp = keras.Input((3, 5, 2))
    graph = _functional(inp, kl.GlobalAveragePooling2D(name="gap")(inp))
    pool = graph.producer("gap")
    assert isinstance(pool, PoolNode)
    assert (pool.kind, pool.pool, pool.strides, pool.padding, pool.global_pool) == (
        "avg", (3, 5), (3, 5), (0, 0, 0, 0), True)
    assert graph.tensors["gap"].shape == (2,)


def test_an_unsupported_layer_names_the_layer_and_class() -> None:
    inp = keras.Input((4, 4, 1))
    with pytest.raises(UnsupportedModelError, match=r"layer 'up' has unsupported class UpSampling2D; supported: "):
        _functional(inp, kl.UpSampling2D(name="up")(inp))


def test_sequential_model_gets_an_input_node() -> None:
    """Sequential models list no InputLayer: the walk adds one named 'input'; layers chain by tensor."""
    model = keras.Sequential([keras.Input((6,)), kl.Dense(4, name="d1"), kl.Dropout(0.5, name="drop"),
                              kl.Dense(2, name="d2")])
    graph = build_graph(model, "seq")
    assert isinstance(graph.nodes[0], InputNode) and graph.input == "input"
    assert [(n.name, getattr(n, "inputs", ())) for n in graph.nodes[1:]] == [
        ("d1", ("input",)), ("drop", ("d1",)), ("d2", ("drop",))]
    assert _kinds(graph)[2] == "IdentityNode" and graph.output == "d2" and graph.name == "seq"


def test_several_inputs_and_outputs_keep_the_models_order() -> None:
    """The graph's inputs are model.inputs in order (here the reverse of the layers' creation), each an
    InputNode at the head of the graph; the outputs are model.outputs in order."""
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    da, db = kl.Dense(4, name="da")(a), kl.Dense(4, name="db")(b)
    cat = kl.Concatenate(name="cat")([da, db])
    graph = _functional([b, a], [kl.Dense(2, name="head2")(cat), kl.Dense(3, name="head1")(cat)])
    assert graph.inputs == ("b", "a") and graph.outputs == ("head2", "head1")
    assert [(type(n).__name__, n.output) for n in graph.nodes[:2]] == [("InputNode", "b"), ("InputNode", "a")]
    assert graph.tensors["b"].shape == (2,) and graph.producer("da").inputs == ("a",)
    with pytest.raises(UnsupportedModelError, match="has 2 inputs; this step takes one"):
        _ = graph.input


@pytest.mark.parametrize("case", ["input as output", "output twice"])
def test_outputs_with_nothing_to_deploy_are_refused(case: str) -> None:
    inp = keras.Input((3,), name="x")
    d = kl.Dense(2, name="d")(inp)
    outputs, match = {"input as output": ([d, inp], "a model input is also a model output"),
                      "output twice": ([d, d], r"lists one tensor as several outputs \(d, d\)")}[case]
    with pytest.raises(UnsupportedModelError, match=match):
        _functional(inp, outputs)
