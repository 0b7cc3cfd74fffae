"""Read QKeras quantizers by running them: weights through the layer's own quantizer, activation
grids by probing the quantizer on a dense sweep. Classes are matched by type, never by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras
from qkeras import quantizers as q

from ...errors import UnsupportedModelError
from ..ir import Activation, Grid, TableFunction

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
    """The int8 grid of a quantized_relu / quantized_bits activation quantizer that is a plain
    requantisation (classify_activation sends every other case to a table: alpha, negative_slope, …)."""
    if type(quantizer) not in (q.quantized_relu, q.quantized_bits):
        raise UnsupportedModelError(
            f"{where}: activation quantizer {quantizer} is not supported; use quantized_relu or quantized_bits"
        )
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


# QKeras activation quantizers deployed as a table of the quantizer itself (those that are not a plain
# requantisation onto a uniform grid, or not always): matched by exact type, never by name.
TABLE_QUANTIZERS: tuple[type, ...] = (
    q.quantized_relu,
    q.quantized_relu_po2,
    q.quantized_tanh,
    q.quantized_sigmoid,
    q.quantized_bits,
    q.quantized_hswish,
    q.quantized_po2,
    q.quantized_ulaw,
)
# QKeras's activation functions (QActivation("binary_tanh") etc.), by identity: the binary ones are
# quantizers (levels ±1 or 0/1), the hard and smooth ones piecewise-linear float functions.
QKERAS_FUNCTIONS: dict[Any, bool] = {
    q.binary_tanh: True,
    q.binary_sigmoid: True,
    q.hard_tanh: False,
    q.hard_sigmoid: False,
    q.smooth_tanh: False,
    q.smooth_sigmoid: False,
}
# Keras's other elementwise activations, by serialized name: float functions deployed as tables.
KERAS_TABLE_ACTIVATIONS = ("elu", "selu", "swish", "gelu", "softplus", "softsign", "mish", "relu6", "leaky_relu",
                           "hard_sigmoid")
# Probe points for levels, elementwise-ness and the active range: a dense sweep around the quantizer's
# range plus a logarithmic one (powers-of-two quantizers change near zero and far out).
SWEEP_POINTS = 200_001


def _is_requantisation(quantizer: Any) -> bool:
    """Whether the quantizer is round-and-clip onto a uniform grid, so a requantisation (fusable into the
    producing op) computes it: quantized_bits with no scale, quantized_relu with no sigmoid, no negative
    slope and no unquantised upper bound."""
    if type(quantizer) is q.quantized_bits:
        return quantizer.alpha in (None, 1, 1.0)
    if type(quantizer) is q.quantized_relu:
        upper_bound_cuts = bool(quantizer.relu_upper_bound) and not getattr(quantizer, "is_quantized_clip", True)
        return not (quantizer.use_sigmoid or quantizer.negative_slope or upper_bound_cuts)
    return False


def tensorflow_evaluator(fn: Any) -> Callable[[np.ndarray], np.ndarray]:
    """`fn` (a quantizer, a Keras layer's call) on real values, in float32 as Keras computes it. The values
    go in as one channel of many samples, so a scale computed over the batch (alpha='auto') shows."""

    def evaluate(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        out = fn(tf.constant(x.reshape(-1, 1))).numpy()
        return np.asarray(out, dtype=np.float64).reshape(x.shape)

    return evaluate


def _sweep(top: float) -> np.ndarray:
    linear = np.linspace(-2.0 * top - 1.0, 2.0 * top + 1.0, SWEEP_POINTS)
    magnitudes = np.logspace(-12, 12, 2_001, base=2.0)
    return np.unique(np.concatenate([linear, magnitudes, -magnitudes, [0.0]])).astype(np.float32)


def _check_elementwise(evaluate: Callable[[np.ndarray], np.ndarray], xs: np.ndarray, ys: np.ndarray,
                       name: str, where: str) -> None:
    """A table holds f(x) per element: refuse a quantizer whose output also depends on the rest of the
    tensor (a scale computed from it, e.g. alpha='auto')."""
    # The small values alone: a scale taken from the tensor (its largest magnitude, a fit) changes.
    small = np.abs(xs) <= np.abs(xs).max() / 16
    if not np.array_equal(evaluate(xs[small]), ys[small]):
        raise UnsupportedModelError(f"{where}: activation {name} is not elementwise "
                                    "(its output depends on the whole tensor), so no table can deploy it")


def _active_range(xs: np.ndarray, ys: np.ndarray) -> tuple[float | None, float | None]:
    """Where the output still changes, with a margin (so the last change stays inside an input grid
    clipped to it); None on a side where it changes up to the end of the sweep."""
    changes = np.flatnonzero(ys[1:] != ys[:-1])
    if len(changes) == 0:
        return (None, None)
    first, last = float(xs[changes[0]]), float(xs[changes[-1] + 1])
    margin = 0.02 * max(last - first, 1e-3)
    lo = first - margin if changes[0] > 0 else None
    hi = last + margin if changes[-1] + 2 < len(xs) else None
    return (lo, hi)


def _describe(quantizer: Any) -> str:
    """str(quantizer), or its class and config where QKeras's __str__ fails (quantized_hswish asserts)."""
    try:
        return str(quantizer)
    except Exception:  # noqa: BLE001
        config = ", ".join(f"{k}={v}" for k, v in quantizer.get_config().items())
        return f"{type(quantizer).__name__}({config})"


def tabulated_activation(fn: Any, name: str, top: float, quantizer: bool, where: str) -> Activation:
    """`fn` as a table activation: probed on a sweep (elementwise? where does it change? which levels?).
    Its output grid is stated when it is a quantizer whose levels are uniform and fit int8 (exact);
    otherwise the grids pass chooses one covering the values the input grid reaches, and the lowering
    reports a quantizer's approximation."""
    evaluate = tensorflow_evaluator(fn)
    xs = _sweep(min(top, 1024.0))
    try:
        ys = evaluate(xs)
    except Exception as exc:  # noqa: BLE001  (whatever TensorFlow raises: this quantizer cannot be tabulated)
        raise UnsupportedModelError(f"{where}: activation {name} failed on a sweep of values: {exc}") from exc
    _check_elementwise(evaluate, xs, ys, name, where)
    grid = Grid.holding(np.unique(ys), f"quantizer {name} of {where}") if quantizer else None
    return Activation("table", grid, name, TableFunction(evaluate, quantizer, _active_range(xs, ys)))


def table_activation(quantizer: Any, where: str) -> Activation:
    """A QKeras activation quantizer as a table of itself."""
    if type(quantizer) not in TABLE_QUANTIZERS:
        raise UnsupportedModelError(
            f"{where}: activation quantizer {type(quantizer).__name__} is not supported; supported: "
            + ", ".join(t.__name__ for t in TABLE_QUANTIZERS)
        )
    if getattr(quantizer, "use_stochastic_rounding", False):
        raise UnsupportedModelError(f"{where}: stochastic rounding activations are not deterministic")
    try:
        top = float(max(abs(float(quantizer.max())), abs(float(quantizer.min())), 1e-3))
    except (AttributeError, TypeError, ValueError):
        top = 1.0
    return tabulated_activation(quantizer, _describe(quantizer), top, True, where)


def classify_activation(obj: Any, where: str) -> Activation:
    """An Activation from a Keras activation function, its serialized name, or a QKeras quantizer."""
    if obj is None:
        return Activation("linear")
    if isinstance(obj, str):
        try:
            obj = tf_keras.activations.get(obj)
        except ValueError:
            obj = q.get_quantizer(obj)
    if isinstance(obj, q.BaseQuantizer):
        if _is_requantisation(obj):
            return Activation("quantized", activation_grid(obj, where), str(obj))
        return table_activation(obj, where)
    for fn, is_quantizer in QKERAS_FUNCTIONS.items():
        if obj is fn:
            return tabulated_activation(fn, fn.__name__, 4.0, is_quantizer, where)
    try:
        key = tf_keras.activations.serialize(obj)
    except (ValueError, TypeError) as exc:
        raise UnsupportedModelError(f"{where}: activation {obj!r} is not supported") from exc
    if isinstance(key, dict):
        key = key.get("config", key.get("class_name"))
    supported = {"linear": "linear", "relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "softmax": "softmax"}
    if key in KERAS_TABLE_ACTIVATIONS:
        return tabulated_activation(tf_keras.activations.get(key), str(key), 8.0, False, where)
    if key not in supported:
        raise UnsupportedModelError(
            f"{where}: activation '{key}' is not supported; supported: {', '.join(supported)}, "
            f"{', '.join(KERAS_TABLE_ACTIVATIONS)}, "
            "the QKeras quantizers " + ", ".join(t.__name__ for t in TABLE_QUANTIZERS) + " and the QKeras "
            "functions " + ", ".join(f.__name__ for f in QKERAS_FUNCTIONS)
        )
    return Activation(supported[key], None, str(key))  # type: ignore[arg-type]
