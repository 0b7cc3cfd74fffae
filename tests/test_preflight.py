"""preflight.py and the command line: every mistake in the arguments is one line and exit 2, found
before TensorFlow is imported (each case runs the real CLI in a fresh interpreter and reports whether
TensorFlow got loaded); crashes that used to reach the user as tracebacks are one line too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "examples" / "digits_stq.h5"
PROBE = """
import sys
from tinyrobust.cli import main
rc = main(sys.argv[1:])
print("tensorflow imported" if "tensorflow" in sys.modules else "tensorflow not imported")
sys.exit(rc)
"""


def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, list[str], str]:
    """(exit code, stderr lines, what the probe says about TensorFlow)."""
    full_env = dict(os.environ, PYTHONPATH=str(REPO / "toolchain"), **(env or {}))
    res = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=full_env,
                         timeout=300, cwd=REPO)
    return res.returncode, res.stderr.strip().splitlines(), res.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("preflight") / "data.npz"
    np.savez(path, x=np.random.default_rng(0).random((4, 8, 8, 1)).astype(np.float32), y=np.zeros(4, np.int64))
    return path


def _one_line(rc: int, err: list[str], tf: str, *needles: str) -> None:
    assert rc == 2, err
    assert len(err) == 1 and all(n in err[0] for n in needles), err
    assert tf == "tensorflow not imported"


def test_unknown_board_before_conversion(tmp_path: Path) -> None:
    """Before: a 25–35 s conversion, then the error."""
    rc, err, tf = _cli("export", str(MODEL), "--board", "nucleo_nope", "-o", str(tmp_path / "out"))
    _one_line(rc, err, tf, "nucleo_nope")
    assert not (tmp_path / "out").exists()


def test_unknown_target(data: Path) -> None:
    _one_line(*_cli("validate", str(MODEL), "--data", str(data), "--target", "fpga"), "unknown target 'fpga'")


def test_missing_qemu_before_build(data: Path, tmp_path: Path) -> None:
    """Before: a conversion and a 10 s firmware build, then "qemu-system-arm is not on PATH"."""
    bin_dir = tmp_path / "bin"  # python and the cross compiler, but no QEMU
    bin_dir.mkdir()
    for tool in ("arm-none-eabi-gcc", "gcc"):
        found = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        if found:
            (bin_dir / tool).symlink_to(found)
    rc, err, tf = _cli("validate", str(MODEL), "--data", str(data), "--target", "qemu", env={"PATH": str(bin_dir)})
    _one_line(rc, err, tf, "qemu-system-arm is not on PATH")


def test_incomplete_cross_toolchain_before_build(data: Path, tmp_path: Path) -> None:
    """gcc and QEMU, but no objcopy beside them: before, a 40 s run, then FileNotFoundError (exit 3)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        found = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        if not found:
            pytest.skip(f"{tool} not installed")
        (bin_dir / tool).symlink_to(found)
    rc, err, tf = _cli("validate", str(MODEL), "--data", str(data), "--target", "qemu", env={"PATH": str(bin_dir)})
    _one_line(rc, err, tf, "arm-none-eabi-objcopy not found")


def test_serial_port_that_does_not_exist(data: Path) -> None:
    """Before: a conversion, then a 25-line SerialException traceback, exit 1."""
    _one_line(*_cli("validate", str(MODEL), "--data", str(data), "--target", "serial:/dev/nonexistent"),
              "no serial port /dev/nonexistent")


@pytest.mark.parametrize("where", ["proc", "under_a_file"])
def test_export_directory_that_cannot_be_written(tmp_path: Path, where: str) -> None:
    """Before: a conversion, then a PermissionError / FileNotFoundError traceback."""
    if where == "proc":
        out = Path("/proc/tinyrobust_out")
    else:
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "out"
    rc, err, tf = _cli("export", str(MODEL), "-o", str(out))
    _one_line(rc, err, tf, "-o", str(out))


def test_export_directory_that_is_not_an_export(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    _one_line(*_cli("export", str(MODEL), "-o", str(tmp_path)), "refusing to replace it")
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_html_that_is_a_directory(data: Path, tmp_path: Path) -> None:
    _one_line(*_cli("robustness", str(MODEL), "--data", str(data), "--html", str(tmp_path)), "--html",
              "is a directory")


def test_robustness_checks_every_model_the_source_and_markdown(data: Path, tmp_path: Path) -> None:
    """A comparison of several models: the third one missing is found before the first is converted."""
    absent = tmp_path / "absent.h5"
    _one_line(*_cli("robustness", str(MODEL), str(MODEL), str(absent), "--data", str(data)), str(absent),
              "no such file")
    _one_line(*_cli("robustness", str(MODEL), "--source", str(absent), "--data", str(data)), str(absent))
    _one_line(*_cli("robustness", str(MODEL), "--data", str(data), "--markdown", str(tmp_path)), "--markdown",
              "is a directory")


def test_missing_data_file(tmp_path: Path) -> None:
    _one_line(*_cli("validate", str(MODEL), "--data", str(tmp_path / "absent.npz")), "--data", "no such file")


def test_closed_stdout_is_not_a_crash(tmp_path: Path) -> None:
    """`tinyrobust … | head` closes the pipe early: before, an internal error (BrokenPipeError)."""
    from program_fixtures import small_program
    from tinyrobust.workflows.export import export_program

    export_program(small_program(), "nucleo_h743zi", tmp_path / "export")
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).random((50, 4, 4, 1)).astype(np.float32),
             y=np.zeros(50, np.int64))
    env = dict(os.environ, PYTHONPATH=str(REPO / "toolchain"))
    proc = subprocess.Popen([sys.executable, "-m", "tinyrobust.cli", "validate", str(tmp_path / "export"),
                             "--data", str(tmp_path / "d.npz"), "--no-progress"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # the reader is gone before the first line is printed
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert proc.returncode == 141 and "internal error" not in err and "Traceback" not in err, err


@pytest.mark.slow
def test_tensorflow_start_up_lines_are_not_shown(tmp_path: Path) -> None:
    """Before: "All log messages before absl::InitializeLog()…", "cudart_stub.cc … Could not find cuda
    drivers", "failed call to cuInit" and ART's PyTorch warning on every run, even a successful one."""
    cal = tmp_path / "cal.npz"
    np.savez(cal, x=np.random.default_rng(0).random((16, 8, 8, 1)).astype(np.float32), y=np.zeros(16, np.int64))
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user runs it
    env["PYTHONPATH"] = str(REPO / "toolchain")
    res = subprocess.run([sys.executable, "-m", "tinyrobust.cli", "validate", str(MODEL), "--data", str(cal),
                          "--calibration", str(cal)], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr
    for noise in ("absl::InitializeLog", "cudart_stub", "cuInit", "cuda", "PyTorch"):
        assert noise not in res.stderr, res.stderr
    assert res.stderr == "", res.stderr
    # Before the results, on stdout (a pipe here): the step line and plain progress, no \r.
    assert "\r" not in res.stdout
    assert res.stdout.splitlines()[:2] == [f"loading TensorFlow and converting {MODEL.name} …",
                                           "reference: 16 samples in " + res.stdout.split("samples in ")[1].split()[0]
                                           + " s"]


def test_quiet_startup_keeps_what_is_not_noise(capfd: pytest.CaptureFixture) -> None:
    from tinyrobust.converter.frontend.quiet import quiet_startup

    with quiet_startup():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"I0000 00:00:1.0 123 cudart_stub.cc:31] Could not find cuda drivers on your machine.\n")
        os.write(2, b"a real problem the user must see\n")
    assert capfd.readouterr().err == "a real problem the user must see\n"
