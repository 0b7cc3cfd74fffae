"""The published architectures (converter/frontend/architectures.py), trained briefly on bundled data
resized to each model's input, so their outputs are non-degenerate.

load_digits (scikit-learn) is the one real dataset here: 1,797 8×8 digits. Each model gets it in the
shape its source expects: bilinearly upsampled 8-bit images (3 channels weighted differently), a
resampled 49×10 map for keyword spotting, 16 standardised pooled features for the jet tagger (digits
0–4: five classes), a 640-value vector for the autoencoder (trained on digits 0 and 1 only; every
other digit is an anomaly its score must rank: Keras's AUC 0.84 on 200 held-out samples, where 0–7
against 8–9 left even Keras at chance), and a 2-class split (digit ≥ 5) at 96×96×3 for visual wake words.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TRAIN = 1200  # the demo's split: samples [1200:] are never trained on
CALIBRATION = 300  # training samples given as calibration data
BATCHNORM_MOMENTUM = 0.9


@dataclass(frozen=True)
class Task:
    x: np.ndarray  # every sample, float32, the model's input shape
    y: np.ndarray  # class labels, or anomaly labels (1 = anomalous) for the autoencoder
    train: np.ndarray  # indices trained on

    @property
    def test(self) -> np.ndarray:
        return np.setdiff1d(np.arange(len(self.x)), self.train)


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    order = np.random.default_rng(0).permutation(len(d.images))
    return (d.images[order] / 16.0).astype(np.float32), d.target[order].astype(np.int64)


def _image(images: np.ndarray, hw: tuple[int, int], channels: int) -> np.ndarray:
    zoom = (1, hw[0] / images.shape[1], hw[1] / images.shape[2])
    big = np.clip(ndimage.zoom(images, zoom, order=1), 0.0, 1.0)
    weights = np.linspace(1.0, 0.6, channels, dtype=np.float32)
    # 8-bit pixels, as a camera or an image file gives them (k/255)
    return (np.round(big[..., None] * weights * 255.0) / 255.0).astype(np.float32)


def image_task(hw: tuple[int, int], channels: int = 1, two_classes: bool = False) -> Task:
    images, labels = _digits()
    y = (labels >= 5).astype(np.int64) if two_classes else labels
    return Task(_image(images, hw, channels), y, np.arange(TRAIN))


def jet_task() -> Task:
    images, labels = _digits()
    keep = labels < 5
    pooled = images[keep].reshape(-1, 4, 2, 4, 2).mean(axis=(2, 4)).reshape(-1, 16)
    train = np.arange(int(keep[:TRAIN].sum()))
    mean, std = pooled[train].mean(axis=0), pooled[train].std(axis=0) + 1e-6
    return Task(((pooled - mean) / std).astype(np.float32), labels[keep], train)


def autoencoder_task(dim: int = 640) -> Task:
    images, labels = _digits()
    x = _image(images, (32, dim // 32), 1).reshape(len(images), dim)
    anomalous = (labels >= 2).astype(np.int64)
    train = np.flatnonzero(anomalous[:TRAIN] == 0)
    return Task(x, anomalous, train)


@dataclass(frozen=True)
class Entry:
    build: Callable[[], object]
    task: Callable[[], Task]
    epochs: int
    regression: bool = False
    learning_rate: float = 3e-3


def _arch():
    from tinyrobust.converter.frontend import architectures as a

    return a


ZOO: dict[str, Entry] = {
    "resnet8": Entry(lambda: _arch().resnet8((32, 32, 3), 10), lambda: image_task((32, 32), 3), 4,
                     learning_rate=1e-3),
    "ds_cnn": Entry(lambda: _arch().ds_cnn((49, 10, 1), 10), lambda: image_task((49, 10)), 6),
    "mobilenet_v1": Entry(lambda: _arch().mobilenet_v1((96, 96, 3), 2), lambda: image_task((96, 96), 3, True), 4,
                          learning_rate=1e-3),
    "fc_autoencoder": Entry(lambda: _arch().fc_autoencoder(640), autoencoder_task, 30,
                            regression=True),
    "jet_tagger": Entry(lambda: _arch().jet_tagger(16, 5), jet_task, 30),
    "qkeras_mnist_cnn": Entry(lambda: _arch().qkeras_mnist_cnn((28, 28, 1)), lambda: image_task((28, 28)), 8),
    "qkeras_mnist_bn": Entry(lambda: _arch().qkeras_mnist_bn((28, 28, 1)), lambda: image_task((28, 28)), 4),
    "qkeras_mnist_po2": Entry(lambda: _arch().qkeras_mnist_po2((28, 28, 1)), lambda: image_task((28, 28)), 8),
    "keras_to_qkeras": Entry(lambda: _arch().keras_to_qkeras((32, 32, 3)), lambda: image_task((32, 32), 3), 5),
}

CLASSIFIERS = tuple(name for name, entry in ZOO.items() if not entry.regression)


def train(name: str, out_dir: Path, seed: int = 3) -> tuple[Path, Task]:
    """Train ZOO[name] briefly (Adam, `seed`); the saved .h5 and its task.

    TensorFlow's deterministic ops are on while it trains (and put back after), so that one machine gives
    the same weights on every run: without them multi-threaded reductions sum in a varying order, and
    MobileNetV1's agreement with its deployment moved between 99.2 % and 99.7 % from run to run."""
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config  # the query and undo of the public switch

    was_on = tf_config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    try:
        return _train(name, out_dir, seed)
    finally:
        if not was_on:
            tf_config.disable_op_determinism()


def _train(name: str, out_dir: Path, seed: int) -> tuple[Path, Task]:
    import tensorflow as tf

    entry = ZOO[name]
    task = entry.task()
    tf.keras.utils.set_random_seed(seed)
    model = entry.build()
    for layer in model.layers:
        # A few hundred steps: BatchNorm's moving averages must follow quickly (Keras's 0.99 leaves the
        # inference-mode model near chance after this little training).
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            layer.momentum = BATCHNORM_MOMENTUM
    xt = task.x[task.train]
    if entry.regression:
        model.compile(optimizer=tf.keras.optimizers.Adam(entry.learning_rate), loss="mse")
        model.fit(xt, xt, epochs=entry.epochs, batch_size=32, verbose=0)
    else:
        model.compile(optimizer=tf.keras.optimizers.Adam(entry.learning_rate), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(xt, task.y[task.train], epochs=entry.epochs, batch_size=32, verbose=0)
    path = out_dir / f"{name}.h5"
    model.save(path)
    return path, task
