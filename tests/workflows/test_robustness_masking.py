"""workflows/robustness/masking.py: every gradient-masking check fires on results showing its symptom
and stays quiet on results that do not (built by hand, so each case holds exactly one symptom);
test_robustness.py shows them firing and quiet on real models."""

from __future__ import annotations

import pytest

from tinyrobust.workflows.robustness.masking import (
    check_black_beats_white,
    check_bpda_beats_ste,
    check_fgsm_beats_pgd,
    check_monotone,
    check_noise_floor,
    check_perturbation_used,
    check_unbounded,
    check_zero_gradients,
    margin,
    with_masking_checks,
)
from tinyrobust.workflows.robustness.perturbation import InputGrid
from tinyrobust.workflows.robustness.results import GradientCheck, ModelResult, Perturbation, Point, Rate, Row
from tinyrobust.workflows.robustness.threats import RowKey

N = 100
GRID = InputGrid(1 / 255, -128, -128, 127)


def point(eps: float | None, acc: float, used: float | None = None) -> Point:
    k = round(acc * N)
    size = (eps or 1.0) if used is None else used
    return Point(eps, Rate(k, N), Rate(90 - min(k, 90), 90), Rate(k, N), None,
                 Perturbation("linf", size, size, size, size), N)


def row(threat: str, attack: str, *points: Point) -> Row:
    return Row(RowKey(threat, attack, "linf"), tuple(points), N, None, (), None)


def result(*rows: Row, gradients: tuple[GradientCheck, ...] = ()) -> ModelResult:
    grid = {"scale": GRID.scale, "zero_point": GRID.zero_point, "qmin": GRID.qmin, "qmax": GRID.qmax,
            "range": [GRID.lo, GRID.hi], "dims": 64, "source": "test"}
    return ModelResult("m", None, "00", 0, None, "reference", N, Rate(90, N), Rate(90, N), None, grid, rows, gradients)


def test_zero_gradients() -> None:
    fires = check_zero_gradients(result(gradients=(GradientCheck("ste", Rate(100, N), 1.0),)))
    by_components = check_zero_gradients(result(gradients=(GradientCheck("bpda", Rate(0, N), 0.6),)))
    quiet = check_zero_gradients(result(gradients=(GradientCheck("ste", Rate(2, N), 0.05),)))
    assert fires.flagged and by_components.flagged and not quiet.flagged and quiet.evaluated
    assert "100/100 samples" in fires.evidence[0]
    assert not check_zero_gradients(result()).evaluated


def test_perturbation_used() -> None:
    fires = check_perturbation_used(result(row("ste", "fgsm", point(0.1, 0.9, used=0.0))), GRID, 64)
    quiet = check_perturbation_used(result(row("ste", "fgsm", point(0.1, 0.4, used=25 / 255))), GRID, 64)
    assert fires.flagged and not quiet.flagged and quiet.evaluated
    # Below one grid step nothing can reach the device, and a huge ε is clipped at the range's edges:
    # neither says anything about gradients, and the check says so instead of flagging.
    small = check_perturbation_used(result(row("ste", "fgsm", point(0.001, 0.9, used=0.0),
                                               point(0.6, 0.9, used=0.1))), GRID, 64)
    assert not small.flagged and not small.evaluated
    assert "below one grid step" in small.evidence[-1] and "over 25%" in small.evidence[-1]


def test_unbounded_attack() -> None:
    fires = check_unbounded(result(row("bpda", "pgd", point(0.1, 0.85), point(None, 0.85))))
    quiet = check_unbounded(result(row("ste", "pgd", point(0.1, 0.3), point(None, 0.0))))
    assert fires.flagged and not quiet.flagged and quiet.evaluated
    assert not check_unbounded(result(row("ste", "fgsm", point(0.1, 0.3)))).evaluated


def test_accuracy_rising_with_eps() -> None:
    fires = check_monotone(result(row("black-box", "square", point(0.05, 0.5), point(0.1, 0.7), point(0.2, 0.2))))
    quiet = check_monotone(result(row("black-box", "square", point(0.05, 0.5), point(0.1, 0.51), point(0.2, 0.2))))
    assert fires.flagged and not quiet.flagged and quiet.evaluated
    assert "0.1" in fires.evidence[0]
    # Random noise fluctuates by nature: it is not held to this.
    assert not check_monotone(result(row("noise", "noise", point(0.05, 0.5), point(0.1, 0.9)))).evaluated


def test_black_box_beating_white_box() -> None:
    white = row("ste", "pgd", point(0.05, 0.95), point(0.1, 0.8))
    fires = check_black_beats_white(result(white, row("black-box", "square", point(0.05, 0.94), point(0.1, 0.3))))
    quiet = check_black_beats_white(result(white, row("black-box", "square", point(0.05, 0.96), point(0.1, 0.79))))
    assert fires.flagged and not quiet.flagged and quiet.evaluated
    assert any("ε=0.1" in e and "lower" in e for e in fires.evidence)


def test_bpda_beating_ste() -> None:
    ste = row("ste", "pgd", point(0.1, 0.8))
    fires = check_bpda_beats_ste(result(ste, row("bpda", "pgd", point(0.1, 0.5))))
    quiet = check_bpda_beats_ste(result(ste, row("bpda", "pgd", point(0.1, 0.77))))
    assert fires.flagged and not quiet.flagged and quiet.evaluated


def test_noise_floor() -> None:
    noise = row("noise", "noise", point(0.1, 0.6))
    fires = check_noise_floor(result(noise, row("ste", "fgsm", point(0.1, 0.9))))
    quiet = check_noise_floor(result(noise, row("ste", "fgsm", point(0.1, 0.5))))
    assert fires.flagged and not quiet.flagged and quiet.evaluated


def test_fgsm_beating_pgd() -> None:
    fires = check_fgsm_beats_pgd(result(row("ste", "fgsm", point(0.1, 0.3)), row("ste", "pgd", point(0.1, 0.6))))
    quiet = check_fgsm_beats_pgd(result(row("ste", "fgsm", point(0.1, 0.6)), row("ste", "pgd", point(0.1, 0.3))))
    assert fires.flagged and not quiet.flagged and quiet.evaluated


def test_margins_absorb_chance_on_small_samples() -> None:
    assert margin(100) == pytest.approx(0.03) and margin(20) == pytest.approx(0.15)


def test_all_checks_attached_in_order() -> None:
    res = with_masking_checks(result(row("ste", "pgd", point(0.1, 0.3), point(None, 0.0))))
    assert [c.check for c in res.masking] == [
        "zero input gradients", "perturbation used vs ε", "unbounded attack reaches ~0 %",
        "accuracy does not rise with ε", "black-box stronger than white-box", "BPDA stronger than the STE surrogate",
        "attack weaker than random noise", "FGSM stronger than PGD"]
    assert not res.masking_flagged
    assert res.masking[2].to_json()["verdict"] == "passed"


def test_every_rate_lies_inside_its_interval() -> None:
    """Rounding put the Wilson lower end of 0/3 above 0, and the HTML plot's error bar below zero."""
    for n in range(1, 200):
        for k in range(n + 1):
            lo, hi = Rate(k, n).interval
            assert 0.0 <= lo <= Rate(k, n).value <= hi <= 1.0, (k, n, lo, hi)
