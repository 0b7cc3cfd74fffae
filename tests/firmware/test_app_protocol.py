"""The firmware's frame parser (firmware/app/tr_proto.c) compiled for the host.

A small C driver (tests/fuzz/proto_driver.c) feeds byte streams and prints the parser's events; the
frames are built by an independent Python encoder here. The libFuzzer run is bounded to ~20 s.
"""

from __future__ import annotations

import ctypes
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "firmware" / "app"
FUZZ = ROOT / "tests" / "fuzz"
PARSER_SOURCES = [APP / "tr_proto.c", APP / "tr_crc16.c"]
MAX_PAYLOAD = 4096


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE, written independently of the C code."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def frame(
    ftype: int, seq: int, payload: bytes = b"", *, length: int | None = None, bad_crc: bool = False
) -> bytes:
    n = len(payload) if length is None else length
    body = bytes([ftype, seq]) + struct.pack("<H", n) + payload
    crc = crc16(body) ^ (0x0101 if bad_crc else 0)
    return b"\xa5\x5a" + body + struct.pack("<H", crc)


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("host gcc not found")
    out = tmp_path_factory.mktemp("proto") / "proto_driver"
    subprocess.run(
        [gcc, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=all", f"-I{APP}", str(FUZZ / "proto_driver.c"), *map(str, PARSER_SOURCES),
         "-o", str(out)],
        check=True, capture_output=True, text=True,
    )
    return out


def events(driver: Path, stream: bytes, *, timeout: bool = False) -> list[str]:
    args = [str(driver)] + (["timeout"] if timeout else [])
    res = subprocess.run(args, input=stream, capture_output=True, check=True, timeout=30)
    return res.stdout.decode().splitlines()


def frame_line(ftype: int, seq: int, payload: bytes) -> str:
    return f"FRAME {ftype} {seq} {len(payload)} {payload.hex()}"


def test_crc_check_value(tmp_path: Path) -> None:
    lib = tmp_path / "libcrc.so"
    subprocess.run(["gcc", "-std=c11", "-O2", "-shared", "-fPIC", str(APP / "tr_crc16.c"), "-o", str(lib)],
                   check=True)
    so = ctypes.CDLL(str(lib))
    so.tr_crc16_update.restype = ctypes.c_uint16
    so.tr_crc16_update.argtypes = [ctypes.c_uint16, ctypes.c_char_p, ctypes.c_uint32]
    assert so.tr_crc16_update(0xFFFF, b"123456789", 9) == 0x29B1
    assert crc16(b"123456789") == 0x29B1


def test_encoder_matches_independent_python(driver: Path) -> None:
    for ftype, seq, payload in [(1, 7, b""), (0x82, 255, bytes(range(200))), (0xFF, 0, b"\x03\x02")]:
        out = subprocess.run([str(driver), "encode", str(ftype), str(seq), payload.hex()],
                             capture_output=True, text=True, check=True).stdout.strip()
        assert bytes.fromhex(out) == frame(ftype, seq, payload)


def test_valid_frames_back_to_back(driver: Path) -> None:
    a, b = bytes(range(16)), b""
    out = events(driver, frame(2, 1, a) + frame(1, 2, b))
    assert out == [frame_line(2, 1, a), frame_line(1, 2, b), "BUSY 0"]


def test_max_payload_accepted(driver: Path) -> None:
    big = bytes(i * 7 % 256 for i in range(MAX_PAYLOAD))
    assert events(driver, frame(2, 9, big)) == [frame_line(2, 9, big), "BUSY 0"]


def test_garbage_then_valid_frame_resyncs(driver: Path) -> None:
    garbage = b"\x00\xa5\xa5\x5b\x5a\x13\xa5" * 5
    assert events(driver, garbage + frame(1, 3)) == [frame_line(1, 3, b""), "BUSY 0"]


