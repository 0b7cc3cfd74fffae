"""Small QKeras models that cover the supported layers, trained briefly on load_digits.

Each builder returns an uncompiled tf-keras model on 8×8×1 inputs in [0, 1] with 10 classes.
`trained_model(name, dir)` trains it for a few epochs and saves it as .h5 (cached per session).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): the demo's load_digits split (1200 / 597, inputs in [0, 1])."""
    from tinyrobust.workflows.demo import digits_split

    s = digits_split()
    return s.x_train, s.y_train, s.x_test, s.y_test


def _bn(name: str):
    """BatchNorm whose gammas start with mixed signs, so trained models keep negative gammas and the
    folding's sign-flip path is exercised."""
    import tf_keras as keras
    from tf_keras import layers

    return layers.BatchNormalization(name=name, gamma_initializer=keras.initializers.RandomUniform(-1.5, 1.5, seed=7))


def _q():
    import qkeras
    import tf_keras as keras
    from tf_keras import layers

    return keras, layers, qkeras


def ternary_bn_relu() -> object:
    """ternary (alpha None) conv, BN before quantized_relu with negative gammas, maxpool, dense."""
    keras, layers, q = _q()
    inp = keras.Input((8, 8, 1))
    x = q.QActivation(q.quantized_relu(8, 0), name="in_q")(inp)  # input quantizer: the firmware's input grid
    x = q.QConv2D(7, (3, 3), padding="same", kernel_quantizer=q.ternary(), name="conv_a")(x)
    x = _bn("bn_a")(x)
    x = q.QActivation(q.quantized_relu(4, 2), name="act_a")(x)
    x = layers.MaxPooling2D((2, 2), name="pool_a")(x)
    x = q.QConv2D(10, (3, 2), strides=(1, 2), padding="valid", kernel_quantizer=q.ternary(alpha="auto"),
                  name="conv_b")(x)
    x = q.QActivation(q.quantized_relu(4, 2), name="act_b")(x)
    x = layers.Flatten(name="flat")(x)
    x = q.QDense(10, kernel_quantizer=q.ternary(alpha="auto_po2"), name="logits")(x)
    x = layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inp, x, name="ternary_bn_relu")


def stochastic_depthwise_separable() -> object:
    """stochastic_ternary auto_po2: depthwise, separable, avg pool, BN after an activation, sigmoid."""
    keras, layers, q = _q()
    st = q.stochastic_ternary
    inp = keras.Input((8, 8, 1))
    x = q.QConv2D(16, (3, 3), padding="same", kernel_quantizer=st(alpha="auto_po2"), name="stem")(inp)
    x = q.QActivation(q.quantized_relu(4, 2), name="stem_act")(x)
    x = q.QDepthwiseConv2D((3, 3), padding="same", depthwise_quantizer=st(alpha="auto_po2"), name="dw")(x)
    x = _bn("dw_bn")(x)
    x = q.QActivation(q.quantized_relu(4, 2), name="dw_act")(x)
    x = layers.AveragePooling2D((2, 2), name="avg")(x)
    x = q.QSeparableConv2D(24, (3, 3), padding="same", depthwise_quantizer=st(alpha="auto_po2"),
                           pointwise_quantizer=st(alpha="auto_po2"), name="sep")(x)
    x = q.QActivation(q.quantized_relu(4, 2), name="sep_act")(x)
    x = layers.BatchNormalization(name="post_bn")(x)
    x = layers.Flatten(name="flat")(x)
    x = q.QDense(24, kernel_quantizer=st(alpha="auto_po2"), name="hidden")(x)
    x = layers.Activation("sigmoid", name="sig")(x)
    x = q.QDense(10, kernel_quantizer=st(alpha="auto_po2"), name="logits")(x)
    x = layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inp, x, name="stochastic_dw_sep")


