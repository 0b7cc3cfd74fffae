"""Attack budgets: iterations, restarts and queries, all settable (--iterations, --restarts,
--queries, --budget NAME=VALUE) and all recorded in the report."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

from .errors import RobustnessError


@dataclass(frozen=True)
class AttackBudget:
    """Defaults keep the default run of the demo model (597 samples) within minutes on 2 cores;
    the paper's scale (Square at 10,000 queries) is `--queries 10000`."""

    iterations: int = 20  # steps of PGD, APGD and C&W (per binary-search step)
    restarts: int = 1  # random starts of PGD, restarts of APGD and Square
    queries: int = 1000  # per sample and ε: Square's iterations; sizes HopSkipJump, Boundary and ZOO
    cw_binary_search_steps: int = 3
    cw_learning_rate: float = 0.05
    cw_initial_const: float = 1.0
    hsj_init_eval: int = 40  # HopSkipJump's gradient-estimate queries grow as init_eval·√t up to max_eval
    hsj_max_eval: int = 200
    boundary_num_trial: int = 10
    boundary_sample_size: int = 10
    zoo_nb_parallel: int = 64  # coordinates estimated per ZOO step (2 queries each)
    zoo_learning_rate: float = 0.05
    init_size: int = 100  # seeded random draws for a misclassified start image (Boundary, HopSkipJump)
    batch_size: int = 256  # samples per estimator call

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise RobustnessError(f"budget {f.name} must be a positive number, got {value!r}")

    # -- what the query budget means for each black-box attack --------------------------------------
    @property
    def square_max_iter(self) -> int:
        """Square (the algorithm) queries each sample once per iteration. ART's implementation asks
        again about unchanged inputs, which the attack context answers from memory (not counted)."""
        return self.queries

    @property
    def hsj_max_iter(self) -> int:
        """Iterations whose estimated queries (gradient estimate init_eval·√t, capped at max_eval, plus
        ~25 for the binary and step-size searches) fit the query budget."""
        spent, t = 0.0, 0
        while True:
            step = min(self.hsj_init_eval * math.sqrt(t + 1), self.hsj_max_eval) + 25
            if spent + step > self.queries:
                return max(1, t)
            spent += step
            t += 1

    @property
    def boundary_max_iter(self) -> int:
        """Each Boundary iteration spends between 2 and 2·num_trial batches of sample_size queries;
        sized for a few trials per step."""
        return max(1, self.queries // (4 * self.boundary_sample_size))

    @property
    def zoo_max_iter(self) -> int:
        """Each ZOO step costs 2·nb_parallel + 1 queries per sample."""
        return max(1, self.queries // (2 * self.zoo_nb_parallel + 1))

    def with_overrides(self, overrides: dict[str, str]) -> AttackBudget:
        """--budget NAME=VALUE pairs, type-checked against the field."""
        known = {f.name: f for f in fields(self)}
        values: dict[str, Any] = {}
        for name, text in overrides.items():
            if name not in known:
                raise RobustnessError(f"unknown budget '{name}'; choose from {', '.join(known)}")
            kind = type(getattr(self, name))
            try:
                values[name] = kind(float(text)) if kind is int and float(text).is_integer() else kind(text)
            except ValueError:
                raise RobustnessError(f"budget {name}: expected a {kind.__name__}, got '{text}'") from None
        return replace(self, **values)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["derived"] = {"square_max_iter": self.square_max_iter, "hopskipjump_max_iter": self.hsj_max_iter,
                          "boundary_max_iter": self.boundary_max_iter, "zoo_max_iter": self.zoo_max_iter}
        return out
