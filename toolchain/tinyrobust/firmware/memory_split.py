"""What fills each memory region of a linked firmware: weights, model tables, code, arena, stack,
protocol buffers, other.

Read from the linker's map (which object file each input section came from) and the ELF (section
types and load addresses, and the sizes of the symbols inside `.rodata.tr_weights`, where the packed
weights sit beside their bias and requantisation arrays). Each allocated section is counted where it
runs and, when it is initialised RAM, again where its load image sits in flash, exactly as
`crossbuild.read_section_usage` does; alignment padding goes to the section's own category. The
parts of a region therefore sum to its used bytes, and `check_split` refuses a split where they do
not (a map that does not belong to the ELF, or a parse that lost or doubled a line).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from ..errors import BuildError
from .boards import Board

WEIGHTS = "weights"
MODEL_TABLES = "model tables"
CODE = "code"
ARENA = "arena"
STACK = "stack"
PROTOCOL = "protocol buffers"
OTHER = "other"
CATEGORIES: tuple[str, ...] = (WEIGHTS, MODEL_TABLES, CODE, ARENA, STACK, PROTOCOL, OTHER)
DESCRIPTIONS: dict[str, str] = {
    WEIGHTS: "packed weight arrays of the model",
    MODEL_TABLES: "bias, requantisation, sigmoid/tanh tables, layer descriptors, kernel decode tables",
    CODE: "vector table and machine code (kernels, model, protocol, board, C library)",
    ARENA: "activation arena",
    STACK: "main stack",
    PROTOCOL: "the serving firmware's state: frame parser, UART receive ring, input staging, output",
    OTHER: "C library data, strings, CRC tables, alignment",
}

# Output sections whose every byte (padding included) is one category.
_SECTION_CATEGORY = {".isr_vector": CODE, ".text": CODE, ".tr_fast_text": CODE, ".ARM.exidx": CODE,
                     ".ARM.extab": CODE, ".tr_arena": ARENA, ".stack": STACK}
# crossbuild.build_image names objects NNN_<group>_<stem>.o; the group says whose source it was.
_OBJECT_RE = re.compile(r"(?:^|/)\d{3}_(?P<group>tr_nn|model|app|board)_[^/]*\.o$")
_ENTRY_RE = re.compile(r"^\s+0x(?P<addr>[0-9a-fA-F]+)\s+0x(?P<size>[0-9a-fA-F]+)\s+(?P<file>\S.*)$")


@dataclass(frozen=True)
class MapEntry:
    """One input section placed by the linker, as the map lists it."""

    output: str  # the output section it went into
    name: str  # the input section's name
    address: int
    size: int
    source: str  # object file (or archive member) it came from

    @property
    def group(self) -> str | None:
        m = _OBJECT_RE.search(self.source)
        return m["group"] if m else None


def parse_map(text: str) -> list[MapEntry]:
    """Every input section with a nonzero size under an output section of the map's memory map.

    GNU ld writes `` .name  0xADDR  0xSIZE  file`` on one line, or the name alone when it is long and
    the rest on the next line; `*fill*` and symbol lines carry no file and are skipped (padding is
    what a section's entries leave over)."""
    start = text.find("Linker script and memory map")
    if start < 0:
        raise BuildError("firmware.map has no memory map (not a GNU ld map file)")
    entries: list[MapEntry] = []
    output: str | None = None
    pending: str | None = None
    for line in text[start:].splitlines():
        if line.startswith("."):  # an output section header
            output, pending = line.split()[0], None
            continue
        if output is None or not line.startswith(" "):
            pending = None
            continue
        fields = line.split()
        if not fields:
            continue
        if line.startswith(" .") or line.startswith(" COMMON"):
            if len(fields) == 1:
                pending = fields[0]
                continue
            name, rest = fields[0], " " + " ".join(fields[1:])
        elif pending is not None:
            name, rest = pending, line
        else:
            continue
        pending = None
        m = _ENTRY_RE.match(rest)
        if m is None or int(m["size"], 16) == 0:
            continue
        entries.append(MapEntry(output, name, int(m["addr"], 16), int(m["size"], 16), m["file"].strip()))
    return entries


@dataclass(frozen=True)
class _Section:
    name: str
    address: int
    size: int
    nobits: bool
    load_address: int | None  # where its initial image sits when that differs from where it runs


@dataclass(frozen=True)
class _Symbol:
    name: str
    address: int
    size: int


def _read_elf(elf: Path) -> tuple[list[_Section], list[_Symbol]]:
    with Path(elf).open("rb") as f:
        ef = ELFFile(f)
        segments = [seg for seg in ef.iter_segments() if seg["p_type"] == "PT_LOAD"]
        sections = []
        for s in ef.iter_sections():
            if not s["sh_flags"] & SH_FLAGS.SHF_ALLOC or s["sh_size"] == 0:
                continue
            vma, load = s["sh_addr"], None
            nobits = s["sh_type"] == "SHT_NOBITS"
            if not nobits:
                for seg in segments:
                    if seg["p_vaddr"] <= vma < seg["p_vaddr"] + seg["p_memsz"]:
                        lma = seg["p_paddr"] + (vma - seg["p_vaddr"])
                        load = lma if lma != vma else None
                        break
            sections.append(_Section(s.name, vma, s["sh_size"], nobits, load))
        symtab = ef.get_section_by_name(".symtab")
        symbols = [] if symtab is None else [
            _Symbol(sym.name, sym["st_value"], sym["st_size"]) for sym in symtab.iter_symbols()
            if sym["st_info"]["type"] == "STT_OBJECT" and sym["st_size"] > 0
        ]
    return sections, symbols


def _entry_parts(entry: MapEntry, section: _Section, symbols: Iterable[_Symbol]) -> dict[str, int]:
    """The categories of one input section's bytes."""
    if section.name in _SECTION_CATEGORY:
        return {_SECTION_CATEGORY[section.name]: entry.size}
    group = entry.group
    if group == "model" and not section.nobits:
        # Weights share .rodata.tr_weights with bias/multiplier/shift: the symbols tell them apart.
        weights = sum(s.size for s in symbols if s.name.endswith("_weights")
                      and entry.address <= s.address < entry.address + entry.size)
        return {WEIGHTS: weights, MODEL_TABLES: entry.size - weights}
    if group == "tr_nn" and not section.nobits:
        return {MODEL_TABLES: entry.size}  # the kernels' weight-decode tables
    if (group == "app" and section.name in (".data", ".bss")) or (group == "board" and section.name == ".bss"):
        return {PROTOCOL: entry.size}  # the board's .bss is its UART receive ring (and a few counters)
    return {OTHER: entry.size}


def _add(into: dict[str, int], parts: Mapping[str, int]) -> None:
    for k, v in parts.items():
        into[k] = into.get(k, 0) + v


def split_regions(elf: Path, map_file: Path, board: Board) -> dict[str, dict[str, int]]:
    """Region -> {category: bytes} (every category, zeros included), for every region the image uses."""
    sections, symbols = _read_elf(elf)
    entries = parse_map(Path(map_file).read_text(errors="replace"))
    split: dict[str, dict[str, int]] = {}
    for section in sections:
        inside = [e for e in entries
                  if e.output == section.name and section.address <= e.address < section.address + section.size]
        parts: dict[str, int] = {}
        for e in inside:
            _add(parts, _entry_parts(e, section, symbols))
        padding = section.size - sum(e.size for e in inside)
        if padding < 0:
            raise BuildError(f"firmware.map lists {-padding} bytes more in {section.name} than the ELF's "
                             f"{section.size}-byte section holds: the map does not belong to this ELF")
        _add(parts, {_SECTION_CATEGORY.get(section.name, OTHER): padding})
        places = [section.address] + ([section.load_address] if section.load_address is not None else [])
        for address in places:
            region = board.region_at(address)
            if region is None:
                raise BuildError(f"section {section.name} at 0x{address:08X} lies outside every region of {board.name}")
            _add(split.setdefault(region.name, dict.fromkeys(CATEGORIES, 0)), parts)
    return split


def check_split(split: Mapping[str, Mapping[str, int]], usage: Mapping[str, int]) -> None:
    """Raise BuildError unless every region's parts sum to its used bytes (and no part is negative)."""
    problems = []
    for region in sorted(set(split) | {r for r, used in usage.items() if used}):
        parts = split.get(region, {})
        negative = [k for k, v in parts.items() if v < 0]
        total = sum(parts.values())
        if negative or total != usage.get(region, 0):
            problems.append(f"{region}: parts sum to {total} bytes, the ELF uses {usage.get(region, 0)}"
                            + (f" (negative: {', '.join(negative)})" if negative else ""))
    if problems:
        raise BuildError("the memory split does not add up: " + "; ".join(problems))
