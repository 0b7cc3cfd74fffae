"""`tinyrobust export --name PREFIX`: every C name and header guard of the generated model starts with
the prefix, so two models link into one firmware. Checked in the text (no default name is left), on
the command line (a bad prefix: one error line, nothing written), and on QEMU: one image holding
net_a and net_b, each answering bit for bit what its own numpy reference computes."""

from __future__ import annotations

import re
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile

from program_fixtures import small_program
from tinyrobust.cli import main
from tinyrobust.converter.reference import Reference
from tinyrobust.errors import BuildError, ExportError
from tinyrobust.firmware.boards import load_board
from tinyrobust.firmware.codegen import render_model_library
from tinyrobust.firmware.codegen.c_names import library_prefix, prefix_problem
from tinyrobust.firmware.crossbuild import build_firmware, build_image, evaluation_sources
from tinyrobust.firmware.sources import app_dir, tr_nn_dir
from tinyrobust.targets.host import HostTarget
from tinyrobust.targets.qemu import QEMU_BOARD
from tinyrobust.workflows.export import export_program

sys.path.insert(0, str(Path(__file__).parent))
from test_crossbuild import parse_hello, qemu, section  # noqa: E402  (its inline QEMU client)

TWO_MODELS = Path(__file__).parent / "two_models"
# Any tr_/TR_ name but a linker section's (.tr_arena): the kernel library's are taken out below.
DEFAULT_NAME = re.compile(r"(?<![.\w])tr_\w*|(?<!\w)TR_\w*")
KERNEL_NAMES = {n for h in tr_nn_dir().glob("*.h") for n in DEFAULT_NAME.findall(h.read_text())}
NEEDS_ARM = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                               reason="arm-none-eabi-gcc not installed (gcc-arm-none-eabi libnewlib-arm-none-eabi)")


@pytest.mark.parametrize("prefix", ["kws", "net_a", "m2", "tr"])
def test_good_prefixes_are_accepted(prefix: str) -> None:
    assert prefix_problem(prefix) is None


