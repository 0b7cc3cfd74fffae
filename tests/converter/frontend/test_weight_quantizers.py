"""Weight quantizers on their grids, on tiny QKeras models: quantized_po2 kernels and biases deploy exactly
(codes·scale equal Keras's quantized weights), quantized_ulaw kernels are approximated and the note says
so naming the layer, the quantized_bits / binary / ternary variants published models use deploy exactly,
QBatchNormalization with power-of-two quantizers folds to what Keras computes, and a weight quantizer
that does not fit int8 is refused naming the layer."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinyrobust.converter.frontend import build_graph  # sets TF_USE_LEGACY_KERAS before TensorFlow loads
from tinyrobust.converter.ir import ConvNode, Graph
from tinyrobust.converter.passes import run_structural
from tinyrobust.converter.pipeline import DeployedModel, convert
from tinyrobust.dataset import Dataset
from tinyrobust.errors import UnsupportedModelError

keras: Any = importlib.import_module("tf_keras")  # only after the frontend import above
q: Any = importlib.import_module("qkeras")
kl = keras.layers


def _node(graph: Graph, name: str) -> ConvNode:
    node = next(n for n in graph.nodes if isinstance(n, ConvNode) and n.name == name)
    assert node.weights.codes is not None and node.weights.channel_scale is not None
    return node


def _deployed_kernel(node: ConvNode) -> np.ndarray:
    return node.weights.codes * node.weights.channel_scale  # type: ignore[operator]


def _keras_kernel(layer: Any) -> np.ndarray:
    return np.asarray(layer.kernel_quantizer_internal(layer.kernel).numpy(), dtype=np.float64)


def _po2_values(rng: np.random.Generator, shape: tuple[int, ...], octaves: int) -> np.ndarray:
    """Random signs times 2^e, e in [−1 − octaves, −1]: every channel spans at most `octaves` octaves."""
    exponents = rng.integers(-1 - octaves, 0, shape)
    return (rng.choice([-1.0, 1.0], shape) * 2.0**exponents).astype(np.float32)


def _convert(model: Any, tmp_path: Path, x: np.ndarray) -> DeployedModel:
    path = tmp_path / "m.h5"
    model.save(path)
    # int8 activations: the output bounds below are in int8 output steps (the zoo covers these
    # quantizers at the default int16 fidelity)
    return convert(path, calibration=Dataset(x, None), fidelity="fast")


def test_po2_kernel_and_bias_deploy_exactly(tmp_path: Path) -> None:
    """QConv2D with quantized_po2(4, 1) kernel and bias (example_mnist_po2), each channel's weights
    within 7 octaves: codes·scale equal Keras's quantized kernel bit for bit, the folded bias equals its
    quantized bias, no note; the deployed model agrees with Keras."""
    rng = np.random.default_rng(0)
    inp = keras.Input((6, 6, 2))
    conv = q.QConv2D(4, (2, 2), strides=(2, 2), kernel_quantizer=q.quantized_po2(4, 1),
                     bias_quantizer=q.quantized_po2(4, 1), name="conv")
    dense = q.QDense(3, kernel_quantizer=q.quantized_bits(4, 0, 1), name="dense")
    model = keras.Model(inp, dense(kl.Flatten()(q.QActivation("quantized_relu(4,1)")(conv(inp)))))
    conv.set_weights([_po2_values(rng, (2, 2, 2, 4), 6), rng.normal(0, 0.2, 4).astype(np.float32)])
    x = rng.uniform(0, 1, (200, 6, 6, 2)).astype(np.float32)
    deployed = _convert(model, tmp_path, x)
    node = _node(deployed.graph, "conv")
    assert node.weights.quantizer == "quantized_po2" and node.weights.exact
    np.testing.assert_array_equal(_deployed_kernel(node), _keras_kernel(conv))
    want_bias = np.asarray(conv.bias_quantizer_internal(conv.bias).numpy(), dtype=np.float64)
    assert set(np.round(np.log2(np.abs(want_bias)), 9)) <= set(range(-8, 1))  # what QKeras gives: powers of two
    np.testing.assert_array_equal(node.post_bias, want_bias)
    assert not [n for n in deployed.program.notes if "int8 grid" in n]
    agree = np.mean(deployed.predict(x).argmax(1) == deployed.keras_predict(x).argmax(1))
    assert agree >= 0.97


def test_ulaw_kernel_is_approximated_and_the_note_names_the_layer(tmp_path: Path) -> None:
    """QDense with quantized_ulaw(4, 0, 1) weights (example_mnist_bn's dense layer): levels 0, ±0.7526,
    ±0.875 are on no one int8 grid, so the weights are approximated; the program's notes say so, naming
    the layer and the quantizer; every weight within half a step, the outputs close to Keras's."""
    rng = np.random.default_rng(1)
    inp = keras.Input((16,))
    dense = q.QDense(5, kernel_quantizer=q.quantized_ulaw(4, 0, 1), bias_quantizer=q.quantized_bits(4, 0, 1),
                     name="dense")
    model = keras.Model(inp, dense(inp))
    dense.set_weights([rng.normal(0, 1.5, (16, 5)).astype(np.float32), rng.normal(0, 0.3, 5).astype(np.float32)])
    x = rng.uniform(0, 1, (300, 16)).astype(np.float32)
    deployed = _convert(model, tmp_path, x)
    node = _node(deployed.graph, "dense")
    a = node.weights.approximation
    assert a is not None and a.of_channels == 5 and a.channels > 0 and a.moved > 0 and a.max_error_steps <= 0.5
    err = np.abs(_deployed_kernel(node) - _keras_kernel(dense))
    assert np.all(err <= node.weights.channel_scale / 2 + 1e-9)
    notes = [n for n in deployed.program.notes if "int8 grid" in n]
    assert len(notes) == 1 and notes[0].startswith("layer 'dense': quantized_ulaw(4,0,1) weights are not on one")
    assert f"{a.moved} of 80 weights moved" in notes[0]
    out = deployed.program.tensor(deployed.program.output)
    diff = np.abs(deployed.predict(x) - deployed.keras_predict(x))
    assert float(diff.max()) <= 3 * out.scale  # weights within a fraction of a step: logits within a few steps
    assert np.mean(deployed.predict(x).argmax(1) == deployed.keras_predict(x).argmax(1)) >= 0.97


@pytest.mark.parametrize("make", [
    lambda: q.quantized_bits(6, 2, 1),
    lambda: q.quantized_bits(4, 2, keep_negative=False, alpha=1),
    lambda: q.quantized_bits(4, 0, keep_negative=False),
    lambda: q.quantized_bits(4, 0, 1, alpha=1),
    lambda: q.quantized_bits(4, 0, 1, alpha="auto"),
    lambda: q.quantized_bits(8, 0, 1, alpha="auto"),
    lambda: q.quantized_bits(4, 0, 1, alpha="auto_po2"),
    lambda: q.quantized_bits(8, 3, 1, alpha="auto_po2"),
    lambda: q.binary(alpha=1),
    lambda: q.binary(alpha="auto"),
    lambda: q.binary(alpha="auto_po2"),
    lambda: q.ternary(alpha=1),
    lambda: q.ternary(alpha="auto"),
    lambda: q.ternary(alpha="auto_po2"),
    lambda: q.quantized_po2(4),
    lambda: q.quantized_po2(3, 1),
], ids=lambda make: str(make()))
def test_published_weight_quantizer_variants_deploy_exactly(make: Any) -> None:
    """Per-channel scales ("auto", "auto_po2"), integer bits, unsigned weights, binary/ternary with α, and
    powers of two within 7 octaves: codes·scale are Keras's quantized kernel (to float32 rounding of the
    per-channel α), no note."""
    rng = np.random.default_rng(2)
    inp = keras.Input((12,))
    quantizer = make()
    dense = q.QDense(6, kernel_quantizer=quantizer, name="dense")
    model = keras.Model(inp, dense(inp))
    if isinstance(quantizer, q.quantized_po2):
        kernel = _po2_values(rng, (12, 6), 6)  # quantized_po2(4)'s exponents reach +3: keep to 2⁻⁷ … 2⁻¹
    else:
        kernel = rng.normal(0, 0.4, (12, 6)).astype(np.float32)
    dense.set_weights([kernel, np.zeros(6, np.float32)])
    graph = run_structural(build_graph(model, "m"))
    node = _node(graph, "dense")
    assert node.weights.exact and graph.notes == ()
    np.testing.assert_allclose(_deployed_kernel(node) * node.post_scale, _keras_kernel(dense), rtol=1e-6, atol=0)


@pytest.mark.parametrize("make,message", [
    (lambda: q.quantized_bits(12, 0, 1), r"quantized_bits\(12\) weights exceed 8 bits"),
    (lambda: q.quantized_tanh(4), "weight quantizer quantized_tanh.* is not supported"),
    (lambda: q.binary(use_01=True), r"binary\(use_01=True\) weights are not supported"),
])
def test_a_weight_quantizer_off_int8_is_refused_naming_the_layer(make: Any, message: str) -> None:
    inp = keras.Input((4,))
    model = keras.Model(inp, q.QDense(2, kernel_quantizer=make(), name="dense")(inp))
    with pytest.raises(UnsupportedModelError, match=r"layer 'dense' \(QDense\) kernel: " + message):
        build_graph(model, "m")


def test_qbatchnorm_with_po2_quantizers_folds_to_what_keras_computes() -> None:
    """example_mnist_bn's QBatchNormalization (power-of-two γ, variance and β) after a ternary convolution
    without bias: the folded per-channel scale and bias applied to the convolution's output give Keras's
    BN output, on parameters far from the quantizers' levels (so the quantizers change them)."""
    rng = np.random.default_rng(3)
    inp = keras.Input((5, 5, 2))
    conv = q.QConv2D(4, (3, 3), kernel_quantizer=q.ternary(alpha=1, threshold=0.1), use_bias=False, name="conv")
    bn = q.QBatchNormalization(gamma_quantizer=q.quantized_relu_po2(4, 8), variance_quantizer=q.quantized_relu_po2(6),
                               beta_quantizer=q.quantized_po2(4, 4), gamma_range=8, beta_range=4, name="bn")
    model = keras.Model(inp, bn(conv(inp)))
    gamma, beta = rng.uniform(0.3, 3.0, 4), rng.uniform(-3, 3, 4)
    mean, var = rng.normal(0, 1, 4), rng.uniform(0.2, 9.0, 4)
    bn.set_weights([a.astype(np.float32) for a in (gamma, beta, mean, var)])
    assert not np.allclose(bn.gamma_quantizer_internal(bn.gamma).numpy(), gamma)  # the quantizers matter here
    graph = run_structural(build_graph(model, "m"))
    node = _node(graph, "conv")
    assert node.output == "bn"  # folded into the convolution
    x = rng.uniform(0, 1, (8, 5, 5, 2)).astype(np.float32)
    conv_out = keras.Model(inp, conv.output)(x).numpy().astype(np.float64)
    want = model(x, training=False).numpy()
    np.testing.assert_allclose(conv_out * node.post_scale + node.post_bias, want, rtol=1e-5, atol=1e-5)
