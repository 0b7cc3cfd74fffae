"""Cross-build firmware with arm-none-eabi-gcc: the evaluation firmware (tr_nn kernels + generated
model + app + board -> ELF/BIN) and the kernel runner.

The linker script is rendered from the board's board.toml (one source of truth for regions and
placement). Everything is built in a temporary directory and moved into ``out_dir`` only on success.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import jinja2
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from .. import processes
from ..errors import BoardError, BuildError, EnvironmentProblem
from .boards import Board
from .codegen.c_names import LIBRARY_FILES, library_file, library_prefix
from .codegen.render import render_app_binding
from .sources import WARNING_FLAGS, app_dir, templates_dir, tr_nn_dir, tr_nn_sources

FIRMWARE_VERSION = "tinyrobust-fw 0.1.0"
COMMON_CFLAGS: tuple[str, ...] = (*WARNING_FLAGS, "-O2", "-g", "-ffunction-sections", "-fdata-sections",
                                   "-fno-common")
GCC = "arm-none-eabi-gcc"
OBJCOPY = "arm-none-eabi-objcopy"
INSTALL_TOOLCHAIN = ("install the Debian packages `gcc-arm-none-eabi libnewlib-arm-none-eabi` (or set "
                     "TINYROBUST_ARM_GCC to the compiler)")
MISSING_TOOLCHAIN = f"arm-none-eabi-gcc not found on PATH; {INSTALL_TOOLCHAIN}"
# The link, apart from the objects, the linker script and the map file. Every build of an image uses
# these (the Python build here, and the exported Makefile and CMakeLists.txt: firmware/project.py).
LINK_FLAGS: tuple[str, ...] = ("-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections")
# Only silences a warning, and binutils < 2.39 does not know it: dropped where the linker refuses it.
OPTIONAL_LINK_FLAGS: tuple[str, ...] = ("-Wl,--no-warn-rwx-segments",)
LIBS: tuple[str, ...] = ("c_nano", "gcc")
_OVERFLOW_RE = re.compile(r"region [`'](?P<region>[^'`]+)' overflowed by (?P<bytes>\d+) bytes?")


class ToolchainNotFoundError(EnvironmentProblem):
    pass


class RegionOverflowError(BuildError):
    def __init__(self, region: str, overflow_bytes: int, board: str, log: str) -> None:
        self.region = region
        self.overflow_bytes = overflow_bytes
        self.board = board
        self.log = log
        super().__init__(
            f"firmware does not fit board {board}: region {region} overflowed by {overflow_bytes} bytes"
        )


@dataclass(frozen=True)
class FirmwareArtifacts:
    elf: Path
    bin: Path
    map: Path
    linker_script: Path
    section_sizes: Mapping[str, int]  # allocated section name -> size in bytes


def find_tool(name: str, env_var: str | None = None) -> str:
    override = os.environ.get(env_var) if env_var else None
    found = override or shutil.which(name)
    if not found:
        raise ToolchainNotFoundError(MISSING_TOOLCHAIN)
    return found


def find_toolchain() -> tuple[str, str]:
    """(arm-none-eabi-gcc, arm-none-eabi-objcopy), or ToolchainNotFoundError naming what to install."""
    gcc = find_tool(GCC, "TINYROBUST_ARM_GCC")
    objcopy = shutil.which(OBJCOPY) or str(Path(gcc).with_name(OBJCOPY))
    if not Path(objcopy).is_file():
        raise ToolchainNotFoundError(f"{OBJCOPY} not found beside {gcc} or on PATH; {INSTALL_TOOLCHAIN}")
    return gcc, objcopy


@dataclass(frozen=True)
class _RamUsage:
    name: str
    expression: str


# Output sections of linker.ld.j2 that occupy RAM, keyed by the placement role that picks their region.
_RAM_SECTIONS: tuple[tuple[str, str], ...] = (
    (".tr_fast_text", "fast_text"),
    (".data", "data"),
    (".tr_fast_data", "fast_data"),
    (".bss", "data"),
    (".tr_arena", "arena"),
    (".stack", "stack"),
)


def render_linker_script(board: Board, arena_region: str) -> str:
    """The board's linker script with the model arena in `arena_region`."""
    arena = board.region(arena_region)
    if arena.kind != "ram":
        raise BoardError(f"arena region {arena_region} of board {board.name} is not RAM")
    p = board.placement
    role_region = {
        "fast_text": p.fast_text, "data": p.data, "fast_data": p.fast_data, "arena": arena_region,
        "stack": p.stack,
    }
    ram_usage = []
    for region in board.regions:
        sections = [sec for sec, role in _RAM_SECTIONS if role_region[role] == region.name]
        if region.kind == "ram" and sections:
            ram_usage.append(_RamUsage(region.name, " + ".join(f"SIZEOF({s})" for s in sections)))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    regions = [
        {"name": r.name, "attrs": "rx" if r.kind == "flash" else "rwx", "origin": f"0x{r.origin:08X}",
         "length": f"0x{r.length:X}"}
        for r in board.regions
    ]
    return env.get_template("linker.ld.j2").render(
        board_name=board.name, regions=regions, flash=p.code, data_region=p.data,
        fast_data_region=p.fast_data, fast_text_region=p.fast_text, arena_region=arena_region,
        stack_region=p.stack, stack_bytes=p.stack_bytes, ram_usage=ram_usage,
    )


