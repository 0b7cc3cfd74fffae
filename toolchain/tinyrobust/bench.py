"""`tinyrobust bench`: emulated instructions per MAC of the tr_nn kernels and of a paper-size model.

Kernels: the bench firmware (firmware_templates/bench/) is cross-built for the board ``qemu_mps2_an500``
twice, DSP path and plain C (-DTR_NN_FORCE_REFERENCE), and run under ``qemu-system-arm -icount
shift=0`` where the board counter (SysTick × 40) counts executed instructions, deterministically.
Cases (deterministic pseudo-random int8 inputs, ternary weights packed t2 and trit5) reach the
firmware over semihosting; every output is checked against the numpy reference (tinyrobust.kernels)
before its count is used, so a fast but wrong kernel fails the bench instead of winning it.

Model: bench_models.paper_model (~1 M weights, random, fixed seed) → convert (calibration: random
inputs) → export_program → build_firmware → QemuTarget.profile: per-layer counts, checked output.

Counts are *emulated instructions* (QEMU executes one per virtual ns), never cycles.
"""

from __future__ import annotations

import json
import math
import struct
import subprocess
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import kernels, packing
from .boards import Board, load_board
from .build import (
    COMMON_CFLAGS,
    board_defines,
    find_tool,
    firmware_templates_dir,
    render_linker_script,
    startup_sources,
)

BENCH_BOARD = "qemu_mps2_an500"
BENCH_ARENA_REGION = "AXI_SRAM"
QEMU_BINARY = "qemu-system-arm"
REFERENCE_FLAG = "-DTR_NN_FORCE_REFERENCE"
SEED = 20240607

# CMSIS-NN s8 (gcc 12.2 -O3, cortex-m7, QEMU mps2-an500 -icount shift=0), emulated instructions per
# MAC on the same four shapes: the figures the goals were set against (issue 7).
CMSIS_NN_S8 = {"conv3x3": 1.76, "conv1x1": 2.03, "depthwise3x3": 8.77, "fc": 1.90}
GOALS_T2 = {"conv3x3": 1.0, "conv1x1": 1.0, "depthwise3x3": 3.0, "fc": 1.0}
TRIT5_GOAL_RATIO = 1.5  # trit5 within 1.5x of t2

# op codes of firmware_templates/bench/tr_bench.c
OPS = {
    ("conv", packing.T2): 1, ("conv", packing.TRIT5): 2, ("conv", packing.S8): 3,
    ("dw", packing.T2): 4, ("dw", packing.TRIT5): 5, ("dw", packing.S8): 6,
    ("fc", packing.T2): 7, ("fc", packing.TRIT5): 8, ("fc", packing.S8): 9,
}


class BenchError(RuntimeError):
    """The bench could not build, run, or a kernel output differed from the numpy reference."""


@dataclass(frozen=True)
class KernelShape:
    """One benchmarked layer: 'same' padding, stride 1 (fully connected: h = w = k = 1)."""

    name: str
    kind: str  # "conv", "dw" or "fc"
    h: int
    w: int
    c_in: int
    c_out: int
    k: int

    @property
    def macs(self) -> int:
        if self.kind == "dw":
            return self.h * self.w * self.c_out * self.k * self.k
        return self.h * self.w * self.c_in * self.c_out * self.k * self.k

    def describe(self) -> str:
        if self.kind == "fc":
            return f"fc {self.c_in}->{self.c_out}"
        what = "depthwise " if self.kind == "dw" else "conv "
        return f"{what}{self.k}x{self.k} {self.h}x{self.w}x{self.c_in}->{self.c_out}"


SHAPES = (
    KernelShape("conv3x3", "conv", 16, 16, 64, 64, 3),
    KernelShape("conv1x1", "conv", 16, 16, 64, 128, 1),
    KernelShape("depthwise3x3", "dw", 32, 32, 32, 32, 3),
    KernelShape("fc", "fc", 1, 1, 2048, 448, 1),
)
# --quick: same kernels and channel counts, smaller spatial sizes
QUICK_SHAPES = (
    KernelShape("conv3x3", "conv", 8, 8, 64, 64, 3),
    KernelShape("conv1x1", "conv", 8, 8, 64, 128, 1),
    KernelShape("depthwise3x3", "dw", 12, 12, 32, 32, 3),
    KernelShape("fc", "fc", 1, 1, 2048, 448, 1),
)


