"""Adversarial robustness of the *deployed integer* model, measured on a target.

White-box attacks (FGSM, PGD over an ε sweep, C&W-L2) are crafted with ART on the float Keras
model and transferred to the deployed model, the setting of seed 002. Black-box attacks (Square,
Boundary) query the bit-exact numpy reference of the integer model; every final adversarial
example is then run on the target and *confirmed*: the target's output bytes must equal the
reference's, so the label flip found on the host holds on the device.

Every input sent to a target is first quantised to the firmware's input grid; the perturbation
reported is the effective one after that rounding, in real input units. ε is in the same units.

Decisions (written down here because DESIGN.md is silent on them):
- Accuracy is over all evaluated samples (clean mistakes included), as in Table IV of seed 000.
- Boundary is a minimum-perturbation attack with no ε. It is reported twice: unbounded (did the
  label flip at all within the query budget) and ε-bounded (a flip counts only when the effective
  L∞ perturbation is ≤ ε). The table uses the ε-bounded value at the main ε. C&W-L2 is reported
  unbounded, with its mean L2.
- Boundary and C&W only attack samples the model classifies correctly; the rest keep their clean
  input. An untargeted Boundary attack on a misclassified sample would push it *away* from the
  wrong label and could "repair" it.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .dataset import Dataset, DatasetError
from .pipeline import DeployedModel

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


class RobustnessError(ValueError):
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


# ---------------------------------------------------------------------------------------------------
# Helpers on the deployed model
# ---------------------------------------------------------------------------------------------------


def input_clip_range(model: DeployedModel) -> tuple[float, float]:
    """The real-valued range the firmware's input grid can represent: [s·(qmin−zp), s·(qmax−zp)]."""
    iq = model.program.input_quantization
    return float(iq.scale * (iq.qmin - iq.zero_point)), float(iq.scale * (iq.qmax - iq.zero_point))


def default_eps(model: DeployedModel) -> list[float]:
    lo, hi = input_clip_range(model)
    return [round(e * (hi - lo), 6) for e in DEFAULT_EPS_UNIT]


def _choose_main_eps(eps: Sequence[float], width: float) -> float:
    """The sweep value closest to 0.1 of the input range (Square's ε and the table's column)."""
    nonzero = [e for e in eps if e > 0]
    if not nonzero:
        raise RobustnessError("the ε sweep needs at least one ε > 0")
    return min(nonzero, key=lambda e: (abs(e - MAIN_EPS_UNIT * width), e))


def _seed_all(seed: int) -> None:
    import tensorflow as tf

    random.seed(seed)
    np.random.seed(seed % 2**32)
    tf.random.set_seed(seed)


def _logits_callable(keras_model: Any) -> tuple[Callable[..., Any], str]:
    """A callable giving the pre-softmax logits of the Keras model, and what it is.

    Gradients are taken on logits, not probabilities: a saturated softmax has near-zero
    gradients, which would masquerade as robustness (gradient masking) and starve C&W.
    """
    import tf_keras

    last = keras_model.layers[-1]
    act = getattr(last, "activation", None)
    is_softmax = act is tf_keras.activations.softmax or getattr(act, "__name__", "") == "softmax"
    if not is_softmax:
        return (lambda x, training=False: keras_model(x, training=training)), "model output (no softmax found)"
    if isinstance(last, tf_keras.layers.Activation):
        inner = tf_keras.Model(keras_model.inputs, last.input)
        return (lambda x, training=False: inner(x, training=training)), f"input of softmax layer '{last.name}'"
    inner = tf_keras.Model(keras_model.inputs, last.input)

    def pre_activation(x: Any, training: bool = False) -> Any:
        # The layer applies softmax inside call(); swap it out for this call only.
        saved = last.activation
        last.activation = tf_keras.activations.linear
        try:
            return last(inner(x, training=training), training=training)
        finally:
            last.activation = saved

    return pre_activation, f"pre-activation of layer '{last.name}'"


