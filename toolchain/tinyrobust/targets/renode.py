"""Run the NUCLEO-H743ZI firmware ELF itself under Renode and talk to it over USART3 on a TCP socket.

Renode is in no package registry this project can reach, so this target only works where the user
installed Renode (https://renode.io); tests skip without it. The platform script lives in
``renode/nucleo_h743zi.resc``; counts are DWT CYCCNT as Renode models it (virtual time × frequency).

``python -m tinyrobust.targets.renode golden ...`` writes the JSON of expected answers that the Robot
suite ``renode/tinyrobust.robot`` checks the firmware against.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import serial

from .. import processes
from ..errors import EnvironmentProblem
from ..firmware.boards import load_board
from ..firmware.crossbuild import build_firmware
from ..resources import resource_dir
from .base import ProtocolTarget
from .protocol import ProtocolClient, ProtocolError
from .qemu import QemuTarget

RENODE_BINARY = "renode"
SKIP_REASON = "renode is not installed (no registry provides it)"


class RenodeNotFound(EnvironmentProblem):
    def __init__(self) -> None:
        super().__init__(f"{SKIP_REASON}; install it from https://renode.io to use the renode target")


def renode_dir() -> Path:
    """The renode/ scripts (checkout or wheel, see resources.py)."""
    return resource_dir("renode")


def find_renode() -> Path:
    found = shutil.which(RENODE_BINARY)
    if found is None:
        raise RenodeNotFound()
    return Path(found)


def _free_loopback_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def renode_command(renode: Path, elf: Path, port: int, resc: Path) -> list[str]:
    # Monitor paths use '@'; variables are set before the include so the script's '?=' defaults yield.
    script = f"$elf=@{Path(elf).resolve()}; $port={port}; include @{resc}; start"
    return [str(renode), "--disable-xwt", "--console", "--plain", "-e", script]


class RenodeTarget(ProtocolTarget):
    """The NUCLEO firmware under Renode's stm32h743 platform.

    Renode runs in its own process group with the parent-death signal set (tinyrobust.processes); when
    it dies or stops answering mid-batch it is started again (at most ``max_restarts`` times per batch)
    and the unanswered samples are sent again, as for QEMU.
    """

    name = "renode"

    def __init__(
        self, elf: Path, *, timeout_s: float = 10.0, retries: int = 3, start_timeout_s: float = 60.0,
        max_restarts: int = 2,
    ) -> None:
        super().__init__()
        self.elf = Path(elf)
        if not self.elf.is_file():
            raise FileNotFoundError(f"firmware ELF not found: {self.elf}")
        self._renode = find_renode()
        self.timeout_s, self.retries, self.start_timeout_s = timeout_s, retries, start_timeout_s
        self.max_restarts = max_restarts
        self._log = tempfile.TemporaryFile()
        self._port: serial.SerialBase | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        try:
            self._add_client(self._start())
        except BaseException:
            self.close()
            raise

    def _start(self) -> ProtocolClient:
        self._log.seek(0)
        self._log.truncate()
        self.tcp_port = _free_loopback_port()
        # stdin stays an open pipe: Renode's console would treat EOF on stdin as "quit".
        self.proc = processes.spawn(
            renode_command(self._renode, self.elf, self.tcp_port, renode_dir() / "nucleo_h743zi.resc"),
            stdin=subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._connect(self.start_timeout_s)
        assert self._port is not None
        return ProtocolClient(self._port, timeout_s=self.timeout_s, retries=self.retries)

    def _connect(self, start_timeout_s: float) -> None:
        deadline = time.monotonic() + start_timeout_s  # Renode (mono/.NET) starts slowly
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise ProtocolError(f"renode {processes.describe_exit(self.proc.returncode)}: {self.log_tail()}")
            try:
                self._port = serial.serial_for_url(f"socket://127.0.0.1:{self.tcp_port}", timeout=0.05)
                return
            except serial.SerialException as exc:
                if time.monotonic() > deadline:
                    raise ProtocolError(f"could not reach Renode's USART3 socket: {exc}") from exc
                time.sleep(0.2)

    def _replace_worker(self, slot: int, failure: BaseException) -> ProtocolClient:
        status = self._status()
        pid = self.proc.pid if self.proc is not None else None
        self._stop_process()
        client = self._start()
        client.hello()
        self._retired.restarts += 1
        self._retired.events.append(f"renode (pid {pid}) {status} after: {failure}; restarted")
        return client

    def _describe_failure(self, slot: int, failure: BaseException) -> str:
        pid = self.proc.pid if self.proc is not None else None
        return f"renode (pid {pid}) {self._status()}; {failure}"

    def _status(self) -> str:
        return processes.describe_exit(self.proc.poll() if self.proc is not None else None)

    def log_tail(self, limit: int = 2000) -> str:
        try:
            self._log.seek(0)
            return self._log.read().decode("utf-8", errors="replace")[-limit:].strip()
        except (ValueError, OSError):
            return ""

    def _stop_process(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None
        proc, self.proc = self.proc, None
        if proc is not None:
            processes.reap(proc, grace_s=5)
            if proc.stdin is not None:
                proc.stdin.close()

    def close(self) -> None:
        self._clients.clear()
        self._stop_process()
        self._log.close()


# --------------------------------------------------------------------------------------------------------
# Golden answers for the Robot suite


def write_golden(path: Path, model_hash: bytes, inputs: np.ndarray, outputs: np.ndarray) -> None:
    """Expected INFER answers: {"model_hash": hex, "cases": [{"input": [int8...], "output": [int8...]}]}."""
    if inputs.dtype != np.int8 or outputs.dtype != np.int8 or len(inputs) != len(outputs):
        raise ValueError("golden inputs and outputs must be int8 arrays with one row per case")
    doc = {
        "model_hash": model_hash.hex(),
        "cases": [
            {"input": a.reshape(-1).tolist(), "output": b.reshape(-1).tolist()}
            for a, b in zip(inputs, outputs, strict=True)
        ],
    }
    Path(path).write_text(json.dumps(doc, indent=1) + "\n")


def _golden_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tinyrobust.targets.renode",
        description="Write the golden INFER answers for renode/tinyrobust.robot. The answers come from the "
        "same model's QEMU image, whose outputs tinyrobust's QEMU tests prove bit-exact with the reference.",
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("golden")
    g.add_argument("--qemu-elf", type=Path, required=True, help="QEMU (mps2-an500) build of the same model")
    g.add_argument("--cases", type=int, default=4)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("-o", "--output", type=Path, required=True)
    f = sub.add_parser(
        "fixture",
        help="CI: build a model directory's firmware for nucleo_h743zi (firmware.elf) and qemu_mps2_an500 "
        "(qemu/firmware.elf) into OUT, then write OUT/golden.json",
    )
    f.add_argument("--model-dir", type=Path, required=True, help="tr_model.c/.h/_weights.c dir")
    f.add_argument("--arena-region", default="DTCM")
    f.add_argument("--cases", type=int, default=4)
    f.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    if args.cmd == "fixture":
        build_firmware(args.model_dir, load_board("nucleo_h743zi"), args.out, arena_region=args.arena_region)
        qemu = build_firmware(
            args.model_dir, load_board("qemu_mps2_an500"), args.out / "qemu", arena_region=args.arena_region
        )
        qemu_elf, golden_path, cases, seed = qemu.elf, args.out / "golden.json", args.cases, 0
    else:
        qemu_elf, golden_path, cases, seed = args.qemu_elf, args.output, args.cases, args.seed
    write_golden_from_qemu(qemu_elf, golden_path, cases=cases, seed=seed)
    print(f"wrote {cases} golden cases to {golden_path}")
    return 0


def write_golden_from_qemu(qemu_elf: Path, path: Path, *, cases: int = 4, seed: int = 0) -> None:
    with QemuTarget(qemu_elf, parallel=1) as target:
        rng = np.random.default_rng(seed)
        x = rng.integers(-128, 128, size=(cases, target.hello.input_bytes), dtype=np.int8)
        y, _ = target.infer_batch(x)
        write_golden(path, target.hello.model_hash, x, y)


if __name__ == "__main__":
    raise SystemExit(_golden_main())
