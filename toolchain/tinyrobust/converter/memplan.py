"""Offline arena planner: liveness of every activation and scratch buffer, then greedy placement.

Time is the op index. A tensor lives from the op that writes it (−1 for the model input) to the
last op that reads it (through Flatten/Reshape views); the model output lives to the end. An op's
scratch lives during that op only. Two buffers whose lifetimes intersect never share bytes, so
no kernel ever writes over its own input. Placement is the usual greedy: largest first, each at
the lowest aligned offset free of every time-overlapping buffer already placed.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InternalError
from . import ops
from .program import Placement, Program

ALIGN = 8  # bytes; keeps every buffer word- and double-word aligned for the DSP paths


@dataclass(frozen=True)
class Buffer:
    key: str  # tensor name, or "scratch:<op index>"
    size: int
    first: int
    last: int

    def overlaps_in_time(self, other: Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def buffers(program: Program) -> list[Buffer]:
    first: dict[str, int] = dict.fromkeys(program.inputs, -1)
    last: dict[str, int] = dict.fromkeys(program.inputs, -1)
    for i, op in enumerate(program.ops):
        for t in op.inputs:
            last[program.storage_of(t)] = i
        out = program.storage_of(op.output)
        first.setdefault(out, i)
        last[out] = max(last.get(out, i), i)
    for output in program.outputs:
        last[program.storage_of(output)] = len(program.ops)
    result = [
        Buffer(name, _aligned(program.tensor(name).nbytes), first[name], last[name]) for name in first
    ]
    for i, op in enumerate(program.ops):
        scratch = ops.scratch_bytes(op)
        if scratch > 0:
            result.append(Buffer(f"scratch:{i}", _aligned(scratch), i, i))
    return result


def lower_bound(bufs: list[Buffer], steps: int) -> int:
    """max over time of the bytes live at once: no placement can use less."""
    return max((sum(b.size for b in bufs if b.first <= t <= b.last) for t in range(-1, steps + 1)), default=0)


def place(bufs: list[Buffer]) -> dict[str, int]:
    offsets: dict[str, int] = {}
    placed: list[Buffer] = []
    for b in sorted(bufs, key=lambda b: (-b.size, b.first, b.key)):
        busy = sorted((offsets[p.key], offsets[p.key] + p.size) for p in placed if p.overlaps_in_time(b))
        offset = 0
        for start, end in busy:
            if offset + b.size <= start:
                break
            offset = max(offset, _aligned(end))
        offsets[b.key] = offset
        placed.append(b)
    return offsets


def plan(program: Program) -> Program:
    """The program with a Placement: arena size, lower bound and every buffer's offset."""
    bufs = buffers(program)
    offsets = place(bufs)
    arena = max((offsets[b.key] + b.size for b in bufs), default=0)
    tensor_offsets = {name: off for name, off in offsets.items() if not name.startswith("scratch:")}
    for name in program.tensors:
        storage = program.storage_of(name)
        if storage in offsets:
            tensor_offsets[name] = offsets[storage]
    scratch = {int(k.split(":", 1)[1]): v for k, v in offsets.items() if k.startswith("scratch:")}
    return program.with_placement(
        Placement(arena, lower_bound(bufs, len(program.ops)), dict(sorted(tensor_offsets.items())), scratch)
    )


def check_no_overlap(program: Program) -> None:
    """Raise InternalError if two time-overlapping buffers share bytes (checked after every plan)."""
    assert program.placement is not None
    bufs = buffers(program)
    scratch = {f"scratch:{k}": v for k, v in program.placement.scratch_offsets.items()}
    offs = {**program.placement.tensor_offsets, **scratch}
    for i, a in enumerate(bufs):
        for b in bufs[i + 1 :]:
            if a.overlaps_in_time(b):
                a0, b0 = offs[a.key], offs[b.key]
                if a0 < b0 + b.size and b0 < a0 + a.size:
                    raise InternalError(f"arena overlap: {a.key} [{a0}, +{a.size}) and {b.key} [{b0}, +{b.size})")
