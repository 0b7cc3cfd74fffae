"""Board descriptions: ``boards/<name>/board.toml`` loaded into frozen dataclasses.

The TOML file is the single source of truth for a board: memory regions feed the budget and the
rendered linker script, cflags and console/counter facts feed the firmware build. No per-board Python.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, as a backport (a dependency on 3.10 only)
    import tomli as tomllib

from ..errors import BoardError
from ..resources import resource_dir

RegionKind = Literal["flash", "ram"]


@dataclass(frozen=True)
class MemoryRegion:
    name: str
    origin: int
    length: int
    kind: RegionKind

    @property
    def end(self) -> int:
        return self.origin + self.length

    def contains(self, address: int) -> bool:
        return self.origin <= address < self.end


@dataclass(frozen=True)
class Console:
    peripheral: str
    baud: int
    tx: str | None = None
    rx: str | None = None
    af: int | None = None


@dataclass(frozen=True)
class Counter:
    kind: str  # "dwt" | "systick_icount" | "none"
    code: int  # counter_kind in the HELLO frame: 0 DWT cycles, 1 emulated instructions, 2 none
    scale: int  # factor the firmware applies to raw ticks


@dataclass(frozen=True)
class Clock:
    source: str
    core_hz: int  # nominal core clock (highest the board reaches)
    values: tuple[tuple[str, int | str], ...]  # every key of [clock], for reports


@dataclass(frozen=True)
class Placement:
    code: str
    weights: str
    data: str
    stack: str
    stack_bytes: int
    fast_data: str
    fast_text: str
    arena: tuple[str, ...]  # candidate regions, preferred first


@dataclass(frozen=True)
class Emulator:
    kind: str  # "qemu" | "renode"
    machine: str | None = None
    cpu: str | None = None
    args: tuple[str, ...] = ()
    platform: str | None = None
    uart: str | None = None


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    mcu: str
    core: str
    cflags: tuple[str, ...]
    clock: Clock
    regions: tuple[MemoryRegion, ...]
    console: Console
    counter: Counter
    placement: Placement
    emulator: Emulator | None
    directory: Path
    mirrors: str | None = None  # board whose region sizes this one reproduces
    openocd_configs: tuple[str, ...] = ()  # OpenOCD -f scripts that program this board ([programmer])

    def region(self, name: str) -> MemoryRegion:
        for r in self.regions:
            if r.name == name:
                return r
        known = ", ".join(r.name for r in self.regions)
        raise BoardError(f"board {self.name!r} has no memory region {name!r} (regions: {known})")

    def region_at(self, address: int) -> MemoryRegion | None:
        for r in self.regions:
            if r.contains(address):
                return r
        return None

    @property
    def c_sources(self) -> tuple[Path, ...]:
        return tuple(sorted(self.directory.glob("*.c")))


def boards_dir() -> Path:
    """The boards/ directory (checkout or wheel, see resources.py)."""
    return resource_dir("boards")


def available_boards() -> list[str]:
    root = boards_dir()
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob("*/board.toml"))


def _get(table: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in table:
        raise BoardError(f"{where}: missing key {key!r}")
    value = table[key]
    # bool is an int subclass; a region size of `true` is a typo, not a number.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BoardError(f"{where}: {key!r} must be {kind.__name__}, got {value!r}")
    return value


def _parse_regions(raw: Any, where: str) -> tuple[MemoryRegion, ...]:
    if not isinstance(raw, list) or not raw:
        raise BoardError(f"{where}: needs at least one [[memory]] region")
    regions: list[MemoryRegion] = []
    for i, entry in enumerate(raw):
        w = f"{where} [[memory]] #{i}"
        kind = _get(entry, "kind", str, w)
        if kind not in ("flash", "ram"):
            raise BoardError(f"{w}: kind must be 'flash' or 'ram', got {kind!r}")
        region = MemoryRegion(
            name=_get(entry, "name", str, w),
            origin=_get(entry, "origin", int, w),
            length=_get(entry, "length", int, w),
            kind=kind,
        )
        if region.length <= 0:
            raise BoardError(f"{w}: region {region.name} has non-positive length")
        regions.append(region)
    names = [r.name for r in regions]
    if len(set(names)) != len(names):
        raise BoardError(f"{where}: duplicate region names in {names}")
    ordered = sorted(regions, key=lambda r: r.origin)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a.end > b.origin:
            raise BoardError(f"{where}: regions {a.name} and {b.name} overlap")
    return tuple(regions)


def _programmer(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise BoardError(f"{where}: [programmer] must be a table")
    configs = raw.get("openocd", [])
    if not isinstance(configs, list) or not all(isinstance(c, str) and c for c in configs):
        raise BoardError(f"{where}: [programmer] openocd must be a list of OpenOCD config file names")
    return tuple(configs)


def _parse(data: dict[str, Any], directory: Path) -> Board:
    where = str(directory / "board.toml")
    regions = _parse_regions(data.get("memory"), where)
    clock_t = _get(data, "clock", dict, where)
    core_hz = max(
        (v for k, v in clock_t.items() if k.startswith("core_hz") and isinstance(v, int)), default=0
    )
    if core_hz <= 0:
        raise BoardError(f"{where}: [clock] needs a core_hz* entry")
    console_t = _get(data, "console", dict, where)
    counter_t = _get(data, "counter", dict, where)
    place_t = _get(data, "placement", dict, where)
    emu_t = data.get("emulator")
    emulator = None
    if emu_t is not None:
        emulator = Emulator(
            kind=_get(emu_t, "kind", str, f"{where} [emulator]"),
            machine=emu_t.get("machine"),
            cpu=emu_t.get("cpu"),
            args=tuple(emu_t.get("args", ())),
            platform=emu_t.get("platform"),
            uart=emu_t.get("uart"),
        )
    board = Board(
        name=_get(data, "name", str, where),
        description=data.get("description", ""),
        mcu=data.get("mcu", ""),
        core=_get(data, "core", str, where),
        cflags=tuple(_get(data, "cflags", list, where)),
        clock=Clock(
            source=_get(clock_t, "source", str, f"{where} [clock]"),
            core_hz=core_hz,
            values=tuple(sorted(clock_t.items())),
        ),
        regions=regions,
        console=Console(
            peripheral=_get(console_t, "peripheral", str, f"{where} [console]"),
            baud=_get(console_t, "baud", int, f"{where} [console]"),
            tx=console_t.get("tx"),
            rx=console_t.get("rx"),
            af=console_t.get("af"),
        ),
        counter=Counter(
            kind=_get(counter_t, "kind", str, f"{where} [counter]"),
            code=_get(counter_t, "code", int, f"{where} [counter]"),
            scale=_get(counter_t, "scale", int, f"{where} [counter]"),
        ),
        placement=Placement(
            code=_get(place_t, "code", str, f"{where} [placement]"),
            weights=_get(place_t, "weights", str, f"{where} [placement]"),
            data=_get(place_t, "data", str, f"{where} [placement]"),
            stack=_get(place_t, "stack", str, f"{where} [placement]"),
            stack_bytes=_get(place_t, "stack_bytes", int, f"{where} [placement]"),
            fast_data=_get(place_t, "fast_data", str, f"{where} [placement]"),
            fast_text=_get(place_t, "fast_text", str, f"{where} [placement]"),
            arena=tuple(_get(place_t, "arena", list, f"{where} [placement]")),
        ),
        emulator=emulator,
        directory=directory,
        mirrors=data.get("mirrors"),
        openocd_configs=_programmer(data.get("programmer"), where),
    )
    if board.name != directory.name:
        raise BoardError(f"{where}: name {board.name!r} differs from its directory {directory.name!r}")
    p = board.placement
    for role, name in [("code", p.code), ("weights", p.weights), ("data", p.data), ("stack", p.stack),
                       ("fast_data", p.fast_data), ("fast_text", p.fast_text)] + [
                           ("arena", a) for a in p.arena]:
        region = board.region(name)  # raises for an unknown name
        wanted = "flash" if role in ("code", "weights") else "ram"
        if region.kind != wanted:
            raise BoardError(f"{where}: placement {role} = {name} must be a {wanted} region")
    return board


def load_board(name: str) -> Board:
    """Loads boards/<name>/board.toml; an unknown name lists the boards that exist."""
    directory = boards_dir() / name
    path = directory / "board.toml"
    if not path.is_file():
        known = ", ".join(available_boards()) or "(none found)"
        raise BoardError(f"unknown board {name!r}; available boards: {known}")
    with path.open("rb") as f:
        try:
            data = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise BoardError(f"{path}: {e}") from e
    return _parse(data, directory)
