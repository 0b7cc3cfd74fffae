"""What the robustness attacks need from TensorFlow: seeding, a Keras model's logits, ART's gradient
classifier around them, and the BPDA estimator (the deployed model forward, the STE surrogate's
gradient backward), which ART does not have.

The STE surrogate is the QKeras model itself: its quantizers are straight-through estimators in
the backward pass, so its input gradients exist where the deployed integer model has none.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras
from art.estimators.classification import TensorFlowV2Classifier
from art.estimators.classification.classifier import ClassifierMixin
from art.estimators.estimator import BaseEstimator, LossGradientsMixin

LOSSES = ("ce", "dlr")
_DLR_EPS = 1e-12  # Croce & Hein's guard: quantised logits tie often, so z_1 = z_3 happens


def seed_everything(seed: int) -> None:
    """Python's, numpy's and TensorFlow's global generators (attacks draw from them), and
    deterministic TensorFlow kernels, so one seed gives one report."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    tf.random.set_seed(seed)
    tf.config.experimental.enable_op_determinism()


def logits_function(keras_model: Any) -> tuple[Callable[..., Any], str]:
    """A callable giving the pre-softmax logits of the Keras model, and what it is.

    Gradients are taken on logits, not probabilities: a saturated softmax has near-zero
    gradients, which would masquerade as robustness (gradient masking) and starve C&W.
    """
    last = keras_model.layers[-1]
    act = getattr(last, "activation", None)
    is_softmax = act is tf_keras.activations.softmax or getattr(act, "__name__", "") == "softmax"
    if not is_softmax:
        return (lambda x, training=False: keras_model(x, training=training)), "model output (no softmax found)"
    inner = tf_keras.Model(keras_model.inputs, last.input)
    if isinstance(last, tf_keras.layers.Activation):
        return (lambda x, training=False: inner(x, training=training)), f"input of softmax layer '{last.name}'"

    def pre_activation(x: Any, training: bool = False) -> Any:
        # The layer applies softmax inside call(); swap it out for this call only.
        saved = last.activation
        last.activation = tf_keras.activations.linear
        try:
            return last(inner(x, training=training), training=training)
        finally:
            last.activation = saved

    return pre_activation, f"pre-activation of layer '{last.name}'"


def _traced(keras_model: Any) -> tuple[Any, str]:
    logits_fn, source = logits_function(keras_model)
    # Eager QKeras layers cost ~35 ms a call; a traced graph makes the attacks several times faster.
    # reduce_retracing: batches vary in size, one relaxed-shape trace serves them all.
    return tf.function(logits_fn, reduce_retracing=True), source


def gradient_classifier(keras_model: Any, *, nb_classes: int, input_shape: tuple[int, ...],
                        clip_values: tuple[float, float]) -> tuple[Any, str]:
    """ART's TensorFlowV2Classifier on the model's logits (its own gradients: for a QKeras model,
    straight-through estimators), and where its gradients come from."""
    traced, source = _traced(keras_model)
    classifier = TensorFlowV2Classifier(
        model=traced,
        nb_classes=nb_classes,
        input_shape=input_shape,
        loss_object=tf.keras.losses.CategoricalCrossentropy(from_logits=True),
        clip_values=clip_values,
    )
    return classifier, source