@dataclass(frozen=True)
class BenchCase:
    op: int
    params: tuple[int, ...]
    blobs: tuple[bytes, ...]
    expected: bytes  # numpy reference output
    macs: int
    label: str


@dataclass(frozen=True)
class CaseResult:
    status: int
    counts: tuple[int, ...]  # emulated instructions per call, one per repeat
    output: bytes


def make_case(shape: KernelShape, fmt: str, seed: int = SEED) -> BenchCase:
    """Deterministic case for `shape` with weights packed as `fmt` and its numpy reference output.

    The same seed gives the same input, ternary weights (a third each of -1, 0, +1), bias and
    requantisation whatever the format, so t2 / trit5 / plain C run the very same layer."""
    rng = np.random.default_rng([seed, [s.name for s in SHAPES].index(shape.name)])
    bias_shift = 6  # as the lowering emits for ternary layers: the bias in 64x finer units
    x = rng.integers(-128, 128, size=(shape.h, shape.w, shape.c_in)).astype(np.int8)
    taps = shape.k * shape.k
    k = taps if shape.kind == "dw" else taps * shape.c_in
    wshape = (shape.k, shape.k, shape.c_out) if shape.kind == "dw" else (shape.c_out, k)
    wt = rng.integers(-1, 2, size=wshape).astype(np.int8)
    bias = rng.integers(-(k * 64) << bias_shift, (k * 64) << bias_shift, size=shape.c_out).astype(np.int32)
    mult = rng.integers(1 << 30, (1 << 31) - 1, size=shape.c_out, endpoint=True).astype(np.int32)
    # requantise a typical |acc| ~ sqrt(2k/3)·74·2^bias_shift to ~2^6: outputs spread over the int8 range
    base = -int(math.ceil(math.log2(math.sqrt(2 * k / 3) * 74))) + 6 - bias_shift
    shift = np.full(shape.c_out, base, np.int32)
    pad = shape.k // 2
    pad_value, out_off, act_min, act_max = -3, 5, -128, 127
    common = dict(output_offset=out_off, act_min=act_min, act_max=act_max, bias_shift=bias_shift)
    if shape.kind == "fc":
        ref = kernels.fully_connected(x.reshape(-1), wt, bias, mult, shift, **common)
        params: tuple[int, ...] = (shape.c_in, shape.c_out, out_off, act_min, act_max, bias_shift)
        packed = packing.pack_rows(wt, fmt)
    elif shape.kind == "conv":
        w4 = wt.reshape(shape.c_out, shape.k, shape.k, shape.c_in)
        ref = kernels.convolve(x, w4, bias, mult, shift, stride=(1, 1), padding=(pad, pad),
                               pad_value=pad_value, out_hw=(shape.h, shape.w), **common)
        params = (shape.h, shape.w, shape.c_in, shape.c_out, shape.k, shape.k, shape.h, shape.w, 1, 1, pad,
                  pad, pad_value, out_off, act_min, act_max, bias_shift)
        packed = packing.pack_rows(wt, fmt)
    else:
        ref = kernels.depthwise_conv(x, wt, bias, mult, shift, ch_mult=1, stride=(1, 1), padding=(pad, pad),
                                     pad_value=pad_value, out_hw=(shape.h, shape.w), **common)
        params = (shape.h, shape.w, shape.c_in, 1, shape.k, shape.k, shape.h, shape.w, 1, 1, pad, pad,
                  pad_value, out_off, act_min, act_max, bias_shift)
        packed = packing.pack_rows(wt.reshape(taps, shape.c_out), fmt)
    blobs = tuple(np.ascontiguousarray(a).tobytes() for a in (x, packed, bias, mult, shift))
    return BenchCase(OPS[(shape.kind, fmt)], params, blobs, ref.tobytes(), shape.macs, make_label(shape, fmt))


