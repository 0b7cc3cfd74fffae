"""Drive the tr_nn C kernels from tests: random cases, the runner stream format, host and QEMU builds.

The same runner (tests/m7_kernel_runner/runner.c) runs on the host (sanitized executable) and on a
Cortex-M7 under QEMU (semihosting), so one case generator and one decoder serve both. Every case
carries the numpy reference output it must reproduce bit for bit.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyrobust import cbuild, kernels, packing

RUNNER_DIR = Path(__file__).resolve().parent / "m7_kernel_runner"
ARM_GCC = "arm-none-eabi-gcc"
QEMU = "qemu-system-arm"
M7_FLAGS = ("-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard", "-O2", "-std=c11", "-Wall",
            "-Wextra", "-Werror")
SENTINEL = 0x5A

# op codes: keep in sync with the enum in runner.c
OP_CONV = {packing.T2: 1, packing.TRIT5: 2, packing.S8: 3}
OP_DW = {packing.T2: 4, packing.TRIT5: 5, packing.S8: 6}
OP_FC = {packing.T2: 7, packing.TRIT5: 8, packing.S8: 9}
OP_ADD, OP_REQUANTIZE, OP_LUT, OP_CONCAT, OP_MAX_POOL, OP_AVG_POOL, OP_PAD = range(10, 17)


@dataclass(frozen=True)
class Case:
    op: int
    params: tuple[int, ...]
    blobs: tuple[bytes, ...]
    expected: bytes  # the numpy reference output
    initial: bytes = b""  # output contents before the call (concat only; otherwise the sentinel)
    label: str = ""


def encode(cases: Sequence[Case]) -> bytes:
    words = bytearray()
    for case in cases:
        words += struct.pack(f"<ii{len(case.params)}i", case.op, len(case.params), *case.params)
        words += struct.pack("<i", len(case.blobs))
        for blob in case.blobs:
            words += struct.pack("<i", len(blob)) + blob + bytes(-len(blob) % 4)
        words += struct.pack("<i", len(case.expected))
    return bytes(words + struct.pack("<i", 0))


def decode(data: bytes, cases: Sequence[Case]) -> list[tuple[int, bytes]]:
    """(status, output bytes including the padding to 4) per case."""
    return [(status, out) for status, _, out in decode_timed(data, cases)]


def decode_timed(data: bytes, cases: Sequence[Case]) -> list[tuple[int, int, bytes]]:
    """(status, elapsed timer ticks, output bytes including the padding to 4) per case."""
    results, pos = [], 0
    for case in cases:
        padded = len(case.expected) + (-len(case.expected) % 4)
        if pos + 8 + padded > len(data):
            raise AssertionError(f"runner output truncated at case {len(results)} ({case.label})")
        status, ticks = struct.unpack_from("<iI", data, pos)
        results.append((status, ticks, data[pos + 8:pos + 8 + padded]))
        pos += 8 + padded
    if pos != len(data):
        raise AssertionError("runner wrote more than expected")
    return results


def check_results(cases: Sequence[Case], results: Sequence[tuple[int, bytes]]) -> int:
    """Assert every case succeeded, matched the reference and left the padding bytes alone."""
    failures = []
    for i, (case, (status, out)) in enumerate(zip(cases, results, strict=True)):
        n = len(case.expected)
        tail_expected = (case.initial[n:] if case.initial else bytes([SENTINEL]) * (len(out) - n))
        if status != 0:
            failures.append(f"#{i} {case.label}: status {status}")
        elif out[:n] != case.expected:
            got = np.frombuffer(out[:n], np.int8)
            want = np.frombuffer(case.expected, np.int8)
            bad = np.flatnonzero(got != want)
            failures.append(f"#{i} {case.label}: {bad.size}/{n} bytes differ, first at {bad[0]}: "
                            f"got {got[bad[0]]} want {want[bad[0]]}")
        elif out[n:] != tail_expected:
            failures.append(f"#{i} {case.label}: wrote past the end of its output")
    assert not failures, f"{len(failures)}/{len(cases)} cases failed:\n" + "\n".join(failures[:20])
    return len(cases)


# ---------------------------------------------------------------- builds and runs


def build_host_runner(out_dir: Path, *, sanitize: bool = True, force_reference: bool = True) -> Path:
    flags = [f"-I{RUNNER_DIR}", "-DTR_RUNNER_ARENA_BYTES=(4u*1024u*1024u)"]
    if force_reference:
        flags.append(cbuild.REFERENCE_FLAG)
    sources = [*cbuild.tr_nn_sources(), RUNNER_DIR / "runner.c", RUNNER_DIR / "host_io.c"]
    name = f"runner_{'asan' if sanitize else 'o2'}{'_ref' if force_reference else ''}"
    return cbuild.build_host_executable(sources, [cbuild.tr_nn_dir()], out_dir / name, sanitize=sanitize,
                                        extra_flags=flags)


def run_host(runner: Path, cases: Sequence[Case], workdir: Path) -> list[tuple[int, bytes]]:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "cases.bin").write_bytes(encode(cases))
    proc = subprocess.run([str(runner), "cases.bin", "results.bin"], cwd=workdir, capture_output=True,
                          text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"host runner exited {proc.returncode}:\n{proc.stdout}{proc.stderr[-4000:]}")
    return decode((workdir / "results.bin").read_bytes(), cases)


def have_arm_toolchain() -> bool:
    return shutil.which(ARM_GCC) is not None


def have_qemu() -> bool:
    return shutil.which(QEMU) is not None and have_arm_toolchain()


def compile_m7_objects(out_dir: Path, *, force_reference: bool) -> list[Path]:
    """Cross-compile every tr_nn source for Cortex-M7 (-Werror); returns the objects."""
    out_dir.mkdir(parents=True, exist_ok=True)
    objs = []
    for src in cbuild.tr_nn_sources():
        obj = out_dir / (src.stem + ".o")
        cmd = [ARM_GCC, *M7_FLAGS, f"-I{cbuild.tr_nn_dir()}", "-c", str(src), "-o", str(obj)]
        if force_reference:
            cmd.append(cbuild.REFERENCE_FLAG)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stderr}")
        objs.append(obj)
    return objs


def build_m7_runner(out_dir: Path, *, force_reference: bool = False) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    elf = out_dir / f"runner{'_ref' if force_reference else ''}.elf"
    cmd = [ARM_GCC, *M7_FLAGS, f"-I{cbuild.tr_nn_dir()}", f"-I{RUNNER_DIR}",
           *map(str, cbuild.tr_nn_sources()), str(RUNNER_DIR / "runner.c"), str(RUNNER_DIR / "m7_io.c"),
           "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs",
           "-T", str(RUNNER_DIR / "mps2_an500.ld"), "-o", str(elf)]
    if force_reference:
        cmd.append(cbuild.REFERENCE_FLAG)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"M7 runner build failed:\n{proc.stderr}")
    return elf


def run_qemu(elf: Path, cases: Sequence[Case], workdir: Path, *,
             timeout: float = 120) -> list[tuple[int, bytes]]:
    return [(status, out) for status, _, out in run_qemu_timed(elf, cases, workdir, timeout=timeout)]


# With -icount shift=ICOUNT_SHIFT every instruction takes 2^ICOUNT_SHIFT ns of virtual time, and the
# runner's timer ticks at 25 MHz (40 ns), so instructions = ticks * 40 / 2^ICOUNT_SHIFT.
ICOUNT_SHIFT = 6
NS_PER_TICK = 40


def run_qemu_timed(elf: Path, cases: Sequence[Case], workdir: Path, *, timeout: float = 120,
                   icount: bool = False) -> list[tuple[int, int, bytes]]:
    """Like run_qemu, plus per-case timer ticks (instruction counts via ticks_to_instructions
    when icount=True)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "cases.bin").write_bytes(encode(cases))
    (workdir / "results.bin").unlink(missing_ok=True)
    cmd = [QEMU, "-M", "mps2-an500", "-cpu", "cortex-m7", "-nographic", "-monitor", "none",
           "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)]
    if icount:
        cmd += ["-icount", f"shift={ICOUNT_SHIFT}"]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise AssertionError(f"QEMU runner exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return decode_timed((workdir / "results.bin").read_bytes(), cases)


def ticks_to_instructions(ticks: int) -> float:
    return ticks * NS_PER_TICK / 2**ICOUNT_SHIFT


# ---------------------------------------------------------------- random cases


def _i8(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.integers(-128, 128, size=shape).astype(np.int8)


def _weights(rng: np.random.Generator, fmt: str, shape) -> np.ndarray:
    if fmt == packing.S8:
        return _i8(rng, shape)
    # ternary with a random density of zeros (ternary rows are often sparse)
    p_zero = rng.uniform(0.0, 0.9)
    signs = rng.choice(np.array([-1, 1], dtype=np.int8), size=shape)
    return np.where(rng.random(shape) < p_zero, 0, signs).astype(np.int8)


def _activation(rng: np.random.Generator) -> tuple[int, int]:
    if rng.random() < 0.6:
        return -128, 127
    lo, hi = sorted(int(v) for v in rng.integers(-128, 128, size=2))
    return lo, hi


def _quant(rng: np.random.Generator, cout: int, k: int, w_scale: float,
           bias_shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel multipliers/shifts that map a typical accumulator into int8 range (some saturate).

    The accumulator carries the factor 2^bias_shift, so the shift takes it back out."""
    typical = max(1.0, np.sqrt(max(k, 1)) * 74.0 * w_scale)
    base = -int(np.ceil(np.log2(typical))) + 6 - bias_shift
    mult = rng.integers(1 << 30, (1 << 31) - 1, size=cout, endpoint=True)
    mult[rng.random(cout) < 0.05] = 0
    shift = np.clip(base + rng.integers(-3, 3, size=cout), -31, 4)
    return mult.astype(np.int32), shift.astype(np.int32)


INT32_MAX = 2**31 - 1
MAX_TEST_BIAS_SHIFT = 8  # what the lowering emits (lower.MAX_BIAS_SHIFT); the C accepts up to 16


def _bias(rng: np.random.Generator, cout: int, k: int, weights: np.ndarray) -> tuple[np.ndarray | None, int]:
    """(bias or None, bias_shift) for acc = Σ w·x · 2^bias_shift + bias, never overflowing int32.

    sum_bound bounds |Σ w·x| for any int8 input (|x| <= 128); bias_shift in [0, 8] is capped so that
    sum_bound · 2^bias_shift leaves half the int32 range, and |bias| <= INT32_MAX - that, so the C
    accumulator provably fits. Mostly a bias of realistic size (scaled by 2^bias_shift, as the
    lowering's finer units are), sometimes one using all the remaining headroom.
    """
    sum_bound = max(k, 1) * 128 * max(int(np.abs(weights.astype(np.int64)).max(initial=0)), 1)
    s_cap = 0
    while s_cap < MAX_TEST_BIAS_SHIFT and sum_bound << (s_cap + 1) <= 2**30:
        s_cap += 1
    bias_shift = int(rng.integers(0, s_cap, endpoint=True))
    if rng.random() < 0.15:
        return None, bias_shift
    headroom = INT32_MAX - (sum_bound << bias_shift)
    bound = headroom if rng.random() < 0.1 else min(min(2**20, 128 * 128 * max(k, 1)) << bias_shift, headroom)
    return rng.integers(-bound, bound, size=cout, endpoint=True).astype(np.int32), bias_shift


def _out_len(in_len: int, k: int, stride: int, pad_before: int, rng: np.random.Generator) -> int:
    pad_after = int(rng.integers(0, k))
    return max(1, (in_len + pad_before + pad_after - k) // stride + 1)


def _blob(a: np.ndarray | None) -> bytes:
    return b"" if a is None else np.ascontiguousarray(a).tobytes()


def conv_case(rng: np.random.Generator, fmt: str) -> Case:
    while True:
        fast = rng.random() < 0.25
        h, w = (int(v) for v in rng.integers(1, 10, size=2))
        cin, cout = int(rng.integers(1, 14)), int(rng.integers(1, 12))
        if fast:
            kh = kw = sh = sw = 1
            pt = pl = 0
            oh, ow = h, w
        else:
            kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
            sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
            pt, pl = int(rng.integers(0, kh)), int(rng.integers(0, kw))
            oh, ow = _out_len(h, kh, sh, pt, rng), _out_len(w, kw, sw, pl, rng)
        x = _i8(rng, (h, w, cin))
        wt = _weights(rng, fmt, (cout, kh, kw, cin))
        k = kh * kw * cin
        bias, bias_shift = _bias(rng, cout, k, wt)
        mult, shift = _quant(rng, cout, k, 80.0 if fmt == packing.S8 else 1.0, bias_shift)
        pad_value, out_off = (int(v) for v in rng.integers(-128, 128, size=2))
        lo, hi = _activation(rng)
        try:
            ref = kernels.convolve(
                x, wt, bias if bias is not None else np.zeros(cout, np.int32), mult, shift, stride=(sh, sw),
                padding=(pt, pl), pad_value=pad_value, output_offset=out_off, act_min=lo, act_max=hi,
                out_hw=(oh, ow), bias_shift=bias_shift)
        except OverflowError:  # the lowering never emits an overflowing left shift; resample
            continue
        break
    params = (h, w, cin, cout, kh, kw, oh, ow, sh, sw, pt, pl, pad_value, out_off, lo, hi, bias_shift)
    packed = packing.pack_rows(wt.reshape(cout, k), fmt)
    return Case(OP_CONV[fmt], params, (_blob(x), _blob(packed), _blob(bias), _blob(mult), _blob(shift)),
                ref.tobytes(), label=f"conv {fmt} {params}")


def dw_case(rng: np.random.Generator, fmt: str) -> Case:
    while True:
        h, w = (int(v) for v in rng.integers(1, 10, size=2))
        cin, ch_mult = int(rng.integers(1, 10)), int(rng.integers(1, 3))
        cout = cin * ch_mult
        kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
        sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
        pt, pl = int(rng.integers(0, kh)), int(rng.integers(0, kw))
        oh, ow = _out_len(h, kh, sh, pt, rng), _out_len(w, kw, sw, pl, rng)
        x = _i8(rng, (h, w, cin))
        wt = _weights(rng, fmt, (kh, kw, cout))
        k = kh * kw
        bias, bias_shift = _bias(rng, cout, k, wt)
        mult, shift = _quant(rng, cout, k, 80.0 if fmt == packing.S8 else 1.0, bias_shift)
        pad_value, out_off = (int(v) for v in rng.integers(-128, 128, size=2))
        lo, hi = _activation(rng)
        try:
            ref = kernels.depthwise_conv(
                x, wt, bias if bias is not None else np.zeros(cout, np.int32), mult, shift, ch_mult=ch_mult,
                stride=(sh, sw), padding=(pt, pl), pad_value=pad_value, output_offset=out_off, act_min=lo,
                act_max=hi, out_hw=(oh, ow), bias_shift=bias_shift)
        except OverflowError:  # the lowering never emits an overflowing left shift; resample
            continue
        break
    params = (h, w, cin, ch_mult, kh, kw, oh, ow, sh, sw, pt, pl, pad_value, out_off, lo, hi, bias_shift)
    packed = packing.pack_rows(wt.reshape(kh * kw, cout), fmt)
    return Case(OP_DW[fmt], params, (_blob(x), _blob(packed), _blob(bias), _blob(mult), _blob(shift)),
                ref.tobytes(), label=f"dw {fmt} {params}")


def fc_case(rng: np.random.Generator, fmt: str) -> Case:
    while True:
        cin, cout = int(rng.integers(1, 120)), int(rng.integers(1, 24))
        x = _i8(rng, cin)
        wt = _weights(rng, fmt, (cout, cin))
        bias, bias_shift = _bias(rng, cout, cin, wt)
        mult, shift = _quant(rng, cout, cin, 80.0 if fmt == packing.S8 else 1.0, bias_shift)
        out_off = int(rng.integers(-128, 128))
        lo, hi = _activation(rng)
        try:
            ref = kernels.fully_connected(
                x, wt, bias if bias is not None else np.zeros(cout, np.int32), mult, shift,
                output_offset=out_off, act_min=lo, act_max=hi, bias_shift=bias_shift)
        except OverflowError:  # the lowering never emits an overflowing left shift; resample
            continue
        break
    params = (cin, cout, out_off, lo, hi, bias_shift)
    packed = packing.pack_rows(wt, fmt)
    return Case(OP_FC[fmt], params, (_blob(x), _blob(packed), _blob(bias), _blob(mult), _blob(shift)),
                ref.tobytes(), label=f"fc {fmt} {params}")


def _mult(rng: np.random.Generator) -> int:
    return int(rng.integers(1 << 30, (1 << 31) - 1, endpoint=True))


def add_case(rng: np.random.Generator) -> Case:
    n = int(rng.integers(1, 70))
    x1, x2 = _i8(rng, n), _i8(rng, n)
    lo, hi = _activation(rng)
    p = dict(input_1_offset=int(rng.integers(-127, 129)), input_1_mult=_mult(rng),
             input_1_shift=int(rng.integers(-8, 1)), input_2_offset=int(rng.integers(-127, 129)),
             input_2_mult=_mult(rng), input_2_shift=int(rng.integers(-8, 1)), left_shift=20,
             output_offset=int(rng.integers(-128, 128)), output_mult=_mult(rng),
             output_shift=int(rng.integers(-24, -17)), act_min=lo, act_max=hi)
    ref = kernels.add(x1, x2, **p)
    params = (n, *p.values())
    return Case(OP_ADD, params, (_blob(x1), _blob(x2)), ref.tobytes(), label=f"add {params}")


def requantize_case(rng: np.random.Generator) -> Case:
    n = int(rng.integers(1, 70))
    x = _i8(rng, n)
    lo, hi = _activation(rng)
    mult = _mult(rng) if rng.random() > 0.05 else 0
    p = dict(input_offset=int(rng.integers(-127, 129)), output_offset=int(rng.integers(-128, 128)), mult=mult,
             shift=int(rng.integers(-9, 4)), act_min=lo, act_max=hi)
    ref = kernels.requantize_tensor(x, **p)
    params = (n, p["input_offset"], p["output_offset"], mult, p["shift"], lo, hi)
    return Case(OP_REQUANTIZE, params, (_blob(x),), ref.tobytes(), label=f"requantize {params}")


def lut_case(rng: np.random.Generator) -> Case:
    n = int(rng.integers(1, 300))
    x, table = _i8(rng, n), _i8(rng, 256)
    return Case(OP_LUT, (n,), (_blob(table), _blob(x)), kernels.lut(x, table).tobytes(), label=f"lut n={n}")


def concat_case(rng: np.random.Generator) -> Case:
    h, w = (int(v) for v in rng.integers(1, 6, size=2))
    cin = int(rng.integers(1, 8))
    before, after = (int(v) for v in rng.integers(0, 6, size=2))
    parts = [_i8(rng, (h, w, before)), _i8(rng, (h, w, cin)), _i8(rng, (h, w, after))]
    initial = kernels.concat([parts[0], np.full((h, w, cin), SENTINEL, np.int8), parts[2]])
    ref = kernels.concat(parts)
    cout = before + cin + after
    init_bytes = initial.tobytes() + bytes([SENTINEL]) * (-initial.size % 4)
    params = (h, w, cin, cout, before)
    return Case(OP_CONCAT, params, (_blob(parts[1]), init_bytes), ref.tobytes(), initial=init_bytes,
                label=f"concat {params}")


def pool_case(rng: np.random.Generator, kind: str) -> Case:
    h, w = (int(v) for v in rng.integers(1, 10, size=2))
    c = int(rng.integers(1, 14))
    kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
    pt, pl = int(rng.integers(0, kh)), int(rng.integers(0, kw))
    # occasionally one row/column more than needed, so windows with no valid tap are exercised
    oh = _out_len(h, kh, sh, pt, rng) + int(rng.random() < 0.1)
    ow = _out_len(w, kw, sw, pl, rng) + int(rng.random() < 0.1)
    x = _i8(rng, (h, w, c))
    lo, hi = _activation(rng)
    fn = kernels.max_pool if kind == "max" else kernels.avg_pool
    ref = fn(x, kernel=(kh, kw), stride=(sh, sw), padding=(pt, pl), act_min=lo, act_max=hi, out_hw=(oh, ow))
    params = (h, w, c, kh, kw, oh, ow, sh, sw, pt, pl, lo, hi)
    op = OP_MAX_POOL if kind == "max" else OP_AVG_POOL
    return Case(op, params, (_blob(x),), ref.tobytes(), label=f"{kind}_pool {params}")


def pad_case(rng: np.random.Generator) -> Case:
    h, w = (int(v) for v in rng.integers(1, 8, size=2))
    c = int(rng.integers(1, 10))
    top, left = (int(v) for v in rng.integers(0, 4, size=2))
    oh, ow = h + top + int(rng.integers(0, 4)), w + left + int(rng.integers(0, 4))
    pad_value = int(rng.integers(-128, 128))
    x = _i8(rng, (h, w, c))
    ref = kernels.pad(x, top=top, left=left, out_hw=(oh, ow), pad_value=pad_value)
    params = (h, w, c, oh, ow, top, left, pad_value)
    return Case(OP_PAD, params, (_blob(x),), ref.tobytes(), label=f"pad {params}")


FAMILIES: dict[str, Callable[[np.random.Generator], list[Case]]] = {
    "conv": lambda rng: [conv_case(rng, f) for f in packing.FORMATS],
    "depthwise": lambda rng: [dw_case(rng, f) for f in packing.FORMATS],
    "fully_connected": lambda rng: [fc_case(rng, f) for f in packing.FORMATS],
    "add": lambda rng: [add_case(rng)],
    "requantize": lambda rng: [requantize_case(rng)],
    "lut": lambda rng: [lut_case(rng)],
    "concat": lambda rng: [concat_case(rng)],
    "pool": lambda rng: [pool_case(rng, "max"), pool_case(rng, "avg")],
    "pad": lambda rng: [pad_case(rng)],
}


def family_cases(family: str, rounds: int, seed: int) -> list[Case]:
    """`rounds` draws of the family's generator (conv/dw/fc draw one case per weight format)."""
    rng = np.random.default_rng(seed)
    cases: list[Case] = []
    for _ in range(rounds):
        cases += FAMILIES[family](rng)
    return cases
