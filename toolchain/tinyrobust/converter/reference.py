"""The numpy reference: executes a Program with exactly the C kernels' integer arithmetic.

This is the numerical truth every target is compared with, byte for byte. Each op runs its
family's reference kernel (ops/), bound once per op: weights are unpacked from the Program's packed
bytes there, so the packing is exercised too.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property

import numpy as np

from .ops import family_of
from .ops.base import Op, OpFn
from .program import Program


class Reference:
    """Runs a Program on int8 inputs. `run` gives the output; `run_layers` every op's output."""

    def __init__(self, program: Program):
        self.program = program

    @cached_property
    def _ops(self) -> list[tuple[Op, OpFn]]:
        return [(op, family_of(op.kernel).reference(op)) for op in self.program.ops]

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
        if not len(x_int8):
            return np.zeros((0, self.program.tensor(self.program.output).nbytes), np.int8)
        return np.stack([self.run_one(x) for x in x_int8])
