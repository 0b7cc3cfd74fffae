"""Inputs and outputs larger than one protocol frame, on the real firmware under QEMU.

The fixture model (tests/program_fixtures.py, hand-made Ops, no TensorFlow) takes a 96×96×3 input of
27,648 bytes, MLPerf Tiny's visual-wake-words size, which protocol version 1 could not carry (the
firmware refused to build on a static assertion while `export` said the model fits), and returns a
48×48×4 output of 9,216 bytes. It is exported and built like any model, then validated through the
command line on QEMU: every sample bit-exact with the numpy reference.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from program_fixtures import big_io_program, deep_program
from tinyrobust.cli import main
from tinyrobust.converter.reference import Reference
from tinyrobust.errors import ExportError
from tinyrobust.firmware.project import load_export
from tinyrobust.targets.factory import firmware_for
from tinyrobust.targets.protocol import MAX_FRAME, MAX_LAYERS
from tinyrobust.targets.qemu import QEMU_BOARD, QemuTarget
from tinyrobust.workflows.export import export_program

needs_qemu = [
    pytest.mark.qemu,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm not installed"),
    pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed"),
]

PROGRAM = big_io_program()


@pytest.fixture(scope="module")
def big_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    out = tmp_path_factory.mktemp("big") / "export"
    export_program(PROGRAM, "nucleo_h743zi", out, build=True)  # protocol v1: a C static assertion
    return out


def test_tensors_exceed_a_frame() -> None:
    assert PROGRAM.tensor(PROGRAM.input).nbytes == 27_648 > MAX_FRAME
    assert PROGRAM.tensor(PROGRAM.output).nbytes == 9_216 > MAX_FRAME


@pytest.mark.slow
def test_export_builds_and_counts_the_staging_buffer(big_export: Path) -> None:
    report = json.loads((big_export / "report.json").read_text())
    estimate = report["budget"]["estimate"]["regions"]
    data_region = next(r for r in estimate.values() if "input staging and output buffers" in r["contents"])
    assert data_region["contents"]["input staging and output buffers"] == 27_648 + 9_216
    assert all(r["fits"] for r in report["budget"]["linked"]["regions"].values())
    assert (big_export / "firmware" / "firmware.elf").is_file()


def test_export_refuses_more_layers_than_the_firmware_serves(tmp_path: Path) -> None:
    export_program(deep_program(MAX_LAYERS), "nucleo_h743zi", tmp_path / "ok")  # the limit itself fits
    with pytest.raises(ExportError, match=rf"{MAX_LAYERS + 1} layers, the firmware serves at most {MAX_LAYERS}"):
        export_program(deep_program(MAX_LAYERS + 1), "nucleo_h743zi", tmp_path / "deep")
    assert not (tmp_path / "deep").exists()


def _samples(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).integers(-128, 128, size=(n, 27_648), dtype=np.int8)
    x[0] = 127  # the rails
    return x


class TestOnQemu:
    pytestmark = needs_qemu

    def test_infer_dump_profile_are_exact(self, big_export: Path) -> None:
        elf = firmware_for(load_export(big_export), QEMU_BOARD)
        x = _samples(4, seed=1)
        want = Reference(PROGRAM).run(x)
        with QemuTarget(elf, parallel=2, min_samples_per_worker=2) as t:
            assert t.hello.input_bytes == 27_648 and t.hello.output_bytes == 9_216
            t0 = time.perf_counter()
            y, counts = t.infer_batch(x)
            seconds = time.perf_counter() - t0
            link = t.link_stats
            np.testing.assert_array_equal(y, want)
            assert (counts > 0).all()
            assert t.layer_output(x[2], 0) == want[2].tobytes()  # DUMP windows of a staged input
            assert len(t.profile(x[3])) == 1
        moved = 4 * (27_648 + 9_216)
        print(f"4 samples of 27,648 B in / 9,216 B out on 2 QEMU instances: {seconds:.2f} s, "
              f"{moved / seconds / 1024:.1f} KiB/s of tensors; {link.load_chunks} LOAD chunks, "
              f"{link.read_windows} READ windows")
        assert link.load_chunks >= 4 * 6 and link.read_windows >= 4 * 2

    def test_validate_cli_bit_exact(self, big_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
        data = tmp_path / "big.npz"
        rng = np.random.default_rng(2)
        np.savez(data, x=rng.random((6, 96, 96, 3)).astype(np.float32), y=np.zeros(6, np.int64))
        report = tmp_path / "r.json"
        rc = main(["validate", str(big_export), "--data", str(data), "--target", "qemu", "--json", str(report),
                   "--no-progress"])
        assert rc == 0, capsys.readouterr().err
        r = json.loads(report.read_text())
        assert r["samples"] == 6 and r["agreement"]["target_reference_exact"] == 6
        assert r["link"]["load_chunks"] > 0 and r["link"]["read_windows"] > 0


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm not installed")
@pytest.mark.parametrize("at_byte", [6_000, 20_000])
def test_device_reset_in_the_middle_of_a_staged_input(big_export: Path, at_byte: int) -> None:
    """QEMU's reset button pressed while the input is half staged (after LOAD 1, after LOAD 4): the
    firmware restarts with an empty staging buffer and announces it; the host stages the input again
    and the answer is still the reference's."""
    from qemu_faults import FaultyLinks
    from tinyrobust.targets.faultproxy import Fault

    elf = firmware_for(load_export(big_export), QEMU_BOARD)
    x = _samples(2, seed=3)
    links = FaultyLinks([Fault("reset", at_byte=at_byte)])
    try:
        with QemuTarget(elf, parallel=1, link_url=links) as t:
            links.target = t
            y, _ = t.infer_batch(x)
            link = t.link_stats
    finally:
        links.close()
    np.testing.assert_array_equal(y, Reference(PROGRAM).run(x))
    assert links.proxies[0].fired and link.device_resets == 1 and link.load_chunks > 2 * 6
