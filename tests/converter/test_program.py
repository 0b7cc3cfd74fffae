"""converter/program.py: a Program survives save/load unchanged (params dataclasses, arrays with their
dtypes, views, placement); its sha256 is stable and follows every weight; load refuses what is not a
program with ExportError; storage_of follows views; the input quantizer rounds half to even and clips."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import program_fixtures
from tinyrobust.converter import memplan, packing
from tinyrobust.converter.ops import concat, lut
from tinyrobust.converter.ops.base import HWC, Op
from tinyrobust.converter.ops.concat import ConcatParams
from tinyrobust.converter.ops.lut import LutParams
from tinyrobust.converter.program import PROGRAM_FORMAT, InputQuantization, Program, TensorSpec
from tinyrobust.errors import ExportError, UnsupportedModelError


def _concat_program() -> Program:
    """x (2,2,3) → lut → t; concat(x, t) → c (2,2,6); 'flat' is a view of c and the output: a params
    dataclass with tuples, an int8 table, a view and a placement."""
    table = np.arange(-128, 128, dtype=np.int8)[::-1].copy()
    ops = (
        Op(lut.FAMILY.kernels[None], "tab", ("x",), "t", LutParams(12), {"table": table}),
        Op(concat.FAMILY.kernels[None], "cat", ("x", "t"), "c", ConcatParams(HWC(2, 2, 6), (3, 3), (0, 3))),
    )
    tensors = {
        "x": TensorSpec("x", (2, 2, 3), 0.25, -3, "input"),
        "t": TensorSpec("t", (2, 2, 3), 1 / 256, -128, "tab"),
        "c": TensorSpec("c", (2, 2, 6), 1 / 3, 7, "cat"),
        "flat": TensorSpec("flat", (24,), 1 / 3, 7, "flatten", alias_of="c"),
    }
    prog = Program(tensors, ops, ("x",), ("flat",), (InputQuantization(0.25, -3, -128, 127, "input range [-1, 1]"),),
                   packing.TRIT5, "cat model", notes=("a note", "another"))
    return memplan.plan(prog)


def _assert_same(a: Program, b: Program) -> None:
    assert a.tensors == b.tensors
    assert (a.input, a.output, a.input_quantization, a.packing, a.model_name, a.notes) == (
        b.input, b.output, b.input_quantization, b.packing, b.model_name, b.notes)
    assert a.placement == b.placement
    assert len(a.ops) == len(b.ops)
    for x, y in zip(a.ops, b.ops, strict=True):
        assert (x.kernel, x.name, x.inputs, x.output, x.weight_format) == (y.kernel, y.name, y.inputs, y.output,
                                                                            y.weight_format)
        assert type(x.params) is type(y.params) and x.params == y.params
        assert x.arrays.keys() == y.arrays.keys()
        for k in x.arrays:
            assert x.arrays[k].dtype == y.arrays[k].dtype and x.arrays[k].shape == y.arrays[k].shape, k
            np.testing.assert_array_equal(x.arrays[k], y.arrays[k])


@pytest.mark.parametrize("build", [program_fixtures.small_program, _concat_program])
def test_save_load_round_trip(build, tmp_path: Path) -> None:
    prog = build()
    assert prog.placement is not None
    prog.save(tmp_path / "p.json")
    back = Program.load(tmp_path / "p.json")
    _assert_same(prog, back)
    assert back.to_json_bytes() == prog.to_json_bytes()
    assert back.sha256() == prog.sha256()


def test_loaded_params_are_typed(tmp_path: Path) -> None:
    """Tuples stay tuples, nested params stay dataclasses, scratch offsets keep int keys."""
    prog = _concat_program()
    prog.save(tmp_path / "p.json")
    back = Program.load(tmp_path / "p.json")
    params = back.ops[1].params
    assert isinstance(params, ConcatParams) and isinstance(params.output, HWC)
    assert isinstance(params.input_channels, tuple) and params.channel_offsets == (0, 3)
    assert back.tensors["flat"].alias_of == "c" and isinstance(back.tensors["x"].shape, tuple)
    small = program_fixtures.small_program()
    small.save(tmp_path / "s.json")
    loaded = Program.load(tmp_path / "s.json")
    assert loaded.placement is not None and all(isinstance(k, int) for k in loaded.placement.scratch_offsets)
    assert loaded.placement.scratch_offsets == small.placement.scratch_offsets and small.placement.scratch_offsets


def test_serialisation_is_canonical_json() -> None:
    prog = _concat_program()
    text = prog.to_json_bytes().decode()
    obj = json.loads(text)
    assert obj["format"] == PROGRAM_FORMAT and text.endswith("\n")
    assert json.dumps(obj, sort_keys=True, indent=1) + "\n" == text
    assert obj["ops"][0]["arrays"]["table"]["dtype"] == "int8"


def test_sha256_is_stable_and_follows_the_weights() -> None:
    a, b = program_fixtures.small_program(seed=7), program_fixtures.small_program(seed=7)
    assert a.sha256() == b.sha256() and len(a.sha256()) == 32
    assert program_fixtures.small_program(seed=8).sha256() != a.sha256()
    fc = a.ops[2]
    weights = fc.arrays["weights"].copy()
    weights[0, 0] ^= 1
    changed = replace(a, ops=(*a.ops[:2], replace(fc, arrays={**fc.arrays, "weights": weights})))
    assert changed.sha256() != a.sha256()
    assert replace(a, model_name="other").sha256() != a.sha256()
    assert a.with_placement(replace(a.placement, arena_bytes=a.placement.arena_bytes + 8)).sha256() != a.sha256()


def test_load_refuses_another_format(tmp_path: Path) -> None:
    obj = json.loads(program_fixtures.small_program().to_json_bytes())
    obj["format"] = "tinyrobust-program-v1"
    path = tmp_path / "old.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(ExportError, match="program format 'tinyrobust-program-v1', expected 'tinyrobust-program-v2'"):
        Program.load(path)
    path.write_text("{}")
    with pytest.raises(ExportError, match="program format None"):
        Program.load(path)


@pytest.mark.parametrize("text", ['{"format": "tinyrobust-program-v2", "ops": [', "", "not json"])
def test_load_refuses_corrupt_json(text: str, tmp_path: Path) -> None:
    path = tmp_path / "corrupt.json"
    path.write_text(text)
    with pytest.raises(ExportError, match="not a readable tinyrobust program"):
        Program.load(path)


def test_load_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="not a readable tinyrobust program"):
        Program.load(tmp_path / "absent.json")


@pytest.mark.parametrize("data", [b"\xff\xfe\x00garbage", b"[1, 2]", b'{"format": "tinyrobust-program-v2"}'])
def test_load_refuses_other_damage_with_export_error(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "damaged.json"
    path.write_bytes(data)
    with pytest.raises(ExportError):
        Program.load(path)


def test_storage_of_follows_views() -> None:
    t = {
        "a": TensorSpec("a", (2, 3), 1.0, 0, "a"),
        "v1": TensorSpec("v1", (6,), 1.0, 0, "v1", alias_of="a"),
        "v2": TensorSpec("v2", (1, 6), 1.0, 0, "v2", alias_of="v1"),
    }
    prog = Program(t, (), ("a",), ("v2",), (InputQuantization(1.0, 0, -128, 127, "t"),), packing.T2, "m")
    assert [prog.storage_of(n) for n in ("a", "v1", "v2")] == ["a", "a", "a"]
    assert prog.tensor("v2").nbytes == 6 and prog.tensor("a").nbytes == 6
    with pytest.raises(KeyError):
        prog.storage_of("nope")


def test_quantize_rounds_half_to_even() -> None:
    """Like tf.round: 0.5 → 0, 1.5 → 2, 2.5 → 2, −0.5 → 0, −1.5 → −2 (in steps), then + zero point."""
    iq = InputQuantization(0.5, 10, -128, 127, "t")
    x = np.array([0.25, 0.75, 1.25, -0.25, -0.75, 0.0, 0.3])
    q = iq.quantize(x)
    assert q.dtype == np.int8
    np.testing.assert_array_equal(q, [10, 12, 12, 10, 8, 10, 11])


def test_quantize_clips_to_the_grid() -> None:
    iq = InputQuantization(1.0, 0, -5, 6, "t")
    np.testing.assert_array_equal(iq.quantize(np.array([[-100.0, -5.4, 6.4, 7.0, 1e9]])), [[-5, -5, 6, 6, 6]])
    full = InputQuantization(1 / 255, -128, -128, 127, "t")
    np.testing.assert_array_equal(full.quantize(np.array([0.0, 1.0, 2.0, -1.0])), [-128, 127, 127, -128])


def _two_by_two() -> Program:
    t = {n: TensorSpec(n, s, 1.0, 0, n) for n, s in (("a", (2,)), ("b", (1, 3)), ("p", (3,)), ("q", (1,)))}
    grids = (InputQuantization(0.5, 0, -128, 127, "a's"), InputQuantization(1.0, -128, -128, -65, "b's"))
    return Program(t, (), ("a", "b"), ("p", "q"), grids, packing.T2, "m")


def test_several_inputs_pack_in_order_each_on_its_grid_and_outputs_split() -> None:
    prog = _two_by_two()
    assert (prog.input_bytes, prog.input_offsets(), prog.output_bytes, prog.output_offsets()) == (5, (0, 2), 4, (0, 3))
    packed = prog.pack_inputs([np.array([[1.0, -1.0]]), np.array([[[0.0, 2.0, 99.0]]])])
    np.testing.assert_array_equal(packed, [[2, -2, -128, -126, -65]])  # b clipped at its own qmax
    p, q = prog.split_outputs(np.arange(8, dtype=np.int8).reshape(2, 4))
    np.testing.assert_array_equal(p, [[0, 1, 2], [4, 5, 6]])
    np.testing.assert_array_equal(q, [[3], [7]])
    with pytest.raises(UnsupportedModelError, match="model 'm' has 2 inputs \\(a, b\\); this step supports one"):
        _ = prog.input_quantization


def test_several_inputs_serialise_as_v3_and_one_as_v2(tmp_path: Path) -> None:
    prog = _two_by_two()
    prog.save(tmp_path / "multi.json")
    obj = json.loads((tmp_path / "multi.json").read_text())
    assert obj["format"] == "tinyrobust-program-v3" and "input" not in obj and obj["outputs"] == ["p", "q"]
    assert Program.load(tmp_path / "multi.json") == prog
    single = replace(prog, inputs=("a",), outputs=("p",), input_quantizations=prog.input_quantizations[:1])
    assert json.loads(single.to_json_bytes())["format"] == PROGRAM_FORMAT


def test_a_program_needs_a_grid_per_input() -> None:
    with pytest.raises(ValueError, match="2 inputs, 2 outputs, 1 grids"):
        replace(_two_by_two(), input_quantizations=(InputQuantization(1.0, 0, -128, 127, "t"),))


def test_an_int16_input_is_refused_and_an_int16_output_is_decoded() -> None:
    """Inputs are quantised on the host as int8: an int16 one is refused. An int16 output is read from its
    little-endian bytes."""
    from tinyrobust.converter.program import InputQuantization, Program, TensorSpec

    grid = InputQuantization(1.0, 0, -128, 127, "test")
    ins = {"x": TensorSpec("x", (2,), 1.0, 0, "x"), "y": TensorSpec("y", (2,), 1.0, 0, "y", bits=16)}
    with pytest.raises(ValueError, match="model inputs are int8; y is int16"):
        Program(ins, (), ("y",), ("x",), (grid,), "t2r16-v1", "m")
    program = Program(ins, (), ("x",), ("y",), (grid,), "t2r16-v1", "m")
    assert program.output_bytes == 4
    packed = np.array([[0x01, 0x02, 0xFF, 0xFF]], dtype=np.uint8).view(np.int8)
    np.testing.assert_array_equal(program.output_values(packed), [[0x0201, -1]])
