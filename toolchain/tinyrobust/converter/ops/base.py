"""The op abstraction shared by every kernel family.

An `Op` is one call site in the integer Program: which C function, on which tensors, with which
integer params and constant arrays. An `OpFamily` describes a group of C kernels that share one
params struct (e.g. tr_convolve_s8_t2 / _t5 / _s8): its params dataclass, how its numpy reference
runs an Op, how an Op becomes C kernel calls, and its scratch size (the `_get_buffer_size` twin).

A family's params dataclass mirrors the C call: its fields, flattened in declaration order
(`stride.h` → `stride_h`), are the names the family's template macro reads and the order in which
the kernel runner receives them. Nested fields are dataclasses (Tile, Clamp, HWC), leaves ints.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Tile:
    """tr_nn_tile: a (height, width) pair: kernel size, stride, or padding before the first row/column."""

    h: int
    w: int


@dataclass(frozen=True)
class Clamp:
    """tr_nn_activation: the inclusive int8 range an output is clamped to after the output offset."""

    min: int
    max: int


@dataclass(frozen=True)
class HWC:
    """An activation tensor's shape without the batch axis (the C side's tr_nn_dims with n = 1)."""

    h: int
    w: int
    c: int

    @staticmethod
    def of(shape: Sequence[int]) -> HWC:
        """(H, W, C) as is; any other shape as one row of its elements (dense layers, views)."""
        if len(shape) == 3:
            return HWC(*(int(s) for s in shape))
        return HWC(1, 1, int(np.prod(shape, dtype=np.int64)))

    @property
    def elements(self) -> int:
        return self.h * self.w * self.c


@dataclass(frozen=True)
class Op:
    """One kernel call site: `kernel` is the C function, `params` its family's params dataclass.

    arrays: packed weights (uint8), bias / multiplier / shift (int32), tables (int8), by the names
    the family declares. weight_format names the packed format of `arrays["weights"]`, if any.
    """

    kernel: str
    name: str
    inputs: tuple[str, ...]
    output: str
    params: Any
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    weight_format: str | None = None


@dataclass(frozen=True)
class KernelCall:
    """One C call an Op makes (an Op makes one, except concat: one per input).

    `scalars` is an instance of the family's call type, whose flattened fields the template macro
    reads; `inputs` are indices into the Op's inputs.
    """

    function: str
    scalars: Any
    inputs: tuple[int, ...]
    scratch_bytes: int = 0


@dataclass(frozen=True)
class ArraySpec:
    """A constant array a kernel call takes, in the family's argument order."""

    name: str
    c_type: str  # element type: uint8_t, int8_t, int32_t
    fast: bool = False  # small and read on every element: placed in fast RAM (DTCM on the NUCLEO)


OpFn = Callable[[list[np.ndarray]], np.ndarray]

# Activation element widths: int8 (the default) and int16 (Grid.wide: symmetric as CMSIS-NN s16, or
# zero point −32768 for a non-negative tensor), which the lowering chooses per tensor where int8 rounding
# loses fidelity.
ACTIVATION_BITS = (8, 16)
C_TYPES = {8: "int8_t", 16: "int16_t"}
NUMPY_TYPES: Mapping[int, type] = {8: np.int8, 16: np.int16}


@dataclass(frozen=True)
class OpFamily:
    """Everything the converter, the reference, codegen and the kernel runner need about one family.

    name: the module and the template macro file (firmware_templates/model/ops/<name>.c.j2).
    kernels: the C functions by variant: the weight format for weighted families, the pooling kind for
        pooling, None for a family of one kernel. Their activations are int8.
    wide_kernels: the same variants with int16 activations in and out (tr_<op>_s16_<weights>), where
        the family has them.
    kernel_bits: (input bits, output bits) of kernels that convert between widths (requantize).
    call_type: the dataclass whose flattened fields one C call reads (usually params_type).
    """

    name: str
    params_type: type
    kernels: Mapping[str | None, str]
    arrays: tuple[ArraySpec, ...]
    inputs_per_call: int
    reference: Callable[[Op], OpFn]
    macs: Callable[[Any], int]
    weight_rows: Callable[[Any], tuple[int, int]] | None = None  # (rows, weights per row) of packed weights
    call_type: type | None = None
    calls: Callable[[Op], list[KernelCall]] | None = None
    scratch_bytes: Callable[[Op], int] | None = None
    wide_kernels: Mapping[str | None, str] = field(default_factory=dict)
    kernel_bits: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def kernel(self, variant: str | None, bits: int = 8) -> str:
        """The C function of `variant` on `bits`-wide activations."""
        table = self.kernels if bits == 8 else self.wide_kernels
        if variant not in table:
            raise KeyError(f"{self.name}: no {bits}-bit kernel for variant {variant!r}")
        return table[variant]

    def all_kernels(self) -> tuple[str, ...]:
        return (*self.kernels.values(), *self.wide_kernels.values())

    def bits_of(self, kernel: str) -> tuple[int, int]:
        """(input element bits, output element bits) of one of this family's kernels."""
        if kernel in self.kernel_bits:
            return self.kernel_bits[kernel]
        if kernel in self.wide_kernels.values():
            return 16, 16
        if kernel in self.kernels.values():
            return 8, 8
        raise KeyError(f"{self.name}: {kernel!r} is not one of its kernels")

    @property
    def scalar_type(self) -> type:
        return self.call_type or self.params_type

    def kernel_calls(self, op: Op) -> list[KernelCall]:
        if self.calls is not None:
            return self.calls(op)
        return [KernelCall(op.kernel, op.params, tuple(range(len(op.inputs))), self.scratch_of(op))]

    def scratch_of(self, op: Op) -> int:
        return 0 if self.scratch_bytes is None else int(self.scratch_bytes(op))


# ---------------------------------------------------------------- params as flat scalars and JSON


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@functools.cache
def scalar_names(cls: type) -> tuple[str, ...]:
    """Flattened field names of a params dataclass: nested dataclass fields become `outer_inner`."""
    names: list[str] = []
    hints = _hints(cls)
    for f in fields(cls):
        kind = hints[f.name]
        if is_dataclass(kind):
            names += [f"{f.name}_{inner}" for inner in scalar_names(kind)]
        elif kind is int:
            names.append(f.name)
        else:
            raise TypeError(f"{cls.__name__}.{f.name}: C-call params hold ints and nested dataclasses only")
    return tuple(names)


def scalar_values(obj: Any) -> tuple[int, ...]:
    """The values of `scalar_names(type(obj))`, in order."""
    out: list[int] = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            out += scalar_values(value)
        else:
            out.append(int(value))
    return tuple(out)


def scalar_map(obj: Any) -> dict[str, int]:
    return dict(zip(scalar_names(type(obj)), scalar_values(obj), strict=True))


def params_to_obj(obj: Any) -> dict[str, Any]:
    """A params dataclass as plain JSON-able values (nested dataclasses as dicts, tuples as lists)."""
    out: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            out[f.name] = params_to_obj(value)
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    return out


def params_from_obj(cls: type, obj: Mapping[str, Any]) -> Any:
    """Inverse of params_to_obj, guided by the dataclass's field types."""
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for f in fields(cls):
        kind = hints[f.name]
        raw = obj[f.name]
        if is_dataclass(kind):
            values[f.name] = params_from_obj(kind, raw)
        elif typing.get_origin(kind) is tuple:
            values[f.name] = tuple(raw)
        else:
            values[f.name] = kind(raw)
    return cls(**values)
