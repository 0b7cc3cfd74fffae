"""Scratch sizes of the tr_nn kernels, for the offline planner (no compiler runs at export).

The formulas live in packing.py beside the row formats they derive from; tests/test_kernel_abi.py
compares them with the compiled C `_get_buffer_size` twins on many shapes.
"""

from __future__ import annotations

from . import packing

Dims = tuple[int, int, int, int]  # n, h, w, c
FORMAT_OF_SUFFIX = {"t2": packing.T2, "t5": packing.TRIT5, "s8": packing.S8}


def scratch_bytes(kernel: str, input_dims: Dims, filter_dims: Dims) -> int:
    fmt = FORMAT_OF_SUFFIX[kernel.rsplit("_", 1)[-1]]
    if kernel.startswith("tr_convolve_s8_"):
        return packing.conv_scratch_bytes(filter_dims[1], filter_dims[2], input_dims[3], fmt)
    if kernel.startswith("tr_fully_connected_s8_"):
        return packing.fc_scratch_bytes(filter_dims[3], fmt)
    if kernel.startswith("tr_depthwise_conv_s8_"):
        return 0
    raise KeyError(f"no scratch rule for kernel {kernel}")
