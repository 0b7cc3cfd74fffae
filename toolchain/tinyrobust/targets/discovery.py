"""Finding a board on the desk: its ST-LINK's virtual COM port by USB IDs, its drive, mbed-tools' view.

Three sources, merged by the ST-LINK's USB serial number:

- pyserial's port list, filtered by the ST-LINK USB IDs (vendor 0x0483). This needs no mounted drive
  and no board database, so it works on a headless Linux box or a CI runner.
- mounted ST-LINK drives, recognised by the MBED.HTM / DETAILS.TXT files the ST-LINK firmware puts on
  them (only needed to flash by copying).
- mbed-tools, which also names the board from its product code; optional, because it only counts a
  board whose drive is mounted and its ecosystem is no longer maintained.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ST_VID = 0x0483

# ST-LINK product IDs that carry a virtual COM port (OpenOCD's interface/stlink.cfg lists every
# ST-LINK PID; V1 0x3744, V2 0x3748 and the V3 bootloader 0x374D have no VCP and are left out).
STLINK_VCP_PIDS: dict[int, str] = {
    0x374B: "ST-LINK/V2-1",
    0x3752: "ST-LINK/V2-1",  # without the mass-storage drive
    0x374E: "STLINK-V3E",
    0x374F: "STLINK-V3",
    0x3753: "STLINK-V3",  # two VCPs
    0x3754: "STLINK-V3",  # without the mass-storage drive
}

# mbed product codes (first four characters of the code in MBED.HTM) of the boards tinyrobust builds for,
# as in mbed-tools' board database.
PRODUCT_CODES: dict[str, str] = {"0813": "NUCLEO_H743ZI", "0836": "NUCLEO_H743ZI2"}

DRIVE_MARKERS = ("MBED.HTM", "DETAILS.TXT")


@dataclass(frozen=True)
class BoardInfo:
    board: str  # e.g. "NUCLEO_H743ZI2"; "" when no source could name it
    serial_port: str | None
    mount_point: Path | None
    serial_number: str  # the ST-LINK's USB serial number ("" when unknown)
    identified: bool  # the board type is known (mbed-tools or the drive's product code)
    probe: str = ""  # "ST-LINK/V2-1", "STLINK-V3E", ... when found by USB IDs
    sources: tuple[str, ...] = ()  # which of "usb", "drive", "mbed-tools" saw it


def stlink_ports(comports: Callable[[], Iterable[Any]] | None = None) -> list[BoardInfo]:
    """Serial ports of ST-LINK probes with a virtual COM port, by USB vendor/product ID."""
    if comports is None:
        from serial.tools.list_ports import comports
    found = []
    for port in comports():
        if port.vid != ST_VID or port.pid not in STLINK_VCP_PIDS:
            continue
        found.append(BoardInfo(board="", serial_port=port.device, mount_point=None,
                               serial_number=port.serial_number or "", identified=False,
                               probe=STLINK_VCP_PIDS[port.pid], sources=("usb",)))
    return sorted(found, key=lambda b: b.serial_port or "")


def _mounted_dirs(proc_mounts: Path = Path("/proc/mounts")) -> list[Path]:
    """Mount points from /proc/mounts (Linux; elsewhere none, and mbed-tools or --mount is the way)."""
    try:
        text = proc_mounts.read_text()
    except OSError:
        return []
    # Fields are space-separated with spaces inside a path written as \040 (octal escapes).
    return [Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[1]))
            for line in text.splitlines() if len(line.split()) > 1]


def product_code(mount_point: Path) -> str | None:
    """The mbed product code in the drive's MBED.HTM (its redirect URL carries ?code=PPPP...)."""
    try:
        text = (mount_point / "MBED.HTM").read_text(errors="replace")
    except OSError:
        return None
    m = re.search(r"code=([0-9A-Fa-f]{4})", text)
    return m.group(1) if m else None


def stlink_drives(candidates: Iterable[Path] | None = None) -> list[BoardInfo]:
    """Mounted ST-LINK drives: directories holding the ST-LINK firmware's MBED.HTM or DETAILS.TXT."""
    found = []
    for mount in (_mounted_dirs() if candidates is None else candidates):
        try:
            if not any((mount / marker).is_file() for marker in DRIVE_MARKERS):
                continue
        except OSError:  # an unreadable mount (permissions, a dead network share) is not a board
            continue
        code = product_code(mount)
        board = PRODUCT_CODES.get(code or "", "")
        found.append(BoardInfo(board=board, serial_port=None, mount_point=mount, serial_number="",
                               identified=bool(board), sources=("drive",)))
    return found


def mbed_boards() -> list[BoardInfo]:
    """Boards mbed-tools detects (identified first); empty when mbed-tools is not installed."""
    try:
        from mbed_tools.devices import get_connected_devices
    except ImportError:
        return []
    try:
        connected = get_connected_devices()
    except Exception:  # its platform probing failing must not hide a board pyserial found
        return []
    boards = []
    for identified, devices in ((True, connected.identified_devices), (False, connected.unidentified_devices)):
        for dev in devices:
            boards.append(BoardInfo(board=dev.mbed_board.board_type, serial_port=dev.serial_port,
                                    mount_point=dev.mount_points[0] if dev.mount_points else None,
                                    serial_number=dev.serial_number, identified=identified,
                                    sources=("mbed-tools",)))
    return boards


def _merge(into: BoardInfo, other: BoardInfo) -> BoardInfo:
    return replace(
        into,
        board=into.board or other.board,
        serial_port=into.serial_port or other.serial_port,
        mount_point=into.mount_point or other.mount_point,
        serial_number=into.serial_number or other.serial_number,
        identified=into.identified or other.identified,
        probe=into.probe or other.probe,
        sources=into.sources + tuple(s for s in other.sources if s not in into.sources),
    )


def merge_sources(usb: Sequence[BoardInfo], mbed: Sequence[BoardInfo], drives: Sequence[BoardInfo]) -> list[BoardInfo]:
    """One entry per board: mbed-tools' entries join the USB port with the same serial number (or port);
    a drive joins the board mbed-tools saw it on, or the only board when there is exactly one."""
    boards = list(usb)
    for m in mbed:
        match = next((i for i, b in enumerate(boards) if (m.serial_number and b.serial_number == m.serial_number)
                      or (m.serial_port and b.serial_port == m.serial_port)), None)
        if match is None:
            boards.append(m)
        else:
            boards[match] = _merge(boards[match], m)
    known_mounts = {b.mount_point for b in boards if b.mount_point}
    loose = [d for d in drives if d.mount_point not in known_mounts]
    if len(loose) == 1 and len(boards) == 1 and boards[0].mount_point is None:
        boards[0] = _merge(boards[0], loose[0])
    else:  # drives that cannot be told apart from the USB side are listed on their own
        boards.extend(loose)
    return boards


def find_boards() -> list[BoardInfo]:
    """Connected boards from every source, identified ones first."""
    boards = merge_sources(stlink_ports(), mbed_boards(), stlink_drives())
    return sorted(boards, key=lambda b: (not b.identified, b.serial_port or "", str(b.mount_point or "")))
