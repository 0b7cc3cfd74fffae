"""QEMU target end to end: the evaluation firmware with a generated model under qemu-system-arm.

Builds the real firmware for the qemu_mps2_an500 board with a small generated model
(tests/program_fixtures.py), then checks HELLO / INFER / PROFILE / DUMP and parallel batches against
the numpy reference, and finally runs batches through the FaultProxy: random drops and corruption both
ways, and each scheduled fault a real link suffers (a stall longer than the timeout, a noise burst, a
disconnect, a device reset, the emulator's death). Every answer must equal the reference, or the run
must fail with a clear error; never a wrong number.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from program_fixtures import small_program, write_model_library
from qemu_faults import FaultyLinks
from tinyrobust.converter.reference import Reference
from tinyrobust.errors import TargetError
from tinyrobust.firmware.boards import load_board
from tinyrobust.firmware.crossbuild import build_firmware
from tinyrobust.targets.faultproxy import Fault, FaultProxy
from tinyrobust.targets.protocol import ModelHashMismatch, ProtocolError
from tinyrobust.targets.qemu import QemuTarget

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm not installed"),
    pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed"),
]

PROGRAM = small_program()
MODEL_HASH = PROGRAM.sha256()


def reference_layers(x: np.ndarray) -> list[np.ndarray]:
    """The reference's output of every op."""
    return Reference(PROGRAM).run_layers(x)


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = write_model_library(PROGRAM, tmp_path_factory.mktemp("model"))
    art = build_firmware(model, load_board("qemu_mps2_an500"), tmp_path_factory.mktemp("qemu_fw"), arena_region="DTCM")
    return art.elf


def _inputs(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).integers(-128, 128, size=(n, 16), dtype=np.int8)
    x[0] = 127  # saturation paths
    if n > 1:
        x[1] = -128
    return x


def test_hello_and_single_requests(firmware: Path) -> None:
    with QemuTarget(firmware, parallel=1) as t:
        h = t.hello
        assert (h.board, h.layers, h.input_bytes, h.output_bytes) == ("qemu_mps2_an500", 3, 16, 4)
        assert h.model_hash == MODEL_HASH and t.counter_unit == "emulated instructions"
        t.check_model_hash(MODEL_HASH)
        with pytest.raises(ModelHashMismatch):
            t.check_model_hash(bytes(32))
        for x in _inputs(4, seed=1):
            want = reference_layers(x)
            for layer in range(3):
                assert t.layer_output(x, layer) == want[layer].tobytes()
            prof = t.profile(x)
            assert len(prof) == 3 and all(c >= 0 for c in prof)
        with pytest.raises(ValueError):
            t.layer_output(x, 3)
        assert t.link_stats.retries == 0


def test_parallel_batch_is_ordered_and_exact(firmware: Path) -> None:
    x = _inputs(24, seed=2)
    want = np.stack([reference_layers(row)[2] for row in x])
    with QemuTarget(firmware, parallel=2) as t:
        y, counts = t.infer_batch(x)
        stats = t.batch_stats
        assert len(t.instances) == 2
        procs = [i.proc for i in t.instances]
    np.testing.assert_array_equal(y, want)
    assert counts.dtype == np.int64 and counts.shape == (24,) and (counts >= 0).all()
    assert stats is not None and stats.workers == 2 and stats.samples == 24 and stats.samples_per_s > 0
    assert all(p is not None and p.poll() is not None for p in procs)  # close() reaped every QEMU


def test_qemu_is_reaped_even_when_startup_fails(tmp_path: Path) -> None:
    bogus = tmp_path / "not_firmware.elf"
    bogus.write_bytes(b"\x7fELF garbage")
    with pytest.raises(ProtocolError):
        QemuTarget(bogus, parallel=1, timeout_s=0.5, retries=0)


@pytest.mark.parametrize("seed", [3, 4])
def test_fault_proxy_results_identical_to_clean_run(firmware: Path, seed: int) -> None:
    x = _inputs(12, seed=seed)
    with QemuTarget(firmware, parallel=1) as clean:
        clean_y, _ = clean.infer_batch(x)
        clean_dump = clean.layer_output(x[0], 1)
    proxies: list[FaultProxy] = []

    def via_proxy(port: int) -> str:
        proxies.append(FaultProxy(port, drop_rate=0.01, corrupt_rate=0.01, seed=seed, max_faults=8))
        return f"socket://127.0.0.1:{proxies[-1].port}"

    try:
        with QemuTarget(firmware, parallel=1, timeout_s=1.0, retries=8, link_url=via_proxy) as t:
            y, _ = t.infer_batch(x)
            dump = t.layer_output(x[0], 1)
            link = t.link_stats
    finally:
        for p in proxies:
            p.close()
    np.testing.assert_array_equal(y, clean_y)
    assert dump == clean_dump
    assert sum(p.total_faults for p in proxies) > 0
    assert link.retries + link.crc_errors + link.resyncs + link.timeouts > 0


