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

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ... import console, lazy

# ART imports TensorFlow: the frontend first, so the legacy-Keras switch holds and TensorFlow's (and
# ART's "PyTorch not found") start-up lines are filtered as everywhere else.
lazy.frontend()
# ART logs per-sample remarks ("Adversarial example found but not optimal") that the report already
# quantifies (the effective perturbation); only its errors are shown.
logging.getLogger("art").setLevel(logging.ERROR)

from art.attacks.evasion import (  # noqa: E402
    BoundaryAttack,
    CarliniL2Method,
    FastGradientMethod,
    ProjectedGradientDescent,
    SquareAttack,
)
from art.estimators.classification.blackbox import BlackBoxClassifierNeuralNetwork  # noqa: E402

from ...converter.pipeline import DeployedModel  # noqa: E402
from ...dataset import Dataset  # noqa: E402
from .masking import with_masking_checks  # noqa: E402
from .results import (  # noqa: E402
    ATTACKS,
    BLACK_BOX,
    DEFAULT_EPS_UNIT,
    MAIN_EPS_UNIT,
    MAX_LISTED_MISMATCHES,
    SWEPT,
    WHITE_BOX,
    AttackBudget,
    AttackPoint,
    Confirmation,
    Perturbation,
    RobustnessError,
    RobustnessResult,
    TargetRunner,
)

# ---------------------------------------------------------------------------------------------------
# Helpers on the deployed model
# ---------------------------------------------------------------------------------------------------


# Crafting cost per ε in units of one FGSM pass over the samples, measured on the digits example (40
# samples, 2 cores, every attack alone, the fixed overhead taken out): FGSM 0.13 s, PGD 2.6 s, C&W 30 s,
# Square 14 s, Boundary 65 s at the default budget. Counting each attack as one step made the ETA 5x wrong.
CW_WORK_PER_ITERATION = 11.5  # per binary-search step and iteration (its line searches run forward passes)
SQUARE_WORK_PER_ITERATION = 0.54  # a reference query per iteration, on the samples not yet fooled
BOUNDARY_WORK_PER_QUERY = 0.125  # trials x samples per iteration, each a reference query


def attack_work(attack: str, budget: AttackBudget) -> float:
    """Expected crafting work of one run of `attack` (one ε), relative to FGSM; progress is weighted by it."""
    if attack == "fgsm":
        return 1.0
    if attack == "pgd":
        return float(budget.pgd_max_iter * max(1, budget.pgd_random_init))
    if attack == "cw":
        return CW_WORK_PER_ITERATION * budget.cw_binary_search_steps * budget.cw_max_iter
    if attack == "square":
        return SQUARE_WORK_PER_ITERATION * budget.square_max_iter
    if attack == "boundary":
        queries = budget.boundary_max_iter * budget.boundary_num_trial * budget.boundary_sample_size
        return BOUNDARY_WORK_PER_QUERY * queries
    raise RobustnessError(f"unknown attack '{attack}'")


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
    swept = len([e for e in eps_list if e > 0])
    work = {a: attack_work(a, budget) * (swept if a in SWEPT else 1) for a in attacks}
    bar = console.progress(sum(work.values()), "robustness: crafting", enabled=progress, weighted=True)

    if white:
        classifier, gradient_source = lazy.frontend().attacks.gradient_classifier(
            model.keras_model, nb_classes=nb_classes, input_shape=tuple(x.shape[1:]), clip_values=(lo, hi))
        for attack in white:
            if attack == "cw":
                bar.set_postfix_str(attack)
                crafted.append(_craft_cw(classifier, x, y, correct, budget, seed))
                bar.update(work[attack])
                continue
            for e in eps_list:
                if e == 0:
                    continue
                bar.set_postfix_str(f"{attack} ε={e:g}")
                crafted.append(_Crafted(attack, e, _craft_gradient(attack, classifier, x, y, e, budget, seed)))
                bar.update(work[attack] / swept)

    if black:
        # The NeuralNetworkMixin variant: Square requires it (plain BlackBoxClassifier is refused).
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
            bar.update(work[attack])
    bar.close()

    # One target session for everything: clean inputs first, then each crafted set in order.
    q_sets = [q_clean] + [model.quantize_input(c.x_adv.astype(np.float32)) for c in crafted]
    q_all = np.concatenate(q_sets, axis=0)
    with console.progress(len(q_all), f"robustness: {target_name}", unit="sample", enabled=progress) as tbar:
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
    return with_masking_checks(result)


def _craft_gradient(
    attack: str, classifier: Any, x: np.ndarray, y: np.ndarray, eps: float, budget: AttackBudget, seed: int
) -> np.ndarray:
    lazy.frontend().attacks.seed_everything(seed + (1 if attack == "fgsm" else 2))
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
    lazy.frontend().attacks.seed_everything(seed + 3)
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
    view = _image_view(tuple(x.shape[1:]))
    assert view is not None  # checked in _check_inputs
    lazy.frontend().attacks.seed_everything(seed + 4)
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
    lazy.frontend().attacks.seed_everything(seed + 5)
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


