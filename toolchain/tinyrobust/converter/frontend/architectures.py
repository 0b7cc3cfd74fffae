"""Published architectures rebuilt in QKeras, for the tests and the bench: models nobody here designed.

- MLPerf Tiny's four reference models (github.com/mlcommons/tiny): ResNet-8 (image classification),
  DS-CNN (keyword spotting), MobileNetV1 α = 0.25 (visual wake words) and the dense autoencoder
  (anomaly detection), with ternary weights and otherwise the published layers (float ReLUs, no
  activation quantizers: the tensors a user brings uncalibrated);
- hls4ml's three-layer jet tagger (its QKeras tutorial: quantized_bits(6, 0) weights, quantized_relu(6));
- QKeras's own examples (github.com/google/qkeras/examples): the MNIST CNN (also hls4ml's QKeras MNIST
  model), the BatchNorm-as-scale model with ternary convolutions and a u-law dense layer, the power-of-two
  model, and a float model converted by QKeras's model_quantize.

Input shapes and class counts are parameters (the tests train them briefly on bundled data resized to
each shape); layer structure follows the source named in each docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import qkeras as q
import tf_keras as keras
from tf_keras import layers

from .recipe import Quantization

WeightQuantizer = Callable[[], Any]


def ternary() -> Any:
    return q.ternary(alpha="auto_po2")


def _recipe(quant: Quantization | None, weights: WeightQuantizer) -> Quantization:
    """With no `quant`: the published float ReLUs, no activation quantizers, weights from `weights`."""
    return quant or Quantization("ternary", activations=False, custom_weights=weights)


def resnet8(input_shape: tuple[int, ...] = (32, 32, 3), classes: int = 10, filters: int = 16,
            weights: WeightQuantizer = ternary, quant: Quantization | None = None) -> Any:
    """MLPerf Tiny image classification, ResNet-8 (resnet_v1_eembc): a 3×3 stem and three stacks of two
    3×3 convolutions with BatchNorm and a residual add (1×1 stride-2 projections on stacks 2 and 3),
    average pool over the last feature map, dense softmax. `quant` (recipe.py): its weights and an
    activation quantizer on every tensor."""
    r = _recipe(quant, weights)

    def conv(x: Any, n: int, k: int, s: int, name: str) -> Any:
        return r.conv(n, k, strides=s, padding="same", name=name)(x)

    def bn_relu(x: Any, name: str) -> Any:
        return r.relu(f"{name}_relu")(layers.BatchNormalization(name=f"{name}_bn")(x))

    inp = keras.Input(input_shape, name="input")
    x = bn_relu(conv(inp, filters, 3, 1, "stem"), "stem")
    for stack, n in enumerate((filters, 2 * filters, 4 * filters), start=1):
        stride = 1 if stack == 1 else 2
        y = bn_relu(conv(x, n, 3, stride, f"s{stack}_a"), f"s{stack}_a")
        y = r.linear(f"s{stack}_b_q")(layers.BatchNormalization(name=f"s{stack}_b_bn")(conv(y, n, 3, 1, f"s{stack}_b")))
        if stack > 1:
            x = r.linear(f"s{stack}_proj_q")(conv(x, n, 1, 2, f"s{stack}_proj"))
        x = r.relu(f"s{stack}_relu")(layers.Add(name=f"s{stack}_add")([x, y]))
    x = layers.AveragePooling2D(pool_size=int(min(x.shape[1:3])), name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = r.logits("logits_q")(r.dense(classes, name="logits")(x))
    x = layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inp, x, name="resnet8")


def ds_cnn(input_shape: tuple[int, ...] = (49, 10, 1), classes: int = 12, filters: int = 64,
           weights: WeightQuantizer = ternary, quant: Quantization | None = None) -> Any:
    """MLPerf Tiny keyword spotting, DS-CNN: a (10, 4) stride-2 convolution, four depthwise-separable
    blocks (3×3 depthwise, 1×1 pointwise, each with BatchNorm and ReLU), average pool, dense softmax.
    `quant` (recipe.py): its weights and an activation quantizer on every tensor."""
    r = _recipe(quant, weights)
    inp = keras.Input(input_shape, name="input")
    x = r.conv(filters, (10, 4), strides=(2, 2), padding="same", name="conv1")(inp)
    x = r.relu("conv1_relu")(layers.BatchNormalization(name="conv1_bn")(x))
    x = layers.Dropout(0.2, name="drop1")(x)
    for i in range(1, 5):
        x = r.depthwise((3, 3), padding="same", name=f"dw{i}")(x)
        x = r.relu(f"dw{i}_relu")(layers.BatchNormalization(name=f"dw{i}_bn")(x))
        x = r.conv(filters, (1, 1), padding="same", name=f"pw{i}")(x)
        x = r.relu(f"pw{i}_relu")(layers.BatchNormalization(name=f"pw{i}_bn")(x))
    x = layers.Dropout(0.4, name="drop2")(x)
    x = layers.AveragePooling2D(pool_size=tuple(int(d) for d in x.shape[1:3]), name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = r.logits("logits_q")(r.dense(classes, name="logits")(x))
    x = layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inp, x, name="ds_cnn")


def mobilenet_v1(input_shape: tuple[int, ...] = (96, 96, 3), classes: int = 2, alpha: float = 0.25,
                 weights: WeightQuantizer = ternary) -> Any:
    """MLPerf Tiny visual wake words, MobileNetV1 (α = 0.25: 8 filters in the stem): a stride-2 3×3 stem,
    thirteen depthwise-separable blocks (strides 2 at blocks 2, 4, 6 and 12; channels doubling at
    blocks 1, 2, 4, 6 and 12), average pool over the last feature map, dense softmax."""
    n = int(32 * alpha)
    inp = keras.Input(input_shape, name="input")
    x = q.QConv2D(n, 3, strides=2, padding="same", kernel_quantizer=weights(), name="stem")(inp)
    x = layers.Activation("relu", name="stem_relu")(layers.BatchNormalization(name="stem_bn")(x))
    plan = [(1, 2), (2, 2), (1, 1), (2, 2), (1, 1), (2, 2), (1, 1), (1, 1), (1, 1), (1, 1), (1, 1), (2, 2), (1, 1)]
    for i, (stride, grow) in enumerate(plan, start=1):
        x = q.QDepthwiseConv2D(3, strides=stride, padding="same", depthwise_quantizer=weights(), name=f"dw{i}")(x)
        x = layers.Activation("relu", name=f"dw{i}_relu")(layers.BatchNormalization(name=f"dw{i}_bn")(x))
        n *= grow
        x = q.QConv2D(n, 1, padding="same", kernel_quantizer=weights(), name=f"pw{i}")(x)
        x = layers.Activation("relu", name=f"pw{i}_relu")(layers.BatchNormalization(name=f"pw{i}_bn")(x))
    x = layers.AveragePooling2D(pool_size=tuple(int(d) for d in x.shape[1:3]), name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = q.QDense(classes, kernel_quantizer=weights(), name="logits")(x)
    x = layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inp, x, name="mobilenet_v1")


def fc_autoencoder(dim: int = 640, weights: WeightQuantizer = ternary) -> Any:
    """MLPerf Tiny anomaly detection: a dense autoencoder 128-128-128-128-8-128-128-128-128 (each dense
    with BatchNorm and ReLU) back to the input dimension, linear output (a regression model)."""
    inp = keras.Input((dim,), name="input")
    x = inp
    for i, units in enumerate((128, 128, 128, 128, 8, 128, 128, 128, 128)):
        x = q.QDense(units, kernel_quantizer=weights(), name=f"fc{i}")(x)
        x = layers.Activation("relu", name=f"fc{i}_relu")(layers.BatchNormalization(name=f"fc{i}_bn")(x))
    x = q.QDense(dim, kernel_quantizer=weights(), name="reconstruction")(x)
    return keras.Model(inp, x, name="fc_autoencoder")


def jet_tagger(features: int = 16, classes: int = 5) -> Any:
    """hls4ml's QKeras tutorial model: dense 64-32-32 with quantized_bits(6, 0, alpha=1) weights and
    biases and quantized_relu(6) activations, a quantized dense output and softmax; no input quantizer
    (its inputs are standardised features, roughly ±4)."""

    def qbits() -> Any:
        return q.quantized_bits(6, 0, alpha=1)

    inp = keras.Input((features,), name="input")
    x = inp
    for i, units in enumerate((64, 32, 32), start=1):
        x = q.QDense(units, kernel_quantizer=qbits(), bias_quantizer=qbits(), name=f"fc{i}")(x)
        x = q.QActivation(q.quantized_relu(6), name=f"relu{i}")(x)
    x = q.QDense(classes, kernel_quantizer=qbits(), bias_quantizer=qbits(), name="output")(x)
    x = layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inp, x, name="jet_tagger")


def _example_bits() -> Any:
    return q.quantized_bits(4, 0, 1)


def qkeras_mnist_cnn(input_shape: tuple[int, ...] = (28, 28, 1), classes: int = 10,
                     weights: WeightQuantizer = _example_bits) -> Any:
    """QKeras examples/example_mnist.py (hls4ml's QKeras MNIST CNN): three strided convolutions with
    quantized_bits(4, 0, 1) weights and biases and quantized_relu(4, 0) activations, a quantized dense.
    `weights` replaces the weight quantizer (the bench runs it ternary); biases stay the example's."""
    inp = keras.Input(input_shape, name="input")
    x = inp
    for i, (n, k) in enumerate(((32, 2), (64, 3), (64, 2))):
        x = q.QConv2D(n, k, strides=2, kernel_quantizer=weights(), bias_quantizer=_example_bits(),
                      name=f"conv2d_{i}_m")(x)
        x = q.QActivation("quantized_relu(4,0)", name=f"act{i}_m")(x)
    x = layers.Flatten(name="flatten")(x)
    x = q.QDense(classes, kernel_quantizer=weights(), bias_quantizer=_example_bits(), name="dense")(x)
    x = layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inp, x, name="qkeras_mnist_cnn")


