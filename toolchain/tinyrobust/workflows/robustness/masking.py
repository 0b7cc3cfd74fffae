"""Gradient-masking checks over a robustness result (seeds 002/003): each flags a pattern that
suggests the white-box numbers overstate robustness, with an explanation."""

from __future__ import annotations

from .results import BLACK_BOX, MaskingCheck, RobustnessResult

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


def with_masking_checks(res: RobustnessResult) -> RobustnessResult:
    from dataclasses import replace

    tol = _tolerance(res.samples)
    checks = (_check_black_vs_white(res, tol), _check_pgd_floor(res), _check_fgsm_vs_pgd(res, tol))
    return replace(res, masking=checks)


