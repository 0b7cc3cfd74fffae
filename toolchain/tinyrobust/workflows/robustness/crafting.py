"""Crafting adversarial inputs for one shard of samples: every row (attack × threat model × norm) at
every ε, with ART, seeded per (shard, row, ε) so the result depends on the seed only.

What reaches the target is always int8 on the firmware's input grid, projected so that the
perturbation the device receives is within ε (perturbation.py). Hand-written here only what ART
lacks: the BPDA estimator (in the frontend), seeded start images for Boundary / HopSkipJump (ART
draws them from an unseeded generator), and the random-noise floor.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from art.attacks.evasion import (
    AutoProjectedGradientDescent,
    BoundaryAttack,
    CarliniL2Method,
    FastGradientMethod,
    HopSkipJump,
    ProjectedGradientDescent,
    SquareAttack,
    ZooAttack,
)
from art.estimators.classification.blackbox import BlackBoxClassifierNeuralNetwork
from art.metrics.gradient_check import loss_gradient_check

from ... import lazy
from ...converter.pipeline import DeployedModel
from .budget import AttackBudget
from .perturbation import InputGrid, project, random_noise, unbounded_eps
from .threats import (
    APGD_CE,
    APGD_DLR,
    BLACK_BOX,
    BOUNDARY,
    BPDA,
    CW,
    FGSM,
    HOPSKIPJUMP,
    NORM_ORDER,
    PGD,
    RANDOM_NOISE,
    SQUARE,
    STE,
    TRANSFER,
    ZOO,
    RowKey,
)

UNBOUNDED = "unbounded"  # the key of a row's unbounded point
# Threat models whose PGD row gets an unbounded point (ε = the input box's diameter, no random start):
# what any working gradient attack must drive to ~0 % (a masking check).
UNBOUNDED_PGD_THREATS = (STE, BPDA)


def point_key(eps: float | None) -> str:
    return UNBOUNDED if eps is None else repr(float(eps))


def attack_seed(seed: int, shard: int, row: RowKey, key: str) -> int:
    """A seed for one attack call that depends on nothing but (seed, shard, row, ε)."""
    digest = hashlib.sha256(f"{seed}|{shard}|{row.id}|{key}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


# Answers remembered per process, in two generations of this many inputs: ART's Square re-queries
# every unchanged sample on every iteration (two thirds of its calls), which an attacker would cache.
ANSWER_CACHE = 200_000


@dataclass
class AttackContext:
    """One deployed model (and the optional transfer source) in one process, with query accounting.

    `queries` counts distinct inputs sent to the deployed model (the reference): an input the
    attack already asked about is answered from memory and not counted again.
    """

    model: DeployedModel
    source: Any | None = None
    queries: int = 0
    reference_seconds: float = 0.0
    _estimators: dict[str, Any] = field(default_factory=dict)
    _answers: dict[bytes, np.ndarray] = field(default_factory=dict)
    _older: dict[bytes, np.ndarray] = field(default_factory=dict)

    @cached_property
    def grid(self) -> InputGrid:
        return InputGrid.of(self.model.program.input_quantization)

    @cached_property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.model.program.tensor(self.model.program.input).shape)

    @cached_property
    def nb_classes(self) -> int:
        return int(np.prod(self.model.program.tensor(self.model.program.output).shape))

    @property
    def clip(self) -> tuple[float, float]:
        return self.grid.lo, self.grid.hi

    def reference_logits(self, x: np.ndarray) -> np.ndarray:
        """float inputs (N, …) → the deployed model's dequantised logits (N, K): quantised to the input
        grid and run on the bit-exact reference, batched."""
        t = time.perf_counter()
        # ART's Square L2 can query NaN (a zero-norm window divided by its norm); casting NaN to int8 is
        # undefined, so such values are asked as 0 (their final examples are repaired in _finite).
        x = np.nan_to_num(np.asarray(x, dtype=np.float32), nan=0.0)
        q = self.grid.quantize(x.reshape(len(x), *self.input_shape))
        keys = [row.tobytes() for row in q]
        found = [self._answers.get(k) if k in self._answers else self._older.get(k) for k in keys]
        todo: dict[bytes, int] = {}
        for i, (key, hit) in enumerate(zip(keys, found, strict=True)):
            if hit is None and key not in todo:
                todo[key] = i
        if todo:
            rows = np.fromiter(todo.values(), dtype=np.int64, count=len(todo))
            out = self.model.program.tensor(self.model.program.output)
            values = self.model.program.output_values(self.model.reference.run(q[rows]))
            fresh = out.scale * (values.astype(np.float64) - out.zero_point)
            fresh = fresh.astype(np.float32)
            answers = dict(zip(todo, fresh, strict=True))
            for key, logits in answers.items():
                self._remember(key, logits)
            self.queries += len(todo)
            found = [answers[k] if hit is None else hit for k, hit in zip(keys, found, strict=True)]
        self.reference_seconds += time.perf_counter() - t
        return np.stack(found)

    def _remember(self, key: bytes, logits: np.ndarray) -> None:
        if len(self._answers) >= ANSWER_CACHE:
            self._older, self._answers = self._answers, {}
        self._answers[key] = logits

    def reference_labels(self, q: np.ndarray) -> np.ndarray:
        t = time.perf_counter()
        labels = self.model.program.output_values(self.model.reference.run(q)).argmax(axis=1)
        self.reference_seconds += time.perf_counter() - t
        return labels

    # -- estimators, built once per process ----------------------------------------------------------
    def estimator(self, threat: str, loss: str = "ce") -> Any:
        key = f"{threat}/{loss}"
        if key not in self._estimators:
            self._estimators[key] = self._build(threat, loss)
        return self._estimators[key]

    def _build(self, threat: str, loss: str) -> Any:
        attacks = lazy.frontend().attacks
        kw = {"nb_classes": self.nb_classes, "input_shape": self.input_shape, "clip_values": self.clip}
        if threat == STE:
            return attacks.gradient_classifier(self.model.keras_model, **kw)[0]
        if threat == TRANSFER:
            return attacks.gradient_classifier(self.source, **kw)[0]
        if threat == BPDA:
            return attacks.bpda_classifier(self.model.keras_model, self.reference_logits, loss=loss, **kw)
        if threat == BLACK_BOX:
            # The NeuralNetworkMixin variant: Square requires it (plain BlackBoxClassifier is refused).
            return BlackBoxClassifierNeuralNetwork(self.reference_logits, input_shape=self.input_shape,
                                                   nb_classes=self.nb_classes, channels_first=False,
                                                   clip_values=self.clip)
        raise ValueError(f"no estimator for threat model {threat!r}")


@dataclass(frozen=True)
class RowCraft:
    """What one row produced on one shard: int8 inputs per point, queries, notes, seconds."""

    adversarial: dict[str, np.ndarray]  # point key → (n, D) int8, every sample (unattacked ones clean)
    queries: int
    attacked: int  # samples the attack ran on
    notes: tuple[str, ...]
    seconds: float


def square_p_init(height: int, width: int) -> float:
    """Initial fraction of pixels in Square's first tile: ART's 0.8, shrunk until the tile fits.

    ART (1.20) draws a square tile of side round(sqrt(p·H·W)) and places it with
    randint(0, H − side), so it needs side ≤ min(H, W) − 1. The default p = 0.8 breaks that on small
    or narrow inputs: 4×4, or a 49×10 MFCC map as in Table IV's GSC row. We take the largest
    p ≤ 0.8 whose tile is at most min(H, W) − 1 (on 8×8 digits: 49/64, side 7, the default's tile).
    """
    side = min(height, width)
    return min(0.8, (side - 1) ** 2 / float(height * width))


def image_view(shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    """(H, W, C) for Square's tiles, or None when the input is not image-like."""
    if len(shape) == 3:
        return shape  # type: ignore[return-value]
    if len(shape) == 2:
        return (shape[0], shape[1], 1)
    return None


class ShardCrafter:
    """Crafts every row of one shard."""

    def __init__(self, ctx: AttackContext, *, x: np.ndarray, y: np.ndarray, shard: int, seed: int,
                 budget: AttackBudget):
        self.ctx, self.shard, self.seed, self.budget = ctx, shard, seed, budget
        self.grid = ctx.grid
        self.q_clean = self.grid.quantize(x)
        self.x0 = self.grid.dequantize(self.q_clean).reshape(len(x), *ctx.input_shape)
        self.y = np.asarray(y, dtype=np.int64)
        self.pred = ctx.reference_labels(self.q_clean)
        self.correct = self.pred == self.y
        self._minimum: dict[tuple[str, str, str], tuple[np.ndarray, int, int, tuple[str, ...]]] = {}

    def _finite(self, x_adv: np.ndarray) -> np.ndarray:
        """ART can return NaN where it divides by a zero norm (Square L2 on a coarse grid): those values
        are not perturbed."""
        return np.where(np.isfinite(x_adv), x_adv, self.x0).astype(np.float32)

    def _seed(self, row: RowKey, key: str) -> np.random.Generator:
        s = attack_seed(self.seed, self.shard, row, key)
        lazy.frontend().attacks.seed_everything(s)
        return np.random.default_rng(s)

    def _finish(self, x_adv: np.ndarray, eps: float | None, norm: str) -> np.ndarray:
        q = self.grid.quantize(np.clip(self._finite(x_adv), self.grid.lo, self.grid.hi))
        return project(q, self.q_clean, self.grid, eps, norm)

    def craft(self, row: RowKey, eps_list: tuple[float, ...]) -> RowCraft:
        t = time.perf_counter()
        queries0 = self.ctx.queries
        notes: list[str] = []
        out: dict[str, np.ndarray] = {}
        if row.minimum_perturbation:
            q_adv, attacked, queries, min_notes = self._minimum_perturbation(row)
            notes += min_notes
            out[UNBOUNDED] = q_adv
            for eps in eps_list:
                out[point_key(eps)] = project(q_adv, self.q_clean, self.grid, eps, row.norm)
            return RowCraft(out, queries, attacked, tuple(notes), time.perf_counter() - t)
        points: list[float | None] = list(eps_list)
        if row.attack == PGD and row.threat in UNBOUNDED_PGD_THREATS:
            points.append(None)
        for eps in points:
            key = point_key(eps)
            rng = self._seed(row, key)
            budget_eps = unbounded_eps(self.grid, self.q_clean.shape[1], row.norm) if eps is None else eps
            attack_eps = self.grid.linf_ball(budget_eps) if row.norm == "linf" else budget_eps
            if attack_eps <= 0:
                notes.append(f"ε={eps:g} is below one input grid step ({self.grid.scale:.4g}): the target "
                             "cannot receive any perturbation that small")
                out[key] = self.q_clean.copy()
                continue
            x_adv = self._bounded(row, attack_eps, unbounded=eps is None, rng=rng)
            out[key] = self._finish(x_adv, eps, row.norm)
        attacked = len(self.y)
        return RowCraft(out, self.ctx.queries - queries0 if row.threat == BLACK_BOX else 0, attacked, tuple(notes),
                        time.perf_counter() - t)

    # -- ε-bounded attacks -------------------------------------------------------------------------
    def _bounded(self, row: RowKey, eps: float, *, unbounded: bool, rng: np.random.Generator) -> np.ndarray:
        b, x, y = self.budget, self.x0, self.y
        norm = NORM_ORDER[row.norm]
        if row.attack == RANDOM_NOISE:
            delta = random_noise(rng, len(x), x[0].size, eps, row.norm).reshape(x.shape)
            return (x + delta).astype(np.float32)
        if row.attack == SQUARE:
            return self._square(eps, norm)
        loss = "dlr" if row.attack == APGD_DLR else "ce"
        estimator = self.ctx.estimator(row.threat, loss)
        if row.attack == FGSM:
            attack: Any = FastGradientMethod(estimator, norm=norm, eps=eps, batch_size=b.batch_size)
        elif row.attack == PGD:
            # Madry et al.'s step rule: 2.5·ε / iterations, so the iterate can cross the ε-ball. The
            # unbounded point starts at the clean input: random noise must not do the attack's work.
            attack = ProjectedGradientDescent(estimator, norm=norm, eps=eps, eps_step=2.5 * eps / b.iterations,
                                              max_iter=b.iterations, num_random_init=0 if unbounded else b.restarts,
                                              batch_size=b.batch_size, verbose=False)
        elif row.attack in (APGD_CE, APGD_DLR):
            # Under BPDA the estimator carries the loss itself; ART builds its own for a TF classifier.
            loss_type = None if row.threat == BPDA else (
                "difference_logits_ratio" if row.attack == APGD_DLR else "cross_entropy")
            attack = AutoProjectedGradientDescent(estimator, norm=norm, eps=eps, eps_step=2 * eps,
                                                  max_iter=b.iterations, nb_random_init=b.restarts,
                                                  batch_size=b.batch_size, loss_type=loss_type, verbose=False)
        else:
            raise ValueError(f"{row.attack} is not an ε-bounded gradient attack")
        return attack.generate(x=x, y=y).astype(np.float32)

    def _square(self, eps: float, norm: float) -> np.ndarray:
        view = image_view(self.ctx.input_shape)
        assert view is not None  # checked before crafting
        classifier = BlackBoxClassifierNeuralNetwork(
            lambda xb: self.ctx.reference_logits(xb.reshape(len(xb), *self.ctx.input_shape)), input_shape=view,
            nb_classes=self.ctx.nb_classes, channels_first=False, clip_values=self.ctx.clip)
        attack = SquareAttack(classifier, norm=norm, eps=eps, max_iter=self.budget.square_max_iter,
                              p_init=square_p_init(view[0], view[1]), nb_restarts=self.budget.restarts,
                              batch_size=self.budget.batch_size, verbose=False)
        x = self.x0.reshape(len(self.x0), *view)
        return attack.generate(x=x, y=self.y).reshape(self.x0.shape).astype(np.float32)

    # -- minimum-perturbation attacks: crafted once, evaluated at every ε ---------------------------
    def _minimum_perturbation(self, row: RowKey) -> tuple[np.ndarray, int, int, tuple[str, ...]]:
        key = (row.threat, row.attack, row.craft_norm)
        if key not in self._minimum:
            queries0 = self.ctx.queries
            rng = self._seed(RowKey(row.threat, row.attack, row.craft_norm), UNBOUNDED)
            x_adv, attacked, notes = self._run_minimum(row, rng)
            queries = self.ctx.queries - queries0 if row.threat == BLACK_BOX else 0
            q_adv = self.grid.quantize(np.clip(self._finite(x_adv), self.grid.lo, self.grid.hi))
            self._minimum[key] = (q_adv, attacked, queries, notes)
        return self._minimum[key]

    def _run_minimum(self, row: RowKey, rng: np.random.Generator) -> tuple[np.ndarray, int, tuple[str, ...]]:
        """Attacks only samples the deployed model gets right: an untargeted attack on a misclassified
        sample pushes it away from its wrong label and could 'repair' it."""
        b = self.budget
        x_adv = self.x0.copy()
        todo = self.correct.copy()
        notes: list[str] = []
        if row.attack in (HOPSKIPJUMP, BOUNDARY):
            start, found = self._start_images(rng, todo)
            if (todo & ~found).any():
                notes.append(f"no misclassified start image for {int((todo & ~found).sum())} sample(s): "
                             "not attacked")
            todo &= found
        if not todo.any():
            return x_adv, 0, tuple(notes)
        x, y = self.x0[todo], self.y[todo]
        if row.attack == CW:
            attack: Any = CarliniL2Method(self.ctx.estimator(row.threat), confidence=0.0, targeted=False,
                                          learning_rate=b.cw_learning_rate,
                                          binary_search_steps=b.cw_binary_search_steps, max_iter=b.iterations,
                                          initial_const=b.cw_initial_const, max_halving=2, max_doubling=2,
                                          batch_size=b.batch_size, verbose=False)
            x_adv[todo] = attack.generate(x=x, y=y)
        elif row.attack == HOPSKIPJUMP:
            attack = HopSkipJump(self.ctx.estimator(BLACK_BOX), batch_size=b.batch_size, targeted=False,
                                 norm=NORM_ORDER[row.craft_norm], max_iter=b.hsj_max_iter, max_eval=b.hsj_max_eval,
                                 init_eval=b.hsj_init_eval, init_size=b.init_size, verbose=False)
            x_adv[todo] = attack.generate(x=x, y=y, x_adv_init=start[todo])
        elif row.attack == BOUNDARY:
            attack = BoundaryAttack(self.ctx.estimator(BLACK_BOX), targeted=False, max_iter=b.boundary_max_iter,
                                    num_trial=b.boundary_num_trial, sample_size=b.boundary_sample_size,
                                    init_size=b.init_size, batch_size=b.batch_size, verbose=False)
            x_adv[todo] = attack.generate(x=x, y=y, x_adv_init=start[todo])
        elif row.attack == ZOO:
            attack = ZooAttack(self.ctx.estimator(BLACK_BOX), confidence=0.0, targeted=False,
                               learning_rate=b.zoo_learning_rate, max_iter=b.zoo_max_iter, binary_search_steps=1,
                               initial_const=1.0, abort_early=True, use_resize=False, use_importance=False,
                               nb_parallel=min(b.zoo_nb_parallel, x[0].size), variable_h=self.grid.scale,
                               batch_size=1, verbose=False)  # ART 1.20's ZOO breaks on batches > 1 (its Adam
            # state is sized for one sample)
            x_adv[todo] = attack.generate(x=x, y=y)
        else:
            raise ValueError(f"{row.attack} is not a minimum-perturbation attack")
        return x_adv.astype(np.float32), int(todo.sum()), tuple(notes)

    def _start_images(self, rng: np.random.Generator, todo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A misclassified start image per sample, from the seeded generator: up to init_size rounds of
        uniform random images (one query each), then another sample of this shard that the model
        labels differently."""
        start = self.x0.copy()
        found = np.zeros(len(start), dtype=bool)
        lo, hi = self.ctx.clip
        for _ in range(self.budget.init_size):
            need = np.flatnonzero(todo & ~found)
            if not len(need):
                break
            candidates = rng.uniform(lo, hi, size=(len(need), *self.ctx.input_shape)).astype(np.float32)
            labels = self.ctx.reference_logits(candidates).argmax(axis=1)
            hit = labels != self.pred[need]
            start[need[hit]] = candidates[hit]
            found[need[hit]] = True
        for i in np.flatnonzero(todo & ~found):
            other = np.flatnonzero(self.pred != self.pred[i])
            if len(other):
                start[i] = self.x0[other[0]]
                found[i] = True
        return start, found

    # -- gradient evidence for the masking checks ---------------------------------------------------
    def gradient_check(self, threat: str) -> tuple[np.ndarray, float]:
        """Per sample, whether the input gradient of the loss is exactly zero (ART's
        loss_gradient_check), and the fraction of all gradient components that are zero."""
        estimator = self.ctx.estimator(threat)
        onehot = np.eye(self.ctx.nb_classes, dtype=np.float32)[self.y]
        flags = loss_gradient_check(estimator, self.x0, onehot, verbose=False)
        grad = estimator.loss_gradient(self.x0, onehot)
        return flags[:, 0].astype(bool), float(np.mean(np.asarray(grad) == 0))

