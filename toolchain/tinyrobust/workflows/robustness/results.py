"""Result types of a robustness evaluation (frozen dataclasses) and the attack vocabulary."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import BadInputError

TargetRunner = Callable[[np.ndarray], np.ndarray]

ATTACKS: tuple[str, ...] = ("fgsm", "pgd", "cw", "square", "boundary")
WHITE_BOX = ("fgsm", "pgd", "cw")
BLACK_BOX = ("square", "boundary")
SWEPT = ("fgsm", "pgd")
# ε sweep for an input range of width 1 (scaled by the width for other ranges).
DEFAULT_EPS_UNIT: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3)
MAIN_EPS_UNIT = 0.1
SCHEMA = "tinyrobust.robustness/1"
# Cap on listed indices of unconfirmed examples, so a broken target does not bloat the JSON.
MAX_LISTED_MISMATCHES = 50


class RobustnessError(BadInputError):
    """Bad input to the robustness evaluation (shapes, labels, attack names, ε)."""


@dataclass(frozen=True)
class AttackBudget:
    """Iteration / query budgets. Small on purpose: the default must finish in minutes on 2 cores."""

    pgd_max_iter: int = 20
    pgd_random_init: int = 1
    cw_binary_search_steps: int = 2
    cw_max_iter: int = 10
    cw_line_search_steps: int = 2  # ART's max_halving / max_doubling (5 each by default: slow)
    cw_learning_rate: float = 0.1
    cw_initial_const: float = 1.0
    square_max_iter: int = 200
    boundary_max_iter: int = 40
    boundary_num_trial: int = 10
    boundary_sample_size: int = 10
    boundary_init_size: int = 100
    batch_size: int = 64

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Perturbation:
    """Effective perturbation after quantisation to the input grid, vs the clean quantised input."""

    linf_mean: float
    linf_max: float
    l2_mean: float
    l2_max: float

    @staticmethod
    def between(q_adv: np.ndarray, q_clean: np.ndarray, scale: float) -> Perturbation:
        d = scale * (q_adv.astype(np.float64) - q_clean.astype(np.float64))
        if len(d) == 0:
            return Perturbation(0.0, 0.0, 0.0, 0.0)
        linf = np.abs(d).max(axis=1)
        l2 = np.sqrt((d * d).sum(axis=1))
        return Perturbation(float(linf.mean()), float(linf.max()), float(l2.mean()), float(l2.max()))

    def to_json(self) -> dict[str, float]:
        return {
            "linf_mean": self.linf_mean,
            "linf_max": self.linf_max,
            "l2_mean": self.l2_mean,
            "l2_max": self.l2_max,
        }


@dataclass(frozen=True)
class AttackPoint:
    """One attack at one ε (None: unbounded) evaluated on Keras, the reference and the target."""

    attack: str
    eps: float | None
    samples: int
    keras_accuracy: float | None  # None when there is no Keras model (an export directory)
    reference_accuracy: float
    target_accuracy: float
    target_reference_exact: int  # samples whose target output bytes equal the reference's
    perturbation: Perturbation

    def to_json(self) -> dict[str, Any]:
        return {
            "eps": self.eps,
            "samples": self.samples,
            "accuracy": {
                "keras": self.keras_accuracy,
                "reference": self.reference_accuracy,
                "target": self.target_accuracy,
            },
            "target_reference_exact": self.target_reference_exact,
            "perturbation": self.perturbation.to_json(),
        }


@dataclass(frozen=True)
class Confirmation:
    """Black-box examples found on the reference, replayed on the target."""

    attack: str
    eps: float | None
    examples: int
    bytes_identical: int  # target output bytes == reference output bytes
    reference_flips: int  # examples the reference misclassifies (the attack's successes + clean mistakes)
    flips_confirmed: int  # of those, how many the target misclassifies with the same label
    unconfirmed: tuple[int, ...]  # sample indices (capped) where either condition fails

    @property
    def all_confirmed(self) -> bool:
        return self.bytes_identical == self.examples and self.flips_confirmed == self.reference_flips

    def to_json(self) -> dict[str, Any]:
        return {
            "eps": self.eps,
            "examples": self.examples,
            "bytes_identical": self.bytes_identical,
            "reference_flips": self.reference_flips,
            "flips_confirmed": self.flips_confirmed,
            "all_confirmed": self.all_confirmed,
            "unconfirmed_indices": list(self.unconfirmed),
        }


@dataclass(frozen=True)
class MaskingCheck:
    check: str
    flagged: bool
    evaluated: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "flagged": self.flagged,
            "evaluated": self.evaluated,
            "detail": self.detail,
        }


TABLE_COLUMNS = ("clean", "fgsm", "pgd", "square", "boundary", "cw")


@dataclass(frozen=True)
class RobustnessResult:
    model: str
    target: str
    samples: int
    seed: int
    attacks: tuple[str, ...]
    eps: tuple[float, ...]
    main_eps: float
    input_grid: Mapping[str, Any]
    gradient_source: str
    clean: AttackPoint
    points: tuple[AttackPoint, ...]
    confirmations: tuple[Confirmation, ...]
    masking: tuple[MaskingCheck, ...]
    budget: AttackBudget
    target_inputs: int  # every input sent to the target in this evaluation
    target_mismatches: int  # of those, how many gave output bytes different from the reference's
    queries: Mapping[str, int] = field(default_factory=dict)  # reference queries per black-box attack

    # -- look-ups -------------------------------------------------------------------------------
    def point(self, attack: str, eps: float | None) -> AttackPoint | None:
        for p in self.points:
            if p.attack == attack and (
                p.eps == eps or (p.eps is not None and eps is not None and abs(p.eps - eps) < 1e-12)
            ):
                return p
        return None

    def sweep(self, attack: str) -> list[AttackPoint]:
        return sorted((p for p in self.points if p.attack == attack and p.eps is not None), key=lambda p: p.eps)

    @property
    def all_confirmed(self) -> bool:
        return all(c.all_confirmed for c in self.confirmations)

    def table(self) -> dict[str, Any]:
        """Table IV of seed 000: clean / FGSM / PGD / Square / Boundary (+ C&W) accuracy."""
        columns: dict[str, dict[str, Any]] = {}
        for col in TABLE_COLUMNS:
            if col == "clean":
                p: AttackPoint | None = self.clean
                eps: float | None = 0.0
            elif col == "cw":
                p, eps = self.point("cw", None), None
            else:
                p, eps = self.point(col, self.main_eps), self.main_eps
            if col != "clean" and col not in self.attacks:
                continue
            columns[col] = {
                "eps": eps,
                "keras": None if p is None else p.keras_accuracy,
                "target": None if p is None else p.target_accuracy,
            }
        return {
            "main_eps": self.main_eps,
            "columns": list(columns),
            "rows": {
                "keras": {c: v["keras"] for c, v in columns.items()},
                "target": {c: v["target"] for c, v in columns.items()},
            },
            "eps": {c: v["eps"] for c, v in columns.items()},
        }

    def to_json(self) -> dict[str, Any]:
        attacks: dict[str, Any] = {}
        for name in self.attacks:
            pts = [p for p in self.points if p.attack == name]
            entry: dict[str, Any] = {
                "kind": "white-box (transfer from float Keras)"
                if name in WHITE_BOX
                else "black-box (reference queries)",
                "norm": "l2" if name == "cw" else "linf",
                "points": [p.to_json() for p in pts if p.eps is not None],
            }
            unbounded = [p for p in pts if p.eps is None]
            if unbounded:
                entry["unbounded"] = unbounded[0].to_json()
            conf = [c for c in self.confirmations if c.attack == name]
            if conf:
                entry["confirmation"] = conf[0].to_json()
            if name in self.queries:
                entry["reference_queries"] = self.queries[name]
            attacks[name] = entry
        return {
            "schema": SCHEMA,
            "model": self.model,
            "target": self.target,
            "samples": self.samples,
            "seed": self.seed,
            "attacks_run": list(self.attacks),
            "eps": list(self.eps),
            "main_eps": self.main_eps,
            "input_grid": dict(self.input_grid),
            "gradient_source": self.gradient_source,
            "clean": self.clean.to_json(),
            "attacks": attacks,
            "confirmations": {
                "all_confirmed": self.all_confirmed,
                "per_attack": {c.attack: c.to_json() for c in self.confirmations},
            },
            "target_agreement": {"inputs": self.target_inputs, "mismatches": self.target_mismatches},
            "masking_checks": [m.to_json() for m in self.masking],
            "table": self.table(),
            "budget": self.budget.to_json(),
        }


