"""Result types of a robustness evaluation (frozen dataclasses), their statistics and their JSON.

Definitions (the report states them too):
- clean accuracy: the deployed model on the target, correct on the clean (quantised) input;
- robust accuracy at ε: correct on the clean input *and* on the adversarial one (over all samples);
- attack success rate: of the samples the deployed model gets right, the fraction the attack fools;
- every rate carries a 95 % Wilson score interval; --folds K adds the spread over K disjoint folds
  of the samples (the variance of seed 000's Table V, over test folds rather than retrainings).

Everything in a result is deterministic for a seed except what lives under `timings`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .budget import AttackBudget
from .threats import RowKey

SCHEMA = "tinyrobust.robustness/2"
Z95 = 1.959963984540054  # two-sided 95 % normal quantile
MAX_LISTED_MISMATCHES = 50  # indices of unconfirmed examples listed, so a broken target does not bloat the JSON


def wilson(k: int, n: int) -> tuple[float, float]:
    """95 % Wilson score interval of k successes in n trials ((0, 1) when n = 0)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Rate:
    """k of n, with its 95 % Wilson interval."""

    k: int
    n: int

    @staticmethod
    def of(mask: np.ndarray) -> Rate:
        mask = np.asarray(mask, dtype=bool)
        return Rate(int(mask.sum()), int(mask.size))

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        """Wilson's interval, widened by the last bit so it always holds the value (at k = 0 its lower end
        came out 5.6e-17 above 0 = the value, and a plot's error bar went negative)."""
        lo, hi = wilson(self.k, self.n)
        if not self.n:
            return lo, hi
        return min(lo, self.value), max(hi, self.value)

    def to_json(self) -> dict[str, Any]:
        lo, hi = self.interval
        return {"value": None if not self.n else self.value, "k": self.k, "n": self.n, "ci95": [lo, hi]}


@dataclass(frozen=True)
class Folds:
    """Robust accuracy over K disjoint folds of the samples: per fold, mean and (sample) variance."""

    values: tuple[float, ...]

    @staticmethod
    def of(correct: np.ndarray, folds: np.ndarray, k: int) -> Folds:
        return Folds(tuple(float(correct[folds == f].mean()) for f in range(k)))

    def to_json(self) -> dict[str, Any]:
        v = np.array(self.values)
        var = float(v.var(ddof=1)) if len(v) > 1 else 0.0
        return {"per_fold": list(self.values), "mean": float(v.mean()), "variance": var, "std": math.sqrt(var)}


@dataclass(frozen=True)
class Perturbation:
    """The perturbation the target received (data units), per sample norm: mean and max."""

    norm: str
    mean: float
    max: float
    linf_mean: float
    linf_max: float

    def to_json(self) -> dict[str, Any]:
        return {"norm": self.norm, "mean": self.mean, "max": self.max, "linf_mean": self.linf_mean,
                "linf_max": self.linf_max}


@dataclass(frozen=True)
class Point:
    """One row at one ε (None: unbounded)."""

    eps: float | None
    robust_accuracy: Rate  # target: clean correct and adversarial correct
    attack_success: Rate  # over the samples the target gets right on clean inputs
    reference_robust_accuracy: Rate
    surrogate_accuracy: float | None  # the QKeras model on the same adversarial inputs (plain accuracy)
    perturbation: Perturbation
    target_reference_exact: int  # samples whose target output bytes equal the reference's
    folds: Folds | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"eps": self.eps, "robust_accuracy": self.robust_accuracy.to_json(),
               "attack_success_rate": self.attack_success.to_json(),
               "reference_robust_accuracy": self.reference_robust_accuracy.to_json(),
               "surrogate_accuracy": self.surrogate_accuracy, "perturbation": self.perturbation.to_json(),
               "target_reference_exact": self.target_reference_exact}
        if self.folds is not None:
            out["folds"] = self.folds.to_json()
        return out


