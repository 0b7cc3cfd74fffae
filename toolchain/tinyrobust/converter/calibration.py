"""Calibration: int8 ranges for the tensors a model states no grid for, chosen from samples of their
values on the user's calibration data.

The raw min/max range spends the 256 levels on the extremes: one outlier can make every step several
times coarser than the bulk of the values needs. For hidden tensors the range is instead the one, among
shrinkings of min/max towards zero, that minimises the mean squared error of quantising the samples
(rounding plus clipping). The model's output keeps min/max: clipping logits can merge the two largest
and change the class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Fractions of the min/max range tried: geometric down to 1/100 (a lone outlier), fine near 1.
SHRINK = tuple(sorted({round(float(f), 4) for f in np.concatenate([np.geomspace(0.01, 0.8, 25),
                                                                    np.linspace(0.8, 1.0, 11)])}))
LEVELS = 256


@dataclass(frozen=True)
class CalibrationRange:
    lo: float
    hi: float
    method: str  # how it was chosen, for the report
    extremes: tuple[float, float] | None = None  # the samples' min/max (an int16 grid spans them)

    def describe(self) -> str:
        return f"calibration range [{self.lo:.4g}, {self.hi:.4g}] ({self.method})"


def _quantisation_mse(values: np.ndarray, lo: float, hi: float) -> float:
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max(hi - lo, 1e-12) / (LEVELS - 1)
    q = np.clip(np.round((values - lo) / scale), 0, LEVELS - 1)
    return float(np.mean((q * scale + lo - values) ** 2))


def min_max(samples: np.ndarray) -> CalibrationRange:
    """samples: [min, max, values…] as frontend.tensor_samples gives them."""
    lo, hi = float(samples[0]), float(samples[1])
    return CalibrationRange(lo, hi, "min/max", (lo, hi))


def minimum_error(samples: np.ndarray) -> CalibrationRange:
    """The range, with each end shrunk towards zero independently, of least quantisation MSE over the
    sampled values (coordinate descent: the upper end, the lower end, twice)."""
    lo, hi = float(samples[0]), float(samples[1])
    values = samples[2:].astype(np.float64)
    if values.size == 0 or hi <= lo:
        return min_max(samples)
    f_lo = f_hi = 1.0
    for _ in range(2):
        f_hi = min(SHRINK, key=lambda f: (_quantisation_mse(values, lo * f_lo, hi * f), -f))
        f_lo = min(SHRINK, key=lambda f: (_quantisation_mse(values, lo * f, hi * f_hi), -f))
    if f_lo == f_hi == 1.0:
        return CalibrationRange(lo, hi, "min/max (least quantisation error)", (lo, hi))
    ratio = _quantisation_mse(values, lo * f_lo, hi * f_hi) / _quantisation_mse(values, lo, hi)
    return CalibrationRange(lo * f_lo, hi * f_hi, f"least quantisation error: {100 * f_lo:.0f} % / {100 * f_hi:.0f} % "
                            f"of min / max, MSE ×{ratio:.2f}", (lo, hi))
