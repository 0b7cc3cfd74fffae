"""Factor the per-output-channel scale out of quantized weights: values = codes · scale.

Ternary codes must come out exactly in {−1, 0, 1} and binary codes in {−1, 1}: every channel is
verified to hold only {−α_c, 0, α_c}, otherwise the pass fails naming the layer and channel.
quantized_bits weights are placed on their exact per-channel grid (refused where a channel has none).
quantized_po2 and quantized_ulaw weights are placed on an exact grid where a channel has one (powers of
two spanning at most 7 octaves do); a channel that has none gets the int8 grid nearest its values (see
_nearest_grid_step); float weights get int8 symmetric codes (step max|w|/127). How far those are from the
weights is recorded on the WeightTensor (`approximation`), and the graph's notes (the report's Notes)
name every approximated layer.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...errors import UnsupportedModelError
from ..ir import ConvNode, Graph, WeightApproximation, WeightTensor

REL_TOL = 1e-5
MAX_GRID_DIVISOR = 256
GRID_ATOL = 1e-4  # in grid steps: what _exact_grid_step accepts as an integer (float32 weights)
# Quantizers whose weights are tried on an exact grid first; quantized_bits is refused off it.
GRID_FAMILIES = ("quantized_bits", "quantized_po2", "quantized_ulaw")


def _factor_equal_magnitude(m: np.ndarray, where: str, allow_zero: bool) -> tuple[np.ndarray, np.ndarray]:
    codes = np.sign(m).astype(np.int8)
    alpha = np.abs(m).max(axis=0)
    for c in range(m.shape[1]):
        col = np.abs(m[:, c])
        nonzero = col[col > 0]
        if not allow_zero and nonzero.size != col.size:
            raise UnsupportedModelError(f"{where}: channel {c} has zero weights, not binary")
        if nonzero.size and not np.allclose(nonzero, alpha[c], rtol=REL_TOL, atol=0):
            bad = sorted({float(v) for v in np.round(nonzero, 8)})[:4]
            raise UnsupportedModelError(
                f"{where}: channel {c} is not ternary: magnitudes {bad} differ from alpha {alpha[c]:.6g}"
            )
    return codes, alpha


def _exact_grid_step(col: np.ndarray) -> float | None:
    """The largest step Δ with every value an integer multiple of Δ in [−128, 127], or None."""
    nonzero = np.abs(col[col != 0])
    if nonzero.size == 0:
        return 1.0
    smallest = float(nonzero.min())
    for divisor in range(1, MAX_GRID_DIVISOR + 1):
        step = smallest / divisor
        k = col / step
        if np.allclose(k, np.round(k), atol=1e-4) and np.abs(np.round(k)).max() <= 128:
            if np.round(k).max() <= 127:
                return step
    return None


def _symmetric_step(col: np.ndarray) -> float:
    peak = float(np.abs(col).max())
    return peak / 127.0 if peak > 0 else 1.0


def _nearest_grid_step(col: np.ndarray) -> float:
    """For a quantizer's channel on no int8 grid: the step peak/n, n = 128 … 1, whose codes (rounded,
    clipped to int8) move the weights least in total (squared); ties go to the finer step. µ-law's
    levels 0.752101 and 0.875 are 104.005 and 121 steps of 0.875/121 where peak/127 leaves 0.23 of a
    step; powers of two over 7 octaves keep all but their smallest (or their peak) weights exact."""
    peak = float(np.abs(col).max())
    if peak == 0:
        return 1.0
    steps = peak / np.arange(128, 0, -1, dtype=np.float64)
    codes = np.clip(np.round(col[:, None] / steps[None, :]), -128, 127)
    cost = np.sum((codes * steps[None, :] - col[:, None]) ** 2, axis=0)
    return float(steps[int(np.argmin(cost))])


def _factor_int8(m: np.ndarray, quantizer: str, where: str) -> tuple[np.ndarray, np.ndarray,
                                                                   WeightApproximation | None]:
    steps = np.zeros(m.shape[1])
    for c in range(m.shape[1]):
        col = m[:, c]
        step = _exact_grid_step(col) if quantizer in GRID_FAMILIES else None
        if step is None:
            if quantizer == "quantized_bits":
                raise UnsupportedModelError(f"{where}: channel {c} of quantized_bits weights is not on an int8 grid")
            step = _nearest_grid_step(col) if quantizer in GRID_FAMILIES else _symmetric_step(col)
        steps[c] = step
    codes = np.clip(np.round(m / steps), -128, 127).astype(np.int8)
    error = np.abs(codes * steps - m) / steps
    moved = error > GRID_ATOL
    if not moved.any():
        return codes, steps, None
    return codes, steps, WeightApproximation(
        channels=int(moved.any(axis=0).sum()), of_channels=m.shape[1], moved=int(moved.sum()), of_weights=m.size,
        max_error_steps=float(error.max()))


def factor_weights(weights: WeightTensor, depthwise: bool, where: str) -> WeightTensor:
    v = weights.values
    m = v.reshape(-1, v.shape[2] * v.shape[3]) if depthwise else v.reshape(-1, v.shape[-1])
    approximation = None
    if weights.kind == "ternary":
        codes, scale = _factor_equal_magnitude(m, where, allow_zero=True)
    elif weights.kind == "binary":
        codes, scale = _factor_equal_magnitude(m, where, allow_zero=False)
    else:
        codes, scale, approximation = _factor_int8(m, weights.quantizer, where)
    return replace(weights, codes=codes.reshape(v.shape), channel_scale=scale.astype(np.float64),
                   approximation=approximation)


def approximation_note(weights: WeightTensor, where: str) -> str | None:
    """The report's line for a quantizer's weights deployed off their values (None when exact, and for
    float weights, which float_weights_note covers)."""
    a = weights.approximation
    if a is None or weights.quantizer == "float":
        return None
    return (f"{where}: {weights.description or weights.quantizer} weights are not on one int8 grid per channel; "
            f"approximated with int8 codes ({a.channels} of {a.of_channels} channels, {a.moved} of "
            f"{a.of_weights} weights moved, max error {a.max_error_steps:.2g} weight steps)")


def float_weights_note(layers: list[str], max_error_steps: float) -> str:
    """One line for every unquantised layer: int8 by nature, so named together rather than one by one."""
    return (f"unquantised (float) weights of {', '.join(layers)} are approximated with int8 per-channel codes "
            f"(step max|w|/127; max error {max_error_steps:.2g} weight steps)")


def factor_alpha(graph: Graph) -> Graph:
    nodes = []
    notes = []
    float_layers: list[str] = []
    float_error = 0.0
    for node in graph.nodes:
        if isinstance(node, ConvNode) and node.weights.codes is None:
            where = f"layer '{node.name}'"
            node = replace(node, weights=factor_weights(node.weights, node.kind == "depthwise", where))
            note = approximation_note(node.weights, where)
            if note is not None:
                notes.append(note)
            a = node.weights.approximation
            if node.weights.quantizer == "float" and a is not None:
                float_layers.append(f"'{node.name}'")
                float_error = max(float_error, a.max_error_steps)
        nodes.append(node)
    if float_layers:
        notes.append(float_weights_note(float_layers, float_error))
    graph = replace(graph, nodes=tuple(nodes))
    for note in notes:
        graph = graph.with_note(note)
    return graph
