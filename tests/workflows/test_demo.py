"""The demo's folder and the map-file reading behind its model-only memory (fast, no build).

The demo end to end (QEMU) is tests/test_cli.py::test_demo_runs_end_to_end; from an installed wheel,
tests/test_install.py."""

from __future__ import annotations

import numpy as np
import pytest

from tinyrobust.cli import main
from tinyrobust.firmware.boards import load_board
from tinyrobust.firmware.mapfile import is_model_object, pieces
from tinyrobust.resources import example_file
from tinyrobust.workflows.demo import digits_split

MAP = """\
Archive member included to satisfy reference by file (symbol)
 .text.tr_add_s8  0x00000000  0x20 obj/000_tr_nn_tr_add_s8.o

Linker script and memory map

.text           0x08000000      0x300
 *(.text .text.*)
 .text.tr_conv_c12_plane3x3.constprop.0.isra.0
                0x08000000      0x200 obj/004_tr_nn_tr_convolve_s8_t2.o
                0x08000000                tr_conv_c12_plane3x3
 .text.main     0x08000200       0x80 obj/021_app_main.o
 *fill*         0x08000280       0x80
.tr_fast_data   0x20000010      0x800 load address 0x080080fc
 .tr_fast_data.tr_t2_pair_lut
                0x20000010      0x800 obj/015_tr_nn_tr_nn_luts.o
.tr_arena       0x200020e0      0xc90 load address 0x080088fc
 .tr_arena      0x200020e0      0xc90 obj/019_model_tr_model.o
.debug_loclists
                0x00000000      0x999
 .debug_loclists
                0x00000000      0x999 obj/019_model_tr_model.o
"""


def test_map_pieces_name_their_objects_and_load_addresses():
    found = {(p.output_section, p.obj): p for p in pieces(MAP)}
    # The discarded-sections part before the memory map is not read; fill and symbols are no pieces.
    assert set(found) == {(".text", "obj/004_tr_nn_tr_convolve_s8_t2.o"), (".text", "obj/021_app_main.o"),
                          (".tr_fast_data", "obj/015_tr_nn_tr_nn_luts.o"), (".tr_arena", "obj/019_model_tr_model.o"),
                          (".debug_loclists", "obj/019_model_tr_model.o")}
    lut = found[(".tr_fast_data", "obj/015_tr_nn_tr_nn_luts.o")]
    assert (lut.address, lut.size, lut.load_address) == (0x20000010, 0x800, 0x080080FC)
    assert found[(".text", "obj/021_app_main.o")].load_address is None


def test_model_objects_are_the_library_and_kernels_only():
    assert is_model_object("obj/019_model_tr_model.o") and is_model_object("obj/004_tr_nn_tr_convolve_s8_t2.o")
    for firmware in ("obj/022_app_tr_app.o", "obj/028_board_board.o", "libc_nano.a(lib_a-memcpy.o)"):
        assert not is_model_object(firmware)
    assert load_board("nucleo_h743zi").region_at(0x20000010).name == "DTCM"


def test_shipped_example_data_is_the_demo_split():
    split = digits_split()
    shipped = (("digits_cal.npz", split.x_train, split.y_train), ("digits_test.npz", split.x_test, split.y_test))
    for name, x, y in shipped:
        path = example_file(name)
        assert path is not None, f"examples/{name} is not shipped"
        with np.load(path) as f:
            assert f["x"].dtype == np.float32
            np.testing.assert_array_equal(f["x"], x)
            np.testing.assert_array_equal(f["y"], y)


@pytest.mark.parametrize("content", ["notes.txt", "sub/"])
def test_demo_refuses_a_folder_that_is_not_its_own(tmp_path, capsys, content):
    folder = tmp_path / "mine"
    (folder / content).parent.mkdir(parents=True, exist_ok=True)
    if not content.endswith("/"):
        (folder / content).write_text("keep me")
    else:
        (folder / content).mkdir()
    before = sorted(p.name for p in folder.rglob("*"))
    assert main(["demo", "-o", str(folder), "--target", "reference"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a tinyrobust demo folder" in err
    assert sorted(p.name for p in folder.rglob("*")) == before


def test_demo_help_shows_the_default_folder(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    assert "tinyrobust-demo" in capsys.readouterr().out
