"""`tinyrobust devices` and `tinyrobust flash`: a board on the desk, over its ST-LINK USB port."""

from __future__ import annotations

from pathlib import Path

from ..errors import BadInputError
from ..targets.discovery import find_boards
from ..targets.serial_target import flash


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


def flash_command(*, export_dir: Path, mount: Path | None) -> int:
    binary = export_dir / "firmware" / "firmware.bin"
    if not binary.is_file():
        raise BadInputError(f"{binary} not found: export with --build first")
    port = None
    if mount is None:
        boards = [b for b in find_boards() if b.mount_point]
        if len(boards) != 1:
            raise BadInputError(f"found {len(boards)} board drives; name one with --mount")
        mount, port = boards[0].mount_point, boards[0].serial_port
    assert mount is not None
    flash(binary, mount, serial_port=port)
    print(f"flashed {binary} to {mount}")
    return 0