@pytest.mark.parametrize("prefix", ["Kws", "2net", "net-a", "tr_x", "kws_", "", "a" * 33, "kws model"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    assert prefix_problem(prefix)


def test_prefix_starts_every_name_and_guard(tmp_path: Path) -> None:
    paths = render_model_library(small_program(), tmp_path, "kws")
    assert [p.name for p in paths] == ["kws_model.h", "kws_model.c", "kws_model_weights.h", "kws_model_weights.c"]
    text = {p.name: p.read_text() for p in paths}
    for name, body in text.items():
        assert set(DEFAULT_NAME.findall(body)) - KERNEL_NAMES == set(), name
    assert "#ifndef KWS_MODEL_H\n#define KWS_MODEL_H" in text["kws_model.h"]
    assert "#ifndef KWS_MODEL_WEIGHTS_H\n#define KWS_MODEL_WEIGHTS_H" in text["kws_model_weights.h"]
    assert "int32_t kws_model_run(const int8_t *input, int8_t *output);" in text["kws_model.h"]
    assert "static int8_t kws_arena[KWS_MODEL_ARENA_BYTES]" in text["kws_model.c"]
    assert 'section(".tr_arena")' in text["kws_model.c"]  # one arena section for every model of a firmware
    assert "const uint8_t kws_op0_weights[" in text["kws_model_weights.c"]
    assert library_prefix(tmp_path) == "kws"
    # The default prefix is the evaluation app's names: unchanged.
    (tmp_path / "default").mkdir()
    default = render_model_library(small_program(), tmp_path / "default")
    assert default[0].name == "tr_model.h" and "#define TR_MODEL_INPUT_BYTES 16" in default[0].read_text()


def test_a_folder_without_exactly_one_library_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="found no generated model library"):
        library_prefix(tmp_path)
    render_model_library(small_program(), tmp_path, "kws")
    assert library_prefix(tmp_path) == "kws"
    render_model_library(small_program(), tmp_path, "vww")
    with pytest.raises(BuildError, match=r"found 2 model libraries \(kws, vww\)"):
        library_prefix(tmp_path)


def test_export_refuses_a_bad_prefix_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["export", str(tmp_path / "model.h5"), "--name", "Net-A", "-o", str(tmp_path / "out")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument -n/--name: 'Net-A' is not a C name prefix" in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(ExportError, match="tr_x"):
        export_program(small_program(), QEMU_BOARD, tmp_path / "out", prefix="tr_x")
    assert not (tmp_path / "out").exists()


def test_host_target_runs_a_named_library(tmp_path: Path) -> None:
    program = small_program()
    render_model_library(program, tmp_path, "kws")
    target = HostTarget(tmp_path, tmp_path / "build")
    x = np.random.default_rng(1).integers(-128, 128, (6, 4, 4, 1)).astype(np.int8)
    try:
        assert target.hello.model_hash == program.sha256() and target.hello.layers == 3
        np.testing.assert_array_equal(target.infer_batch(x)[0], Reference(program).run(x))
        assert target.layer_output(x[0], 1) == Reference(program).run_layers(x[0])[1].tobytes()
    finally:
        target.close()


def output(reference: Reference, x: np.ndarray) -> bytes:
    """The numpy reference's int8 output for one input."""
    return reference.run_layers(x)[-1].tobytes()


def _symbols(elf: Path) -> dict[str, int]:
    with elf.open("rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        return {s.name: s["st_value"] for s in symtab.iter_symbols() if s.name}


@NEEDS_ARM
@pytest.mark.qemu
@pytest.mark.slow
def test_two_models_in_one_image_both_bit_exact_on_qemu(tmp_path: Path) -> None:
    board = load_board(QEMU_BOARD)
    a, b = small_program(seed=7), small_program(seed=8)  # same shapes: every default name would collide
    # net_a through the whole export path, its own evaluation firmware built too (via the binding tr_model.h).
    export_a = export_program(a, QEMU_BOARD, tmp_path / "net_a", build=True, prefix="net_a").out_dir
    export_b = export_program(b, QEMU_BOARD, tmp_path / "net_b", prefix="net_b").out_dir
    assert (export_a / "firmware" / "app" / "tr_model.h").is_file()
    assert (export_a / "firmware" / "firmware.elf").is_file()
    assert (export_a / "model" / "net_a_model.c").is_file() and not (export_a / "model" / "tr_model.c").exists()

    # One image: both libraries, the pair binding (two_models/) in front of the unchanged app.
    model_a, model_b = export_a / "model", export_b / "model"
    pair = [s for s in evaluation_sources(model_a, board) if s[0] != "model"]
    tr_nn_count = sum(1 for g, _ in pair if g == "tr_nn")
    model_sources = [("model", p) for d in (model_a, model_b) for p in sorted(d.glob("*.c"))]
    sources = [*pair[:tr_nn_count], *model_sources, ("pair", TWO_MODELS / "two_models.c"), *pair[tr_nn_count:]]
    fw = build_image(sources, [TWO_MODELS, model_a, model_b, app_dir(), tr_nn_dir()], board, tmp_path / "pair",
                     arena_region="DTCM")
    symbols = _symbols(fw.elf)
    for p in ("net_a", "net_b"):
        for name in ("model_run", "model_run_until", "model_layer_output", "op0_weights", "op2_weights", "arena"):
            assert f"{p}_{name}" in symbols, f"{p}_{name}"
    assert "net_a_model_hash" in symbols  # net_b's is not referenced: --gc-sections drops it
    assert symbols["net_a_arena"] != symbols["net_b_arena"]
    assert fw.section_sizes[".tr_arena"] >= a.placement.arena_bytes + b.placement.arena_bytes

    ref_a, ref_b = Reference(a), Reference(b)
    rng = np.random.default_rng(0)
    inputs = [rng.integers(-128, 128, 16, dtype=np.int8) for _ in range(8)]
    with qemu(fw.elf) as link:
        rtype, body = link.request(0x01, 1)
        hello = parse_hello(body)
        assert (rtype, hello["input"], hello["output"], hello["layers"]) == (0x81, 32, 8, 6)
        differ = 0
        for seq, (xa, xb) in enumerate(zip(inputs, inputs[::-1], strict=True), start=2):
            rtype, body = link.request(0x02, seq, section(xa.tobytes() + xb.tobytes()))
            assert rtype == 0x82, body
            got = body[12:]
            want_a, want_b = output(ref_a, xa), output(ref_b, xb)
            assert got[:4] == want_a, f"net_a on input {seq - 2}"
            assert got[4:] == want_b, f"net_b on input {seq - 2}"
            differ += output(ref_a, xb) != want_b  # the two models really compute different things
        assert differ > 0
        # Per layer too: layer 4 of the pair is net_b's pool, on net_b's input.
        xa, xb = inputs[0], inputs[1]
        rtype, body = link.request(0x04, 20, struct.pack("<HIH", 4, 0, 100) + section(xa.tobytes() + xb.tobytes()))
        assert rtype == 0x84 and body[4:] == ref_b.run_layers(xb)[1].tobytes()

    # net_a's own evaluation firmware (export --name net_a --build) serves net_a; validate's build of it
    # (from the model folder, the binding generated on the side) is the same image.
    again = build_firmware(model_a, board, tmp_path / "validate_build", arena_region="DTCM")
    assert again.bin.read_bytes() == (export_a / "firmware" / "firmware.bin").read_bytes()
    with qemu(export_a / "firmware" / "firmware.elf") as link:
        hello = parse_hello(link.request(0x01, 1)[1])
        assert hello["hash"] == a.sha256() and hello["input"] == 16
        assert link.request(0x02, 2, section(inputs[0].tobytes()))[1][12:] == output(ref_a, inputs[0])
