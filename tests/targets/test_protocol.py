"""Wire protocol: framing, CRC, resync, and the client's retry logic against an in-process device double.

The double (``FakeDevice``) is a unit-test stand-in for the firmware: it speaks protocol v1 over a real
loopback TCP socket, which the client reaches through pyserial's ``socket://`` exactly as it reaches
QEMU. Its parser is a separate byte-at-a-time state machine so it does not share bugs with the host's
decoder. Scripted faults (drop, corrupt, garbage, stale, device CRC error) exercise every retry path.
"""

from __future__ import annotations

import hashlib
import random
import socket
import struct
import threading
import time
from collections import deque

import pytest
import serial

from tinyrobust.targets.faultproxy import FaultProxy
from tinyrobust.targets.protocol import (
    MAX_PAYLOAD,
    SOF,
    DeviceError,
    ErrorCode,
    Frame,
    FrameDecoder,
    Hello,
    ModelHashMismatch,
    MsgType,
    ProtocolClient,
    ProtocolError,
    TargetTimeout,
    check_model_hash,
    crc16_ccitt_false,
    encode_frame,
    servable_problems,
)

# --------------------------------------------------------------------------------------------------------
# Device double


def _crc_bitwise(data: bytes) -> int:
    # Independent bit-serial CRC so the double does not reuse the host's table.
    crc = 0xFFFF
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def _frame(ftype: int, seq: int, payload: bytes) -> bytes:
    body = bytes([ftype, seq]) + struct.pack("<H", len(payload)) + payload
    return SOF + body + struct.pack("<H", _crc_bitwise(body))


INPUT_BYTES = 12
OUTPUT_BYTES = 5
LAYER_SIZES = (40, 5000, OUTPUT_BYTES)  # layer 1 is larger than one DUMP window
IDLE_RESET_S = 0.1  # shorter than the client's per-attempt timeout, as on the firmware
MODEL_HASH = hashlib.sha256(b"fake model").digest()


