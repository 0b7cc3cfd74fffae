"""Run the float Keras model: its outputs, and the value ranges of IR tensors for calibration."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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


def _probes(model: Any, tensor_names: Sequence[str]) -> list[tuple[str, Any, Any]]:
    """(IR tensor, Keras tensor, function computing it from that tensor or None) for each name: a layer
    output, a layer's pre-activation, or a separable layer's depthwise half."""
    probes: list[tuple[str, Any, Any]] = []
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
                raise UnsupportedModelError(f"tensor '{name}' is not the output of a layer of the model") from exc
    return probes


# A model's input samples: one array, or one array per input of a model with several (in model.inputs order).
Inputs = np.ndarray | Sequence[np.ndarray]


def _count(x: Inputs) -> int:
    return len(x) if isinstance(x, np.ndarray) else len(x[0])


def _slice(x: Inputs, start: int, stop: int) -> Any:
    return x[start:stop] if isinstance(x, np.ndarray) else [a[start:stop] for a in x]


def iter_tensor_values(model: Any, tensor_names: Sequence[str], x: Inputs,
                       batch: int = 256) -> Iterator[dict[str, np.ndarray]]:
    """The float values of IR tensors on `x`, one dict per batch of samples (name → (batch, …) array)."""
    if not tensor_names:
        return
    probes = _probes(model, tensor_names)
    probe = tf_keras.Model(model.inputs, [p[1] for p in probes])
    for start in range(0, _count(x), batch):
        values = as_list(probe(_slice(x, start, start + batch), training=False))
        yield {name: np.asarray(post(v) if post is not None else v) for (name, _, post), v in
               zip(probes, values, strict=True)}


def tensor_values(model: Any, tensor_names: Sequence[str], x: np.ndarray) -> dict[str, np.ndarray]:
    """The float values of IR tensors on every sample of `x` (name → (N, …) array)."""
    parts: dict[str, list[np.ndarray]] = {n: [] for n in tensor_names}
    for batch in iter_tensor_values(model, tensor_names, x):
        for name, v in batch.items():
            parts[name].append(v)
    return {n: np.concatenate(v) for n, v in parts.items() if v}


def tensor_samples(model: Any, tensor_names: Sequence[str], x: Inputs, *, per_tensor: int = 200_000,
                   seed: int = 0) -> dict[str, np.ndarray]:
    """For calibration: each IR tensor's exact min and max over `x` and a uniform random sample of at
    most `per_tensor` of its values (all of them when fewer), as one flat float array per tensor whose
    first two entries are the min and the max."""
    rng = np.random.default_rng(seed)
    batches = max(1, -(-_count(x) // 256))
    kept: dict[str, list[np.ndarray]] = {n: [] for n in tensor_names}
    for batch in iter_tensor_values(model, tensor_names, x):
        for name, v in batch.items():
            flat = v.reshape(-1).astype(np.float32)
            take = min(flat.size, -(-per_tensor // batches))
            chosen = flat if take == flat.size else rng.choice(flat, size=take, replace=False)
            kept[name].append(np.array([flat.min(), flat.max()], np.float32))
            kept[name].append(chosen)
    out = {}
    for name, parts in kept.items():
        extremes = np.concatenate(parts[0::2])
        out[name] = np.concatenate([[extremes.min(), extremes.max()], *parts[1::2]]).astype(np.float32)
    return out


def predict(model: Any, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """The float model's outputs (inference mode)."""
    outs = [np.asarray(model(x[i : i + batch], training=False)) for i in range(0, len(x), batch)]
    return np.concatenate(outs, axis=0) if outs else np.zeros((0,))


def predict_outputs(model: Any, xs: Sequence[np.ndarray], batch: int = 256) -> list[np.ndarray]:
    """The float model's outputs, one array per output (model.outputs order), for one array per input."""
    parts: list[list[np.ndarray]] = [[] for _ in as_list(model.outputs)]
    for i in range(0, _count(xs), batch):
        for k, v in enumerate(as_list(model(_slice(xs, i, i + batch), training=False))):
            parts[k].append(np.asarray(v))
    return [np.concatenate(p, axis=0) for p in parts]
