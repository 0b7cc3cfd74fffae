"""Sharding the crafting: the unit of work a local process pool runs today and a distributed engine
(Ray, Dask) could run tomorrow.

The shard interface
-------------------
    run_shard(task: ShardTask) -> ShardResult

is a pure, top-level function of picklable values:

* ShardTask: how to rebuild the deployed model (ModelSpec: the .h5 path, the calibration .npz,
  the conversion options, and the Program's sha256 the rebuilt model must have), the shard's index
  and its samples (x, y as numpy arrays), the rows, the ε values per norm, the budget and the seed.
* ShardResult: for every row and point, the int8 inputs to send to the target (one per sample),
  the black-box queries spent, the gradient checks, notes, and the seconds it took (timings are
  reported, never compared).

Samples are cut into shards of a fixed size (--shard-size) that does not depend on the number of
workers, and every attack call is seeded from (seed, shard index, row, ε) only, so the merged
result is the same whether the shards ran in one process, in --jobs N local processes, or on a
cluster. A worker converts the model itself (cached per process) and refuses to go on if its
Program differs from the parent's. To run on Ray instead of the local pool:

    futures = [ray.remote(run_shard).remote(task) for task in tasks]
    results = ray.get(futures)           # then merge_shards(results), as evaluate() does

and on Dask: `client.gather(client.map(run_shard, tasks))`. Each worker needs tinyrobust, the
model and calibration files at the same paths (or a shared filesystem).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...converter.pipeline import DeployedModel, convert_file
from ...converter.precision import DEFAULT_FIDELITY, Fidelity
from ...errors import InternalError
from .budget import AttackBudget
from .crafting import AttackContext, RowCraft, ShardCrafter
from .threats import GRADIENT_THREATS, RowKey


@dataclass(frozen=True)
class ModelSpec:
    """How a worker rebuilds the deployed model, and the Program hash it must get."""

    model: Path
    calibration: Path | None
    input_range: tuple[float, float] | None  # None: from the calibration data, else [0, 1]
    packing: str
    program_sha256: str
    source: Path | None = None  # the float model of the transfer threat model
    fidelity: Fidelity = DEFAULT_FIDELITY


@dataclass(frozen=True)
class ShardTask:
    spec: ModelSpec
    shard: int
    x: np.ndarray  # the shard's samples, data domain
    y: np.ndarray
    rows: tuple[RowKey, ...]
    eps: Mapping[str, tuple[float, ...]]  # per norm
    budget: AttackBudget
    seed: int


@dataclass(frozen=True)
class ShardResult:
    shard: int
    samples: int
    rows: Mapping[str, RowCraft]  # row id → what it produced
    zero_gradients: Mapping[str, np.ndarray]  # gradient threat model → per-sample "gradient exactly 0"
    zero_components: Mapping[str, float]  # gradient threat model → fraction of zero gradient components
    reference_queries: int
    reference_seconds: float
    seconds: float


# One deployed model per worker process and spec (TensorFlow and the conversion take seconds).
_CONTEXTS: dict[ModelSpec, AttackContext] = {}


def register_context(spec: ModelSpec, model: DeployedModel, source: object | None) -> None:
    """The parent's own model for in-process shards (no second conversion)."""
    _CONTEXTS[spec] = AttackContext(model, source)


def _context(spec: ModelSpec) -> AttackContext:
    if spec not in _CONTEXTS:
        from ... import lazy

        model = convert_file(spec.model, calibration=spec.calibration, input_range=spec.input_range,
                             packing=spec.packing, fidelity=spec.fidelity)
        if model.program.sha256().hex() != spec.program_sha256:
            raise InternalError(f"worker {os.getpid()}: {spec.model} converted to a different Program than the "
                                "parent's; shards would not be comparable")
        source = lazy.frontend().load_model(spec.source) if spec.source is not None else None
        _CONTEXTS[spec] = AttackContext(model, source)
    return _CONTEXTS[spec]


def run_shard(task: ShardTask) -> ShardResult:
    """Craft every row of one shard (see the module docstring)."""
    t = time.perf_counter()
    ctx = _context(task.spec)
    queries0, seconds0 = ctx.queries, ctx.reference_seconds
    crafter = ShardCrafter(ctx, x=task.x, y=task.y, shard=task.shard, seed=task.seed, budget=task.budget)
    rows = {row.id: crafter.craft(row, tuple(task.eps[row.norm])) for row in task.rows}
    threats = [t for t in GRADIENT_THREATS if any(r.threat == t for r in task.rows)]
    zero, components = {}, {}
    for threat in threats:
        zero[threat], components[threat] = crafter.gradient_check(threat)
    return ShardResult(task.shard, len(task.x), rows, zero, components, ctx.queries - queries0,
                       ctx.reference_seconds - seconds0, time.perf_counter() - t)


def shard_tasks(spec: ModelSpec, x: np.ndarray, y: np.ndarray, *, shard_size: int, rows: Sequence[RowKey],
                eps: Mapping[str, tuple[float, ...]], budget: AttackBudget, seed: int) -> list[ShardTask]:
    return [ShardTask(spec, i, x[start:start + shard_size], y[start:start + shard_size], tuple(rows), dict(eps),
                      budget, seed)
            for i, start in enumerate(range(0, len(x), shard_size))]


# Each worker gets one core's worth of BLAS and TensorFlow threads: N workers, N cores. Set in the
# environment the spawned workers inherit, before they import numpy or TensorFlow.
_ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
               "TF_NUM_INTEROP_THREADS")


def run_shards(tasks: Sequence[ShardTask], *, jobs: int,
               on_done: Callable[[ShardResult], None] | None = None) -> list[ShardResult]:
    """Every task, in this process (jobs = 1) or in a pool of `jobs` spawned processes; results in
    shard order either way."""
    results: list[ShardResult] = []
    if jobs <= 1 or len(tasks) <= 1:
        for task in tasks:
            results.append(run_shard(task))
            if on_done:
                on_done(results[-1])
        return results
    context = multiprocessing.get_context("spawn")  # TensorFlow is not fork-safe
    saved = {var: os.environ.get(var) for var in _ONE_THREAD}
    os.environ.update({var: "1" for var in _ONE_THREAD})
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            for result in pool.map(run_shard, tasks):
                results.append(result)
                if on_done:
                    on_done(result)
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
    return results


def merge_shards(results: Iterable[ShardResult]) -> list[ShardResult]:
    """Shard results in shard order, checked complete."""
    ordered = sorted(results, key=lambda r: r.shard)
    if [r.shard for r in ordered] != list(range(len(ordered))):
        raise InternalError("shard results are missing or duplicated")
    return ordered
