"""The CLI's stable surface: validate on a .h5 reports the DESIGN.md keys; the demo runs end to end."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tinyrobust.cli import main

pytestmark = pytest.mark.slow


def test_validate_h5_reports_design_keys(trained_model, digits_files, tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = main(["validate", str(trained_model("ternary_bn_relu")), "--data", str(digits_files["test"]),
               "--calibration", str(digits_files["calibration"]), "--target", "host", "--json", str(out),
               "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    r = json.loads(out.read_text())
    for key in ("samples", "target", "board", "latency"):
        assert key in r
    for key in ("keras", "reference", "target"):
        assert 0.0 <= r["accuracy"][key] <= 1.0
    assert r["agreement"]["target_reference_exact"] == r["samples"] == 597
    assert r["agreement"]["reference_keras_top1"] >= 0.99 * r["samples"]
    printed = capsys.readouterr().out
    assert "bit-exact target vs reference: 597/597" in printed


@pytest.mark.qemu
def test_demo_runs_end_to_end(tmp_path, capsys):
    folder = tmp_path / "my-demo"
    assert main(["demo", "-o", str(folder), "--limit", "60"]) == 0
    printed = capsys.readouterr().out
    assert "bit-exact vs reference  60/60" in printed
    assert "emulated instructions per inference" in printed
    # What ran is said: the QEMU build of the same sources, and the NUCLEO image only built.
    assert "export/firmware-qemu_mps2_an500/firmware.elf: the QEMU build" in printed
    assert "export/firmware/firmware.bin: the NUCLEO-H743ZI image, linked and sized; not run" in printed
    # The model's own memory beside the whole firmware's, per region: the model's part is smaller.
    flash = next(line for line in printed.splitlines() if line.strip().startswith("FLASH"))
    model_bytes, whole_bytes = (int(v.replace(",", "")) for v in flash.split()[1:4:2])
    assert 0 < model_bytes < whole_bytes
    # The folder is kept, holds what the printed next commands use, and they name it.
    for name in ("digits_stq.h5", "digits_cal.npz", "digits_test.npz", "validation.json",
                 "export/firmware/firmware.elf", "export/report.md"):
        assert (folder / name).is_file(), name
    commands = [line.strip() for line in printed.splitlines()
                if line.strip().startswith(("tinyrobust validate", "tinyrobust robustness", "tinyrobust flash"))]
    assert len(commands) == 3 and all(str(folder.name) in c for c in commands)
    # A second demo into the same folder refreshes it.
    assert main(["demo", "-o", str(folder), "--limit", "5", "--target", "reference"]) == 0


@pytest.mark.qemu
def test_robustness_cli_on_qemu(trained_model, digits_files, tmp_path, capsys):
    import base64
    import re

    report, page = tmp_path / "rob.json", tmp_path / "rob.html"
    rc = main(["robustness", str(trained_model("stochastic_dw_sep")), "--data", str(digits_files["test"]),
               "--calibration", str(digits_files["calibration"]), "--target", "qemu", "--limit", "12",
               "--attacks", "fgsm,pgd,square,boundary", "--eps", "0.1", "--iterations", "5", "--queries", "50",
               "--jobs", "1", "--json", str(report), "--html", str(page), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    r = json.loads(report.read_text())
    (m,) = r["models"]
    assert m["target"] == "qemu" and r["all_confirmed"]
    assert m["latency"]["unit"] == "emulated instructions" and m["latency"]["mean"] > 0
    assert len(m["masking_checks"]) == 8 and all(c["evidence"] for c in m["masking_checks"])
    (row,) = r["table"]["rows"]
    assert row["model"] == "stochastic_dw_sep" and row["cells"]
    assert all(0.0 <= c["value"] <= 1.0 for c in row["cells"].values())
    pngs = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page.read_text())
    assert pngs and base64.b64decode(pngs[0]).startswith(b"\x89PNG\r\n\x1a\n")


# ---------------------------------------------------------------- signals: nothing is left running

REPO = Path(__file__).resolve().parents[1]


def _descendants(root: int) -> dict[int, str]:
    """pid → command name of every process below `root`, from /proc."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)], names[int(entry)] = int(rest[1]), name
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in found:
                found[child] = names[child]
                frontier.append(child)
    return found


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def small_export(tmp_path_factory) -> tuple[Path, Path]:
    """An export of the hand-made small Program with its QEMU firmware built, and 20,000 samples: a
    validate run on QEMU long enough to be interrupted mid-way."""
    from program_fixtures import small_program
    from tinyrobust.firmware.project import load_export
    from tinyrobust.targets.factory import firmware_for
    from tinyrobust.targets.qemu import QEMU_BOARD
    from tinyrobust.workflows.export import export_program

    d = tmp_path_factory.mktemp("signals")
    export_program(small_program(), "nucleo_h743zi", d / "export")
    if shutil.which("arm-none-eabi-gcc") is not None:
        firmware_for(load_export(d / "export"), QEMU_BOARD)
    rng = np.random.default_rng(0)
    np.savez(d / "data.npz", x=rng.random((20_000, 4, 4, 1)).astype(np.float32), y=rng.integers(0, 4, 20_000))
    return d / "export", d / "data.npz"


