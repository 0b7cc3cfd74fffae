"""Cross-build the evaluation firmware (app + TEST FIXTURE fake model) for both boards, check the link
budget enforcement, and serve real frames from the QEMU image."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinyrobust.boards import load_board
from tinyrobust.build import (
    FirmwareArtifacts,
    RegionOverflowError,
    build_firmware,
    read_section_usage,
)

ROOT = Path(__file__).resolve().parents[1]
FAKE_MODEL = ROOT / "tests" / "fixtures" / "fake_model"
FAKE_WEIGHTS = [-7, 3, 100, -100, 0, 1, -1, 64, -64, 27, -27, 5, 9, -9, 120, -120]
FAKE_HASH = hashlib.sha256(b"tinyrobust fake model fixture").digest()
QEMU_COUNTER_SCALE = 40

pytestmark = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None,
    reason="arm-none-eabi-gcc not installed (gcc-arm-none-eabi libnewlib-arm-none-eabi)",
)


def sat8(v: int) -> int:
    return max(-128, min(127, v))


def fake_model_reference(x: bytes) -> tuple[list[int], list[int], list[int]]:
    """Python mirror of tests/fixtures/fake_model/tr_model.c: the three layer outputs."""
    xs = [b - 256 if b > 127 else b for b in x]
    a = [sat8(3 * xs[i] + FAKE_WEIGHTS[i]) for i in range(16)]
    b = [((a[15 - i] & 0xFF) ^ 0x55) for i in range(16)]
    b = [v - 256 if v > 127 else v for v in b]
    y = [sat8((b[4 * j] + b[4 * j + 1] + b[4 * j + 2] + b[4 * j + 3]) >> 2) for j in range(4)]
    return a, b, y


def s8(values: list[int]) -> bytes:
    return bytes(v & 0xFF for v in values)


@pytest.fixture(scope="module")
def nucleo_fw(tmp_path_factory: pytest.TempPathFactory) -> FirmwareArtifacts:
    return build_firmware(FAKE_MODEL, load_board("nucleo_h743zi"), tmp_path_factory.mktemp("nucleo"),
                          arena_region="AXI_SRAM")


def _qemu_build(tmp: Path, **defines: str) -> FirmwareArtifacts:
    return build_firmware(FAKE_MODEL, load_board("qemu_mps2_an500"), tmp, arena_region="DTCM",
                          extra_defines=defines)


@pytest.fixture(scope="module")
def qemu_fw(tmp_path_factory: pytest.TempPathFactory) -> FirmwareArtifacts:
    return _qemu_build(tmp_path_factory.mktemp("qemu"))


def test_nucleo_build_places_sections(nucleo_fw: FirmwareArtifacts) -> None:
    board = load_board("nucleo_h743zi")
    assert nucleo_fw.elf.is_file() and nucleo_fw.bin.stat().st_size > 1000 and nucleo_fw.map.is_file()
    usage = read_section_usage(nucleo_fw.elf, board)
    assert usage["AXI_SRAM"] == nucleo_fw.section_sizes[".tr_arena"] >= 48
    assert usage["DTCM"] >= 8192  # stack + parser buffer + rx ring
    assert 0 < usage["FLASH"] <= board.region("FLASH").length
    # The image starts with the vector table: initial SP = top of the DTCM stack, reset in flash.
    sp, reset = struct.unpack_from("<II", nucleo_fw.bin.read_bytes())
    dtcm = board.region("DTCM")
    assert dtcm.origin < sp <= dtcm.end and sp % 8 == 0
    assert board.region("FLASH").contains(reset & ~1) and reset & 1  # Thumb bit
    assert "MEMORY" in nucleo_fw.linker_script.read_text()


def test_qemu_build_places_sections(qemu_fw: FirmwareArtifacts) -> None:
    board = load_board("qemu_mps2_an500")
    usage = read_section_usage(qemu_fw.elf, board)
    assert usage["DTCM"] >= 8192 + 48 and usage["AXI_SRAM"] == 0
    sp, reset = struct.unpack_from("<II", qemu_fw.bin.read_bytes())
    assert board.region("DTCM").contains(sp - 8) and board.region("FLASH").contains(reset & ~1)


@pytest.mark.parametrize("board_name", ["nucleo_h743zi", "qemu_mps2_an500"])
def test_region_overflow_is_reported_and_nothing_written(board_name: str, tmp_path: Path) -> None:
    out = tmp_path / "fw"
    # 200 KB of arena cannot fit the 128 KB DTCM on the NUCLEO, nor on the QEMU board that mirrors it.
    with pytest.raises(RegionOverflowError) as info:
        build_firmware(FAKE_MODEL, load_board(board_name), out, arena_region="DTCM",
                       extra_defines={"TR_FAKE_ARENA_BYTES": str(200 * 1024)})
    assert info.value.region == "DTCM"
    assert info.value.overflow_bytes > 200 * 1024 - 128 * 1024
    assert "DTCM" in str(info.value) and str(info.value.overflow_bytes) in str(info.value)
    assert not out.exists() or not any(out.iterdir())
    assert not list(tmp_path.glob(".tr_build_*"))  # the temporary build directory is gone
    # The same arena fits AXI SRAM (512 KB).
    fw = build_firmware(FAKE_MODEL, load_board(board_name), out, arena_region="AXI_SRAM",
                        extra_defines={"TR_FAKE_ARENA_BYTES": str(200 * 1024)})
    assert read_section_usage(fw.elf, load_board(board_name))["AXI_SRAM"] == 200 * 1024


# ---------------------------------------------------------------------------------------------------
# QEMU: a tiny inline client, independent of toolchain/tinyrobust/targets/protocol.py on purpose.

def crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def frame(ftype: int, seq: int, payload: bytes = b"") -> bytes:
    body = bytes([ftype, seq]) + struct.pack("<H", len(payload)) + payload
    return b"\xa5\x5a" + body + struct.pack("<H", crc16(body))


class Link:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _more(self) -> None:
        chunk = self.sock.recv(4096)
        if not chunk:
            raise ConnectionError("QEMU closed the serial socket")
        self.buf += chunk

    def read_frame(self) -> tuple[int, int, bytes]:
        while True:
            i = self.buf.find(b"\xa5\x5a")
            if i < 0 or len(self.buf) < i + 6:
                self._more()
                continue
            n = struct.unpack_from("<H", self.buf, i + 4)[0]
            if len(self.buf) < i + 8 + n:
                self._more()
                continue
            f = self.buf[i:i + 8 + n]
            self.buf = self.buf[i + 8 + n:]
            assert crc16(f[2:-2]) == struct.unpack("<H", f[-2:])[0], "device frame with a bad CRC"
            return f[2], f[3], f[6:-2]

    def request(self, ftype: int, seq: int, payload: bytes = b"") -> tuple[int, bytes]:
        self.sock.sendall(frame(ftype, seq, payload))
        rtype, rseq, body = self.read_frame()
        assert rseq == seq
        return rtype, body


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def qemu(elf: Path) -> Iterator[Link]:
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm not installed")
    port = _free_port()
    proc = subprocess.Popen(
        ["qemu-system-arm", "-M", "mps2-an500", "-cpu", "cortex-m7", "-nographic", "-monitor", "none",
         "-icount", "shift=0", "-kernel", str(elf), "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        with sock:
            yield Link(sock)
    finally:
        proc.kill()
        proc.wait(timeout=10)


def parse_hello(body: bytes) -> dict[str, object]:
    fixed = struct.Struct("<4sBBHIIII32sB")
    magic, version, kind, layers, inb, outb, arena, clock, mhash, flags = fixed.unpack_from(body)
    board, fw, tail = body[fixed.size:].split(b"\x00")
    assert tail == b""
    return dict(magic=magic, version=version, kind=kind, layers=layers, input=inb, output=outb, arena=arena,
                clock=clock, hash=mhash, flags=flags, board=board.decode(), firmware=fw.decode())


@pytest.mark.qemu
@pytest.mark.slow
def test_qemu_serves_hello_infer_profile_dump(qemu_fw: FirmwareArtifacts) -> None:
    x = bytes((i * 37 + 5) & 0xFF for i in range(16))
    a, b, y = fake_model_reference(x)
    with qemu(qemu_fw.elf) as link:
        rtype, body = link.request(0x01, 1)
        assert rtype == 0x81
        hello = parse_hello(body)
        assert hello == dict(magic=b"TRNN", version=1, kind=1, layers=3, input=16, output=4, arena=48,
                             clock=25_000_000, hash=FAKE_HASH, flags=0, board="qemu_mps2_an500",
                             firmware="tinyrobust-fw 0.1.0")
        with contextlib.suppress(ImportError):  # cross-check with the host module when present
            from tinyrobust.targets.protocol import Hello
            assert Hello.parse(body).model_hash == FAKE_HASH

        counts = []
        for seq in (2, 3):
            rtype, body = link.request(0x02, seq, x)
            assert rtype == 0x82 and len(body) == 8 + 4
            count = struct.unpack_from("<Q", body)[0]
            assert body[8:] == s8(y)
            counts.append(count)
        assert counts[0] > 0 and counts[0] % QEMU_COUNTER_SCALE == 0
        # Deterministic up to the counter's resolution: one SysTick tick = 40 instructions. The
        # start is aligned to a tick edge, but the edge poll loop leaves a few instructions of phase.
        assert abs(counts[0] - counts[1]) <= QEMU_COUNTER_SCALE, f"INFER counts differ: {counts}"

        for k in range(3):  # other inputs, against the Python mirror
            xr = bytes((i * 91 + k * 13) & 0xFF for i in range(16))
            assert link.request(0x02, 4, xr)[1][8:] == s8(fake_model_reference(xr)[2])

        rtype, body = link.request(0x03, 5, x)
        assert rtype == 0x83 and struct.unpack_from("<H", body)[0] == 3 and len(body) == 2 + 3 * 8

        rtype, body = link.request(0x04, 6, struct.pack("<HIH", 1, 2, 100) + x)
        assert rtype == 0x84
        assert struct.unpack_from("<I", body)[0] == 16 and body[4:] == s8(b)[2:]
        rtype, body = link.request(0x04, 7, struct.pack("<HIH", 0, 0, 16) + x)
        assert body[4:] == s8(a)
        rtype, body = link.request(0x04, 8, struct.pack("<HIH", 2, 99, 5) + x)
        assert body == struct.pack("<I", 4)  # window past the end: total only

        # Errors: wrong length, unknown type, bad layer, bad CRC; then the link still works.
        assert link.request(0x02, 9, x[:5]) == (0xFF, bytes([3, 0x02]))
        assert link.request(0x33, 10) == (0xFF, bytes([4, 0x33]))
        assert link.request(0x04, 11, struct.pack("<HIH", 3, 0, 1) + x) == (0xFF, bytes([5, 0x04]))
        bad = bytearray(frame(0x02, 12, x))
        bad[-1] ^= 0xFF
        link.sock.sendall(b"noise\xa5" + bytes(bad))
        assert link.read_frame() == (0xFF, 12, bytes([1, 0x02]))
        assert link.request(0x01, 13)[0] == 0x81


@pytest.mark.qemu
@pytest.mark.slow
def test_qemu_counter_is_emulated_instructions_times_40(tmp_path: Path) -> None:
    """Calibration: TR_FAKE_SPIN_ITERATIONS adds exactly 2 instructions per iteration to op 1."""
    x = bytes(16)
    counts = {}
    for n in (1_000_000, 2_000_000):
        fw = _qemu_build(tmp_path / str(n), TR_FAKE_SPIN_ITERATIONS=str(n))
        with qemu(fw.elf) as link:
            runs = [struct.unpack_from("<Q", link.request(0x02, seq, x)[1])[0] for seq in (1, 2, 3)]
        assert max(runs) - min(runs) <= QEMU_COUNTER_SCALE, f"counts vary by more than one tick: {runs}"
        counts[n] = runs[0]
    # 1,000,000 extra iterations = 2,000,000 extra instructions. Each count is exact to one tick
    # (40 instructions), so their difference is exact to two; ×1000 (external SysTick reference) or
    # any other factor would be off by far more.
    assert abs((counts[2_000_000] - counts[1_000_000]) - 2_000_000) <= 2 * QEMU_COUNTER_SCALE, counts


def test_build_is_byte_identical_across_directories(nucleo_fw: FirmwareArtifacts, tmp_path: Path) -> None:
    again = build_firmware(FAKE_MODEL, load_board("nucleo_h743zi"), tmp_path / "elsewhere",
                           arena_region="AXI_SRAM")
    for name in ("elf", "bin", "map", "linker_script"):
        assert getattr(again, name).read_bytes() == getattr(nucleo_fw, name).read_bytes(), name
