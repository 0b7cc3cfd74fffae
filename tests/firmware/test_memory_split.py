"""firmware/memory_split.py: what fills each region of a linked image. On a real NUCLEO build of the
fixture model the parts of every region sum to the bytes the ELF uses there, the weights are exactly
the Program's packed arrays, the arena and stack their planned sizes; the map parser reads wrapped
lines, COMMON and fill; and the sum check fires on a map or usage that does not belong to the ELF."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from program_fixtures import small_program
from tinyrobust.errors import BuildError
from tinyrobust.firmware.boards import load_board
from tinyrobust.firmware.crossbuild import build_firmware, read_section_usage
from tinyrobust.firmware.memory_split import (
    ARENA,
    CATEGORIES,
    CODE,
    STACK,
    WEIGHTS,
    check_split,
    parse_map,
    split_regions,
)
from tinyrobust.workflows.export import export_program

BOARD = load_board("nucleo_h743zi")
PROGRAM = small_program()

MAP = """\
Memory Configuration
.text  junk before the memory map is ignored   0x1 0x2 obj/000_app_x.o

Linker script and memory map

.text           0x08000000      0x40
 *(.text .text.*)
 .text.a_function_with_a_long_name
                0x08000000       0x20 obj/004_tr_nn_tr_convolve_s8_t2.o
                0x08000000                tr_convolve_s8_t2
 .text.short    0x08000020       0x18 /usr/lib/libc_nano.a(libc_a-memcpy.o)
 *fill*         0x08000038        0x8
 .text.empty    0x08000040        0x0 obj/021_app_main.o

.bss            0x20000000      0x30 load address 0x08000040
 .bss.s_parser  0x20000000       0x20 obj/022_app_tr_app.o
 COMMON         0x20000020       0x10 obj/028_board_board.o

.debug_info     0x00000000      0x100
 .debug_info    0x00000000       0x80 obj/022_app_tr_app.o
"""


def test_parse_map_reads_wrapped_lines_common_and_skips_fill_and_empty() -> None:
    entries = parse_map(MAP)
    got = [(e.output, e.name, e.address, e.size, e.group) for e in entries]
    assert got == [
        (".text", ".text.a_function_with_a_long_name", 0x08000000, 0x20, "tr_nn"),
        (".text", ".text.short", 0x08000020, 0x18, None),
        (".bss", ".bss.s_parser", 0x20000000, 0x20, "app"),
        (".bss", "COMMON", 0x20000020, 0x10, "board"),
        (".debug_info", ".debug_info", 0, 0x80, "app"),  # kept here, never counted: not an allocated section
    ]


def test_a_file_that_is_not_a_map_is_refused() -> None:
    with pytest.raises(BuildError, match="not a GNU ld map"):
        parse_map("hello\n")


def test_check_split_is_quiet_when_the_parts_add_up() -> None:
    check_split({"FLASH": {CODE: 90, WEIGHTS: 10}, "DTCM": {STACK: 5}}, {"FLASH": 100, "DTCM": 5, "ITCM": 0})


@pytest.mark.parametrize("split,usage,named", [
    ({"FLASH": {CODE: 90, WEIGHTS: 9}}, {"FLASH": 100}, "FLASH: parts sum to 99 bytes, the ELF uses 100"),
    ({"FLASH": {CODE: 100}}, {"FLASH": 100, "DTCM": 8}, "DTCM: parts sum to 0 bytes, the ELF uses 8"),
    ({"FLASH": {CODE: 110, WEIGHTS: -10}}, {"FLASH": 100}, "negative: weights"),
])
def test_check_split_fires_on_a_mismatch(split: dict, usage: dict, named: str) -> None:
    with pytest.raises(BuildError, match="does not add up") as err:
        check_split(split, usage)
    assert named in str(err.value)


needs_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                               reason="arm-none-eabi-gcc not installed (gcc-arm-none-eabi libnewlib-arm-none-eabi)")


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("split") / "export"
    export_program(PROGRAM, BOARD.name, out, build=True)
    return out


@needs_gcc
def test_parts_of_every_region_sum_to_its_used_bytes(export_dir: Path) -> None:
    fw = export_dir / "firmware"
    split = split_regions(fw / "firmware.elf", fw / "firmware.map", BOARD)
    usage = read_section_usage(fw / "firmware.elf", BOARD)
    check_split(split, usage)
    for region, parts in split.items():
        assert tuple(parts) == CATEGORIES
        assert sum(parts.values()) == usage[region] > 0, region
    weights = sum(op.arrays["weights"].nbytes for op in PROGRAM.ops if "weights" in op.arrays)
    assert split["FLASH"][WEIGHTS] == weights  # exactly the packed arrays, not their bias/requant neighbours
    arena_region = json.loads((export_dir / "manifest.json").read_text())["arena_region"]
    assert split[arena_region][ARENA] >= PROGRAM.placement.arena_bytes
    assert split[arena_region][ARENA] - PROGRAM.placement.arena_bytes < 16  # alignment only
    assert split[BOARD.placement.stack][STACK] == BOARD.placement.stack_bytes
    assert split["FLASH"][CODE] > 4096
    assert split["DTCM"]["protocol buffers"] > 4096  # the 4 KB frame buffer at least


@needs_gcc
def test_a_map_from_another_image_is_refused(export_dir: Path, tmp_path: Path) -> None:
    fw = export_dir / "firmware"
    text = (fw / "firmware.map").read_text()
    doubled = text.replace(" .bss.s_parser", " .bss.s_parser_twice  0x20000018     0x1024 obj/022_app_tr_app.o\n"
                                             " .bss.s_parser", 1)
    assert doubled != text
    (tmp_path / "other.map").write_text(doubled)
    with pytest.raises(BuildError, match="more in .bss than"):
        split_regions(fw / "firmware.elf", tmp_path / "other.map", BOARD)


@needs_gcc
def test_the_export_report_carries_the_split(export_dir: Path) -> None:
    report = json.loads((export_dir / "report.json").read_text())
    for name, r in report["budget"]["linked"]["regions"].items():
        assert sum(r["contents"].values()) == r["used"], name
    md = (export_dir / "report.md").read_text()
    assert "### What fills each region (linked ELF, bytes)" in md
    assert "| region | weights | model tables | code | arena | stack | protocol buffers | other | used |" in md


@needs_gcc
@pytest.mark.parametrize("board_name,arena_region", [("nucleo_h743zi", "AXI_SRAM"), ("qemu_mps2_an500", "DTCM")])
def test_other_boards_and_arena_regions_add_up(export_dir: Path, tmp_path: Path, board_name: str,
                                               arena_region: str) -> None:
    board = load_board(board_name)
    fw = build_firmware(export_dir / "model", board, tmp_path / "fw", arena_region=arena_region)
    split = split_regions(fw.elf, fw.map, board)
    check_split(split, read_section_usage(fw.elf, board))
    assert split[arena_region][ARENA] >= PROGRAM.placement.arena_bytes
    assert sum(parts[ARENA] for parts in split.values()) == split[arena_region][ARENA]
