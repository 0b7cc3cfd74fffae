"""converter/calibration.py: ranges for tensors the model states no grid for."""

from __future__ import annotations

import numpy as np

from tinyrobust.converter.calibration import _quantisation_mse, min_max, minimum_error


def _samples(values: np.ndarray) -> np.ndarray:
    return np.concatenate([[values.min(), values.max()], values]).astype(np.float32)


def test_an_outlier_that_costs_resolution_is_clipped() -> None:
    """Normal values and one at 9: both ends shrink towards zero (each on its own), and the quantisation
    error of the samples drops."""
    values = np.concatenate([np.random.default_rng(0).normal(0.0, 1.0, 50_000), [9.0]])
    chosen, raw = minimum_error(_samples(values)), min_max(_samples(values))
    assert raw.lo < chosen.lo < 0 < chosen.hi < raw.hi and "least quantisation error" in chosen.method
    assert _quantisation_mse(values, chosen.lo, chosen.hi) < 0.95 * _quantisation_mse(values, raw.lo, raw.hi)


def test_a_lone_outlier_is_kept_when_clipping_it_costs_more() -> None:
    """One value at 20 among 50,000 in [0, 1]: clipping it would cost more squared error than the finer
    step saves, so the range keeps (nearly) all of it: least error, not a percentile rule."""
    values = np.concatenate([np.random.default_rng(2).uniform(0, 1, 50_000), [20.0]])
    chosen = minimum_error(_samples(values))
    assert chosen.hi > 15.0
    assert _quantisation_mse(values, chosen.lo, chosen.hi) <= _quantisation_mse(values, 0.0, 20.0)


def test_a_uniform_tensor_keeps_its_range() -> None:
    values = np.random.default_rng(1).uniform(-2, 3, 50_000)
    chosen = minimum_error(_samples(values))
    assert chosen.lo == np.float32(values.min()) and chosen.hi == np.float32(values.max())
    assert chosen.method.startswith("min/max")


def test_a_constant_tensor_keeps_min_max() -> None:
    assert minimum_error(_samples(np.full(100, 0.5))).method == "min/max"