def _start_validate(export: Path, data: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO / "toolchain"))
    return subprocess.Popen([sys.executable, "-m", "tinyrobust.cli", "validate", str(export), "--data", str(data),
                             "--target", "qemu", "--no-progress"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for(proc: subprocess.Popen, names: tuple[str, ...], count: int, within_s: float = 60) -> dict[int, str]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        found = {p: n for p, n in _descendants(proc.pid).items() if n.startswith(names)}
        if len(found) >= count:
            return found
        time.sleep(0.02)
    raise AssertionError(f"no {names} under pid {proc.pid} within {within_s} s")


needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                                reason="needs qemu-system-arm and arm-none-eabi-gcc")


@needs_qemu
@pytest.mark.qemu
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_mid_run_leaves_no_qemu(small_export, sig) -> None:
    """CI cancellation, timeout(1), pytest-timeout (SIGTERM), Ctrl-C (SIGINT), a closed terminal (SIGHUP):
    the run stops with one line and exit 128 + signal, and no QEMU outlives it."""
    export, data = small_export
    proc = _start_validate(export, data)
    try:
        qemus = _wait_for(proc, ("qemu-system-arm",), 2)
        time.sleep(0.5)  # well inside the 20,000-sample run
        everything = _descendants(proc.pid)
        os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].endswith(
        f"stopped by {signal.Signals(sig).name}; no child process left running"), err
    assert len(err.strip().splitlines()) == 1, err
    left = [f"{pid} {name}" for pid, name in everything.items() if _running(pid)]
    assert not left, f"still running after {signal.Signals(sig).name}: {left} (QEMU was {qemus})"


@needs_qemu
@pytest.mark.qemu
def test_sigkill_of_tinyrobust_takes_qemu_with_it(small_export) -> None:
    """No handler runs on SIGKILL: the children's parent-death signal is what ends them."""
    export, data = small_export
    proc = _start_validate(export, data)
    try:
        qemus = _wait_for(proc, ("qemu-system-arm",), 2)
        proc.kill()
        proc.communicate(timeout=30)
        deadline = time.monotonic() + 5
        while any(_running(p) for p in qemus) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not [p for p in qemus if _running(p)]


@needs_qemu
@pytest.mark.qemu
def test_sigterm_during_the_firmware_build_leaves_no_compiler(small_export, tmp_path) -> None:
    export, data = small_export
    fresh = tmp_path / "export"
    shutil.copytree(export, fresh, ignore=shutil.ignore_patterns("firmware*"))
    proc = _start_validate(fresh, data)
    try:
        _wait_for(proc, ("arm-none-eabi-gc", "cc1"), 1)
        everything = _descendants(proc.pid)
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143 and "Traceback" not in err, err
    assert not [f"{p} {n}" for p, n in everything.items() if _running(p)]
    assert not (fresh / "firmware-qemu_mps2_an500" / "program.sha256").exists()  # no half-built firmware in use
