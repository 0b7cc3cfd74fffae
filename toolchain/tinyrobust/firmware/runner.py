"""The kernel runner (firmware/runner/): one kernel call per case, on the host (a sanitizable
executable) or on a board's emulator (semihosting, the board counter around every call).

Kernel tests use it to hold every kernel to its numpy reference bit for bit, the bench to count
instructions. A case is an Op (kernel, params, arrays) with its int8 inputs and the bytes it must
produce; the op code, the scalars' order and the call itself come from the op table, so a kernel is
called here exactly as a generated model calls it.
"""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import processes
from ..converter import ops
from ..converter.ops.base import NUMPY_TYPES, Op, scalar_values
from ..errors import BuildError, TinyRobustError
from ..targets.qemu import QEMU_BOARD, qemu_command
from . import hostbuild
from .boards import load_board
from .codegen.render import render_runner_dispatch
from .crossbuild import build_image, startup_sources
from .sources import PLAIN_C_FLAG, app_dir, runner_dir, tr_nn_dir, tr_nn_sources

SENTINEL = 0x5A  # TR_RUNNER_SENTINEL: output bytes a kernel must not write keep it
# The board runner keeps its case data in the arena region, as a model keeps its activations.
ARENA_REGION = "AXI_SRAM"
CASES_FILE = "runner_cases.bin"
RESULTS_FILE = "runner_results.bin"


class RunnerError(TinyRobustError):
    """The kernel runner did not build or run, or a kernel's output differed from its reference."""


@dataclass(frozen=True)
class RunnerCase:
    """One kernel call: `op` (one call: concat with one input), its int8 or int16 inputs and the bytes its
    output must hold afterwards. `initial`: the output's contents before the call (else the sentinel).
    An array the op omits (e.g. no "bias") is passed as NULL."""

    op: Op
    inputs: tuple[np.ndarray, ...]
    expected: bytes
    initial: bytes | None = None
    label: str = ""

    @staticmethod
    def of(op: Op, inputs: Sequence[np.ndarray], label: str = "") -> RunnerCase:
        """The case whose expected output is the family's numpy reference on `inputs`."""
        in_type, out_type = (NUMPY_TYPES[b] for b in ops.io_bits(op.kernel))
        xs = [np.asarray(x, dtype=in_type) for x in inputs]
        # The reference kernels take a batch: this case is a batch of one.
        batch = ops.family_of(op.kernel).reference(op)([x[None] for x in xs])
        expected = np.asarray(batch, dtype=out_type)[0].astype(np.dtype(out_type).newbyteorder("<")).tobytes()
        return RunnerCase(op, tuple(xs), expected, None, label or op.kernel)


@dataclass(frozen=True)
class CaseResult:
    status: int
    counts: tuple[int, ...]  # the board counter around each repeat (0 on the host)
    output: bytes  # out_len bytes plus the padding to 4, as the runner left them

    def __post_init__(self) -> None:
        object.__setattr__(self, "counts", tuple(self.counts))


@dataclass(frozen=True)
class Runner:
    """A built runner: a host executable or a board ELF (run under the board's emulator)."""

    path: Path
    on_host: bool
    board: str | None = None


def _pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def encode(cases: Sequence[RunnerCase], repeat: int = 1) -> bytes:
    """The case stream of tr_runner.h."""
    out = bytearray()
    for case in cases:
        family = ops.family_of(case.op.kernel)
        calls = family.kernel_calls(case.op)
        if len(calls) != 1:
            raise RunnerError(f"{case.label}: a runner case makes one kernel call, this op makes {len(calls)}")
        call = calls[0]
        scalars = scalar_values(call.scalars)
        blobs = [np.ascontiguousarray(case.inputs[i]).tobytes() for i in call.inputs]
        blobs += [np.ascontiguousarray(case.op.arrays[s.name]).tobytes() if s.name in case.op.arrays else b""
                  for s in family.arrays]
        initial = -1
        if case.initial is not None:
            initial = len(blobs)
            blobs.append(case.initial)
        out += struct.pack(f"<ii{len(scalars)}ii", ops.OP_CODES[call.function], len(scalars), *scalars, len(blobs))
        for blob in blobs:
            out += struct.pack("<i", len(blob)) + _pad4(blob)
        out += struct.pack("<iiii", len(case.expected), repeat, call.scratch_bytes, initial)
    return bytes(out + struct.pack("<i", 0))


def decode(data: bytes, cases: Sequence[RunnerCase]) -> list[CaseResult]:
    results, pos = [], 0
    for case in cases:
        if pos + 8 > len(data):
            raise RunnerError(f"runner output truncated at case {len(results)} ({case.label})")
        status, repeat = struct.unpack_from("<ii", data, pos)
        pos += 8
        counts = struct.unpack_from(f"<{repeat}Q", data, pos)
        pos += 8 * repeat
        padded = len(case.expected) + (-len(case.expected) % 4)
        results.append(CaseResult(status, counts, data[pos:pos + padded]))
        pos += padded
    if pos != len(data):
        raise RunnerError(f"runner output has {len(data) - pos} unexpected trailing bytes")
    return results


