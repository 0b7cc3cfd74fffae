"""The kernel library as a whole (firmware/tr_nn): it cross-compiles for the Cortex-M7 with -Werror
on both paths, the DSP path really uses the DSP instructions, and its decode tables hold exactly the
decoded weights. (Each kernel's numbers are tested against numpy in tests/converter/ops/.)"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinyrobust.firmware.boards import load_board
from tinyrobust.firmware.crossbuild import COMMON_CFLAGS
from tinyrobust.firmware.runner import Runner
from tinyrobust.firmware.sources import PLAIN_C_FLAG, tr_nn_dir, tr_nn_sources
from tinyrobust.targets.qemu import QEMU_BOARD

DSP_INSTRUCTIONS = ("smlad", "sxtb16", "sxtab16", "ssub8", "sel")


@pytest.mark.parametrize("plain_c", [False, True], ids=["dsp", "plain_c"])
def test_cross_compiles_warning_free(tmp_path: Path, plain_c: bool) -> None:
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    flags = [*load_board(QEMU_BOARD).cflags, *COMMON_CFLAGS, f"-I{tr_nn_dir()}", *([PLAIN_C_FLAG] if plain_c else [])]
    for src in tr_nn_sources():
        proc = subprocess.run([gcc, *flags, "-c", str(src), "-o", str(tmp_path / f"{src.stem}.o")],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr


def _mnemonics(elf: Path) -> set[str]:
    objdump = shutil.which("arm-none-eabi-objdump")
    if objdump is None:
        pytest.skip("arm-none-eabi-objdump not installed")
    text = subprocess.run([objdump, "-d", str(elf)], capture_output=True, text=True, check=True).stdout
    return {parts[2] for line in text.splitlines() if len(parts := line.split("\t")) >= 3}


def test_dsp_path_uses_dsp_instructions(m7_runner: Runner) -> None:
    """Guards against the DSP path silently compiling out (e.g. a wrong feature macro)."""
    mnemonics = _mnemonics(m7_runner.path)
    if "_plain" in m7_runner.path.parent.name:
        assert "smlad" not in mnemonics
    else:
        for insn in DSP_INSTRUCTIONS:
            assert insn in mnemonics, insn


def _t2_lut_expected() -> np.ndarray:
    dec = {0: 0, 1: 1, 2: 0, 3: -1}
    out = np.zeros((256, 2), np.uint32)
    for b in range(256):
        w = [dec[(b >> (2 * i)) & 3] & 0xFFFF for i in range(4)]
        out[b] = (w[0] | w[1] << 16, w[2] | w[3] << 16)
    return out


def _t5_luts_expected() -> np.ndarray:
    """tr_t5_lut[2][243][4]: [0] = byte at an even position, [1] = at an odd one; 4th word 0."""
    out = np.zeros((2, 243, 4), np.uint32)
    for b in range(243):
        w = [((b // 3**k) % 3 - 1) & 0xFFFF for k in range(5)]
        out[0, b, :3] = (w[0] | w[1] << 16, w[2] | w[3] << 16, w[4])
        out[1, b, :3] = (w[0] << 16, w[1] | w[2] << 16, w[3] | w[4] << 16)
    return out


def test_dsp_decode_tables(tr_nn_lib: ctypes.CDLL) -> None:
    """The preprocessor-built tables the DSP path uses hold exactly the decoded weights."""
    t2 = np.ctypeslib.as_array((ctypes.c_uint32 * 512).in_dll(tr_nn_lib, "tr_t2_pair_lut")).reshape(256, 2)
    np.testing.assert_array_equal(t2, _t2_lut_expected())
    t5 = np.ctypeslib.as_array((ctypes.c_uint32 * (2 * 243 * 4)).in_dll(tr_nn_lib, "tr_t5_lut"))
    np.testing.assert_array_equal(t5.reshape(2, 243, 4), _t5_luts_expected())
