"""Per-tensor requantisation from one grid to another, int8 or int16 on either side:

  tr_requantize_s8      int8  → int8  (firmware/tr_nn/tr_requantize_s8.c)
  tr_requantize_s8_s16  int8  → int16 (widening: where an int8 tensor enters an int16 region)
  tr_requantize_s16_s8  int16 → int8  (narrowing: where an int16 tensor feeds an int8-only op or an output)
  tr_requantize_s16     int16 → int16 (a relu or quantizer activation inside an int16 region)

What a standalone relu or quantizer activation lowers to, how a concat brings an input onto its
output grid, and how a tensor changes width. One params struct for all four:

  out = clamp(requantize(q + input_offset, mult, shift) + output_offset, activation)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..ir import Grid
from .arith import TABLE_LIMIT, output_stage
from .base import NUMPY_TYPES, Clamp, Op, OpFamily, OpFn
from .lowering import ABS_MAX, multiplier, output_clamp


@dataclass(frozen=True)
class RequantizeParams:
    """tr_nn_requantize_params plus the element count of the call's dims."""

    elements: int
    input_offset: int  # −z_in
    output_offset: int
    mult: int
    shift: int
    activation: Clamp


def requantize_tensor(x: np.ndarray, p: RequantizeParams, out_bits: int = 8) -> np.ndarray:
    """The kernel's arithmetic on int8 or int16 codes x, as int8 or int16 (`out_bits`)."""
    return output_stage(np.asarray(x, dtype=np.int64) + p.input_offset, p.mult, p.shift, p.output_offset,
                        p.activation.min, p.activation.max, out_bits)


# (variant, bits for FAMILY.kernel) by (input bits, output bits): the converters are int8-keyed variants.
_VARIANTS: dict[tuple[int, int], tuple[str | None, int]] = {
    (8, 8): (None, 8), (8, 16): ("s8_s16", 8), (16, 8): ("s16_s8", 8), (16, 16): (None, 16)}


def convert_op(name: str, src: str, dst: str, gi: Grid, go: Grid, relu: bool, shape: tuple[int, ...]) -> Op:
    """An op moving tensor `src` (grid gi) onto grid go as `dst`; the kernel follows the grids' widths
    (gi.bits in, go.bits out), so the same call requantises, widens or narrows."""
    in_bits, out_bits = gi.bits, go.bits
    # |q + input_offset| ≤ |q| + |z_in| ≤ 2 · the input's magnitude: the left shift's headroom bound.
    mult, shift = multiplier(gi.scale / go.scale, 2 * ABS_MAX[in_bits], f"layer '{name}'")
    params = RequantizeParams(int(np.prod(shape)), -gi.zero_point, go.zero_point, mult, shift,
                              output_clamp(go, relu))
    return Op(FAMILY.kernel(*_VARIANTS[(in_bits, out_bits)]), name, (src,), dst, params)


Elementwise = Callable[[np.ndarray], np.ndarray]

# The name lower.py and concat use: one function for every width pair.
requantize_op = convert_op


def _code_table(fn: Elementwise, in_bits: int, out_bits: int) -> Elementwise:
    """fn (elementwise on int8 or int16 codes) as a lookup in its table over every input code (256 or
    65536 entries, computed by fn itself); fn itself when computing the table raises (a left shift that
    would overflow on some code: the error then stays the direct computation's, on the codes given)."""
    lo = -(1 << (in_bits - 1))
    if (1 << in_bits) > TABLE_LIMIT:
        return fn
    try:
        table = np.asarray(fn(np.arange(lo, -lo, dtype=np.int64)), dtype=NUMPY_TYPES[out_bits])
    except OverflowError:
        return fn
    return lambda x: table.take(np.asarray(x, dtype=np.intp) - lo)


def _reference(op: Op) -> OpFn:
    """requantize_tensor() looked up in its table over every input code (computed by requantize_tensor()
    itself): exact for int8 and int16 inputs and outputs alike."""
    in_bits, out_bits = FAMILY.bits_of(op.kernel)
    table = _code_table(lambda x: requantize_tensor(x, op.params, out_bits), in_bits, out_bits)
    return lambda xs: table(xs[0])


FAMILY = OpFamily(
    name="requantize",
    params_type=RequantizeParams,
    kernels={None: "tr_requantize_s8", "s8_s16": "tr_requantize_s8_s16", "s16_s8": "tr_requantize_s16_s8"},
    arrays=(),
    inputs_per_call=1,
    reference=_reference,
    macs=lambda p: p.elements,
    wide_kernels={None: "tr_requantize_s16"},
    kernel_bits={"tr_requantize_s8_s16": (8, 16), "tr_requantize_s16_s8": (16, 8)},
)