def mismatches(cases: Sequence[RunnerCase], results: Sequence[CaseResult]) -> list[str]:
    """One line per case that failed, returned a bad status, differed from its expected bytes or
    wrote past its output; empty when all are right."""
    failures = []
    for i, (case, res) in enumerate(zip(cases, results, strict=True)):
        n = len(case.expected)
        tail = bytes([SENTINEL]) * (len(res.output) - n)
        if res.status != 0:
            failures.append(f"#{i} {case.label}: status {res.status}")
        elif res.output[:n] != case.expected:
            dtype = np.dtype(NUMPY_TYPES[ops.io_bits(case.op.kernel)[1]]).newbyteorder("<")
            got, want = np.frombuffer(res.output[:n], dtype), np.frombuffer(case.expected, dtype)
            bad = np.flatnonzero(got != want)
            failures.append(f"#{i} {case.label}: {bad.size}/{got.size} elements differ, first at {bad[0]}: "
                            f"got {got[bad[0]]} want {want[bad[0]]}")
        elif res.output[n:] != tail:
            failures.append(f"#{i} {case.label}: wrote past the end of its output")
    return failures


def check(cases: Sequence[RunnerCase], results: Sequence[CaseResult]) -> None:
    failures = mismatches(cases, results)
    if failures:
        raise RunnerError(f"{len(failures)}/{len(cases)} kernel cases failed:\n" + "\n".join(failures[:20]))


# ---------------------------------------------------------------- builds


def _runner_sources(out_dir: Path, platform_file: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    dispatch = render_runner_dispatch(out_dir)
    return [*tr_nn_sources(), runner_dir() / "tr_runner.c", runner_dir() / platform_file, dispatch]


def build_host_runner(out_dir: Path, *, sanitize: bool = True, plain_c: bool = True) -> Runner:
    """The runner as a host executable (ASan/UBSan with `sanitize`). Hosts have no Arm DSP extension,
    so the kernels' plain-C path runs either way; `plain_c` states it explicitly."""
    name = f"runner_{'asan' if sanitize else 'o2'}{'_plain' if plain_c else ''}"
    work = Path(out_dir) / name
    sources = _runner_sources(work, "tr_runner_host.c")
    exe = hostbuild.build_host_executable(sources, [tr_nn_dir(), runner_dir()], work / name, sanitize=sanitize,
                                          extra_flags=[PLAIN_C_FLAG] if plain_c else [])
    return Runner(exe, on_host=True)


def build_board_runner(out_dir: Path, *, board: str = QEMU_BOARD, plain_c: bool = False) -> Runner:
    """The runner as a firmware image for `board` (DSP path unless `plain_c`), built with the same
    compiler, flags, start-up and linker script as the evaluation firmware."""
    b = load_board(board)
    work = Path(out_dir) / f"runner_{board}{'_plain' if plain_c else ''}"
    sources = [("runner", p) for p in _runner_sources(work / "src", "tr_runner_semihost.c")]
    sources += [("app", p) for p in startup_sources()] + [("board", p) for p in b.c_sources]
    try:
        fw = build_image(sources, [tr_nn_dir(), runner_dir(), app_dir()], b, work, arena_region=ARENA_REGION,
                         extra_cflags=[PLAIN_C_FLAG] if plain_c else [])
    except BuildError as exc:
        raise RunnerError(f"kernel runner build failed for {board}: {exc}") from exc
    return Runner(fw.elf, on_host=False, board=board)


# ---------------------------------------------------------------- runs


def run(runner: Runner, cases: Sequence[RunnerCase], work_dir: Path, *, repeat: int = 1,
        timeout_s: float = 300.0) -> list[CaseResult]:
    """Runs every case; returns their results (unchecked: see check / mismatches)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / CASES_FILE).write_bytes(encode(cases, repeat))
    (work_dir / RESULTS_FILE).unlink(missing_ok=True)
    if runner.on_host:
        cmd = [str(runner.path), CASES_FILE, RESULTS_FILE]
    else:
        assert runner.board is not None
        cmd = qemu_command(load_board(runner.board), runner.path, "-semihosting-config", "enable=on,target=native")
    try:
        proc = processes.run(cmd, cwd=work_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise RunnerError(f"kernel runner {runner.path.name} did not finish in {timeout_s:.0f} s") from exc
    if proc.returncode != 0:
        raise RunnerError(f"kernel runner {runner.path.name} exited {proc.returncode}:\n"
                          f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return decode((work_dir / RESULTS_FILE).read_bytes(), cases)
