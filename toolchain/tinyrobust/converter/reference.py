"""The numpy reference: executes a Program with exactly the C kernels' integer arithmetic.

This is the numerical truth every target is compared with, byte for byte. Each op runs its
family's reference kernel (ops/), bound once per op: weights are unpacked from the Program's packed
bytes there, so the packing is exercised too.

Every kernel takes a leading batch axis, so `run` answers a whole batch of queries in one
vectorised pass per op (what the robustness attacks need); a single sample is a batch of one,
never a second code path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property

import numpy as np
from threadpoolctl import ThreadpoolController

from .ops import family_of
from .ops.base import Op, OpFn
from .program import Program

# Samples per vectorised pass: bounded so the largest intermediates (a convolution's im2col
# windows, the output stage's int64 temporaries) stay near CHUNK_BYTES; larger passes gain
# nothing once BLAS is busy and only spill the caches.
CHUNK_BYTES = 64 * 2**20
MAX_CHUNK = 512
_BYTES_PER_WINDOW_ELEMENT = 13  # int8 window + float64 copy + slack for the int64 accumulator
# The reference runs BLAS on one thread: its products are small, and on a shared machine a second
# BLAS thread spinning for a busy core made a 0.3 ms product take 8 ms. Parallelism comes from
# running several references at once (tinyrobust robustness --jobs N).
_BLAS = ThreadpoolController()


def _as_bytes(values: np.ndarray) -> np.ndarray:
    """(N, elements) int8 or int16 → (N, bytes) int8, int16 little-endian as the Cortex-M stores it."""
    if values.dtype == np.int8:
        return values
    return np.ascontiguousarray(values.astype("<i2")).view(np.int8)


class Reference:
    """Runs a Program on int8 inputs. `run` gives the output; `run_layers` every op's output."""

    def __init__(self, program: Program):
        self.program = program

    @cached_property
    def _ops(self) -> list[tuple[Op, OpFn]]:
        return [(op, family_of(op.kernel).reference(op)) for op in self.program.ops]

    @cached_property
    def chunk(self) -> int:
        """Samples per pass: as many as keep one pass's working set near CHUNK_BYTES."""
        per_sample = max((self._working_bytes(op) for op in self.program.ops), default=1)
        return int(max(1, min(MAX_CHUNK, CHUNK_BYTES // max(per_sample, 1))))

    def _working_bytes(self, op: Op) -> int:
        """Bytes one sample needs while `op` runs: int64 temporaries of its output (the output stage)
        and, for a convolution, its im2col windows (int8 and as floats)."""
        out = self.program.tensor(op.output).nbytes
        if family_of(op.kernel).name != "convolve":
            return 32 * out
        p = op.params
        return max(32 * out, _BYTES_PER_WINDOW_ELEMENT * p.output.h * p.output.w * p.kernel.h * p.kernel.w * p.input.c)

    def _batched(self, values: Mapping[str, np.ndarray], name: str, n: int) -> np.ndarray:
        storage = self.program.storage_of(name)
        return values[storage].reshape(n, *self.program.tensor(name).shape)

    def _execute(self, x_int8: np.ndarray) -> dict[str, np.ndarray]:
        """Every tensor's values for a batch x (N, …) of packed int8 inputs, each shaped (N, *tensor shape)."""
        prog = self.program
        n = len(x_int8)
        flat = np.asarray(x_int8, dtype=np.int8).reshape(n, -1)
        if flat.shape[1] != prog.input_bytes:
            raise ValueError(f"{flat.shape[1]} input bytes per sample, the program takes {prog.input_bytes}")
        values: dict[str, np.ndarray] = {
            t: flat[:, start:start + prog.tensor(t).nbytes].reshape(n, *prog.tensor(t).shape)
            for t, start in zip(prog.inputs, prog.input_offsets(), strict=True)
        }
        for op, fn in self._ops:
            result = fn([self._batched(values, t, n) for t in op.inputs])
            spec = prog.tensor(op.output)
            values[op.output] = np.asarray(result).reshape(n, *spec.shape).astype(spec.dtype, copy=False)
        return values

    def run_op(self, index: int, inputs: list[np.ndarray]) -> np.ndarray:
        """One op on one sample's input tensors (shaped as the Program's tensors): a batch of one."""
        op, fn = self._ops[index]
        batch = [np.asarray(x)[None] for x in inputs]
        spec = self.program.tensor(op.output)
        return np.asarray(fn(batch)).reshape(spec.shape).astype(spec.dtype)

    def run_layers_batch(self, x_int8: np.ndarray) -> list[np.ndarray]:
        """Every op's output, (N, output elements) int8 or int16 each, for a batch x (N, …), in op order."""
        n = len(x_int8)
        with _BLAS.limit(limits=1, user_api="blas"):
            values = self._execute(x_int8)
        return [values[op.output].reshape(n, -1) for op in self.program.ops]

    def run_layers(self, x_int8: np.ndarray) -> list[np.ndarray]:
        """Every op's output (flattened int8 or int16) for one sample, in op order."""
        return [layer[0] for layer in self.run_layers_batch(np.asarray(x_int8)[None])]

    def run_one(self, x_int8: np.ndarray) -> np.ndarray:
        """One sample (its input bytes, flat or shaped) → its output bytes: a batch of one."""
        return self.run(np.asarray(x_int8)[None])[0]

    def run(self, x_int8: np.ndarray, chunk: int | None = None) -> np.ndarray:
        """(N, *input_shape) or (N, input_bytes) int8 → (N, output_bytes) int8, `chunk` samples per pass: the
        outputs' bytes as the target sends them (an int16 output's little-endian; Program.split_outputs decodes).

        With several inputs or outputs both sides are packed: every tensor's bytes in order
        (Program.pack_inputs, Program.split_outputs)."""
        x_int8 = np.asarray(x_int8, dtype=np.int8)
        width = self.program.output_bytes
        if not len(x_int8):
            return np.zeros((0, width), np.int8)
        step = chunk or self.chunk
        out = np.empty((len(x_int8), width), np.int8)
        with _BLAS.limit(limits=1, user_api="blas"):
            for start in range(0, len(x_int8), step):
                part = x_int8[start:start + step]
                values = self._execute(part)
                out[start:start + len(part)] = np.concatenate(
                    [_as_bytes(self._batched(values, t, len(part)).reshape(len(part), -1))
                     for t in self.program.outputs], axis=1)
        return out

    def run_inputs(self, xs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One int8 batch (N, *shape) per input, in input order → one (N, *shape) int8 array per output."""
        prog = self.program
        if len(xs) != len(prog.inputs):
            raise ValueError(f"{len(xs)} input arrays for the program's {len(prog.inputs)} inputs")
        n = len(xs[0])
        packed = self.run(np.concatenate([np.asarray(x, np.int8).reshape(n, -1) for x in xs], axis=1))
        return [o.reshape(n, *prog.tensor(t).shape) for o, t in zip(prog.split_outputs(packed), prog.outputs,
                                                                      strict=True)]
