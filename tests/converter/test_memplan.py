"""memplan: no two live buffers overlap, the arena is never below the lower bound, and simple
chains reach it."""

from __future__ import annotations

import numpy as np
import pytest

from tinyrobust.converter import packing
from tinyrobust.converter.memplan import ALIGN, Buffer, buffers, check_no_overlap, lower_bound, place, plan
from tinyrobust.converter.ops import fully_connected, requantize
from tinyrobust.converter.ops.base import Clamp, Op
from tinyrobust.converter.ops.fully_connected import FullyConnectedParams
from tinyrobust.converter.ops.requantize import RequantizeParams
from tinyrobust.converter.program import InputQuantization, Program, TensorSpec
from tinyrobust.errors import InternalError

CLAMP = Clamp(-128, 127)


def _op(i: int, inputs: tuple[str, ...], output: str, size_in: int, size_out: int, fc: bool) -> Op:
    """A requantize (no scratch) or, with `fc`, a t2 fully connected op (scratch: its int16 input copy)."""
    if fc:
        params = FullyConnectedParams(size_in, size_out, 0, CLAMP, 0)
        return Op(fully_connected.FAMILY.kernels[packing.T2], f"op{i}", inputs, output, params, {}, packing.T2)
    return Op(requantize.FAMILY.kernels[None], f"op{i}", inputs, output, RequantizeParams(size_out, 0, 0, 0, 0, CLAMP))


def _chain(sizes: list[int], fc: list[bool] | None = None, skip: bool = False) -> Program:
    """input → op0 → t0 → op1 → t1 …; with skip, the last op also reads the input (a residual)."""
    tensors = {"in": TensorSpec("in", (sizes[0],), 1.0, 0, "in")}
    ops = []
    prev = "in"
    for i, size in enumerate(sizes[1:]):
        name = f"t{i}"
        tensors[name] = TensorSpec(name, (size,), 1.0, 0, name)
        inputs = (prev, "in") if skip and i == len(sizes) - 2 else (prev,)
        ops.append(_op(i, inputs, name, sizes[i], size, (fc or [False] * 99)[i]))
        prev = name
    return Program(tensors, tuple(ops), ("in",), (prev,), (InputQuantization(1.0, 0, -128, 127, "test"),), "t2r16-v1",
                   "m")


def test_chain_reaches_the_lower_bound():
    p = plan(_chain([64, 128, 32, 256, 16]))
    check_no_overlap(p)
    assert p.placement.arena_bytes == p.placement.lower_bound_bytes == 32 + 256  # t1 and t2 live at op 2


def test_residual_input_stays_alive():
    p = plan(_chain([64, 64, 64, 64], skip=True))
    check_no_overlap(p)
    off = p.placement.tensor_offsets
    # the input is read by the last op, so nothing written before it may overlap it
    for t in ("t0", "t1", "t2"):
        assert not (off[t] < off["in"] + 64 and off["in"] < off[t] + 64)


def test_scratch_lives_only_during_its_op():
    p = plan(_chain([64, 64, 64], fc=[True, False]))  # op 0's scratch: 2 · 64 bytes
    check_no_overlap(p)
    assert p.placement.arena_bytes >= 64 + 64 + 128
    assert 0 in p.placement.scratch_offsets


@pytest.mark.parametrize("seed", range(40))
def test_random_lifetimes_never_overlap(seed):
    rng = np.random.default_rng(seed)
    bufs = []
    for i in range(int(rng.integers(2, 40))):
        first = int(rng.integers(-1, 20))
        bufs.append(Buffer(f"b{i}", int(rng.integers(1, 64)) * ALIGN, first, first + int(rng.integers(0, 8))))
    offsets = place(bufs)
    for i, a in enumerate(bufs):
        assert offsets[a.key] % ALIGN == 0
        for b in bufs[i + 1:]:
            if a.overlaps_in_time(b):
                assert offsets[a.key] + a.size <= offsets[b.key] or offsets[b.key] + b.size <= offsets[a.key]
    arena = max(offsets[b.key] + b.size for b in bufs)
    assert arena >= lower_bound(bufs, 30)


def test_check_no_overlap_catches_a_bad_placement():
    p = plan(_chain([64, 64, 64]))
    bad = p.with_placement(type(p.placement)(p.placement.arena_bytes, p.placement.lower_bound_bytes,
                                             {k: 0 for k in p.placement.tensor_offsets}, {}))
    with pytest.raises(InternalError, match="arena overlap"):
        check_no_overlap(bad)


def test_buffers_follow_views():
    p = _chain([64, 64])
    tensors = dict(p.tensors)
    tensors["view"] = TensorSpec("view", (8, 8), 1.0, 0, "view", alias_of="t0")
    ops = (*p.ops, _op(9, ("view",), "t9", 64, 64, False))
    tensors["t9"] = TensorSpec("t9", (64,), 1.0, 0, "t9")
    prog = Program(tensors, ops, ("in",), ("t9",), p.input_quantizations, p.packing, p.model_name)
    keys = {b.key: b for b in buffers(prog)}
    assert "view" not in keys and keys["t0"].last == 1
    check_no_overlap(plan(prog))