def test_heavy_faults_give_correct_answers_or_clear_errors(firmware: Path) -> None:
    """A link too bad to finish everything: what does come back is right; the rest is a clear error."""
    x = _inputs(8, seed=5)
    want = [reference_layers(row)[2].tobytes() for row in x]
    proxies: list[FaultProxy] = []

    def via_proxy(port: int) -> str:
        proxies.append(FaultProxy(port, drop_rate=0.015, corrupt_rate=0.015, seed=9, max_faults=150,
                                  armed=False))
        return f"socket://127.0.0.1:{proxies[-1].port}"

    got, errors = 0, 0
    try:
        with QemuTarget(firmware, parallel=1, timeout_s=0.6, retries=2, link_url=via_proxy) as t:
            proxies[0].arm()  # HELLO went through clean; now every byte is at risk
            client = t._clients[0]
            for row, expect in zip(x, want, strict=True):
                try:
                    result = client.infer(row.tobytes())
                except ProtocolError as exc:
                    assert "INFER" in str(exc)
                    errors += 1
                    continue
                assert result.output == expect
                got += 1
    finally:
        for p in proxies:
            p.close()
    print(f"heavy faults: {got} correct answers, {errors} clear errors, {proxies[0].total_faults} faults")
    assert got + errors == len(x) and proxies[0].total_faults > 0
    assert got > 0  # retries do recover some requests even on this link


def test_port_taken_before_qemu_binds_is_retried(firmware: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The port race: another process grabs the chosen port first; QEMU fails to bind, we pick again."""
    import socket

    from tinyrobust.targets import qemu as qemu_mod

    squatter = socket.create_server(("127.0.0.1", 0))
    taken = squatter.getsockname()[1]
    real = qemu_mod._free_loopback_port
    ports = iter([taken])
    monkeypatch.setattr(qemu_mod, "_free_loopback_port", lambda: next(ports, None) or real())
    try:
        inst = qemu_mod.QemuInstance(firmware, retries=0)
        try:
            assert inst.tcp_port != taken and inst.client.hello().model_hash == MODEL_HASH
        finally:
            inst.close()
    finally:
        squatter.close()


# --------------------------------------------------------------------------------------------------------
# Scheduled faults: what a real link does


INFER_FRAME = 8 + 8 + 16  # frame overhead, input section header, the 16-byte input


def _run_with(firmware: Path, links: FaultyLinks, n: int, **target_kw) -> tuple[np.ndarray, object, float]:
    x = _inputs(n, seed=n)
    want = np.stack([reference_layers(row)[2] for row in x])
    t0 = time.perf_counter()
    try:
        with QemuTarget(firmware, link_url=links, **target_kw) as t:
            links.target = t
            y, _ = t.infer_batch(x)
            link = t.link_stats
    finally:
        links.close()
    np.testing.assert_array_equal(y, want)
    return y, link, time.perf_counter() - t0


def test_stall_longer_than_the_timeout(firmware: Path) -> None:
    links = FaultyLinks([Fault("delay", at_byte=INFER_FRAME * 10, seconds=1.5, direction="to_host")])
    _, link, _ = _run_with(firmware, links, 30, parallel=1, timeout_s=0.6)
    assert links.proxies[0].fired and link.timeouts >= 1 and link.retries >= 1


def test_noise_bursts_both_ways(firmware: Path) -> None:
    links = FaultyLinks([Fault("burst", at_byte=INFER_FRAME * 8, length=200),
                         Fault("burst", at_byte=24 * 20, length=60, direction="to_host")])
    _, link, _ = _run_with(firmware, links, 40, parallel=1, timeout_s=1.0)
    assert len(links.proxies[0].fired) == 2
    assert link.device_crc_errors + link.crc_errors + link.timeouts > 0 and link.resyncs > 0


def test_disconnect_is_reconnected(firmware: Path) -> None:
    links = FaultyLinks([Fault("disconnect", at_byte=INFER_FRAME * 15)])
    _, link, _ = _run_with(firmware, links, 40, parallel=1)
    assert links.proxies[0].connections == 2 and len(links.proxies) == 1  # same QEMU, a new connection
    assert link.reconnects == 1 and link.restarts == 0 and link.resent_samples == 1
    assert "reconnected" in link.events[0]


def test_device_reset_is_resynchronised(firmware: Path) -> None:
    links = FaultyLinks([Fault("reset", at_byte=INFER_FRAME * 15)])
    _, link, _ = _run_with(firmware, links, 40, parallel=1)
    assert links.proxies[0].fired and link.device_resets == 1 and link.restarts == 0
    assert any("device restarted" in e for e in link.events)


def test_emulator_death_is_survived(firmware: Path) -> None:
    """One of two QEMU instances is killed early in the run: it is started again, the sample it held is
    sent again, and every answer is still the reference's."""
    links = FaultyLinks([Fault("kill", at_byte=INFER_FRAME * 30)])
    _, link, seconds = _run_with(firmware, links, 300, parallel=2)
    print(f"emulator death: 300 samples in {seconds:.1f} s, {link.restarts} restart(s): {link.events}")
    assert link.restarts == 1 and link.resent_samples == 1 and len(links.proxies) == 3
    assert "was killed by signal 9 (SIGKILL)" in link.events[0]


def test_death_beyond_the_restart_budget_stops_every_worker_at_once(firmware: Path) -> None:
    """Before: the survivor finished its half of the batch, then the error came, with an empty detail."""
    n = 2000  # the survivor alone would need several seconds for what is left
    links = FaultyLinks([Fault("kill", at_byte=INFER_FRAME * 30)])
    finished: list[float] = []
    with pytest.raises(TargetError) as exc:
        try:
            with QemuTarget(firmware, link_url=links, parallel=2, max_restarts=0) as t:
                links.target = t
                t.infer_batch(_inputs(n), progress=lambda _: finished.append(time.monotonic()))
        finally:
            links.close()
    message = str(exc.value)
    assert "QEMU instance 0" in message and "was killed by signal 9 (SIGKILL)" in message, message
    late = [f for f in finished if f > links.killed_at[0] + 2.0]
    assert len(finished) < n - 500 and not late, (len(finished), len(late))
