"""`tinyrobust bench`: emulated instructions per MAC of the tr_nn kernels and of a paper-size model.

Kernels: the kernel runner (firmware/runner/) is cross-built for the board ``qemu_mps2_an500``
twice, DSP path and plain C, and run under QEMU with ``-icount shift=0``, where the board counter
(SysTick × 40) counts executed instructions, deterministically. Every case (deterministic
pseudo-random int8 inputs, ternary weights packed t2 and trit5) is checked against its numpy
reference before its count is used, so a fast but wrong kernel fails the bench instead of winning it.

Models end to end: MLPerf Tiny's ResNet-8, DS-CNN and MobileNetV1 (visual wake words, 96×96×3), QKeras's
MNIST CNN (all ternary) and the paper-size model (~1 M weights), random weights from a fixed seed →
convert (calibration: random inputs) → export_program → build_firmware → QemuTarget.profile: per-layer
counts, output checked against the reference. The paper model is also built in every packing.

Counts are *emulated instructions* (QEMU executes one per virtual ns), never cycles.

Reference throughput: the numpy reference answering random queries on the same model, batched (one
vectorised pass per op) and sample by sample (batches of one), outputs checked identical. The only
wall-clock figures of the bench, kept under model.reference_throughput.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import lazy
from ..converter import ops, packing
from ..converter.lower import lower
from ..converter.ops import add, convolve, depthwise_conv, fully_connected
from ..converter.ops.add import ADD_LEFT_SHIFT, AddParams
from ..converter.ops.base import HWC, Clamp, Op, OpFamily, Tile
from ..converter.ops.convolve import ConvParams
from ..converter.ops.depthwise_conv import DepthwiseParams
from ..converter.ops.fully_connected import FullyConnectedParams
from ..converter.ops.lowering import LowerOptions
from ..converter.pipeline import convert
from ..converter.program import Program
from ..converter.reference import Reference
from ..dataset import Dataset
from ..errors import EnvironmentProblem
from ..firmware import runner
from ..firmware.boards import load_board
from ..firmware.crossbuild import build_firmware
from ..firmware.runner import RunnerCase, RunnerError
from ..outputs import write_text as write_output
from ..targets.qemu import QEMU_BOARD, QemuTarget
from .export import export_program

SEED = 20240607

# Recorded figures of CMSIS-NN on the same shapes (anchors/cmsis_nn.json: who measured them, how and when).
# They are printed as a recorded anchor with that provenance, never as this bench's measurement.
ANCHORS = Path(__file__).parent / "anchors" / "cmsis_nn.json"
# Goals per kernel in emulated instructions per MAC (per element for "add").
GOALS_T2 = {"conv3x3": 0.70, "conv1x1": 1.0, "depthwise3x3": 3.0, "fc": 1.30, "firstconv": 2.5, "add": 16.0}
TRIT5_GOAL_RATIO = 1.5  # trit5 within 1.5x of t2
MODEL_GOALS_T2 = {"paper": 0.80, "resnet8": 1.00, "dscnn": 1.50}  # whole inference, per MAC


class BenchError(EnvironmentProblem):
    """The bench could not build, run, or a kernel output differed from the numpy reference."""


@dataclass(frozen=True)
class KernelShape:
    """One benchmarked layer: 'same' padding, stride 1 (fully connected: h = w = k = 1; add: a residual
    add of two h × w × c_in tensors, counted per element)."""

    name: str
    kind: str  # "conv", "dw", "fc" or "add"
    h: int
    w: int
    c_in: int
    c_out: int
    k: int

    @property
    def macs(self) -> int:
        if self.kind == "add":
            return self.h * self.w * self.c_in
        if self.kind == "dw":
            return self.h * self.w * self.c_out * self.k * self.k
        return self.h * self.w * self.c_in * self.c_out * self.k * self.k

    def describe(self) -> str:
        if self.kind == "fc":
            return f"fc {self.c_in}->{self.c_out}"
        if self.kind == "add":
            return f"add {self.h}x{self.w}x{self.c_in} (per element)"
        what = "depthwise " if self.kind == "dw" else "conv "
        return f"{what}{self.k}x{self.k} {self.h}x{self.w}x{self.c_in}->{self.c_out}"


SHAPES = (
    KernelShape("conv3x3", "conv", 16, 16, 64, 64, 3),
    KernelShape("conv1x1", "conv", 16, 16, 64, 128, 1),
    KernelShape("depthwise3x3", "dw", 32, 32, 32, 32, 3),
    KernelShape("fc", "fc", 1, 1, 2048, 448, 1),
    KernelShape("firstconv", "conv", 32, 32, 1, 32, 3),
    KernelShape("add", "add", 16, 16, 64, 64, 1),
)
# --quick: same kernels and channel counts, smaller spatial sizes
QUICK_SHAPES = (
    KernelShape("conv3x3", "conv", 8, 8, 64, 64, 3),
    KernelShape("conv1x1", "conv", 8, 8, 64, 128, 1),
    KernelShape("depthwise3x3", "dw", 12, 12, 32, 32, 3),
    KernelShape("fc", "fc", 1, 1, 2048, 448, 1),
    KernelShape("firstconv", "conv", 12, 12, 1, 32, 3),
    KernelShape("add", "add", 8, 8, 64, 64, 1),
)
FAMILY_OF_KIND: dict[str, OpFamily] = {"conv": convolve.FAMILY, "dw": depthwise_conv.FAMILY,
                                       "fc": fully_connected.FAMILY}


def make_case(shape: KernelShape, fmt: str, seed: int = SEED) -> RunnerCase:
    """Deterministic case for `shape` with weights packed as `fmt`, and its numpy reference output.

    The same seed gives the same input, ternary weights (a third each of -1, 0, +1), bias and
    requantisation whatever the format, so t2 / trit5 / plain C run the very same layer."""
    rng = np.random.default_rng([seed, [s.name for s in SHAPES].index(shape.name)])
    if shape.kind == "add":
        return _add_case(shape, fmt, rng)
    bias_shift = 6  # as the lowering emits for ternary layers: the bias in 64x finer units
    x = rng.integers(-128, 128, size=(shape.h, shape.w, shape.c_in)).astype(np.int8)
    taps = shape.k * shape.k
    k = taps if shape.kind == "dw" else taps * shape.c_in
    wshape = (shape.k, shape.k, shape.c_out) if shape.kind == "dw" else (shape.c_out, k)
    wt = rng.integers(-1, 2, size=wshape).astype(np.int8)
    # A typical |Σ w·x| is sqrt(2k/3)·74 (x uniform int8, w a third each of -1, 0, +1): the bias is drawn
    # within half of that (in its 2^bias_shift finer units) and the requantisation maps the typical |acc|
    # to ~2^6, so outputs spread over int8 and few saturate (tests/workflows/test_bench.py: <= 10 %).
    typical = math.sqrt(2 * k / 3) * 74
    bias_bound = int(typical / 2) << bias_shift
    bias = rng.integers(-bias_bound, bias_bound, size=shape.c_out, endpoint=True).astype(np.int32)
    mult = rng.integers(1 << 30, (1 << 31) - 1, size=shape.c_out, endpoint=True).astype(np.int32)
    base = -int(math.ceil(math.log2(typical))) + 6 - bias_shift
    shift = np.full(shape.c_out, base, np.int32)
    pad = shape.k // 2
    act = Clamp(-128, 127)
    params: Any
    if shape.kind == "fc":
        params = FullyConnectedParams(shape.c_in, shape.c_out, 5, act, bias_shift)
        rows = wt
    elif shape.kind == "conv":
        params = ConvParams(HWC(shape.h, shape.w, shape.c_in), HWC(shape.h, shape.w, shape.c_out),
                            Tile(shape.k, shape.k), Tile(1, 1), Tile(pad, pad), -3, 5, act, bias_shift)
        rows = wt
    else:
        params = DepthwiseParams(HWC(shape.h, shape.w, shape.c_in), HWC(shape.h, shape.w, shape.c_out),
                                 Tile(shape.k, shape.k), 1, Tile(1, 1), Tile(pad, pad), -3, 5, act, bias_shift)
        rows = wt.reshape(taps, shape.c_out)
    family = FAMILY_OF_KIND[shape.kind]
    arrays = {"weights": packing.pack_rows(rows, fmt), "bias": bias, "multiplier": mult, "shift": shift}
    op = Op(family.kernels[fmt], shape.name, ("x",), "y", params, arrays, fmt)
    return RunnerCase.of(op, [x], make_label(shape, fmt))


def _add_case(shape: KernelShape, fmt: str, rng: np.random.Generator) -> RunnerCase:
    """A residual add as the lowering emits it (left_shift 20, both inputs rescaled to a common grid).
    It has no weights: `fmt` only labels the case, so the t2 and trit5 columns run the same kernel."""
    n = shape.macs
    params = AddParams(n, 7, 1518500250, -1, -3, 1207959552, -1, ADD_LEFT_SHIFT, -2, 1431655765, -19,
                       Clamp(-128, 127))
    op = Op(add.FAMILY.kernels[None], shape.name, ("a", "b"), "y", params)
    x1, x2 = (rng.integers(-128, 128, size=n).astype(np.int8) for _ in range(2))
    return RunnerCase.of(op, [x1, x2], make_label(shape, fmt))


def anchors() -> dict[str, Any]:
    """The recorded CMSIS-NN figures and their provenance."""
    return json.loads(ANCHORS.read_text())


def make_label(shape: KernelShape, fmt: str) -> str:
    return f"{shape.name} {fmt} ({shape.describe()})"


def run_cases(kernel_runner: runner.Runner, cases: Sequence[RunnerCase], work_dir: Path, *,
              repeat: int = 1) -> list[runner.CaseResult]:
    """Runs `cases` and checks every output bit for bit before any count is used."""
    try:
        results = runner.run(kernel_runner, cases, work_dir, repeat=repeat)
        runner.check(cases, results)
    except RunnerError as exc:
        raise BenchError(f"{kernel_runner.path.name}: {exc}") from exc
    return results


# ---------------------------------------------------------------- kernels


def bench_kernels(work_dir: Path, *, quick: bool = False, repeat: int = 1) -> dict[str, Any]:
    """{"kernels": {name: {"t2", "trit5", "plain_c": insn/MAC, "instructions", "macs", ...}}, ...}."""
    shapes = QUICK_SHAPES if quick else SHAPES
    dsp_cases = [make_case(s, fmt) for s in shapes for fmt in (packing.T2, packing.TRIT5)]
    plain_cases = [make_case(s, packing.T2) for s in shapes]
    with ThreadPoolExecutor(max_workers=2) as pool:
        runners = list(pool.map(lambda plain: runner.build_board_runner(work_dir / "fw", plain_c=plain),
                                (False, True)))
        runs = list(pool.map(lambda job: run_cases(job[0], job[1], work_dir / job[2], repeat=repeat),
                             ((runners[0], dsp_cases, "run_dsp"), (runners[1], plain_cases, "run_plain"))))
    dsp = {c.label: r.counts[0] for c, r in zip(dsp_cases, runs[0], strict=True)}
    plain = {c.label: r.counts[0] for c, r in zip(plain_cases, runs[1], strict=True)}
    recorded = anchors()
    out: dict[str, Any] = {}
    for s in shapes:
        counts = {"t2": dsp[make_label(s, packing.T2)], "trit5": dsp[make_label(s, packing.TRIT5)],
                  "plain_c": plain[make_label(s, packing.T2)]}
        anchor = recorded["insn_per_mac"]["s8"].get(s.name)
        out[s.name] = {key: n / s.macs for key, n in counts.items()} | {
            "goal_t2": GOALS_T2[s.name], "instructions": counts, "macs": s.macs, "shape": s.describe(),
            # the recorded figure applies to the full-size shape only (--quick runs smaller ones)
            "anchor": None if anchor is None or quick else {
                "cmsis_nn_s8": anchor, "shape": recorded["shapes"][s.name], "recorded": recorded["recorded"],
                "source": "recorded anchor (anchors/cmsis_nn.json), not measured by this bench"},
        }
    # The board counter ticks every 40 instructions and a measurement starts a few instructions after a
    # tick edge, so a call's count can differ by one tick between two calls in the same run; a whole
    # run is deterministic under -icount (same firmware, same cases: the same counts).
    return {"kernels": out, "counter_resolution_instructions": 40}


# ---------------------------------------------------------------- models end to end

# Published architectures at their published input shapes (MLPerf Tiny's ResNet-8, DS-CNN and
# MobileNetV1 α = 0.25 at 96×96×3, QKeras's MNIST CNN), ternary, plus the seed paper's model.
MODEL_NAMES = ("resnet8", "dscnn", "mbv1_vww", "paper", "mnist_cnn")


@dataclass(frozen=True)
class BuiltModel:
    program: Program
    elf: Path
    flash_bytes: int  # the model's weights and tables, not the evaluation firmware around them
    arena_bytes: int


def _build(program: Program, out: Path) -> BuiltModel:
    exported = export_program(program, QEMU_BOARD, out, build=False)
    region = json.loads((exported.out_dir / "manifest.json").read_text())["arena_region"]
    fw = build_firmware(exported.out_dir / "model", load_board(QEMU_BOARD), exported.out_dir / "firmware",
                        arena_region=region)
    arena = exported.report["arena"]
    return BuiltModel(exported.program, fw.elf, int(exported.report["totals"]["flash_bytes"]),
                      0 if arena is None else int(arena["bytes"]))


def _measure(name: str, built: BuiltModel, sample: np.ndarray) -> dict[str, Any]:
    """Per-layer emulated instructions of one inference; the output must equal the reference's."""
    program = built.program
    target = QemuTarget(built.elf, parallel=1)
    try:
        counts = target.profile(sample[0])
        outputs, _ = target.infer_batch(sample)
    finally:
        target.close()
    if not np.array_equal(outputs, Reference(program).run(sample)):
        raise BenchError(f"{name}: QEMU output differs from the reference")
    layers = []
    for op, count in zip(program.ops, counts, strict=True):
        macs = ops.macs(op)
        layers.append({"layer": op.name, "kernel": op.kernel, "macs": macs, "instructions": int(count),
                       "insn_per_mac": count / macs if macs else None})
    weights = sum(ops.weight_count(op) for op in program.ops)
    packed = sum(int(op.arrays["weights"].nbytes) for op in program.ops if "weights" in op.arrays)
    tables = sum(int(a.nbytes) for op in program.ops for a in op.arrays.values())
    macs = sum(ops.macs(op) for op in program.ops)
    return {
        "input_shape": list(program.tensor(program.input).shape),
        "layers": layers, "weights": weights, "macs": macs, "instructions": int(sum(counts)),
        "insn_per_mac": sum(counts) / macs,
        "packed_weight_bytes": packed, "flash_table_bytes": tables, "model_flash_bytes": built.flash_bytes,
        "arena_bytes": built.arena_bytes,
        "flash_bytes_per_weight": packed / weights, "flash_table_bytes_per_weight": tables / weights,
    }


