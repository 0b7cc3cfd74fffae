"""Cross-build the evaluation firmware (app + a generated model: tests/program_fixtures.py) for both
boards, check the link budget enforcement, and serve real frames from the QEMU image."""

from __future__ import annotations

import contextlib
import shutil
import socket
import struct
import subprocess
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from program_fixtures import big_arena_program, small_program, write_model_library
from tinyrobust.converter.reference import Reference
from tinyrobust.firmware.boards import load_board
from tinyrobust.firmware.crossbuild import (
    FirmwareArtifacts,
    RegionOverflowError,
    build_firmware,
    read_section_usage,
)
from tinyrobust.targets.qemu import QEMU_BOARD, qemu_command

QEMU_COUNTER_SCALE = 40
PROGRAM = small_program()
REFERENCE = Reference(PROGRAM)
ARENA = PROGRAM.placement.arena_bytes

pytestmark = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None,
    reason="arm-none-eabi-gcc not installed (gcc-arm-none-eabi libnewlib-arm-none-eabi)",
)


def layers(x: bytes) -> list[bytes]:
    """The reference's output of every op for input bytes x."""
    return [v.tobytes() for v in REFERENCE.run_layers(np.frombuffer(x, np.int8))]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_library(PROGRAM, tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def nucleo_fw(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> FirmwareArtifacts:
    return build_firmware(model_dir, load_board("nucleo_h743zi"), tmp_path_factory.mktemp("nucleo"),
                          arena_region="AXI_SRAM")


@pytest.fixture(scope="module")
def qemu_fw(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> FirmwareArtifacts:
    return build_firmware(model_dir, load_board(QEMU_BOARD), tmp_path_factory.mktemp("qemu"), arena_region="DTCM")


def test_nucleo_build_places_sections(nucleo_fw: FirmwareArtifacts) -> None:
    board = load_board("nucleo_h743zi")
    assert nucleo_fw.elf.is_file() and nucleo_fw.bin.stat().st_size > 1000 and nucleo_fw.map.is_file()
    usage = read_section_usage(nucleo_fw.elf, board)
    assert usage["AXI_SRAM"] == nucleo_fw.section_sizes[".tr_arena"] == ARENA
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
    assert usage["DTCM"] >= 8192 + ARENA and usage["AXI_SRAM"] == 0
    sp, reset = struct.unpack_from("<II", qemu_fw.bin.read_bytes())
    assert board.region("DTCM").contains(sp - 8) and board.region("FLASH").contains(reset & ~1)


@pytest.mark.parametrize("board_name", ["nucleo_h743zi", "qemu_mps2_an500"])
def test_region_overflow_is_reported_and_nothing_written(board_name: str, tmp_path: Path) -> None:
    out = tmp_path / "fw"
    program = big_arena_program(200)
    big = write_model_library(program, tmp_path / "model")
    arena = program.placement.arena_bytes
    assert 150_000 < arena < 170_000
    # 160 KB of arena cannot fit the 128 KB DTCM on the NUCLEO, nor on the QEMU board that mirrors it.
    with pytest.raises(RegionOverflowError) as info:
        build_firmware(big, load_board(board_name), out, arena_region="DTCM")
    assert info.value.region == "DTCM"
    assert info.value.overflow_bytes > arena - 128 * 1024
    assert "DTCM" in str(info.value) and str(info.value.overflow_bytes) in str(info.value)
    assert not out.exists() or not any(out.iterdir())
    assert not list(tmp_path.glob(".tr_build_*"))  # the temporary build directory is gone
    # The same arena fits AXI SRAM (512 KB).
    fw = build_firmware(big, load_board(board_name), out, arena_region="AXI_SRAM")
    assert read_section_usage(fw.elf, load_board(board_name))["AXI_SRAM"] == arena


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
        qemu_command(load_board(QEMU_BOARD), elf, "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on"),
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
            link = Link(sock)
            # wait=on: connected before the firmware starts, so its boot announcement (HELLO, seq 0) arrives.
            rtype, seq, body = link.read_frame()
            assert (rtype, seq) == (0x81, 0) and body.startswith(b"TRNN")
            yield link
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
def section(x: bytes, offset: int = 0, whole: bytes | None = None) -> bytes:
    """An input section: CRC-32 of the whole input, the chunk's offset, the chunk."""
    return struct.pack("<II", zlib.crc32(x if whole is None else whole), offset) + x


def test_qemu_serves_hello_infer_profile_dump(qemu_fw: FirmwareArtifacts) -> None:
    x = bytes((i * 37 + 5) & 0xFF for i in range(16))
    a, b, y = layers(x)
    with qemu(qemu_fw.elf) as link:
        rtype, body = link.request(0x01, 1)
        assert rtype == 0x81
        hello = parse_hello(body)
        assert hello == dict(magic=b"TRNN", version=2, kind=1, layers=3, input=16, output=4, arena=ARENA,
                             clock=25_000_000, hash=PROGRAM.sha256(), flags=0, board="qemu_mps2_an500",
                             firmware="tinyrobust-fw 0.1.0")

        counts = []
        for seq in (2, 3):
            rtype, body = link.request(0x02, seq, section(x))
            assert rtype == 0x82 and len(body) == 12 + 4
            count, crc = struct.unpack_from("<QI", body)
            assert body[12:] == y and crc == zlib.crc32(y)
            counts.append(count)
        assert counts[0] > 0 and counts[0] % QEMU_COUNTER_SCALE == 0
        # Deterministic up to the counter's resolution: one SysTick tick = 40 instructions. The
        # start is aligned to a tick edge, but the edge poll loop leaves a few instructions of phase.
        assert abs(counts[0] - counts[1]) <= QEMU_COUNTER_SCALE, f"INFER counts differ: {counts}"

        for k in range(3):  # other inputs, against the reference
            xr = bytes((i * 91 + k * 13) & 0xFF for i in range(16))
            assert link.request(0x02, 4, section(xr))[1][12:] == layers(xr)[2]

        rtype, body = link.request(0x03, 5, section(x))
        assert rtype == 0x83 and struct.unpack_from("<H", body)[0] == 3 and len(body) == 2 + 3 * 8

        rtype, body = link.request(0x04, 6, struct.pack("<HIH", 1, 2, 100) + section(x))
        assert rtype == 0x84
        assert struct.unpack_from("<I", body)[0] == len(b) and body[4:] == b[2:]
        rtype, body = link.request(0x04, 7, struct.pack("<HIH", 0, 0, len(a)) + section(x))
        assert body[4:] == a
        rtype, body = link.request(0x04, 8, struct.pack("<HIH", 2, 99, 5) + section(b"", 16, x))  # held input
        assert body == struct.pack("<I", 4)  # window past the end: total only

        # Staged in pieces: LOAD the head, the request carries the tail; READ windows of the output.
        assert link.request(0x05, 20, struct.pack("<I", 0) + x[:10]) == (0x85, struct.pack("<I", 10))
        assert link.request(0x02, 21, section(x[10:], 10, x))[1][12:] == y
        assert link.request(0x06, 22, struct.pack("<IH", 1, 2)) == (0x86, struct.pack("<I", 4) + y[1:3])
        # A missing piece is refused, never computed on: the staged input no longer has the stated CRC-32.
        assert link.request(0x05, 23, struct.pack("<I", 0) + bytes(4)) == (0x85, struct.pack("<I", 4))
        assert link.request(0x02, 24, section(x[10:], 10, x)) == (0xFF, bytes([8, 0x02]))

        # Errors: wrong length, unknown type, bad layer, out of range, bad CRC; then the link still works.
        assert link.request(0x02, 9, x[:5]) == (0xFF, bytes([3, 0x02]))
        assert link.request(0x33, 10) == (0xFF, bytes([4, 0x33]))
        assert link.request(0x04, 11, struct.pack("<HIH", 3, 0, 1) + section(x)) == (0xFF, bytes([5, 0x04]))
        assert link.request(0x05, 14, struct.pack("<I", 15) + b"ab") == (0xFF, bytes([7, 0x05]))
        assert link.request(0x06, 15, struct.pack("<IH", 5, 1)) == (0xFF, bytes([7, 0x06]))
        bad = bytearray(frame(0x02, 12, section(x)))
        bad[-1] ^= 0xFF
        link.sock.sendall(b"noise\xa5" + bytes(bad))
        assert link.read_frame() == (0xFF, 12, bytes([1, 0x02]))
        assert link.request(0x01, 13)[0] == 0x81


SPIN = """    int32_t status = TR_NN_SUCCESS;
    {
        uint32_t n = SPIN_ITERATIONS;
        __asm__ volatile("1: subs %0, %0, #1\\n\\tbne 1b" : "+r"(n) : : "cc");
    }"""


@pytest.mark.qemu
@pytest.mark.slow
def test_qemu_counter_is_emulated_instructions_times_40(tmp_path: Path) -> None:
    """Calibration: a loop of exactly 2 instructions per iteration (SUBS, BNE), spliced into the
    generated model's first op, adds 2 instructions per iteration to the INFER count."""
    x = bytes(16)
    counts = {}
    for n in (1_000_000, 2_000_000):
        model = write_model_library(PROGRAM, tmp_path / f"model{n}")
        source = (model / "tr_model.c").read_text()
        first_op = source.index("static int32_t tr_op0(void)")
        spliced = source[:first_op] + source[first_op:].replace("    int32_t status = TR_NN_SUCCESS;",
                                                                 SPIN.replace("SPIN_ITERATIONS", f"{n}u"), 1)
        (model / "tr_model.c").write_text(spliced)
        fw = build_firmware(model, load_board(QEMU_BOARD), tmp_path / str(n), arena_region="DTCM")
        with qemu(fw.elf) as link:
            runs = [struct.unpack_from("<Q", link.request(0x02, seq, section(x))[1])[0] for seq in (1, 2, 3)]
        assert max(runs) - min(runs) <= QEMU_COUNTER_SCALE, f"counts vary by more than one tick: {runs}"
        counts[n] = runs[0]
    # 1,000,000 extra iterations = 2,000,000 extra instructions. Each count is exact to one tick
    # (40 instructions), so their difference is exact to two; ×1000 (external SysTick reference) or
    # any other factor would be off by far more.
    assert abs((counts[2_000_000] - counts[1_000_000]) - 2_000_000) <= 2 * QEMU_COUNTER_SCALE, counts


def test_build_is_byte_identical_across_directories(model_dir: Path, nucleo_fw: FirmwareArtifacts,
                                                     tmp_path: Path) -> None:
    again = build_firmware(model_dir, load_board("nucleo_h743zi"), tmp_path / "elsewhere", arena_region="AXI_SRAM")
    for name in ("elf", "bin", "map", "linker_script"):
        assert getattr(again, name).read_bytes() == getattr(nucleo_fw, name).read_bytes(), name
