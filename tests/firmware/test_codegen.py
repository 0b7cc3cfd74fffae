"""firmware/codegen/ (context.py, render.py, c_arrays.py): a planned Program renders to the four model
files, the same bytes every time; every op is a tr_op<i> calling its kernel; every constant array is
declared with its C type and section (tables in fast RAM) and holds the Program's values; numbers and
names become safe C text; the runner dispatch has one case per op code; the result compiles."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

import program_fixtures
from tinyrobust.converter import memplan, ops
from tinyrobust.converter.ops import lut
from tinyrobust.converter.ops.base import Op
from tinyrobust.converter.ops.lut import LutParams
from tinyrobust.converter.program import Program, TensorSpec
from tinyrobust.firmware.codegen import render_model_library
from tinyrobust.firmware.codegen.c_arrays import c_initializer, c_string
from tinyrobust.firmware.codegen.context import FAST_DATA_SECTION, WEIGHTS_SECTION, model_context
from tinyrobust.firmware.codegen.render import MODEL_TEMPLATES, RUNNER_DISPATCH, render_runner_dispatch
from tinyrobust.firmware.hostbuild import host_compiler
from tinyrobust.firmware.sources import WARNING_FLAGS, tr_nn_dir

NAME = 'codegen "test" */ model\n'


def _program() -> Program:
    """The fixture's conv → pool → fc, then a sigmoid-like table on the logits (an array in fast RAM)."""
    base = program_fixtures.small_program()
    table = np.clip(np.arange(-128, 128) // 2 + 10, -128, 127).astype(np.int8)
    tab = Op(lut.FAMILY.kernels[None], "sig", ("y",), "t", LutParams(4), {"table": table})
    tensors = {**base.tensors, "t": TensorSpec("t", (4,), 1 / 256, -128, "sig")}
    return memplan.plan(Program(tensors, (*base.ops, tab), base.inputs, ("t",), base.input_quantizations, base.packing,
                                NAME, base.notes))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Program, dict[str, str]]:
    prog = _program()
    out = tmp_path_factory.mktemp("model")
    paths = render_model_library(prog, out)
    return prog, {p.name: p.read_text() for p in paths}


def _function(c_text: str, index: int) -> str:
    """The body of `static int32_t tr_op<index>(void)`."""
    start = c_text.index(f"static int32_t tr_op{index}(void)")
    return c_text[start:c_text.index("\n}\n", start)]


def _initializer(c_text: str, symbol: str) -> tuple[str, str, int, str, list[int]]:
    """(C type, section, declared length, body values) of a `const T symbol[N] … = { … };` definition."""
    m = re.search(rf"const (\w+) {symbol}\[(\d+)\] __attribute__\(\(aligned\(4\), section\(\"([^\"]+)\"\)\)\) = "
                  r"\{(.*?)\};", c_text, re.S)
    assert m, symbol
    body = m.group(4).replace("(-2147483647 - 1)", str(-2**31))
    return m.group(1), m.group(3), int(m.group(2)), body, [int(v, 0) for v in body.replace("\n", " ").split(",")]


def test_render_writes_four_files_deterministically(rendered, tmp_path: Path) -> None:
    prog, files = rendered
    assert sorted(files) == sorted(MODEL_TEMPLATES)
    again = render_model_library(_program(), tmp_path)
    assert [p.name for p in again] == list(MODEL_TEMPLATES)
    for p in again:
        assert p.read_text() == files[p.name], p.name


def test_every_op_is_a_function_calling_its_kernel(rendered) -> None:
    prog, files = rendered
    c = files["tr_model.c"]
    assert c.count("static int32_t tr_op") == len(prog.ops) == 4
    for i, op in enumerate(prog.ops):
        body = _function(c, i)
        assert f"/* op {i}: {op.name} ({op.kernel}) */" in c
        assert f"status = {op.kernel}(" in body
        for other in {o.kernel for o in prog.ops} - {op.kernel}:
            assert f"{other}(" not in body
        assert f"status = tr_op{i}();" in c
        assert f"&tr_arena[{prog.placement.tensor_offsets[op.output]}]" in body


def test_header_states_the_model(rendered) -> None:
    prog, files = rendered
    h = files["tr_model.h"]
    pl = prog.placement
    for define, value in [("TR_MODEL_INPUT_BYTES", 16), ("TR_MODEL_OUTPUT_BYTES", 4), ("TR_MODEL_NUM_LAYERS", 4),
                          ("TR_MODEL_ARENA_BYTES", max(pl.arena_bytes, 8)), ("TR_MODEL_INPUT_ZERO_POINT", 0),
                          ("TR_MODEL_OUTPUT_ZERO_POINT", -128)]:
        assert f"#define {define} {value}\n" in h
    assert f"Program sha256: {prog.sha256().hex()}" in h
    digest = ", ".join(f"0x{b:02x}" for b in prog.sha256())
    assert f"tr_model_hash[32] = {{ {digest} }};" in files["tr_model.c"]


def test_model_name_is_made_safe_for_c(rendered) -> None:
    _, files = rendered
    assert 'tr_model_name[] = "codegen _test_ _/ model_";' in files["tr_model.c"]
    assert 'for model "codegen _test_ _/ model_". Do not edit.' in files["tr_model.h"]