def _square_p_init(height: int, width: int) -> float:
    """Initial fraction of pixels in Square's first tile: ART's 0.8, shrunk until the tile fits.

    ART (1.20) draws a square tile of side round(sqrt(p·H·W)) and places it with
    randint(0, H − side) and randint(0, W − side), so it needs side ≤ min(H, W) − 1. The default
    p = 0.8 breaks that on small or narrow inputs: 4×4 (side 4 → randint(0, 0) raises) or a 49×10
    MFCC map as in Table IV's GSC row (side 20 > W = 10). We take the largest p ≤ 0.8 whose tile
    is at most min(H, W) − 1. On 8×8 digits that is 49/64 (side 7, the same tile as the default;
    ART's halving schedule then gives sides 5, 4, 3, 2, 1). Measured on the digits test model,
    ε = 0.1, 80 samples, 3 seeds: p = 0.05 / 0.1 / 0.25 / 0.5 / 0.8 left 78.8 / 74.6 / 74.6 /
    72.5 / 72.5 % accuracy, so on 8×8 the large first tile is not a handicap; only the fit matters.
    """
    side = min(height, width)
    return min(0.8, (side - 1) ** 2 / float(height * width))


# ---------------------------------------------------------------------------------------------------
# The evaluation
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Crafted:
    """Inputs crafted by one attack at one ε, before evaluation."""

    attack: str
    eps: float | None
    x_adv: np.ndarray  # float, model input shape


def _check_inputs(model: DeployedModel, data: Dataset, attacks: Sequence[str], eps: Sequence[float]) -> int:
    if model.keras_model is None and any(a in WHITE_BOX for a in attacks):
        raise RobustnessError("white-box attacks need the Keras model: give MODEL.h5, not an export directory")
    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown:
        raise RobustnessError(f"unknown attack(s) {', '.join(unknown)}; choose from {', '.join(ATTACKS)}")
    if not attacks:
        raise RobustnessError("no attacks selected")
    shape = tuple(model.program.tensor(model.program.input).shape)
    if tuple(data.x.shape[1:]) != shape:
        raise RobustnessError(f"samples have shape {tuple(data.x.shape[1:])}, the model takes {shape}")
    if data.y is None:
        raise RobustnessError("the dataset has no labels 'y'")
    nb_classes = int(np.prod(model.program.tensor(model.program.output).shape))
    if len(data.y) and (data.y.min() < 0 or data.y.max() >= nb_classes):
        raise RobustnessError(f"labels must be in [0, {nb_classes}), got [{data.y.min()}, {data.y.max()}]")
    if "square" in attacks:
        view = _image_view(shape)
        if view is None or min(view[:2]) < 2:
            raise RobustnessError(f"the Square attack needs image inputs (H, W[, C]) with H, W ≥ 2; got {shape}")
    if any((not np.isfinite(e)) or e < 0 for e in eps):
        raise RobustnessError(f"ε values must be finite and ≥ 0, got {list(eps)}")
    if len(data) == 0:
        raise RobustnessError("the dataset is empty")
    return nb_classes


def _run_target_checked(run_target: TargetRunner, q: np.ndarray, out_bytes: int) -> np.ndarray:
    out = np.asarray(run_target(q))
    if out.shape != (len(q), out_bytes):
        raise RobustnessError(f"the target returned shape {out.shape}, expected {(len(q), out_bytes)}")
    if out.dtype == np.uint8:
        out = out.view(np.int8)
    if out.dtype != np.int8:
        raise RobustnessError(f"the target returned dtype {out.dtype}, expected int8")
    return out


