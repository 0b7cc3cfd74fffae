"""Lowering edge cases on hand-built graphs (no TensorFlow): sign flips, dead channels, bias precision."""

from __future__ import annotations

import numpy as np
import pytest

from tinyrobust.ir import ConvNode, Graph, Grid, InputNode, TensorInfo, UnsupportedModelError, WeightTensor
from tinyrobust.lower import LowerOptions, lower
from tinyrobust.reference import Reference

IN = Grid(1 / 16, -128, -128, 127, "test input")
OUT = Grid(1 / 32, 0, -128, 127, "test output")


def _dense_graph(codes: np.ndarray, alpha: np.ndarray, post_scale: np.ndarray, post_bias: np.ndarray,
                 kind: str = "ternary") -> Graph:
    cin, cout = codes.shape
    w = WeightTensor(values=codes * alpha, quantizer="test", kind=kind, codes=codes.astype(np.int8),  # type: ignore[arg-type]
                     channel_scale=alpha)
    nodes = (InputNode("x", "x"), ConvNode("fc", ("x",), "y", "dense", w, post_scale, post_bias))
    tensors = {"x": TensorInfo("x", (cin,), "x", IN), "y": TensorInfo("y", (cout,), "y", OUT)}
    return Graph(nodes, tensors, "x", "y", "test")


def _real(codes, alpha, post_scale, post_bias, q):
    x = IN.scale * (q.astype(np.float64) - IN.zero_point)
    return post_scale * ((x @ codes) * alpha) + post_bias


@pytest.mark.parametrize("seed", range(20))
def test_dense_matches_real_arithmetic_within_half_a_step(seed):
    """Negative BN scales (sign flips), dead channels and biases that are not multiples of the
    accumulator unit: every output within 0.5 step (+ a hair) of the exact real result."""
    rng = np.random.default_rng(seed)
    cin, cout = 24, 9
    codes = rng.integers(-1, 2, (cin, cout))
    alpha = rng.uniform(0.05, 0.4, cout)
    alpha[0] = 0.0  # a dead channel: outputs its bias only
    post_scale = rng.uniform(0.5, 1.5, cout) * np.where(rng.random(cout) < 0.4, -1, 1)
    post_bias = rng.uniform(-1.0, 1.0, cout)
    program = lower(_dense_graph(codes, alpha, post_scale, post_bias), LowerOptions())
    q = rng.integers(-128, 128, (64, cin)).astype(np.int8)
    out = Reference(program).run(q).astype(np.float64)
    real = np.clip(_real(codes, alpha, post_scale, post_bias, q), OUT.real_min, OUT.real_max)
    err = np.abs(OUT.scale * (out - OUT.zero_point) - real) / OUT.scale
    assert err.max() <= 0.5 + 0.02, err.max()
    assert program.ops[0].params["bias_shift"] > 0


def test_int8_minus_128_with_negative_scale_is_refused():
    codes = np.array([[-128], [5]])
    g = _dense_graph(codes, np.array([0.01]), np.array([-1.0]), np.array([0.0]), kind="int8")
    with pytest.raises(UnsupportedModelError, match="-128"):
        lower(g, LowerOptions())
