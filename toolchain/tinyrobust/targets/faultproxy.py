"""A loopback TCP proxy that breaks the link the way real links break, to prove a run never yields a wrong
number: it completes correctly, or fails with a clear error.

Sits between the host (pyserial ``socket://``) and an emulator's UART socket. Two kinds of faults:

- **Random, per byte:** every forwarded byte is dropped with probability ``drop_rate`` or XOR-ed with a
  random non-zero value with probability ``corrupt_rate``, drawn from one seeded RNG per direction so a
  failing run can be replayed. Their number is capped (``max_faults``) so a test always terminates.
- **Scheduled events** (`Fault`), each fired once when the bytes forwarded in its direction reach
  ``at_byte``: ``delay`` (the link stalls for ``seconds``), ``burst`` (the next ``length`` bytes are
  corrupted, as a noise burst or a glitching cable would), ``disconnect`` (both sockets close; the proxy
  then accepts the host's next connection, like a USB cable pulled and plugged back), and two that call
  the test's hands on the device: ``reset`` (``on_reset``, e.g. QemuInstance.reset) and ``kill``
  (``on_kill``, e.g. SIGKILL to the emulator).
"""

from __future__ import annotations

import ipaddress
import random
import select
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

FAULT_KINDS = ("delay", "burst", "disconnect", "reset", "kill")
DIRECTIONS = ("to_device", "to_host")


@dataclass(frozen=True)
class Fault:
    """One scheduled event: ``kind`` happens once ``at_byte`` bytes have been forwarded ``direction``."""

    kind: str
    at_byte: int
    direction: str = "to_device"
    seconds: float = 0.0  # delay
    length: int = 0  # burst

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; choose from {', '.join(FAULT_KINDS)}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {self.direction!r}")
        if self.at_byte < 0 or self.seconds < 0 or self.length < 0:
            raise ValueError("at_byte, seconds and length must be ≥ 0")


@dataclass
class FaultStats:
    forwarded: int = 0
    dropped: int = 0
    corrupted: int = 0
    fired: list[str] = field(default_factory=list)  # scheduled events, in the order they happened

    @property
    def faults(self) -> int:
        return self.dropped + self.corrupted


def _require_loopback(host: str) -> None:
    # The proxy is a test instrument; it must never become an open relay on a real interface.
    if not ipaddress.ip_address(socket.gethostbyname(host)).is_loopback:
        raise ValueError(f"fault proxy only connects to loopback addresses, not {host}")


class _Disconnect(Exception):
    pass


class FaultProxy:
    """Forward the host's connections to ``upstream`` with injected faults.

    ``directions`` selects which way random faults are injected: "to_device", "to_host" or "both".
    Use as a context manager; ``port`` is where the host should connect. ``on_reset`` / ``on_kill``
    may be set after construction (the device they act on often exists only later).
    """

    def __init__(
        self,
        upstream_port: int,
        *,
        upstream_host: str = "127.0.0.1",
        drop_rate: float = 0.0,
        corrupt_rate: float = 0.0,
        seed: int = 0,
        max_faults: int = 50,
        directions: str = "both",
        armed: bool = True,
        schedule: Sequence[Fault] = (),
        on_reset: Callable[[], None] | None = None,
        on_kill: Callable[[], None] | None = None,
    ) -> None:
        if not (0 <= drop_rate <= 0.5 and 0 <= corrupt_rate <= 0.5):
            raise ValueError("fault rates must lie in [0, 0.5]: a link worse than that carries nothing")
        if directions not in ("to_device", "to_host", "both"):
            raise ValueError(f"unknown directions {directions!r}")
        _require_loopback(upstream_host)
        self.upstream = (upstream_host, upstream_port)
        self.drop_rate = drop_rate
        self.corrupt_rate = corrupt_rate
        self.max_faults = max_faults
        self.directions = directions
        self.on_reset = on_reset
        self.on_kill = on_kill
        self.stats = {d: FaultStats() for d in DIRECTIONS}
        self.connections = 0
        self._pending = sorted(schedule, key=lambda f: f.at_byte)
        self._burst = dict.fromkeys(DIRECTIONS, 0)
        self._rngs = {"to_device": random.Random(seed), "to_host": random.Random(seed + 1)}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._armed = threading.Event()
        if armed:
            self._armed.set()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="faultproxy", daemon=True)
        self._thread.start()

    def arm(self) -> None:
        """Start injecting faults (e.g. after a clean HELLO)."""
        self._armed.set()

    @property
    def total_faults(self) -> int:
        return sum(s.faults for s in self.stats.values())

    @property
    def fired(self) -> list[str]:
        return [e for d in DIRECTIONS for e in self.stats[d].fired]

    # ---- per-byte faults and scheduled events ----------------------------------------------------------

    def _mangle(self, direction: str, data: bytes) -> bytes:
        stats = self.stats[direction]
        if not self._armed.is_set():
            stats.forwarded += len(data)
            return data
        rng = self._rngs[direction]
        random_faults = self.directions in ("both", direction)
        out = bytearray()
        for b in data:
            self._fire_due(direction, stats.forwarded + len(out))
            if self._burst[direction]:
                self._burst[direction] -= 1
                stats.corrupted += 1
                out.append(b ^ rng.randrange(1, 256))
                continue
            if random_faults:
                with self._lock:
                    budget = self.total_faults < self.max_faults
                r = rng.random()
                if budget and r < self.drop_rate:
                    stats.dropped += 1
                    continue
                if budget and r < self.drop_rate + self.corrupt_rate:
                    stats.corrupted += 1
                    b ^= rng.randrange(1, 256)
            out.append(b)
        stats.forwarded += len(out)
        return bytes(out)

    def _fire_due(self, direction: str, position: int) -> None:
        while True:
            due = next((f for f in self._pending if f.direction == direction and f.at_byte <= position), None)
            if due is None:
                return
            self._pending.remove(due)
            self.stats[direction].fired.append(f"{due.kind}@{position}")
            if due.kind == "delay":
                time.sleep(due.seconds)
            elif due.kind == "burst":
                self._burst[direction] = due.length
            elif due.kind == "disconnect":
                raise _Disconnect()
            else:
                action = self.on_reset if due.kind == "reset" else self.on_kill
                if action is None:
                    raise RuntimeError(f"fault {due.kind!r} scheduled but on_{due.kind} is not set")
                action()

    # ---- forwarding ------------------------------------------------------------------------------------

    def _serve(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            try:
                self._forward(client)
            except (OSError, _Disconnect):
                pass  # the host sees a closed socket; it may connect again

    def _forward(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            upstream = self._connect_upstream()
            pairs = {client: (upstream, "to_device"), upstream: (client, "to_host")}
            while not self._stop.is_set():
                ready, _, _ = select.select(list(pairs), [], [], 0.1)
                for sock in ready:
                    data = sock.recv(4096)
                    if not data:
                        return  # either side closed: end this connection, wait for the next
                    dest, direction = pairs[sock]
                    mangled = self._mangle(direction, data)
                    if mangled:
                        dest.sendall(mangled)
        finally:
            for s in (client, upstream):
                if s is not None:
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    s.close()

    def _connect_upstream(self, within_s: float = 10.0) -> socket.socket:
        # The emulator may still be starting when the host connects to the proxy: retry, bounded.
        deadline = time.monotonic() + within_s
        while True:
            try:
                return socket.create_connection(self.upstream, timeout=5)
            except OSError:
                if time.monotonic() > deadline or self._stop.is_set():
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._listener.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