def _crc32_bitwise(data: bytes) -> int:
    # Independent of zlib (which the host uses): reflected 0xEDB88320, init and xorout 0xFFFFFFFF.
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xEDB88320 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def _layer_output(inp: bytes, layer: int, sizes: tuple[int, ...] = LAYER_SIZES) -> bytes:
    seed = hashlib.sha256(inp + bytes([layer])).digest()
    return (seed * (sizes[layer] // 32 + 1))[: sizes[layer]]


def _count(inp: bytes) -> int:
    return 1_000_000_007 * (sum(inp) + 1)  # > 2^32 so a truncated u64 would show


class FakeDevice:
    """Listens on 127.0.0.1:port; answers one connection at a time, protocol version 2. ``faults`` is a
    queue of actions, one per answer: None (clean), "drop", "corrupt", "garbage", "stale", "crc_error",
    "split", "bad_len", "reset" (the device restarts instead of answering: staged input and last
    output are lost, and it announces itself with a seq-0 HELLO) or "wipe" (it answers, then loses its
    staged input and last output without a word: a restart whose announcement was lost)."""

    def __init__(self, faults: list[str | None] | None = None, idle_reset: bool = True, *,
                 input_bytes: int = INPUT_BYTES, layer_sizes: tuple[int, ...] = LAYER_SIZES,
                 model_hash: bytes = MODEL_HASH) -> None:
        self.idle_reset = idle_reset
        self.faults: deque[str | None] = deque(faults or [])
        self.requests: list[Frame] = []
        self.input_bytes, self.layer_sizes = input_bytes, layer_sizes
        self.hello = Hello(2, 1, len(layer_sizes), input_bytes, layer_sizes[-1], 6000, 25_000_000,
                           model_hash, 0, "fake_board", "test-0.1")
        self.staged = bytearray(input_bytes)
        self.last_output = bytearray(layer_sizes[-1])
        self.resets = 0
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.port = self._srv.getsockname()[1]
        self._stop = threading.Event()
        self._rng = random.Random(7)
        self._last_seq = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stop.set()
        self._srv.close()
        self._thread.join(timeout=2)

    def _stage(self, section: bytes) -> int:
        """Apply an input section; 0 or the error code (independent of the firmware's tr_stage.c)."""
        if len(section) < 8:
            return ErrorCode.BAD_LENGTH
        crc, offset = struct.unpack_from("<II", section)
        chunk = section[8:]
        if offset + len(chunk) > self.input_bytes:
            return ErrorCode.OUT_OF_RANGE
        self.staged[offset : offset + len(chunk)] = chunk
        return 0 if _crc32_bitwise(bytes(self.staged)) == crc else ErrorCode.INPUT_MISMATCH

    def _answer(self, ftype: int, seq: int, payload: bytes) -> tuple[int, bytes]:
        sizes = self.layer_sizes
        if ftype == MsgType.HELLO and not payload:
            return ftype | 0x80, self.hello.encode()
        if ftype == MsgType.LOAD:
            (offset,) = struct.unpack_from("<I", payload)
            chunk = payload[4:]
            if offset + len(chunk) > self.input_bytes:
                return 0xFF, bytes([ErrorCode.OUT_OF_RANGE, ftype])
            self.staged[offset : offset + len(chunk)] = chunk
            return ftype | 0x80, struct.pack("<I", offset + len(chunk))
        if ftype == MsgType.READ:
            offset, length = struct.unpack("<IH", payload)
            out = bytes(self.last_output)
            return ftype | 0x80, struct.pack("<I", len(out)) + out[offset : offset + min(length, MAX_PAYLOAD - 4)]
        if ftype in (MsgType.INFER, MsgType.PROFILE):
            err = self._stage(payload)
            if err:
                return 0xFF, bytes([err, ftype])
            inp = bytes(self.staged)
        if ftype == MsgType.INFER:
            self.last_output[:] = _layer_output(inp, len(sizes) - 1, sizes)
            out = bytes(self.last_output)
            return ftype | 0x80, struct.pack("<QI", _count(inp), _crc32_bitwise(out)) + out[: MAX_PAYLOAD - 12]
        if ftype == MsgType.PROFILE:
            counts = [_count(inp) + i for i in range(len(sizes))]
            return ftype | 0x80, struct.pack(f"<H{len(counts)}Q", len(counts), *counts)
        if ftype == MsgType.DUMP:
            if len(payload) < 16:
                return 0xFF, bytes([ErrorCode.BAD_LENGTH, ftype])
            layer, offset, length = struct.unpack_from("<HIH", payload)
            if layer >= len(sizes):
                return 0xFF, bytes([ErrorCode.LAYER_OUT_OF_RANGE, ftype])
            err = self._stage(payload[8:])
            if err:
                return 0xFF, bytes([err, ftype])
            data = _layer_output(bytes(self.staged), layer, sizes)
            length = min(length, MAX_PAYLOAD - 4)
            return ftype | 0x80, struct.pack("<I", len(data)) + data[offset : offset + length]
        return 0xFF, bytes([ErrorCode.UNKNOWN_TYPE, ftype])

    def _reset(self, conn: socket.socket) -> None:
        self.resets += 1
        self.staged[:] = bytes(self.input_bytes)
        self.last_output[:] = bytes(len(self.last_output))
        conn.sendall(_frame(MsgType.HELLO | 0x80, 0, self.hello.encode()))

    def _send(self, conn: socket.socket, seq: int, rtype: int, payload: bytes) -> None:
        action = self.faults.popleft() if self.faults else None
        raw = _frame(rtype, seq, payload)
        if action == "reset":
            self._reset(conn)
            return
        if action == "boot":  # the announcement of a boot just finished, then the answer
            conn.sendall(_frame(MsgType.HELLO | 0x80, 0, self.hello.encode()) + raw)
            return
        if action == "wipe":  # a restart whose announcement never arrived: the answer, then amnesia
            conn.sendall(raw)
            self.staged[:] = bytes(self.input_bytes)
            self.last_output[:] = bytes(len(self.last_output))
            return
        if action == "drop":
            return
        if action == "corrupt":
            i = self._rng.randrange(2, len(raw))
            raw = raw[:i] + bytes([raw[i] ^ 0x10]) + raw[i + 1 :]
        elif action == "garbage":
            raw = b"\x00\xa5junk\x5a\xa5\xa5" + raw  # lone sof halves, no complete false header
        elif action == "stale":
            raw = _frame(rtype, (seq - 1) & 0xFF, payload[::-1]) + raw
        elif action == "crc_error":
            raw = _frame(0xFF, seq, bytes([ErrorCode.CRC_MISMATCH, rtype & 0x7F]))
        elif action == "bad_len":
            # A frame whose len promises far more than arrives: only the host's timeout rescan recovers.
            raw = SOF + bytes([rtype, seq]) + struct.pack("<H", 3000) + b"\x01\x02" + raw
        if action == "split":
            for b in raw:
                conn.sendall(bytes([b]))
        else:
            conn.sendall(raw)

    def _run(self) -> None:
        self._srv.settimeout(0.05)
        while not self._stop.is_set():  # a host that lost the link may connect again
            try:
                conn, _ = self._srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)
        state, hdr, payload, crc = "sof0", bytearray(), bytearray(), bytearray()
        need = 0
        last_rx = time.monotonic()
        with conn:
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(4096)
                except TimeoutError:
                    # TR_PROTO_IDLE_RESET_MS: a frame interrupted for longer than this is abandoned.
                    if self.idle_reset and time.monotonic() - last_rx > IDLE_RESET_S:
                        state = "sof0"
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                last_rx = time.monotonic()
                for b in chunk:
                    if state == "sof0":
                        state = "sof1" if b == 0xA5 else "sof0"
                    elif state == "sof1":
                        state = "hdr" if b == 0x5A else ("sof1" if b == 0xA5 else "sof0")
                        hdr.clear()
                    elif state == "hdr":
                        hdr.append(b)
                        if len(hdr) == 4:
                            need = hdr[2] | hdr[3] << 8
                            if need > MAX_PAYLOAD:
                                err = bytes([ErrorCode.PAYLOAD_TOO_LONG, hdr[0]])
                                conn.sendall(_frame(0xFF, hdr[1], err))
                                state = "sof0"
                            else:
                                payload.clear()
                                crc.clear()
                                state = "payload" if need else "crc"
                    elif state == "payload":
                        payload.append(b)
                        if len(payload) == need:
                            state = "crc"
                    elif state == "crc":
                        crc.append(b)
                        if len(crc) == 2:
                            state = "sof0"
                            body = bytes(hdr) + bytes(payload)
                            if _crc_bitwise(body) != (crc[0] | crc[1] << 8):
                                conn.sendall(_frame(0xFF, hdr[1], bytes([ErrorCode.CRC_MISMATCH, hdr[0]])))
                            else:
                                self.requests.append(Frame(hdr[0], hdr[1], bytes(payload)))
                                rtype, answer = self._answer(hdr[0], hdr[1], bytes(payload))
                                self._send(conn, hdr[1], rtype, answer)


@pytest.fixture
def device():
    devs: list[FakeDevice] = []

    def make(faults: list[str | None] | None = None, idle_reset: bool = True, **sizes: object) -> FakeDevice:
        devs.append(FakeDevice(faults, idle_reset, **sizes))
        return devs[-1]

    yield make
    for d in devs:
        d.close()


def _client(url: str, **kw) -> ProtocolClient:
    kw.setdefault("timeout_s", 0.3)
    kw.setdefault("retries", 3)
    kw.setdefault("per_byte_s", 0.0001)  # loopback drains fast; keeps the flush drain short
    return ProtocolClient(serial.serial_for_url(url, timeout=0.02), **kw)


# --------------------------------------------------------------------------------------------------------
# CRC and framing


def test_crc_known_vector() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1
    assert crc16_ccitt_false(b"") == 0xFFFF
    data = bytes(range(256)) * 3
    assert crc16_ccitt_false(data) == _crc_bitwise(data)


def test_encode_layout() -> None:
    raw = encode_frame(MsgType.INFER, 0x33, b"\x01\x02\x03")
    assert raw[:2] == b"\xa5\x5a"
    assert raw[2:6] == bytes([0x02, 0x33, 0x03, 0x00])
    assert raw[6:9] == b"\x01\x02\x03"
    assert struct.unpack("<H", raw[9:])[0] == crc16_ccitt_false(raw[2:9])
    assert raw == _frame(0x02, 0x33, b"\x01\x02\x03")


def test_encode_refuses_oversized() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        encode_frame(MsgType.INFER, 1, bytes(MAX_PAYLOAD + 1))
    assert len(encode_frame(MsgType.INFER, 1, bytes(MAX_PAYLOAD))) == MAX_PAYLOAD + 8


@pytest.mark.parametrize("size", [0, 1, 255, 4096])
def test_round_trip_every_split(size: int) -> None:
    payload = bytes(random.Random(size).randrange(256) for _ in range(size))
    raw = encode_frame(0x82, 200, payload)
    for cut in sorted({0, 1, 2, 5, 6, len(raw) // 2, len(raw) - 1}):
        dec = FrameDecoder()
        frames = dec.feed(raw[:cut]) + dec.feed(raw[cut:])
        assert frames == [Frame(0x82, 200, payload)]
        assert dec.pending == 0


def test_byte_at_a_time() -> None:
    raw = encode_frame(1, 9, b"abc") + encode_frame(2, 10, b"")
    dec = FrameDecoder()
    frames = [f for b in raw for f in dec.feed(bytes([b]))]
    assert frames == [Frame(1, 9, b"abc"), Frame(2, 10, b"")]


def test_resync_after_garbage() -> None:
    good = encode_frame(0x81, 4, b"hello")
    noise = b"\x00\xa5\xa5\x12\x5a\xff" + SOF + b"\x01"  # includes a false sof with a truncated header
    dec = FrameDecoder()
    frames = dec.feed(noise + good + b"\xa5")
    assert frames == [Frame(0x81, 4, b"hello")]
    assert dec.stats.garbage_bytes > 0 and dec.stats.resyncs > 0
    assert dec.pending == 1  # a trailing 0xA5 is kept: it may start the next sof


def test_garbage_run_counts_as_one_resync_however_it_arrives() -> None:
    stream = b"junk bytes without a start of frame" + encode_frame(0x81, 1, b"a")
    whole, bytewise = FrameDecoder(), FrameDecoder()
    assert whole.feed(stream) == [f for b in stream for f in bytewise.feed(bytes([b]))]
    assert whole.stats.resyncs == bytewise.stats.resyncs == 1
    assert whole.stats.garbage_bytes == bytewise.stats.garbage_bytes == 35


def test_resync_after_bad_crc_finds_frame_inside() -> None:
    good = encode_frame(0x82, 7, b"payload!")
    # A frame header whose len swallows the following good frame: bad CRC, then the rescan finds it.
    bogus = SOF + bytes([0x82, 6]) + struct.pack("<H", len(good)) + good + b"\x00\x00"
    dec = FrameDecoder()
    assert dec.feed(bogus) == [Frame(0x82, 7, b"payload!")]
    assert dec.stats.crc_errors == 1


def test_oversized_length_is_skipped() -> None:
    good = encode_frame(0x81, 1, b"x")
    dec = FrameDecoder()
    oversized = SOF + bytes([0x81, 1]) + struct.pack("<H", MAX_PAYLOAD + 1)
    assert dec.feed(oversized + good) == [Frame(0x81, 1, b"x")]
    assert dec.stats.oversized == 1


def test_abandon_partial_recovers_buffered_frame() -> None:
    good = encode_frame(0x82, 3, b"ok")
    dec = FrameDecoder()
    assert dec.feed(SOF + bytes([0x82, 3]) + struct.pack("<H", 3000) + good) == []
    assert dec.abandon_partial() == [Frame(0x82, 3, b"ok")]


def test_random_noise_never_yields_a_frame_that_was_not_sent() -> None:
    rng = random.Random(1)
    sent = [Frame(0x82, i, bytes(rng.randrange(256) for _ in range(rng.randrange(40)))) for i in range(1, 60)]
    stream = bytearray()
    for f in sent:
        stream += bytes(rng.randrange(256) for _ in range(rng.randrange(10)))
        stream += encode_frame(f.type, f.seq, f.payload)
    dec = FrameDecoder()
    got = [f for i in range(0, len(stream), 7) for f in dec.feed(bytes(stream[i : i + 7]))]
    assert got == sent


# --------------------------------------------------------------------------------------------------------
# Hello parsing and hash check


def test_hello_round_trip_and_hash_check() -> None:
    h = Hello(2, 0, 4, 784, 10, 4096, 480_000_000, bytes(range(32)), 1, "nucleo_h743zi", "0.1.0")
    parsed = Hello.parse(h.encode())
    assert parsed == h
    assert parsed.clock_fell_back_to_hsi and parsed.counter_unit == "cycles"
    check_model_hash(parsed, bytes(range(32)))
    with pytest.raises(ModelHashMismatch) as exc:
        check_model_hash(parsed, bytes(32))
    assert bytes(range(32)).hex() in str(exc.value) and bytes(32).hex() in str(exc.value)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda p: b"XXXX" + p[4:], "magic"),
        (lambda p: p[:4] + b"\x01" + p[5:], "protocol"),
        (lambda p: p[:-1], "NUL"),
        (lambda p: p[:20], "too short"),
    ],
)
def test_hello_rejects_malformed(mutate, match) -> None:
    h = Hello(2, 1, 2, 3, 4, 5, 6, bytes(32), 0, "b", "f")
    with pytest.raises(ProtocolError, match=match):
        Hello.parse(mutate(h.encode()))


