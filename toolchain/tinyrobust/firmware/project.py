"""An export directory: a self-describing firmware project.

DIR/manifest.json      versions, model sha256, formats, board, sizes
DIR/program.json       the serialised, planned Program (validate/build/flash need nothing else)
DIR/report.json, .md   per-layer table, totals, arena, budget per region
DIR/model/             tr_model.h/.c, tr_model_weights.h/.c (generated)
DIR/tr_nn/             the kernel library, copied verbatim
DIR/firmware/          firmware.elf/.bin/.map (with --build)

workflows/export.py writes one; everything that reads one (validate, targets, flash) goes through
`load_export`, which refuses a directory whose program does not match its manifest.
"""

from __future__ import annotations

import json
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
    if man.get("format") != EXPORT_FORMAT:
        raise ExportError(f"{directory}: export format {man.get('format')!r}, expected {EXPORT_FORMAT!r}")
    program = Program.load(directory / man["program"])
    if program.sha256().hex() != man["program_sha256"]:
        raise ExportError(f"{directory}: program.json does not match the manifest's sha256 (edited or corrupt)")
    return LoadedExport(directory, man, program)