def test_bad_crc_reports_error_and_next_frame_is_served(driver: Path) -> None:
    out = events(driver, frame(2, 4, b"abcd", bad_crc=True) + frame(1, 5))
    assert out == ["ERROR 1 2 4", frame_line(1, 5, b""), "BUSY 0"]


def test_frame_hidden_in_bad_frame_is_found_by_rescan(driver: Path) -> None:
    inner = frame(1, 6)
    # A corrupted frame whose claimed payload contains a complete valid frame.
    outer = frame(3, 8, b"xx" + inner + b"yy", bad_crc=True)
    assert events(driver, outer) == ["ERROR 1 3 8", frame_line(1, 6, b""), "BUSY 0"]


def test_oversized_length_is_rejected_then_resyncs(driver: Path) -> None:
    header = b"\xa5\x5a\x02\x0b" + struct.pack("<H", MAX_PAYLOAD + 1)
    out = events(driver, header + b"\x00" * 3 + frame(1, 12))
    assert out == ["ERROR 2 2 11", frame_line(1, 12, b""), "BUSY 0"]
    out = events(driver, b"\xa5\x5a\x02\x0b\xff\xff" + frame(1, 13))
    assert out == ["ERROR 2 2 11", frame_line(1, 13, b""), "BUSY 0"]


def test_truncated_frame_waits_then_idle_timeout_recovers_following_frame(driver: Path) -> None:
    truncated = frame(2, 20, bytes(16))[:9]  # claims 16 bytes, then stops
    stream = truncated + frame(1, 21)
    # Without an idle gap the valid frame is swallowed as payload of the truncated one ...
    assert events(driver, stream) == ["BUSY 1"]
    # ... and the idle timeout rescans the held bytes and serves it.
    assert events(driver, stream, timeout=True) == ["TIMEOUT", frame_line(1, 21, b""), "BUSY 0"]


def test_truncated_frame_alone_is_dropped_on_timeout(driver: Path) -> None:
    assert events(driver, frame(2, 30, bytes(8))[:-3], timeout=True) == ["TIMEOUT", "BUSY 0"]


def test_many_frames_and_errors_stay_bounded(driver: Path) -> None:
    stream = b""
    expected = []
    for i in range(300):
        payload = bytes([i % 256]) * (i % 50)
        if i % 3 == 0:
            stream += frame(2, i % 256, payload, bad_crc=True)
            expected.append(f"ERROR 1 2 {i % 256}")
        else:
            stream += frame(2, i % 256, payload)
            expected.append(frame_line(2, i % 256, payload))
    assert events(driver, stream) == expected + ["BUSY 0"]


def _clang_fuzzer() -> str | None:
    clang = shutil.which("clang") or shutil.which("clang-14")
    return clang


@pytest.mark.slow
@pytest.mark.fuzz  # `make fuzz` selects it
def test_fuzz_parser_20s(tmp_path: Path) -> None:
    clang = _clang_fuzzer()
    if clang is None:
        pytest.skip("clang not found: cannot build the libFuzzer harness")
    exe = tmp_path / "fuzz_tr_proto"
    build = subprocess.run(
        [clang, "-std=c11", "-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all",
         f"-I{APP}", str(FUZZ / "fuzz_tr_proto.c"), *map(str, PARSER_SOURCES), "-o", str(exe)],
        capture_output=True, text=True,
    )
    if build.returncode != 0 and "fuzzer" in build.stderr:
        pytest.skip(f"clang has no libFuzzer runtime: {build.stderr.strip()[:200]}")
    assert build.returncode == 0, build.stderr
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    # Seeds: a valid frame in each mode, so the fuzzer starts from the interesting paths.
    for mode in range(8):
        (corpus / f"seed{mode}").write_bytes(bytes([mode]) + frame(2, 1, b"seed") + b"\xa5\x5a\xff")
    # ASan's shadow memory and quarantine count towards RSS (the live heap stays ~25 MB): allow 4 GB.
    run = subprocess.run([str(exe), "-max_total_time=20", "-timeout=5", "-rss_limit_mb=4096", str(corpus)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Done" in run.stderr
