"""QKeras's published power-of-two and µ-law examples (tests/published_zoo.py: example_mnist_bn.py and
example_mnist_po2.py, trained briefly on the bundled digits): what their quantizers deploy as.

qkeras_mnist_bn: ternary convolutions, QBatchNormalization with power-of-two γ/variance/β, a
quantized_ulaw(4, 0, 1) dense layer. Its BatchNorms fold to Keras's values, and its dense weights are
approximated (noted) without changing a single top-1 on Keras's own dense inputs.

qkeras_mnist_po2: quantized_po2(4, 1) kernels and biases. Every channel within 7 octaves is exact; in
the others a few weights move by at most one step (measured: 3, 2 and 1 weights in its three layers).

Both models' top-1 agreement with Keras is held, with every other classifier, by tests/test_published_zoo.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import published_zoo as pz
from tinyrobust.converter.ir import ConvNode, WeightTensor
from tinyrobust.converter.passes.factor_alpha import factor_weights
from tinyrobust.converter.pipeline import DeployedModel, convert
from tinyrobust.dataset import Dataset

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def zoo(published_model) -> dict[str, tuple[Path, pz.Task]]:
    return {name: published_model(name) for name in ("qkeras_mnist_bn", "qkeras_mnist_po2")}


def _convert(path: Path, task: pz.Task) -> DeployedModel:
    return convert(path, calibration=Dataset(task.x[task.train][:pz.CALIBRATION], None))


@pytest.fixture(scope="module")
def bn(zoo: dict[str, tuple[Path, pz.Task]]) -> tuple[DeployedModel, pz.Task]:
    path, task = zoo["qkeras_mnist_bn"]
    return _convert(path, task), task


def test_bn_model_notes_its_approximated_dense_layer(bn: tuple[DeployedModel, pz.Task]) -> None:
    """(Its agreement with Keras is held by tests/test_published_zoo.py, with every other classifier.)"""
    deployed, _ = bn
    notes = [n for n in deployed.program.notes if "int8 grid" in n]
    assert len(notes) == 1 and notes[0].startswith("layer 'dense': quantized_ulaw(4,0,1) weights are not on one")


def test_bn_batchnorms_fold_to_keras(bn: tuple[DeployedModel, pz.Task]) -> None:
    """Each ternary convolution's folded scale and bias, applied to Keras's convolution output, give
    Keras's QBatchNormalization output."""
    import tf_keras

    deployed, task = bn
    model, x = deployed.keras_model, task.x[task.test][:64]
    for i in range(3):
        conv, norm = model.get_layer(f"conv2d_{i}_m"), model.get_layer(f"bn{i}")
        conv_out, want = tf_keras.Model(model.inputs, [conv.output, norm.output])(x)
        node = next(n for n in deployed.graph.nodes if isinstance(n, ConvNode) and n.name == conv.name)
        got = np.asarray(conv_out, np.float64) * node.post_scale + node.post_bias
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-5)


def test_bn_dense_approximation_changes_no_top1(bn: tuple[DeployedModel, pz.Task]) -> None:
    """The µ-law dense layer alone, on Keras's own inputs to it: logits with the deployed codes·scale
    against those with Keras's quantized weights, the same top-1 for every test sample and within a
    quarter of the logits' int8 grid step."""
    import tf_keras

    deployed, task = bn
    model = deployed.keras_model
    dense = model.get_layer("dense")
    x = task.x[task.test]
    flat = np.asarray(tf_keras.Model(model.inputs, dense.input)(x), np.float64)
    node = next(n for n in deployed.graph.nodes if isinstance(n, ConvNode) and n.name == "dense")
    keras_w = np.asarray(dense.kernel_quantizer_internal(dense.kernel).numpy(), np.float64)
    ours = flat @ (node.weights.codes * node.weights.channel_scale) + node.post_bias
    theirs = flat @ keras_w + node.post_bias
    assert node.weights.approximation is not None
    np.testing.assert_array_equal(ours.argmax(1), theirs.argmax(1))
    # a quarter of the logits' int8 step (the default's int16 logits are 256 times finer than the approximation
    # needs to be)
    int8 = deployed.int8_program or deployed.program
    assert float(np.abs(ours - theirs).max()) <= int8.tensor(int8.output).scale / 4


def test_po2_kernels_are_exact_within_seven_octaves(zoo: dict[str, tuple[Path, pz.Task]]) -> None:
    """Every quantized_po2(4, 1) kernel of the trained model: channels within 7 octaves are exact; the
    others move at most 8 weights or 0.1 % of the layer's, each by at most one step (over 7 octaves the
    positive peak is clipped; over 8 the smallest round)."""
    from tinyrobust.converter.frontend import load_model
    from tinyrobust.converter.frontend.quantizers import quantize_weights

    path, _ = zoo["qkeras_mnist_po2"]
    model = load_model(path)
    for name in ("conv2d_0_m", "conv2d_1_m", "conv2d_2_m"):
        layer = model.get_layer(name)
        values = quantize_weights(layer.kernel_quantizer_internal, layer.kernel.numpy())
        w = factor_weights(WeightTensor(values, "quantized_po2", "int8"), False, f"layer '{name}'")
        m = values.reshape(-1, values.shape[-1])
        deployed = (w.codes * w.channel_scale).reshape(m.shape)
        exponents = np.log2(np.abs(m))
        within_seven = exponents.max(axis=0) - exponents.min(axis=0) <= 6
        np.testing.assert_array_equal(deployed[:, within_seven], m[:, within_seven])
        moved = int(np.sum(deployed != m))
        a = w.approximation
        assert (a is None) == (moved == 0)
        assert a is None or (a.moved == moved and a.max_error_steps <= 1.0 and moved <= max(8, m.size // 1000))
        print(f"qkeras_mnist_po2 {name}: {w.approximation}")
