"""tr_fully_connected_s8_{t2,t5,s8} against its numpy reference (ops/fully_connected.py) on the host
(ASan/UBSan) and on the emulated Cortex-M7, and its scratch size twin.
Kernels: tr_fully_connected_s8_t2, tr_fully_connected_s8_t5, tr_fully_connected_s8_s8.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

import kernel_cases as kc
from tinyrobust.converter import packing
from tinyrobust.converter.ops import fully_connected
from tinyrobust.converter.ops.base import Clamp, Op
from tinyrobust.converter.ops.fully_connected import FullyConnectedParams
from tinyrobust.firmware.runner import RunnerCase


def random_case(rng: np.random.Generator, fmt: str, edges: bool = False) -> RunnerCase:
    """edges: wide layers around the t2 table path's row threshold (192), C_in around its 16/32-value
    slices, outputs spread over int8."""
    while True:
        cin, cout = int(rng.integers(1, 120)), int(rng.integers(1, 24))
        if edges:
            cin = int(rng.choice([1, 3, 4, 15, 16, 17, 31, 32, 33, 47, 48, 49, 64, 100, 130]))
            cout = int(rng.choice([4, 5, 6, 7, 191, 192, 193, 200, 257]))
        x = kc.i8(rng, cin)
        wt = kc.weights(rng, fmt, (cout, cin))
        bias, bias_shift = kc.bias(rng, cout, cin, wt)
        w_scale = 80.0 if fmt == packing.S8 else 1.0
        mult, shift = kc.quant(rng, cout, cin, w_scale, bias_shift)
        out_off = int(rng.integers(-128, 128))
        if edges:
            bias, shift = kc.spread(rng, cout, cin, w_scale, bias, bias_shift)
            out_off = int(rng.integers(-20, 21))
        params = FullyConnectedParams(cin, cout, out_off, kc.clamp(rng), bias_shift)
        arrays = kc.weighted_arrays(packing.pack_rows(wt, fmt), bias, mult, shift)
        op = Op(fully_connected.FAMILY.kernels[fmt], "fc", ("x",), "y", params, arrays, fmt)
        try:
            return kc.weighted_case(op, [x], f"fc {fmt} {params}")
        except OverflowError:  # the lowering never emits an overflowing left shift; resample
            continue


def random_cases(rounds: int, seed: int, edges: bool = False) -> list[RunnerCase]:
    rng = np.random.default_rng(seed)
    return [random_case(rng, fmt, edges) for _ in range(rounds) for fmt in packing.FORMATS]


def test_matches_numpy_on_host(host_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(host_runner, random_cases(120, seed=13), tmp_path) == 360


@pytest.mark.qemu
def test_matches_numpy_on_m7(m7_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(m7_runner, random_cases(50, seed=1002), tmp_path) == 150


@pytest.mark.qemu
def test_fast_path_edges_match_numpy(host_runner, m7_runner, tmp_path: Path) -> None:
    """Wide layers (the t2 table path from 192 rows) and C_in at its slice limits, on the host and the M7."""
    cases = random_cases(30, seed=2002, edges=True)
    assert kc.saturated_fraction(cases) < 0.10
    assert kc.run_and_check(host_runner, cases, tmp_path / "host") == 90
    assert kc.run_and_check(m7_runner, cases, tmp_path / "m7") == 90


class Dims(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


def test_scratch_bytes_is_the_c_twin(tr_nn_lib: ctypes.CDLL) -> None:
    rng = np.random.default_rng(4)
    for fmt, kernel in fully_connected.FAMILY.kernels.items():
        fn = getattr(tr_nn_lib, f"{kernel}_get_buffer_size")
        for _ in range(200):
            cin = int(rng.integers(1, 41)) if rng.random() < 0.7 else int(rng.integers(41, 4097))
            cout = int(rng.integers(1, 600))  # from 192 rows on, the t2 kernel's table path
            params = FullyConnectedParams(cin, cout, 0, Clamp(-128, 127), 0)
            got = fn(ctypes.byref(Dims(cout, 1, 1, cin)))
            assert got == fully_connected.scratch_bytes(params, fmt) > 0, (kernel, cin)


def test_numpy_guards_what_the_c_cannot_do() -> None:
    """bias_shift outside [0, 16] and an accumulator beyond int32 are refused, not modelled."""
    x, wt = np.array([[127]], np.int8), np.array([[1]], np.int8)  # a batch of one sample
    one = (np.array([1 << 30], np.int32), np.array([0], np.int32))

    def run(bias: int, bias_shift: int) -> np.ndarray:
        params = FullyConnectedParams(1, 1, 0, Clamp(-128, 127), bias_shift)
        return fully_connected.fully_connected(x, wt, np.array([bias], np.int32), *one, params)

    for bad in (-1, 17):
        with pytest.raises(ValueError):
            run(0, bad)
    with pytest.raises(OverflowError):
        run(2**31 - 200, 1)
    run(2**31 - 257, 1)  # 127 * 2 + (2^31 - 257) = 2^31 - 3: just inside
