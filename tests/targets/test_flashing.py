"""`tinyrobust flash --via openocd|drive` without a board: a fake `openocd` on PATH that records its
arguments and answers as told, and a folder with the ST-LINK drive's files standing in for the drive.
Every failure is one line on stderr and exit 2."""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
import serial.tools.list_ports
from serial.tools.list_ports_common import ListPortInfo

from program_fixtures import small_program
from tinyrobust.cli import main
from tinyrobust.firmware.boards import load_board
from tinyrobust.firmware.project import MANIFEST, PROGRAM
from tinyrobust.targets import discovery, flashing
from tinyrobust.targets.discovery import stlink_ports
from tinyrobust.targets.flashing import FlashError, flash_drive, flash_openocd, openocd_command
from tinyrobust.workflows.export import manifest

ELF_BYTES = b"\x7fELF" + bytes(range(60))
BIN_BYTES = bytes(range(256)) * 40


class FakeClock:
    """Stands in for the module's `time`: sleeping advances the clock instead of waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    """An export as `tinyrobust export --build` leaves it, with stand-in firmware files."""
    out = tmp_path / "out"
    (out / "firmware").mkdir(parents=True)
    program = small_program()
    program.save(out / PROGRAM)
    (out / MANIFEST).write_text(json.dumps(manifest(program, load_board("nucleo_h743zi"), None, "DTCM")))
    (out / "firmware" / "firmware.elf").write_bytes(ELF_BYTES)
    (out / "firmware" / "firmware.bin").write_bytes(BIN_BYTES)
    return out


@pytest.fixture
def fake_openocd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An `openocd` first on PATH: writes its argv to calls.json, prints $FAKE_OPENOCD_SAYS, exits
    $FAKE_OPENOCD_RC (0 unless set), or sleeps $FAKE_OPENOCD_HANG seconds first."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.json"
    script = bin_dir / "openocd"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import json, os, sys, time
        with open({str(log)!r}, "a") as f:
            f.write(json.dumps(sys.argv[1:]) + "\\n")
        time.sleep(float(os.environ.get("FAKE_OPENOCD_HANG", "0")))
        print(os.environ.get("FAKE_OPENOCD_SAYS", "** Programming Finished **\\n** Verified OK **"))
        sys.exit(int(os.environ.get("FAKE_OPENOCD_RC", "0")))
        """))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def _calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1, err
    return err[0]


def _stlink(device: str, serial_number: str) -> ListPortInfo:
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.serial_number = 0x0483, 0x374B, serial_number
    return info


@pytest.fixture
def no_boards(monkeypatch: pytest.MonkeyPatch) -> None:
    """Discovery sees no port, no drive and no mbed-tools device unless a test adds them."""
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda: [])
    monkeypatch.setattr(discovery, "_mounted_dirs", lambda: [])
    monkeypatch.setattr(discovery, "mbed_boards", lambda: [])


# ---------------------------------------------------------------- OpenOCD


