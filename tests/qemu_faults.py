"""Fault injection against real QEMU for the tests: route an instance's UART through a FaultProxy whose
scheduled kill and reset act on the QEMU behind it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tinyrobust.targets.faultproxy import Fault, FaultProxy
from tinyrobust.targets.qemu import QemuInstance, QemuTarget


def kill_qemu_serving(port: int) -> None:
    """SIGKILL the qemu-system-arm whose UART listens on `port` (found in /proc, as an operator would)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"qemu-system-arm") and any(f"port={port},".encode() in a for a in cmd):
            os.kill(int(pid), signal.SIGKILL)
            return
    raise AssertionError(f"no QEMU serves port {port}")


class FaultyLinks:
    """link_url for QemuTarget: the k-th instance started (restarts included) talks through a FaultProxy
    with schedules[k] (none beyond the list); kill and reset act on the QEMU behind that proxy."""

    def __init__(self, *schedules: list[Fault], **proxy_kw: object) -> None:
        self.schedules = list(schedules)
        self.proxy_kw = proxy_kw
        self.proxies: list[FaultProxy] = []
        self.by_port: dict[int, FaultProxy] = {}
        self.target: QemuTarget | None = None
        self.killed_at: list[float] = []  # time.monotonic() of each kill

    def __call__(self, port: int) -> str:
        if port in self.by_port:  # a reconnect to the same QEMU goes through the same proxy
            return f"socket://127.0.0.1:{self.by_port[port].port}"
        k = len(self.proxies)
        proxy = FaultProxy(port, schedule=self.schedules[k] if k < len(self.schedules) else (),
                           **self.proxy_kw)  # type: ignore[arg-type]
        proxy.on_kill = lambda: self._kill(port)
        proxy.on_reset = lambda: self._instance_on(port).reset()
        self.proxies.append(proxy)
        self.by_port[port] = proxy
        return f"socket://127.0.0.1:{proxy.port}"

    def _kill(self, port: int) -> None:
        self.killed_at.append(time.monotonic())
        kill_qemu_serving(port)

    def _instance_on(self, port: int) -> QemuInstance:
        assert self.target is not None
        return next(i for i in self.target.instances if i.tcp_port == port)

    def close(self) -> None:
        for p in self.proxies:
            p.close()
