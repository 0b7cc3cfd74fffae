"""Run the float Keras model: its outputs, and the value ranges of IR tensors for calibration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras

from ...errors import UnsupportedModelError
from .handlers import PRE_ACTIVATION, SEPARABLE_MID
from .walk import as_list


def _separable_half(layer: Any, x: Any) -> Any:
    """The depthwise half of a (Q)SeparableConv2D, as the layer computes it internally."""
    kernel = layer.depthwise_kernel
    quantizer = getattr(layer, "depthwise_quantizer_internal", None)
    if quantizer is not None:
        kernel = quantizer(kernel)
    strides = (1, *layer.strides, 1)
    return tf.nn.depthwise_conv2d(x, kernel, strides=strides, padding=layer.padding.upper())


def _pre_activation(layer: Any, x: Any) -> Any:
    """A layer's output before its built-in activation (e.g. the logits under softmax)."""
    saved = layer.activation
    layer.activation = tf_keras.activations.linear
    try:
        return layer(x, training=False)
    finally:
        layer.activation = saved


def tensor_ranges(
    model: Any, tensor_names: Sequence[str], x: np.ndarray, batch: int = 256
) -> Mapping[str, tuple[float, float]]:
    """min/max over `x` of IR tensors: layer outputs, or a separable layer's depthwise half."""
    if not tensor_names:
        return {}
    probes: list[tuple[str, Any, Any]] = []  # (IR tensor, keras tensor, function computing it, or None)
    for name in tensor_names:
        if name.endswith(SEPARABLE_MID):
            layer = model.get_layer(name[: -len(SEPARABLE_MID)])
            probes.append((name, layer.input, lambda v, layer=layer: _separable_half(layer, v)))
        elif name.endswith(PRE_ACTIVATION):
            layer = model.get_layer(name[: -len(PRE_ACTIVATION)])
            probes.append((name, layer.input, lambda v, layer=layer: _pre_activation(layer, v)))
        else:
            try:
                probes.append((name, model.get_layer(name).output, None))
            except ValueError as exc:
                raise UnsupportedModelError(f"tensor '{name}' needs calibration but is not a layer output") from exc
    probe = tf_keras.Model(model.inputs, [p[1] for p in probes])
    lo = {n: np.inf for n in tensor_names}
    hi = {n: -np.inf for n in tensor_names}
    for start in range(0, len(x), batch):
        values = as_list(probe(x[start : start + batch], training=False))
        for (name, _, post), v in zip(probes, values, strict=True):
            v = np.asarray(post(v) if post is not None else v)
            lo[name] = min(lo[name], float(v.min()))
            hi[name] = max(hi[name], float(v.max()))
    return {n: (lo[n], hi[n]) for n in tensor_names}


def predict(model: Any, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """The float model's outputs (inference mode)."""
    outs = [np.asarray(model(x[i : i + batch], training=False)) for i in range(0, len(x), batch)]
    return np.concatenate(outs, axis=0) if outs else np.zeros((0,))