def encode_cases(cases: Sequence[BenchCase], repeat: int = 1) -> bytes:
    """The case stream of firmware_templates/bench/tr_bench.h."""
    out = bytearray()
    for case in cases:
        n = len(case.params)
        out += struct.pack(f"<ii{n}ii", case.op, n, *case.params, len(case.blobs))
        for blob in case.blobs:
            out += struct.pack("<i", len(blob)) + blob + bytes(-len(blob) % 4)
        out += struct.pack("<ii", len(case.expected), repeat)
    return bytes(out + struct.pack("<i", 0))


def decode_results(data: bytes, cases: Sequence[BenchCase]) -> list[CaseResult]:
    results, pos = [], 0
    for case in cases:
        if pos + 8 > len(data):
            raise BenchError(f"bench output truncated at case {len(results)} ({case.label})")
        status, repeat = struct.unpack_from("<ii", data, pos)
        pos += 8
        counts = struct.unpack_from(f"<{repeat}Q", data, pos)
        pos += 8 * repeat
        padded = len(case.expected) + (-len(case.expected) % 4)
        results.append(CaseResult(status, tuple(counts), data[pos:pos + len(case.expected)]))
        pos += padded
    if pos != len(data):
        raise BenchError(f"bench output has {len(data) - pos} unexpected trailing bytes")
    return results


def bench_sources_dir() -> Path:
    return firmware_templates_dir() / "bench"


def build_bench_firmware(out_dir: Path, *, reference: bool, board: Board | None = None) -> Path:
    """Cross-builds the bench firmware (the product's compiler flags and board files); returns the ELF."""
    board = board or load_board(BENCH_BOARD)
    gcc = find_tool("arm-none-eabi-gcc", "TINYROBUST_ARM_GCC")
    templates = firmware_templates_dir()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = "bench_ref" if reference else "bench_dsp"
    linker = out_dir / f"{name}.ld"
    linker.write_text(render_linker_script(board, BENCH_ARENA_REGION))
    defines = board_defines(board)
    sources = [*sorted((templates / "tr_nn").glob("*.c")), *sorted(bench_sources_dir().glob("*.c")),
               *startup_sources(), *board.c_sources]
    cmd = [gcc, *board.cflags, *COMMON_CFLAGS, *(f"-D{k}={v}" for k, v in sorted(defines.items())),
           *([REFERENCE_FLAG] if reference else []),
           *(f"-I{d}" for d in (templates / "tr_nn", templates / "app", bench_sources_dir(), board.directory)),
           *map(str, sources), "-T", str(linker), "-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections",
           "-Wl,--no-warn-rwx-segments", "-Wl,--start-group", "-lc_nano", "-lgcc", "-Wl,--end-group",
           "-o", str(out_dir / f"{name}.elf")]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BenchError(f"bench firmware build failed ({name}):\n{proc.stderr[-4000:]}")
    return out_dir / f"{name}.elf"