def _convert(name: str, work_dir: Path, rng: np.random.Generator, packing_name: str) -> tuple[Any, np.ndarray]:
    """The model as the user would export it (calibrated on random inputs), and one input sample.
    Each model draws from its own generator seeded alike, so adding a model changes no other's figures."""
    h5, shape = lazy.frontend().models.save_bench_model(name, work_dir / f"{name}.h5")
    calibration = Dataset(rng.random((8, *shape)).astype(np.float32), None)
    deployed = convert(h5, calibration=calibration, packing=packing_name)
    return deployed, deployed.quantize_input(rng.random((1, *shape)).astype(np.float32))


def bench_models(work_dir: Path, *, packings: Sequence[str] = ("t2", "trit5"),
                 quick: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every MODEL_NAMES model end to end in the first packing; the paper model in every packing too.
    Returns (models, paper) where paper holds the per-packing figures and the reference throughput."""
    jobs: list[tuple[str, str, Program, np.ndarray]] = []
    paper_deployed, rng = None, np.random.default_rng(SEED)
    for name in MODEL_NAMES:
        model_rng = np.random.default_rng(SEED)
        deployed, sample = _convert(name, work_dir, model_rng, packings[0])
        jobs.append((name, packings[0], deployed.program, sample))
        if name == "paper":
            paper_deployed, rng = deployed, model_rng
            jobs += [(name, pk, lower(deployed.graph, LowerOptions(packing=pk)), sample) for pk in packings[1:]]
    assert paper_deployed is not None
    with ThreadPoolExecutor(max_workers=2) as pool:
        built = list(pool.map(lambda j: _build(j[2], work_dir / f"export_{j[0]}_{j[1]}"), jobs))
    models: dict[str, Any] = {}
    paper: dict[str, Any] = {}
    for (name, pk, _, sample), b in zip(jobs, built, strict=True):
        figures = _measure(f"{name} ({pk})", b, sample)
        if pk == packings[0]:
            models[name] = figures | {"packing": pk}
        if name == "paper":
            paper[pk] = figures
    first = paper[packings[0]]
    return models, {"insn_per_mac": first["insn_per_mac"], "flash_bytes_per_weight": first["flash_bytes_per_weight"],
                    "packing": packings[0], "packings": paper,
                    "reference_throughput": reference_throughput(Reference(paper_deployed.program), rng,
                                                                 quick=quick)}


def reference_throughput(reference: Reference, rng: np.random.Generator, *, quick: bool) -> dict[str, Any]:
    """Queries per second of the numpy reference, batched and sample by sample (the same code, a
    batch of one per call), best of a few repeats; the outputs of both must be identical."""
    shape = reference.program.tensor(reference.program.input).shape
    x = rng.integers(-128, 128, (64 if quick else 256, *shape)).astype(np.int8)
    singles = x[:8 if quick else 32]

    def best_rate(fn: Any, n: int, repeats: int = 2) -> float:
        best = math.inf
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        return n / best

    batched = reference.run(x)
    one_by_one = np.stack([reference.run_one(s) for s in singles])
    if not np.array_equal(batched[:len(singles)], one_by_one):
        raise BenchError("the batched reference differs from the sample-by-sample reference")
    rate_batched = best_rate(lambda: reference.run(x), len(x))
    rate_single = best_rate(lambda: [reference.run_one(s) for s in singles], len(singles))
    return {"queries_batched": len(x), "queries_single": len(singles), "chunk": reference.chunk,
            "batched_queries_per_second": rate_batched, "single_queries_per_second": rate_single,
            "batched_over_single": rate_batched / rate_single}


# ---------------------------------------------------------------- the command


def run_benchmarks(work_dir: Path, *, quick: bool = False, with_model: bool = True) -> dict[str, Any]:
    """The whole bench; the result holds counts only, so two runs give byte-identical JSON, except
    model.reference_throughput (wall-clock queries per second of the numpy reference)."""
    report: dict[str, Any] = {"unit": "emulated instructions per MAC (QEMU mps2-an500, -icount shift=0)",
                              "board": QEMU_BOARD, "quick": quick,
                              "goals": {"t2": GOALS_T2, "trit5_over_t2": TRIT5_GOAL_RATIO,
                                        "models_t2": MODEL_GOALS_T2}}
    report |= bench_kernels(work_dir / "kernels", quick=quick)
    if with_model:
        report["models"], report["model"] = bench_models(work_dir / "model", quick=quick)
    return report


def format_table(report: dict[str, Any]) -> str:
    lines = [f"tr_nn kernels: {report['unit']} (add: per element)",
             f"{'kernel':<14}{'shape':<36}{'goal':>6}{'t2':>7}{'trit5':>7}{'t5/t2':>7}{'plain C':>9}"
             f"{'CMSIS-NN s8*':>13}"]
    for name, k in report["kernels"].items():
        anchor = "" if k["anchor"] is None else f"{k['anchor']['cmsis_nn_s8']:.2f}"
        lines.append(f"{name:<14}{k['shape']:<36}{k['goal_t2']:>6.2f}{k['t2']:>7.2f}{k['trit5']:>7.2f}"
                     f"{k['trit5'] / k['t2']:>7.2f}{k['plain_c']:>9.2f}{anchor:>13}")
    recorded = anchors()
    lines.append(f"* recorded anchor, not measured here: {recorded['how']} (recorded {recorded['recorded']})")
    models = report.get("models")
    if models:
        lines.append("")
        lines.append("models end to end (t2, DSP path; random ternary weights, fixed seed; model flash = weights "
                     "and tables, arena = activations)")
        lines.append(f"{'model':<11}{'input':<12}{'MACs':>12}{'instructions':>14}{'per MAC':>9}{'goal':>6}"
                     f"{'flash B':>10}{'arena B':>9}")
        for name, m in models.items():
            goal = MODEL_GOALS_T2.get(name)
            lines.append(f"{name:<11}{'x'.join(map(str, m['input_shape'])):<12}{m['macs']:>12,}"
                         f"{m['instructions']:>14,}{m['insn_per_mac']:>9.2f}{'' if goal is None else f'{goal:.2f}':>6}"
                         f"{m['model_flash_bytes']:>10,}{m['arena_bytes']:>9,}")
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
        rt = model["reference_throughput"]
        lines.append("")
        lines.append(f"numpy reference on the paper model: {rt['batched_queries_per_second']:.0f} queries/s batched "
                     f"({rt['chunk']} per pass), {rt['single_queries_per_second']:.0f} queries/s one at a time "
                     f"(×{rt['batched_over_single']:.1f}); identical outputs")
    return "\n".join(lines)


def bench_command(*, json_path: Path | None, quick: bool, with_model: bool, work_dir: Path | None) -> int:
    """`tinyrobust bench [--json F] [--quick] [--no-model] [--work-dir D]`."""
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tinyrobust_bench_") as tmp:
        report = run_benchmarks(work_dir or Path(tmp), quick=quick, with_model=with_model)
    print(format_table(report))
    print(f"(bench took {time.monotonic() - t0:.0f} s)")
    if json_path is not None:
        write_output(json_path, json.dumps(report, indent=1, sort_keys=True) + "\n", "--json")
    return 0
