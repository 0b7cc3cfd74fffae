"""Open the target named on the command line for an export directory, building what it needs."""

from __future__ import annotations

from pathlib import Path

from .. import console
from ..errors import BadInputError
from ..firmware.boards import load_board
from ..firmware.budget import estimate
from ..firmware.crossbuild import build_firmware
from ..firmware.project import LoadedExport, export_lock
from .base import Target
from .discovery import find_boards
from .host import HostTarget
from .qemu import QEMU_BOARD, QemuTarget
from .renode import RenodeTarget
from .serial_target import SerialTarget

TARGET_KINDS = ("reference", "host", "qemu", "renode", "serial")


class TargetSpecError(BadInputError):
    """The --target names no known target, or the one it names cannot be chosen."""


def parse_target(spec: str) -> tuple[str, str | None]:
    """"serial:/dev/ttyACM0" → ("serial", "/dev/ttyACM0"); other kinds take no argument."""
    kind, _, arg = spec.partition(":")
    if kind not in TARGET_KINDS:
        raise TargetSpecError(f"unknown target '{spec}'; choose one of {', '.join(TARGET_KINDS)} (serial[:PORT])")
    if arg and kind != "serial":
        raise TargetSpecError(f"target '{kind}' takes no ':' argument")
    return kind, arg or None


def firmware_for(export: LoadedExport, board_name: str) -> Path:
    """The export's firmware ELF for `board_name`, cross-built on first use."""
    board = load_board(board_name)
    out = export.directory / ("firmware" if board_name == export.manifest["board"] else f"firmware-{board_name}")
    elf = out / "firmware.elf"
    stamp = out / "program.sha256"
    with export_lock(export.directory):  # two validates of one export build its firmware once, in turn
        if elf.is_file() and stamp.is_file() and stamp.read_text() == export.manifest["program_sha256"]:
            return elf
        region = estimate(export.program, board).arena_region
        if region is None:
            raise TargetSpecError(f"the arena fits no RAM region of board {board_name}")
        stamp.unlink(missing_ok=True)  # a build interrupted half-way must not look finished
        console.step(f"cross-building the {board_name} firmware from the export's model/ and tr_nn/")
        build_firmware(export.model_dir, board, out, arena_region=region)
        stamp.write_text(export.manifest["program_sha256"])
    return elf


def open_target(spec: str, export: LoadedExport, *, host_sanitize: bool = False) -> Target:
    kind, arg = parse_target(spec)
    if kind == "reference":
        raise TargetSpecError("the reference is not a device target")
    if kind == "host":
        console.step("building the host target")
        return HostTarget(export.model_dir, export.directory / "host", sanitize=host_sanitize)
    if kind == "qemu":
        elf = firmware_for(export, QEMU_BOARD)
        console.step(f"starting QEMU (mps2-an500, Cortex-M7) with {elf.parent.name}/{elf.name}")
        return QemuTarget(elf)
    if kind == "renode":
        elf = firmware_for(export, export.manifest["board"])
        console.step("starting Renode")
        return RenodeTarget(elf)
    port = arg
    if port is None:
        ports = [b.serial_port for b in find_boards() if b.serial_port]
        if len(ports) != 1:
            raise TargetSpecError(
                f"found {len(ports)} connected boards with a serial port ({', '.join(ports) or 'none'}); "
                "name one with --target serial:PORT"
            )
        port = ports[0]
    return SerialTarget(port)
