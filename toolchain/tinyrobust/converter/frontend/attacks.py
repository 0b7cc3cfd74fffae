"""What the robustness attacks need from TensorFlow: seeding, the Keras model's logits, and ART's
gradient-based classifier around them (straight-through estimators, as QKeras trains)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras
from art.estimators.classification import TensorFlowV2Classifier


def seed_everything(seed: int) -> None:
    """Python's, numpy's and TensorFlow's global generators, for attacks that draw from them."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    tf.random.set_seed(seed)


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


def gradient_classifier(keras_model: Any, *, nb_classes: int, input_shape: tuple[int, ...],
                        clip_values: tuple[float, float]) -> tuple[Any, str]:
    """ART's TensorFlowV2Classifier on the model's logits, and where its gradients come from."""
    logits_fn, source = logits_function(keras_model)
    # Eager QKeras layers cost ~35 ms a call; a traced graph makes C&W/PGD several times faster.
    # reduce_retracing: ART's batches vary in size, one relaxed-shape trace serves them all.
    traced = tf.function(logits_fn, reduce_retracing=True)
    classifier = TensorFlowV2Classifier(
        model=traced,
        nb_classes=nb_classes,
        input_shape=input_shape,
        loss_object=tf.keras.losses.CategoricalCrossentropy(from_logits=True),
        clip_values=clip_values,
    )
    return classifier, source
