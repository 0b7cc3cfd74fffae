"""ε in the data domain, and the perturbation the target actually receives.

ε is in the units of the dataset's x (the model's input domain). The firmware takes int8 inputs on
its input grid, real = scale · (q − zero_point), so the clean input the device sees is
q_clean = Q(x) and an adversarial one q_adv = Q(x_adv). The perturbation the device receives is
δ = scale · (q_adv − q_clean), in data units. Every adversarial input is quantised and then
*projected back* so that ‖δ‖ ≤ ε in the row's norm: the rounding to the grid never enlarges it.

Attacks start from the dequantised clean input x0 = scale · (q_clean − zero_point) (what the device
sees for the clean sample). In L∞ the ε-ball is shrunk to whole grid steps (k steps with
k·scale ≤ ε), so rounding any point of the ball lands inside it: the projection is then exact and
free. In L2 and L1 the projection after rounding scales the step vector down and adds back single
steps while the norm allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...converter.program import InputQuantization
from ...errors import InternalError
from .threats import NORMS

# Default ε: these fractions of the data's value range R (L∞), and the same fractions of R·√D (L2)
# and R·D (L1): the L2 and L1 sizes of an L∞ change of that fraction on every one of the D inputs.
DEFAULT_FRACTIONS = (0.05, 0.1, 0.2, 0.3)
_SAFETY = 1.0 - 1e-12  # the projection aims this little inside ε so float rounding never exceeds it


@dataclass(frozen=True)
class InputGrid:
    """The firmware's input grid, in data units."""

    scale: float
    zero_point: int
    qmin: int
    qmax: int

    @staticmethod
    def of(iq: InputQuantization) -> InputGrid:
        return InputGrid(float(iq.scale), int(iq.zero_point), int(iq.qmin), int(iq.qmax))

    @property
    def lo(self) -> float:
        return self.scale * (self.qmin - self.zero_point)

    @property
    def hi(self) -> float:
        return self.scale * (self.qmax - self.zero_point)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """float (N, …) → int8 (N, D), as the host quantises for the firmware (round half to even)."""
        iq = InputQuantization(self.scale, self.zero_point, self.qmin, self.qmax, "")
        return iq.quantize(np.asarray(x)).reshape(len(x), -1)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (self.scale * (np.asarray(q, dtype=np.float64) - self.zero_point)).astype(np.float32)

    def steps_within(self, eps: float) -> int:
        """The largest k with k · scale ≤ ε: how many grid steps an L∞ budget allows."""
        k = math.floor(eps / self.scale)
        while k > 0 and k * self.scale > eps:
            k -= 1
        while (k + 1) * self.scale <= eps:
            k += 1
        return k

    def linf_ball(self, eps: float) -> float:
        """ε shrunk to whole grid steps: any point of that L∞ ball rounds into it."""
        return self.steps_within(eps) * self.scale


def norm_of(delta: np.ndarray, norm: str) -> np.ndarray:
    """Per-sample norm of (N, D) perturbations."""
    d = np.abs(np.asarray(delta, dtype=np.float64).reshape(len(delta), -1))
    if norm == "linf":
        return d.max(axis=1, initial=0.0)
    if norm == "l2":
        return np.sqrt((d * d).sum(axis=1))
    if norm == "l1":
        return d.sum(axis=1)
    raise ValueError(f"unknown norm {norm!r}; choose from {NORMS}")


def received(q_adv: np.ndarray, q_clean: np.ndarray, grid: InputGrid) -> np.ndarray:
    """The perturbation the target receives, in data units: scale · (q_adv − q_clean)."""
    return grid.scale * (q_adv.astype(np.float64) - q_clean.astype(np.float64))


