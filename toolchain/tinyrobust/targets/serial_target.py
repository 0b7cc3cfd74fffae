"""A real board on a USB serial port (found by discovery.py): flashing by mass-storage copy, the target.

The NUCLEO-H743ZI's ST-LINK exposes a virtual COM port (USART3) and a USB drive; copying a .bin onto
the drive programs the flash, after which the ST-LINK re-enumerates. Counts are DWT cycles.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import serial

from ..errors import TargetError
from .base import ProtocolTarget
from .protocol import ProtocolClient


class FlashError(TargetError):
    """Copying the firmware onto the board's drive failed."""


def _port_present(port: str) -> bool:
    from serial.tools import list_ports

    return any(p.device == port for p in list_ports.comports()) or Path(port).exists()


def flash(
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
            raise FlashError(f"ST-LINK rejected the image: {fail.read_text(errors='replace').strip()}")
        if present():
            return
        time.sleep(0.25)
    raise FlashError(f"board did not re-enumerate within {timeout_s:.0f} s after flashing {bin_path.name}")


class SerialTarget(ProtocolTarget):
    """A board running tinyrobust firmware on ``port`` (e.g. /dev/ttyACM0).

    A board that resets mid-run (reset button, brown-out, watchdog) announces itself with a HELLO of
    seq 0; the client re-synchronises (checks the model hash, does the interrupted transfer again) and
    counts it in ``link_stats.device_resets``. A port that disappears (USB unplugged) ends the run.
    """

    name = "serial"

    def __init__(self, port: str, baud: int = 115200, *, timeout_s: float = 3.0, retries: int = 3) -> None:
        super().__init__()
        self.port_name = port
        try:
            self._port = serial.serial_for_url(port, baudrate=baud, timeout=0.02)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TargetError(f"cannot open serial port {port}: {exc}") from exc
        try:
            # Bytes the board printed before we connected (or a half-sent frame) would confuse nothing,
            # the decoder resyncs, but dropping them keeps the link stats honest.
            self._port.reset_input_buffer()
            self._add_client(ProtocolClient(self._port, timeout_s=timeout_s, retries=retries))
        except BaseException:
            self._port.close()
            raise

    def close(self) -> None:
        self._clients.clear()
        if self._port.is_open:
            self._port.close()