def qkeras_mnist_bn(input_shape: tuple[int, ...] = (28, 28, 1), classes: int = 10, filters: int = 32,
                    dense_quantizer: Callable[[], Any] | None = None) -> Any:
    """QKeras examples/example_mnist_bn.py: ternary convolutions without bias, each followed by a
    QBatchNormalization with power-of-two gamma/variance/beta quantizers (BatchNorm as a learned scale),
    quantized_relu(3, 1) and max pooling; a dense layer with quantized_ulaw(4, 0, 1) weights.
    `filters` scales the example's 128/256/128 channels (32 → 32/64/32) to train quickly. The example's
    ternary(threshold=0.1) fails in QKeras 0.9.0 (a layer turns alpha=None into "auto_po2", which refuses a
    threshold); alpha=1 is what alpha=None computed forward: codes ±1/0 at |w| ≥ 0.1, the BN the scale."""
    inp = keras.Input(input_shape, name="input")
    x = inp
    for i, n in enumerate((filters, 2 * filters, filters)):
        x = q.QConv2D(n, (3, 3), kernel_quantizer=q.ternary(alpha=1, threshold=0.1), use_bias=False,
                      name=f"conv2d_{i}_m")(x)
        x = q.QBatchNormalization(gamma_quantizer=q.quantized_relu_po2(4, 8),
                                  variance_quantizer=q.quantized_relu_po2(6), beta_quantizer=q.quantized_po2(4, 4),
                                  gamma_range=8, beta_range=4, name=f"bn{i}")(x)
        x = q.QActivation("quantized_relu(3,1)", name=f"act{i}_m")(x)
        x = layers.MaxPooling2D(2, 2, name=f"mp_{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    quantizer = dense_quantizer() if dense_quantizer else q.quantized_ulaw(4, 0, 1)
    x = q.QDense(classes, kernel_quantizer=quantizer, bias_quantizer=q.quantized_bits(4, 0, 1), name="dense")(x)
    x = layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inp, x, name="qkeras_mnist_bn")


