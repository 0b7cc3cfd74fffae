"""Gradient-masking checks (seeds 002/003, after Athalye et al. 2018 and Carlini et al. 2019): each
looks for one symptom of white-box numbers that overstate robustness, and reports its verdict with
the numbers behind it.

Margins are in accuracy (fraction of samples): a difference counts only when it exceeds
max(MARGIN, MARGIN_SAMPLES / n), so a few samples of chance on a small evaluation never flag. No
check depends on ε being large: the one that needs an attack to break everything uses its own
unbounded point, and the one that compares the perturbation used with ε skips ε where the input
grid or the input range make that comparison meaningless, and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from .perturbation import InputGrid, unbounded_eps
from .results import MaskingCheck, ModelResult, Point, Row
from .threats import (
    APGD_CE,
    APGD_DLR,
    ATTACK_TITLES,
    BLACK_BOX,
    BPDA,
    FGSM,
    GRADIENT_THREATS,
    NOISE,
    PGD,
    STE,
    THREAT_TITLES,
)

MARGIN = 0.03
MARGIN_SAMPLES = 3
ZERO_GRADIENT_LIMIT = 0.10  # more samples than this with an all-zero input gradient flags
ZERO_COMPONENT_LIMIT = 0.5  # ... as does more than this fraction of zero gradient components overall
USED_LIMIT = 0.5  # an attack that uses less than half of ε on average flags
USED_MAX_FRACTION = 0.25  # ... looked at only for ε up to this fraction of the input range's diameter
UNBOUNDED_LIMIT = 0.10  # an unbounded gradient attack must leave at most this robust accuracy
BPDA_MARGIN = 0.05  # BPDA must beat the STE surrogate by more than this to flag
WHITE_BOX_ATTACKS = (FGSM, PGD, APGD_CE, APGD_DLR)


def margin(n: int) -> float:
    return max(MARGIN, MARGIN_SAMPLES / max(n, 1))


def _pct(v: float) -> str:
    return f"{100 * v:.1f} %"


def _name(row: Row) -> str:
    return f"{ATTACK_TITLES[row.key.attack]} ({THREAT_TITLES[row.key.threat]}, {row.key.norm.upper()})"


def _acc(p: Point) -> float:
    return p.robust_accuracy.value


def _check(name: str, meaning: str, evidence: list[str], flagged: bool, evaluated: bool = True) -> MaskingCheck:
    return MaskingCheck(name, meaning, evaluated, flagged and evaluated, tuple(evidence))


def check_zero_gradients(res: ModelResult) -> MaskingCheck:
    name = "zero input gradients"
    meaning = ("The attacks' gradients are exactly zero for many samples, or for most input values: gradient "
               "attacks cannot move those, so their accuracy overstates robustness (typical of rounding without a "
               "straight-through estimator, or of an input quantizer whose estimator stops at its clip points).")
    evidence, flagged = [], False
    for g in res.gradients:
        if g.threat not in (STE, BPDA):
            continue
        frac = g.zero_samples.value
        hit = frac > ZERO_GRADIENT_LIMIT or g.zero_components > ZERO_COMPONENT_LIMIT
        flagged |= hit
        evidence.append(f"{THREAT_TITLES[g.threat]}: {g.zero_samples.k}/{g.zero_samples.n} samples "
                        f"({_pct(frac)}) have an all-zero input gradient (limit {_pct(ZERO_GRADIENT_LIMIT)}); "
                        f"{_pct(g.zero_components)} of all gradient components are zero (limit "
                        f"{_pct(ZERO_COMPONENT_LIMIT)})" + (" — FLAGGED" if hit else ""))
    if not evidence:
        return _check(name, meaning, ["not evaluated: needs a gradient attack under the STE or BPDA threat model"],
                      False, False)
    return _check(name, meaning, evidence, flagged)


def check_perturbation_used(res: ModelResult, grid: InputGrid, dims: int) -> MaskingCheck:
    name = "perturbation used vs ε"
    meaning = ("FGSM in L∞ moves every input value it has a gradient for by the whole ε; one that barely "
               "perturbs its input has no gradient to follow. (PGD's random start moves it even without gradients, "
               "and in L2 / L1 rounding to the input grid erases small steps spread over many values, so only "
               "L∞ FGSM decides this check.)")
    evidence, flagged, looked = [], False, False
    skipped: set[str] = set()
    for row in res.rows:
        if row.key.threat not in GRADIENT_THREATS or row.key.attack != FGSM or row.key.norm != "linf":
            continue
        limit = USED_MAX_FRACTION * unbounded_eps(grid, dims, row.key.norm)
        for p in row.bounded:
            eps = float(p.eps)  # type: ignore[arg-type]
            reachable = grid.linf_ball(eps) if row.key.norm == "linf" else eps
            if reachable <= 0:
                skipped.add(f"ε={eps:g} (below one grid step)")
                continue
            if eps > limit:
                skipped.add(f"ε={eps:g} (over {USED_MAX_FRACTION:.0%} of the input range: clipping at the "
                            "range's edges shrinks any perturbation)")
                continue
            looked = True
            used = p.perturbation.mean / reachable
            hit = used < USED_LIMIT
            flagged |= hit
            evidence.append(f"{_name(row)} at ε={eps:g}: mean perturbation {p.perturbation.mean:.4g} = "
                            f"{used:.0%} of the usable ε {reachable:.4g}" + (" — FLAGGED" if hit else ""))
    if skipped:
        evidence.append("not looked at: " + ", ".join(sorted(skipped)))
    if not looked:
        return _check(name, meaning, evidence or ["not evaluated: needs L∞ FGSM at an ε of at least one grid step"],
                      False, False)
    return _check(name, meaning, evidence, flagged)


def check_unbounded(res: ModelResult) -> MaskingCheck:
    name = "unbounded attack reaches ~0 %"
    meaning = ("With no limit on the perturbation any input can be turned into any other, so a working gradient "
               "attack must fool the model on (nearly) every sample.")
    evidence, flagged = [], False
    for row in res.rows:
        if row.key.attack != PGD or row.key.threat not in (STE, BPDA):
            continue
        p = row.point(None)
        if p is None:
            continue
        hit = _acc(p) > UNBOUNDED_LIMIT
        flagged |= hit
        evidence.append(f"{_name(row)} over the whole input range (from the clean input, no random start): "
                        f"robust accuracy {_pct(_acc(p))} (limit {_pct(UNBOUNDED_LIMIT)})")
    for row in res.rows:
        p = row.point(None)
        if row.key.attack != PGD and p is not None and row.key.threat in GRADIENT_THREATS:
            evidence.append(f"for reference, {_name(row)} unbounded: {_pct(_acc(p))} (its examples are minimal "
                            "and rounding to the input grid can undo them, so it does not decide this check)")
    if not any(r.key.attack == PGD and r.key.threat in (STE, BPDA) for r in res.rows):
        return _check(name, meaning, ["not evaluated: needs PGD under the STE or BPDA threat model"], False, False)
    return _check(name, meaning, evidence, flagged)


def check_monotone(res: ModelResult) -> MaskingCheck:
    name = "accuracy does not rise with ε"
    meaning = ("A larger ε allows everything a smaller one does, so accuracy under a working attack cannot go up "
               "as ε grows; where it does, the attack is lost on the loss surface.")
    tol = margin(res.samples)
    evidence, flagged, looked = [], False, False
    for row in res.rows:
        if row.key.threat == NOISE:
            continue
        pts = row.bounded
        if len(pts) < 2:
            continue
        looked = True
        best = pts[0]
        for p in pts[1:]:
            if _acc(p) > _acc(best) + tol:
                flagged = True
                evidence.append(f"{_name(row)}: {_pct(_acc(p))} at ε={p.eps:g} > {_pct(_acc(best))} at "
                                f"ε={best.eps:g} (margin {_pct(tol)})")
            if _acc(p) < _acc(best):
                best = p
    if not looked:
        return _check(name, meaning, ["not evaluated: needs an attack at two ε or more"], False, False)
    if not flagged:
        evidence.append(f"every attack's accuracy falls or stays level as ε grows (margin {_pct(tol)})")
    return _check(name, meaning, evidence, flagged)


def _strongest(res: ModelResult, norm: str, eps: float, keep: Callable[[Row], bool]) -> tuple[Row, Point] | None:
    found = [(r, p) for r in res.rows if r.key.norm == norm and keep(r)
             for p in [r.point(eps)] if p is not None]
    return min(found, key=lambda rp: _acc(rp[1])) if found else None


def _points(res: ModelResult) -> list[tuple[str, float]]:
    return sorted({(r.key.norm, float(p.eps)) for r in res.rows for p in r.bounded})  # type: ignore[arg-type]


def check_black_beats_white(res: ModelResult) -> MaskingCheck:
    name = "black-box stronger than white-box"
    meaning = ("An attacker who only sees answers should never do better than one who also has gradients; "
               "if it does, the gradients are misleading and white-box numbers overstate robustness.")
    tol = margin(res.samples)
    evidence, flagged, looked = [], False, False
    for norm, eps in _points(res):
        white = _strongest(res, norm, eps, lambda r: r.key.threat in GRADIENT_THREATS and
                           r.key.attack in WHITE_BOX_ATTACKS)
        black = _strongest(res, norm, eps, lambda r: r.key.threat == BLACK_BOX)
        if white is None or black is None:
            continue
        looked = True
        hit = _acc(black[1]) < _acc(white[1]) - tol
        flagged |= hit
        evidence.append(f"{norm.upper()} ε={eps:g}: strongest black-box {_name(black[0])} {_pct(_acc(black[1]))}, "
                        f"strongest white-box {_name(white[0])} {_pct(_acc(white[1]))}"
                        + (f" — black-box lower by more than {_pct(tol)}" if hit else ""))
    if not looked:
        return _check(name, meaning, ["not evaluated: needs a white-box and a black-box attack at a common ε"],
                      False, False)
    return _check(name, meaning, evidence, flagged)


def check_bpda_beats_ste(res: ModelResult) -> MaskingCheck:
    name = "BPDA stronger than the STE surrogate"
    meaning = ("The same attack does better when it watches the deployed model than when it trusts the QKeras "
               "model's forward pass: the surrogate does not behave like the device, so its numbers overstate "
               "robustness.")
    tol = max(BPDA_MARGIN, MARGIN_SAMPLES / max(res.samples, 1))
    evidence, flagged, looked = [], False, False
    for bpda in res.rows:
        if bpda.key.threat != BPDA:
            continue
        ste = res.row(STE, bpda.key.attack, bpda.key.norm)
        if ste is None:
            continue
        for p in bpda.points:
            q = ste.point(p.eps)
            if q is None:
                continue
            looked = True
            gap = _acc(q) - _acc(p)
            if gap > tol:
                flagged = True
                where = "unbounded" if p.eps is None else f"ε={p.eps:g}"
                evidence.append(f"{ATTACK_TITLES[bpda.key.attack]} ({bpda.key.norm.upper()}) {where}: BPDA "
                                f"{_pct(_acc(p))} vs STE {_pct(_acc(q))}")
    if not looked:
        return _check(name, meaning, ["not evaluated: needs one attack under both STE and BPDA"], False, False)
    if not flagged:
        evidence.append(f"BPDA is within {_pct(tol)} of the STE surrogate (or weaker) at every point")
    return _check(name, meaning, evidence, flagged)


def check_noise_floor(res: ModelResult) -> MaskingCheck:
    name = "attack weaker than random noise"
    meaning = ("Random noise of the same size is the weakest possible attack; an attack that leaves higher "
               "accuracy than noise is not finding anything.")
    tol = margin(res.samples)
    evidence, flagged, looked = [], False, False
    for noise in res.rows:
        if noise.key.threat != NOISE:
            continue
        for p in noise.bounded:
            for row in res.rows:
                if row.key.threat == NOISE or row.key.norm != noise.key.norm:
                    continue
                q = row.point(p.eps)
                if q is None:
                    continue
                looked = True
                if _acc(q) > _acc(p) + tol:
                    flagged = True
                    evidence.append(f"{_name(row)} at ε={p.eps:g}: {_pct(_acc(q))} > noise {_pct(_acc(p))}")
    if not looked:
        return _check(name, meaning, ["not evaluated: needs the noise attack and another at a common ε"], False,
                      False)
    if not flagged:
        evidence.append(f"every attack is at least as strong as random noise of its size (margin {_pct(tol)})")
    return _check(name, meaning, evidence, flagged)


def check_fgsm_beats_pgd(res: ModelResult) -> MaskingCheck:
    name = "FGSM stronger than PGD"
    meaning = ("PGD starts where FGSM does and keeps improving; if one FGSM step does better, the loss surface is "
               "locally misleading (gradient masking) or PGD's steps are badly tuned.")
    tol = margin(res.samples)
    evidence, flagged, looked = [], False, False
    for fgsm in res.rows:
        if fgsm.key.attack != FGSM:
            continue
        pgd = res.row(fgsm.key.threat, PGD, fgsm.key.norm)
        if pgd is None:
            continue
        for p in fgsm.bounded:
            q = pgd.point(p.eps)
            if q is None:
                continue
            looked = True
            if _acc(p) < _acc(q) - tol:
                flagged = True
                evidence.append(f"{THREAT_TITLES[fgsm.key.threat]} ({fgsm.key.norm.upper()}) ε={p.eps:g}: FGSM "
                                f"{_pct(_acc(p))} < PGD {_pct(_acc(q))}")
    if not looked:
        return _check(name, meaning, ["not evaluated: needs FGSM and PGD under one threat model at a common ε"],
                      False, False)
    if not flagged:
        evidence.append(f"PGD is at least as strong as FGSM at every ε (margin {_pct(tol)})")
    return _check(name, meaning, evidence, flagged)


def with_masking_checks(res: ModelResult) -> ModelResult:
    """The result with every check's verdict attached."""
    grid = InputGrid(float(res.input_grid["scale"]), int(res.input_grid["zero_point"]), int(res.input_grid["qmin"]),
                     int(res.input_grid["qmax"]))
    dims = int(res.input_grid.get("dims", 1))
    checks = (
        check_zero_gradients(res),
        check_perturbation_used(res, grid, dims),
        check_unbounded(res),
        check_monotone(res),
        check_black_beats_white(res),
        check_bpda_beats_ste(res),
        check_noise_floor(res),
        check_fgsm_beats_pgd(res),
    )
    return replace(res, masking=checks)
