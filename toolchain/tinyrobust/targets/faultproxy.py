"""A loopback TCP proxy that drops and corrupts bytes, to prove the link layer never yields a wrong number.

Sits between the host (pyserial ``socket://``) and an emulator's UART socket. Every forwarded byte is
dropped with probability ``drop_rate`` or XOR-ed with a random non-zero value with probability
``corrupt_rate``, drawn from one seeded RNG per direction so a failing run can be replayed. The total
number of faults is capped (``max_faults``) so a test always terminates: after the cap the link is clean.
"""

from __future__ import annotations

import ipaddress
import random
import select
import socket
import threading
import time
from dataclasses import dataclass


@dataclass
class FaultStats:
    forwarded: int = 0
    dropped: int = 0
    corrupted: int = 0

    @property
    def faults(self) -> int:
        return self.dropped + self.corrupted


def _require_loopback(host: str) -> None:
    # The proxy is a test instrument; it must never become an open relay on a real interface.
    if not ipaddress.ip_address(socket.gethostbyname(host)).is_loopback:
        raise ValueError(f"fault proxy only connects to loopback addresses, not {host}")


class FaultProxy:
    """Forward one client connection to ``upstream`` with injected faults.

    ``directions`` selects which way faults are injected: "to_device", "to_host" or "both".
    Use as a context manager; ``port`` is where the host should connect.
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
        self.stats = {"to_device": FaultStats(), "to_host": FaultStats()}
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

    def _mangle(self, direction: str, data: bytes) -> bytes:
        stats = self.stats[direction]
        if not self._armed.is_set() or self.directions not in ("both", direction):
            stats.forwarded += len(data)
            return data
        rng = self._rngs[direction]
        out = bytearray()
        for b in data:
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

    def _serve(self) -> None:
        client: socket.socket | None = None
        upstream: socket.socket | None = None
        try:
            self._listener.settimeout(0.1)
            while not self._stop.is_set():
                try:
                    client, _ = self._listener.accept()
                    break
                except TimeoutError:
                    continue
            if client is None:
                return
            upstream = self._connect_upstream()
            pairs = {client: (upstream, "to_device"), upstream: (client, "to_host")}
            while not self._stop.is_set():
                ready, _, _ = select.select(list(pairs), [], [], 0.1)
                for sock in ready:
                    data = sock.recv(4096)
                    if not data:
                        return
                    dest, direction = pairs[sock]
                    mangled = self._mangle(direction, data)
                    if mangled:
                        dest.sendall(mangled)
        except OSError:
            return  # either side went away; the host sees a closed socket or a timeout
        finally:
            for s in (client, upstream):
                if s is not None:
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
