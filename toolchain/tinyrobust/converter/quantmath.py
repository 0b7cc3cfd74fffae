"""Fixed-point arithmetic shared by the lowering and the numpy reference.

Everything here mirrors the C in firmware/tr_nn/tr_nn_support.h bit for bit:
requantisation is CMSIS-NN's arm_nn_requantize (doubling high multiply with rounding, then a
rounding right shift), with multipliers in [2^30, 2^31) (or 0 for a channel that outputs its
offset only).
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
MIN_SHIFT = -31
MAX_SHIFT = 30


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Split a non-negative real multiplier into (q31 multiplier, shift), real ≈ m·2^(shift−31).

    Edge cases handled: 0 (and values too small to represent) give (0, 0); a mantissa that
    rounds up to 2^31 is renormalised; shifts beyond the C range raise.
    """
    if real < 0 or not math.isfinite(real):
        raise ValueError(f"requantisation multiplier must be finite and >= 0, got {real!r}")
    if real == 0.0:
        return 0, 0
    mantissa, exponent = math.frexp(real)  # real = mantissa · 2^exponent, mantissa in [0.5, 1)
    q = round(mantissa * (1 << 31))
    if q == (1 << 31):
        q //= 2
        exponent += 1
    if exponent < MIN_SHIFT:
        # Smaller than 2^-32: every int32 accumulator requantises to 0.
        return 0, 0
    if exponent > MAX_SHIFT:
        raise ValueError(f"requantisation multiplier {real!r} is too large for int32 fixed point")
    return int(q), int(exponent)


def doubling_high_mult(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """(a·b + 2^30) >> 31 on int64, as arm_nn_doubling_high_mult_no_sat (b != INT32_MIN)."""
    prod = np.asarray(a, dtype=np.int64) * np.asarray(b, dtype=np.int64)
    prod += 1 << 30
    prod >>= 31
    return prod


def divide_by_power_of_two(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    """Rounding arithmetic right shift, ties away from zero (arm_nn_divide_by_power_of_two)."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    # CMSIS-NN adds 1 when the remainder x & (2^e − 1) exceeds 2^(e−1) − 1 (2^(e−1) for x < 0).
    # Equivalently, and in fewer passes over a batch: add 2^(e−1), less 1 for negative x (e > 0),
    # then shift (floor).
    out = x + ((np.int64(1) << exponent) >> 1)
    negative = x < 0
    out -= negative if np.all(exponent > 0) else negative & (exponent > 0)
    out >>= exponent
    return out


def requantize(acc: np.ndarray, multiplier: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """arm_nn_requantize on int64 arrays holding int32 values; broadcasts like numpy.

    The C left-shifts `acc` by max(shift, 0) in int32: the lowering proves that cannot
    overflow (see check_left_shift_headroom), and this function asserts the same.
    """
    acc = np.asarray(acc, dtype=np.int64)
    multiplier = np.asarray(multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = acc << left if left.any() else acc
    # Outside int32 is exactly where wrapping to int32 would change the value (int64 holds any
    # int32 << 31 without overflowing itself).
    if shifted.size and (shifted.min() < INT32_MIN or shifted.max() > INT32_MAX):
        raise OverflowError("requantize: left shift overflows int32")
    return divide_by_power_of_two(doubling_high_mult(shifted, multiplier), right)


def check_left_shift_headroom(max_abs_acc: int, shift: int) -> None:
    """Refuse a (bound, shift) pair whose int32 left shift could overflow on the MCU."""
    if shift > 0 and max_abs_acc << shift > INT32_MAX:
        raise OverflowError(
            f"accumulator bound {max_abs_acc} << {shift} overflows int32; the output scale is too "
            "fine for this layer's input range"
        )


def round_half_away(x: np.ndarray) -> np.ndarray:
    """Round to nearest, ties away from zero (what C's lround and the kernels do)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)