def evaluate_robustness(
    model: DeployedModel,
    data: Dataset,
    *,
    run_target: TargetRunner,
    attacks: Sequence[str] = ATTACKS,
    eps: Sequence[float] | None = None,
    limit: int | None = None,
    seed: int = 0,
    progress: bool = True,
    target_name: str = "target",
    budget: AttackBudget | None = None,
) -> RobustnessResult:
    """Craft adversarial examples, run them on `run_target`, confirm black-box flips bit-exactly."""
    from tqdm.auto import tqdm

    from . import frontend  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

    budget = budget or AttackBudget()
    if isinstance(attacks, str):  # "fgsm,pgd" from a script, like --attacks
        attacks = attacks.split(",")
    attacks = tuple(dict.fromkeys(a.strip().lower() for a in attacks))
    if limit is not None and limit <= 0:
        raise RobustnessError(f"--limit must be positive, got {limit}")
    data = data.limit(limit)
    eps_list = sorted({float(e) for e in (default_eps(model) if eps is None else eps)})
    nb_classes = _check_inputs(model, data, attacks, eps_list)
    # ε = 0 is the clean input; always part of the sweep so curves start at clean accuracy.
    if 0.0 not in eps_list:
        eps_list = [0.0, *eps_list]
    lo, hi = input_clip_range(model)
    main_eps = _choose_main_eps(eps_list, hi - lo)

    # Outside the grid's range the firmware clips anyway; clipping here keeps ART's clip_values honest.
    x = np.clip(data.x.astype(np.float32), lo, hi)
    y = np.asarray(data.y, dtype=np.int64)
    n = len(x)
    iq = model.program.input_quantization
    out_spec = model.program.tensor(model.program.output)
    out_bytes = int(np.prod(out_spec.shape))

    def ref_logits(xf: np.ndarray) -> np.ndarray:
        q = model.quantize_input(np.asarray(xf, dtype=np.float32))
        return (out_spec.scale * (model.reference.run(q).astype(np.float64) - out_spec.zero_point)).astype(np.float32)

    q_clean = model.quantize_input(x)
    ref_clean_pred = model.reference.run(q_clean).argmax(axis=1)
    correct = ref_clean_pred == y

    crafted: list[_Crafted] = []
    queries: dict[str, int] = {}
    gradient_source = "not used (black-box attacks only)"
    white = [a for a in attacks if a in WHITE_BOX]
    black = [a for a in attacks if a in BLACK_BOX]
    steps = sum(len([e for e in eps_list if e > 0]) for a in white if a in SWEPT) + int("cw" in white) + len(black)
    bar = tqdm(total=steps, desc="robustness: crafting", disable=not progress, unit="attack")

    if white:
        import tensorflow as tf
        from art.estimators.classification import TensorFlowV2Classifier

        logits_fn, gradient_source = _logits_callable(model.keras_model)
        # Eager QKeras layers cost ~35 ms a call; a traced graph makes C&W/PGD several times faster.
        # reduce_retracing: ART's batches vary in size, one relaxed-shape trace serves them all.
        logits_fn = tf.function(logits_fn, reduce_retracing=True)
        classifier = TensorFlowV2Classifier(
            model=logits_fn,
            nb_classes=nb_classes,
            input_shape=tuple(x.shape[1:]),
            loss_object=tf.keras.losses.CategoricalCrossentropy(from_logits=True),
            clip_values=(lo, hi),
        )
        for attack in white:
            if attack == "cw":
                crafted.append(_craft_cw(classifier, x, y, correct, budget, seed))
                bar.update(1)
                continue
            for e in eps_list:
                if e == 0:
                    continue
                bar.set_postfix_str(f"{attack} ε={e:g}")
                crafted.append(_Crafted(attack, e, _craft_gradient(attack, classifier, x, y, e, budget, seed)))
                bar.update(1)

    if black:
        # The NeuralNetworkMixin variant: Square requires it (plain BlackBoxClassifier is refused).
        from art.estimators.classification.blackbox import BlackBoxClassifierNeuralNetwork

        counter = {"n": 0}

        def predict_fn(xb: np.ndarray) -> np.ndarray:
            counter["n"] += len(xb)
            return ref_logits(xb.reshape(len(xb), *x.shape[1:]))

        def make_classifier(input_shape: tuple[int, ...]) -> Any:
            return BlackBoxClassifierNeuralNetwork(
                predict_fn,
                input_shape=input_shape,
                nb_classes=nb_classes,
                channels_first=False,
                clip_values=(lo, hi),
            )

        for attack in black:
            counter["n"] = 0
            bar.set_postfix_str(attack)
            if attack == "square":
                crafted.append(_craft_square(make_classifier, x, y, main_eps, budget, seed))
            else:
                crafted.append(_craft_boundary(make_classifier, x, y, correct, budget, seed))
            queries[attack] = counter["n"]
            bar.update(1)
    bar.close()

    # One target session for everything: clean inputs first, then each crafted set in order.
    q_sets = [q_clean] + [model.quantize_input(c.x_adv.astype(np.float32)) for c in crafted]
    q_all = np.concatenate(q_sets, axis=0)
    with tqdm(total=len(q_all), desc=f"robustness: {target_name}", disable=not progress, unit="sample") as tbar:
        t_all = _run_target_checked(run_target, q_all, out_bytes)
        tbar.update(len(q_all))
    r_all = model.reference.run(q_all)
    has_keras = model.keras_model is not None
    x_sets = [x] + [c.x_adv for c in crafted]
    keras_cache: dict[int, np.ndarray] = {}

    def keras_pred(k: int) -> np.ndarray:
        if k not in keras_cache:
            keras_cache[k] = np.asarray(model.keras_predict(x_sets[k].astype(np.float32))).argmax(axis=1)
        return keras_cache[k]

    def evaluate(attack: str, e: float | None, k: int, use: np.ndarray | None = None) -> AttackPoint:
        """Point for crafted set k (0 = clean). `use` selects, per sample, adversarial (True) or clean."""
        sl = slice(k * n, (k + 1) * n)
        q, t, r = q_sets[k], t_all[sl], r_all[sl]
        kp = keras_pred(k) if has_keras else np.full(n, -1)
        if use is not None:
            q = np.where(use[:, None], q, q_clean)
            t = np.where(use[:, None], t, t_all[:n])
            r = np.where(use[:, None], r, r_all[:n])
            kp = np.where(use, kp, keras_pred(0) if has_keras else -1)
        return AttackPoint(
            attack=attack,
            eps=e,
            samples=n,
            keras_accuracy=float((kp == y).mean()) if has_keras else None,
            reference_accuracy=float((r.argmax(axis=1) == y).mean()),
            target_accuracy=float((t.argmax(axis=1) == y).mean()),
            target_reference_exact=int(np.all(t == r, axis=1).sum()),
            perturbation=Perturbation.between(q, q_clean, iq.scale),
        )

    clean = evaluate("clean", 0.0, 0)
    points: list[AttackPoint] = []
    confirmations: list[Confirmation] = []
    for k, c in enumerate(crafted, start=1):
        if c.attack in SWEPT:
            if not points or points[-1].attack != c.attack:
                # ε = 0 of a sweep is the clean input itself.
                points.append(
                    AttackPoint(
                        c.attack,
                        0.0,
                        n,
                        clean.keras_accuracy,
                        clean.reference_accuracy,
                        clean.target_accuracy,
                        clean.target_reference_exact,
                        clean.perturbation,
                    )
                )
            points.append(evaluate(c.attack, c.eps, k))
            continue
        points.append(evaluate(c.attack, c.eps, k))
        if c.attack == "boundary":
            linf = iq.scale * np.abs(q_sets[k].astype(np.int32) - q_clean.astype(np.int32)).max(axis=1)
            for e in eps_list:
                points.append(evaluate("boundary", e, k, use=linf <= e + 1e-9 * max(1.0, hi - lo)))
        if c.attack in BLACK_BOX:
            sl = slice(k * n, (k + 1) * n)
            confirmations.append(_confirm(c.attack, c.eps, t_all[sl], r_all[sl], y))

    result = RobustnessResult(
        model=model.program.model_name,
        target=target_name,
        samples=n,
        seed=seed,
        attacks=attacks,
        eps=tuple(eps_list),
        main_eps=main_eps,
        input_grid={
            "scale": iq.scale,
            "zero_point": iq.zero_point,
            "qmin": iq.qmin,
            "qmax": iq.qmax,
            "range": [lo, hi],
            "source": iq.source,
        },
        gradient_source=gradient_source,
        clean=clean,
        points=tuple(points),
        confirmations=tuple(confirmations),
        masking=(),
        budget=budget,
        target_inputs=len(q_all),
        target_mismatches=int((~np.all(t_all == r_all, axis=1)).sum()),
        queries=queries,
    )
    return _with_masking_checks(result)


