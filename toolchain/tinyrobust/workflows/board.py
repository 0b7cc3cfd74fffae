"""`tinyrobust devices` and `tinyrobust flash`: a board on the desk, over its ST-LINK USB port."""

from __future__ import annotations

from pathlib import Path

from ..errors import BadInputError
from ..firmware.boards import load_board
from ..firmware.project import load_export
from ..targets.discovery import BoardInfo, find_boards, stlink_ports
from ..targets.flashing import flash_drive, flash_openocd


def devices_command() -> int:
    boards = find_boards()
    if not boards:
        print("no boards found (no ST-LINK virtual COM port, drive or mbed-tools device; "
              "is the NUCLEO connected over its ST-LINK USB port?)")
        return 0
    for b in boards:
        print(f"{b.board or 'unknown board'}\tport {b.serial_port or '-'}\tdrive {b.mount_point or '-'}"
              f"\t{b.probe or '-'}\tserial {b.serial_number or '-'}\tseen by {', '.join(b.sources)}")
    return 0


def _one_drive(boards: list[BoardInfo]) -> BoardInfo:
    drives = [b for b in boards if b.mount_point]
    if not drives:
        raise BadInputError("no ST-LINK drive found (is the board connected and its drive mounted?); "
                            "name it with --mount, or flash with --via openocd")
    if len(drives) > 1:
        listed = ", ".join(str(b.mount_point) for b in drives)
        raise BadInputError(f"found {len(drives)} ST-LINK drives ({listed}); name one with --mount")
    return drives[0]


def flash_command(*, export_dir: Path, via: str, mount: Path | None = None, probe: str | None = None) -> int:
    """Program the board with the export's firmware: OpenOCD (the .elf) or a copy to its drive (the .bin)."""
    firmware = export_dir / "firmware"
    if via == "openocd":
        if mount is not None:
            raise BadInputError("--mount is for --via drive; OpenOCD programs over the ST-LINK's debug port")
        board = load_board(load_export(export_dir).manifest["board"])
        if not board.openocd_configs:
            raise BadInputError(f"board {board.name} has no OpenOCD configuration ([programmer] in its board.toml)")
        if probe is None:  # with several ST-LINKs, OpenOCD would take whichever it opens first
            probes = sorted({b.serial_number for b in stlink_ports() if b.serial_number})
            if len(probes) > 1:
                raise BadInputError(f"found {len(probes)} ST-LINK probes ({', '.join(probes)}); name one with --probe")
        elf = firmware / "firmware.elf"
        if not elf.is_file():
            raise BadInputError(f"{elf} not found: export with --build first")
        flash_openocd(elf, board.openocd_configs, adapter_serial=probe)
        print(f"flashed {elf} with OpenOCD ({', '.join(board.openocd_configs)}), verified, and reset the board")
        return 0
    binary = firmware / "firmware.bin"
    if not binary.is_file():
        raise BadInputError(f"{binary} not found: export with --build first")
    port = None
    if mount is None:
        boards = find_boards()
        if probe is not None:
            boards = [b for b in boards if b.serial_number == probe]
        found = _one_drive(boards)
        mount, port = found.mount_point, found.serial_port
    assert mount is not None
    flash_drive(binary, mount, serial_port=port)
    print(f"flashed {binary} to {mount}")
    return 0
