"""An export directory: a self-describing firmware project.

DIR/manifest.json      versions, model sha256, formats, board, sizes
DIR/program.json       the serialised, planned Program (validate/build/flash need nothing else)
DIR/report.json, .md   per-layer table, totals, arena, budget per region
DIR/model/             tr_model.h/.c, tr_model_weights.h/.c (generated; PREFIX_model.h... with --name)
DIR/tr_nn/             the kernel library, copied verbatim
DIR/firmware/          a firmware project (firmware/buildfiles.py): app/, board/, linker.ld, Makefile,
                       CMakeLists.txt; firmware.elf/.bin/.map (with --build)

workflows/export.py writes one; everything that reads one (validate, targets, flash) goes through
`load_export`, which refuses a directory whose program does not match its manifest. Whoever writes
into one (an export replacing it, validate building its firmware) holds `export_lock`, so two
tinyrobust processes given the same directory take turns instead of deleting each other's files.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..converter.program import Program
from ..errors import ExportError

EXPORT_FORMAT = "tinyrobust-export-v1"
MANIFEST = "manifest.json"
PROGRAM = "program.json"


@dataclass(frozen=True)
class LoadedExport:
    directory: Path
    manifest: dict[str, Any]
    program: Program

    @property
    def model_dir(self) -> Path:
        return self.directory / "model"


def load_export(directory: Path) -> LoadedExport:
    directory = Path(directory)
    try:
        man = json.loads((directory / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ExportError(f"{directory}: not a tinyrobust export directory ({exc})") from exc
    if not isinstance(man, dict) or man.get("format") != EXPORT_FORMAT:
        found = man.get("format") if isinstance(man, dict) else type(man).__name__
        raise ExportError(f"{directory}: export format {found!r}, expected {EXPORT_FORMAT!r}")
    program = Program.load(directory / str(man.get("program", PROGRAM)))
    if program.sha256().hex() != man["program_sha256"]:
        raise ExportError(f"{directory}: program.json does not match the manifest's sha256 (edited or corrupt)")
    return LoadedExport(directory, man, program)


@contextlib.contextmanager
def export_lock(directory: Path) -> Iterator[None]:
    """Exclusive use of the export directory `directory` (it need not exist yet) among processes.

    The lock is an flock on `.<name>.lock` beside the directory, removed on release. Another process
    holding it is waited for (announced once on stderr with its pid): two exports to one -o then both
    succeed, the second replacing the first. A lock file removed by its previous holder while we waited
    is detected (its inode changed) and the new one is locked instead.
    """
    directory = Path(directory).resolve()
    directory.parent.mkdir(parents=True, exist_ok=True)
    path = directory.parent / f".{directory.name}.lock"
    announced = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not announced:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    print(f"tinyrobust: waiting for process {holder}, which is writing {directory}", file=sys.stderr)
                    announced = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
