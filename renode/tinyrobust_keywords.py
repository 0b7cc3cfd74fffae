"""Robot Framework keyword library: drive tinyrobust firmware under Renode through the wire protocol.

Renode serves USART3 on a loopback TCP port (see nucleo_h743zi.resc); these keywords connect to it with
the same ProtocolClient the CLI uses, so the suite tests the real host stack, not a re-implementation.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import serial

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO / "toolchain") not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(_REPO / "toolchain"))

from tinyrobust.targets.protocol import Hello, ProtocolClient, check_model_hash  # noqa: E402


class tinyrobust_keywords:  # noqa: N801 - Robot imports the class named like the module
    ROBOT_LIBRARY_SCOPE = "SUITE"

    def __init__(self) -> None:
        self._port: serial.SerialBase | None = None
        self._client: ProtocolClient | None = None
        self._hello: Hello | None = None

    def connect_to_firmware(self, port: int | str, timeout: float | str = 30) -> None:
        """Connect to Renode's server socket terminal on 127.0.0.1:port (retries while it starts)."""
        deadline = time.monotonic() + float(timeout)
        while True:
            try:
                self._port = serial.serial_for_url(f"socket://127.0.0.1:{int(port)}", timeout=0.05)
                break
            except serial.SerialException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self._client = ProtocolClient(self._port, timeout_s=10.0, retries=3)

    def disconnect_from_firmware(self) -> None:
        if self._port is not None:
            self._port.close()
        self._port = self._client = None

    def hello_should_match_golden(self, golden_json: str) -> None:
        """HELLO answers, speaks protocol 2, and carries the model hash of the golden file."""
        golden = json.loads(Path(golden_json).read_text())
        self._hello = self._require_client().hello()
        check_model_hash(self._hello, bytes.fromhex(golden["model_hash"]))
        if self._hello.counter_unit != "cycles":
            unit = self._hello.counter_unit
            raise AssertionError(f"NUCLEO firmware should count DWT cycles, reports {unit}")

    def golden_infers_should_match(self, golden_json: str) -> None:
        """Every golden case gives exactly the expected int8 output bytes and a non-zero cycle count."""
        golden = json.loads(Path(golden_json).read_text())
        client = self._require_client()
        if not golden["cases"]:
            raise AssertionError("golden file has no cases")
        for k, case in enumerate(golden["cases"]):
            inp = bytes(v & 0xFF for v in case["input"])
            want = bytes(v & 0xFF for v in case["output"])
            got = client.infer(inp)
            if got.output != want:
                raise AssertionError(f"case {k}: output {list(got.output)} != golden {list(want)}")
            if got.count == 0:
                raise AssertionError(f"case {k}: DWT cycle count is 0 (is the DWT in the platform?)")

    def profile_should_cover_every_layer(self, golden_json: str) -> None:
        golden = json.loads(Path(golden_json).read_text())
        client = self._require_client()
        counts = client.profile(bytes(v & 0xFF for v in golden["cases"][0]["input"]))
        if len(counts) != client.device.layers:
            raise AssertionError(f"PROFILE gave {len(counts)} counts for {client.device.layers} layers")

    def _require_client(self) -> ProtocolClient:
        if self._client is None:
            raise AssertionError("not connected: call 'Connect To Firmware' first")
        return self._client