def _craft_gradient(
    attack: str, classifier: Any, x: np.ndarray, y: np.ndarray, eps: float, budget: AttackBudget, seed: int
) -> np.ndarray:
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent

    _seed_all(seed + (1 if attack == "fgsm" else 2))
    if attack == "fgsm":
        atk: Any = FastGradientMethod(classifier, norm=np.inf, eps=eps, batch_size=budget.batch_size)
    else:
        # Madry et al.'s step rule: 2.5·ε / iterations, so the iterate can cross the ε-ball.
        atk = ProjectedGradientDescent(
            classifier,
            norm=np.inf,
            eps=eps,
            eps_step=2.5 * eps / budget.pgd_max_iter,
            max_iter=budget.pgd_max_iter,
            num_random_init=budget.pgd_random_init,
            batch_size=budget.batch_size,
            verbose=False,
        )
    return atk.generate(x=x, y=y).astype(np.float32)


def _craft_cw(
    classifier: Any, x: np.ndarray, y: np.ndarray, correct: np.ndarray, budget: AttackBudget, seed: int
) -> _Crafted:
    from art.attacks.evasion import CarliniL2Method

    _seed_all(seed + 3)
    x_adv = x.copy()
    if correct.any():
        atk = CarliniL2Method(
            classifier,
            confidence=0.0,
            targeted=False,
            learning_rate=budget.cw_learning_rate,
            binary_search_steps=budget.cw_binary_search_steps,
            max_iter=budget.cw_max_iter,
            initial_const=budget.cw_initial_const,
            max_halving=budget.cw_line_search_steps,
            max_doubling=budget.cw_line_search_steps,
            batch_size=budget.batch_size,
            verbose=False,
        )
        x_adv[correct] = atk.generate(x=x[correct], y=y[correct]).astype(np.float32)
    return _Crafted("cw", None, x_adv)