# --------------------------------------------------------------------------------------------------------
# Client against the double


def test_clean_session(device) -> None:
    dev = device()
    c = _client(dev.url())
    hello = c.hello()
    assert hello == dev.hello and hello.counter_unit == "emulated instructions"
    inp = bytes(range(INPUT_BYTES))
    r = c.infer(inp)
    assert r.output == _layer_output(inp, 2) and r.count == _count(inp)
    assert c.profile(inp) == [_count(inp) + i for i in range(3)]
    assert c.dump(inp, 0) == _layer_output(inp, 0)
    assert c.dump(inp, 1) == _layer_output(inp, 1)  # 5000 bytes: two windows
    dumps = [f for f in dev.requests if f.type == MsgType.DUMP]
    assert [struct.unpack_from("<HIH", f.payload)[:2] for f in dumps] == [(0, 0), (1, 0), (1, 4092)]
    # The INFER carried the input inline; the device still holds it, so each DUMP states its CRC-32 only.
    assert [len(f.payload) for f in dev.requests if f.type == MsgType.INFER] == [8 + INPUT_BYTES]
    assert all(len(f.payload) == 8 + 8 for f in dumps)
    assert c.stats.retries == 0 and c.stats.crc_errors == 0


@pytest.mark.parametrize("fault", ["drop", "corrupt", "garbage", "stale", "crc_error", "split", "bad_len"])
def test_each_fault_is_recovered_with_identical_result(device, fault: str) -> None:
    dev = device([None, fault])  # HELLO clean, the first INFER answer damaged
    c = _client(dev.url())
    c.hello()
    inp = bytes(range(3, 3 + INPUT_BYTES))
    r = c.infer(inp)
    assert r.output == _layer_output(inp, 2) and r.count == _count(inp)
    infers = [f for f in dev.requests if f.type == MsgType.INFER]
    if fault in ("garbage", "stale", "split", "bad_len"):
        assert len(infers) == 1  # recovered without asking again
    else:
        assert len(infers) == 2 and infers[0].seq == infers[1].seq  # retried with the same seq
        assert c.stats.retries == 1
    if fault == "stale":
        assert c.stats.stale_frames == 1
    if fault == "garbage":
        assert c.stats.resyncs > 0
    if fault == "bad_len":
        assert c.stats.timeouts == 1  # the timeout rescan found the answer already buffered


