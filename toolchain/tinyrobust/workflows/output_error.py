"""A model whose output is not a class (an autoencoder, a regression): the deployed output measured
against Keras's, and an anomaly score's ranking. Pure numpy.

- Output error: per model output, |deployed − Keras| in steps of the output tensor's grid (its scale; an
  ideal int8 rounding of the Keras value is at most half a step away), max and mean, and the SNR in dB,
  10·log10(Σ keras² / Σ (deployed − keras)²) (None when the two are equal everywhere).
- Anomaly score of a sample: the mean squared reconstruction error between its float input x (as given in
  --data) and the model's output, mean over the output's values: the MLPerf Tiny anomaly-detection score.
  Keras's score uses Keras's output, the deployed score the dequantised int8 output.
- AUC of a score against labels (1 = anomalous): the rank-sum (Mann–Whitney U) formula with average ranks
  for ties, i.e. the probability that an anomalous sample scores above a normal one, ties counting half.
- Ranking agreement: Spearman's rank correlation of Keras's and the deployed score.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class OutputError:
    tensor: str
    scale: float
    zero_point: int
    values: int  # values compared (samples × output size)
    max_steps: float  # max |deployed − Keras| in steps of the output grid
    mean_steps: float
    snr_db: float | None  # None: the deployed output equals Keras's exactly
    clipped: float  # fraction of Keras values outside the grid's range by more than half a step
    bits: int = 8  # the output's width: its steps are 256 times finer at 16

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return scale * (np.asarray(q).astype(np.float64) - zero_point)


def snr_db(reference: np.ndarray, approximation: np.ndarray) -> float | None:
    """10·log10(signal / noise) of `approximation` against `reference`; None when the noise is 0."""
    r = np.asarray(reference, np.float64)
    noise = float(np.sum((np.asarray(approximation, np.float64) - r) ** 2))
    if noise == 0.0:
        return None
    return float(10.0 * np.log10(max(float(np.sum(r * r)), 1e-300) / noise))


def output_error(tensor: str, keras: np.ndarray, q: np.ndarray, scale: float, zero_point: int,
                 bits: int = 8) -> OutputError:
    """Keras's float output (N, …) against the deployed int8 (or int16) output (N, …) on the grid
    (scale, zero_point)."""
    k = np.asarray(keras, np.float64).reshape(len(keras), -1)
    d = dequantize(np.asarray(q).reshape(len(q), -1), scale, zero_point)
    if k.shape != d.shape:
        raise ValueError(f"Keras output {k.shape} and deployed output {d.shape} differ in shape")
    steps = np.abs(d - k) / scale
    half_range = 1 << (bits - 1)
    lo, hi = scale * (-half_range - zero_point), scale * (half_range - 1 - zero_point)
    return OutputError(
        tensor=tensor, scale=float(scale), zero_point=int(zero_point), values=int(k.size),
        max_steps=float(steps.max(initial=0.0)), mean_steps=float(steps.mean()) if steps.size else 0.0,
        snr_db=snr_db(k, d),
        clipped=float(np.mean((k < lo - scale / 2) | (k > hi + scale / 2))) if k.size else 0.0, bits=bits,
    )


def reconstruction_score(x: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Per sample: mean over the values of (x − output)², both flattened (the autoencoder's anomaly score)."""
    xf = np.asarray(x, np.float64).reshape(len(x), -1)
    of = np.asarray(output, np.float64).reshape(len(output), -1)
    if xf.shape != of.shape:
        raise ValueError(f"input {xf.shape} and output {of.shape} differ in shape: no reconstruction error")
    return np.mean((xf - of) ** 2, axis=1)


def average_ranks(a: np.ndarray) -> np.ndarray:
    """Ranks 1…n of `a`, tied values sharing the mean of their ranks."""
    a = np.asarray(a, np.float64).reshape(-1)
    order = np.argsort(a, kind="mergesort")
    sorted_a = a[order]
    # Runs of equal values: each gets the mean of the ranks it spans.
    starts = np.flatnonzero(np.r_[True, sorted_a[1:] != sorted_a[:-1]])
    ends = np.r_[starts[1:], len(a)]
    mean_rank = (starts + ends + 1) / 2.0  # ranks start+1 … end, averaged
    ranks = np.empty(len(a), np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def auc(score: np.ndarray, labels: np.ndarray) -> float | None:
    """ROC AUC of `score` for labels (1 = anomalous, 0 = normal); None when either class is absent."""
    y = np.asarray(labels).reshape(-1)
    s = np.asarray(score, np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"{len(s)} scores for {len(y)} labels")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("anomaly labels must be 0 (normal) or 1 (anomalous)")
    positives = int(np.sum(y == 1))
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    rank_sum = float(np.sum(average_ranks(s)[y == 1]))
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation (Pearson's of the average ranks); None when either side is constant."""
    ra, rb = average_ranks(a), average_ranks(b)
    if len(ra) != len(rb):
        raise ValueError(f"{len(ra)} and {len(rb)} values")
    ra, rb = ra - ra.mean(), rb - rb.mean()
    norm = float(np.sqrt(np.sum(ra * ra) * np.sum(rb * rb)))
    return None if norm == 0.0 else float(np.sum(ra * rb) / norm)


def anomaly_agreement(x: np.ndarray, labels: np.ndarray, outputs: dict[str, np.ndarray | None]) -> dict[str, Any]:
    """Each side's (name → float output, or None when it is not available) AUC against `labels`, and how far
    the deployed ('target') score's AUC and ranking are from Keras's."""
    scores = {k: None if v is None else reconstruction_score(x, v) for k, v in outputs.items()}
    aucs = {k: None if s is None else auc(s, labels) for k, s in scores.items()}
    keras, target = scores.get("keras"), scores.get("target")
    both = keras is not None and target is not None
    difference = (abs(aucs["target"] - aucs["keras"])
                  if both and aucs["keras"] is not None and aucs["target"] is not None else None)
    y = np.asarray(labels)
    return {
        "score": "mean squared reconstruction error between the input x and the output",
        "samples": int(len(y)),
        "anomalous": int(np.sum(y == 1)),
        "auc": aucs,
        "auc_difference": difference,  # |AUC target − AUC Keras|
        "spearman_keras_target": spearman(keras, target) if both else None,
    }