def run_bench_firmware(elf: Path, cases: Sequence[BenchCase], work_dir: Path, *, repeat: int = 1,
                       timeout_s: float = 300.0) -> list[CaseResult]:
    """Runs `cases` on the bench firmware under QEMU -icount shift=0; checks every output bit for bit."""
    board = load_board(BENCH_BOARD)
    emu = board.emulator
    if emu is None:
        raise BenchError(f"board {BENCH_BOARD} has no emulator section")
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "bench_cases.bin").write_bytes(encode_cases(cases, repeat))
    (work_dir / "bench_results.bin").unlink(missing_ok=True)
    cmd = [QEMU_BINARY, "-M", emu.machine, "-cpu", emu.cpu, "-nographic", "-monitor", "none",
           "-icount", "shift=0", "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)]
    try:
        proc = subprocess.run(cmd, cwd=work_dir, capture_output=True, text=True, timeout=timeout_s,
                              check=False, stdin=subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise BenchError(f"{QEMU_BINARY} not found; install the Debian package qemu-system-arm") from exc
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"bench firmware {elf.name} did not finish in {timeout_s:.0f} s") from exc
    if proc.returncode != 0:
        raise BenchError(f"bench firmware {elf.name} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    results = decode_results((work_dir / "bench_results.bin").read_bytes(), cases)
    for case, res in zip(cases, results, strict=True):
        if res.status != 0:
            raise BenchError(f"{elf.name}: {case.label}: kernel returned status {res.status}")
        if res.output != case.expected:
            got, want = np.frombuffer(res.output, np.int8), np.frombuffer(case.expected, np.int8)
            bad = np.flatnonzero(got != want)
            raise BenchError(f"{elf.name}: {case.label}: {bad.size}/{want.size} output bytes differ from the "
                             f"numpy reference (first at {bad[0]})")
    return results


# ---------------------------------------------------------------- kernels


def bench_kernels(work_dir: Path, *, quick: bool = False, repeat: int = 1) -> dict[str, Any]:
    """{"kernels": {name: {"t2", "trit5", "plain_c": insn/MAC, "instructions", "macs", ...}}, ...}."""
    shapes = QUICK_SHAPES if quick else SHAPES
    dsp_cases = [make_case(s, fmt) for s in shapes for fmt in (packing.T2, packing.TRIT5)]
    ref_cases = [make_case(s, packing.T2) for s in shapes]
    with ThreadPoolExecutor(max_workers=2) as pool:
        elfs = list(pool.map(lambda ref: build_bench_firmware(work_dir / "fw", reference=ref), (False, True)))
        runs = list(pool.map(lambda job: run_bench_firmware(job[0], job[1], work_dir / job[2], repeat=repeat),
                             ((elfs[0], dsp_cases, "run_dsp"), (elfs[1], ref_cases, "run_ref"))))
    dsp = {c.label: r.counts[0] for c, r in zip(dsp_cases, runs[0], strict=True)}
    plain = {c.label: r.counts[0] for c, r in zip(ref_cases, runs[1], strict=True)}
    out: dict[str, Any] = {}
    for s in shapes:
        counts = {"t2": dsp[make_label(s, packing.T2)], "trit5": dsp[make_label(s, packing.TRIT5)],
                  "plain_c": plain[make_label(s, packing.T2)]}
        out[s.name] = {key: n / s.macs for key, n in counts.items()} | {
            "goal_t2": GOALS_T2[s.name], "cmsis_nn_s8": CMSIS_NN_S8[s.name], "instructions": counts,
            "macs": s.macs, "shape": s.describe(),
        }
    # The board counter ticks every 40 instructions and a measurement starts a few instructions after a
    # tick edge, so a call's count can differ by one tick between two calls in the same run; a whole
    # run is deterministic under -icount (same firmware, same cases: the same counts).
    return {"kernels": out, "counter_resolution_instructions": 40}


def make_label(shape: KernelShape, fmt: str) -> str:
    return f"{shape.name} {fmt} ({shape.describe()})"


# ---------------------------------------------------------------- the paper-size model


def bench_model(work_dir: Path, *, packings: Sequence[str] = ("t2", "trit5")) -> dict[str, Any]:
    """Per-layer and whole-model instructions per MAC, and flash bytes per weight, for each packing."""
    from .bench_models import PAPER_INPUT_SHAPE, save_paper_model
    from .build import build_firmware
    from .dataset import Dataset
    from .export import export_program
    from .lower import LowerOptions, lower
    from .pipeline import convert
    from .reference import Reference
    from .targets.qemu import QemuTarget

    h5 = save_paper_model(work_dir / "paper_model.h5")
    rng = np.random.default_rng(SEED)
    calibration = Dataset(rng.random((8, *PAPER_INPUT_SHAPE)).astype(np.float32), None)
    deployed = convert(h5, calibration=calibration, packing=packings[0])
    sample = deployed.quantize_input(rng.random((1, *PAPER_INPUT_SHAPE)).astype(np.float32))
    board = load_board(BENCH_BOARD)
    programs = {p: deployed.program if p == packings[0] else lower(deployed.graph, LowerOptions(packing=p))
                for p in packings}

    def build_one(pk: str) -> tuple[Any, Path]:
        exported = export_program(programs[pk], BENCH_BOARD, work_dir / f"export_{pk}", build=False)
        region = json.loads((exported.out_dir / "manifest.json").read_text())["arena_region"]
        fw = build_firmware(exported.out_dir / "model", board, exported.out_dir / "firmware",
                            arena_region=region)
        return exported.program, fw.elf

    with ThreadPoolExecutor(max_workers=2) as pool:
        built = dict(zip(packings, pool.map(build_one, packings), strict=True))
    result: dict[str, Any] = {}
    for pk, (program, elf) in built.items():
        target = QemuTarget(elf, icount_shift=0, parallel=1)
        try:
            counts = target.profile(sample[0])
            outputs, _ = target.infer_batch(sample)
        finally:
            target.close()
        want = Reference(program).run(sample)
        if not np.array_equal(outputs, want):
            raise BenchError(f"paper model ({pk}): QEMU output differs from the reference")
        layers = []
        for op, count in zip(program.ops, counts, strict=True):
            layers.append({"layer": op.name, "kernel": op.kernel, "macs": op.macs, "instructions": int(count),
                           "insn_per_mac": count / op.macs if op.macs else None})
        weights = sum(op.num_params for op in program.ops)
        packed = sum(int(op.arrays["weights"].nbytes) for op in program.ops if "weights" in op.arrays)
        tables = sum(int(a.nbytes) for op in program.ops for a in op.arrays.values())
        macs = sum(op.macs for op in program.ops)
        result[pk] = {
            "layers": layers, "weights": weights, "macs": macs, "instructions": int(sum(counts)),
            "insn_per_mac": sum(counts) / macs,
            "packed_weight_bytes": packed, "flash_table_bytes": tables,
            "flash_bytes_per_weight": packed / weights, "flash_table_bytes_per_weight": tables / weights,
        }
    first = result[packings[0]]
    return {"insn_per_mac": first["insn_per_mac"], "flash_bytes_per_weight": first["flash_bytes_per_weight"],
            "packing": packings[0], "packings": result}


# ---------------------------------------------------------------- the command


def run_benchmarks(work_dir: Path, *, quick: bool = False, with_model: bool = True) -> dict[str, Any]:
    """The whole bench; the result holds counts only (no wall-clock times), so two runs give
    byte-identical JSON."""
    report: dict[str, Any] = {"unit": "emulated instructions per MAC (QEMU mps2-an500, -icount shift=0)",
                              "board": BENCH_BOARD, "quick": quick,
                              "goals": {"t2": GOALS_T2, "trit5_over_t2": TRIT5_GOAL_RATIO}}
    report |= bench_kernels(work_dir / "kernels", quick=quick)
    if with_model:
        report["model"] = bench_model(work_dir / "model")
    return report


def format_table(report: dict[str, Any]) -> str:
    lines = [f"tr_nn kernels: {report['unit']}",
             f"{'kernel':<14}{'shape':<32}{'goal':>6}{'t2':>7}{'trit5':>7}{'t5/t2':>7}{'plain C':>9}"
             f"{'CMSIS s8':>10}"]
    for name, k in report["kernels"].items():
        lines.append(f"{name:<14}{k['shape']:<32}{k['goal_t2']:>6.2f}{k['t2']:>7.2f}{k['trit5']:>7.2f}"
                     f"{k['trit5'] / k['t2']:>7.2f}{k['plain_c']:>9.2f}{k['cmsis_nn_s8']:>10.2f}")
    model = report.get("model")
    if model:
        for pk, m in model["packings"].items():
            lines.append("")
            lines.append(f"paper model ({pk}): {m['weights']:,} weights, {m['macs']:,} MACs, "
                         f"{m['instructions']:,} instructions = {m['insn_per_mac']:.2f} per MAC; "
                         f"packed weights {m['flash_bytes_per_weight']:.3f} B/weight, all flash tables "
                         f"{m['flash_table_bytes_per_weight']:.3f} B/weight")
            for layer in m["layers"]:
                ipm = "" if layer["insn_per_mac"] is None else f"{layer['insn_per_mac']:8.2f}"
                lines.append(f"  {layer['layer']:<16}{layer['kernel']:<28}{layer['macs']:>10,}"
                             f"{layer['instructions']:>12,}{ipm}")
    return "\n".join(lines)


def run_bench(args: Any) -> int:
    """CLI handler: `tinyrobust bench [--json F] [--quick] [--no-model] [--work-dir D]`."""
    work = getattr(args, "work_dir", None)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tinyrobust_bench_") as tmp:
        work_dir = Path(work) if work else Path(tmp)
        with_model = not getattr(args, "no_model", False)
        report = run_benchmarks(work_dir, quick=bool(args.quick), with_model=with_model)
    print(format_table(report))
    print(f"(bench took {time.monotonic() - t0:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    return 0
