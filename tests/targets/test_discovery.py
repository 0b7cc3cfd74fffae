"""Board discovery without a board: pyserial's port list faked with real ListPortInfo records, ST-LINK
drives faked as folders holding MBED.HTM / DETAILS.TXT, mbed-tools faked with its own Device records."""

from __future__ import annotations

import sys
from pathlib import Path

import mbed_tools.devices
import pytest
import serial.tools.list_ports
from mbed_tools.devices.device import ConnectedDevices, Device
from mbed_tools.targets import Board
from serial.tools.list_ports_common import ListPortInfo

from tinyrobust.cli import main
from tinyrobust.targets import discovery
from tinyrobust.targets.discovery import BoardInfo, find_boards, merge_sources, stlink_drives, stlink_ports

NUCLEO_SERIAL = "0670FF494849887767113239"


def _port(device: str, vid: int | None, pid: int | None, serial_number: str | None = None) -> ListPortInfo:
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.serial_number = vid, pid, serial_number
    return info


PORTS = [
    _port("/dev/ttyS0", None, None),  # a motherboard UART: no USB IDs
    _port("/dev/ttyUSB0", 0x0403, 0x6001, "A50285BI"),  # an FTDI cable
    _port("/dev/ttyACM1", 0x0483, 0x374E, "003A00213234510B33353533"),  # NUCLEO-H743ZI2 (STLINK-V3E)
    _port("/dev/ttyACM0", 0x0483, 0x374B, NUCLEO_SERIAL),  # NUCLEO-H743ZI (ST-LINK/V2-1)
    _port("/dev/ttyACM2", 0x0483, 0x5740, "STM32VCP"),  # an STM32 running its own USB CDC, not an ST-LINK
]


def _drive(root: Path, name: str, **files: str) -> Path:
    drive = root / name
    drive.mkdir()
    for filename, text in files.items():
        (drive / filename).write_text(text)
    return drive


MBED_HTM = ('<!-- mbed Microcontroller Website and Authentication Shortcut -->\n<html><head>'
            f'<meta http-equiv="refresh" content="0; URL=http://mbed.org/device/?code=08130221{NUCLEO_SERIAL}"/>'
            '</head></html>\n')


@pytest.fixture
def no_mbed_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mbed_tools.devices", None)  # importing it raises ImportError


def test_stlink_ports_are_found_by_usb_ids_only() -> None:
    found = stlink_ports(lambda: PORTS)
    assert [(b.serial_port, b.probe, b.serial_number) for b in found] == [
        ("/dev/ttyACM0", "ST-LINK/V2-1", NUCLEO_SERIAL),
        ("/dev/ttyACM1", "STLINK-V3E", "003A00213234510B33353533"),
    ]
    assert all(b.mount_point is None and not b.identified and b.sources == ("usb",) for b in found)
    # No ST-LINK at all, or an ST-LINK/V2 (0x3748, no virtual COM port): nothing.
    assert stlink_ports(lambda: PORTS[:2] + [_port("/dev/ttyACM7", 0x0483, 0x3748)]) == []


def test_stlink_drives_are_recognised_by_their_files(tmp_path: Path) -> None:
    h743 = _drive(tmp_path, "NODE_H743ZI", **{"MBED.HTM": MBED_HTM, "DETAILS.TXT": "Version: 0221\n"})
    other = _drive(tmp_path, "NOD_OTHER", **{"DETAILS.TXT": "Version: V3J7M2\n"})
    usb_stick = _drive(tmp_path, "USBSTICK", **{"notes.txt": "hello"})
    found = stlink_drives([h743, other, usb_stick, tmp_path / "unmounted"])
    assert [(b.mount_point, b.board, b.identified) for b in found] == [
        (h743, "NUCLEO_H743ZI", True), (other, "", False)]


def test_mounts_are_read_with_escaped_spaces(tmp_path: Path) -> None:
    drive = _drive(tmp_path, "NODE H743ZI", **{"MBED.HTM": MBED_HTM})
    escaped = str(drive).replace(" ", "\\040")
    mounts = tmp_path / "mounts"
    mounts.write_text(f"proc /proc proc rw 0 0\n/dev/sdb {escaped} vfat rw,nosuid 0 0\n")
    assert discovery._mounted_dirs(mounts) == [Path("/proc"), drive]
    assert [b.mount_point for b in stlink_drives(discovery._mounted_dirs(mounts))] == [drive]
    assert discovery._mounted_dirs(tmp_path / "no-such-file") == []


