"""kernel_abi.scratch_bytes (the offline planner's table) equals the C `_get_buffer_size` twins."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

from tinyrobust import cbuild, kernel_abi

SUFFIXES = ("t2", "t5", "s8")
FAMILIES = ("tr_convolve_s8", "tr_depthwise_conv_s8", "tr_fully_connected_s8")
KERNELS = [f"{fam}_{suffix}" for fam in FAMILIES for suffix in SUFFIXES]
N_SHAPES = 200


class Dims(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    out: Path = tmp_path_factory.mktemp("tr_nn_abi") / "libtr_nn.so"
    cbuild.build_host_shared_lib(cbuild.tr_nn_sources(), [cbuild.tr_nn_dir()], out, sanitize=False)
    return ctypes.CDLL(str(out))


Dims4 = tuple[int, int, int, int]


def _shapes(seed: int) -> list[tuple[Dims4, Dims4, Dims4]]:
    """(input_dims, conv filter dims, depthwise filter dims) as (n, h, w, c); channel counts include
    every residue modulo the row granules (4, 16, 20) and some large layers."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(N_SHAPES):
        cin = int(rng.integers(1, 41)) if rng.random() < 0.7 else int(rng.integers(41, 1025))
        cout, ch_mult = int(rng.integers(1, 257)), int(rng.integers(1, 4))
        kh, kw = (int(v) for v in rng.integers(1, 8, size=2))
        h, w = (int(v) for v in rng.integers(1, 65, size=2))
        out.append(((1, h, w, cin), (cout, kh, kw, cin), (1, kh, kw, cin * ch_mult)))
    return out


@pytest.mark.parametrize("kernel", KERNELS)
def test_scratch_bytes_matches_c(lib: ctypes.CDLL, kernel: str) -> None:
    fn = getattr(lib, f"{kernel}_get_buffer_size")
    fn.restype = ctypes.c_int32
    for input_dims, conv_filter, dw_filter in _shapes(seed=KERNELS.index(kernel)):
        if kernel.startswith("tr_fully_connected_s8_"):
            # fully connected: filter {C_out, 1, 1, C_in}; the C twin takes only the filter dims
            inp = (1, 1, 1, input_dims[3])
            filt = (conv_filter[0], 1, 1, input_dims[3])
            got = fn(ctypes.byref(Dims(*filt)))
        else:
            inp, filt = input_dims, conv_filter if kernel.startswith("tr_convolve_s8_") else dw_filter
            got = fn(ctypes.byref(Dims(*inp)), ctypes.byref(Dims(*filt)))
        want = kernel_abi.scratch_bytes(kernel, inp, filt)
        assert got == want, (kernel, inp, filt)
        assert (got == 0) == kernel.startswith("tr_depthwise_conv_s8_"), (kernel, got)


def test_unknown_kernel_has_no_rule() -> None:
    with pytest.raises(KeyError):
        kernel_abi.scratch_bytes("tr_add_s8", (1, 1, 1, 1), (1, 1, 1, 1))