@dataclass(frozen=True)
class Confirmation:
    """A black-box row's examples, found on the reference, replayed on the target."""

    examples: int
    bytes_identical: int
    reference_flips: int  # examples the reference misclassifies
    flips_confirmed: int  # of those, how many the target misclassifies with the same label
    unconfirmed: tuple[int, ...]  # sample indices (capped) where either condition fails

    @property
    def all_confirmed(self) -> bool:
        return self.bytes_identical == self.examples and self.flips_confirmed == self.reference_flips

    def to_json(self) -> dict[str, Any]:
        return {"examples": self.examples, "bytes_identical": self.bytes_identical,
                "reference_flips": self.reference_flips, "flips_confirmed": self.flips_confirmed,
                "all_confirmed": self.all_confirmed, "unconfirmed_indices": list(self.unconfirmed)}


@dataclass(frozen=True)
class Row:
    key: RowKey
    points: tuple[Point, ...]
    attacked: int  # samples the attack ran on (a minimum-perturbation attack skips wrong ones)
    queries: int | None  # black-box: queries to the deployed model (the reference), all samples
    notes: tuple[str, ...]
    confirmation: Confirmation | None

    def point(self, eps: float | None) -> Point | None:
        for p in self.points:
            if (p.eps is None and eps is None) or (p.eps is not None and eps is not None and abs(p.eps - eps) < 1e-12):
                return p
        return None

    @property
    def bounded(self) -> list[Point]:
        return sorted((p for p in self.points if p.eps is not None), key=lambda p: p.eps)  # type: ignore[arg-type, return-value]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = self.key.to_json() | {"attacked_samples": self.attacked,
                                                      "points": [p.to_json() for p in self.points]}
        if self.queries is not None:
            out["queries"] = {"total": self.queries,
                              "per_attacked_sample": self.queries / self.attacked if self.attacked else 0.0}
        if self.notes:
            out["notes"] = list(self.notes)
        if self.confirmation is not None:
            out["confirmation"] = self.confirmation.to_json()
        return out


@dataclass(frozen=True)
class MaskingCheck:
    """One gradient-masking check: its verdict and the numbers behind it."""

    check: str
    meaning: str  # what a flag means, in plain words
    evaluated: bool
    flagged: bool
    evidence: tuple[str, ...]

    @property
    def verdict(self) -> str:
        return "FLAGGED" if self.flagged else ("passed" if self.evaluated else "not evaluated")

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "verdict": self.verdict, "flagged": self.flagged, "evaluated": self.evaluated,
                "meaning": self.meaning, "evidence": list(self.evidence)}


@dataclass(frozen=True)
class GradientCheck:
    """Input gradients of the loss at the clean samples, under one gradient threat model."""

    threat: str
    zero_samples: Rate  # samples whose whole input gradient is exactly 0 (ART's loss_gradient_check)
    zero_components: float  # fraction of all gradient components that are exactly 0

    def to_json(self) -> dict[str, Any]:
        return {"zero_gradient_samples": self.zero_samples.to_json(), "zero_component_fraction": self.zero_components}


@dataclass(frozen=True)
class ModelResult:
    name: str
    model_sha256: str | None  # of the .h5 file
    program_sha256: str
    flash_bytes: int
    latency: Mapping[str, Any] | None  # {"unit", "mean"} on the target, None on the reference
    target: str
    samples: int
    clean: Rate  # on the target
    clean_reference: Rate
    clean_surrogate: float | None
    input_grid: Mapping[str, Any]
    rows: tuple[Row, ...]
    gradients: tuple[GradientCheck, ...]
    masking: tuple[MaskingCheck, ...] = ()
    target_inputs: int = 0  # distinct inputs sent to the target
    target_mismatches: int = 0  # of those, how many gave output bytes other than the reference's
    timings: Mapping[str, Any] = field(default_factory=dict)

    def row(self, threat: str, attack: str, norm: str) -> Row | None:
        return next((r for r in self.rows if (r.key.threat, r.key.attack, r.key.norm) == (threat, attack, norm)), None)

    @property
    def all_confirmed(self) -> bool:
        return all(r.confirmation is None or r.confirmation.all_confirmed for r in self.rows)

    @property
    def masking_flagged(self) -> bool:
        return any(m.flagged for m in self.masking)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "model_sha256": self.model_sha256, "program_sha256": self.program_sha256,
            "flash_bytes": self.flash_bytes, "latency": None if self.latency is None else dict(self.latency),
            "target": self.target, "samples": self.samples,
            "clean": {"accuracy": self.clean.to_json(), "reference_accuracy": self.clean_reference.to_json(),
                      "surrogate_accuracy": self.clean_surrogate},
            "input_grid": dict(self.input_grid),
            "rows": [r.to_json() for r in self.rows],
            "gradients": {g.threat: g.to_json() for g in self.gradients},
            "masking_checks": [m.to_json() for m in self.masking],
            "masking_flagged": self.masking_flagged,
            "target_agreement": {"distinct_inputs": self.target_inputs, "mismatches": self.target_mismatches,
                                 "black_box_examples_confirmed": self.all_confirmed},
        }


