"""The numpy reference: executes a Program with exactly the C kernels' integer arithmetic.

This is the numerical truth every target is compared with, byte for byte. Weights are unpacked
from the Program's packed bytes (so the packing is exercised too) once per op, then each op
calls the matching function in kernels.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property

import numpy as np

from . import kernels, packing
from .program import Op, Program


def _unpacked_weights(op: Op) -> np.ndarray:
    p = op.params
    rows = packing.unpack_rows(op.arrays["weights"], op.weight_format, int(p["rows"]), int(p["row_length"]))
    if op.kernel.startswith("tr_convolve_"):
        kh, kw = p["kernel"]
        cin = p["input_shape"][2]
        return rows.reshape(rows.shape[0], kh, kw, cin)
    if op.kernel.startswith("tr_depthwise_conv_"):
        kh, kw = p["kernel"]
        return rows.reshape(kh, kw, rows.shape[1])
    return rows


def _conv_common(op: Op) -> dict:
    p = op.params
    return {
        "stride": tuple(p["stride"]),
        "padding": tuple(p["padding"]),
        "pad_value": int(p["pad_value"]),
        "output_offset": int(p["output_offset"]),
        "act_min": int(p["act_min"]),
        "act_max": int(p["act_max"]),
        "out_hw": tuple(p["output_shape"][:2]),
        "bias_shift": int(p["bias_shift"]),
    }


OpFn = Callable[[list[np.ndarray]], np.ndarray]


def _bind(op: Op) -> OpFn:
    """A closure running `op` on its input arrays, with weights unpacked once."""
    p = op.params
    a = op.arrays
    k = op.kernel
    if k.startswith("tr_convolve_"):
        w = _unpacked_weights(op)
        common = _conv_common(op)
        return lambda xs: kernels.convolve(xs[0], w, a["bias"], a["multiplier"], a["shift"], **common)
    if k.startswith("tr_depthwise_conv_"):
        w = _unpacked_weights(op)
        common = _conv_common(op)
        ch_mult = int(p["ch_mult"])
        return lambda xs: kernels.depthwise_conv(
            xs[0], w, a["bias"], a["multiplier"], a["shift"], ch_mult=ch_mult, **common
        )
    if k.startswith("tr_fully_connected_"):
        w = _unpacked_weights(op)
        return lambda xs: kernels.fully_connected(
            xs[0].reshape(-1), w, a["bias"], a["multiplier"], a["shift"],
            output_offset=int(p["output_offset"]), act_min=int(p["act_min"]), act_max=int(p["act_max"]),
            bias_shift=int(p["bias_shift"]),
        )
    if k == "tr_add_s8":
        names = ("input_1_offset", "input_1_mult", "input_1_shift", "input_2_offset", "input_2_mult",
                 "input_2_shift", "left_shift", "output_offset", "output_mult", "output_shift", "act_min", "act_max")
        kw = {n: int(p[n]) for n in names}
        return lambda xs: kernels.add(xs[0], xs[1], **kw)
    if k == "tr_requantize_s8":
        kw = {n: int(p[n]) for n in ("input_offset", "output_offset", "mult", "shift", "act_min", "act_max")}
        return lambda xs: kernels.requantize_tensor(xs[0], **kw)
    if k == "tr_lut_s8":
        table = a["table"]
        return lambda xs: kernels.lut(xs[0], table)
    if k in ("tr_max_pool_s8", "tr_avg_pool_s8"):
        fn = kernels.max_pool if k == "tr_max_pool_s8" else kernels.avg_pool
        kw = {
            "kernel": tuple(p["kernel"]), "stride": tuple(p["stride"]), "padding": tuple(p["padding"]),
            "act_min": int(p["act_min"]), "act_max": int(p["act_max"]), "out_hw": tuple(p["output_shape"][:2]),
        }
        return lambda xs: fn(xs[0], **kw)
    if k == "tr_pad_s8":
        kw = {"top": int(p["top"]), "left": int(p["left"]), "pad_value": int(p["pad_value"]),
              "out_hw": tuple(p["output_shape"][:2])}
        return lambda xs: kernels.pad(xs[0], **kw)
    if k == "tr_concat_s8":
        return lambda xs: kernels.concat(xs, axis=-1)
    raise KeyError(f"the reference has no implementation of kernel {k}")


class Reference:
    """Runs a Program on int8 inputs. `run` gives the output; `run_layers` every op's output."""

    def __init__(self, program: Program):
        self.program = program

    @cached_property
    def _ops(self) -> list[tuple[Op, OpFn]]:
        return [(op, _bind(op)) for op in self.program.ops]

    def _tensor_view(self, values: Mapping[str, np.ndarray], name: str) -> np.ndarray:
        storage = self.program.storage_of(name)
        return values[storage].reshape(self.program.tensor(name).shape)

    def run_op(self, index: int, inputs: list[np.ndarray]) -> np.ndarray:
        """One op on given int8 input tensors (shaped as the Program's tensors)."""
        op, fn = self._ops[index]
        return fn(inputs).reshape(self.program.tensor(op.output).shape).astype(np.int8)

    def _execute(self, x_int8: np.ndarray) -> dict[str, np.ndarray]:
        prog = self.program
        x = np.asarray(x_int8, dtype=np.int8).reshape(prog.tensor(prog.input).shape)
        values: dict[str, np.ndarray] = {prog.input: x}
        for op, fn in self._ops:
            result = fn([self._tensor_view(values, t) for t in op.inputs])
            values[op.output] = result.reshape(prog.tensor(op.output).shape).astype(np.int8)
        return values

    def run_layers(self, x_int8: np.ndarray) -> list[np.ndarray]:
        """Every op's output (flattened int8) for one sample, in op order."""
        values = self._execute(x_int8)
        return [values[op.output].reshape(-1) for op in self.program.ops]

    def run_one(self, x_int8: np.ndarray) -> np.ndarray:
        values = self._execute(x_int8)
        return self._tensor_view(values, self.program.output).reshape(-1).copy()

    def run(self, x_int8: np.ndarray) -> np.ndarray:
        """(N, *input_shape) int8 → (N, output_bytes) int8."""
        x_int8 = np.asarray(x_int8, dtype=np.int8)
        return np.stack([self.run_one(x) for x in x_int8]) if len(x_int8) else np.zeros((0,), np.int8)
