"""Read QKeras quantizers by running them: weights through the layer's own quantizer, activation
grids by probing the quantizer on a dense sweep. Classes are matched by type, never by name."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras
from qkeras import quantizers as q

from ...errors import UnsupportedModelError
from ..ir import Activation, Grid

MAX_WEIGHT_BITS = 8


def weight_quantizer_kind(quantizer: Any, where: str) -> tuple[str, str]:
    """(quantizer family, weight kind) for a layer's weight quantizer object (None = float)."""
    if quantizer is None:
        return "float", "int8"
    families: dict[type, tuple[str, str]] = {
        q.ternary: ("ternary", "ternary"),
        q.stochastic_ternary: ("stochastic_ternary", "ternary"),
        q.binary: ("binary", "binary"),
        q.stochastic_binary: ("stochastic_binary", "binary"),
        q.quantized_bits: ("quantized_bits", "int8"),
        # Deterministic at inference; whether a channel fits one int8 grid is decided in factor_alpha,
        # which approximates (and says so) where it does not.
        q.quantized_po2: ("quantized_po2", "int8"),
        q.quantized_ulaw: ("quantized_ulaw", "int8"),
    }
    family = families.get(type(quantizer))
    if family is None:
        raise UnsupportedModelError(
            f"{where}: weight quantizer {quantizer} is not supported; use ternary, stochastic_ternary, "
            "binary, stochastic_binary, quantized_bits(bits<=8), quantized_po2 or quantized_ulaw"
        )
    if family[0] == "quantized_bits" and int(quantizer.bits) > MAX_WEIGHT_BITS:
        raise UnsupportedModelError(f"{where}: quantized_bits({quantizer.bits}) weights exceed 8 bits")
    if family[1] == "binary" and getattr(quantizer, "use_01", False):
        raise UnsupportedModelError(f"{where}: binary(use_01=True) weights are not supported")
    return family


def quantize_weights(quantizer: Any, values: np.ndarray) -> np.ndarray:
    """The weights exactly as the layer uses them at inference (learning phase 0)."""
    if quantizer is None:
        return np.asarray(values, dtype=np.float64)
    out = quantizer(tf.constant(values, dtype=tf.float32))
    return np.asarray(out.numpy(), dtype=np.float64)


def _probe_levels(fn: Any, lo: float, hi: float, where: str) -> np.ndarray:
    xs = np.linspace(lo, hi, 400_001, dtype=np.float32)
    ys = np.asarray(fn(tf.constant(xs)).numpy(), dtype=np.float64)
    return np.unique(np.round(ys, 9))


def activation_grid(quantizer: Any, where: str) -> Grid:
    """The int8 grid of a quantized_relu / quantized_bits activation quantizer."""
    if type(quantizer) not in (q.quantized_relu, q.quantized_bits):
        raise UnsupportedModelError(
            f"{where}: activation quantizer {quantizer} is not supported; use quantized_relu or quantized_bits"
        )
    if type(quantizer) is q.quantized_bits and quantizer.alpha not in (None, 1, 1.0):
        raise UnsupportedModelError(f"{where}: quantized_bits activations need alpha=None or 1")
    if type(quantizer) is q.quantized_relu and getattr(quantizer, "negative_slope", 0.0):
        raise UnsupportedModelError(f"{where}: quantized_relu with negative_slope is not supported")
    if getattr(quantizer, "use_stochastic_rounding", False):
        raise UnsupportedModelError(f"{where}: stochastic rounding activations are not deterministic")
    top = float(max(abs(float(quantizer.max())), abs(float(quantizer.min())), 1e-3))
    levels = _probe_levels(quantizer, -2.0 * top - 1.0, 2.0 * top + 1.0, where)
    if len(levels) < 2 or len(levels) > 256:
        raise UnsupportedModelError(f"{where}: quantizer {quantizer} has {len(levels)} levels; int8 holds 256")
    steps = np.diff(levels)
    step = float(np.median(steps))
    if not np.allclose(steps, step, rtol=1e-4, atol=1e-9):
        raise UnsupportedModelError(f"{where}: quantizer {quantizer} has a non-uniform grid")
    return Grid.from_levels(float(levels[0]), step, len(levels), f"quantizer {quantizer} of {where}")


def classify_activation(obj: Any, where: str) -> Activation:
    """An Activation from a Keras activation function, its serialized name, or a QKeras quantizer."""
    if obj is None:
        return Activation("linear")
    if isinstance(obj, str):
        try:
            obj = tf_keras.activations.get(obj)
        except ValueError:
            obj = q.get_quantizer(obj)
    if type(obj) in (q.quantized_relu, q.quantized_bits):
        return Activation("quantized", activation_grid(obj, where), str(obj))
    if isinstance(obj, q.BaseQuantizer):
        raise UnsupportedModelError(f"{where}: activation quantizer {obj} is not supported")
    try:
        key = tf_keras.activations.serialize(obj)
    except (ValueError, TypeError) as exc:
        raise UnsupportedModelError(f"{where}: activation {obj!r} is not supported") from exc
    if isinstance(key, dict):
        key = key.get("config", key.get("class_name"))
    supported = {"linear": "linear", "relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "softmax": "softmax"}
    if key not in supported:
        raise UnsupportedModelError(
            f"{where}: activation '{key}' is not supported; supported: {', '.join(supported)}, "
            "quantized_relu, quantized_bits"
        )
    return Activation(supported[key], None, str(key))  # type: ignore[arg-type]
