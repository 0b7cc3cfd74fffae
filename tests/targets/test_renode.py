"""Renode target: the scripts and the Robot keyword library are checked everywhere; running Renode
itself only where it is installed (it is in no registry this project reaches; CI runs it instead)."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from program_fixtures import small_program, write_model_library
from tinyrobust.firmware.boards import load_board
from tinyrobust.firmware.crossbuild import build_firmware
from tinyrobust.targets import renode as renode_mod
from tinyrobust.targets.protocol import ModelHashMismatch

sys.path.insert(0, str(Path(__file__).parent))
from test_protocol import INPUT_BYTES, MODEL_HASH, FakeDevice, _layer_output  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RENODE_DIR = REPO / "renode"
HAVE_RENODE = shutil.which("renode") is not None
needs_renode = pytest.mark.skipif(not HAVE_RENODE, reason=renode_mod.SKIP_REASON)


def _keywords_module():  # type: ignore[no-untyped-def]
    path = RENODE_DIR / "tinyrobust_keywords.py"
    spec = importlib.util.spec_from_file_location("tinyrobust_keywords", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _resc_commands() -> list[str]:
    lines = (RENODE_DIR / "nucleo_h743zi.resc").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith(("#", ":"))]


def test_skip_reason_is_the_documented_one() -> None:
    assert renode_mod.SKIP_REASON == "renode is not installed (no registry provides it)"


def test_resc_loads_platform_elf_dwt_and_usart3_socket() -> None:
    cmds = _resc_commands()
    assert "machine LoadPlatformDescription @platforms/cpus/stm32h743.repl" in cmds
    assert "sysbus LoadELF $elf" in cmds
    assert 'emulation CreateServerSocketTerminal $port "term" false' in cmds
    assert "connector Connect sysbus.usart3 term" in cmds
    dwt = [c for c in cmds if "Miscellaneous.DWT" in c]
    assert len(dwt) == 1 and "0xE0001000" in dwt[0] and re.search(r"frequency: \d+", dwt[0])
    # Inputs are overridable: defaults use '?=' so values set before `include` win.
    assert "$elf ?= @firmware.elf" in cmds and any(c.startswith("$port ?=") for c in cmds)
    # The ELF is loaded after the platform exists, and the terminal connected after it is created.
    order = [next(i for i, c in enumerate(cmds) if key in c) for key in
             ("LoadPlatformDescription @", "LoadELF", "CreateServerSocketTerminal", "connector Connect")]
    assert order == sorted(order)
    known = ("$", "using ", "mach ", "machine ", "sysbus ", "emulation ", "connector ", "cpu ")
    assert all(c.startswith(known) for c in cmds), [c for c in cmds if not c.startswith(known)]
    # The vector table is at the flash base, said before the ELF is loaded (Renode's guess would be
    # the lowest loaded section, ITCM at 0x0 once code is placed there).
    vtor = cmds.index("cpu VectorTableOffset 0x08000000")
    assert vtor < next(i for i, c in enumerate(cmds) if c.startswith("sysbus LoadELF"))
    tags = [c for c in cmds if c.startswith("sysbus Tag")]
    for tag in tags:
        lo, hi = (int(v, 16) for v in re.findall(r"0x[0-9A-Fa-f]+", tag)[:2])
        assert hi == lo and lo % 4 == 0, tag  # one register per tag
        # The platform models PWR (0x58024800..0x58024BFF); a tag there would never be read.
        assert not 0x58024800 <= lo < 0x58024C00, tag
    assert [t.split('"')[1] for t in tags] == ["DBGMCU_IDCODE"]


def test_robot_suite_uses_only_keywords_the_library_defines() -> None:
    robot = (RENODE_DIR / "tinyrobust.robot").read_text()
    module = _keywords_module()
    library = {name for name in dir(module.tinyrobust_keywords) if not name.startswith("_")}
    renode_builtin = {"setup", "teardown", "execute_command", "start_emulation", "test_teardown"}
    body = robot.split("*** Keywords ***", 1)[1]
    used = set()
    for line in body.splitlines():
        if line.startswith("    ") and not line.strip().startswith("#"):
            keyword = re.split(r"\s{2,}", line.strip())[0]
            used.add(keyword.lower().replace(" ", "_"))
    user_keywords = {"boot_firmware", "shut_down_firmware"}
    assert used - renode_builtin - user_keywords <= library, used - renode_builtin - user_keywords - library
    assert "Library           ${CURDIR}/tinyrobust_keywords.py" in robot


def test_command_line_sets_variables_before_include(tmp_path: Path) -> None:
    elf = tmp_path / "fw.elf"
    cmd = renode_mod.renode_command(Path("/usr/bin/renode"), elf, 4567, RENODE_DIR / "nucleo_h743zi.resc")
    assert cmd[:4] == ["/usr/bin/renode", "--disable-xwt", "--console", "--plain"]
    script = cmd[cmd.index("-e") + 1]
    assert script.index("$elf=@") < script.index("include @") < script.index("start")
    assert "$port=4567" in script and str(elf.resolve()) in script


def test_missing_renode_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(renode_mod.shutil, "which", lambda name: None)
    elf = tmp_path / "fw.elf"
    elf.write_bytes(b"\x7fELF")
    with pytest.raises(renode_mod.RenodeNotFound, match="no registry provides it"):
        renode_mod.RenodeTarget(elf)


def test_golden_file_and_keywords_against_a_device_double(tmp_path: Path) -> None:
    kw_module = _keywords_module()

    dev = FakeDevice()
    dev.hello = dataclasses.replace(dev.hello, counter_kind=0)  # a NUCLEO counts DWT cycles
    try:
        x = np.random.default_rng(0).integers(-128, 128, size=(3, INPUT_BYTES), dtype=np.int8)
        y = np.stack([np.frombuffer(_layer_output(r.tobytes(), 2), dtype=np.int8) for r in x])
        golden = tmp_path / "golden.json"
        renode_mod.write_golden(golden, MODEL_HASH, x, y)
        kw = kw_module.tinyrobust_keywords()
        kw.connect_to_firmware(dev.port)
        kw.hello_should_match_golden(str(golden))
        kw.golden_infers_should_match(str(golden))
        kw.profile_should_cover_every_layer(str(golden))

        wrong = tmp_path / "wrong.json"
        y_bad = y.copy()
        y_bad[1, 0] ^= 1
        renode_mod.write_golden(wrong, MODEL_HASH, x, y_bad)
        with pytest.raises(AssertionError, match="case 1"):
            kw.golden_infers_should_match(str(wrong))
        renode_mod.write_golden(wrong, bytes(32), x, y)
        with pytest.raises(ModelHashMismatch):
            kw.hello_should_match_golden(str(wrong))
        kw.disconnect_from_firmware()
    finally:
        dev.close()


@pytest.mark.renode
@needs_renode
def test_nucleo_firmware_under_renode(tmp_path: Path) -> None:
    fixture = write_model_library(small_program(), tmp_path / "model")
    art = build_firmware(fixture, load_board("nucleo_h743zi"), tmp_path / "fw", arena_region="DTCM")
    with renode_mod.RenodeTarget(art.elf) as target:
        assert target.hello.board == "nucleo_h743zi" and target.counter_unit == "cycles"
        x = np.zeros((2, target.hello.input_bytes), dtype=np.int8)
        y, counts = target.infer_batch(x)
        assert y.shape == (2, target.hello.output_bytes) and (counts > 0).all()
        assert y[0].tobytes() == y[1].tobytes()
