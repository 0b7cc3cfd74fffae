"""The export's firmware/ as a project that rebuilds without Python: the app and board sources beside
a Makefile, a CMakeLists.txt and its arm-none-eabi toolchain file, all printed from the same Recipe
that crossbuild.py runs (so `make`, CMake and `tinyrobust export --build` link the same image).

DIR/firmware/app/, board/   the evaluation firmware's protocol loop and the board's start-up (copies);
                            app/tr_model.h binds the app to a model exported with --name
DIR/firmware/linker.ld      the board's regions, with the arena in the region the budget chose
DIR/firmware/Makefile, CMakeLists.txt, arm-none-eabi.cmake   compile ../tr_nn, ../model, app, board
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

import jinja2

from .. import __version__
from .boards import Board
from .codegen.c_names import library_prefix
from .codegen.render import render_app_binding
from .crossbuild import (
    LIBS,
    LINK_FLAGS,
    OPTIONAL_LINK_FLAGS,
    Recipe,
    evaluation_sources,
    image_recipe,
    render_linker_script,
)
from .sources import app_dir, templates_dir

FIRMWARE = "firmware"
PROJECT_TEMPLATES = ("Makefile", "CMakeLists.txt", "arm-none-eabi.cmake")


def project_recipe(export_dir: Path, board: Board) -> Recipe:
    """The evaluation image of the export in `export_dir` from the export's own copies of every source."""
    fw = export_dir / FIRMWARE
    model = export_dir / "model"
    sources = evaluation_sources(model, board, tr_nn=export_dir / "tr_nn", app=fw / "app", board_dir=fw / "board")
    return image_recipe(sources, [model, fw / "app", export_dir / "tr_nn", fw / "board"], board)


def _cmake_quote(text: str) -> str:
    """A CMake quoted argument holding `text` literally."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def _copy_sources(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True)
    for path in sorted(src.iterdir()):
        if path.suffix in (".c", ".h"):
            shutil.copy2(path, dst / path.name)


def write_firmware_project(export_dir: Path, board: Board, arena_region: str) -> Path:
    """Writes export_dir/firmware/ (which must not exist yet); returns its path."""
    fw = export_dir / FIRMWARE
    fw.mkdir()
    _copy_sources(app_dir(), fw / "app")
    render_app_binding(library_prefix(export_dir / "model"), fw / "app")  # only for a model exported with --name
    _copy_sources(board.directory, fw / "board")
    (fw / "linker.ld").write_text(render_linker_script(board, arena_region))
    recipe = project_recipe(export_dir, board)

    def rel(path: Path) -> str:
        return Path(os.path.relpath(path, fw)).as_posix()

    objects = [(f"{i:03d}_{group}_{path.stem}.o", rel(path)) for i, (group, path) in enumerate(recipe.sources)]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir() / "project")), undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False,
    )
    env.filters["sh"] = shlex.quote
    env.filters["cmake"] = _cmake_quote
    context = {
        "version": __version__, "board": board.name, "arena_region": arena_region, "objects": objects,
        "machine_flags": recipe.machine_flags, "cflags": recipe.cflags,
        "includes": [rel(d) for d in recipe.includes], "defines": [f"{k}={v}" for k, v in recipe.defines],
        "link_flags": LINK_FLAGS, "optional_link_flags": OPTIONAL_LINK_FLAGS, "libs": LIBS,
    }
    for name in PROJECT_TEMPLATES:
        (fw / name).write_text(env.get_template(f"{name}.j2").render(**context))
    return fw