def residual_concat() -> object:
    """Residual Add, channel Concatenate, ZeroPadding2D, ReLU layer, Dropout, ternary(alpha=0.5)."""
    keras, layers, q = _q()
    inp = keras.Input((8, 8, 1))
    x = q.QActivation(q.quantized_bits(8, 0, alpha=1), name="in_q")(inp)
    x = layers.ZeroPadding2D(((1, 1), (1, 1)), name="pad")(x)
    x = q.QConv2D(5, (3, 3), padding="valid", kernel_quantizer=q.ternary(alpha=0.5), name="c1")(x)
    x = _bn("bn1")(x)
    a = q.QActivation(q.quantized_relu(4, 2), name="a1")(x)
    b = q.QConv2D(5, (3, 3), padding="same", kernel_quantizer=q.ternary(alpha="auto"), name="c2")(a)
    b = q.QActivation(q.quantized_relu(4, 2), name="a2")(b)
    s = layers.Add(name="res_add")([a, b])
    s = layers.ReLU(name="res_relu")(s)
    c = q.QConv2D(3, (1, 1), kernel_quantizer=q.ternary(alpha="auto"), name="c3",
                  activation=q.quantized_relu(4, 2))(a)
    x = layers.Concatenate(name="cat")([s, c])
    x = layers.MaxPooling2D((3, 3), strides=(2, 2), padding="same", name="mp")(x)
    x = layers.Dropout(0.1, name="drop")(x)
    x = layers.Flatten(name="flat")(x)
    x = q.QDense(10, kernel_quantizer=q.ternary(alpha="auto"), name="logits")(x)
    return keras.Model(inp, x, name="residual_concat")


def mixed_precision() -> object:
    """Input quantizer, quantized_bits(8) weights and activations, binary weights, tanh."""
    keras, layers, q = _q()
    inp = keras.Input((8, 8, 1))
    x = q.QActivation(q.quantized_bits(8, 0, alpha=1), name="in_q")(inp)
    x = q.QConv2D(6, (3, 3), padding="same", kernel_quantizer=q.quantized_bits(8, 0, alpha=1),
                  bias_quantizer=q.quantized_bits(8, 2, alpha=1), name="q8conv")(x)
    x = q.QActivation(q.quantized_bits(8, 2, alpha=1), name="q8act")(x)
    x = q.QConv2D(8, (2, 2), strides=(2, 2), kernel_quantizer=q.binary(alpha=1), name="bin_conv")(x)
    x = layers.Activation("tanh", name="tanh")(x)
    x = layers.Flatten(name="flat")(x)
    x = q.QDense(10, kernel_quantizer=q.quantized_bits(4, 0, alpha=1), name="logits")(x)
    return keras.Model(inp, x, name="mixed_precision")


def float_layers() -> object:
    """Unquantized Conv2D and Dense (deployed as int8 per-channel approximations), global average pool."""
    keras, layers, q = _q()
    inp = keras.Input((8, 8, 1))
    x = layers.Conv2D(24, (3, 3), padding="same", name="float_conv")(inp)
    x = q.QActivation(q.quantized_relu(6, 3), name="act")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(10, name="logits")(x)
    return keras.Model(inp, x, name="float_layers")


def gated_multiply() -> object:
    """Keras Multiply: a feature map gated by a sigmoid of a 1×1 conv of itself (same shapes)."""
    keras, layers, q = _q()
    inp = keras.Input((8, 8, 1))
    x = q.QActivation(q.quantized_relu(8, 0), name="in_q")(inp)
    a = q.QConv2D(8, (3, 3), padding="same", kernel_quantizer=q.ternary(alpha="auto"), name="feat")(x)
    a = q.QActivation(q.quantized_relu(4, 2), name="feat_act")(a)
    g = q.QConv2D(8, (1, 1), kernel_quantizer=q.ternary(alpha="auto"), name="gate")(a)
    g = layers.Activation("sigmoid", name="gate_sig")(g)
    m = layers.Multiply(name="gated")([a, g])
    m = layers.MaxPooling2D((2, 2), name="pool")(m)
    m = layers.Flatten(name="flat")(m)
    m = q.QDense(10, kernel_quantizer=q.ternary(alpha="auto"), name="logits")(m)
    return keras.Model(inp, m, name="gated_multiply")


ZOO: dict[str, Callable[[], object]] = {
    "ternary_bn_relu": ternary_bn_relu,
    "stochastic_dw_sep": stochastic_depthwise_separable,
    "residual_concat": residual_concat,
    "mixed_precision": mixed_precision,
    "float_layers": float_layers,
    "gated_multiply": gated_multiply,
}


def train_and_save(name: str, out_dir: Path, epochs: int = 20) -> Path:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(2)
    model = ZOO[name]()
    x_train, y_train, _, _ = digits()
    from_logits = model.layers[-1].__class__.__name__ != "Activation"
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    path = out_dir / f"{name}.h5"
    model.save(path)
    return path



def paper_model() -> object:
    """The seed-paper-sized model (~1 M stochastic-ternary weights) the bench uses too."""
    from tinyrobust.converter.frontend.models import paper_model as build

    return build()

def save_untrained(model, path: Path) -> Path:
    """Save a model with its random initial weights (enough for size, budget and bit-exactness)."""
    model.save(path)
    return path
