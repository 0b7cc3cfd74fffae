"""What the kernel runner's dispatch template prints: every kernel of the op table, its op code, and
its call with each scalar, array and buffer read from the case (tr_runner.h)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ... import __version__
from ...converter import ops
from ...converter.ops.base import C_TYPES, scalar_names
from .context import CallText


@dataclass(frozen=True)
class RunnerKernel:
    code: int
    family: str
    n_scalars: int
    n_blobs: int  # inputs, then constant arrays
    call: CallText


def _kernel(kernel: str, code: int) -> RunnerKernel:
    family = ops.family_of(kernel)
    names = scalar_names(family.scalar_type)
    n_in = family.inputs_per_call
    in_type, out_type = (C_TYPES[b] for b in family.bits_of(kernel))
    call = CallText(
        function=kernel,
        v={name: f"p[{i}]" for i, name in enumerate(names)},
        a={spec.name: f"(const {spec.c_type} *)(const void *)c->blob[{n_in + j}]"
           for j, spec in enumerate(family.arrays)},
        ins=tuple(f"(const {in_type} *)(const void *)c->blob[{i}]" for i in range(n_in)),
        out="out" if out_type == "int8_t" else f"({out_type} *)(void *)out",
        scratch="scratch",
        scratch_bytes="c->scratch_bytes",
        storage="const",
    )
    return RunnerKernel(code, family.name, len(names), n_in + len(family.arrays), call)


def runner_context() -> dict[str, Any]:
    return {"version": __version__, "kernels": [_kernel(k, code) for k, code in ops.OP_CODES.items()]}