def test_openocd_programs_verifies_and_resets_the_elf(export_dir: Path, fake_openocd: Path, no_boards: None,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flash", str(export_dir), "--via", "openocd"]) == 0
    elf = (export_dir / "firmware" / "firmware.elf").resolve()
    assert _calls(fake_openocd) == [["-f", "board/st_nucleo_h743zi.cfg", "-c", f"program {{{elf}}} verify reset exit"]]
    assert "verified, and reset the board" in capsys.readouterr().out


def test_openocd_is_the_default_and_takes_the_probe_to_use(export_dir: Path, fake_openocd: Path, no_boards: None,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(serial.tools.list_ports, "comports",
                        lambda: [_stlink("/dev/ttyACM0", "066AFF11"), _stlink("/dev/ttyACM1", "066AFF22")])
    # Two ST-LINKs: which one is not guessed.
    assert main(["flash", str(export_dir)]) == 2
    assert "found 2 ST-LINK probes (066AFF11, 066AFF22); name one with --probe" in _one_error_line(capsys)
    assert _calls(fake_openocd) == []
    assert main(["flash", str(export_dir), "--probe", "066AFF22"]) == 0
    (call,) = _calls(fake_openocd)
    assert call[2:4] == ["-c", "adapter serial 066AFF22"]


@pytest.mark.parametrize("says, rc, expected", [
    ("Open On-Chip Debugger 0.12.0\nError: open failed\nin procedure 'program'", 1,
     "openocd exited with status 1: Error: open failed (no ST-LINK found: is the board connected"),
    ("Info : STLINK V2J37M27\nError: init mode failed (unable to connect to the target)", 1,
     "openocd exited with status 1: Error: init mode failed (unable to connect to the target)"),
    ("** Programming Started **\n** Verify Failed **", 1, "openocd exited with status 1: ** Verify Failed **"),
])
def test_openocd_failure_is_one_line(export_dir: Path, fake_openocd: Path, no_boards: None,
                                     monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                     says: str, rc: int, expected: str) -> None:
    monkeypatch.setenv("FAKE_OPENOCD_SAYS", says)
    monkeypatch.setenv("FAKE_OPENOCD_RC", str(rc))
    assert main(["flash", str(export_dir), "--via", "openocd"]) == 2
    assert f"tinyrobust flash: error: {expected}" in _one_error_line(capsys)


def test_openocd_missing_is_one_line(export_dir: Path, tmp_path: Path, no_boards: None,
                                     monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert main(["flash", str(export_dir), "--via", "openocd"]) == 2
    line = _one_error_line(capsys)
    assert "openocd not found on PATH" in line and "apt install openocd" in line and "--via drive" in line


def test_openocd_that_hangs_is_ended(export_dir: Path, fake_openocd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_OPENOCD_HANG", "60")
    with pytest.raises(FlashError, match="did not finish within 1 s"):
        flash_openocd(export_dir / "firmware" / "firmware.elf", ["board/st_nucleo_h743zi.cfg"], timeout_s=1.0)


def test_openocd_needs_a_built_firmware_and_no_mount(export_dir: Path, fake_openocd: Path, no_boards: None,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flash", str(export_dir), "--via", "openocd", "--mount", "/media/X"]) == 2
    assert "--mount is for --via drive" in _one_error_line(capsys)
    (export_dir / "firmware" / "firmware.elf").unlink()
    assert main(["flash", str(export_dir), "--via", "openocd"]) == 2
    assert "firmware.elf not found: export with --build first" in _one_error_line(capsys)
    assert _calls(fake_openocd) == []


def test_openocd_command_quotes_the_path_for_tcl(tmp_path: Path) -> None:
    spaced = tmp_path / "my exports" / "firmware.elf"
    cmd = openocd_command("openocd", spaced, ["interface/stlink.cfg", "target/stm32h7x.cfg"])
    assert cmd == ["openocd", "-f", "interface/stlink.cfg", "-f", "target/stm32h7x.cfg",
                   "-c", f"program {{{spaced.resolve()}}} verify reset exit"]
    with pytest.raises(FlashError, match="braces"):
        openocd_command("openocd", tmp_path / "a}b" / "firmware.elf", ["board/x.cfg"])


# ---------------------------------------------------------------- the ST-LINK drive


def _drive(root: Path, name: str = "NODE_H743ZI") -> Path:
    drive = root / name
    drive.mkdir()
    (drive / "DETAILS.TXT").write_text("Version: 0221\nBuild:   Mar  6 2019 14:39:42\n")
    (drive / "MBED.HTM").write_text('<meta http-equiv="refresh" content="0; URL=http://mbed.org/device/?code=0813"/>')
    return drive


def test_drive_found_by_its_files_gets_the_bin(export_dir: Path, tmp_path: Path, no_boards: None,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    drive = _drive(tmp_path)
    monkeypatch.setattr(discovery, "_mounted_dirs", lambda: [tmp_path / "not-a-drive", drive])
    monkeypatch.setattr(flashing, "time", FakeClock())
    assert main(["flash", str(export_dir), "--via", "drive"]) == 0
    assert (drive / "firmware.bin").read_bytes() == BIN_BYTES and not list(drive.glob("*.tmp"))
    assert f"to {drive}" in capsys.readouterr().out


def test_drive_failures_are_one_line(export_dir: Path, tmp_path: Path, no_boards: None,
                                     monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(flashing, "time", FakeClock())
    # No board at all.
    assert main(["flash", str(export_dir), "--via", "drive"]) == 2
    assert "no ST-LINK drive found" in _one_error_line(capsys)
    # Two drives, nothing to choose between them.
    drives = [_drive(tmp_path, "NODE_A"), _drive(tmp_path, "NODE_B")]
    monkeypatch.setattr(discovery, "_mounted_dirs", lambda: drives)
    assert main(["flash", str(export_dir), "--via", "drive"]) == 2
    assert "found 2 ST-LINK drives" in _one_error_line(capsys)
    # A named drive that is not there.
    assert main(["flash", str(export_dir), "--via", "drive", "--mount", str(tmp_path / "gone")]) == 2
    assert "is not mounted" in _one_error_line(capsys)
    # The ST-LINK refuses the image (it writes FAIL.TXT on its drive).
    (drives[0] / "FAIL.TXT").write_text("The interface firmware FAILED to reset/halt the target MCU\r\n")
    assert main(["flash", str(export_dir), "--via", "drive", "--mount", str(drives[0])]) == 2
    assert "ST-LINK rejected the image: The interface firmware FAILED" in _one_error_line(capsys)
    # No firmware built.
    (export_dir / "firmware" / "firmware.bin").unlink()
    assert main(["flash", str(export_dir), "--via", "drive", "--mount", str(drives[1])]) == 2
    assert "firmware.bin not found: export with --build first" in _one_error_line(capsys)


def test_flash_drive_copies_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = tmp_path / "firmware.bin"
    image.write_bytes(BIN_BYTES)
    drive = tmp_path / "NOD_H743ZI"
    drive.mkdir()
    monkeypatch.setattr(flashing, "time", FakeClock())
    flash_drive(image, drive, timeout_s=1.0)
    assert (drive / "firmware.bin").read_bytes() == image.read_bytes()
    assert not list(drive.glob("*.tmp"))


def test_flash_drive_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flashing, "time", FakeClock())
    image = tmp_path / "firmware.bin"
    image.write_bytes(b"\x00" * 64)
    with pytest.raises(FlashError, match="not mounted"):
        flash_drive(image, tmp_path / "absent")
    with pytest.raises(FlashError, match="not a .bin"):
        flash_drive(tmp_path / "firmware.elf", tmp_path)
    drive = tmp_path / "drive"
    drive.mkdir()
    with pytest.raises(FlashError, match="did not re-enumerate"):
        flash_drive(image, drive, serial_port=str(tmp_path / "ttyACM9"), timeout_s=0.2)


@pytest.mark.skipif(shutil.which("openocd") is None, reason="needs openocd (make setup installs the Debian package)")
def test_real_openocd_finds_its_configs_and_reports_no_board(export_dir: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # Debian's OpenOCD with the board's own config names: with no ST-LINK on USB it must get as far as
    # opening the adapter (so every -f file exists) and say so in one line. The stand-in ELF is not a
    # valid image, so even a board that is connected after the check below would not be written.
    if stlink_ports():
        pytest.skip("an ST-LINK is connected; this checks the no-board path (TINYROBUST_PORT runs the board)")
    assert main(["flash", str(export_dir), "--via", "openocd"]) == 2
    line = _one_error_line(capsys)
    assert "openocd exited with status 1: Error: open failed (no ST-LINK found" in line, line
