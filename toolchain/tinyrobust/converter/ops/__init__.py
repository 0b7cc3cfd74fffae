"""The op table: every C kernel, the family that owns it, and its op code.

Each family module (one per kernel family) holds its params dataclass, its lowering from the IR,
its numpy reference kernel, its scratch size and what its template macro
(firmware_templates/model/ops/<family>.c.j2) renders. Everything that needs to know about kernels
(lowering, the reference, codegen, the memory planner, the kernel runner of tests and bench)
reads this table: no kernel name is matched anywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import add, concat, convolve, depthwise_conv, fully_connected, lut, mul, pad, pool, requantize
from .base import KernelCall, Op, OpFamily

# Registration order fixes the op codes (1, 2, …) of the kernel runner: append new families at the end.
FAMILIES: tuple[OpFamily, ...] = (
    convolve.FAMILY,
    depthwise_conv.FAMILY,
    fully_connected.FAMILY,
    add.FAMILY,
    requantize.FAMILY,
    lut.FAMILY,
    concat.FAMILY,
    pool.FAMILY,
    pad.FAMILY,
    mul.FAMILY,
)

KERNELS: Mapping[str, OpFamily] = {kernel: f for f in FAMILIES for kernel in f.all_kernels()}
OP_CODES: Mapping[str, int] = {kernel: code for code, kernel in enumerate(KERNELS, start=1)}


def family_of(kernel: str) -> OpFamily:
    try:
        return KERNELS[kernel]
    except KeyError:
        raise KeyError(f"no op family has kernel {kernel!r}") from None


def io_bits(kernel: str) -> tuple[int, int]:
    """(input element bits, output element bits) of a kernel: 8 (int8) or 16 (int16)."""
    return family_of(kernel).bits_of(kernel)


def kernel_calls(op: Op) -> list[KernelCall]:
    return family_of(op.kernel).kernel_calls(op)


def scratch_bytes(op: Op) -> int:
    return family_of(op.kernel).scratch_of(op)


def macs(op: Op) -> int:
    return int(family_of(op.kernel).macs(op.params))


def weight_rows(op: Op) -> tuple[int, int] | None:
    """(rows, weights per row) of the op's packed weights, or None when it has none."""
    rows = family_of(op.kernel).weight_rows
    return None if rows is None else rows(op.params)


def weight_count(op: Op) -> int:
    shape = weight_rows(op)
    return 0 if shape is None else shape[0] * shape[1]


__all__ = ["FAMILIES", "KERNELS", "OP_CODES", "Op", "OpFamily", "KernelCall", "family_of", "io_bits", "kernel_calls",
           "scratch_bytes", "macs", "weight_rows", "weight_count"]