def test_arrays_have_their_types_sections_and_values(rendered) -> None:
    prog, files = rendered
    c, h = files["tr_model_weights.c"], files["tr_model_weights.h"]
    expected = {
        (0, "weights"): ("uint8_t", WEIGHTS_SECTION), (0, "bias"): ("int32_t", WEIGHTS_SECTION),
        (0, "multiplier"): ("int32_t", WEIGHTS_SECTION), (0, "shift"): ("int32_t", WEIGHTS_SECTION),
        (2, "weights"): ("uint8_t", WEIGHTS_SECTION), (2, "bias"): ("int32_t", WEIGHTS_SECTION),
        (2, "multiplier"): ("int32_t", WEIGHTS_SECTION), (2, "shift"): ("int32_t", WEIGHTS_SECTION),
        (3, "table"): ("int8_t", FAST_DATA_SECTION),
    }
    assert len(re.findall(r"^const \w+ tr_op\d+_\w+\[", c, re.M)) == len(expected)  # the pool has no arrays
    for (i, name), (c_type, section) in expected.items():
        symbol = f"tr_op{i}_{name}"
        values = prog.ops[i].arrays[name]
        got_type, got_section, length, _, body = _initializer(c, symbol)
        assert (got_type, got_section, length) == (c_type, section, values.size), symbol
        np.testing.assert_array_equal(np.array(body, dtype=np.int64), values.reshape(-1).astype(np.int64))
        assert f"extern const {c_type} {symbol}[{values.size}];" in h
        assert symbol in _function(files["tr_model.c"], i)
    assert FAST_DATA_SECTION == ".tr_fast_data"


def test_model_context_needs_a_plan() -> None:
    prog = _program()
    with pytest.raises(ValueError, match="planned Program"):
        model_context(Program(prog.tensors, prog.ops, prog.inputs, prog.outputs, prog.input_quantizations,
                              prog.packing, prog.model_name))


def test_c_initializer_formats() -> None:
    assert c_initializer(np.array([-2**31, 2**31 - 1, 0, -5], np.int32)) == \
        "(-2147483647 - 1), 2147483647, 0, -5"
    assert c_initializer(np.array([-2**31], np.int64)) == "(-2147483647 - 1)"
    assert c_initializer(np.array([0, 10, 255], np.uint8)) == "0x00, 0x0a, 0xff"
    assert c_initializer(np.array([-128, 127], np.int8)) == "-128, 127"
    assert c_initializer(np.array([[1, 2], [3, 4]], np.int8)) == "1, 2, 3, 4"  # flattened in C order


def test_c_initializer_line_lengths() -> None:
    """16 bytes or 8 words per line."""
    lines = c_initializer(np.arange(40, dtype=np.uint8)).split(",\n    ")
    assert [len(line.split(", ")) for line in lines] == [16, 16, 8]
    words = c_initializer(np.arange(17, dtype=np.int32)).split(",\n    ")
    assert [len(line.split(", ")) for line in words] == [8, 8, 1]


@pytest.mark.parametrize("text,want", [
    ('a"b', "a_b"), ("back\\slash", "back_slash"), ("new\nline", "new_line"), ("*/ end", "_/ end"),
    ("tab\there", "tab_here"), ("ok-name_1.2:(x)/y", "ok-name_1.2:(x)/y"), ("%d", "_d"), ("??=", "___"),
])
def test_c_string_keeps_only_safe_characters(text: str, want: str) -> None:
    assert c_string(text) == want


def test_c_string_cannot_end_a_literal_or_a_comment() -> None:
    nasty = "".join(chr(c) for c in range(1, 128)) + "\u2028*/ /* \"\\ ??/"
    safe = c_string(nasty)
    assert len(safe) == len(nasty)
    for bad in ('"', "\\", "\n", "\r", "*/", "/*", "?", "\u2028"):
        assert bad not in safe, bad


def test_runner_dispatch_has_a_case_per_op_code(tmp_path: Path) -> None:
    path = render_runner_dispatch(tmp_path)
    assert path.name == RUNNER_DISPATCH
    text = path.read_text()
    cases = re.findall(r"^    case (\d+): /\* (\w+) \*/$", text, re.M)
    assert [(int(code), kernel) for code, kernel in cases] == [(code, k) for k, code in ops.OP_CODES.items()]
    for kernel in ops.OP_CODES:
        assert f"status = {kernel}(" in text
    (tmp_path / "again").mkdir()
    assert render_runner_dispatch(tmp_path / "again").read_text() == text


def test_rendered_model_compiles(rendered, tmp_path: Path) -> None:
    """Both model sources compile against tr_nn.h with the project's warnings-as-errors flags."""
    _, files = rendered
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    for source in ("tr_model.c", "tr_model_weights.c"):
        cmd = [host_compiler(), *WARNING_FLAGS, "-O0", f"-I{tr_nn_dir()}", f"-I{tmp_path}", "-c",
               str(tmp_path / source), "-o", str(tmp_path / f"{source}.o")]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
