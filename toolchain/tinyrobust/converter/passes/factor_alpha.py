"""Factor the per-output-channel scale out of quantized weights: values = codes · scale.

Ternary codes must come out exactly in {−1, 0, 1} and binary codes in {−1, 1}: every channel is
verified to hold only {−α_c, 0, α_c}, otherwise the pass fails naming the layer and channel.
quantized_bits weights are placed on their exact per-channel grid; float weights get int8
per-channel symmetric codes (an approximation, reported as such).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...errors import UnsupportedModelError
from ..ir import ConvNode, Graph, WeightTensor

REL_TOL = 1e-5
MAX_GRID_DIVISOR = 256


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


def _factor_int8(m: np.ndarray, quantizer: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    steps = np.zeros(m.shape[1])
    for c in range(m.shape[1]):
        col = m[:, c]
        step = _exact_grid_step(col) if quantizer == "quantized_bits" else None
        if step is None:
            if quantizer == "quantized_bits":
                raise UnsupportedModelError(f"{where}: channel {c} of quantized_bits weights is not on an int8 grid")
            peak = float(np.abs(col).max())
            step = peak / 127.0 if peak > 0 else 1.0
        steps[c] = step
    codes = np.clip(np.round(m / steps), -128, 127).astype(np.int8)
    return codes, steps


def factor_weights(weights: WeightTensor, depthwise: bool, where: str) -> WeightTensor:
    v = weights.values
    m = v.reshape(-1, v.shape[2] * v.shape[3]) if depthwise else v.reshape(-1, v.shape[-1])
    if weights.kind == "ternary":
        codes, scale = _factor_equal_magnitude(m, where, allow_zero=True)
    elif weights.kind == "binary":
        codes, scale = _factor_equal_magnitude(m, where, allow_zero=False)
    else:
        codes, scale = _factor_int8(m, weights.quantizer, where)
    return replace(weights, codes=codes.reshape(v.shape), channel_scale=scale.astype(np.float64))


def factor_alpha(graph: Graph) -> Graph:
    nodes = []
    for node in graph.nodes:
        if isinstance(node, ConvNode) and node.weights.codes is None:
            where = f"layer '{node.name}'"
            node = replace(node, weights=factor_weights(node.weights, node.kind == "depthwise", where))
        nodes.append(node)
    return replace(graph, nodes=tuple(nodes))
