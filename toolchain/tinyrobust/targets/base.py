"""The Target interface every on-device runner implements, plus the shared protocol-backed runner.

A target takes int8 inputs already in the model's input grid (quantised by the host, exactly as the
reference does) and returns int8 outputs with the device's counter for each call. ``counter_unit`` says
what the counter counts: "cycles" on silicon, "emulated instructions" under QEMU -icount, never mixed.
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

import numpy as np

from .protocol import Hello, LinkStats, ProtocolClient, ProtocolError, check_model_hash

Progress = Callable[[int], None]  # called with the number of samples just finished


@dataclass(frozen=True)
class BatchStats:
    """Throughput of the last infer_batch, for the validate report."""

    samples: int
    seconds: float
    bytes_sent: int
    bytes_received: int
    workers: int

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0

    @property
    def bytes_per_s(self) -> float:
        return (self.bytes_sent + self.bytes_received) / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "samples": self.samples,
            "seconds": round(self.seconds, 3),
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "workers": self.workers,
            "samples_per_s": round(self.samples_per_s, 2),
            "bytes_per_s": round(self.bytes_per_s, 1),
        }


def as_sample(x: np.ndarray | bytes, input_bytes: int) -> bytes:
    """One int8 sample as the bytes INFER carries; refuses anything but int8 of the right size."""
    if isinstance(x, bytes | bytearray):
        data = bytes(x)
    else:
        arr = np.asarray(x)
        if arr.dtype != np.int8:
            raise TypeError(f"target inputs must be int8 (quantised on the host), got {arr.dtype}")
        data = np.ascontiguousarray(arr).tobytes()
    if len(data) != input_bytes:
        raise ValueError(f"sample has {len(data)} bytes, the firmware takes {input_bytes}")
    return data


def as_batch(x_int8: np.ndarray, input_bytes: int) -> np.ndarray:
    """[N, ...] int8 -> [N, input_bytes] C-contiguous int8."""
    arr = np.asarray(x_int8)
    if arr.dtype != np.int8:
        raise TypeError(f"target inputs must be int8 (quantised on the host), got {arr.dtype}")
    if arr.ndim < 1:
        raise ValueError("a batch needs a leading sample axis")
    flat = np.ascontiguousarray(arr.reshape(arr.shape[0], -1))
    if flat.shape[1] != input_bytes:
        raise ValueError(f"samples have {flat.shape[1]} bytes each, the firmware takes {input_bytes}")
    return flat


class Target(abc.ABC):
    """One device (or a pool of identical emulated devices) running tinyrobust evaluation firmware."""

    name: str = "target"

    @property
    @abc.abstractmethod
    def hello(self) -> Hello: ...

    @property
    def counter_unit(self) -> str:
        """"cycles", "emulated instructions" or "none"."""
        return self.hello.counter_unit

    @property
    def counter_kind(self) -> str:
        """Alias of counter_unit (the HELLO field it comes from is the integer hello.counter_kind)."""
        return self.counter_unit

    @abc.abstractmethod
    def infer_batch(
        self, x_int8: np.ndarray, progress: Progress | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Outputs int8 [N, output_bytes] and counts int64 [N], in input order."""

    @abc.abstractmethod
    def profile(self, x: np.ndarray | bytes) -> list[int]:
        """Per-layer counter for one sample, in Program op order."""

    @abc.abstractmethod
    def layer_output(self, x: np.ndarray | bytes, layer: int) -> bytes:
        """Raw int8 output tensor of ``layer`` for one sample."""

    @abc.abstractmethod
    def close(self) -> None: ...

    @property
    def link_stats(self) -> LinkStats:
        return LinkStats()

    @property
    def batch_stats(self) -> BatchStats | None:
        return None

    def check_model_hash(self, expected: bytes) -> None:
        check_model_hash(self.hello, expected)

    def __enter__(self) -> Target:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class ProtocolTarget(Target):
    """A Target driven through one or more ProtocolClients to identical firmware images.

    With several clients (parallel emulator instances) a batch is split into contiguous slices, one per
    client, run concurrently and reassembled in input order. Subclasses own the transports.
    """

    def __init__(self) -> None:
        self._clients: list[ProtocolClient] = []
        self._hello: Hello | None = None
        self._batch_stats: BatchStats | None = None

    def _add_client(self, client: ProtocolClient) -> None:
        hello = client.hello()
        if self._hello is not None and hello != self._hello:
            raise ProtocolError(f"parallel instances disagree: {hello} vs {self._hello}")
        self._hello = hello
        self._clients.append(client)

    def _ensure_workers(self, wanted: int) -> None:
        """Subclasses that can start more instances override this; the default uses what exists."""

    @property
    def hello(self) -> Hello:
        if self._hello is None:
            raise ProtocolError(f"{self.name}: no device connected")
        return self._hello

    @property
    def link_stats(self) -> LinkStats:
        total = LinkStats()
        for c in self._clients:
            total.merge(c.stats)
        return total

    @property
    def batch_stats(self) -> BatchStats | None:
        return self._batch_stats

    def infer_batch(
        self, x_int8: np.ndarray, progress: Progress | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        batch = as_batch(x_int8, self.hello.input_bytes)
        n = batch.shape[0]
        self._ensure_workers(n)
        outputs = np.zeros((n, self.hello.output_bytes), dtype=np.int8)
        counts = np.zeros(n, dtype=np.int64)
        clients = self._clients[: max(1, min(len(self._clients), n))]
        bounds = np.linspace(0, n, len(clients) + 1).astype(int)
        sent0 = sum(c.stats.bytes_sent for c in clients)
        recv0 = sum(c.stats.bytes_received for c in clients)
        errors: list[BaseException] = []
        lock = threading.Lock()

        def work(client: ProtocolClient, lo: int, hi: int) -> None:
            try:
                for i in range(lo, hi):
                    r = client.infer(batch[i].tobytes())
                    outputs[i] = np.frombuffer(r.output, dtype=np.int8)
                    counts[i] = np.int64(min(r.count, np.iinfo(np.int64).max))
                    if progress is not None:
                        with lock:
                            progress(1)
            except BaseException as exc:  # re-raised in the caller's thread below
                errors.append(exc)

        t0 = time.perf_counter()
        self._run_parallel(work, clients, bounds)
        elapsed = time.perf_counter() - t0
        if errors:
            raise errors[0]
        self._batch_stats = BatchStats(
            samples=n,
            seconds=elapsed,
            bytes_sent=sum(c.stats.bytes_sent for c in clients) - sent0,
            bytes_received=sum(c.stats.bytes_received for c in clients) - recv0,
            workers=len(clients),
        )
        return outputs, counts

    @staticmethod
    def _run_parallel(
        work: Callable[[ProtocolClient, int, int], None],
        clients: Sequence[ProtocolClient],
        bounds: np.ndarray,
    ) -> None:
        if len(clients) == 1:
            work(clients[0], int(bounds[0]), int(bounds[1]))
            return
        threads = [
            threading.Thread(target=work, args=(c, int(bounds[k]), int(bounds[k + 1])), daemon=True)
            for k, c in enumerate(clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def profile(self, x: np.ndarray | bytes) -> list[int]:
        return self._clients[0].profile(as_sample(x, self.hello.input_bytes))

    def layer_output(self, x: np.ndarray | bytes, layer: int) -> bytes:
        return self._clients[0].dump(as_sample(x, self.hello.input_bytes), layer)
