"""tr_pad_s8 against its numpy reference (ops/pad.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kernel_cases as kc
from tinyrobust.converter.ops import pad
from tinyrobust.converter.ops.base import HWC, Op
from tinyrobust.converter.ops.pad import PadParams
from tinyrobust.firmware.runner import RunnerCase


def random_case(rng: np.random.Generator) -> RunnerCase:
    h, w = (int(v) for v in rng.integers(1, 8, size=2))
    c = int(rng.integers(1, 10))
    top, left = (int(v) for v in rng.integers(0, 4, size=2))
    oh, ow = h + top + int(rng.integers(0, 4)), w + left + int(rng.integers(0, 4))
    params = PadParams(HWC(h, w, c), HWC(oh, ow, c), int(rng.integers(-128, 128)), top, left)
    op = Op(pad.FAMILY.kernels[None], "pad", ("x",), "y", params)
    return RunnerCase.of(op, [kc.i8(rng, (h, w, c))], f"pad {params}")


def random_cases(rounds: int, seed: int) -> list[RunnerCase]:
    rng = np.random.default_rng(seed)
    return [random_case(rng) for _ in range(rounds)]


def test_matches_numpy_on_host(host_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(host_runner, random_cases(300, seed=19), tmp_path) == 300


@pytest.mark.qemu
def test_matches_numpy_on_m7(m7_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(m7_runner, random_cases(120, seed=1008), tmp_path) == 120


def test_numpy_pad_refuses_an_input_that_does_not_fit() -> None:
    with pytest.raises(ValueError):
        pad.pad(np.zeros((1, 3, 3, 1), np.int8), PadParams(HWC(3, 3, 1), HWC(4, 4, 1), 0, 2, 0))
