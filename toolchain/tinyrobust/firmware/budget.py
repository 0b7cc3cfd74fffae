"""Per-region memory budget: an estimate from the Program before building, and the exact
figures from the linked ELF after. Over budget names the region, the deficit and what would fit."""

from __future__ import annotations

from dataclasses import dataclass

from ..converter import ops, packing
from ..converter.program import Program
from ..errors import BudgetError
from .boards import Board, MemoryRegion

# Code size is only estimated before linking (the ELF gives the truth afterwards): the firmware
# shell (startup, UART, protocol) plus each distinct kernel plus a straight-line call per op.
CODE_BASE_BYTES = 12 * 1024
CODE_PER_KERNEL_BYTES = 2 * 1024
CODE_PER_OP_BYTES = 160
# Measured: the linked paper-size firmware holds ~16 KB of .data/.bss beside its arena and stack
# (the protocol's 4 KB frame buffer included); the input staging buffer and the output buffer
# (firmware/app/tr_app.c) grow with the model and are counted separately.
FIRMWARE_DATA_BYTES = 16 * 1024


# The kernels' weight-decode tables live in .tr_fast_data (DTCM on the NUCLEO), linked only when a
# layer of that format is present: tr_t2_pair_lut[256][2] and tr_t5_lut[2][243][4] of uint32.
DECODE_TABLE_BYTES = {packing.T2: 256 * 2 * 4, packing.TRIT5: 2 * 243 * 4 * 4}


@dataclass(frozen=True)
class RegionUse:
    region: str
    size: int
    used: int
    contents: tuple[tuple[str, int], ...]

    @property
    def free(self) -> int:
        return self.size - self.used

    @property
    def fits(self) -> bool:
        return self.used <= self.size


@dataclass(frozen=True)
class Budget:
    board: str
    arena_region: str | None
    regions: tuple[RegionUse, ...]
    source: str  # "estimate" or "linked ELF"

    def region(self, name: str) -> RegionUse:
        return next(r for r in self.regions if r.region == name)

    def as_dict(self) -> dict:
        # The orders are lists too: report.json sorts its keys, and the reports show the board's order.
        return {
            "source": self.source,
            "arena_region": self.arena_region,
            "region_order": [r.region for r in self.regions],
            "regions": {
                r.region: {"size": r.size, "used": r.used, "free": r.free, "fits": r.fits,
                           "contents": dict(r.contents), "content_order": [k for k, _ in r.contents]}
                for r in self.regions
            },
        }


def flash_contents(program: Program) -> dict[str, int]:
    weights = sum(op.arrays["weights"].nbytes for op in program.ops if "weights" in op.arrays)
    tables = sum(a.nbytes for op in program.ops for k, a in op.arrays.items() if k != "weights")
    kernels = {op.kernel for op in program.ops}
    code = CODE_BASE_BYTES + CODE_PER_KERNEL_BYTES * len(kernels) + CODE_PER_OP_BYTES * len(program.ops)
    return {"packed weights": weights, "bias/requant/LUT tables": tables, "code (estimate)": code}


def fast_data_bytes(program: Program) -> int:
    """Sigmoid/tanh tables plus the decode tables of the weight formats in use."""
    luts = sum(op.arrays["table"].nbytes for op in program.ops if "table" in op.arrays)
    formats = {op.weight_format for op in program.ops}
    return luts + sum(size for fmt, size in DECODE_TABLE_BYTES.items() if fmt in formats)


def _region_map(board: Board) -> dict[str, MemoryRegion]:
    return {r.name: r for r in board.regions}


def estimate(program: Program, board: Board) -> Budget:
    """Choose the arena region (first preferred candidate where it fits) and estimate every region."""
    assert program.placement is not None, "plan the Program first"
    regions = _region_map(board)
    pl = board.placement
    contents: dict[str, dict[str, int]] = {name: {} for name in regions}
    contents[pl.weights].update(flash_contents(program))
    contents[pl.stack]["stack"] = pl.stack_bytes
    contents[pl.data]["firmware data/bss"] = contents[pl.data].get("firmware data/bss", 0) + FIRMWARE_DATA_BYTES
    io_bytes = program.input_bytes + program.output_bytes
    contents[pl.data]["input staging and output buffers"] = io_bytes
    if fast_data_bytes(program):
        contents[pl.fast_data]["fast tables (.tr_fast_data)"] = fast_data_bytes(program)
    arena = program.placement.arena_bytes
    chosen = None
    for candidate in pl.arena:
        used = sum(contents[candidate].values())
        if used + arena <= regions[candidate].length:
            chosen = candidate
            break
    if chosen is not None:
        contents[chosen]["arena"] = arena
    uses = tuple(
        RegionUse(name, regions[name].length, sum(c.values()), tuple(c.items()))
        for name, c in contents.items()
        if c or name in pl.arena
    )
    return Budget(board.name, chosen, uses, "estimate")


def _trit5_flash(program: Program) -> int:
    """Packed bytes if every ternary layer used trit5 instead of 2-bit rows."""
    total = 0
    for op in program.ops:
        if "weights" not in op.arrays:
            continue
        if op.weight_format == packing.T2:
            rows, length = ops.weight_rows(op) or (0, 0)
            total += rows * packing.row_bytes(length, packing.TRIT5)
        else:
            total += op.arrays["weights"].nbytes
    return total


def check(program: Program, board: Board, budget: Budget) -> None:
    """Raise BudgetError naming every problem; silent when the model fits."""
    problems = []
    regions = _region_map(board)
    if budget.arena_region is None:
        arena = program.placement.arena_bytes if program.placement else 0
        best = max((regions[c] for c in board.placement.arena), key=lambda r: r.length)
        already = budget.region(best.name).used
        problems.append(
            f"RAM region {best.name} (the largest arena candidate, {best.length} bytes): the activation arena "
            f"needs {arena} bytes beside {already} bytes already there, over by {arena + already - best.length} "
            "bytes; no RAM region of this board holds it: shrink the largest activation tensors"
        )
    for use in budget.regions:
        if not use.fits:
            msg = f"{use.region}: needs {use.used} bytes, has {use.size} (over by {use.used - use.size} bytes)"
            if regions[use.region].kind == "flash" and program.packing == packing.T2:
                packed = sum(op.arrays["weights"].nbytes for op in program.ops if "weights" in op.arrays)
                saved = packed - _trit5_flash(program)
                verdict = "would fit" if use.used - saved <= use.size else "would still not fit"
                msg += f"; trit5 packing saves {saved} bytes and {verdict} (--packing trit5)"
            problems.append(msg)
    if problems:
        raise BudgetError(f"model does not fit board {board.name}: " + "; ".join(problems))


def from_elf_usage(usage: dict[str, int], board: Board, arena_region: str,
                   split: dict[str, dict[str, int]] | None = None) -> Budget:
    """The linked truth: bytes per region from the ELF's allocated sections, with what fills each
    region (firmware/memory_split.py) when `split` is given."""
    def contents(name: str) -> tuple[tuple[str, int], ...]:
        if split is not None and name in split:
            return tuple(split[name].items())
        return (("linked sections", int(usage.get(name, 0))),)

    return Budget(
        board.name,
        arena_region,
        tuple(RegionUse(r.name, r.length, int(usage.get(r.name, 0)), contents(r.name))
              for r in board.regions if usage.get(r.name, 0) or r.name == arena_region),
        "linked ELF",
    )