def board_defines(board: Board) -> dict[str, str]:
    return {
        "TR_BOARD_NAME": f'"{board.name}"',
        "TR_COUNTER_KIND": str(board.counter.code),
        "TR_COUNTER_SCALE": f"{board.counter.scale}u",
        "TR_CONSOLE_BAUD": f"{board.console.baud}u",
        "TR_CORE_CLOCK_HZ": f"{board.clock.core_hz}u",
        "TR_FIRMWARE_VERSION": f'"{FIRMWARE_VERSION}"',
    }


def startup_sources() -> list[Path]:
    """Start-up code every board's image needs (Reset_Handler, section set-up)."""
    return [app_dir() / "tr_crt0.c"]


@dataclass(frozen=True)
class Recipe:
    """Everything gcc is given for one image but the object and output names: the Python build runs it,
    the exported Makefile and CMakeLists.txt print it (so all three build the same image)."""

    sources: tuple[tuple[str, Path], ...]  # (group, path), in link order
    includes: tuple[Path, ...]
    machine_flags: tuple[str, ...]  # the board's -mcpu/-mfpu..., given to the compiler and the link
    cflags: tuple[str, ...]  # the rest of the compile flags, without -I and -D
    defines: tuple[tuple[str, str], ...]

    def compile_flags(self) -> list[str]:
        return [*self.machine_flags, *self.cflags, *(f"-I{d}" for d in self.includes),
                *(f"-D{k}={v}" for k, v in self.defines)]


def image_recipe(
    sources: Sequence[tuple[str, Path]],
    includes: Sequence[Path],
    board: Board,
    *,
    extra_defines: Mapping[str, str] | None = None,
    extra_cflags: Sequence[str] = (),
) -> Recipe:
    defines = board_defines(board) | dict(extra_defines or {})
    return Recipe(tuple(sources), tuple(includes), tuple(board.cflags), (*COMMON_CFLAGS, *extra_cflags),
                  tuple(sorted(defines.items())))


def evaluation_sources(model_c_dir: Path, board: Board, *, tr_nn: Path | None = None, app: Path | None = None,
                       board_dir: Path | None = None) -> list[tuple[str, Path]]:
    """(group, path) of every source of the evaluation firmware: kernels, model, app, board. The
    kernel, app and board folders default to the installation's; an export passes its own copies."""
    groups: list[tuple[str, Path]] = []
    groups += [("tr_nn", p) for p in (sorted(tr_nn.glob("*.c")) if tr_nn else tr_nn_sources())]
    prefix = library_prefix(model_c_dir)
    model = [model_c_dir / library_file(name, prefix) for name in LIBRARY_FILES if name.endswith(".c")]
    for m in model:
        if not m.is_file():
            raise BuildError(f"model source {m} is missing (expected {prefix}_model.c and {prefix}_model_weights.c)")
    groups += [("model", m) for m in model]
    groups += [("app", p) for p in sorted((app or app_dir()).glob("*.c"))]
    groups += [("board", p) for p in (sorted(board_dir.glob("*.c")) if board_dir else board.c_sources)]
    return groups


