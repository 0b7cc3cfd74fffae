"""Architectures tinyrobust builds itself: the demo's digits CNN (trained) and the bench's
seed-paper-sized network (random initial weights with a fixed seed: enough for instruction counts,
flash size and bit-exactness, and the same file every run). Stochastic-ternary QKeras throughout.
The bench's other end-to-end models are published architectures (architectures.py), ternary.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import qkeras as q
import tensorflow as tf
import tf_keras as keras
from tf_keras import layers

from . import architectures
from .recipe import Quantization

PAPER_INPUT_SHAPE = (32, 32, 1)


def paper_model(dense_units: int = 90, seed: int = 7, quant: Quantization | None = None,
                input_shape: tuple[int, ...] = PAPER_INPUT_SHAPE, classes: int = 10) -> Any:
    """~1 M ternary weights: 32×32×1 input, six convolutional layers (one depthwise, one separable), a
    residual Add, BatchNorm (mixed-sign gammas, so the sign-flip folding is exercised), ReLU, sigmoid,
    and three dense layers; stochastic_ternary(alpha="auto_po2") throughout. With `quant` (recipe.py, for
    training): its weights, an activation quantizer on every tensor, and BatchNorm's usual initial gammas."""
    if quant is None:  # the bench's fixed random model; a model to train takes the caller's seed
        tf.keras.utils.set_random_seed(seed)
    r = quant or Quantization("stq")

    def bn(name: str) -> Any:
        if quant is not None:
            return layers.BatchNormalization(name=name)
        init = keras.initializers.RandomUniform(-1.5, 1.5, seed=seed)
        return layers.BatchNormalization(name=name, gamma_initializer=init)

    def relu(name: str) -> Any:
        return layers.ReLU(name=name) if quant is None else r.relu(name)

    def linear(name: str) -> Any:
        return (lambda x: x) if quant is None else r.linear(name)

    inp = keras.Input(input_shape)
    x = r.conv(32, (3, 3), padding="same", name="conv1")(inp)
    x = relu("relu1")(bn("bn1")(x))
    x = r.depthwise((3, 3), padding="same", name="dw2")(x)
    x = relu("relu2")(bn("bn2")(x))
    a = r.conv(64, (3, 3), strides=(2, 2), padding="same", name="conv3")(x)
    a = relu("relu3")(bn("bn3")(a))
    if quant is None:
        b = r.separable(64, (3, 3), padding="same", name="sep4")(a)
    else:  # the same separable convolution in two layers: its middle tensor needs a grid of its own
        b = linear("sep4_mid_q")(r.depthwise((3, 3), padding="same", use_bias=False, name="sep4_dw")(a))
        b = r.conv(64, (1, 1), name="sep4_pw")(b)
    b = relu("relu4")(bn("bn4")(b))
    x = linear("residual_q")(layers.Add(name="residual")([a, b]))
    x = r.conv(128, (3, 3), strides=(2, 2), padding="same", name="conv5")(x)
    x = relu("relu5")(bn("bn5")(x))
    x = r.conv(128, (3, 3), padding="same", name="conv6")(x)
    x = linear("bn6_q")(bn("bn6")(x))
    x = layers.Activation("sigmoid", name="sigmoid6")(x)
    if quant is not None and quant.quantized:
        x = q.QActivation("quantized_bits(8,0,alpha=1)", name="sigmoid6_q")(x)
    x = layers.Flatten(name="flatten")(x)
    x = r.dense(dense_units, name="fc1")(x)
    x = relu("relu_fc1")(x)
    x = r.dense(64, name="fc2")(x)
    x = relu("relu_fc2")(x)
    x = r.dense(classes, name="fc3")(x)
    if quant is not None:
        x = r.logits("logits_q")(x)
    x = layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inp, x, name="paper_model")


