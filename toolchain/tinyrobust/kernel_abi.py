"""Scratch sizes of the tr_nn kernels, mirrored from their C `_get_buffer_size` twins.

memplan needs them offline, before any compiler runs. tests/test_kernel_abi.py compares this
table with the compiled C on many shapes, so the two cannot drift apart silently.
"""

from __future__ import annotations

Dims = tuple[int, int, int, int]  # n, h, w, c


def _round_up(x: int, multiple: int) -> int:
    return (x + multiple - 1) // multiple * multiple


# Row alignment of each weight suffix (weights per row unit): t2 16, t5 20, s8 4.
_ALIGN = {"t2": 16, "t5": 20, "s8": 4}


def scratch_bytes(kernel: str, input_dims: Dims, filter_dims: Dims) -> int:
    suffix = kernel.rsplit("_", 1)[-1]
    if kernel.startswith("tr_convolve_s8_"):
        k = filter_dims[1] * filter_dims[2] * input_dims[3]
        return 3 * _round_up(k, _ALIGN[suffix])  # int16 im2col column + int8 staging row
    if kernel.startswith("tr_fully_connected_s8_"):
        return 2 * _round_up(filter_dims[3], _ALIGN[suffix])  # the input widened to int16
    if kernel.startswith("tr_depthwise_conv_s8_"):
        return 0
    raise KeyError(f"no scratch rule for kernel {kernel}")
