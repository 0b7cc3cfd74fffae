"""A real board on a USB serial port: the NUCLEO-H743ZI's ST-LINK virtual COM port (USART3), found by
discovery.py, programmed by flashing.py. Counts are DWT cycles.
"""

from __future__ import annotations

import serial

from ..errors import TargetError
from .base import ProtocolTarget
from .protocol import ProtocolClient


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