def save_paper_model(path: Path, *, seed: int = 7) -> Path:
    """Writes paper_model(seed=seed) with its random initial weights to `path` (.h5)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    paper_model(seed=seed).save(path)
    return path


# The bench's end-to-end models: published architectures at their published input shapes, ternary
# weights, random initial weights from a fixed seed (the bench counts instructions, not accuracy).
BENCH_MODELS: dict[str, Callable[[], Any]] = {
    "resnet8": lambda: architectures.resnet8(),
    "dscnn": lambda: architectures.ds_cnn(),
    "mbv1_vww": lambda: architectures.mobilenet_v1(),
    "mnist_cnn": lambda: architectures.qkeras_mnist_cnn(weights=architectures.ternary),
}


def save_bench_model(name: str, path: Path, *, seed: int = 7) -> tuple[Path, tuple[int, ...]]:
    """Writes BENCH_MODELS[name] (or the paper model, name "paper") to `path`; returns it and the input shape."""
    tf.keras.utils.set_random_seed(seed)
    model = paper_model(seed=seed) if name == "paper" else BENCH_MODELS[name]()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path, tuple(int(d) for d in model.input_shape[1:])


def digits_cnn(quant: Quantization | None = None, input_shape: tuple[int, ...] = (8, 8, 1),
               classes: int = 10) -> Any:
    """The demo's example: a small stochastic-ternary CNN in the seed paper's style, 8×8×1 in, 10 classes.
    With `quant` (recipe.py), its weights and activation quantizers instead, the logits included."""
    r = quant or Quantization("stq")

    def act(name: str) -> Any:
        return q.QActivation(q.quantized_relu(4, 2), name=name) if quant is None else r.relu(name)

    inp = keras.Input(input_shape, name="image")
    x = r.conv(16, (3, 3), padding="same", name="conv1")(inp)
    x = act("act1")(layers.BatchNormalization(name="bn1")(x))
    x = r.depthwise((3, 3), padding="same", name="dw2")(x)
    x = act("act2")(layers.BatchNormalization(name="bn2")(x))
    x = layers.MaxPooling2D((2, 2), name="pool2")(x)
    x = r.conv(32, (3, 3), padding="same", name="conv3")(x)
    x = act("act3")(layers.BatchNormalization(name="bn3")(x))
    x = layers.Flatten(name="flatten")(x)
    x = r.dense(classes, name="logits")(x)
    if quant is not None:
        x = r.logits("logits_q")(x)
    x = layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inp, x, name="digits_stq" if quant is None else f"digits_{r.mode}")


def digits_float_cnn() -> Any:
    """digits_cnn's full-precision twin: the same layers in plain Keras, no quantizers."""
    inp = keras.Input((8, 8, 1), name="image")
    x = layers.Conv2D(16, (3, 3), padding="same", name="conv1")(inp)
    x = layers.ReLU(name="act1")(layers.BatchNormalization(name="bn1")(x))
    x = layers.DepthwiseConv2D((3, 3), padding="same", name="dw2")(x)
    x = layers.ReLU(name="act2")(layers.BatchNormalization(name="bn2")(x))
    x = layers.MaxPooling2D((2, 2), name="pool2")(x)
    x = layers.Conv2D(32, (3, 3), padding="same", name="conv3")(x)
    x = layers.ReLU(name="act3")(layers.BatchNormalization(name="bn3")(x))
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(10, name="logits")(x)
    x = layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inp, x, name="digits_float")


def train_digits_cnn(path: Path, x: np.ndarray, y: np.ndarray, *, epochs: int = 30, seed: int = 1,
                     build: Any = digits_cnn, jacobian_weight: float = 0.0) -> Path:
    """A digits model (digits_cnn by default) trained on (x, y) with Adam (deterministic with `seed`),
    saved as .h5 at `path`.

    jacobian_weight > 0 adds Jacobian regularisation (seed 000's JR): λ · ‖vᵀ J‖² per sample, J the
    Jacobian of the logits with respect to the input and v a random unit vector (one random
    projection estimates ‖J‖²_F / K, Hoffman et al. 2019).
    """
    tf.keras.utils.set_random_seed(seed)
    model = build()
    if jacobian_weight <= 0:
        model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    else:
        _fit_with_jacobian_penalty(model, x, y, epochs=epochs, weight=jacobian_weight, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def _fit_with_jacobian_penalty(model: Any, x: np.ndarray, y: np.ndarray, *, epochs: int, weight: float,
                               seed: int) -> None:
    logits_model = keras.Model(model.inputs, model.layers[-1].input)  # below the final softmax
    optimizer = keras.optimizers.Adam(3e-3)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    rng = np.random.default_rng(seed)

    @tf.function
    def step(xb: Any, yb: Any, v: Any) -> Any:
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(xb)
                logits = logits_model(xb, training=True)
                projected = tf.reduce_sum(logits * v)
            jv = inner.gradient(projected, xb)  # vᵀ J for every sample
            penalty = tf.reduce_mean(tf.reduce_sum(tf.reshape(jv * jv, (tf.shape(xb)[0], -1)), axis=1))
            loss = ce(yb, logits) + weight * penalty
        grads = outer.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    n_classes = int(model.output_shape[-1])
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), 32):
            idx = order[start:start + 32]
            v = rng.standard_normal((len(idx), n_classes)).astype(np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            step(tf.constant(x[idx]), tf.constant(y[idx]), tf.constant(v))