def test_flush_ends_a_frame_the_device_swallows(device) -> None:
    """A request whose len was corrupted upward makes a device without idle reset swallow what follows;
    after a timeout the client's zero flush completes that frame so the retry is parsed."""
    dev = device(idle_reset=False)
    c = _client(dev.url(), retries=2)
    c.hello()
    c.port.write(SOF + bytes([MsgType.INFER, 99]) + struct.pack("<H", 3000) + b"\x01\x02")
    inp = bytes(range(7, 7 + INPUT_BYTES))
    r = c.infer(inp)
    assert r.output == _layer_output(inp, 2)
    assert c.stats.flushes == 1 and c.stats.timeouts == 1
    no_flush = _client(device(idle_reset=False).url(), retries=2, flush_on_timeout=False, timeout_s=0.1)
    no_flush.hello()
    no_flush.port.write(SOF + bytes([MsgType.INFER, 99]) + struct.pack("<H", 3000))
    with pytest.raises(TargetTimeout):
        no_flush.infer(inp)  # what the flush is for


def test_gives_up_with_clear_timeout(device) -> None:
    dev = device([None] + ["drop"] * 10)
    c = _client(dev.url(), retries=2, timeout_s=0.1)
    c.hello()
    with pytest.raises(TargetTimeout) as exc:
        c.infer(bytes(INPUT_BYTES))
    assert exc.value.request == "INFER" and exc.value.attempts == 3
    assert "INFER" in str(exc.value) and "3 attempt" in str(exc.value)
    assert c.stats.failures and c.stats.timeouts == 3


