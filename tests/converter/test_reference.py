"""converter/reference.py: the numpy reference executes a hand-built Program (conv, max pool, a
Flatten view, fully connected, requantize, add, table, and a view as the output) exactly as calling
each family's numpy kernel by hand; run, run_one, run_layers and run_op agree; an empty batch.
(The batched reference against the per-sample one it replaced: test_reference_batched.py.)"""

from __future__ import annotations

import numpy as np

from tinyrobust.converter import packing
from tinyrobust.converter.ops import add, convolve, fully_connected, lut, pool, requantize
from tinyrobust.converter.ops.add import AddParams
from tinyrobust.converter.ops.base import HWC, Clamp, Op, Tile
from tinyrobust.converter.ops.convolve import ConvParams
from tinyrobust.converter.ops.fully_connected import FullyConnectedParams
from tinyrobust.converter.ops.lut import LutParams
from tinyrobust.converter.ops.pool import PoolParams
from tinyrobust.converter.ops.requantize import RequantizeParams
from tinyrobust.converter.program import InputQuantization, Program, TensorSpec
from tinyrobust.converter.reference import Reference

FULL = Clamp(-128, 127)
SHAPES = {"x": (4, 4, 2), "c": (4, 4, 3), "p": (2, 2, 3), "flat": (12,), "f": (5,), "rq": (5,), "a": (5,),
          "y": (5,), "out": (1, 5)}
VIEWS = {"flat": "p", "out": "y"}


def _weights(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "conv": rng.integers(-1, 2, (3, 3, 3, 2)).astype(np.int8),  # [C_out][KH][KW][C_in]
        "conv_bias": rng.integers(-500, 500, 3).astype(np.int32),
        "fc": rng.integers(-60, 61, (5, 12)).astype(np.int8),
        "fc_bias": rng.integers(-2000, 2000, 5).astype(np.int32),
        "table": rng.integers(-128, 128, 256).astype(np.int8),
    }


W = _weights(5)
CONV_P = ConvParams(HWC(4, 4, 2), HWC(4, 4, 3), Tile(3, 3), Tile(1, 1), Tile(1, 1), -3, 2, Clamp(-100, 127), 2)
POOL_P = PoolParams(HWC(4, 4, 3), HWC(2, 2, 3), Tile(2, 2), Tile(2, 2), Tile(0, 0), FULL)
FC_P = FullyConnectedParams(12, 5, -4, FULL, 1)
RQ_P = RequantizeParams(5, 3, -1, 1 << 30, 1, FULL)  # (q + 3) · 2^30/2^31 · 2 − 1 = q + 2
ADD_P = AddParams(5, 0, 1 << 30, 0, 0, 1 << 30, 1, 20, 0, 1 << 30, -19, FULL)  # (q1 + 2·q2) / 2, clamped
LUT_P = LutParams(5)
QUANT = {"multiplier": np.array([1 << 30, 3 << 29, 1 << 30], np.int32), "shift": np.array([-3, -4, -2], np.int32)}
FC_QUANT = {"multiplier": np.full(5, 1 << 30, np.int32), "shift": np.full(5, -7, np.int32)}


def _program(w: dict[str, np.ndarray] = W) -> Program:
    ops = (
        Op(convolve.FAMILY.kernels[packing.T2], "conv", ("x",), "c", CONV_P,
           {"weights": packing.pack_rows(w["conv"].reshape(3, -1), packing.T2), "bias": w["conv_bias"], **QUANT},
           packing.T2),
        Op(pool.FAMILY.kernels["max"], "pool", ("c",), "p", POOL_P),
        Op(fully_connected.FAMILY.kernels[packing.S8], "fc", ("flat",), "f", FC_P,
           {"weights": packing.pack_rows(w["fc"], packing.S8), "bias": w["fc_bias"], **FC_QUANT}, packing.S8),
        Op(requantize.FAMILY.kernels[None], "rq", ("f",), "rq", RQ_P),
        Op(add.FAMILY.kernels[None], "add", ("f", "rq"), "a", ADD_P),
        Op(lut.FAMILY.kernels[None], "table", ("a",), "y", LUT_P, {"table": w["table"]}),
    )
    tensors = {t: TensorSpec(t, s, 0.05, 0, f"layer {t}", VIEWS.get(t)) for t, s in SHAPES.items()}
    return Program(tensors, ops, ("x",), ("out",), (InputQuantization(1 / 255, -128, -128, 127, "test"),), packing.T2,
                   "ref")


def _by_hand(x: np.ndarray, w: dict[str, np.ndarray] = W) -> list[np.ndarray]:
    """Every op's output for one sample from the families' numpy kernels, called directly on unpacked
    weights (each kernel takes a batch: here a batch of one)."""
    c = convolve.convolve(x[None], w["conv"], w["conv_bias"], QUANT["multiplier"], QUANT["shift"], CONV_P)
    p = pool.max_pool(c, POOL_P)
    f = fully_connected.fully_connected(p.reshape(1, -1), w["fc"], w["fc_bias"], FC_QUANT["multiplier"],
                                        FC_QUANT["shift"], FC_P)
    rq = requantize.requantize_tensor(f, RQ_P)
    a = add.add(f, rq, ADD_P)
    y = lut.lut(a, w["table"])
    return [t[0] for t in (c, p, f, rq, a, y)]


