"""Small Programs built without TensorFlow, and their generated model libraries, for the firmware,
target and Renode tests: real generated code and real kernels, known answers from the reference.

    python tests/program_fixtures.py OUT_DIR      # writes OUT_DIR/tr_model.{h,c}, tr_model_weights.{h,c}
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from tinyrobust.converter import memplan, packing
from tinyrobust.converter.ops import convolve, fully_connected, pad, pool
from tinyrobust.converter.ops.base import HWC, Clamp, Op, Tile
from tinyrobust.converter.ops.convolve import ConvParams
from tinyrobust.converter.ops.fully_connected import FullyConnectedParams
from tinyrobust.converter.ops.pad import PadParams
from tinyrobust.converter.ops.pool import PoolParams
from tinyrobust.converter.program import InputQuantization, Program, TensorSpec
from tinyrobust.firmware.codegen import render_model_library

FULL = Clamp(-128, 127)


def _program(tensors: dict[str, tuple[int, ...]], ops: tuple[Op, ...], name: str) -> Program:
    specs = {t: TensorSpec(t, shape, 0.05, 0, t) for t, shape in tensors.items()}
    first, last = next(iter(tensors)), ops[-1].output
    program = Program(specs, ops, (first,), (last,), (InputQuantization(1 / 255, -128, -128, 127, "test"),), packing.T2,
                      name)
    return memplan.plan(program)


def small_program(seed: int = 7) -> Program:
    """input 4×4×1 → 3×3 conv, t2, 4 channels, relu clamp → 2×2 max pool → fully connected, s8, 16 → 4.
    Requantisation keeps outputs spread over the int8 range (few at the rails)."""
    rng = np.random.default_rng(seed)
    conv_w = rng.integers(-1, 2, (4, 9)).astype(np.int8)
    conv = Op(convolve.FAMILY.kernels[packing.T2], "conv", ("x",), "c",
              ConvParams(HWC(4, 4, 1), HWC(4, 4, 4), Tile(3, 3), Tile(1, 1), Tile(1, 1), -128, 0, Clamp(-128, 127),
                         4),
              {"weights": packing.pack_rows(conv_w, packing.T2),
               "bias": rng.integers(-3000, 3000, 4).astype(np.int32),
               "multiplier": np.full(4, 1 << 30, np.int32), "shift": np.full(4, -6, np.int32)},
              packing.T2)
    mp = Op(pool.FAMILY.kernels["max"], "pool", ("c",), "p",
            PoolParams(HWC(4, 4, 4), HWC(2, 2, 4), Tile(2, 2), Tile(2, 2), Tile(0, 0), FULL))
    fc_w = rng.integers(-40, 41, (4, 16)).astype(np.int8)
    fc = Op(fully_connected.FAMILY.kernels[packing.S8], "fc", ("p",), "y",
            FullyConnectedParams(16, 4, 3, FULL, 0),
            {"weights": packing.pack_rows(fc_w, packing.S8), "bias": rng.integers(-2000, 2000, 4).astype(np.int32),
             "multiplier": np.full(4, 1 << 30, np.int32), "shift": np.full(4, -7, np.int32)},
            packing.S8)
    return _program({"x": (4, 4, 1), "c": (4, 4, 4), "p": (2, 2, 4), "y": (4,)}, (conv, mp, fc), "small_fixture")


def autoencoder_program(n: int = 16, seed: int = 5) -> Program:
    """input (n,) → fully connected, s8, n → n: an output of the input's shape, like an autoencoder's."""
    rng = np.random.default_rng(seed)
    fc = Op(fully_connected.FAMILY.kernels[packing.S8], "fc", ("x",), "y", FullyConnectedParams(n, n, 0, FULL, 0),
            {"weights": packing.pack_rows(rng.integers(-40, 41, (n, n)).astype(np.int8), packing.S8),
             "bias": rng.integers(-2000, 2000, n).astype(np.int32), "multiplier": np.full(n, 1 << 30, np.int32),
             "shift": np.full(n, -7, np.int32)},
            packing.S8)
    return _program({"x": (n,), "y": (n,)}, (fc,), "autoencoder_fixture")


def big_arena_program(side: int) -> Program:
    """A 16×16×4 input zero-padded to side×side×4, then max-pooled to 1×1×4: an arena of about
    side² · 4 bytes with an input and an output that fit the protocol's frames."""
    pad_op = Op(pad.FAMILY.kernels[None], "pad", ("x",), "p", PadParams(HWC(16, 16, 4), HWC(side, side, 4), 0, 0, 0))
    pool_op = Op(pool.FAMILY.kernels["max"], "pool", ("p",), "y",
                 PoolParams(HWC(side, side, 4), HWC(1, 1, 4), Tile(side, side), Tile(side, side), Tile(0, 0), FULL))
    return _program({"x": (16, 16, 4), "p": (side, side, 4), "y": (1, 1, 4)}, (pad_op, pool_op), "big_arena_fixture")


def big_io_program(seed: int = 11) -> Program:
    """A 96×96×3 input (27,648 bytes, MLPerf Tiny's visual wake words size) → 3×3 conv, stride 2, t2, 4
    channels → 48×48×4 output (9,216 bytes): both tensors are larger than one protocol frame."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-1, 2, (4, 27)).astype(np.int8)
    conv = Op(convolve.FAMILY.kernels[packing.T2], "conv", ("x",), "y",
              ConvParams(HWC(96, 96, 3), HWC(48, 48, 4), Tile(3, 3), Tile(2, 2), Tile(1, 1), -128, 0, FULL, 2),
              {"weights": packing.pack_rows(w, packing.T2),
               "bias": rng.integers(-4000, 4000, 4).astype(np.int32),
               "multiplier": np.full(4, 1 << 30, np.int32), "shift": np.full(4, -5, np.int32)},
              packing.T2)
    return _program({"x": (96, 96, 3), "y": (48, 48, 4)}, (conv,), "big_io_fixture")


def deep_program(layers: int) -> Program:
    """`layers` 1×1 max pools in a chain on a 1×1×4 tensor: a layer count with nothing else to it."""
    tensors: dict[str, tuple[int, ...]] = {"t0": (1, 1, 4)}
    chain = []
    for i in range(layers):
        tensors[f"t{i + 1}"] = (1, 1, 4)
        chain.append(Op(pool.FAMILY.kernels["max"], f"pool{i}", (f"t{i}",), f"t{i + 1}",
                        PoolParams(HWC(1, 1, 4), HWC(1, 1, 4), Tile(1, 1), Tile(1, 1), Tile(0, 0), FULL)))
    return _program(tensors, tuple(chain), f"deep_{layers}")


def write_model_library(program: Program, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    render_model_library(program, out_dir)
    return out_dir


if __name__ == "__main__":
    write_model_library(small_program(), Path(sys.argv[1]))