def test_device_error_is_not_retried(device) -> None:
    dev = device()
    c = _client(dev.url())
    c.hello()
    with pytest.raises(DeviceError, match="layer_out_of_range"):
        c.request(MsgType.DUMP, struct.pack("<HIH", 9, 0, 10) + bytes(INPUT_BYTES))
    assert c.stats.retries == 0
    with pytest.raises(ValueError, match="out of range"):
        c.dump(bytes(INPUT_BYTES), 3)
    with pytest.raises(ValueError, match="input has"):
        c.infer(bytes(INPUT_BYTES + 1))


def test_stale_answer_after_retry_is_discarded(device) -> None:
    # The first INFER answer is delayed past the timeout (split into bytes is fast, so use drop then a
    # duplicate): after a CRC-error retry the device answers twice; the second copy must not be taken
    # as the answer to the next request.
    dev = device([None, "corrupt", None, None])
    c = _client(dev.url())
    c.hello()
    a, b = bytes(range(INPUT_BYTES)), bytes(range(1, INPUT_BYTES + 1))
    assert c.infer(a).output == _layer_output(a, 2)
    assert c.infer(b).output == _layer_output(b, 2)


def test_fault_proxy_between_client_and_device(device) -> None:
    """Random drops and corruptions both ways: every answer complete and correct, or a clear error."""
    dev = device()
    inputs = [bytes(random.Random(i).randrange(256) for _ in range(INPUT_BYTES)) for i in range(40)]
    with FaultProxy(dev.port, drop_rate=0.004, corrupt_rate=0.004, seed=11, max_faults=30) as proxy:
        c = _client(f"socket://127.0.0.1:{proxy.port}", timeout_s=0.2, retries=6)
        got = []
        for inp in inputs:
            r = c.infer(inp)
            got.append((r.output, r.count))
        assert c.dump(inputs[0], 1) == _layer_output(inputs[0], 1)
        assert proxy.total_faults > 0
    assert got == [(_layer_output(i, 2), _count(i)) for i in inputs]
    assert c.stats.retries > 0


