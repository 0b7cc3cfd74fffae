"""Everything the model templates print, computed here: templates only loop and substitute."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import __version__
from ..program import Op, Program
from .c_arrays import c_initializer, c_string


@dataclass(frozen=True)
class Dims:
    n: int
    h: int
    w: int
    c: int


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
    macro: str  # which template macro renders the call
    function: str
    layer: str
    input_offsets: tuple[int, ...]
    output_offset: int
    output_bytes: int
    f: dict[str, Any]  # the macro's integer fields, Dims and array symbols


WEIGHTS_SECTION = ".rodata.tr_weights"
FAST_DATA_SECTION = ".tr_fast_data"  # small hot tables: placed in DTCM on the NUCLEO


def _dims(shape: tuple[int, ...]) -> Dims:
    if len(shape) == 3:
        return Dims(1, *shape)
    return Dims(1, 1, 1, int(np.prod(shape)))


def _array(symbol: str, values: np.ndarray, comment: str, section: str = WEIGHTS_SECTION) -> ArrayDecl:
    c_type = {"uint8": "uint8_t", "int8": "int8_t", "int32": "int32_t"}[np.asarray(values).dtype.name]
    return ArrayDecl(symbol, c_type, int(np.asarray(values).size), c_initializer(values), comment, section)


def _op_call(i: int, op: Op, program: Program, arrays: list[ArrayDecl]) -> OpCall:
    placement = program.placement
    assert placement is not None
    p = op.params
    ins = tuple(placement.tensor_offsets[t] for t in op.inputs)
    out_spec = program.tensor(op.output)
    fields: dict[str, Any] = {}
    prefix = f"tr_op{i}"
    if op.kernel.startswith(("tr_convolve_", "tr_depthwise_conv_", "tr_fully_connected_")):
        for key, comment in (("weights", op.weight_format or ""), ("bias", "int32 bias with -z_in*sum(w) folded"),
                             ("multiplier", "q31 requantisation multipliers"), ("shift", "requantisation shifts")):
            arrays.append(_array(f"{prefix}_{key}", op.arrays[key], f"{op.name}: {comment}"))
            fields[key] = f"{prefix}_{key}"
        fields.update(output_offset=p["output_offset"], act_min=p["act_min"], act_max=p["act_max"],
                      bias_shift=p["bias_shift"])
        fields["scratch_offset"] = placement.scratch_offsets.get(i, 0)
        fields["scratch_bytes"] = op.scratch_bytes
        cout = len(op.arrays["bias"])
        fields["bias_dims"] = Dims(1, 1, 1, cout)
        if op.kernel.startswith("tr_fully_connected_"):
            fields["input_dims"] = Dims(1, 1, 1, int(p["input_channels"]))
            fields["filter_dims"] = Dims(cout, 1, 1, int(p["input_channels"]))
            fields["output_dims"] = Dims(1, 1, 1, cout)
            macro = "fully_connected"
        else:
            kh, kw = p["kernel"]
            fields["input_dims"] = _dims(tuple(p["input_shape"]))
            fields["output_dims"] = _dims(tuple(p["output_shape"]))
            fields.update(pad_value=p["pad_value"], stride_h=p["stride"][0], stride_w=p["stride"][1],
                          pad_top=p["padding"][0], pad_left=p["padding"][1])
            if op.kernel.startswith("tr_depthwise_conv_"):
                fields["filter_dims"] = Dims(1, kh, kw, cout)
                fields["ch_mult"] = p["ch_mult"]
                macro = "depthwise"
            else:
                fields["filter_dims"] = Dims(cout, kh, kw, int(p["input_shape"][2]))
                macro = "convolve"
    elif op.kernel == "tr_add_s8":
        fields.update({k: p[k] for k in p})
        fields["dims"] = _dims(out_spec.shape)
        macro = "add"
    elif op.kernel == "tr_requantize_s8":
        fields.update({k: p[k] for k in p})
        fields["dims"] = _dims(out_spec.shape)
        macro = "requantize"
    elif op.kernel == "tr_lut_s8":
        arrays.append(_array(f"{prefix}_table", op.arrays["table"], f"{op.name}: {p['function']} table",
                             FAST_DATA_SECTION))
        fields["table"] = f"{prefix}_table"
        fields["dims"] = _dims(out_spec.shape)
        macro = "lut"
    elif op.kernel in ("tr_max_pool_s8", "tr_avg_pool_s8"):
        fields.update(stride_h=p["stride"][0], stride_w=p["stride"][1], pad_top=p["padding"][0],
                      pad_left=p["padding"][1], act_min=p["act_min"], act_max=p["act_max"])
        fields["input_dims"] = _dims(tuple(p["input_shape"]))
        fields["filter_dims"] = Dims(1, p["kernel"][0], p["kernel"][1], 1)
        fields["output_dims"] = _dims(tuple(p["output_shape"]))
        macro = "pool"
    elif op.kernel == "tr_pad_s8":
        fields.update(top=p["top"], left=p["left"], pad_value=p["pad_value"])
        fields["input_dims"] = _dims(tuple(p["input_shape"]))
        fields["output_dims"] = _dims(tuple(p["output_shape"]))
        macro = "pad"
    elif op.kernel == "tr_concat_s8":
        fields["parts"] = [
            {"offset": off, "channel_offset": ch, "dims": _dims(program.tensor(t).shape)}
            for t, off, ch in zip(op.inputs, ins, p["channel_offsets"], strict=True)
        ]
        fields["output_dims"] = _dims(out_spec.shape)
        macro = "concat"
    else:
        raise KeyError(f"codegen has no template for kernel {op.kernel}")
    return OpCall(i, macro, op.kernel, c_string(op.name), ins, placement.tensor_offsets[op.output],
                  out_spec.nbytes, fields)


def model_context(program: Program) -> dict[str, Any]:
    placement = program.placement
    if placement is None:
        raise ValueError("codegen needs a planned Program (memplan.plan)")
    arrays: list[ArrayDecl] = []
    calls = [_op_call(i, op, program, arrays) for i, op in enumerate(program.ops)]
    inp = program.tensor(program.input)
    out = program.tensor(program.output)
    digest = program.sha256()
    return {
        "version": __version__,
        "model_name": c_string(program.model_name),
        "hash_bytes": ", ".join(f"0x{b:02x}" for b in digest),
        "hash_hex": digest.hex(),
        "packing": program.packing,
        "formats": sorted({op.weight_format for op in program.ops if op.weight_format}),
        "input_bytes": inp.nbytes,
        "output_bytes": out.nbytes,
        "input_offset": placement.tensor_offsets[program.input],
        "output_offset": placement.tensor_offsets[program.output],
        "arena_bytes": max(placement.arena_bytes, 8),
        "input_scale": repr(inp.scale),
        "input_zero_point": inp.zero_point,
        "output_scale": repr(out.scale),
        "output_zero_point": out.zero_point,
        "calls": calls,
        "arrays": arrays,
    }