def test_sources_merge_by_serial_number_and_lone_drive(tmp_path: Path) -> None:
    usb = stlink_ports(lambda: PORTS)
    mbed = [BoardInfo(board="NUCLEO_H743ZI", serial_port="/dev/ttyACM0", mount_point=Path("/media/NODE_H743ZI"),
                      serial_number=NUCLEO_SERIAL, identified=True, sources=("mbed-tools",))]
    merged = merge_sources(usb, mbed, [])
    assert len(merged) == 2
    assert merged[0] == BoardInfo(board="NUCLEO_H743ZI", serial_port="/dev/ttyACM0",
                                  mount_point=Path("/media/NODE_H743ZI"), serial_number=NUCLEO_SERIAL,
                                  identified=True, probe="ST-LINK/V2-1", sources=("usb", "mbed-tools"))
    # One board by USB and one drive: they are the same board.
    drive = stlink_drives([_drive(tmp_path, "NODE_H743ZI", **{"MBED.HTM": MBED_HTM})])
    (one,) = merge_sources(usb[:1], [], drive)
    assert one.serial_port == "/dev/ttyACM0" and one.mount_point == drive[0].mount_point
    assert one.board == "NUCLEO_H743ZI" and one.sources == ("usb", "drive")
    # Two boards and one drive cannot be paired without mbed-tools: the drive is listed on its own.
    assert [b.sources for b in merge_sources(usb, [], drive)] == [("usb",), ("usb",), ("drive",)]
    # A drive alone (e.g. the VCP is held by another program's udev rule): still a board.
    assert merge_sources([], [], drive) == drive


def test_find_boards_without_mbed_tools(monkeypatch: pytest.MonkeyPatch, no_mbed_tools: None) -> None:
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda: PORTS)
    monkeypatch.setattr(discovery, "_mounted_dirs", lambda: [])
    assert [b.serial_port for b in find_boards()] == ["/dev/ttyACM0", "/dev/ttyACM1"]


def test_find_boards_when_mbed_tools_detection_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> ConnectedDevices:
        raise OSError("lsblk: not found")

    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda: PORTS[3:4])
    monkeypatch.setattr(discovery, "_mounted_dirs", lambda: [])
    monkeypatch.setattr(mbed_tools.devices, "get_connected_devices", broken)
    assert [b.serial_port for b in find_boards()] == ["/dev/ttyACM0"]


def test_find_boards_maps_mbed_tools_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    board = Board.from_offline_board_entry({"board_type": "NUCLEO_H743ZI2", "board_name": "NUCLEO-H743ZI2",
                                            "product_code": "0836"})
    known = Device(board, "0836000012345", "/dev/ttyACM5", (Path("/media/NOD_H743ZI"),), mbed_enabled=True)
    unknown = Device(Board.from_offline_board_entry({}), "9999", None, ())
    connected = ConnectedDevices()
    connected.add_device(unknown)
    connected.add_device(known)
    monkeypatch.setattr(mbed_tools.devices, "get_connected_devices", lambda: connected)
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda: [])
    monkeypatch.setattr(discovery, "_mounted_dirs", lambda: [])
    boards = find_boards()
    assert [b.board for b in boards] == ["NUCLEO_H743ZI2", ""]
    assert boards[0].serial_port == "/dev/ttyACM5" and boards[0].mount_point == Path("/media/NOD_H743ZI")
    assert boards[0].identified and not boards[1].identified and boards[1].mount_point is None


def test_find_boards_runs_real_detection() -> None:
    # No board on a CI machine; every source must still answer (pyserial, /proc/mounts, mbed-tools).
    assert isinstance(find_boards(), list)


def test_devices_command_lists_the_usb_port(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                            no_mbed_tools: None) -> None:
    monkeypatch.setattr(discovery, "_mounted_dirs", lambda: [])
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda: PORTS)
    assert main(["devices"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "port /dev/ttyACM0" in lines[0] and "ST-LINK/V2-1" in lines[0]
    assert "seen by usb" in lines[0] and "drive -" in lines[0]
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda: PORTS[:2])
    assert main(["devices"]) == 0
    assert capsys.readouterr().out.startswith("no boards found")
