"""Everything the templates print, computed here: templates only loop and substitute.

A kernel call is handed to its family's macro (firmware_templates/model/ops/<family>.c.j2) as a
`CallText`: every scalar, array, buffer and the scratch as C text. The model library fills it with
constants and arena addresses; the kernel runner's dispatch (runner.py) with reads of the case it
received. One macro per family serves both, so the runner calls each kernel exactly as models do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ... import __version__
from ...converter import ops
from ...converter.ops.base import C_TYPES, scalar_map
from ...converter.program import Program
from .c_arrays import c_initializer, c_string
from .c_names import DEFAULT_PREFIX, check_prefix

# Packed weights and requantisation tables stay in flash; small hot tables go to fast RAM
# (DTCM on the NUCLEO), as the kernels' own decode tables do.
WEIGHTS_SECTION = ".rodata.tr_weights"
FAST_DATA_SECTION = ".tr_fast_data"


@dataclass(frozen=True)
class CallText:
    """One kernel call as its family's template macro reads it: C text by name."""

    function: str
    v: Mapping[str, str]  # scalars: the family's flattened params names
    a: Mapping[str, str]  # constant arrays: pointers, by the family's array names
    ins: tuple[str, ...]  # input tensors: pointers
    out: str  # output tensor: pointer
    scratch: str  # scratch buffer: pointer
    scratch_bytes: str
    storage: str  # qualifiers of the macro's local structs: "static const" for constants


@dataclass(frozen=True)
class ArrayDecl:
    symbol: str
    c_type: str
    length: int
    body: str
    comment: str
    section: str


@dataclass(frozen=True)
class OpCall:
    index: int
    family: str  # the macro file: ops/<family>.c.j2
    kernel: str
    layer: str
    calls: tuple[CallText, ...]
    output_offset: int
    output_bytes: int


def _arena(prefix: str, offset: int, bits: int = 8, const: bool = False) -> str:
    """A pointer into the (int8_t) arena; an int16 tensor's as int16_t * (the arena keeps it aligned)."""
    if bits == 8:
        return f"&{prefix}_arena[{offset}]"
    qualifier = "const " if const else ""
    return f"({qualifier}{C_TYPES[bits]} *)({qualifier}void *)&{prefix}_arena[{offset}]"


def _op_call(i: int, op: ops.Op, program: Program, arrays: list[ArrayDecl], prefix: str) -> OpCall:
    placement = program.placement
    assert placement is not None
    family = ops.family_of(op.kernel)
    in_bits, out_bits = family.bits_of(op.kernel)
    symbols: dict[str, str] = {}
    for spec in family.arrays:
        symbol = f"{prefix}_op{i}_{spec.name}"
        values = op.arrays[spec.name]
        section = FAST_DATA_SECTION if spec.fast else WEIGHTS_SECTION
        comment = f"{op.name}: {spec.name}" + (f" ({op.weight_format})" if spec.name == "weights" else "")
        arrays.append(ArrayDecl(symbol, spec.c_type, int(values.size), c_initializer(values), comment, section))
        symbols[spec.name] = symbol
    calls = tuple(
        CallText(
            function=call.function,
            v={name: str(value) for name, value in scalar_map(call.scalars).items()},
            a=symbols,
            ins=tuple(_arena(prefix, placement.tensor_offsets[op.inputs[k]], in_bits, const=True)
                      for k in call.inputs),
            out=_arena(prefix, placement.tensor_offsets[op.output], out_bits),
            scratch=_arena(prefix, placement.scratch_offsets.get(i, 0)),
            scratch_bytes=str(call.scratch_bytes),
            storage="static const",
        )
        for call in family.kernel_calls(op)
    )
    return OpCall(i, family.name, op.kernel, c_string(op.name), calls, placement.tensor_offsets[op.output],
                  program.tensor(op.output).nbytes)


@dataclass(frozen=True)
class IoTensor:
    """Input or output k: where it sits in the packed buffer the caller passes (`offset`) and in the
    arena (`arena_offset`), its size and its grid."""

    index: int
    name: str
    offset: int
    arena_offset: int
    bytes: int
    scale: str
    zero_point: int
    qmin: int
    qmax: int
    bits: int = 8  # an output may be int16 (--fidelity exact / balanced)

    @property
    def elements(self) -> int:
        return self.bytes * 8 // self.bits


def _io_tensors(program: Program) -> tuple[list[IoTensor], list[IoTensor]]:
    placement = program.placement
    assert placement is not None
    # The scale and zero point the header states are the tensor's (they equal its grid's in a converted model).
    ins = [IoTensor(k, c_string(t), off, placement.tensor_offsets[t], program.tensor(t).nbytes,
                    repr(program.tensor(t).scale), program.tensor(t).zero_point, q.qmin, q.qmax)
           for k, (t, off, q) in enumerate(zip(program.inputs, program.input_offsets(), program.input_quantizations,
                                               strict=True))]
    outs = [IoTensor(k, c_string(t), off, placement.tensor_offsets[program.storage_of(t)], program.tensor(t).nbytes,
                     repr(program.tensor(t).scale), program.tensor(t).zero_point,
                     -(1 << (program.tensor(t).bits - 1)), (1 << (program.tensor(t).bits - 1)) - 1,
                     program.tensor(t).bits)
            for k, (t, off) in enumerate(zip(program.outputs, program.output_offsets(), strict=True))]
    return ins, outs


def model_context(program: Program, prefix: str = DEFAULT_PREFIX) -> dict[str, Any]:
    """`prefix` starts every C name of the library (see c_names.py)."""
    placement = program.placement
    if placement is None:
        raise ValueError("codegen needs a planned Program (memplan.plan)")
    check_prefix(prefix)
    arrays: list[ArrayDecl] = []
    calls = [_op_call(i, op, program, arrays, prefix) for i, op in enumerate(program.ops)]
    inputs, outputs = _io_tensors(program)
    single = len(inputs) == 1 and len(outputs) == 1
    digest = program.sha256()
    return {
        "version": __version__,
        "p": prefix,
        "P": prefix.upper(),
        "model_name": c_string(program.model_name),
        "hash_bytes": ", ".join(f"0x{b:02x}" for b in digest),
        "hash_hex": digest.hex(),
        "packing": program.packing,
        "formats": sorted({op.weight_format for op in program.ops if op.weight_format}),
        "input_bytes": program.input_bytes,
        "output_bytes": program.output_bytes,
        "inputs": inputs,
        "outputs": outputs,
        "single": single,
        "arena_bytes": max(placement.arena_bytes, 8),
        "calls": calls,
        "families": sorted({c.family for c in calls}),
        "arrays": arrays,
    }
