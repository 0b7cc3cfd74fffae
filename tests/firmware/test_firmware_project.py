"""The export's firmware/ is a project: `make` alone, and CMake with the exported toolchain file,
rebuild the image `tinyrobust export --build` linked, from a copy of the export elsewhere, without
Python on PATH. Compared section by section (every allocated section's bytes) and as firmware.bin."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from program_fixtures import small_program
from tinyrobust.workflows.export import export_program

PROGRAM = small_program()
# Only the system's tools: the rebuild must not need the virtualenv (or Python at all).
SYSTEM_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "LC_ALL": "C"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                       reason="arm-none-eabi-gcc not installed (gcc-arm-none-eabi libnewlib-arm-none-eabi)"),
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "small_nucleo"
    export_program(PROGRAM, "nucleo_h743zi", out, build=True)
    return out


@pytest.fixture()
def moved(exported: Path, tmp_path: Path) -> Path:
    """A copy of the export without the Python build's outputs: the project must stand on its own."""
    copy = tmp_path / "elsewhere" / "project"
    shutil.copytree(exported, copy, ignore=shutil.ignore_patterns("firmware.elf", "firmware.bin", "firmware.map"))
    return copy / "firmware"


def allocated_sections(elf: Path) -> dict[str, bytes]:
    """Name -> address and contents of every allocated section (NOBITS, e.g. the arena: zeros of its size)."""
    with elf.open("rb") as f:
        ef = ELFFile(f)
        return {
            s.name: s["sh_addr"].to_bytes(4, "little") + (bytes(s["sh_size"]) if s["sh_type"] == "SHT_NOBITS"
                                                          else s.data())
            for s in ef.iter_sections() if s["sh_flags"] & SH_FLAGS.SHF_ALLOC and s["sh_size"] > 0
        }


def symbol_bytes(elf: Path, name: str) -> bytes:
    """The initial bytes of a global object, read from the section holding it."""
    with elf.open("rb") as f:
        ef = ELFFile(f)
        (sym,) = ef.get_section_by_name(".symtab").get_symbol_by_name(name)
        section = ef.get_section(sym["st_shndx"])
        start = sym["st_value"] - section["sh_addr"]
        return section.data()[start:start + sym["st_size"]]


def assert_same_image(python_fw: Path, rebuilt: Path) -> None:
    expected = allocated_sections(python_fw / "firmware.elf")
    assert {".text", ".rodata", ".tr_arena"} <= set(expected)
    assert allocated_sections(rebuilt / "firmware.elf") == expected
    assert (rebuilt / "firmware.bin").read_bytes() == (python_fw / "firmware.bin").read_bytes()
    # The model is in it: the packed weights of op 0 as the converter made them.
    weights = PROGRAM.ops[0].arrays["weights"].tobytes()
    assert symbol_bytes(rebuilt / "firmware.elf", "tr_op0_weights") == weights


def test_make_rebuilds_the_same_image(exported: Path, moved: Path) -> None:
    subprocess.run(["make", "-j2"], cwd=moved, env=SYSTEM_ENV, check=True, capture_output=True)
    assert_same_image(exported / "firmware", moved / "build")
    assert (moved / "build" / "firmware.map").is_file()


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed (Debian package cmake)")
def test_cmake_rebuilds_the_same_image(exported: Path, moved: Path) -> None:
    build = moved.parent / "build-cmake"  # out of the source tree, as CMake projects are usually built
    subprocess.run(["cmake", "-S", str(moved), "-B", str(build), "-DCMAKE_TOOLCHAIN_FILE=arm-none-eabi.cmake"],
                   cwd=moved, env=SYSTEM_ENV, check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build), "-j2"], env=SYSTEM_ENV, check=True, capture_output=True)
    assert_same_image(exported / "firmware", build)


def test_project_lists_the_python_builds_sources_and_flags(exported: Path) -> None:
    """One source of truth: every source compiled by the Python build is in both build files, in its
    link order, and so is every compile flag."""
    from tinyrobust.firmware.boards import load_board
    from tinyrobust.firmware.buildfiles import project_recipe

    recipe = project_recipe(exported, load_board("nucleo_h743zi"))
    fw = exported / "firmware"
    makefile, cmake = (fw / "Makefile").read_text(), (fw / "CMakeLists.txt").read_text()
    relative = [os.path.relpath(p, fw) for _, p in recipe.sources]
    assert len(relative) > 25 and "../model/tr_model.c" in relative and "board/startup.c" in relative
    for text in (makefile, cmake):
        positions = [text.index(f"{r}") for r in relative]
        assert positions == sorted(positions)
        assert all(flag in text for flag in (*recipe.machine_flags, *recipe.cflags))
    assert (fw / "linker.ld").read_text().count(".tr_arena") >= 1
