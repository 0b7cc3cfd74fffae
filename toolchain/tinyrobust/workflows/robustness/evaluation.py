"""Adversarial robustness of the *deployed integer* model, measured on a target.

For every row (an attack under a threat model, in a norm; threats.py) and every ε, the shards
(shards.py) craft int8 inputs on the firmware's grid, within ε of what the device receives for the
clean sample (perturbation.py). Then every distinct input goes to the target once, and to the
bit-exact reference: the target's bytes must equal the reference's, and every label flip a black-box
attack found on the reference must hold on the target. Accuracy is the target's.

Decisions where the issue is silent:
- Attacks start from the clean input as the device sees it (quantised), and an L∞ ε is used as the
  largest whole number of grid steps within it; an ε below one grid step cannot reach the device and
  is reported as such (the point equals clean).
- Minimum-perturbation attacks (C&W, HopSkipJump, Boundary, ZOO) only attack samples the deployed
  model gets right, and are evaluated at each ε by projecting their example into that ε-ball (after
  quantisation); their unbounded point is the example as found.
- The surrogate accuracy of a point is the QKeras model's plain accuracy on the same int8 inputs,
  dequantised: what the STE surrogate believes, beside what the device does.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ... import __version__, console
from ...converter.pipeline import DeployedModel
from ...dataset import Dataset
from ...errors import DatasetError
from .budget import AttackBudget
from .crafting import UNBOUNDED, image_view
from .errors import RobustnessError
from .masking import with_masking_checks
from .perturbation import InputGrid, default_eps, norm_of, received
from .results import (
    MAX_LISTED_MISMATCHES,
    Confirmation,
    Evaluation,
    Folds,
    GradientCheck,
    ModelResult,
    Perturbation,
    Point,
    Rate,
    Row,
)
from .shards import ModelSpec, ShardResult, register_context, run_shards, shard_tasks
from .threats import (
    ATTACKS,
    BLACK_BOX,
    BLACK_BOX_ATTACKS,
    BPDA,
    GRADIENT_ATTACKS,
    GRADIENT_THREATS,
    NORMS,
    SQUARE,
    STE,
    TRANSFER,
    row_keys,
)

# What a target runner does: int8 inputs (N, D) → int8 outputs (N, K) and, where the target counts,
# per-inference counts (N,) in `unit`.
TargetRun = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]

# The default run: the cheap gradient attacks under both threat models that need no second model,
# the score-based black-box attack and the noise floor (C&W, HopSkipJump, Boundary, ZOO and APGD-DLR
# on request: they cost minutes each on 600 samples).
DEFAULT_ATTACKS = ("fgsm", "pgd", "apgd-ce", "square", "noise")
DEFAULT_THREATS = (STE, BPDA)
DEFAULT_SHARD_SIZE = 100


@dataclass(frozen=True)
class Settings:
    """What to run, identical for every model of a comparison."""

    attacks: tuple[str, ...] = DEFAULT_ATTACKS
    threat_models: tuple[str, ...] = DEFAULT_THREATS  # for gradient attacks; transfer needs a source
    norms: tuple[str, ...] = ("linf",)
    eps: Mapping[str, tuple[float, ...]] | None = None  # per norm; None → default_eps from the data
    budget: AttackBudget = AttackBudget()
    seed: int = 0
    limit: int | None = None
    folds: int | None = None
    jobs: int = 1
    shard_size: int = DEFAULT_SHARD_SIZE

    def normalised(self) -> Settings:
        attacks = tuple(dict.fromkeys(a.strip().lower() for a in self.attacks))
        threats = tuple(dict.fromkeys(t.strip().lower() for t in self.threat_models))
        norms = tuple(dict.fromkeys(n.strip().lower() for n in self.norms))
        unknown = [a for a in attacks if a not in ATTACKS]
        if unknown or not attacks:
            raise RobustnessError(f"unknown attack(s) {', '.join(unknown) or '(none)'}; "
                                  f"choose from {', '.join(ATTACKS)}")
        bad = [t for t in threats if t not in GRADIENT_THREATS]
        if bad:
            raise RobustnessError(f"unknown threat model(s) {', '.join(bad)}; "
                                  f"choose from {', '.join(GRADIENT_THREATS)}")
        bad = [n for n in norms if n not in NORMS]
        if bad or not norms:
            raise RobustnessError(f"unknown norm(s) {', '.join(bad) or '(none)'}; choose from {', '.join(NORMS)}")
        if self.limit is not None and self.limit <= 0:
            raise RobustnessError(f"--limit must be positive, got {self.limit}")
        if self.folds is not None and self.folds < 2:
            raise RobustnessError(f"--folds must be at least 2, got {self.folds}")
        if self.jobs < 1 or self.shard_size < 1:
            raise RobustnessError("--jobs and --shard-size must be positive")
        eps = None
        if self.eps is not None:
            eps = {}
            for norm, values in self.eps.items():
                if norm not in norms:
                    raise RobustnessError(f"ε given for norm {norm}, which is not in --norm {','.join(norms)}")
                if any((not np.isfinite(e)) or e <= 0 for e in values):
                    raise RobustnessError(f"ε values must be finite and > 0, got {list(values)} ({norm})")
                eps[norm] = tuple(sorted({float(e) for e in values}))
        return replace(self, attacks=attacks, threat_models=threats, norms=norms, eps=eps)


@dataclass(frozen=True)
class ModelUnderTest:
    """A deployed model, how to reach its target, and how workers rebuild it."""

    name: str
    deployed: DeployedModel
    run_target: TargetRun | None  # None: the reference is the target
    target_name: str
    counter_unit: str | None
    flash_bytes: int
    model_sha256: str | None = None
    spec: ModelSpec | None = None  # None: shards run in this process only
    source: Any | None = None  # the transfer source's Keras model


def data_sha256(data: Dataset) -> str:
    h = hashlib.sha256(np.ascontiguousarray(data.x, dtype=np.float32).tobytes())
    h.update(np.ascontiguousarray(data.y, dtype=np.int64).tobytes())
    return h.hexdigest()


def check_data(model: DeployedModel, data: Dataset) -> None:
    """The samples fit the model and every label is one of its classes: a label at or above the class
    count would count as an error under every attack and quietly lower every number of the report.
    The command calls this right after conversion, before a firmware is built for the target."""
    program = model.program
    data.check_shape(program.tensor(program.input).shape, "--data")
    if data.y is None:
        raise DatasetError("--data: no array 'y' of labels (robustness needs them)")
    if len(data) == 0:
        raise DatasetError("--data: the dataset is empty")
    if data.y.min() < 0:  # Dataset.load refuses these; a Dataset built in code may still hold them
        raise DatasetError(f"--data: {int((data.y < 0).sum())} of {len(data.y)} labels are negative "
                           f"(e.g. {int(data.y.min())}); labels are classes 0, 1, 2, …")
    data.check_labels(int(np.prod(program.tensor(program.output).shape)), "--data")


def _check(mut: ModelUnderTest, data: Dataset, settings: Settings) -> None:
    model = mut.deployed
    shape = tuple(model.program.tensor(model.program.input).shape)
    check_data(model, data)
    gradient = [a for a in settings.attacks if a in GRADIENT_ATTACKS]
    if gradient and model.keras_model is None and {STE, BPDA} & set(settings.threat_models):
        raise RobustnessError("gradient attacks under the STE and BPDA threat models need the QKeras model: "
                              "give MODEL.h5, not an export directory")
    if gradient and TRANSFER in settings.threat_models and mut.source is None:
        raise RobustnessError("the transfer threat model needs a float source model: --source model.h5")
    if mut.source is not None and tuple(mut.source.input_shape[1:]) != shape:
        raise RobustnessError(f"the --source model takes {tuple(mut.source.input_shape[1:])}, the deployed model "
                              f"{shape}")
    if SQUARE in settings.attacks:
        view = image_view(shape)
        if view is None or min(view[:2]) < 2:
            raise RobustnessError(f"the Square attack needs image inputs (H, W[, C]) with H, W ≥ 2; got {shape}")


def resolve_eps(settings: Settings, x: np.ndarray) -> dict[str, tuple[float, ...]]:
    given = settings.eps or {}
    return {norm: tuple(given[norm]) if norm in given else tuple(default_eps(x, norm)) for norm in settings.norms}


def _unique_rows(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct int8 rows of q and, per row of q, its index among them (first-seen order)."""
    view = np.ascontiguousarray(q).view(np.dtype((np.void, q.shape[1])))[:, 0]
    _, first, inverse = np.unique(view, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return q[np.sort(first)], rank[inverse.reshape(-1)]


def evaluate_model(mut: ModelUnderTest, data: Dataset, settings: Settings, *,
                   progress: bool = False) -> ModelResult:
    """Every row at every ε for one model; see the module docstring."""
    t_start = time.perf_counter()
    settings = settings.normalised()
    data = data.limit(settings.limit)
    _check(mut, data, settings)
    model = mut.deployed
    x = np.asarray(data.x, dtype=np.float32)
    y = np.asarray(data.y, dtype=np.int64)
    n = len(x)
    grid = InputGrid.of(model.program.input_quantization)
    q_clean = grid.quantize(x)
    eps = resolve_eps(settings, x)
    threats = tuple(t for t in settings.threat_models if t != TRANSFER or mut.source is not None)
    keys = row_keys(settings.attacks, threats, settings.norms)
    program_sha = model.program.sha256().hex()

    # -- craft, shard by shard -------------------------------------------------------------------------
    spec = mut.spec or ModelSpec(Path(f"<in-memory {mut.name}>"), None, (0.0, 1.0), "", program_sha)
    jobs = settings.jobs if mut.spec is not None else 1
    if jobs <= 1:
        register_context(spec, model, mut.source)
    tasks = shard_tasks(spec, x, y, shard_size=settings.shard_size, rows=keys, eps=eps, budget=settings.budget,
                        seed=settings.seed)
    # Every shard crafts every row on as many samples: shards are equal work, so counting them weights progress.
    with console.progress(len(tasks), f"robustness: {mut.name}", unit="shard", enabled=progress) as bar:
        shards = run_shards(tasks, jobs=jobs, on_done=lambda _r: bar.update(1))
    t_crafted = time.perf_counter()

    # -- every distinct input to the target once, and to the reference --------------------------------
    blocks: list[np.ndarray] = [q_clean]
    index: dict[tuple[str, str], int] = {}
    for key in keys:
        for pk in shards[0].rows[key.id].adversarial:
            index[(key.id, pk)] = len(blocks)
            blocks.append(np.concatenate([s.rows[key.id].adversarial[pk] for s in shards]))
    stacked = np.concatenate(blocks)
    distinct, where = _unique_rows(stacked)
    t_ref = time.perf_counter()
    r_distinct = model.reference.run(distinct)
    t_ref = time.perf_counter() - t_ref
    latency = None
    t_target = time.perf_counter()
    if mut.run_target is None:
        t_distinct = r_distinct
    else:
        with console.progress(len(distinct), f"robustness: {mut.target_name}", unit="input",
                              enabled=progress) as bar:
            t_distinct, counts = mut.run_target(distinct)
            bar.update(len(distinct))
        if t_distinct.shape != r_distinct.shape:
            raise RobustnessError(f"the target returned shape {t_distinct.shape}, expected {r_distinct.shape}")
        t_distinct = t_distinct.view(np.int8) if t_distinct.dtype == np.uint8 else t_distinct
        if counts is not None and mut.counter_unit not in (None, "none"):
            clean_counts = np.asarray(counts)[where[:n]]
            latency = {"unit": mut.counter_unit, "mean": float(np.mean(clean_counts)),
                       "max": int(np.max(clean_counts))}
    t_target = time.perf_counter() - t_target
    exact_distinct = np.all(t_distinct == r_distinct, axis=1)
    s_distinct = None
    if model.keras_model is not None:
        s_distinct = np.asarray(model.keras_predict(grid.dequantize(distinct).reshape(len(distinct), *x.shape[1:])))
        s_distinct = s_distinct.argmax(axis=1)

    def block(k: int) -> slice:
        return where[k * n:(k + 1) * n]  # type: ignore[return-value]

    t_label = model.program.output_values(t_distinct).argmax(axis=1)
    r_label = model.program.output_values(r_distinct).argmax(axis=1)
    clean_idx = block(0)
    clean_ok = t_label[clean_idx] == y
    clean_ref_ok = r_label[clean_idx] == y
    folds = None
    if settings.folds:
        folds = np.random.default_rng(settings.seed).permutation(n) % settings.folds

    rows = []
    for key in keys:
        points = []
        for pk in shards[0].rows[key.id].adversarial:
            q_adv = blocks[index[(key.id, pk)]]
            idx = block(index[(key.id, pk)])
            adv_ok = t_label[idx] == y
            robust = clean_ok & adv_ok
            delta = received(q_adv, q_clean, grid)
            size, linf = norm_of(delta, key.norm), norm_of(delta, "linf")
            points.append(Point(
                eps=None if pk == UNBOUNDED else float(pk),
                robust_accuracy=Rate.of(robust),
                attack_success=Rate.of(~adv_ok[clean_ok]),
                reference_robust_accuracy=Rate.of(clean_ref_ok & (r_label[idx] == y)),
                surrogate_accuracy=None if s_distinct is None else float(np.mean(s_distinct[idx] == y)),
                perturbation=Perturbation(key.norm, float(size.mean()), float(size.max()), float(linf.mean()),
                                          float(linf.max())),
                target_reference_exact=int(exact_distinct[idx].sum()),
                folds=None if folds is None else Folds.of(robust, folds, settings.folds or 0),
            ))
        points.sort(key=lambda p: (p.eps is None, p.eps or 0.0))
        crafts = [s.rows[key.id] for s in shards]
        confirmation = None
        if key.threat == BLACK_BOX:
            confirmation = _confirm([block(index[(key.id, pk)]) for pk in crafts[0].adversarial], t_distinct,
                                    r_distinct, t_label, r_label, y)
        notes = tuple(dict.fromkeys(note for c in crafts for note in c.notes))
        rows.append(Row(key, tuple(points), sum(c.attacked for c in crafts),
                        sum(c.queries for c in crafts) if key.attack in BLACK_BOX_ATTACKS else None, notes,
                        confirmation))

    gradients = tuple(_gradient_check(threat, shards) for threat in GRADIENT_THREATS
                      if threat in shards[0].zero_gradients)
    ref_queries = sum(s.reference_queries for s in shards) + len(distinct)
    ref_seconds = sum(s.reference_seconds for s in shards) + t_ref
    timings = {
        "seconds": time.perf_counter() - t_start, "crafting_seconds": t_crafted - t_start,
        "shard_seconds": [s.seconds for s in shards], "target_seconds": t_target,
        "reference_queries": ref_queries, "reference_seconds": ref_seconds,
        "reference_queries_per_second": ref_queries / ref_seconds if ref_seconds > 0 else None,
        "row_seconds": {key.id: sum(s.rows[key.id].seconds for s in shards) for key in keys},
    }
    result = ModelResult(
        name=mut.name, model_sha256=mut.model_sha256, program_sha256=program_sha, flash_bytes=mut.flash_bytes,
        latency=latency, target=mut.target_name, samples=n, clean=Rate.of(clean_ok),
        clean_reference=Rate.of(clean_ref_ok),
        clean_surrogate=None if s_distinct is None else float(np.mean(s_distinct[clean_idx] == y)),
        input_grid={"scale": grid.scale, "zero_point": grid.zero_point, "qmin": grid.qmin, "qmax": grid.qmax,
                    "range": [grid.lo, grid.hi], "dims": int(q_clean.shape[1]),
                    "source": model.program.input_quantization.source},
        rows=tuple(rows), gradients=gradients, target_inputs=len(distinct),
        target_mismatches=int((~exact_distinct).sum()), timings=timings)
    return with_masking_checks(result)


def _confirm(indices: Sequence[np.ndarray], t: np.ndarray, r: np.ndarray, t_labels: np.ndarray, r_labels: np.ndarray,
             y: np.ndarray) -> Confirmation:
    """Every example of a black-box row on the target: bytes as the reference's, flips confirmed."""
    idx = np.concatenate(indices)
    labels = np.tile(y, len(indices))
    same = np.all(t[idx] == r[idx], axis=1)
    r_label, t_label = r_labels[idx], t_labels[idx]
    flipped = r_label != labels
    held = flipped & (t_label == r_label)
    bad = np.flatnonzero(~same | (flipped & ~held)) % len(y)
    return Confirmation(len(idx), int(same.sum()), int(flipped.sum()), int(held.sum()),
                        tuple(int(i) for i in dict.fromkeys(bad.tolist()))[:MAX_LISTED_MISMATCHES])


def _gradient_check(threat: str, shards: Sequence[ShardResult]) -> GradientCheck:
    zero = np.concatenate([s.zero_gradients[threat] for s in shards])
    weights = np.array([s.samples for s in shards], dtype=np.float64)
    components = float(np.average([s.zero_components[threat] for s in shards], weights=weights))
    return GradientCheck(threat, Rate.of(zero), components)


def evaluate(models: Sequence[ModelUnderTest], data: Dataset, settings: Settings, *,
             progress: bool = False) -> Evaluation:
    """Several models on the same samples, seeds and budgets: one comparison."""
    t = time.perf_counter()
    settings = settings.normalised()
    limited = data.limit(settings.limit)
    if limited.y is None:
        raise RobustnessError("the dataset has no labels 'y'")
    results = tuple(evaluate_model(m, data, settings, progress=progress) for m in models)
    eps = resolve_eps(settings, np.asarray(limited.x, dtype=np.float32))
    threats = tuple(settings.threat_models)
    return Evaluation(
        tool_version=__version__, seed=settings.seed, samples=len(limited), data_sha256=data_sha256(limited),
        attacks=settings.attacks, threat_models=threats, norms=settings.norms, eps=eps, budget=settings.budget,
        folds=settings.folds, models=results, shard_size=settings.shard_size,
        timings={"seconds": time.perf_counter() - t, "jobs": settings.jobs,
                 "models": {m.name: dict(m.timings) for m in results}},
    )