def _image_view(shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    """(H, W, C) for Square's tiles, or None when the input is not image-like."""
    if len(shape) == 3:
        return shape  # type: ignore[return-value]
    if len(shape) == 2:
        return (shape[0], shape[1], 1)
    return None


def _craft_square(
    make_classifier: Callable[[tuple[int, ...]], Any],
    x: np.ndarray,
    y: np.ndarray,
    eps: float,
    budget: AttackBudget,
    seed: int,
) -> _Crafted:
    from art.attacks.evasion import SquareAttack

    view = _image_view(tuple(x.shape[1:]))
    assert view is not None  # checked in _check_inputs
    _seed_all(seed + 4)
    classifier = make_classifier(view)
    atk = SquareAttack(
        classifier,
        norm=np.inf,
        eps=eps,
        max_iter=budget.square_max_iter,
        p_init=_square_p_init(view[0], view[1]),
        nb_restarts=1,
        batch_size=budget.batch_size,
        verbose=False,
    )
    x_adv = atk.generate(x=x.reshape(len(x), *view), y=y).reshape(x.shape)
    return _Crafted("square", eps, x_adv.astype(np.float32))


def _craft_boundary(
    make_classifier: Callable[[tuple[int, ...]], Any],
    x: np.ndarray,
    y: np.ndarray,
    correct: np.ndarray,
    budget: AttackBudget,
    seed: int,
) -> _Crafted:
    from art.attacks.evasion import BoundaryAttack

    _seed_all(seed + 5)
    classifier = make_classifier(tuple(x.shape[1:]))
    x_adv = x.copy()
    if correct.any():
        atk = BoundaryAttack(
            classifier,
            targeted=False,
            max_iter=budget.boundary_max_iter,
            num_trial=budget.boundary_num_trial,
            sample_size=budget.boundary_sample_size,
            init_size=budget.boundary_init_size,
            batch_size=budget.batch_size,
            verbose=False,
        )
        x_adv[correct] = atk.generate(x=x[correct], y=y[correct]).astype(np.float32)
    return _Crafted("boundary", None, x_adv)


def _confirm(attack: str, eps: float | None, t: np.ndarray, r: np.ndarray, y: np.ndarray) -> Confirmation:
    same = np.all(t == r, axis=1)
    r_label, t_label = r.argmax(axis=1), t.argmax(axis=1)
    flipped = r_label != y
    flip_held = flipped & (t_label == r_label)
    bad = np.flatnonzero(~same | (flipped & ~flip_held))
    return Confirmation(
        attack=attack,
        eps=eps,
        examples=len(t),
        bytes_identical=int(same.sum()),
        reference_flips=int(flipped.sum()),
        flips_confirmed=int(flip_held.sum()),
        unconfirmed=tuple(int(i) for i in bad[:MAX_LISTED_MISMATCHES]),
    )


# ---------------------------------------------------------------------------------------------------
# Gradient-masking checks (seeds 002/003, after Athalye et al. 2018): each flags a symptom
# ---------------------------------------------------------------------------------------------------


def _tolerance(n: int) -> float:
    """Differences smaller than one sample, or 2 %, are noise on small evaluation sets."""
    return max(0.02, 1.0 / max(n, 1))


PGD_FLOOR = 0.10  # "approaching ~0": PGD at the largest ε should leave at most this accuracy
WHY_BLACK_BEATS_WHITE = (
    "A gradient-free attack beats the gradient attack: the float model's gradients do not guide the "
    "integer model well (quantisation masks gradients, or transfer is weak), so white-box numbers "
    "overstate robustness."
)
WHY_PGD_FLOOR = (
    "A large enough ε should break any classifier; residual accuracy suggests masked or obfuscated "
    "gradients (or too few PGD iterations)."
)
WHY_FGSM_BEATS_PGD = (
    "An iterative attack weaker than its own first step means the loss surface is locally misleading "
    "(gradient masking), or PGD's step size is badly tuned."
)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _check_black_vs_white(res: RobustnessResult, tol: float) -> MaskingCheck:
    name = "black-box stronger than white-box"
    pgd = res.point("pgd", res.main_eps)
    bb = [res.point(a, res.main_eps) for a in BLACK_BOX]
    found = [p for p in bb if p is not None]
    if pgd is None or not found:
        return MaskingCheck(name, False, False, "not evaluated: needs pgd and square or boundary")
    strongest = min(found, key=lambda p: p.target_accuracy)
    flagged = strongest.target_accuracy < pgd.target_accuracy - tol
    detail = (
        f"at ε={res.main_eps:g} on the target: {strongest.attack} {strongest.target_accuracy:.3f} vs "
        f"PGD {pgd.target_accuracy:.3f} (tolerance {tol:.3f}). "
    )
    return MaskingCheck(
        name,
        flagged,
        True,
        detail + (WHY_BLACK_BEATS_WHITE if flagged else "White-box is at least as strong, as expected."),
    )


def _check_pgd_floor(res: RobustnessResult) -> MaskingCheck:
    name = "PGD accuracy does not approach 0 at the largest ε"
    sweep = res.sweep("pgd")
    if not sweep or not sweep[-1].eps:
        return MaskingCheck(name, False, False, "not evaluated: needs pgd with an ε > 0")
    last = sweep[-1]
    lo, hi = res.input_grid["range"]
    frac = float(last.eps or 0.0) / max(float(hi) - float(lo), 1e-12)
    accs = [a for a in (last.keras_accuracy, last.target_accuracy) if a is not None]
    flagged = max(accs) > PGD_FLOOR
    detail = (
        f"PGD at ε={last.eps:g} ({100 * frac:.0f} % of the input range): keras {_fmt(last.keras_accuracy)}, "
        f"target {last.target_accuracy:.3f}; expected ≤ {PGD_FLOOR:.2f}. "
        + (WHY_PGD_FLOOR if flagged else "Accuracy collapses as expected.")
        + (" The largest ε is small, so this check says little." if frac < 0.25 else "")
    )
    return MaskingCheck(name, flagged, True, detail)


def _check_fgsm_vs_pgd(res: RobustnessResult, tol: float) -> MaskingCheck:
    name = "FGSM stronger than PGD"
    fg = {p.eps: p for p in res.sweep("fgsm")}
    pg = {p.eps: p for p in res.sweep("pgd")}
    common = sorted(e for e in fg if e in pg and e)
    if not common:
        return MaskingCheck(name, False, False, "not evaluated: needs fgsm and pgd at a common ε > 0")
    hits = []
    for e in common:
        pairs = {
            "keras": (fg[e].keras_accuracy, pg[e].keras_accuracy),
            "target": (fg[e].target_accuracy, pg[e].target_accuracy),
        }
        for on, (a_f, a_p) in pairs.items():
            if a_f is not None and a_p is not None and a_f < a_p - tol:
                hits.append(f"ε={e:g} {on}: FGSM {a_f:.3f} < PGD {a_p:.3f}")
    if hits:
        return MaskingCheck(name, True, True, "; ".join(hits) + ". " + WHY_FGSM_BEATS_PGD)
    return MaskingCheck(name, False, True, f"PGD is at least as strong as FGSM at every ε (tolerance {tol:.3f}).")


def _with_masking_checks(res: RobustnessResult) -> RobustnessResult:
    from dataclasses import replace

    tol = _tolerance(res.samples)
    checks = (_check_black_vs_white(res, tol), _check_pgd_floor(res), _check_fgsm_vs_pgd(res, tol))
    return replace(res, masking=checks)


# ---------------------------------------------------------------------------------------------------
# CLI glue (the lead's cli.py wires these into `tinyrobust robustness`)
# ---------------------------------------------------------------------------------------------------


def _parse_floats(text: str, what: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{what}: expected comma-separated numbers, got '{text}'") from exc
    if not vals:
        raise argparse.ArgumentTypeError(f"{what}: empty list")
    return vals


def _parse_attacks(text: str) -> list[str]:
    names = [a.strip().lower() for a in text.split(",") if a.strip()]
    bad = [a for a in names if a not in ATTACKS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown attack(s) '{text}'; choose from {','.join(ATTACKS)}")
    return names


def _parse_range(text: str) -> tuple[float, float]:
    vals = _parse_floats(text, "--input-range")
    if len(vals) != 2 or not vals[0] < vals[1]:
        raise argparse.ArgumentTypeError(f"--input-range: expected lo,hi with lo < hi, got '{text}'")
    return vals[0], vals[1]


def add_robustness_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL.h5", help="the trained QKeras model")
    parser.add_argument("--data", required=True, help="dataset .npz with x (N, …) float32 and y (N,) labels")
    parser.add_argument(
        "--target",
        default="reference",
        help="where to run the deployed model: reference|host|qemu|renode|serial[:PORT]",
    )
    parser.add_argument(
        "--attacks",
        type=_parse_attacks,
        default=list(ATTACKS),
        help=f"comma-separated subset of {','.join(ATTACKS)} (default: all)",
    )
    parser.add_argument(
        "--eps",
        type=lambda s: _parse_floats(s, "--eps"),
        default=None,
        help="L∞ budgets in input units, e.g. 0.05,0.1 (default: 0,.02,.05,.1,.2,.3 × range)",
    )
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N samples")
    parser.add_argument("--seed", type=int, default=0, help="seed for numpy, TensorFlow and the attacks")
    parser.add_argument("--json", type=Path, default=None, help="write the JSON report here")
    parser.add_argument("--html", type=Path, default=None, help="write the HTML report (with plots) here")
    # The CLI may already share these model options between subcommands; add only what is missing.
    have = set(getattr(parser, "_option_string_actions", {}))
    if "--calibration" not in have:
        parser.add_argument("--calibration", default=None, help="calibration .npz for tensors without a grid")
    if "--input-range" not in have:
        parser.add_argument(
            "--input-range",
            default="0,1",
            help="lo,hi of the float input when the model has no input quantizer (default 0,1)",
        )
    if "--no-progress" not in have:
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_robustness_command(
    args: argparse.Namespace, run_target_factory: Callable[[DeployedModel, Any], TargetRunner]
) -> int:
    """`tinyrobust robustness`: 0 all good, 1 a target output differed from the reference, 2 bad input.

    `run_target_factory(model, args)` returns the target runner; if the runner has a close() method it is
    called when the evaluation ends, even on error.
    """
    from .pipeline import convert
    from .robustness_report import table_markdown, write_reports

    def fail(msg: str) -> int:
        print(f"tinyrobust robustness: error: {msg}", file=sys.stderr)
        return 2

    try:
        if args.limit is not None and args.limit <= 0:
            return fail(f"--limit must be positive, got {args.limit}")
        model_path = Path(args.model)
        if not model_path.is_file():
            return fail(f"{model_path}: no such model file")
        data = Dataset.load(args.data)
        calibration = Dataset.load(args.calibration, need_labels=False) if args.calibration else None
        input_range = getattr(args, "input_range", "0,1")
        if isinstance(input_range, str):
            input_range = _parse_range(input_range)
        options: dict[str, Any] = {"input_range": tuple(input_range)}
        if getattr(args, "packing", None):
            options["packing"] = args.packing  # the numerics do not depend on it, but the export does
        model = convert(model_path, calibration=calibration, **options)
        run_target = run_target_factory(model, args)
        try:
            result = evaluate_robustness(
                model,
                data,
                run_target=run_target,
                attacks=args.attacks,
                eps=args.eps,
                limit=args.limit,
                seed=args.seed,
                progress=not args.no_progress,
                target_name=str(args.target),
            )
        finally:
            # A runner that owns a device session (QEMU process, serial port) may expose close().
            close = getattr(run_target, "close", None)
            if callable(close):
                close()
    except (DatasetError, RobustnessError, argparse.ArgumentTypeError) as exc:
        return fail(str(exc))
    except (OSError, ValueError) as exc:  # conversion errors (unsupported model, calibration needed, …)
        return fail(f"{type(exc).__name__}: {exc}")
    write_reports(result, args.json, args.html)
    print(table_markdown(result))
    for m in result.masking:
        if m.flagged:
            print(f"gradient-masking check FLAGGED: {m.check}: {m.detail}")
    if not result.all_confirmed or result.target_mismatches:
        print(
            f"TARGET MISMATCH: {result.target_mismatches} of {result.target_inputs} target outputs differ "
            "from the reference; "
            + "; ".join(
                f"{c.attack}: {c.bytes_identical}/{c.examples} bytes identical, "
                f"{c.flips_confirmed}/{c.reference_flips} flips confirmed"
                for c in result.confirmations
            ),
            file=sys.stderr,
        )
        return 1
    return 0
