"""boards/<name>/board.toml: loading, the NUCLEO-H743ZI memory map, and the QEMU board's sizes."""

from __future__ import annotations

import pytest

from tinyrobust.errors import BoardError
from tinyrobust.firmware.boards import available_boards, load_board

KB = 1024
MB = 1024 * KB

# RM0433 / DESIGN.md "Boards, budget, targets": name -> (origin, size, kind).
NUCLEO_MAP = {
    "FLASH": (0x08000000, 2 * MB, "flash"),
    "ITCM": (0x00000000, 64 * KB, "ram"),
    "DTCM": (0x20000000, 128 * KB, "ram"),
    "AXI_SRAM": (0x24000000, 512 * KB, "ram"),
    "SRAM123": (0x30000000, 288 * KB, "ram"),
    "SRAM4": (0x38000000, 64 * KB, "ram"),
}


def test_available_boards() -> None:
    assert {"nucleo_h743zi", "qemu_mps2_an500"} <= set(available_boards())


def test_unknown_board_lists_available() -> None:
    with pytest.raises(BoardError, match="available boards: .*nucleo_h743zi"):
        load_board("no_such_board")


def test_nucleo_regions_match_datasheet() -> None:
    b = load_board("nucleo_h743zi")
    got = {r.name: (r.origin, r.length, r.kind) for r in b.regions}
    assert got == NUCLEO_MAP
    assert b.core == "cortex-m7"
    assert b.cflags == ("-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard")
    assert b.console.peripheral == "USART3"
    assert (b.console.tx, b.console.rx, b.console.af) == ("PD8", "PD9", 7)
    assert b.console.baud == 115200
    assert (b.counter.kind, b.counter.code, b.counter.scale) == ("dwt", 0, 1)
    assert dict(b.clock.values)["hse_hz"] == 8_000_000 and b.clock.core_hz == 480_000_000
    p = b.placement
    assert (p.code, p.weights, p.stack, p.fast_data) == ("FLASH", "FLASH", "DTCM", "DTCM")
    assert p.arena == ("DTCM", "AXI_SRAM")
    # "1 MB RAM" is the sum of the RAM regions; the largest contiguous block is 512 KB.
    ram = [r.length for r in b.regions if r.kind == "ram"]
    assert sum(ram) == 1056 * KB and max(ram) == 512 * KB
    assert b.region_at(0x24000010).name == "AXI_SRAM" and b.region_at(0x40000000) is None


def test_qemu_board_keeps_nucleo_sizes_inside_qemu_ram() -> None:
    q = load_board("qemu_mps2_an500")
    n = load_board(q.mirrors or "")
    assert n.name == "nucleo_h743zi"
    assert {r.name: (r.length, r.kind) for r in q.regions} == {r.name: (r.length, r.kind) for r in n.regions}
    assert q.placement == n.placement
    assert q.cflags == n.cflags
    # QEMU 7.2 mps2-an500 RAM (info mtree): ssram1 4 MB at 0x0, ssram23 4 MB at 0x20000000.
    qemu_ram = [(0x00000000, 4 * MB), (0x20000000, 4 * MB)]
    for r in q.regions:
        assert any(lo <= r.origin and r.end <= lo + size for lo, size in qemu_ram), r.name
    assert q.region("FLASH").origin == 0  # where QEMU's -kernel loads the vector table
    assert (q.counter.code, q.counter.scale) == (1, 40)
    assert q.emulator is not None and q.emulator.machine == "mps2-an500" and "shift=0" in q.emulator.args


def test_board_sources_exist() -> None:
    for name in available_boards():
        b = load_board(name)
        names = {p.name for p in b.c_sources}
        assert {"startup.c", "board.c"} <= names, name