def logits_numpy(keras_model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The model's logits as a numpy function (float32 in, float32 out)."""
    traced, _ = _traced(keras_model)
    return lambda x: traced(tf.constant(np.asarray(x, dtype=np.float32))).numpy()


def loss_and_logit_gradient(z: np.ndarray, y: np.ndarray, loss: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample loss (to maximise) of logits z (N, K) for labels y (N,), and its gradient dL/dz.

    ce: cross-entropy. dlr: Croce & Hein's difference of logits ratio, −(z_y − max_{i≠y} z_i) /
    (z_π1 − z_π3 + 1e-12), as ART's APGD defines it.
    """
    z = np.asarray(z, dtype=np.float64)
    n, k = z.shape
    rows = np.arange(n)
    if loss == "ce":
        shifted = z - z.max(axis=1, keepdims=True)
        p = np.exp(shifted)
        p /= p.sum(axis=1, keepdims=True)
        value = -np.log(np.maximum(p[rows, y], 1e-300))
        grad = p.copy()
        grad[rows, y] -= 1.0
        return value, grad
    if loss != "dlr":
        raise ValueError(f"unknown loss {loss!r}; choose from {LOSSES}")
    order = np.argsort(z, axis=1, kind="stable")
    top, third = order[:, -1], order[:, -3] if k >= 3 else order[:, 0]
    other = np.where(top != y, top, order[:, -2])
    denom = z[rows, top] - z[rows, third] + _DLR_EPS
    num = z[rows, y] - z[rows, other]
    value = -num / denom
    grad = np.zeros_like(z)
    np.add.at(grad, (rows, y), -1.0 / denom)
    np.add.at(grad, (rows, other), 1.0 / denom)
    np.add.at(grad, (rows, top), num / denom**2)
    np.add.at(grad, (rows, third), -num / denom**2)
    return value, grad


class BPDAClassifier(ClassifierMixin, LossGradientsMixin, BaseEstimator):
    """An ART estimator whose forward pass is the deployed integer model and whose backward pass is
    the STE surrogate (BPDA, Athalye et al. 2018): the loss and dL/dz are computed on the deployed
    model's logits z, then carried to the input through the surrogate's Jacobian at the same input.

    Hand-written because ART has no BPDA estimator: its attacks (FGSM, PGD, APGD) take any
    estimator with predict / compute_loss / loss_gradient, so they run on this one unchanged, and
    every success they report is a success on the deployed model.
    """

    estimator_params = BaseEstimator.estimator_params + ClassifierMixin.estimator_params + ["loss"]

    def __init__(self, keras_model: Any, forward: Callable[[np.ndarray], np.ndarray], *, nb_classes: int,
                 input_shape: tuple[int, ...], clip_values: tuple[float, float], loss: str = "ce"):
        super().__init__(model=None, clip_values=clip_values)
        self._surrogate, self.source = _traced(keras_model)
        self._forward = forward
        self._input_shape = tuple(input_shape)
        self.nb_classes = nb_classes
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose from {LOSSES}")
        self.loss = loss

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self._input_shape

    def predict(self, x: np.ndarray, batch_size: int = 128, **kwargs: Any) -> np.ndarray:
        return np.asarray(self._forward(np.asarray(x, dtype=np.float32)), dtype=np.float32)

    def fit(self, x: np.ndarray, y: np.ndarray, **kwargs: Any) -> None:
        raise NotImplementedError("a BPDA estimator attacks a trained model; it does not train")

    def _labels(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y)
        return y.argmax(axis=1) if y.ndim == 2 else y.astype(np.int64)

    def compute_loss(self, x: np.ndarray, y: np.ndarray, reduction: str = "none", **kwargs: Any) -> np.ndarray:
        value, _ = loss_and_logit_gradient(self.predict(x), self._labels(y), self.loss)
        value = value.astype(np.float32)
        return {"none": value, "mean": value.mean(), "sum": value.sum()}[reduction]

    def loss_gradient(self, x: np.ndarray, y: np.ndarray, **kwargs: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        _, upstream = loss_and_logit_gradient(self.predict(x), self._labels(y), self.loss)
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            z = self._surrogate(xt)
        grad = tape.gradient(z, xt, output_gradients=tf.constant(upstream.astype(np.float32)))
        return np.zeros_like(x) if grad is None else grad.numpy().astype(np.float32)

    def get_activations(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise NotImplementedError


def bpda_classifier(keras_model: Any, forward: Callable[[np.ndarray], np.ndarray], *, nb_classes: int,
                    input_shape: tuple[int, ...], clip_values: tuple[float, float], loss: str = "ce") -> Any:
    """The BPDA estimator: `forward` (float inputs → the deployed model's logits), gradients of the
    QKeras model (straight-through estimators)."""
    return BPDAClassifier(keras_model, forward, nb_classes=nb_classes, input_shape=input_shape,
                          clip_values=clip_values, loss=loss)
