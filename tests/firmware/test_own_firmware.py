"""README "Use the model in your own firmware", followed literally: its classify() is compiled out of
README.md (at -Wall -Wextra -Werror) with a model exported with --name kws, the exported tr_nn/ and
model/ files, and a minimal main (own_firmware/main.c); run on QEMU, it must give the classes the
numpy reference gives for the same float inputs."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from program_fixtures import small_program
from tinyrobust.converter.program import InputQuantization
from tinyrobust.converter.reference import Reference
from tinyrobust.firmware.boards import load_board
from tinyrobust.firmware.crossbuild import build_image, startup_sources
from tinyrobust.firmware.sources import app_dir
from tinyrobust.targets.qemu import QEMU_BOARD, qemu_command
from tinyrobust.workflows.export import export_program

ROOT = Path(__file__).resolve().parents[2]
MAIN = Path(__file__).parent / "own_firmware" / "main.c"
SECTION = "## Use the model in your own firmware"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.qemu,
    pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                       reason="arm-none-eabi-gcc not installed (gcc-arm-none-eabi libnewlib-arm-none-eabi)"),
]


def readme_classifier() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index(SECTION):]
    section = section[:section.index("\n## ", len(SECTION))]
    (block,) = re.findall(r"```c\n(.*?)```", section, re.S)
    return "\n".join(line[2:] if line.startswith("  ") else line for line in block.splitlines()) + "\n"


def expected_classes(program) -> int:
    """main.c's exit status computed on the host: the same float inputs, quantised as the host does."""
    reference = Reference(program)
    code = 0
    for k in range(3):
        i = np.arange(16)
        x = (((i * 53 + k * 29 + 5) % 256) - 128).astype(np.float32) / np.float32(20)
        q = program.input_quantization.quantize(x)
        code |= int(np.argmax(reference.run_layers(q)[-1])) << (2 * k)
    return code


def test_readme_classifier_runs_on_qemu(tmp_path: Path) -> None:
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm not installed")
    base = small_program()
    # A converted model's input tensor is on its input grid; the fixture's are set apart, so align them.
    inp = base.tensor(base.input)
    program = dataclasses.replace(base, input_quantizations=(InputQuantization(inp.scale, inp.zero_point, -128, 127,
                                                                               "test"),))
    export = export_program(program, QEMU_BOARD, tmp_path / "kws_export", prefix="kws").out_dir
    classify = tmp_path / "classify.c"
    classify.write_text(readme_classifier())
    board = load_board(QEMU_BOARD)
    # The files the README names, plus a start-up (the board's, standing in for the user's own; app/ for
    # its tr_board.h).
    sources = [("tr_nn", p) for p in sorted((export / "tr_nn").glob("*.c"))]
    sources += [("model", export / "model" / "kws_model.c"), ("model", export / "model" / "kws_model_weights.c")]
    sources += [("user", classify), ("user", MAIN)]
    sources += [("startup", p) for p in startup_sources()] + [("board", p) for p in board.c_sources]
    fw = build_image(sources, [export / "model", export / "tr_nn", app_dir()], board, tmp_path / "fw",
                     arena_region="DTCM")
    run = subprocess.run(qemu_command(board, fw.elf, "-semihosting-config", "enable=on,target=native"),
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
    assert run.returncode != 200, "classify() returned -1"
    expected = expected_classes(program)
    assert len({(expected >> (2 * k)) & 3 for k in range(3)}) > 1  # the inputs do not all give one class
    assert run.returncode == expected, run.stderr
