"""The kernel runner (firmware/runner.py, firmware/runner/): its case stream round-trips, a wrong
expectation and a write past the output are caught, and a case the dispatch cannot run is refused."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import numpy as np

from tinyrobust.converter import ops
from tinyrobust.converter.ops import lut, requantize
from tinyrobust.converter.ops.base import Clamp, Op
from tinyrobust.converter.ops.requantize import RequantizeParams
from tinyrobust.firmware import runner
from tinyrobust.firmware.codegen.render import render_runner_dispatch
from tinyrobust.firmware.runner import SENTINEL, CaseResult, RunnerCase


def _case(n: int = 5) -> RunnerCase:
    params = RequantizeParams(n, 3, -2, 1 << 30, 1, Clamp(-128, 127))
    op = Op(requantize.FAMILY.kernels[None], "rq", ("x",), "y", params)
    return RunnerCase.of(op, [np.arange(n, dtype=np.int8) * 20 - 40], "rq")


def test_a_case_runs_and_matches(host_runner: runner.Runner, tmp_path: Path) -> None:
    (res,) = runner.run(host_runner, [_case()], tmp_path)
    assert res.status == 0 and res.counts == (0,)
    assert runner.mismatches([_case()], [res]) == []


def test_wrong_bytes_and_overruns_are_reported() -> None:
    case = _case(5)
    good = case.expected + bytes([SENTINEL] * 3)
    bad_value = bytes([case.expected[0] ^ 1]) + good[1:]
    overrun = case.expected + bytes([0, SENTINEL, SENTINEL])
    assert runner.mismatches([case], [CaseResult(0, (0,), good)]) == []
    assert "elements differ" in runner.mismatches([case], [CaseResult(0, (0,), bad_value)])[0]
    assert "wrote past" in runner.mismatches([case], [CaseResult(0, (0,), overrun)])[0]
    assert "status -1" in runner.mismatches([case], [CaseResult(-1, (0,), good)])[0]


def test_a_case_of_the_wrong_shape_is_refused(host_runner: runner.Runner, tmp_path: Path) -> None:
    """A scalar count the kernel does not take: the dispatch refuses (TR_RUNNER_BAD_CASE) instead of
    reading params that are not there; a NULL table reaches the kernel, which refuses it itself."""
    case = _case()
    stream = bytearray(runner.encode([case]))
    n = struct.unpack_from("<i", stream, 4)[0]  # requantize's scalar count
    # one scalar fewer: drop the last scalar word and fix the count
    broken = stream[:4] + struct.pack("<i", n - 1) + stream[8:8 + (n - 1) * 4] + stream[8 + n * 4:]
    (tmp_path / runner.CASES_FILE).write_bytes(bytes(broken))
    subprocess.run([str(host_runner.path), runner.CASES_FILE, runner.RESULTS_FILE], cwd=tmp_path, check=True)
    status = struct.unpack_from("<i", (tmp_path / runner.RESULTS_FILE).read_bytes())[0]
    assert status == -101
    no_table = Op(lut.FAMILY.kernels[None], "lut", ("x",), "y", lut.LutParams(5), {})
    (res,) = runner.run(host_runner, [RunnerCase(no_table, case.inputs, case.expected, None, "no table")],
                        tmp_path / "null")
    assert res.status == -1 and res.output == bytes([SENTINEL]) * len(res.output)


def test_every_kernel_has_a_dispatch_case(tmp_path: Path) -> None:
    text = render_runner_dispatch(tmp_path).read_text()
    for kernel, code in ops.OP_CODES.items():
        assert f"case {code}: /* {kernel} */" in text
