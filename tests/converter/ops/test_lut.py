"""tr_lut_s8 against its numpy reference (ops/lut.py), and the sigmoid / tanh tables: exact on the
grids by construction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kernel_cases as kc
from tinyrobust.converter.ir import Grid
from tinyrobust.converter.ops import lut
from tinyrobust.converter.ops.base import Op
from tinyrobust.converter.ops.lut import LutParams
from tinyrobust.converter.passes.grids import SIGMOID_INPUT, SIGMOID_OUTPUT, TANH_INPUT, TANH_OUTPUT
from tinyrobust.firmware.runner import RunnerCase


def random_case(rng: np.random.Generator) -> RunnerCase:
    n = int(rng.integers(1, 300))
    op = Op(lut.FAMILY.kernels[None], "lut", ("x",), "y", LutParams(n), {"table": kc.i8(rng, 256)})
    return RunnerCase.of(op, [kc.i8(rng, n)], f"lut n={n}")


def random_cases(rounds: int, seed: int) -> list[RunnerCase]:
    rng = np.random.default_rng(seed)
    return [random_case(rng) for _ in range(rounds)]


def test_matches_numpy_on_host(host_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(host_runner, random_cases(300, seed=17), tmp_path) == 300


@pytest.mark.qemu
def test_matches_numpy_on_m7(m7_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(m7_runner, random_cases(120, seed=1006), tmp_path) == 120


@pytest.mark.parametrize(("function", "gi", "go"), [("sigmoid", SIGMOID_INPUT, SIGMOID_OUTPUT),
                                                    ("tanh", TANH_INPUT, TANH_OUTPUT)])
def test_tables_are_the_function_rounded_onto_the_output_grid(function: str, gi: Grid, go: Grid) -> None:
    table = lut.table(function, gi, go)
    x = gi.scale * (np.arange(-128, 128) - gi.zero_point)
    real = np.clip(lut.FUNCTIONS[function](x), go.real_min, go.real_max)
    assert np.abs(go.scale * (table.astype(np.float64) - go.zero_point) - real).max() <= go.scale / 2 + 1e-12
    assert np.all(np.diff(table.astype(int)) >= 0)  # monotonic
