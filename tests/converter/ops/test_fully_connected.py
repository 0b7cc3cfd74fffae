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


def random_case(rng: np.random.Generator, fmt: str) -> RunnerCase:
    while True:
        cin, cout = int(rng.integers(1, 120)), int(rng.integers(1, 24))
        x = kc.i8(rng, cin)
        wt = kc.weights(rng, fmt, (cout, cin))
        bias, bias_shift = kc.bias(rng, cout, cin, wt)
        mult, shift = kc.quant(rng, cout, cin, 80.0 if fmt == packing.S8 else 1.0, bias_shift)
        params = FullyConnectedParams(cin, cout, int(rng.integers(-128, 128)), kc.clamp(rng), bias_shift)
        arrays = kc.weighted_arrays(packing.pack_rows(wt, fmt), bias, mult, shift)
        op = Op(fully_connected.FAMILY.kernels[fmt], "fc", ("x",), "y", params, arrays, fmt)
        try:
            return kc.weighted_case(op, [x], f"fc {fmt} {params}")
        except OverflowError:  # the lowering never emits an overflowing left shift; resample
            continue


def random_cases(rounds: int, seed: int) -> list[RunnerCase]:
    rng = np.random.default_rng(seed)
    return [random_case(rng, fmt) for _ in range(rounds) for fmt in packing.FORMATS]


def test_matches_numpy_on_host(host_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(host_runner, random_cases(120, seed=13), tmp_path) == 360


@pytest.mark.qemu
def test_matches_numpy_on_m7(m7_runner, tmp_path: Path) -> None:
    assert kc.run_and_check(m7_runner, random_cases(50, seed=1002), tmp_path) == 150


class Dims(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


def test_scratch_bytes_is_the_c_twin(tr_nn_lib: ctypes.CDLL) -> None:
    rng = np.random.default_rng(4)
    for fmt, kernel in fully_connected.FAMILY.kernels.items():
        fn = getattr(tr_nn_lib, f"{kernel}_get_buffer_size")
        for _ in range(200):
            cin = int(rng.integers(1, 41)) if rng.random() < 0.7 else int(rng.integers(41, 4097))
            params = FullyConnectedParams(cin, 7, 0, Clamp(-128, 127), 0)
            got = fn(ctypes.byref(Dims(7, 1, 1, cin)))
            assert got == fully_connected.scratch_bytes(params, fmt) > 0, (kernel, cin)


def test_numpy_guards_what_the_c_cannot_do() -> None:
    """bias_shift outside [0, 16] and an accumulator beyond int32 are refused, not modelled."""
    x, wt = np.array([127], np.int8), np.array([[1]], np.int8)
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
