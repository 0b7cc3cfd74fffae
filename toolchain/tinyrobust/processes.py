"""Every child process tinyrobust starts (QEMU, Renode, compilers) goes through here, so none outlives it.

Three layers, from the usual to the last resort:

1. A child runs in its own process group. A terminal's Ctrl-C then reaches only tinyrobust, which ends
   its children in order (`reap`: SIGTERM to the group, a grace period, then SIGKILL), and a compiler's
   own children (cc1, as, ld) die with it.
2. `terminate_all` ends the group of every child still running; the command line calls it when a
   signal (SIGINT, SIGTERM, SIGHUP) ends the run, after the run's own clean-up.
3. On Linux the child asks the kernel for SIGKILL when the thread that started it dies
   (PR_SET_PDEATHSIG), which covers a tinyrobust killed by SIGKILL or the OOM killer. The signal follows
   the *thread*, so it is set only for children started from the main thread or waited for by the
   thread that started them (`run`); a long-lived child started from a worker thread goes without it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

_PR_SET_PDEATHSIG = 1
_live: dict[int, subprocess.Popen[Any]] = {}
_lock = threading.Lock()


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


# Resolved once in the parent: the child, between fork and exec, must only call it.
_prctl = _load_prctl()


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    def preexec() -> None:
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before the signal was armed
            os._exit(1)

    return preexec


def spawn(cmd: Sequence[str], *, bound_to_thread: bool = False, **popen_kwargs: Any) -> subprocess.Popen[Any]:
    """Popen(cmd) in its own process group, registered for `terminate_all`, dying with the main thread
    (or, with bound_to_thread, with the calling thread, which must then wait for it)."""
    in_main = threading.current_thread() is threading.main_thread()
    preexec = _die_with_parent(os.getpid()) if (in_main or bound_to_thread) else None
    proc = subprocess.Popen(list(cmd), process_group=0, preexec_fn=preexec, **popen_kwargs)
    with _lock:
        _live[proc.pid] = proc
    return proc


def _signal_group(proc: subprocess.Popen[Any], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)  # the group's id is the child's pid (process_group=0)


def reap(proc: subprocess.Popen[Any], grace_s: float = 3.0) -> None:
    """End the child's whole group (SIGTERM, then SIGKILL after grace_s) and wait for it: no process is
    left running, none is left a zombie. Safe to call twice, and on a child that already exited."""
    try:
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        # The leader may be gone while others of its group (a compiler's cc1) still run.
        _signal_group(proc, signal.SIGKILL)
        if proc.poll() is None:
            proc.wait(timeout=10)
    finally:
        with _lock:
            _live.pop(proc.pid, None)


def run(cmd: Sequence[str], *, timeout: float | None = None, input: str | bytes | None = None,
        **popen_kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """subprocess.run through `spawn`: whatever interrupts the wait (a timeout, a signal) ends the child's
    group before the exception travels on. Raises subprocess.TimeoutExpired like subprocess.run."""
    if input is not None:
        popen_kwargs["stdin"] = subprocess.PIPE
    proc = spawn(cmd, bound_to_thread=True, **popen_kwargs)
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
    except BaseException:
        reap(proc, grace_s=0.5)
        raise
    with _lock:
        _live.pop(proc.pid, None)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def live() -> list[subprocess.Popen[Any]]:
    """Children started here that have not been reaped."""
    with _lock:
        return [p for p in _live.values() if p.poll() is None]


def terminate_all(grace_s: float = 2.0) -> None:
    """End every live child's group: SIGTERM to all at once, then SIGKILL to what remains."""
    procs = live()
    for proc in procs:
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    for proc in procs:
        reap(proc, grace_s=0)


def describe_exit(returncode: int | None) -> str:
    """'exited with status 1', 'was killed by signal 9 (SIGKILL)', or 'is still running'."""
    if returncode is None:
        return "is still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown signal"
        return f"was killed by signal {-returncode} ({name})"
    return f"exited with status {returncode}"
