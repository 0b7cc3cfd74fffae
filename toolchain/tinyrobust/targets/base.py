"""The Target interface every on-device runner implements, plus the shared protocol-backed runner.

A target takes int8 inputs already in the model's input grid (quantised by the host, exactly as the
reference does) and returns int8 outputs with the device's counter for each call. ``counter_unit`` says
what the counter counts: "cycles" on silicon, "emulated instructions" under QEMU -icount, never mixed.
"""

from __future__ import annotations

import abc
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

import numpy as np

from ..errors import TargetError
from .protocol import Hello, LinkLost, LinkStats, ProtocolClient, ProtocolError, TargetTimeout, check_model_hash

Progress = Callable[[int], None]  # called with the number of samples just finished


@dataclass(frozen=True)
class BatchStats:
    """Throughput of the last infer_batch and what the link needed, for the validate report."""

    samples: int
    seconds: float
    bytes_sent: int
    bytes_received: int
    workers: int
    link: LinkStats = field(default_factory=LinkStats)  # the target's link statistics after the batch

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
            **{k: v for k, v in self.link.as_dict().items() if k not in ("bytes_sent", "bytes_received")},
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
        """Raw output tensor bytes of ``layer`` for one sample (an int16 tensor's little-endian)."""

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


# A worker whose link failed this way may be brought back (reconnect, restart) and its samples re-sent.
RECOVERABLE = (LinkLost, TargetTimeout)


class ProtocolTarget(Target):
    """A Target driven through one or more ProtocolClients to identical firmware images.

    With several clients (parallel emulator instances) a batch is shared out sample by sample: each
    worker thread takes the next unanswered sample, so a slow or restarted worker never holds up a
    slice. When a worker's link fails (the emulator died, the link dropped, the device stopped
    answering) the main thread asks the subclass to bring that worker back (`_replace_worker`: reconnect
    or restart, at most `max_restarts` times per batch) and the sample it held is sent again. When the run
    must fail, every other worker is stopped at once. Children are started only from the main thread,
    so their parent-death signal (processes.py) follows the process, not a short-lived worker thread.
    """

    max_restarts = 0  # subclasses that can bring a worker back raise this

    def __init__(self) -> None:
        self._clients: list[ProtocolClient] = []
        self._hello: Hello | None = None
        self._batch_stats: BatchStats | None = None
        self._retired = LinkStats()  # replaced clients' counts, and restarts / reconnects

    def _add_client(self, client: ProtocolClient) -> None:
        hello = client.hello()
        if self._hello is not None and hello != self._hello:
            raise ProtocolError(f"parallel instances disagree: {hello} vs {self._hello}")
        self._hello = hello
        self._clients.append(client)

    def _ensure_workers(self, wanted: int) -> None:
        """Subclasses that can start more instances override this; the default uses what exists."""

    def _replace_worker(self, slot: int, failure: BaseException) -> ProtocolClient:
        """Bring worker `slot` back after `failure` and return its new client (already said HELLO), or raise
        an error that says what happened to the device. Called on the main thread."""
        raise failure

    def _describe_failure(self, slot: int, failure: BaseException) -> str:
        """What went wrong with worker `slot`, for the error that ends the run."""
        return str(failure)

    def _retire_client(self, slot: int, new: ProtocolClient) -> None:
        old = self._clients[slot]
        self._retired.merge(old.stats)
        if new.device != self.hello:
            raise ProtocolError(f"{self.name}: the restarted device differs: {new.device} vs {self.hello}")
        self._clients[slot] = new

    @property
    def hello(self) -> Hello:
        if self._hello is None:
            raise ProtocolError(f"{self.name}: no device connected")
        return self._hello

    @property
    def link_stats(self) -> LinkStats:
        total = LinkStats()
        total.merge(self._retired)
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
        pending = deque(range(n))
        lock = threading.Lock()
        stop = threading.Event()
        done: queue.Queue[tuple[int, BaseException | None]] = queue.Queue()
        before = self.link_stats

        def work(slot: int, client: ProtocolClient) -> None:
            try:
                while not stop.is_set():
                    with lock:
                        if not pending:
                            break
                        i = pending.popleft()
                    try:
                        r = client.infer(batch[i].tobytes())
                    except BaseException:
                        with lock:
                            pending.appendleft(i)  # unanswered: whoever comes next sends it again
                        raise
                    outputs[i] = np.frombuffer(r.output, dtype=np.int8)
                    counts[i] = np.int64(min(r.count, np.iinfo(np.int64).max))
                    if progress is not None:
                        with lock:
                            progress(1)
                done.put((slot, None))
            except BaseException as exc:  # handled by the main thread below
                done.put((slot, exc))

        def start(slot: int) -> None:
            threading.Thread(target=work, args=(slot, self._clients[slot]), daemon=True,
                             name=f"{self.name}-worker-{slot}").start()

        workers = max(1, min(len(self._clients), n))
        t0 = time.perf_counter()
        for slot in range(workers):
            start(slot)
        running, restarts = workers, 0
        failure: BaseException | None = None
        try:
            while running:
                try:
                    slot, exc = done.get(timeout=0.2)
                except queue.Empty:
                    continue
                running -= 1
                if exc is None or stop.is_set():
                    continue
                if isinstance(exc, RECOVERABLE) and restarts < self.max_restarts and pending:
                    restarts += 1
                    try:
                        self._retire_client(slot, self._replace_worker(slot, exc))
                    except BaseException as again:
                        failure = again
                        self._stop_all(stop)
                        continue
                    self._retired.resent_samples += 1
                    start(slot)
                    running += 1
                    continue
                detail = self._describe_failure(slot, exc)
                if restarts:
                    detail += f" (after {restarts} restart(s) in this batch)"
                failure = exc
                if detail != str(exc):
                    failure = TargetError(detail)
                    failure.__cause__ = exc
                self._stop_all(stop)
        except BaseException:
            self._stop_all(stop)  # e.g. SIGTERM: no worker keeps talking to a device being shut down
            raise
        finally:
            for c in self._clients:
                c.resume()
        if failure is not None:
            raise failure
        after = self.link_stats
        self._batch_stats = BatchStats(
            samples=n,
            seconds=time.perf_counter() - t0,
            bytes_sent=after.bytes_sent - before.bytes_sent,
            bytes_received=after.bytes_received - before.bytes_received,
            workers=workers,
            link=after,
        )
        return outputs, counts

    def _stop_all(self, stop: threading.Event) -> None:
        """No worker starts another sample, and every request in flight returns now."""
        stop.set()
        for c in self._clients:
            c.cancel()

    def profile(self, x: np.ndarray | bytes) -> list[int]:
        return self._clients[0].profile(as_sample(x, self.hello.input_bytes))

    def layer_output(self, x: np.ndarray | bytes, layer: int) -> bytes:
        return self._clients[0].dump(as_sample(x, self.hello.input_bytes), layer)
