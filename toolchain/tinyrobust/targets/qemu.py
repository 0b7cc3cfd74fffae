"""Run the evaluation firmware under ``qemu-system-arm -M mps2-an500`` and talk to it over UART0.

QEMU serves the CMSDK UART0 on a loopback TCP port; the host connects with pyserial ``socket://``.
Counts are SysTick-derived *emulated instructions* under ``-icount shift=<n>``, never cycles.

The chardev runs with ``nodelay=on``: QEMU writes the UART's bytes to the socket one at a time, and
with Nagle's algorithm each response then waited ~40 ms for the host's delayed ACK (measured here:
47 ms per INFER without it, 2 ms with it; bulk host->device ~29 KB/s). A batch can also be spread over
several QEMU instances (``parallel``); each takes the next unanswered sample.

Every QEMU runs in its own process group with the parent-death signal set (tinyrobust.processes). An
instance whose link drops while QEMU still runs is reconnected; one that died (or stopped answering) is
started again, at most ``max_restarts`` times per batch, and the samples it held are sent again. Each
instance also has a human monitor on a private Unix socket, so a device reset can be injected
(``QemuInstance.reset``) exactly as a board's reset button would.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import serial

from .. import processes
from ..errors import EnvironmentProblem, TargetError
from ..firmware.boards import Board, load_board
from .base import ProtocolTarget
from .protocol import LinkLost, ProtocolClient, ProtocolError

QEMU_BINARY = "qemu-system-arm"
# The board whose image QEMU runs: the NUCLEO's region sizes on QEMU's mps2-an500 Cortex-M7.
QEMU_BOARD = "qemu_mps2_an500"
# Host -> QEMU UART measured ~29 KB/s (4 KB frame in 141 ms); budget 1/6600 s per byte, a wide margin
# for loaded CI machines. It sizes per-attempt timeouts and the post-timeout flush drain.
QEMU_UART_S_PER_BYTE = 0.00015


class QemuNotFound(EnvironmentProblem):
    def __init__(self) -> None:
        super().__init__(
            f"{QEMU_BINARY} is not on PATH; install the Debian package qemu-system-arm "
            "(apt-get install qemu-system-arm) to run the qemu target"
        )


class QemuStartError(ProtocolError):
    """QEMU did not come up, or the firmware did not answer HELLO."""


def find_qemu() -> Path:
    found = shutil.which(QEMU_BINARY)
    if found is None:
        raise QemuNotFound()
    return Path(found)


def qemu_command(board: Board, elf: Path, *extra: str) -> list[str]:
    """QEMU running `elf` as board.toml's [emulator] section says (machine, cpu, -icount, …), plus
    `extra` (the UART's chardev, semihosting)."""
    emu = board.emulator
    if emu is None or emu.kind != "qemu" or emu.machine is None or emu.cpu is None:
        raise EnvironmentProblem(f"board {board.name} has no QEMU [emulator] section (machine, cpu)")
    return [str(find_qemu()), "-M", emu.machine, "-cpu", emu.cpu, *emu.args, *extra, "-kernel", str(elf)]


def _free_loopback_port() -> int:
    # Ask the kernel for a free port. Another process may take it before QEMU binds it; the caller
    # detects that (QEMU exits with a bind error, or HELLO fails) and retries with a new port.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class QemuInstance:
    """One QEMU process with its UART on a TCP port, and a ProtocolClient connected to it."""

    def __init__(
        self,
        elf: Path,
        *,
        board: Board | None = None,
        timeout_s: float = 5.0,
        retries: int = 3,
        start_timeout_s: float = 15.0,
        port_attempts: int = 5,
        link_url: Callable[[int], str] | None = None,
    ) -> None:
        self.elf = Path(elf)
        if not self.elf.is_file():
            raise QemuStartError(f"firmware ELF not found: {self.elf}")
        self.board = board or load_board(QEMU_BOARD)
        find_qemu()  # a missing QEMU is an environment error, not a start failure
        # Maps QEMU's UART port to the URL the host opens; tests route it through a FaultProxy.
        self.link_url = link_url or (lambda p: f"socket://127.0.0.1:{p}")
        self.timeout_s, self.retries = timeout_s, retries
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: serial.SerialBase | None = None
        self.pid: int | None = None
        self.returncode: int | None = None
        self._log = tempfile.TemporaryFile()
        self._private = tempfile.TemporaryDirectory(prefix="tinyrobust-qemu-")
        self.monitor_path = Path(self._private.name) / "monitor.sock"
        last_error: Exception | None = None
        for _ in range(port_attempts):
            tcp_port = _free_loopback_port()
            try:
                self._start(tcp_port, start_timeout_s)
                self.client = self._new_client()
                self._check_alive("answering HELLO")
                self.tcp_port = tcp_port
                return
            except BaseException as exc:
                last_error = exc
                log = self.log_tail()
                self.stop()  # never leave a QEMU behind, whatever interrupted the start
                if not isinstance(exc, QemuStartError | ProtocolError | OSError | serial.SerialException):
                    self._close_files()
                    raise
                if "Address already in use" not in log and "Failed to bind" not in log:
                    break  # not a port race: retrying will not help
        self._close_files()
        raise QemuStartError(f"QEMU did not start the firmware {self.elf}: {last_error}") from last_error

    def command(self, tcp_port: int) -> list[str]:
        chardev = f"socket,id=c0,host=127.0.0.1,port={tcp_port},server=on,wait=off,nodelay=on"
        return qemu_command(self.board, self.elf, "-chardev", chardev, "-serial", "chardev:c0",
                            "-monitor", f"unix:{self.monitor_path},server=on,wait=off")

    def _new_client(self) -> ProtocolClient:
        assert self.port is not None
        client = ProtocolClient(self.port, timeout_s=self.timeout_s, retries=self.retries,
                                per_byte_s=QEMU_UART_S_PER_BYTE)
        client.hello()
        return client

    def _start(self, tcp_port: int, start_timeout_s: float) -> None:
        self._log.seek(0)
        self._log.truncate()
        self.proc = processes.spawn(
            self.command(tcp_port), stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.pid, self.returncode = self.proc.pid, None
        # Last line of defence if close() is never called (interpreter exit, lost reference).
        weakref.finalize(self, processes.reap, self.proc)
        self._connect(tcp_port, start_timeout_s)

    def _connect(self, tcp_port: int, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while True:
            self._check_alive("starting")
            try:
                self.port = serial.serial_for_url(self.link_url(tcp_port), timeout=0.05)
                return
            except serial.SerialException as exc:
                if time.monotonic() > deadline:
                    msg = f"could not connect to QEMU's UART on port {tcp_port}: {exc}"
                    raise QemuStartError(msg) from exc
                time.sleep(0.05)

    def reconnect(self, within_s: float = 5.0) -> ProtocolClient:
        """Open the UART link again (QEMU still runs; the link dropped) and say HELLO on it."""
        self._close_port()
        self._connect(self.tcp_port, within_s)
        self.client = self._new_client()
        return self.client

    def reset(self) -> None:
        """Press the reset button: the emulated core restarts the firmware from its reset vector."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mon:
            mon.settimeout(5)
            mon.connect(str(self.monitor_path))
            _read_until(mon, b"(qemu) ")
            mon.sendall(b"system_reset\n")
            _read_until(mon, b"(qemu) ")

    def _check_alive(self, doing: str) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise QemuStartError(f"QEMU {self.status()} while {doing}: {self.log_tail()}")

    def status(self, wait_s: float = 0.0) -> str:
        """'is still running', 'exited with status N' or 'was killed by signal N (NAME)'. A link that just
        dropped may mean QEMU is dying: `wait_s` gives it that long to be seen exiting."""
        if self.proc is not None:
            try:
                self.returncode = self.proc.wait(timeout=wait_s) if wait_s > 0 else self.proc.poll()
            except subprocess.TimeoutExpired:
                self.returncode = None
        return processes.describe_exit(self.returncode)

    def log_tail(self, limit: int = 2000) -> str:
        try:
            self._log.seek(0)
            text = self._log.read().decode("utf-8", errors="replace")
        except (ValueError, OSError):
            return ""
        return text[-limit:].strip()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _close_port(self) -> None:
        if self.port is not None:
            try:
                self.port.close()
            except (OSError, serial.SerialException):
                pass
            self.port = None

    def stop(self) -> None:
        """Close the link and end QEMU's process group: terminate, then kill; always reaps the process."""
        self._close_port()
        proc, self.proc = self.proc, None
        if proc is not None:
            processes.reap(proc)
            self.returncode = proc.returncode

    def _close_files(self) -> None:
        self._log.close()
        self._private.cleanup()

    def close(self) -> None:
        self.stop()
        self._close_files()


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise OSError(f"QEMU monitor closed before {marker!r}")
        data += chunk
    return data


class QemuTarget(ProtocolTarget):
    """The evaluation firmware under QEMU, optionally as several parallel instances for batches."""

    name = "qemu"

    def __init__(
        self,
        elf: Path,
        *,
        parallel: int = 2,
        timeout_s: float = 5.0,
        retries: int = 3,
        min_samples_per_worker: int = 4,
        max_restarts: int = 3,
        link_url: Callable[[int], str] | None = None,
    ) -> None:
        super().__init__()
        if parallel < 1:
            raise ValueError("parallel must be ≥ 1")
        self.elf = Path(elf)
        self.parallel = parallel
        self.min_samples_per_worker = min_samples_per_worker
        self.max_restarts = max_restarts
        self._opts = {"board": load_board(QEMU_BOARD), "timeout_s": timeout_s, "retries": retries,
                      "link_url": link_url}
        self._instances: list[QemuInstance] = []
        try:
            self._spawn()  # one instance now; the others only when a batch is big enough to use them
        except BaseException:
            self.close()
            raise

    def _spawn(self) -> None:
        inst = QemuInstance(self.elf, **self._opts)
        self._instances.append(inst)
        try:
            self._add_client(inst.client)
        except BaseException:
            self._instances.remove(inst)
            inst.close()
            raise

    def _ensure_workers(self, wanted: int) -> None:
        target = min(self.parallel, max(1, wanted // self.min_samples_per_worker))
        while len(self._instances) < target:
            self._spawn()

    @property
    def instances(self) -> list[QemuInstance]:
        return list(self._instances)

    def _replace_worker(self, slot: int, failure: BaseException) -> ProtocolClient:
        """Reconnect when QEMU still runs and only the link dropped; otherwise start it again."""
        old = self._instances[slot]
        what = f"QEMU instance {slot} (pid {old.pid})"
        dying = isinstance(failure, LinkLost)
        if old.status(wait_s=1.0 if dying else 0.0) == "is still running" and dying:
            try:
                client = old.reconnect()
            except (QemuStartError, ProtocolError, OSError, serial.SerialException):
                pass  # the link will not come back: start the instance again below
            else:
                self._retired.reconnects += 1
                self._retired.events.append(f"{what}: link lost ({failure}); reconnected")
                return client
        status = old.status()
        log = old.log_tail(300)
        old.close()
        try:
            new = QemuInstance(self.elf, **self._opts)
        except ProtocolError as exc:
            raise TargetError(f"{what} {status} ({failure}); starting it again failed: {exc}") from exc
        self._instances[slot] = new
        self._retired.restarts += 1
        self._retired.events.append(
            f"{what} {status}{' (' + log + ')' if log else ''} after: {failure}; restarted as pid {new.pid}"
        )
        return new.client

    def _describe_failure(self, slot: int, failure: BaseException) -> str:
        inst = self._instances[slot]
        status = inst.status(wait_s=1.0 if isinstance(failure, LinkLost) else 0.0)
        if status == "is still running":
            return f"{failure} (QEMU instance {slot}, pid {inst.pid})"
        log = inst.log_tail(300)
        return f"QEMU instance {slot} (pid {inst.pid}) {status}{': ' + log if log else ''}; {failure}"

    def close(self) -> None:
        while self._instances:
            self._instances.pop().close()
        self._clients.clear()