def qkeras_mnist_po2(input_shape: tuple[int, ...] = (28, 28, 1), classes: int = 10) -> Any:
    """QKeras examples/example_mnist_po2.py (deterministic rounding): a quantized_relu_po2(4) input
    quantizer, strided convolutions with quantized_po2(4, 1) weights and biases and quantized_relu_po2(4, 4)
    activations, quantized_relu(4, 1) before a quantized_bits(4, 0, 1) dense layer."""

    def po2() -> Any:
        return q.quantized_po2(4, 1)

    inp = keras.Input(input_shape, name="input")
    x = q.QActivation("quantized_relu_po2(4)", name="acti")(inp)
    x = q.QConv2D(32, (2, 2), strides=(2, 2), kernel_quantizer=po2(), bias_quantizer=po2(), name="conv2d_0_m")(x)
    x = q.QActivation("quantized_relu_po2(4,4)", name="act0_m")(x)
    x = q.QConv2D(64, (3, 3), strides=(2, 2), kernel_quantizer=po2(), bias_quantizer=po2(), name="conv2d_1_m")(x)
    x = q.QActivation("quantized_relu_po2(4,4)", name="act1_m")(x)
    x = q.QConv2D(64, (2, 2), strides=(2, 2), kernel_quantizer=po2(), bias_quantizer=po2(), name="conv2d_2_m")(x)
    x = q.QActivation("quantized_relu(4,1)", name="act2_m")(x)
    x = layers.Flatten(name="flatten")(x)
    x = q.QDense(classes, kernel_quantizer=q.quantized_bits(4, 0, 1), bias_quantizer=q.quantized_bits(4, 0, 1),
                 name="dense")(x)
    x = layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inp, x, name="qkeras_mnist_po2")


