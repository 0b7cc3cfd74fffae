"""The firmware's frame parser (firmware/app/tr_proto.c) compiled for the host.

A small C driver (tests/fuzz/proto_driver.c) feeds byte streams and prints the parser's events; the
frames are built by an independent Python encoder here. The libFuzzer run is bounded to FUZZ_SECONDS
(default 20 s).
"""

from __future__ import annotations

import ctypes
import os
import random
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from tinyrobust.targets.protocol import MAX_LAYERS, servable_problems

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


# ---- input staging (tr_stage.c, tr_crc32.c) and the limits the firmware enforces

STAGE_SOURCES = [APP / "tr_stage.c", APP / "tr_crc32.c"]


@pytest.fixture(scope="module")
def stage_lib(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    lib = tmp_path_factory.mktemp("stage") / "libstage.so"
    subprocess.run(["gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", f"-I{APP}",
                    *map(str, STAGE_SOURCES), "-o", str(lib)], check=True, capture_output=True, text=True)
    so = ctypes.CDLL(str(lib))
    so.tr_crc32.restype = ctypes.c_uint32
    so.tr_crc32.argtypes = [ctypes.c_char_p, ctypes.c_uint32]
    so.tr_stage_section.restype = ctypes.c_uint8
    so.tr_stage_write.restype = ctypes.c_uint8
    return so


class Stage(ctypes.Structure):
    _fields_ = [("buf", ctypes.c_void_p), ("size", ctypes.c_uint32)]


def test_crc32_matches_zlib(stage_lib: ctypes.CDLL) -> None:
    assert stage_lib.tr_crc32(b"123456789", 9) == 0xCBF43926
    data = bytes(random.Random(3).randrange(256) for _ in range(5000))
    assert stage_lib.tr_crc32(data, len(data)) == zlib.crc32(data)


def test_stage_sections(stage_lib: ctypes.CDLL) -> None:
    size = 10
    buf = (ctypes.c_uint8 * size)()
    stage = Stage(ctypes.cast(buf, ctypes.c_void_p), size)
    whole = bytes(range(100, 110))

    def section(data: bytes, offset: int, crc: int | None = None) -> int:
        raw = struct.pack("<II", zlib.crc32(whole) if crc is None else crc, offset) + data
        return stage_lib.tr_stage_section(ctypes.byref(stage), raw, len(raw))

    assert section(whole[4:], 4) == 8  # half staged: refused, not run on stale bytes
    assert section(whole[:4], 0) == 0 and bytes(buf) == whole  # the other half completes it
    assert section(b"", 10) == 0  # already held: an empty chunk and the CRC-32 suffice
    assert section(b"", 0, crc=zlib.crc32(whole) ^ 1) == 8
    assert section(b"x", 10) == 7 and section(b"", 11) == 7 and section(b"ab", 0xFFFFFFFF) == 7  # no wrap
    assert bytes(buf) == whole  # refused chunks write nothing
    assert stage_lib.tr_stage_section(ctypes.byref(stage), b"\x00" * 7, 7) == 3


def _compiles_with(tmp_path: Path, input_bytes: int, output_bytes: int, layers: int) -> bool:
    model_h = tmp_path / "tr_model.h"
    model_h.write_text(
        f"#include <stdint.h>\n#define TR_MODEL_INPUT_BYTES {input_bytes}\n#define TR_MODEL_OUTPUT_BYTES "
        f"{output_bytes}\n#define TR_MODEL_NUM_LAYERS {layers}\n#define TR_MODEL_ARENA_BYTES 64\n"
        "extern const uint8_t tr_model_hash[32];\ntypedef void (*tr_model_layer_hook_fn)(int32_t, void *);\n"
        "void tr_model_set_layer_hook(tr_model_layer_hook_fn hook, void *user);\n"
        "int32_t tr_model_run_until(const int8_t *input, int32_t last_layer);\n"
        "int32_t tr_model_run(const int8_t *input, int8_t *output);\n"
        "const int8_t *tr_model_layer_output(int32_t layer, int32_t *bytes);\n")
    res = subprocess.run(["gcc", "-std=c11", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", f"-I{tmp_path}",
                          f"-I{APP}", '-DTR_BOARD_NAME="t"', "-DTR_COUNTER_KIND=2", str(APP / "tr_app.c")],
                         capture_output=True, text=True)
    assert res.returncode == 0 or "static assert" in res.stderr, res.stderr
    return res.returncode == 0


@pytest.mark.parametrize("sizes", [(27_648, 9_216, 3), (16, 4, MAX_LAYERS), (16, 4, MAX_LAYERS + 1),
                                   (1 << 20, 1 << 20, 2)])
def test_firmware_and_export_agree_on_what_can_be_served(tmp_path: Path, sizes: tuple[int, int, int]) -> None:
    """tr_app.c's _Static_asserts and export's servable_problems draw the same line."""
    assert _compiles_with(tmp_path, *sizes) == (servable_problems(*sizes) == [])


def _clang_fuzzer() -> str | None:
    clang = shutil.which("clang") or shutil.which("clang-14")
    return clang


FUZZ_SOURCES = [*PARSER_SOURCES, *STAGE_SOURCES]
FUZZ_MAX_LEN = 8300  # a mode byte and two full 4104-byte frames; libFuzzer's default (4096) reaches neither


def _fuzz_budget() -> tuple[int, Path | None]:
    """FUZZ_SECONDS (default 20) and FUZZ_CORPUS (default: a fresh directory per run; `make fuzz` keeps
    one outside the checkout so long runs build on each other)."""
    seconds = int(os.environ.get("FUZZ_SECONDS", "20"))
    if seconds <= 0:
        raise ValueError(f"FUZZ_SECONDS must be positive, got {seconds}")
    corpus = os.environ.get("FUZZ_CORPUS")
    if corpus:
        path = Path(corpus).expanduser().resolve()
        if path.is_relative_to(ROOT):
            raise ValueError(f"FUZZ_CORPUS {path} is inside the checkout; keep the corpus outside it")
        return seconds, path
    return seconds, None


def _fuzz_stats(stderr: str) -> dict[str, int]:
    """Executions and coverage from libFuzzer's final report (-print_final_stats=1 and the DONE line)."""
    stats = {}
    done = re.findall(r"#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+) corp: (\d+)/", stderr)
    if done:
        stats.update(zip(("executions", "edges", "features", "corpus"), map(int, done[-1]), strict=True))
    for key in ("number_of_executed_units", "average_exec_per_sec", "peak_rss_mb"):
        m = re.search(rf"stat::{key}:\s+(\d+)", stderr)
        if m:
            stats[key] = int(m.group(1))
    return stats


@pytest.mark.slow
@pytest.mark.fuzz  # `make fuzz` selects it; FUZZ_SECONDS=N make fuzz runs it longer
def test_fuzz_parser(tmp_path: Path, request: pytest.FixtureRequest, record_property) -> None:
    seconds, corpus = _fuzz_budget()
    clang = _clang_fuzzer()
    if clang is None:
        pytest.skip("clang not found: cannot build the libFuzzer harness")
    exe = tmp_path / "fuzz_tr_proto"
    build = subprocess.run(
        [clang, "-std=c11", "-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all",
         f"-I{APP}", str(FUZZ / "fuzz_tr_proto.c"), *map(str, FUZZ_SOURCES), "-o", str(exe)],
        capture_output=True, text=True,
    )
    if build.returncode != 0 and "fuzzer" in build.stderr:
        pytest.skip(f"clang has no libFuzzer runtime: {build.stderr.strip()[:200]}")
    assert build.returncode == 0, build.stderr
    corpus = corpus or tmp_path / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    # Seeds: a valid frame in each mode, so the fuzzer starts from the interesting paths, and a full-size
    # frame whose payload is an input section, so it starts at the largest frame the parser accepts.
    for mode in range(8):
        (corpus / f"seed{mode}").write_bytes(bytes([mode]) + frame(2, 1, b"seed") + b"\xa5\x5a\xff")
    full = struct.pack("<II", 0, 0) + bytes(i * 31 % 256 for i in range(MAX_PAYLOAD - 8))
    (corpus / "seed_full_frame").write_bytes(bytes([4]) + frame(2, 1, full))
    # ASan's shadow memory and quarantine count towards RSS (the live heap stays ~25 MB): allow 4 GB.
    run = subprocess.run([str(exe), f"-max_total_time={seconds}", f"-max_len={FUZZ_MAX_LEN}", "-timeout=5",
                          "-rss_limit_mb=4096", "-print_final_stats=1", str(corpus)],
                         capture_output=True, text=True, timeout=seconds + 300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Done" in run.stderr
    assert "tr_proto: full-size frame parsed (4096-byte payload, 4104-byte frame)" in run.stderr
    stats = _fuzz_stats(run.stderr)
    assert stats.get("executions", 0) > 0 and stats.get("edges", 0) > 0, run.stderr[-2000:]
    for key, value in stats.items():
        record_property(f"fuzz_{key}", value)
    line = (f"fuzz tr_proto+tr_stage: {seconds} s, {stats['executions']:,} executions, {stats['edges']} edges, "
            f"{stats['features']} features, corpus {stats['corpus']} inputs in {corpus}")
    # Shown in the run's output, not only on failure: the fuzzing budget's yield is the point of the test.
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if capture is not None and reporter is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)
    else:
        print(line)