def project(q_adv: np.ndarray, q_clean: np.ndarray, grid: InputGrid, eps: float | None, norm: str) -> np.ndarray:
    """q_adv moved towards q_clean until ‖scale · (q − q_clean)‖ ≤ ε (no-op when ε is None).

    Every coordinate only moves towards the clean value, so the result stays on the grid and in
    range. L∞: each step count is clipped to the allowed k. L2 / L1: the step vector is scaled by
    ε / ‖δ‖ and truncated towards zero (within ε by construction), then single steps are added back,
    largest truncation first, while the norm stays within ε.
    """
    q_adv = np.asarray(q_adv, dtype=np.int8)
    if eps is None:
        return q_adv.copy()
    q_clean = np.asarray(q_clean, dtype=np.int8)
    steps = q_adv.astype(np.int64) - q_clean.astype(np.int64)
    if norm == "linf":
        k = grid.steps_within(eps)
        out = q_clean.astype(np.int64) + np.clip(steps, -k, k)
        return out.astype(np.int8)
    budget = eps * _SAFETY / grid.scale  # in grid steps
    size = norm_of(steps, norm)
    over = size > budget
    if over.any():
        steps = steps.copy()
        steps[over] = _shrink(steps[over], size[over], budget, norm)
    out = (q_clean.astype(np.int64) + steps).astype(np.int8)
    if np.any(norm_of(received(out, q_clean, grid), norm) > eps):
        raise InternalError(f"projection left a perturbation above ε = {eps} ({norm})")
    return out


def _shrink(steps: np.ndarray, size: np.ndarray, budget: float, norm: str) -> np.ndarray:
    """Integer step vectors (M, D) of norm > budget → of norm ≤ budget, close to the scaled vector."""
    real = steps * (budget / size)[:, None]
    magnitude = np.floor(np.abs(real))
    remainder = np.abs(real) - magnitude
    sign = np.sign(steps)
    if norm == "l2":
        used = (magnitude**2).sum(axis=1)
        cost = 2 * magnitude + 1  # growing |m| by one step adds (|m| + 1)² − |m|²
        room = budget**2 - used
    else:
        used = magnitude.sum(axis=1)
        cost = np.ones_like(magnitude)
        room = budget - used
    order = np.argsort(-remainder, axis=1, kind="stable")
    sorted_cost = np.take_along_axis(np.where(remainder > 0, cost, np.inf), order, axis=1)
    fits = np.cumsum(sorted_cost, axis=1) <= room[:, None]
    grow = np.zeros_like(fits)
    np.put_along_axis(grow, order, fits, axis=1)
    return (sign * (magnitude + grow)).astype(np.int64)


def default_eps(x: np.ndarray, norm: str) -> list[float]:
    """ε values for a norm, from the data's value range (see DEFAULT_FRACTIONS), rounded to 4
    significant digits so the report reads well."""
    value_range = float(np.max(x) - np.min(x)) or 1.0
    dims = int(np.prod(x.shape[1:]))
    size = {"linf": value_range, "l2": value_range * math.sqrt(dims), "l1": value_range * dims}[norm]
    return [float(f"{f * size:.4g}") for f in DEFAULT_FRACTIONS]


def unbounded_eps(grid: InputGrid, dims: int, norm: str) -> float:
    """The diameter of the input box in a norm: an ε that allows any input at all."""
    width = grid.hi - grid.lo
    return {"linf": width, "l2": width * math.sqrt(dims), "l1": width * dims}[norm]


def random_noise(rng: np.random.Generator, n: int, dims: int, eps: float, norm: str) -> np.ndarray:
    """Random perturbations (n, D) of norm exactly ε: random signs (L∞, a corner of the ball), a
    random direction (L2), random signs with Dirichlet magnitudes (L1)."""
    if norm == "linf":
        return eps * rng.choice([-1.0, 1.0], size=(n, dims))
    if norm == "l2":
        d = rng.standard_normal((n, dims))
        return eps * d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-300)
    w = rng.exponential(size=(n, dims))
    return eps * rng.choice([-1.0, 1.0], size=(n, dims)) * w / w.sum(axis=1, keepdims=True)