def keras_to_qkeras(input_shape: tuple[int, ...] = (32, 32, 3), classes: int = 10, filters: int = 32) -> Any:
    """QKeras examples/example_keras_to_qkeras.py: a float Keras CNN (three conv/relu/max-pool stages, a
    dense layer) as QKeras's model_quantize converts it with the example's dictionary: a binary first
    convolution, a ternary second, quantized_bits(4, 0, 1) elsewhere (biases too), relu → quantized_relu(4, 0),
    the last activation quantized_relu(6, 2), a quantized_bits(3, 0, 1) dense layer. Built layer by layer:
    model_quantize itself cannot rebuild its output under tf-keras 2.21 (the JSON it edits keeps
    'module': 'keras.layers' on the renamed QConv2D, which deserialisation then cannot find). `filters`
    scales the example's 128/256/128 channels."""
    kernels = (q.binary(), q.ternary(), q.quantized_bits(4, 0, 1))
    activations = ("quantized_relu(4,0)", "quantized_relu(4,0)", "quantized_relu(6,2)")
    inp = keras.Input(input_shape, name="input")
    x = inp
    for i, n in enumerate((filters, 2 * filters, filters)):
        x = q.QConv2D(n, (3, 3), kernel_quantizer=kernels[i], bias_quantizer=q.quantized_bits(4, 0, 1),
                      name=f"conv2d_{i}_m")(x)
        x = q.QActivation(activations[i], name=f"act{i}_m")(x)
        x = layers.MaxPooling2D(2, 2, name=f"mp_{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = q.QDense(classes, kernel_quantizer=q.quantized_bits(3, 0, 1), bias_quantizer=q.quantized_bits(3, 0, 1),
                 name="dense")(x)
    x = layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inp, x, name="keras_to_qkeras")


PUBLISHED: dict[str, Callable[..., Any]] = {
    "resnet8": resnet8,
    "ds_cnn": ds_cnn,
    "mobilenet_v1": mobilenet_v1,
    "fc_autoencoder": fc_autoencoder,
    "jet_tagger": jet_tagger,
    "qkeras_mnist_cnn": qkeras_mnist_cnn,
    "qkeras_mnist_bn": qkeras_mnist_bn,
    "qkeras_mnist_po2": qkeras_mnist_po2,
    "keras_to_qkeras": keras_to_qkeras,
}
