"""Random draws the per-family kernel tests share, and the check that runs cases on a kernel runner.

Every case carries the numpy reference output it must reproduce bit for bit. Draws keep outputs
spread over the int8 range (requantisation scaled to a typical accumulator), so a bit-exact check
compares real values, not rails; `saturated_fraction` lets a test assert that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from tinyrobust.converter import ops, packing
from tinyrobust.converter.ops.base import NUMPY_TYPES, Clamp, Op
from tinyrobust.firmware import runner
from tinyrobust.firmware.runner import RunnerCase

INT32_MAX = 2**31 - 1
MAX_TEST_BIAS_SHIFT = 14  # what the lowering emits (weighted.FINE_BIAS_BITS); the C accepts up to 16


def i8(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.integers(-128, 128, size=shape).astype(np.int8)


def i16(rng: np.random.Generator, shape) -> np.ndarray:
    """int16 activations over the whole range (the _s16 kernels' inputs)."""
    return rng.integers(-32768, 32768, size=shape).astype(np.int16)


# |x| bound and typical rms of uniformly drawn activations, by width (int8: 128 and ~74)
MAGNITUDE = {8: 128, 16: 32768}
RMS = {8: 74.0, 16: 74.0 * 256}


def weights(rng: np.random.Generator, fmt: str, shape) -> np.ndarray:
    if fmt == packing.S8:
        return i8(rng, shape)
    # ternary with a random density of zeros (ternary rows are often sparse)
    p_zero = rng.uniform(0.0, 0.9)
    signs = rng.choice(np.array([-1, 1], dtype=np.int8), size=shape)
    return np.where(rng.random(shape) < p_zero, 0, signs).astype(np.int8)


def clamp(rng: np.random.Generator) -> Clamp:
    if rng.random() < 0.6:
        return Clamp(-128, 127)
    lo, hi = sorted(int(v) for v in rng.integers(-128, 128, size=2))
    return Clamp(lo, hi)


def quant(rng: np.random.Generator, cout: int, k: int, w_scale: float,
          bias_shift: int = 0, bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel multipliers/shifts that map a typical accumulator into int8 (or, bits = 16, int16)
    range (some saturate); `bits` is the width of both the inputs and the outputs.

    The accumulator carries the factor 2^bias_shift, so the shift takes it back out."""
    typical = max(1.0, np.sqrt(max(k, 1)) * RMS[bits] * w_scale)
    base = -int(np.ceil(np.log2(typical))) + (6 if bits == 8 else 14) - bias_shift
    mult = rng.integers(1 << 30, (1 << 31) - 1, size=cout, endpoint=True)
    mult[rng.random(cout) < 0.05] = 0
    shift = np.clip(base + rng.integers(-3, 3, size=cout), -31, 4)
    return mult.astype(np.int32), shift.astype(np.int32)


def bias(rng: np.random.Generator, cout: int, k: int, w: np.ndarray,
         max_shift: int = MAX_TEST_BIAS_SHIFT, bits: int = 8) -> tuple[np.ndarray | None, int]:
    """(bias or None, bias_shift) for acc = Σ w·x · 2^bias_shift + bias, never overflowing int32.

    sum_bound bounds |Σ w·x| for any int8 input (|x| <= 128); bias_shift in [0, max_shift] is capped so that
    sum_bound · 2^bias_shift leaves half the int32 range, and |bias| <= INT32_MAX - that, so the C
    accumulator provably fits. Mostly a bias of realistic size (scaled by 2^bias_shift, as the
    lowering's finer units are), sometimes one using all the remaining headroom.
    """
    sum_bound = max(k, 1) * MAGNITUDE[bits] * max(int(np.abs(w.astype(np.int64)).max(initial=0)), 1)
    s_cap = 0
    while s_cap < max_shift and sum_bound << (s_cap + 1) <= 2**30:
        s_cap += 1
    bias_shift = int(rng.integers(0, s_cap, endpoint=True))
    if rng.random() < 0.15:
        return None, bias_shift
    headroom = INT32_MAX - (sum_bound << bias_shift)
    bound = headroom if rng.random() < 0.1 else min(min(2**20, 128 * MAGNITUDE[bits] * max(k, 1)) << bias_shift,
                                                    headroom)
    return rng.integers(-bound, bound, size=cout, endpoint=True).astype(np.int32), bias_shift


def out_len(in_len: int, k: int, stride: int, pad_before: int, rng: np.random.Generator) -> int:
    pad_after = int(rng.integers(0, k))
    return max(1, (in_len + pad_before + pad_after - k) // stride + 1)


def weighted_arrays(packed: np.ndarray, bias_values: np.ndarray | None, mult: np.ndarray,
                    shift: np.ndarray) -> dict[str, np.ndarray]:
    """The arrays of a weighted op; no "bias" key passes NULL to the kernel."""
    arrays = {"weights": packed, "multiplier": mult, "shift": shift}
    if bias_values is not None:
        arrays["bias"] = bias_values
    return arrays


def with_zero_bias(arrays: dict[str, np.ndarray], cout: int) -> dict[str, np.ndarray]:
    """What the reference sees for a NULL bias: zeros."""
    return arrays if "bias" in arrays else {**arrays, "bias": np.zeros(cout, np.int32)}


def saturated_fraction(cases: Sequence[RunnerCase]) -> float:
    """The fraction of expected output values pinned at their type's rails (int8 or int16)."""
    outs = []
    for c in cases:
        bits = ops.io_bits(c.op.kernel)[1]
        out = np.frombuffer(c.expected, np.dtype(NUMPY_TYPES[bits]).newbyteorder("<")).astype(np.int32)
        outs.append((out == -MAGNITUDE[bits]) | (out == MAGNITUDE[bits] - 1))
    return float(np.mean(np.concatenate(outs)))


def run_and_check(kernel_runner: runner.Runner, cases: Sequence[RunnerCase], work_dir: Path) -> int:
    """Runs every case; asserts each succeeded, matched its expected bytes and wrote nothing past
    its output. Returns the number of cases checked."""
    results = runner.run(kernel_runner, cases, work_dir)
    failures = runner.mismatches(cases, results)
    assert not failures, f"{len(failures)}/{len(cases)} cases failed:\n" + "\n".join(failures[:20])
    return len(cases)


def weighted_case(op: Op, inputs: Sequence[np.ndarray], label: str) -> RunnerCase:
    """A case for a weighted op whose arrays may omit "bias" (NULL in C, zeros in the reference)."""
    cout = len(op.arrays["multiplier"])
    expected = RunnerCase.of(replace(op, arrays=with_zero_bias(dict(op.arrays), cout)), inputs).expected
    in_type = NUMPY_TYPES[ops.io_bits(op.kernel)[0]]
    return RunnerCase(op, tuple(np.asarray(x, in_type) for x in inputs), expected, None, label)


def spread(rng: np.random.Generator, cout: int, k: int, w_scale: float, bias_values: np.ndarray | None,
           bias_shift: int, bits: int = 8) -> tuple[np.ndarray | None, np.ndarray]:
    """Bias and shifts that spread a layer's outputs over int8 (few saturate): a bias within half a
    typical |Σ w·x| (one case in ten keeps `bias`'s int32 extremes), shifts within ±1 of the one that
    maps a typical accumulator to ~2^6. For tests of the fast paths, whose values must be compared."""
    typical = max(1.0, np.sqrt(2 * k / 3) * RMS[bits] * w_scale)
    if bias_values is not None and rng.random() < 0.9:
        bound = int(typical / 2) << bias_shift
        bias_values = rng.integers(-bound, bound, size=cout, endpoint=True).astype(np.int32)
    base = -int(np.ceil(np.log2(typical))) + (6 if bits == 8 else 14) - bias_shift
    return bias_values, np.clip(base + rng.integers(-1, 2, size=cout), -31, 4).astype(np.int32)