def _inputs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, (n, 4, 4, 2)).astype(np.int8)


def test_the_hand_computation_is_not_trivial() -> None:
    """The chosen scales keep every stage off the rails, so agreement below compares real values."""
    layers = _by_hand(_inputs(1)[0])
    for out in layers:
        assert len(np.unique(out)) > 2, out
    np.testing.assert_array_equal(layers[3], np.clip(layers[2].astype(int) + 2, -128, 127))
    twice = layers[2].astype(int) + 2 * layers[3].astype(int)  # add: (f + 2·rq) / 2, halves away from zero
    np.testing.assert_array_equal(layers[4], np.clip(np.sign(twice) * ((np.abs(twice) + 1) // 2), -128, 127))


def test_run_layers_matches_each_kernel_by_hand() -> None:
    ref = Reference(_program())
    for x in _inputs(8):
        got = ref.run_layers(x)
        want = _by_hand(x)
        assert len(got) == 6
        for g, w in zip(got, want, strict=True):
            assert g.dtype == np.int8 and g.ndim == 1
            np.testing.assert_array_equal(g, w.reshape(-1))


def test_run_one_reads_the_output_through_its_view() -> None:
    """The output 'out' is a (1, 5) view of the table's tensor: its bytes, flattened."""
    ref = Reference(_program())
    x = _inputs(1, seed=3)[0]
    got = ref.run_one(x)
    assert got.shape == (5,) and got.dtype == np.int8
    np.testing.assert_array_equal(got, _by_hand(x)[-1])
    np.testing.assert_array_equal(ref.run_one(x.reshape(-1)), got)  # flat input bytes work the same


def test_run_stacks_a_batch() -> None:
    ref = Reference(_program())
    xs = _inputs(6, seed=4)
    out = ref.run(xs)
    assert out.shape == (6, 5) and out.dtype == np.int8
    for x, row in zip(xs, out, strict=True):
        np.testing.assert_array_equal(row, _by_hand(x)[-1])


def test_run_of_an_empty_batch_has_the_output_width() -> None:
    out = Reference(_program()).run(np.zeros((0, 4, 4, 2), np.int8))
    assert out.shape == (0, 5) and out.dtype == np.int8


def test_run_of_an_empty_batch_is_empty() -> None:
    out = Reference(_program()).run(np.zeros((0, 4, 4, 2), np.int8))
    assert out.size == 0 and out.dtype == np.int8


def test_run_op_runs_one_op_on_given_inputs() -> None:
    """Op 2 (fc) reads the Flatten view: given a (12,) input it gives the hand result; op 4 (add)
    takes its two inputs in order."""
    ref = Reference(_program())
    x = _inputs(1, seed=9)[0]
    c, p, f, rq, a, y = _by_hand(x)
    np.testing.assert_array_equal(ref.run_op(0, [x]), c)
    assert ref.run_op(0, [x]).shape == (4, 4, 3)
    np.testing.assert_array_equal(ref.run_op(2, [p.reshape(12)]), f)
    np.testing.assert_array_equal(ref.run_op(4, [f, rq]), a)
    np.testing.assert_array_equal(ref.run_op(4, [rq, f]), add.add(rq, f, ADD_P))  # inputs in the given order
    assert not np.array_equal(add.add(rq, f, ADD_P), a)  # the add weighs its inputs differently
    np.testing.assert_array_equal(ref.run_op(5, [a]), y)
    other = np.arange(-2, 3, dtype=np.int8)
    np.testing.assert_array_equal(ref.run_op(5, [other]), W["table"][other.astype(int) + 128])


def test_weights_are_read_from_the_packed_bytes() -> None:
    """Change one fc weight: the Program's packed bytes change and so does the reference's output."""
    w2 = {**W, "fc": W["fc"].copy()}
    w2["fc"][0, 0] = W["fc"][0, 0] + 40 if W["fc"][0, 0] < 0 else W["fc"][0, 0] - 40
    x = _inputs(1, seed=11)[0]
    p = _by_hand(x)[1].reshape(-1)
    assert p[0] != 0  # the changed weight meets a nonzero input
    got = Reference(_program(w2)).run_layers(x)[2]
    np.testing.assert_array_equal(got, _by_hand(x, w2)[2])
    assert got[0] != Reference(_program()).run_layers(x)[2][0]


def test_scales_and_zero_points_do_not_change_the_integers() -> None:
    """The reference is integer only: tensor scales and zero points are metadata for the host."""
    prog = _program()
    rescaled = Program({k: TensorSpec(v.name, v.shape, 9.0, 7, v.source, v.alias_of) for k, v in prog.tensors.items()},
                       prog.ops, prog.inputs, prog.outputs, prog.input_quantizations, prog.packing, prog.model_name)
    x = _inputs(2, seed=1)
    np.testing.assert_array_equal(Reference(rescaled).run(x), Reference(prog).run(x))
