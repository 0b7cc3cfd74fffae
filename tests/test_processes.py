"""processes.py: children in their own process group, reaped group and all, ended by terminate_all,
and killed by the kernel when their parent dies without cleaning up (PR_SET_PDEATHSIG)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tinyrobust import processes


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _wait_gone(pids: list[int], within_s: float = 5.0) -> list[int]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        alive = [p for p in pids if _alive(p)]
        if not alive:
            return []
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def test_child_has_its_own_group_and_reap_ends_the_whole_group() -> None:
    # A shell that starts a grandchild: both must go, like gcc and its cc1.
    proc = processes.spawn(["sh", "-c", "sleep 60 & echo $!; wait"], stdout=subprocess.PIPE, text=True)
    grandchild = int(proc.stdout.readline())
    assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)
    assert os.getpgid(grandchild) == proc.pid
    assert proc in processes.live()
    processes.reap(proc, grace_s=0.5)
    assert proc.poll() is not None and _wait_gone([grandchild]) == []
    assert proc not in processes.live()
    processes.reap(proc)  # twice is harmless


def test_terminate_all_ends_every_live_child() -> None:
    procs = [processes.spawn(["sleep", "60"]) for _ in range(3)]
    processes.terminate_all(grace_s=1)
    assert all(p.poll() is not None for p in procs) and not processes.live()


def test_run_reaps_the_child_when_the_wait_is_interrupted() -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        processes.run(["sh", "-c", "sleep 60 & wait"], timeout=0.3)
    assert not processes.live()
    done = processes.run(["sh", "-c", "echo hi"], stdout=subprocess.PIPE, text=True)
    assert (done.returncode, done.stdout) == (0, "hi\n")


PARENT = """
import sys, time
sys.path.insert(0, sys.argv[1])
from tinyrobust import processes
child = processes.spawn(["sleep", "60"])
print(child.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_children_die_with_a_parent_killed_by_sigkill() -> None:
    toolchain = Path(processes.__file__).resolve().parents[1]
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(toolchain)], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert _alive(child)
    parent.kill()  # no handler runs, no clean-up: only the kernel can end the child now
    parent.wait()
    assert _wait_gone([child]) == [], "the child outlived its SIGKILLed parent"


def test_describe_exit() -> None:
    assert processes.describe_exit(None) == "is still running"
    assert processes.describe_exit(1) == "exited with status 1"
    assert processes.describe_exit(-signal.SIGKILL) == "was killed by signal 9 (SIGKILL)"