def _run(cmd: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return processes.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except (FileNotFoundError, PermissionError) as exc:  # e.g. objcopy missing beside a found gcc
        raise ToolchainNotFoundError(f"cannot run {cmd[0]} ({exc.strerror}); {INSTALL_TOOLCHAIN}") from exc


def build_firmware(
    model_c_dir: Path,
    board: Board,
    out_dir: Path,
    *,
    arena_region: str,
    extra_defines: Mapping[str, str] | None = None,
    extra_cflags: Sequence[str] = (),
) -> FirmwareArtifacts:
    """The evaluation firmware for the generated model in `model_c_dir` (see build_image)."""
    model_c_dir = Path(model_c_dir).resolve()
    sources = evaluation_sources(model_c_dir, board)
    includes = [model_c_dir, app_dir(), tr_nn_dir()]
    Path(out_dir).resolve().parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tr_bind_", dir=Path(out_dir).resolve().parent) as bind:
        # A library exported with --name: the app reaches it through a generated tr_model.h.
        if render_app_binding(library_prefix(model_c_dir), Path(bind)):
            includes.insert(0, Path(bind))
        return build_image(sources, includes, board, out_dir, arena_region=arena_region,
                           extra_defines=extra_defines, extra_cflags=extra_cflags)


def build_image(
    sources: Sequence[tuple[str, Path]],
    includes: Sequence[Path],
    board: Board,
    out_dir: Path,
    *,
    arena_region: str,
    extra_defines: Mapping[str, str] | None = None,
    extra_cflags: Sequence[str] = (),
) -> FirmwareArtifacts:
    """Compiles `sources` ((group, path) pairs) for `board` and links firmware.elf/.bin/.map (+ the
    rendered linker.ld) into out_dir (see build_recipe)."""
    recipe = image_recipe(sources, [*includes, board.directory], board, extra_defines=extra_defines,
                          extra_cflags=extra_cflags)
    return build_recipe(recipe, board, out_dir, arena_region=arena_region)


def build_recipe(recipe: Recipe, board: Board, out_dir: Path, *, arena_region: str) -> FirmwareArtifacts:
    """Runs `recipe` and links firmware.elf/.bin/.map (+ the rendered linker.ld) into out_dir.

    Raises RegionOverflowError naming the region and the bytes over when the image does not fit,
    BuildError with the compiler output on any other failure, ToolchainNotFoundError without gcc.
    """
    gcc, objcopy = find_toolchain()
    out_dir = Path(out_dir).resolve()
    cflags = recipe.compile_flags()
    sources = recipe.sources
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tr_build_", dir=out_dir.parent) as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "linker.ld").write_text(render_linker_script(board, arena_region))

        # Paths relative to the temporary directory (and its name mapped away in debug info) keep the
        # ELF and the map file byte-identical between builds of the same sources.
        reproducible = [f"-ffile-prefix-map={tmp}=."]

        def compile_one(item: tuple[int, tuple[str, Path]]) -> tuple[str, subprocess.CompletedProcess[str]]:
            index, (group, src) = item
            obj = f"obj/{index:03d}_{group}_{src.stem}.o"
            return obj, _run([gcc, *cflags, *reproducible, "-c", str(src), "-o", obj], tmp)

        (tmp / "obj").mkdir()
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            results = list(pool.map(compile_one, enumerate(sources)))
        failures = [r.stderr for _, r in results if r.returncode != 0]
        if failures:
            raise BuildError("firmware compilation failed:\n" + "\n".join(failures))
        elf = tmp / "firmware.elf"
        link_cmd = [gcc, *recipe.machine_flags, "-T", "linker.ld", *LINK_FLAGS, "-Wl,-Map=firmware.map",
                    *OPTIONAL_LINK_FLAGS, *(o for o, _ in results),
                    "-Wl,--start-group", *(f"-l{lib}" for lib in LIBS), "-Wl,--end-group", "-o", "firmware.elf"]
        link = _run(link_cmd, tmp)
        if link.returncode != 0 and "no-warn-rwx-segments" in link.stderr:
            link = _run([a for a in link_cmd if a not in OPTIONAL_LINK_FLAGS], tmp)
        if link.returncode != 0:
            log = link.stdout + link.stderr
            overflows = [(m["region"], int(m["bytes"])) for m in _OVERFLOW_RE.finditer(log)]
            if overflows:
                region, over = max(overflows, key=lambda o: o[1])
                raise RegionOverflowError(region, over, board.name, log)
            raise BuildError("firmware link failed:\n" + log)
        conv = _run([objcopy, "-O", "binary", str(elf), str(tmp / "firmware.bin")], tmp)
        if conv.returncode != 0:
            raise BuildError("objcopy failed:\n" + conv.stderr)
        sizes = section_sizes(elf)
        out_dir.mkdir(parents=True, exist_ok=True)
        names = ("firmware.elf", "firmware.bin", "firmware.map", "linker.ld")
        for name in names:
            os.replace(tmp / name, out_dir / name)
    return FirmwareArtifacts(
        elf=out_dir / "firmware.elf", bin=out_dir / "firmware.bin", map=out_dir / "firmware.map",
        linker_script=out_dir / "linker.ld", section_sizes=sizes,
    )


def section_sizes(elf: Path) -> dict[str, int]:
    """Size of every allocated (SHF_ALLOC) section with a nonzero size."""
    with Path(elf).open("rb") as f:
        ef = ELFFile(f)
        return {
            s.name: s["sh_size"] for s in ef.iter_sections()
            if s["sh_flags"] & SH_FLAGS.SHF_ALLOC and s["sh_size"] > 0
        }


def read_section_usage(elf: Path, board: Board) -> dict[str, int]:
    """Bytes used per board region: every allocated section at its run address, plus the flash
    load image of initialised RAM sections (.data, .tr_fast_data, .tr_fast_text)."""
    usage = {r.name: 0 for r in board.regions}
    with Path(elf).open("rb") as f:
        ef = ELFFile(f)
        segments = [seg for seg in ef.iter_segments() if seg["p_type"] == "PT_LOAD"]
        for s in ef.iter_sections():
            size = s["sh_size"]
            if not s["sh_flags"] & SH_FLAGS.SHF_ALLOC or size == 0:
                continue
            vma = s["sh_addr"]
            run = board.region_at(vma)
            if run is None:
                raise BuildError(f"section {s.name} at 0x{vma:08X} lies outside every region of {board.name}")
            usage[run.name] += size
            if s["sh_type"] == "SHT_NOBITS":
                continue
            for seg in segments:
                if seg["p_vaddr"] <= vma < seg["p_vaddr"] + seg["p_memsz"]:
                    lma = seg["p_paddr"] + (vma - seg["p_vaddr"])
                    load = board.region_at(lma)
                    if load is not None and load.name != run.name:
                        usage[load.name] += size
                    break
    return usage