@dataclass(frozen=True)
class Evaluation:
    """One or more models evaluated on the same samples, seeds and budgets."""

    tool_version: str
    seed: int
    samples: int
    data_sha256: str
    attacks: tuple[str, ...]
    threat_models: tuple[str, ...]
    norms: tuple[str, ...]
    eps: Mapping[str, tuple[float, ...]]
    budget: AttackBudget
    folds: int | None
    models: tuple[ModelResult, ...]
    shard_size: int = 100  # with the seed, fixes the result (the number of workers does not)
    timings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def masking_flagged(self) -> bool:
        return any(m.masking_flagged for m in self.models)

    @property
    def all_confirmed(self) -> bool:
        return all(m.all_confirmed and m.target_mismatches == 0 for m in self.models)

    def columns(self) -> list[tuple[RowKey, float | None]]:
        """The comparison table's columns: every row at every point, in row order (the first model's
        rows; every model has the same)."""
        if not self.models:
            return []
        return [(r.key, p.eps) for r in self.models[0].rows for p in r.points]

    def table(self) -> dict[str, Any]:
        """Table IV: rows = models, columns = attack × threat model × ε; robust accuracy ± interval."""
        cols = self.columns()
        rows = []
        for m in self.models:
            cells = {}
            for key, eps in cols:
                point = m.row(key.threat, key.attack, key.norm).point(eps)  # type: ignore[union-attr]
                cells[column_id(key, eps)] = None if point is None else point.robust_accuracy.to_json()
            rows.append({"model": m.name, "clean": m.clean.to_json(), "flash_bytes": m.flash_bytes,
                         "latency": None if m.latency is None else dict(m.latency), "cells": cells,
                         "masking_flagged": m.masking_flagged})
        return {"columns": [{"id": column_id(k, e), "threat_model": k.threat, "attack": k.attack, "norm": k.norm,
                             "eps": e} for k, e in cols],
                "rows": rows}

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA, "tool_version": self.tool_version, "seed": self.seed, "samples": self.samples,
            "data_sha256": self.data_sha256, "attacks": list(self.attacks), "threat_models": list(self.threat_models),
            "norms": list(self.norms), "eps": {n: list(v) for n, v in self.eps.items()},
            "budget": self.budget.to_json(), "folds": self.folds, "shard_size": self.shard_size,
            "definitions": DEFINITIONS,
            "models": [m.to_json() for m in self.models],
            "table": self.table(),
            "masking_flagged": self.masking_flagged,
            "all_confirmed": self.all_confirmed,
            "timings": dict(self.timings),
        }


DEFINITIONS = {
    "eps": "in the units of the dataset's x; the perturbation is what the target receives after quantisation "
           "to its input grid, projected so that it is within eps in the row's norm",
    "robust_accuracy": "correct on the clean input and on the adversarial input, over all samples (target)",
    "attack_success_rate": "of the samples the target classifies correctly, the fraction the attack fools",
    "ci95": "95 % Wilson score interval",
    "unbounded": "eps = null: the attack's example as found (minimum-perturbation attacks), or PGD over the "
                 "whole input range from the clean input",
    "queries": "distinct inputs a black-box attack sent to the deployed model (a repeated input is answered "
               "from memory); the budget's 'queries' is Square's iterations (one query each in the original "
               "algorithm) and sizes the other black-box attacks",
}


def column_id(key: RowKey, eps: float | None) -> str:
    return f"{key.id}@{'unbounded' if eps is None else repr(float(eps))}"

