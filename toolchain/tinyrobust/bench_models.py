"""Models for `tinyrobust bench`: the seed-paper-sized stochastic-ternary network, untrained.

Random initial weights with a fixed seed (no training): enough for instruction counts, flash size and
bit-exactness, and the same file every run. The builder needs TensorFlow / QKeras, so it imports
`tinyrobust.frontend` first (which pins tf-keras and quiets TensorFlow) and everything else lazily.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PAPER_INPUT_SHAPE = (32, 32, 1)


def paper_model(dense_units: int = 90, seed: int = 7) -> Any:
    """~1 M ternary weights: 32×32×1 input, six convolutional layers (one depthwise, one separable), a
    residual Add, BatchNorm (mixed-sign gammas, so the sign-flip folding is exercised), ReLU, sigmoid,
    and three dense layers; stochastic_ternary(alpha="auto_po2") throughout."""
    # The frontend import must come first: it sets TF_USE_LEGACY_KERAS before TensorFlow loads.
    from . import frontend  # noqa: F401, I001
    import qkeras as q
    import tensorflow as tf
    import tf_keras as keras
    from tf_keras import layers

    tf.keras.utils.set_random_seed(seed)

    def bn(name: str) -> Any:
        init = keras.initializers.RandomUniform(-1.5, 1.5, seed=seed)
        return layers.BatchNormalization(name=name, gamma_initializer=init)

    def st() -> Any:
        return q.stochastic_ternary(alpha="auto_po2")

    inp = keras.Input(PAPER_INPUT_SHAPE)
    x = q.QConv2D(32, (3, 3), padding="same", kernel_quantizer=st(), name="conv1")(inp)
    x = layers.ReLU(name="relu1")(bn("bn1")(x))
    x = q.QDepthwiseConv2D((3, 3), padding="same", depthwise_quantizer=st(), name="dw2")(x)
    x = layers.ReLU(name="relu2")(bn("bn2")(x))
    a = q.QConv2D(64, (3, 3), strides=(2, 2), padding="same", kernel_quantizer=st(), name="conv3")(x)
    a = layers.ReLU(name="relu3")(bn("bn3")(a))
    b = q.QSeparableConv2D(64, (3, 3), padding="same", depthwise_quantizer=st(), pointwise_quantizer=st(),
                           name="sep4")(a)
    b = layers.ReLU(name="relu4")(bn("bn4")(b))
    x = layers.Add(name="residual")([a, b])
    x = q.QConv2D(128, (3, 3), strides=(2, 2), padding="same", kernel_quantizer=st(), name="conv5")(x)
    x = layers.ReLU(name="relu5")(bn("bn5")(x))
    x = q.QConv2D(128, (3, 3), padding="same", kernel_quantizer=st(), name="conv6")(x)
    x = layers.Activation("sigmoid", name="sigmoid6")(bn("bn6")(x))
    x = layers.Flatten(name="flatten")(x)
    x = q.QDense(dense_units, kernel_quantizer=st(), name="fc1")(x)
    x = layers.ReLU(name="relu_fc1")(x)
    x = q.QDense(64, kernel_quantizer=st(), name="fc2")(x)
    x = layers.ReLU(name="relu_fc2")(x)
    x = q.QDense(10, kernel_quantizer=st(), name="fc3")(x)
    x = layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inp, x, name="paper_model")


def save_paper_model(path: Path, *, seed: int = 7) -> Path:
    """Writes paper_model(seed=seed) with its random initial weights to `path` (.h5)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    paper_model(seed=seed).save(path)
    return path
