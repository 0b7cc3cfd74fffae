"""What the model itself occupies in a linked image, read from the GNU ld map file.

The linked budget (budget.from_elf_usage) counts whole regions: the evaluation firmware's UART,
protocol buffers, stack and start-up code included. A user sizing their own product wants the part
that comes with the model: the generated model library (weights, tables, arena, its calls) and the
tr_nn kernels it links. The map file names the object file of every input section, so each byte is
attributed to the model or to the firmware around it by where it came from, not by symbol names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from .boards import Board

_START = "Linker script and memory map"
# An output section at column 0: name, then (on the same line or the next) address, size, load address.
_OUTPUT = re.compile(r"^(\.\S+)(?:\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)(?:\s+load address 0x([0-9a-f]+))?)?\s*$")
_OUTPUT_TAIL = re.compile(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)(?:\s+load address 0x([0-9a-f]+))?\s*$")
# An input section one space in: name, then address, size and the object it came from.
_INPUT = re.compile(r"^ (\S+)(?:\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*))?\s*$")
_INPUT_TAIL = re.compile(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*?)\s*$")


@dataclass(frozen=True)
class Piece:
    output_section: str
    obj: str
    address: int
    size: int
    load_address: int | None  # the flash copy of an initialised RAM section, None when it runs where it loads


def pieces(map_text: str) -> list[Piece]:
    """Every input section placed in an output section, with its object file."""
    lines = map_text.splitlines()
    try:
        start = next(i for i, ln in enumerate(lines) if ln.startswith(_START))
    except StopIteration:
        return []
    found: list[Piece] = []
    section: tuple[str, int, int | None] | None = None  # name, address, load address
    pending_section: str | None = None
    pending_input: str | None = None
    for line in lines[start + 1:]:
        if pending_section is not None:
            m = _OUTPUT_TAIL.match(line)
            section = (pending_section, int(m.group(1), 16), _hex(m.group(3))) if m else None
            pending_section = None
            continue
        m = _OUTPUT.match(line)
        if m:
            if m.group(2) is None:
                pending_section = m.group(1)
            else:
                section = (m.group(1), int(m.group(2), 16), _hex(m.group(4)))
            pending_input = None
            continue
        if section is None:
            continue
        if pending_input is not None:
            t = _INPUT_TAIL.match(line)
            if t:
                found.append(_piece(section, t.group(1), t.group(2), t.group(3)))
            pending_input = None
            continue
        m = _INPUT.match(line)
        if m and not m.group(1).startswith("*"):
            if m.group(2) is None:
                pending_input = m.group(1)
            else:
                found.append(_piece(section, m.group(2), m.group(3), m.group(4)))
    return [p for p in found if p.size > 0]


def _hex(text: str | None) -> int | None:
    return None if text is None else int(text, 16)


def _piece(section: tuple[str, int, int | None], address: str, size: str, obj: str) -> Piece:
    name, base, load = section
    addr = int(address, 16)
    return Piece(name, obj.strip(), addr, int(size, 16), None if load is None else load + (addr - base))


def is_model_object(obj: str) -> bool:
    """The generated model library or a tr_nn kernel (object names carry their source folder)."""
    name = obj.replace("\\", "/").rsplit("/", 1)[-1]
    return "tr_nn" in obj or "model" in name


def _sections(elf: Path) -> tuple[set[str], set[str]]:
    """The ELF's sections that occupy memory, and those of them with contents (a flash copy)."""
    with Path(elf).open("rb") as f:
        sections = [s for s in ELFFile(f).iter_sections() if s["sh_flags"] & SH_FLAGS.SHF_ALLOC]
        return {s.name for s in sections}, {s.name for s in sections if s["sh_type"] != "SHT_NOBITS"}


def model_usage(elf: Path, map_path: Path, board: Board) -> dict[str, int]:
    """Bytes per region of `board` that the model's objects occupy in the image, counting the flash
    copy of initialised RAM data too (as the linked budget does)."""
    allocated, with_contents = _sections(elf)
    usage = {r.name: 0 for r in board.regions}
    for p in pieces(Path(map_path).read_text(errors="replace")):
        if p.output_section not in allocated or not is_model_object(p.obj):
            continue
        run = board.region_at(p.address)
        if run is None:
            continue
        usage[run.name] += p.size
        if p.load_address is not None:
            load = board.region_at(p.load_address)
            if load is not None and load.name != run.name and p.output_section in with_contents:
                usage[load.name] += p.size
    return usage
