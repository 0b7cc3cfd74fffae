"""Host side of the tinyrobust wire protocol, version 2 (see firmware/app/PROTOCOL.md).

Frame: ``A5 5A | type u8 | seq u8 | len u16le | payload | crc16le``; the CRC is CRC-16/CCITT-FALSE over
type, seq, len and payload. The host is the only side that initiates; the device answers each request
with exactly one frame of type ``request | 0x80`` or an error frame (type ``0xFF``), and announces a
(re)start with an unsolicited HELLO answer of seq 0.

Tensors of any size: an input larger than one frame is staged on the device in LOAD chunks, and every
request that runs the model states the CRC-32 of the whole input it means; an output larger than one
frame is read back in READ windows and checked against the CRC-32 the INFER answer states.

This module owns framing, the streaming decoder and the request/retry logic. It never interprets model
outputs: a result either arrives complete and CRC-checked with the request's seq, or the call raises.
"""

from __future__ import annotations

import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from typing import TypeVar

import serial

from ..errors import TargetError

SOF = b"\xa5\x5a"
HEADER_SIZE = 6  # sof(2) + type + seq + len(2)
CRC_SIZE = 2
MAX_PAYLOAD = 4096  # TR_PROTO_MAX_PAYLOAD
MAX_FRAME = MAX_PAYLOAD + 8
PROTOCOL_VERSION = 2
HELLO_MAGIC = b"TRNN"
RESPONSE_BIT = 0x80
_T = TypeVar("_T")
ANNOUNCE_SEQ = 0  # the device's HELLO at boot; the host never uses seq 0
DUMP_HEADER = struct.Struct("<HIH")  # layer, offset, length (precedes the input section)
INPUT_SECTION = struct.Struct("<II")  # crc32 of the whole input, offset of the chunk that follows
INFER_HEADER = struct.Struct("<QI")  # count, crc32 of the whole output (then its first window)
READ_REQUEST = struct.Struct("<IH")  # offset, length
WINDOW_TOTAL = struct.Struct("<I")  # precedes a DUMP / READ window
LOAD_OFFSET = struct.Struct("<I")
# What one frame can carry, after each request's fixed fields.
LOAD_CHUNK = MAX_PAYLOAD - LOAD_OFFSET.size
MAX_WINDOW = MAX_PAYLOAD - WINDOW_TOTAL.size
INFER_FIRST_WINDOW = MAX_PAYLOAD - INFER_HEADER.size
# PROFILE answers every layer in one frame (u16 count, u64 per layer); layer indices are u16.
MAX_LAYERS = min((MAX_PAYLOAD - 2) // 8, 0xFFFF)


class MsgType(IntEnum):
    HELLO = 0x01
    INFER = 0x02
    PROFILE = 0x03
    DUMP = 0x04
    LOAD = 0x05
    READ = 0x06
    ERROR = 0xFF


class ErrorCode(IntEnum):
    CRC_MISMATCH = 1
    PAYLOAD_TOO_LONG = 2
    BAD_LENGTH = 3
    UNKNOWN_TYPE = 4
    LAYER_OUT_OF_RANGE = 5
    INFERENCE_FAILED = 6
    OUT_OF_RANGE = 7
    INPUT_MISMATCH = 8


class CounterKind(IntEnum):
    DWT_CYCLES = 0
    EMULATED_INSTRUCTIONS = 1
    NONE = 2


COUNTER_UNITS = {
    CounterKind.DWT_CYCLES: "cycles",
    CounterKind.EMULATED_INSTRUCTIONS: "emulated instructions",
    CounterKind.NONE: "none",
}

# Error codes that mean "the request was damaged in transit": the device never saw a valid frame, so
# sending the same request again is the right answer. Code 2 is included because the host never sends
# a payload over MAX_PAYLOAD (encode_frame refuses), so a device that saw one saw a corrupted len field.
RETRYABLE_ERRORS = frozenset({ErrorCode.CRC_MISMATCH, ErrorCode.PAYLOAD_TOO_LONG})



def servable_problems(input_bytes: int, output_bytes: int, layers: int) -> list[str]:
    """What keeps a model from being served by the evaluation firmware: the limits tr_app.c enforces
    with _Static_assert, checked here first so an export never says a model fits that cannot build."""
    problems = []
    if layers > MAX_LAYERS:
        problems.append(f"{layers} layers, the firmware serves at most {MAX_LAYERS} (PROFILE answers every "
                        f"layer's count in one {MAX_PAYLOAD}-byte frame)")
    if input_bytes <= 0 or output_bytes <= 0:
        problems.append(f"input of {input_bytes} and output of {output_bytes} bytes: both must be non-empty")
    if input_bytes > 0xFFFFFFFF or output_bytes > 0xFFFFFFFF:
        problems.append("tensor offsets travel as u32: inputs and outputs must be < 4 GiB")
    return problems


# --------------------------------------------------------------------------------------------------------
# Exceptions


class ProtocolError(TargetError):
    """The device answered something that does not follow the protocol, or refused a request."""


class TargetTimeout(ProtocolError):
    """No valid answer after every attempt."""

    def __init__(self, request: str, attempts: int, timeout_s: float, detail: str = "") -> None:
        self.request = request
        self.attempts = attempts
        self.timeout_s = timeout_s
        msg = f"no valid response to {request} after {attempts} attempt(s) of {timeout_s:.2f} s each"
        super().__init__(msg + (f" ({detail})" if detail else ""))


class LinkLost(ProtocolError):
    """The transport itself failed (socket closed, port unplugged, emulator exited)."""


class DeviceError(ProtocolError):
    """The device answered with an error frame that retrying cannot fix."""

    def __init__(self, request: str, code: int, request_type: int) -> None:
        self.request = request
        self.code = code
        self.request_type = request_type
        try:
            name = ErrorCode(code).name.lower()
        except ValueError:
            name = "unknown error code"
        super().__init__(
            f"device refused {request}: error {code} ({name}), request type 0x{request_type:02x}"
        )


class RequestCancelled(ProtocolError):
    """Another thread called cancel(): the run is ending and this request's answer is no longer wanted."""


class DeviceReset(ProtocolError):
    """The device announced a (re)start mid-request: what it had staged or computed is gone."""


class StagedInputLost(DeviceError):
    """The device's staged input does not match the request's CRC-32 (a lost chunk, or a reset)."""


class OutputMismatch(ProtocolError):
    """The output assembled from several frames does not match the CRC-32 the device stated."""


class ModelHashMismatch(ProtocolError):
    """The firmware on the target was built from a different Program than the export."""

    def __init__(self, device_hash: bytes, expected_hash: bytes) -> None:
        self.device_hash = device_hash
        self.expected_hash = expected_hash
        super().__init__(
            f"model hash mismatch: target firmware has {device_hash.hex()}, the export expects "
            f"{expected_hash.hex()}; rebuild and flash the firmware for this export"
        )


# --------------------------------------------------------------------------------------------------------
# CRC and framing


def _make_crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC_TABLE = _make_crc_table()


def crc16_ccitt_false(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, MSB first, no xorout. check("123456789") = 0x29B1."""
    for b in bytes(data):
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[((crc >> 8) ^ b) & 0xFF]
    return crc


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes


def encode_frame(frame_type: int, seq: int, payload: bytes = b"") -> bytes:
    """Serialise one frame. Raises ValueError on out-of-range fields (never sends an illegal frame)."""
    if not 0 <= frame_type <= 0xFF or not 0 <= seq <= 0xFF:
        raise ValueError(f"type {frame_type} / seq {seq} out of u8 range")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the protocol maximum {MAX_PAYLOAD}")
    body = struct.pack("<BBH", frame_type, seq, len(payload)) + bytes(payload)
    return SOF + body + struct.pack("<H", crc16_ccitt_false(body))


@dataclass
class DecoderStats:
    frames: int = 0
    crc_errors: int = 0
    oversized: int = 0
    garbage_bytes: int = 0
    resyncs: int = 0  # times the decoder lost sync (a garbage run, a bad CRC, an oversize, a timeout)


class FrameDecoder:
    """Streaming decoder: feed arbitrary chunks, get complete CRC-valid frames back.

    Resynchronisation mirrors the device: on a bad CRC or an oversized length the decoder drops only the
    first sof byte and hunts again in what it already buffered, so a valid frame hidden behind garbage
    or inside a truncated frame is still found.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self._buf = bytearray()
        self.stats = DecoderStats()
        self._hunting = False  # inside a run of garbage: counted as one resync however it arrives

    @property
    def pending(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        self._buf.extend(data)
        frames: list[Frame] = []
        buf = self._buf
        while True:
            start = buf.find(SOF)
            if start < 0:
                # Keep a trailing 0xA5: it may be the first half of a sof split across reads.
                keep = 1 if buf and buf[-1] == SOF[0] else 0
                self._drop(len(buf) - keep)
                break
            if start:
                self._drop(start)
            if len(buf) < HEADER_SIZE:
                break
            length = buf[4] | (buf[5] << 8)
            if length > self.max_payload:
                self.stats.oversized += 1
                self._skip_sof()
                continue
            end = HEADER_SIZE + length + CRC_SIZE
            if len(buf) < end:
                break
            got = buf[end - 2] | (buf[end - 1] << 8)
            if crc16_ccitt_false(memoryview(buf)[2 : HEADER_SIZE + length]) != got:
                self.stats.crc_errors += 1
                self._skip_sof()
                continue
            frames.append(Frame(buf[2], buf[3], bytes(buf[HEADER_SIZE : HEADER_SIZE + length])))
            self.stats.frames += 1
            self._hunting = False
            del buf[:end]
        return frames

    def abandon_partial(self) -> list[Frame]:
        """Give up on a frame that stopped arriving (its len was probably corrupted) and rescan after it.

        The host calls this on a timeout; it plays the role of the device's idle reset.
        """
        if len(self._buf) >= len(SOF) and self._buf.startswith(SOF):
            self._skip_sof()
            return self.feed(b"")
        return []

    def _drop(self, n: int) -> None:
        if n > 0:
            self.stats.garbage_bytes += n
            if not self._hunting:
                self._hunting = True
                self.stats.resyncs += 1
            del self._buf[:n]

    def _skip_sof(self) -> None:
        # Resume from the byte after the bad frame's first sof byte; what the hunt then skips belongs
        # to this same loss of sync.
        self.stats.resyncs += 1
        self._hunting = True
        del self._buf[:1]


# --------------------------------------------------------------------------------------------------------
# Messages


@dataclass(frozen=True)
class Hello:
    protocol_version: int
    counter_kind: int
    layers: int
    input_bytes: int
    output_bytes: int
    arena_bytes: int
    core_clock_hz: int
    model_hash: bytes
    flags: int
    board: str
    firmware_version: str

    @property
    def clock_fell_back_to_hsi(self) -> bool:
        return bool(self.flags & 0x01)

    @property
    def counter_unit(self) -> str:
        try:
            return COUNTER_UNITS[CounterKind(self.counter_kind)]
        except ValueError:
            return f"unknown counter kind {self.counter_kind}"

    @classmethod
    def parse(cls, payload: bytes) -> Hello:
        fixed = struct.Struct("<4sBBHIIII32sB")
        if len(payload) < fixed.size + 2:
            raise ProtocolError(f"HELLO response too short: {len(payload)} bytes, need ≥ {fixed.size + 2}")
        magic, version, kind, layers, inb, outb, arena, clock, mhash, flags = fixed.unpack_from(payload)
        if magic != HELLO_MAGIC:
            raise ProtocolError(f"HELLO magic is {magic!r}, not {HELLO_MAGIC!r}: not tinyrobust firmware")
        if version != PROTOCOL_VERSION:
            raise ProtocolError(f"device speaks protocol {version}, this host speaks {PROTOCOL_VERSION}: "
                                "rebuild the firmware with this tinyrobust (and flash it)")
        strings = payload[fixed.size :].split(b"\x00")
        # Two NUL-terminated strings leave [board, firmware, trailing-empty].
        if len(strings) != 3 or strings[2] != b"":
            raise ProtocolError("HELLO response must end with exactly two NUL-terminated strings")
        board, firmware = (s.decode("utf-8", errors="replace") for s in strings[:2])
        return cls(version, kind, layers, inb, outb, arena, clock, mhash, flags, board, firmware)

    def encode(self) -> bytes:
        """Inverse of parse (used by test doubles and by tools that record sessions)."""
        return (
            struct.pack(
                "<4sBBHIIII32sB", HELLO_MAGIC, self.protocol_version, self.counter_kind, self.layers,
                self.input_bytes, self.output_bytes, self.arena_bytes, self.core_clock_hz, self.model_hash,
                self.flags,
            )
            + self.board.encode() + b"\x00" + self.firmware_version.encode() + b"\x00"
        )


@dataclass(frozen=True)
class InferResult:
    output: bytes
    count: int


def check_model_hash(hello: Hello, expected: bytes) -> None:
    """Refuse a firmware built from another Program (DESIGN: the host never evaluates a stale image)."""
    if hello.model_hash != bytes(expected):
        raise ModelHashMismatch(hello.model_hash, bytes(expected))


# --------------------------------------------------------------------------------------------------------
# Client


@dataclass
class LinkStats:
    """What it took to get the answers; shown in the validate report."""

    requests: int = 0
    attempts: int = 0
    retries: int = 0
    timeouts: int = 0
    crc_errors: int = 0  # bad frames the host received
    device_crc_errors: int = 0  # error frames: the device received a damaged request
    stale_frames: int = 0
    flushes: int = 0  # zero-fills sent after a timeout to end a swallowed frame on the device
    resyncs: int = 0
    garbage_bytes: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    load_chunks: int = 0  # LOAD frames: inputs larger than one frame
    read_windows: int = 0  # READ frames: outputs larger than one frame
    device_resets: int = 0  # HELLO announcements mid-run: the device restarted
    staged_reloads: int = 0  # inputs staged again because the device no longer held them
    output_crc_errors: int = 0  # outputs read again because the pieces did not add up
    reconnects: int = 0  # links re-opened to a device that was still running
    restarts: int = 0  # emulator instances started again after they died or hung
    resent_samples: int = 0  # samples sent again after a reconnect or a restart
    failures: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # reconnects, restarts, resets: what happened when

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def merge(self, other: LinkStats) -> None:
        for key, value in asdict(other).items():
            if isinstance(value, list):
                getattr(self, key).extend(value)
            else:
                setattr(self, key, getattr(self, key) + value)


class ProtocolClient:
    """Request/response over any pyserial port (a real UART, or ``socket://`` for QEMU / Renode).

    Each attempt waits ``timeout_s + per_byte_s * request_bytes``: emulated UARTs drain requests slowly
    (QEMU's CMSDK UART, a 115200 baud board), so the wait must grow with the request size. Retries reuse the
    request's seq (PROTOCOL.md); after a timeout the client first sends a zero flush (see
    ``_flush_device``). ``timeout_s`` should exceed the device's TR_PROTO_IDLE_RESET_MS (500 ms).
    Every request either returns a complete, CRC-checked, seq-matched and length-checked payload or
    raises a ProtocolError subclass; ``stats`` counts what it took.

    A transfer of several frames (an input staged in LOAD chunks, an output read in READ windows) is one
    *transaction*: when the device announces a restart, refuses the staged input, or the output does not
    add up to its CRC-32, the whole transaction is done again (at most ``retries`` more times).
    """

    def __init__(
        self,
        port: serial.SerialBase,
        *,
        timeout_s: float = 2.0,
        retries: int = 3,
        per_byte_s: float = 0.0005,
        poll_s: float = 0.02,
        flush_on_timeout: bool = True,
    ) -> None:
        if retries < 0 or timeout_s <= 0:
            raise ValueError("retries must be ≥ 0 and timeout_s > 0")
        self.port = port
        self.timeout_s = timeout_s
        self.retries = retries
        self.per_byte_s = per_byte_s
        self.flush_on_timeout = flush_on_timeout
        self.port.timeout = poll_s
        self.stats = LinkStats()
        self._decoder = FrameDecoder()
        self._seq = 0
        self._hello: Hello | None = None
        self._staged_crc: int | None = None  # CRC-32 of the whole input the device holds, as far as we know
        self._cancelled = threading.Event()

    # ---- public API ----------------------------------------------------------------------------------

    def cancel(self) -> None:
        """From another thread: the request in flight (and any later one) raises RequestCancelled."""
        self._cancelled.set()

    def resume(self) -> None:
        self._cancelled.clear()

    def hello(self) -> Hello:
        self._hello = self._transaction("HELLO", lambda: Hello.parse(self.request(MsgType.HELLO, b"")))
        return self._hello

    @property
    def device(self) -> Hello:
        """The HELLO answer, asked for once; sizes from it validate every later response."""
        return self._hello if self._hello is not None else self.hello()

    def infer(self, input: bytes) -> InferResult:
        dev = self.device
        self._check_input(input, dev)
        first = min(dev.output_bytes, INFER_FIRST_WINDOW)

        def once() -> InferResult:
            payload = self._with_input(MsgType.INFER, b"", bytes(input))
            if len(payload) != INFER_HEADER.size + first:
                raise ProtocolError(
                    f"INFER response has {len(payload)} bytes, expected {INFER_HEADER.size + first}"
                )
            count, crc = INFER_HEADER.unpack_from(payload)
            output = bytearray(payload[INFER_HEADER.size :])
            while len(output) < dev.output_bytes:
                output += self._read_window(len(output), dev.output_bytes)
            if zlib.crc32(output) != crc:
                raise OutputMismatch(f"INFER output of {len(output)} bytes does not match its CRC-32")
            return InferResult(output=bytes(output), count=count)

        return self._transaction("INFER", once)

    def profile(self, input: bytes) -> list[int]:
        dev = self.device
        self._check_input(input, dev)

        def once() -> list[int]:
            payload = self._with_input(MsgType.PROFILE, b"", bytes(input))
            if len(payload) < 2:
                raise ProtocolError("PROFILE response shorter than its layer count")
            (layers,) = struct.unpack_from("<H", payload)
            if layers != dev.layers or len(payload) != 2 + 8 * layers:
                raise ProtocolError(
                    f"PROFILE response: {layers} layers in {len(payload)} bytes, device said {dev.layers} layers"
                )
            return list(struct.unpack_from(f"<{layers}Q", payload, 2))

        return self._transaction("PROFILE", once)

    def dump(self, input: bytes, layer: int, chunk: int = MAX_WINDOW) -> bytes:
        """Output tensor of ``layer`` for ``input``, fetched in windows of at most ``chunk`` bytes."""
        dev = self.device
        self._check_input(input, dev)
        if not 0 <= layer < dev.layers:
            raise ValueError(f"layer {layer} out of range: the model has {dev.layers} layers")
        chunk = min(chunk, MAX_WINDOW)  # the response carries u32 total before the window
        out = bytearray()
        total: int | None = None

        def window() -> bytes:
            header = DUMP_HEADER.pack(layer, len(out), chunk)
            return self._with_input(MsgType.DUMP, header, bytes(input))

        while total is None or len(out) < total:
            payload = self._transaction("DUMP", window)
            if len(payload) < WINDOW_TOTAL.size:
                raise ProtocolError("DUMP response shorter than its total field")
            (this_total,) = WINDOW_TOTAL.unpack_from(payload)
            if total is None:
                total = this_total
            elif this_total != total:
                raise ProtocolError(f"DUMP total changed between windows: {total} then {this_total}")
            data = payload[WINDOW_TOTAL.size :]
            if len(data) != min(chunk, total - len(out)):
                raise ProtocolError(
                    f"DUMP window at offset {len(out)} has {len(data)} bytes, expected "
                    f"{min(chunk, total - len(out))} of {total}"
                )
            out.extend(data)
        return bytes(out)

    # ---- transactions: tensors of any size -----------------------------------------------------------

    def _transaction(self, name: str, once: Callable[[], _T]) -> _T:
        """Run ``once`` again when the device restarted or lost what a multi-frame transfer staged."""
        for _ in range(1 + self.retries):
            try:
                return once()
            except DeviceReset:
                self._staged_crc = None
            except StagedInputLost:
                self._staged_crc = None
                self.stats.staged_reloads += 1
            except OutputMismatch:
                self.stats.output_crc_errors += 1
        msg = f"{name}: the device restarted or lost the transfer {1 + self.retries} times in a row"
        self.stats.failures.append(msg)
        raise ProtocolError(msg)

    def _with_input(self, req_type: MsgType, prefix: bytes, data: bytes) -> bytes:
        """Send ``req_type`` with its fixed fields ``prefix`` and the input ``data``: inline when it fits the
        frame, else the head staged in LOAD chunks and the tail inline; nothing when the device already
        holds exactly this input (its CRC-32 decides, on the device)."""
        crc = zlib.crc32(data)
        room = MAX_PAYLOAD - len(prefix) - INPUT_SECTION.size
        if self._staged_crc == crc:
            offset = len(data)  # an empty chunk at the end: the device checks what it holds
        else:
            offset = max(0, len(data) - room)
            for lo in range(0, offset, LOAD_CHUNK):
                self._load(lo, data[lo : min(offset, lo + LOAD_CHUNK)])
        payload = self.request(req_type, prefix + INPUT_SECTION.pack(crc, offset) + data[offset:])
        self._staged_crc = crc
        return payload

    def _load(self, offset: int, chunk: bytes) -> None:
        self.stats.load_chunks += 1
        answer = self.request(MsgType.LOAD, LOAD_OFFSET.pack(offset) + chunk)
        if answer != LOAD_OFFSET.pack(offset + len(chunk)):
            raise ProtocolError(f"LOAD at offset {offset}: device acknowledged {answer.hex()}")

    def _read_window(self, offset: int, total: int) -> bytes:
        self.stats.read_windows += 1
        want = min(MAX_WINDOW, total - offset)
        payload = self.request(MsgType.READ, READ_REQUEST.pack(offset, want))
        if len(payload) != WINDOW_TOTAL.size + want or WINDOW_TOTAL.unpack_from(payload)[0] != total:
            raise ProtocolError(f"READ window at offset {offset}: {len(payload)} bytes, expected "
                                f"{WINDOW_TOTAL.size + want} of a {total}-byte output")
        return payload[WINDOW_TOTAL.size :]

    def request(self, req_type: MsgType, payload: bytes) -> bytes:
        """Send one request and return the matching response payload, retrying what is retryable."""
        name = req_type.name
        seq = self._next_seq()
        frame = encode_frame(req_type, seq, payload)
        wait_s = self.timeout_s + self.per_byte_s * len(frame)
        attempts = 1 + self.retries
        self.stats.requests += 1
        last_problem = ""
        for attempt in range(attempts):
            try:
                if attempt and last_problem == "timeout" and self.flush_on_timeout:
                    late = self._flush_device(seq, req_type)
                    if late is not None:
                        return late
                if attempt:
                    self.stats.retries += 1
                self.stats.attempts += 1
                self.port.write(frame)
                self.port.flush()
                self.stats.bytes_sent += len(frame)
                outcome, answer = self._await(seq, req_type, wait_s)
            except (serial.SerialException, OSError) as exc:
                self.stats.failures.append(f"{name} seq {seq}: link lost: {exc}")
                raise LinkLost(f"link to the target lost during {name} (seq {seq}): {exc}") from exc
            if outcome == "ok":
                return answer
            last_problem = outcome
        self.stats.failures.append(f"{name} seq {seq}: {last_problem}")
        raise TargetTimeout(name, attempts, wait_s, last_problem)

    # ---- internals -----------------------------------------------------------------------------------

    def _next_seq(self) -> int:
        # seq 0 is what the device uses when it could not read a seq, so the host never picks it.
        self._seq = self._seq % 255 + 1
        return self._seq

    @staticmethod
    def _check_input(data: bytes, dev: Hello) -> None:
        if len(data) != dev.input_bytes:
            raise ValueError(f"input has {len(data)} bytes, the model takes {dev.input_bytes}")

    def _flush_device(self, seq: int, req_type: MsgType) -> bytes | None:
        """Push the device parser out of a frame whose len field was corrupted in transit.

        Such a frame makes the device swallow up to MAX_PAYLOAD bytes of later requests; its idle
        reset would end that, but not every board has one that runs (QEMU's SysTick does not advance
        while the firmware sleeps). Zeros can never form a sof, so MAX_FRAME of them complete any
        partial frame, which then fails its CRC and is dropped by the device. Error frames the flush
        provokes are ignored; a late valid answer to this request is still accepted.
        """
        flush = bytes(MAX_FRAME)
        self.port.write(flush)
        self.port.flush()
        self.stats.bytes_sent += len(flush)
        self.stats.flushes += 1
        deadline = time.monotonic() + self.per_byte_s * len(flush) + 0.05
        while time.monotonic() < deadline:
            for fr in self._read_frames():
                if self._is_announcement(fr):
                    if self._answers_first_hello(req_type):
                        return fr.payload
                    self._announced(fr)
                if fr.seq == seq and fr.type == (req_type | RESPONSE_BIT):
                    return fr.payload
                self.stats.stale_frames += 1
        return None

    def _await(self, seq: int, req_type: MsgType, wait_s: float) -> tuple[str, bytes]:
        """Wait for this attempt's answer. Returns ("ok", payload) or (reason to retry, b"")."""
        deadline = time.monotonic() + wait_s
        dec = self._decoder
        crc_before = dec.stats.crc_errors
        while True:
            if self._cancelled.is_set():
                raise RequestCancelled(f"{req_type.name} (seq {seq}) cancelled: the run is stopping")
            verdict = self._match(self._read_frames(), seq, req_type)
            if verdict is not None:
                return verdict
            if dec.stats.crc_errors != crc_before:
                # A damaged frame may have been our answer; asking again is faster than waiting it out.
                return "CRC error in response", b""
            if time.monotonic() >= deadline:
                self.stats.timeouts += 1
                # The frame in progress will not complete (dropped bytes or a corrupted len): rescan it.
                verdict = self._match(dec.abandon_partial(), seq, req_type)
                self._sync_decoder_stats()
                return verdict if verdict is not None else ("timeout", b"")

    def _match(self, frames: list[Frame], seq: int, req_type: MsgType) -> tuple[str, bytes] | None:
        for fr in frames:
            if self._is_announcement(fr):
                if self._answers_first_hello(req_type):
                    return "ok", fr.payload
                self._announced(fr)
            if fr.seq != seq:
                self.stats.stale_frames += 1
                continue
            if fr.type == MsgType.ERROR:
                if len(fr.payload) != 2:
                    raise ProtocolError(f"malformed error frame for {req_type.name}: {fr.payload.hex()}")
                code, rtype = fr.payload
                if code in RETRYABLE_ERRORS:
                    self.stats.device_crc_errors += 1
                    return f"device reported error {code} (damaged request)", b""
                if code == ErrorCode.INPUT_MISMATCH:
                    raise StagedInputLost(req_type.name, code, rtype)
                raise DeviceError(req_type.name, code, rtype)
            if fr.type != (req_type | RESPONSE_BIT):
                raise ProtocolError(
                    f"response type 0x{fr.type:02x} to {req_type.name} (seq {seq}), expected "
                    f"0x{req_type | RESPONSE_BIT:02x}"
                )
            return "ok", fr.payload
        return None

    @staticmethod
    def _is_announcement(frame: Frame) -> bool:
        return frame.seq == ANNOUNCE_SEQ and frame.type == (MsgType.HELLO | RESPONSE_BIT)

    def _answers_first_hello(self, req_type: MsgType) -> bool:
        """A device that boots while the host's first HELLO is in flight announces exactly what that
        HELLO asks; nothing was staged yet, so the announcement is the answer, not a restart."""
        return req_type == MsgType.HELLO and self._hello is None

    def _announced(self, frame: Frame) -> None:
        """The device's HELLO at boot: it restarted, so whatever this request relied on is gone. A
        device that now runs another model is refused; otherwise the transaction starts again."""
        try:
            hello = Hello.parse(frame.payload)
        except ProtocolError:
            return  # not a HELLO this host understands: let the request time out and say so
        self._staged_crc = None
        if self._hello is not None:
            check_model_hash(hello, self._hello.model_hash)
            self.stats.device_resets += 1
            self.stats.events.append(f"device restarted (HELLO announced) after {self.stats.requests} requests")
        raise DeviceReset("the device restarted")

    def _read_frames(self) -> list[Frame]:
        data = self.port.read(max(1, self.port.in_waiting))
        if not data:
            return []
        self.stats.bytes_received += len(data)
        frames = self._decoder.feed(data)
        self._sync_decoder_stats()
        return frames

    def _sync_decoder_stats(self) -> None:
        # One decoder per client, so its cumulative counters are the link's.
        d = self._decoder.stats
        self.stats.resyncs, self.stats.garbage_bytes = d.resyncs, d.garbage_bytes
        self.stats.crc_errors = d.crc_errors