def test_fault_proxy_refuses_non_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy(1234, upstream_host="8.8.8.8")


# --------------------------------------------------------------------------------------------------------
# Tensors larger than a frame (protocol version 2)

BIG_INPUT = 10_000  # head staged in LOAD chunks, tail inline in the INFER
BIG_SIZES = (40, 9_000)  # the output takes the INFER's first window and two READ windows


def _big_input(seed: int) -> bytes:
    return bytes(random.Random(seed).randrange(256) for _ in range(BIG_INPUT))


def test_input_and_output_larger_than_a_frame(device) -> None:
    dev = device(input_bytes=BIG_INPUT, layer_sizes=BIG_SIZES)
    c = _client(dev.url())
    inp = _big_input(1)
    r = c.infer(inp)
    assert r.output == _layer_output(inp, 1, BIG_SIZES) and r.count == _count(inp)
    loads = [f for f in dev.requests if f.type == MsgType.LOAD]
    assert [struct.unpack_from("<I", f.payload)[0] for f in loads] == [0, 4092]  # 5,912 bytes staged ahead
    assert [len(f.payload) for f in dev.requests if f.type == MsgType.INFER] == [8 + BIG_INPUT - 5912]
    assert [struct.unpack("<IH", f.payload) for f in dev.requests if f.type == MsgType.READ] == [
        (4084, 4092), (8176, 824)]
    assert c.stats.load_chunks == 2 and c.stats.read_windows == 2
    # The device still holds this input: PROFILE and DUMP send its CRC-32, not its bytes.
    assert c.profile(inp) == [_count(inp) + i for i in range(2)]
    assert c.dump(inp, 1) == _layer_output(inp, 1, BIG_SIZES)
    assert c.stats.load_chunks == 2
    other = _big_input(2)
    assert c.infer(other).output == _layer_output(other, 1, BIG_SIZES) and c.stats.load_chunks == 4


