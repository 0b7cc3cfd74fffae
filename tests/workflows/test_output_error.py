"""The regression / anomaly measures of validate (workflows/output_error.py): error in output grid steps,
SNR, the reconstruction score, AUC by rank sums and Spearman's rank agreement, on cases whose answers are
known by hand, and against scikit-learn / SciPy on random data with ties."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from tinyrobust.workflows.output_error import (
    anomaly_agreement,
    auc,
    average_ranks,
    dequantize,
    output_error,
    reconstruction_score,
    snr_db,
    spearman,
)


def test_auc_of_a_perfect_an_inverted_and_a_constant_score() -> None:
    y = np.array([0, 0, 1, 1])
    assert auc(np.array([0.1, 0.2, 0.8, 0.9]), y) == 1.0
    assert auc(np.array([0.9, 0.8, 0.2, 0.1]), y) == 0.0
    assert auc(np.full(4, 3.0), y) == 0.5  # every pair tied: each counts half


def test_auc_by_hand_with_a_tie() -> None:
    """Anomalous 0.5 and 0.7, normal 0.1, 0.5, 0.6: pairs above 0.5 + 1 + 1 (0.5 ties, 0.1, 0.6 below 0.7 …)."""
    y = np.array([1, 1, 0, 0, 0])
    s = np.array([0.5, 0.7, 0.1, 0.5, 0.6])
    # 0.5 vs (0.1, 0.5, 0.6): 1 + 0.5 + 0; 0.7 vs all three: 3 → 4.5 of 6 pairs.
    assert auc(s, y) == pytest.approx(4.5 / 6)


def test_auc_matches_scikit_learn_on_random_scores_with_ties() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(5, 300))
        y = rng.integers(0, 2, n)
        y[:2] = (0, 1)  # both classes present
        s = np.round(rng.normal(size=n) + 0.7 * y, 1)  # rounding makes ties
        assert auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_auc_is_none_without_both_classes_and_refuses_other_labels() -> None:
    assert auc(np.array([0.1, 0.2]), np.array([0, 0])) is None
    assert auc(np.array([0.1, 0.2]), np.array([1, 1])) is None
    with pytest.raises(ValueError, match="0 .normal. or 1"):
        auc(np.array([0.1, 0.2]), np.array([0, 2]))


def test_average_ranks_share_ties() -> None:
    np.testing.assert_array_equal(average_ranks(np.array([3.0, 1.0, 3.0, 2.0, 3.0])), [4, 1, 4, 2, 4])
    assert average_ranks(np.array([])).size == 0


def test_spearman_by_hand_and_against_scipy() -> None:
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert spearman(a, a ** 3) == pytest.approx(1.0)  # any increasing map keeps the ranking
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, np.full(5, 2.0)) is None  # a constant score ranks nothing
    rng = np.random.default_rng(1)
    x = np.round(rng.normal(size=200), 1)
    y = np.round(x + rng.normal(scale=0.5, size=200), 1)
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)


def test_snr_by_hand_and_exact() -> None:
    ref = np.array([3.0, 4.0])  # signal power 25
    assert snr_db(ref, ref + np.array([0.5, 0.0])) == pytest.approx(10 * np.log10(25 / 0.25))  # 20 dB
    assert snr_db(ref, ref) is None


def test_output_error_in_steps_of_the_output_grid() -> None:
    """Grid scale 0.5, zero point 2: q = 4 is 1.0. Keras 1.1 → 0.2 steps; Keras 0.0 vs q 4 → 2 steps."""
    keras = np.array([[1.1, 0.0], [1.0, 1.0]])
    q = np.array([[4, 4], [4, 4]], np.int8)
    e = output_error("out", keras, q, 0.5, 2)
    assert e.max_steps == pytest.approx(2.0) and e.mean_steps == pytest.approx((0.2 + 2.0) / 4)
    assert e.values == 4 and e.clipped == 0.0 and e.tensor == "out"
    assert e.snr_db == pytest.approx(10 * np.log10((1.21 + 2) / (0.01 + 1)))
    np.testing.assert_allclose(dequantize(q, 0.5, 2), 1.0)


def test_output_error_is_exact_when_keras_lies_on_the_grid() -> None:
    q = np.arange(-128, 128, dtype=np.int8).reshape(4, 64)
    e = output_error("out", dequantize(q, 0.25, -3), q, 0.25, -3)
    assert e.max_steps == 0.0 and e.snr_db is None and e.clipped == 0.0


def test_clipped_counts_keras_values_beyond_the_grid_rails() -> None:
    """Grid 0.1, zero point 0: rails −12.8 and 12.7. 20.0 is clipped, 12.74 (under half a step out) is not."""
    keras = np.array([[20.0, 12.74, 0.0, -12.8]])
    q = np.array([[127, 127, 0, -128]], np.int8)
    e = output_error("out", keras, q, 0.1, 0)
    assert e.clipped == pytest.approx(0.25) and e.max_steps == pytest.approx(73.0)


def test_reconstruction_score_is_the_mean_squared_error_per_sample() -> None:
    x = np.array([[[1.0, 2.0]], [[0.0, 0.0]]])  # any sample shape: flattened
    out = np.array([[1.0, 0.0], [3.0, 1.0]])
    np.testing.assert_allclose(reconstruction_score(x, out), [2.0, 5.0])
    with pytest.raises(ValueError, match="differ in shape"):
        reconstruction_score(x, np.zeros((2, 3)))


def test_anomaly_agreement_of_a_deployed_copy_and_of_a_reversed_one() -> None:
    rng = np.random.default_rng(2)
    y = np.r_[np.zeros(30, int), np.ones(10, int)]
    x = rng.normal(size=(40, 8))
    keras = x + rng.normal(scale=0.1 + 0.5 * y[:, None], size=(40, 8))  # anomalies reconstruct worse
    near = anomaly_agreement(x, y, {"keras": keras, "reference": keras + 1e-3, "target": keras + 1e-3})
    assert near["auc"]["keras"] > 0.9 and near["auc_difference"] < 0.02 and near["spearman_keras_target"] > 0.99
    assert near["samples"] == 40 and near["anomalous"] == 10
    # A deployed model that reconstructs the anomalies well and the normal samples badly ranks them backwards.
    bad = x + rng.normal(scale=0.6 - 0.5 * y[:, None], size=(40, 8))
    far = anomaly_agreement(x, y, {"keras": keras, "reference": bad, "target": bad})
    assert far["auc"]["target"] < 0.1 and far["auc_difference"] > 0.8 and far["spearman_keras_target"] < 0
    none = anomaly_agreement(x, y, {"keras": None, "reference": keras, "target": keras})
    assert none["auc"]["keras"] is None and none["auc_difference"] is None and none["spearman_keras_target"] is None
