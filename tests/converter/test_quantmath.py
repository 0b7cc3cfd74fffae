"""quantmath.requantize / quantize_multiplier, and the C tr_requantize, against a brute-force model.

The brute-force model is written from the definition with exact rationals, not from the
shift-and-mask algorithm: doubling high multiply = round(v·m / 2^31) with ties toward +inf,
then division by 2^right rounded half away from zero.
"""

from __future__ import annotations

import ctypes
import math
from fractions import Fraction

import numpy as np
import pytest

from tinyrobust.converter import quantmath

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def brute_requantize(val: int, mult: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    v = val * 2**left
    assert INT32_MIN <= v <= INT32_MAX
    high = math.floor(Fraction(v * mult, 2**31) + Fraction(1, 2))
    q = Fraction(high, 2**right)
    return int(math.floor(q + Fraction(1, 2))) if q >= 0 else -int(math.floor(-q + Fraction(1, 2)))


@pytest.fixture(scope="module")
def c_requantize(tr_nn_lib: ctypes.CDLL):
    fn = tr_nn_lib.tr_requantize
    fn.argtypes = [ctypes.c_int32, ctypes.c_int32, ctypes.c_int32]
    fn.restype = ctypes.c_int32
    return fn


def _edge_triples() -> list[tuple[int, int, int]]:
    mults = [0, 1 << 30, (1 << 30) + 1, 1518500250, (1 << 31) - 1]
    vals = [0, 1, -1, 2, -2, 3, -3, 127, -128, 1 << 20, -(1 << 20), 12345, -12345, INT32_MAX, INT32_MIN,
            INT32_MAX - 1, INT32_MIN + 1]
    triples = []
    for shift in range(-31, 31):
        for mult in mults:
            for val in vals:
                if shift > 0 and not INT32_MIN <= val * 2**shift <= INT32_MAX:
                    continue  # the lowering never asks for an overflowing left shift
                triples.append((val, mult, shift))
    # exact negative and positive ties of the final rounding shift: val·mult/2^31 = ±(k + 1/2)·2^right
    for right in range(1, 12):
        for k in range(0, 5):
            tie = (2 * k + 1) * 2 ** (right - 1)
            triples += [(2 * tie, 1 << 30, -right), (-2 * tie, 1 << 30, -right)]
    # ties of the doubling high multiply itself (v·m = (2j+1)·2^30)
    triples += [(1, 1 << 30, 0), (-1, 1 << 30, 0), (3, 1 << 30, 0), (-3, 1 << 30, 0)]
    return triples


def _random_triples(n: int) -> list[tuple[int, int, int]]:
    rng = np.random.default_rng(99)
    out = []
    while len(out) < n:
        shift = int(rng.integers(-31, 31))
        mult = int(rng.integers(1 << 30, 1 << 31))
        bits = int(rng.integers(0, 32))
        val = int(rng.integers(-(2**bits), 2**bits)) if bits < 31 else int(rng.integers(INT32_MIN, INT32_MAX))
        if shift > 0 and not INT32_MIN <= val * 2**shift <= INT32_MAX:
            continue
        out.append((val, mult, shift))
    return out


@pytest.mark.parametrize("source", ["edges", "random"])
def test_requantize_matches_brute_force(source: str, c_requantize) -> None:
    triples = _edge_triples() if source == "edges" else _random_triples(5000)
    vals, mults, shifts = (np.array(col, dtype=np.int64) for col in zip(*triples, strict=True))
    got = quantmath.requantize(vals, mults, shifts)
    want = np.array([brute_requantize(*t) for t in triples], dtype=np.int64)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, [(triples[i], int(got[i]), int(want[i])) for i in bad[:10]]
    c_got = np.array([c_requantize(*t) for t in triples], dtype=np.int64)
    bad = np.flatnonzero(c_got != want)
    assert bad.size == 0, [(triples[i], int(c_got[i]), int(want[i])) for i in bad[:10]]


def test_negative_ties_round_away_from_zero() -> None:
    # -3 / 2 with 1/2 multiplier semantics: 2^30 halves, then a right shift by 1 -> -0.75 -> -1
    assert int(quantmath.requantize(-3, 1 << 30, -1)) == brute_requantize(-3, 1 << 30, -1) == -1
    assert int(quantmath.requantize(-6, 1 << 30, -1)) == -2  # -1.5 -> -2
    assert int(quantmath.requantize(6, 1 << 30, -1)) == 2  # 1.5 -> 2
    assert int(quantmath.requantize(-2, 1 << 30, -1)) == -1  # -0.5 -> -1


def test_requantize_left_shift_overflow_raises() -> None:
    with pytest.raises(OverflowError):
        quantmath.requantize(1 << 30, 1 << 30, 2)


@pytest.mark.parametrize("real", [1e-9, 0.001, 0.25, 0.3, 0.5, 0.7, 0.999, 1.0, 1.5, 3.7, 1234.5, 2.0**29])
def test_quantize_multiplier_accuracy(real: float) -> None:
    q, shift = quantmath.quantize_multiplier(real)
    assert (1 << 30) <= q < (1 << 31)
    assert quantmath.MIN_SHIFT <= shift <= quantmath.MAX_SHIFT
    # nearest q31 mantissa: error at most half a unit in the last place
    assert abs(Fraction(q) * Fraction(2) ** (shift - 31) - Fraction(real)) <= Fraction(2) ** (shift - 32)


def test_quantize_multiplier_edges() -> None:
    assert quantmath.quantize_multiplier(0.0) == (0, 0)
    assert quantmath.quantize_multiplier(1e-30) == (0, 0)  # below 2^-32: every accumulator maps to 0
    assert quantmath.quantize_multiplier(1.0) == (1 << 30, 1)
    # mantissa rounds up to 2^31 and is renormalised
    assert quantmath.quantize_multiplier(1.0 - 2.0**-33) == (1 << 30, 1)
    assert quantmath.quantize_multiplier(0.9999999999) == (1 << 30, 1)
    q, s = quantmath.quantize_multiplier(0.99999999)  # 8 nines: still representable below 2^31
    assert q == round(0.99999999 * 2**31) and s == 0
    with pytest.raises(ValueError):
        quantmath.quantize_multiplier(-0.5)
    with pytest.raises(ValueError):
        quantmath.quantize_multiplier(float("nan"))
    with pytest.raises(ValueError):
        quantmath.quantize_multiplier(2.0**40)