@pytest.mark.parametrize("fault, at", [("reset", 2), ("reset", 3), ("reset", 4), ("wipe", 2), ("wipe", 3)])
def test_device_restart_mid_transfer_is_survived(device, fault: str, at: int) -> None:
    """A restart during a multi-frame transfer (after LOAD 1, after LOAD 2, after the INFER): the whole
    transaction is done again; announced or not, a wiped staging buffer never yields a wrong output."""
    dev = device([None] * at + [fault], input_bytes=BIG_INPUT, layer_sizes=BIG_SIZES)
    c = _client(dev.url())
    c.hello()  # answer 1
    inp = _big_input(3)
    r = c.infer(inp)
    assert r.output == _layer_output(inp, 1, BIG_SIZES) and r.count == _count(inp)
    assert dev.resets == (fault == "reset")
    if fault == "reset":
        assert c.stats.device_resets == 1 and c.stats.events
    else:  # no announcement: the device's CRC-32 check (input) or the host's (output) caught it
        assert c.stats.staged_reloads + c.stats.output_crc_errors >= 1
    assert c.stats.load_chunks > 2  # the input was staged again


def test_boot_announcement_answers_the_first_hello(device) -> None:
    """A device that boots while the host's first HELLO is in flight (QEMU started a moment before the
    host connected) announces what the HELLO asks: that is the answer, not a restart, even with no
    retries left. After the first HELLO the same announcement is a restart and is counted."""
    dev = device(["boot", None, "boot"])
    c = _client(dev.url(), retries=0)
    assert c.hello().model_hash == MODEL_HASH
    assert c.stats.device_resets == 0 and not c.stats.failures
    inp = bytes(range(INPUT_BYTES))
    assert c.infer(inp).output == _layer_output(inp, len(LAYER_SIZES) - 1, LAYER_SIZES)
    with pytest.raises(ProtocolError, match="restarted"):
        c.infer(inp)
    assert c.stats.device_resets == 1


def test_restart_into_another_model_is_refused(device) -> None:
    dev = device([None, "reset"])
    c = _client(dev.url())
    c.hello()
    dev.hello = Hello(2, 1, 3, INPUT_BYTES, OUTPUT_BYTES, 6000, 25_000_000, bytes(32), 0, "fake_board", "x")
    with pytest.raises(ModelHashMismatch):
        c.infer(bytes(INPUT_BYTES))


def test_big_transfers_through_fault_proxy(device) -> None:
    dev = device(input_bytes=BIG_INPUT, layer_sizes=BIG_SIZES)
    with FaultProxy(dev.port, drop_rate=0.0005, corrupt_rate=0.0005, seed=5, max_faults=25) as proxy:
        c = _client(f"socket://127.0.0.1:{proxy.port}", timeout_s=0.3, retries=8)
        for seed in range(4):
            inp = _big_input(10 + seed)
            assert c.infer(inp).output == _layer_output(inp, 1, BIG_SIZES)
        assert proxy.total_faults > 0
    assert c.stats.retries > 0


def test_servable_limits() -> None:
    assert servable_problems(27_648, 9_216, 511) == []
    assert servable_problems(10**6, 10**6, 3) == []  # any size travels in chunks
    (problem,) = servable_problems(16, 4, 512)
    assert "512 layers" in problem and "at most 511" in problem
    assert servable_problems(0, 4, 3)
