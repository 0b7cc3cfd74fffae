"""Programming a board: with OpenOCD over the ST-LINK's SWD, or by copying the .bin to its ST-LINK drive.

OpenOCD needs no mounted drive (a headless box, an ST-LINK firmware without mass storage) and verifies
what it wrote; the drive copy needs no extra tool. Either ends with the new firmware running.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from .. import processes
from ..errors import EnvironmentProblem, TargetError

INSTALL_OPENOCD = "install OpenOCD (Debian/Ubuntu: apt install openocd) or flash with --via drive"
OPENOCD_TIMEOUT_S = 180.0  # a full 2 MB erase, write and verify takes well under a minute


class FlashError(TargetError):
    """Programming the board failed; the message says how."""


class OpenOcdNotFound(EnvironmentProblem):
    """openocd is not on PATH."""


# ---------------------------------------------------------------- OpenOCD


def openocd_command(openocd: str, elf: Path, configs: Sequence[str], *, adapter_serial: str | None = None) -> list[str]:
    """The command line that programs ``elf``, verifies it and starts it."""
    path = Path(elf).resolve().as_posix()
    # The path goes into a Tcl command inside braces, where only braces and backslashes are special.
    if any(ch in path for ch in "{}\\\n"):
        raise FlashError(f"{path}: OpenOCD cannot be given a path with braces, backslashes or newlines")
    cmd = [openocd]
    for cfg in configs:
        cmd += ["-f", cfg]
    if adapter_serial:  # which ST-LINK, when more than one is connected
        cmd += ["-c", f"adapter serial {adapter_serial}"]
    return cmd + ["-c", f"program {{{path}}} verify reset exit"]


def _openocd_failure(output: str) -> str:
    """The line of OpenOCD's log that says what went wrong (its first 'Error:' line)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error")]
    line = errors[0] if errors else (lines[-1] if lines else "no output")
    if "open failed" in line:  # OpenOCD's words when no ST-LINK answers on USB
        line += " (no ST-LINK found: is the board connected over its ST-LINK USB port?)"
    return line


def flash_openocd(elf: Path, configs: Sequence[str], *, adapter_serial: str | None = None,
                  timeout_s: float = OPENOCD_TIMEOUT_S) -> None:
    """Program, verify and reset the board with OpenOCD; raise FlashError with OpenOCD's reason."""
    elf = Path(elf)
    if not elf.is_file():
        raise FlashError(f"{elf} not found: export with --build first")
    if not configs:
        raise FlashError("the board names no OpenOCD configuration ([programmer] openocd in board.toml)")
    openocd = shutil.which("openocd")
    if openocd is None:
        raise OpenOcdNotFound(f"openocd not found on PATH: {INSTALL_OPENOCD}")
    cmd = openocd_command(openocd, elf, configs, adapter_serial=adapter_serial)
    try:
        proc = processes.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise FlashError(f"openocd did not finish within {timeout_s:.0f} s programming {elf.name}") from exc
    except OSError as exc:
        raise OpenOcdNotFound(f"cannot run {openocd} ({exc.strerror}): {INSTALL_OPENOCD}") from exc
    if proc.returncode != 0:
        raise FlashError(f"openocd {processes.describe_exit(proc.returncode)}: {_openocd_failure(proc.stdout)}")


# ---------------------------------------------------------------- the ST-LINK drive


def _port_present(port: str) -> bool:
    from serial.tools import list_ports

    return any(p.device == port for p in list_ports.comports()) or Path(port).exists()


def flash_drive(
    bin_path: Path,
    mount_point: Path,
    *,
    serial_port: str | None = None,
    timeout_s: float = 30.0,
) -> None:
    """Program a board by copying ``bin_path`` to its ST-LINK drive, then wait for it to come back.

    The copy goes to a temporary name and is renamed and fsynced, so the ST-LINK firmware never sees
    a half-written .bin. If ``serial_port`` is given, waits (bounded) until the drive is back and the
    port has reappeared after re-enumeration.
    """
    bin_path, mount_point = Path(bin_path), Path(mount_point)
    if bin_path.suffix.lower() != ".bin" or not bin_path.is_file():
        raise FlashError(f"{bin_path} is not a .bin file")
    if not mount_point.is_dir():
        raise FlashError(f"board drive {mount_point} is not mounted")
    tmp = mount_point / (bin_path.stem + ".tmp")
    final = mount_point / bin_path.name
    with open(bin_path, "rb") as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst)
        dst.flush()
        os.fsync(dst.fileno())
    os.replace(tmp, final)
    # fsync the directory so the rename reaches the device before we wait on it.
    dir_fd = os.open(mount_point, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)

    deadline = time.monotonic() + timeout_s

    def present() -> bool:
        return mount_point.is_dir() and (serial_port is None or _port_present(serial_port))

    # The ST-LINK programs, then drops off USB and comes back. Wait (briefly) to see it leave, so the
    # "back" check below does not pass before programming finished; some ST-LINK firmwares stay
    # enumerated, hence the short bound on this phase.
    leave_by = time.monotonic() + min(10.0, timeout_s / 2)
    while present() and time.monotonic() < leave_by:
        time.sleep(0.25)
    while time.monotonic() < deadline:
        fail = mount_point / "FAIL.TXT"
        if fail.exists():
            reason = " ".join(fail.read_text(errors="replace").split())
            raise FlashError(f"ST-LINK rejected the image: {reason}")
        if present():
            return
        time.sleep(0.25)
    raise FlashError(f"board did not re-enumerate within {timeout_s:.0f} s after flashing {bin_path.name}")
