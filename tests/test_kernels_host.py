"""Host C kernels (plain-C path, ASan + UBSan) against the numpy reference, bit for bit."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

import c_harness as h
from tinyrobust import cbuild, packing

# rounds per family: conv / depthwise / fully_connected draw one case per weight format per round
ROUNDS = {"conv": 120, "depthwise": 120, "fully_connected": 120, "pool": 150}
DEFAULT_ROUNDS = 300


@pytest.fixture(scope="module")
def asan_runner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return h.build_host_runner(tmp_path_factory.mktemp("tr_nn_asan"), sanitize=True, force_reference=True)


@pytest.fixture(scope="module")
def o2_runner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # no TR_NN_FORCE_REFERENCE: on a host without the Arm DSP extension this must still pick plain C
    return h.build_host_runner(tmp_path_factory.mktemp("tr_nn_o2"), sanitize=False, force_reference=False)


@pytest.fixture(scope="module")
def shared_lib(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    out = tmp_path_factory.mktemp("tr_nn_so") / "libtr_nn.so"
    cbuild.build_host_shared_lib(cbuild.tr_nn_sources(), [cbuild.tr_nn_dir()], out, sanitize=False)
    return ctypes.CDLL(str(out))


@pytest.mark.parametrize("family", sorted(h.FAMILIES))
def test_family_matches_numpy_sanitized(asan_runner: Path, tmp_path: Path, family: str) -> None:
    seed = 11 + sorted(h.FAMILIES).index(family)
    cases = h.family_cases(family, ROUNDS.get(family, DEFAULT_ROUNDS), seed=seed)
    assert h.check_results(cases, h.run_host(asan_runner, cases, tmp_path)) >= 300


def test_all_families_match_numpy_o2(o2_runner: Path, tmp_path: Path) -> None:
    cases = [c for fam in sorted(h.FAMILIES) for c in h.family_cases(fam, 40, seed=7)]
    assert h.check_results(cases, h.run_host(o2_runner, cases, tmp_path)) > 500


def test_large_conv_matches(asan_runner: Path, tmp_path: Path) -> None:
    """A realistic layer (16x16x24 -> 32, 3x3, stride 1 and 2) in every weight format, with the
    bias in units 2^bias_shift finer than the accumulator's (0 and 6, as the lowering emits)."""
    rng = np.random.default_rng(5)
    cases = []
    for fmt in packing.FORMATS:
        for stride, bias_shift in ((1, 0), (2, 6), (1, 6)):
            x = rng.integers(-128, 128, (16, 16, 24)).astype(np.int8)
            wt = rng.integers(-1, 2, (32, 3, 3, 24)).astype(np.int8)
            bias = rng.integers(-5000 << bias_shift, 5000 << bias_shift, 32).astype(np.int32)
            mult = rng.integers(1 << 30, 1 << 31, 32).astype(np.int32)
            shift = np.full(32, (-7 if fmt != packing.S8 else -12) - bias_shift, np.int32)
            oh = (16 + 2 - 3) // stride + 1
            ref = h.kernels.convolve(x, wt, bias, mult, shift, stride=(stride, stride), padding=(1, 1),
                                     pad_value=-5, output_offset=3, act_min=-128, act_max=127,
                                     out_hw=(oh, oh), bias_shift=bias_shift)
            params = (16, 16, 24, 32, 3, 3, oh, oh, stride, stride, 1, 1, -5, 3, -128, 127, bias_shift)
            blobs = (x.tobytes(), packing.pack_rows(wt.reshape(32, -1), fmt).tobytes(), bias.tobytes(),
                     mult.tobytes(), shift.tobytes())
            cases.append(h.Case(h.OP_CONV[fmt], params, blobs, ref.tobytes(),
                                label=f"big {fmt} s{stride} bias_shift {bias_shift}"))
    h.check_results(cases, h.run_host(asan_runner, cases, tmp_path))


def _t2_lut_expected() -> np.ndarray:
    dec = {0: 0, 1: 1, 2: 0, 3: -1}
    out = np.zeros((256, 2), np.uint32)
    for b in range(256):
        w = [dec[(b >> (2 * i)) & 3] & 0xFFFF for i in range(4)]
        out[b] = (w[0] | w[1] << 16, w[2] | w[3] << 16)
    return out


def _t5_luts_expected() -> np.ndarray:
    """tr_t5_lut[2][243][4]: [0] = byte at an even position, [1] = at an odd one; 4th word 0."""
    out = np.zeros((2, 243, 4), np.uint32)
    for b in range(243):
        w = [((b // 3**k) % 3 - 1) & 0xFFFF for k in range(5)]
        out[0, b, :3] = (w[0] | w[1] << 16, w[2] | w[3] << 16, w[4])
        out[1, b, :3] = (w[0] << 16, w[1] | w[2] << 16, w[3] | w[4] << 16)
    return out


def test_dsp_decode_tables(shared_lib: ctypes.CDLL) -> None:
    """The preprocessor-built tables the DSP path uses hold exactly the decoded weights."""
    t2 = np.ctypeslib.as_array((ctypes.c_uint32 * 512).in_dll(shared_lib, "tr_t2_pair_lut")).reshape(256, 2)
    np.testing.assert_array_equal(t2, _t2_lut_expected())
    t5 = np.ctypeslib.as_array((ctypes.c_uint32 * (2 * 243 * 4)).in_dll(shared_lib, "tr_t5_lut"))
    np.testing.assert_array_equal(t5.reshape(2, 243, 4), _t5_luts_expected())


class Dims(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


def test_buffer_sizes_match_python(shared_lib: ctypes.CDLL) -> None:
    for fmt, suffix in ((packing.T2, "t2"), (packing.TRIT5, "t5"), (packing.S8, "s8")):
        conv = getattr(shared_lib, f"tr_convolve_s8_{suffix}_get_buffer_size")
        fc = getattr(shared_lib, f"tr_fully_connected_s8_{suffix}_get_buffer_size")
        dw = getattr(shared_lib, f"tr_depthwise_conv_s8_{suffix}_get_buffer_size")
        for kh, kw, cin in ((1, 1, 3), (3, 3, 7), (2, 5, 16), (1, 1, 64)):
            inp, filt = Dims(1, 8, 8, cin), Dims(4, kh, kw, cin)
            assert conv(ctypes.byref(inp), ctypes.byref(filt)) == packing.conv_scratch_bytes(kh, kw, cin, fmt)
            assert fc(ctypes.byref(Dims(4, 1, 1, cin))) == packing.fc_scratch_bytes(cin, fmt)
            assert dw(ctypes.byref(inp), ctypes.byref(Dims(1, kh, kw, cin))) == 0


def test_conv_rejects_small_scratch(shared_lib: ctypes.CDLL) -> None:
    class Ctx(ctypes.Structure):
        _fields_ = [("buf", ctypes.c_void_p), ("size", ctypes.c_int32)]

    size = packing.conv_scratch_bytes(3, 3, 4, packing.T2)
    buf = ctypes.create_string_buffer(size)
    inp, filt, bias, out = Dims(1, 4, 4, 4), Dims(2, 3, 3, 4), Dims(1, 1, 1, 2), Dims(1, 2, 2, 2)
    params = (ctypes.c_int32 * 10)(0, 0, 1, 1, 0, 0, -128, 127)  # tr_nn_conv_params, field order
    mult = (ctypes.c_int32 * 2)(1 << 30, 1 << 30)
    shift = (ctypes.c_int32 * 2)(0, 0)
    quant = (ctypes.c_void_p * 2)(ctypes.addressof(mult), ctypes.addressof(shift))
    x = (ctypes.c_int8 * 64)()
    w = (ctypes.c_uint8 * packing.row_bytes(36, packing.T2) * 2)()
    y = (ctypes.c_int8 * 8)()
    fn = shared_lib.tr_convolve_s8_t2
    for cap, want in ((size, 0), (size - 1, -1)):
        ctx = Ctx(ctypes.cast(buf, ctypes.c_void_p), cap)
        status = fn(ctypes.byref(ctx), params, quant, ctypes.byref(inp), x, ctypes.byref(filt), w,
                    ctypes.byref(bias), None, ctypes.byref(out), y)
        assert status == want


# ---------------------------------------------------------------- bias_shift, by hand

_OUT_OFFSET = 10


def _bias_shift_cases() -> list[tuple[h.Case, str, int]]:
    """(case, kind, hand-computed accumulator) with acc = Σ w·x · 2^bias_shift + bias.

    Each row: kind, taps (1 or 3x3), bias_shift, bias (None = NULL), requantize shift, acc.
    With multiplier 2^30 (x0.5) and an even acc the requantized value is exactly acc · 2^(shift-1)
    rounded half away from zero, so the expectation needs no model of the kernels.
    """
    rows = [
        # x = 3, w = +1: Σ = 3
        ("single", 3, 6, -2, 3 * 8 + 6),
        # x = -3: Σ = -3
        ("single_neg", 3, 6, -2, -3 * 8 + 6),
        # x = 6, NULL bias
        ("single_null", 0, None, -2, 6),
        ("single_null", 5, None, -2, 6 * 32),
        # x = -1, the largest accepted bias_shift
        ("single_max", 16, 40000, -14, -(1 << 16) + 40000),
        # 3x3 window around a 1x1 input, all weights +1, x = 2, pad_value = -1: Σ = 2 - 8 = -6;
        # for fully connected x = [4, -2, 1], w = [1, -1, 1]: Σ = 7
        ("window", 2, 10, -2, None),
    ]
    out: list[tuple[h.Case, str, int]] = []
    x_of = {"single": 3, "single_neg": -3, "single_null": 6, "single_max": -1}
    for fmt in packing.FORMATS:
        for name, bias_shift, bias_val, shift_val, acc in rows:
            bias = None if bias_val is None else np.array([bias_val], np.int32)
            mult, shift = np.array([1 << 30], np.int32), np.array([shift_val], np.int32)
            for kind in ("conv", "dw", "fc"):
                if name == "window":
                    if kind == "fc":
                        x, wt = np.array([4, -2, 1], np.int8), np.array([[1, -1, 1]], np.int8)
                        acc_k = 7 * 4 + 10
                    else:
                        x, acc_k = np.array([2], np.int8), -6 * 4 + 10
                        wt = np.ones((1, 9) if kind == "conv" else (9, 1), np.int8)
                    kk, pad = 3, 1
                else:
                    x, acc_k, kk, pad = np.array([x_of[name]], np.int8), acc, 1, 0
                    wt = np.ones((1, 1), np.int8)
                assert acc_k % 2 == 0
                want = np.int8(np.clip(_round_half_away(acc_k, 1 - shift_val) + _OUT_OFFSET, -128, 127))
                bias_blob = b"" if bias is None else bias.tobytes()
                blobs = (x.tobytes(), packing.pack_rows(wt, fmt).tobytes(), bias_blob, mult.tobytes(),
                         shift.tobytes())
                if kind == "fc":
                    params: tuple[int, ...] = (x.size, 1, _OUT_OFFSET, -128, 127, bias_shift)
                    op = h.OP_FC[fmt]
                else:
                    # 1x1x1 input, one output pixel, pad_value -1
                    params = (1, 1, 1, 1, kk, kk, 1, 1, 1, 1, pad, pad, -1, _OUT_OFFSET, -128, 127,
                              bias_shift)
                    op = h.OP_CONV[fmt] if kind == "conv" else h.OP_DW[fmt]
                label = f"{kind} {fmt} {name} bias_shift={bias_shift}"
                out.append((h.Case(op, params, blobs, want.tobytes(), label=label), kind, acc_k))
    return out


def _round_half_away(num: int, log2_den: int) -> int:
    den = 1 << log2_den
    assert (2 * abs(num)) % den != 0 or abs(num) % den == 0, "tie: pick another value"
    q = (abs(num) + den // 2) // den
    return q if num >= 0 else -q


def _numpy_output(case: h.Case, kind: str) -> bytes:
    """The numpy reference on the same case (weights unpacked from the blob)."""
    p, fmt = case.params, {**{v: k for k, v in h.OP_CONV.items()}, **{v: k for k, v in h.OP_DW.items()},
                           **{v: k for k, v in h.OP_FC.items()}}[case.op]
    x = np.frombuffer(case.blobs[0], np.int8)
    bias = np.frombuffer(case.blobs[2], np.int32) if case.blobs[2] else np.zeros(1, np.int32)
    mult, shift = np.frombuffer(case.blobs[3], np.int32), np.frombuffer(case.blobs[4], np.int32)
    common = dict(output_offset=_OUT_OFFSET, act_min=-128, act_max=127, bias_shift=p[-1])
    packed = np.frombuffer(case.blobs[1], np.uint8)

    def unpack(rows: int, k: int) -> np.ndarray:
        return packing.unpack_rows(packed.reshape(rows, -1), fmt, rows, k)

    if kind == "fc":
        wt = unpack(1, x.size)
        return h.kernels.fully_connected(x, wt, bias, mult, shift, **common).tobytes()
    kk = p[4]
    conv = dict(stride=(1, 1), padding=(p[10], p[11]), pad_value=p[12], out_hw=(1, 1), **common)
    if kind == "conv":
        wt = unpack(1, kk * kk).reshape(1, kk, kk, 1)
        return h.kernels.convolve(x.reshape(1, 1, 1), wt, bias, mult, shift, **conv).tobytes()
    wt = unpack(kk * kk, 1).reshape(kk, kk, 1)
    return h.kernels.depthwise_conv(x.reshape(1, 1, 1), wt, bias, mult, shift, ch_mult=1, **conv).tobytes()


def test_bias_shift_hand_computed(asan_runner: Path, tmp_path: Path) -> None:
    """acc = Σ w·x · 2^bias_shift + bias on hand-worked cases (incl. padded taps, NULL bias and
    bias_shift 16) for all nine weighted kernels: C and numpy each match the hand value."""
    triples = _bias_shift_cases()
    cases = [c for c, _, _ in triples]
    for case, kind, _ in triples:
        assert _numpy_output(case, kind) == case.expected, case.label
    assert h.check_results(cases, h.run_host(asan_runner, cases, tmp_path)) == 6 * 3 * 3


def test_bias_shift_out_of_range_rejected(asan_runner: Path, tmp_path: Path) -> None:
    """bias_shift outside [0, 16] is TR_NN_ARG_ERROR (the 1 << bias_shift would be undefined),
    and the output is left untouched."""
    cases = []
    for case, _, _ in _bias_shift_cases():
        if case.label.split()[2] != "single":  # one row per kernel and format is enough
            continue
        for bad in (-1, 17, 31):
            cases.append(h.Case(case.op, (*case.params[:-1], bad), case.blobs, case.expected,
                                label=f"{case.label} -> {bad}"))
    results = h.run_host(asan_runner, cases, tmp_path)
    for case, (status, out) in zip(cases, results, strict=True):
        assert status == -1, case.label
        assert out == bytes([h.SENTINEL]) * len(out), case.label
    assert {c.op for c in cases} == set(range(1, 10))


def test_numpy_bias_shift_guards() -> None:
    """The reference refuses what the C cannot do: bias_shift outside [0, 16] and an int32 overflow."""
    x, wt = np.array([127], np.int8), np.array([[1]], np.int8)
    common = dict(output_offset=0, act_min=-128, act_max=127)
    for bad in (-1, 17):
        with pytest.raises(ValueError):
            h.kernels.fully_connected(x, wt, np.zeros(1, np.int32), [1 << 30], [0], bias_shift=bad, **common)
    with pytest.raises(OverflowError):
        h.kernels.fully_connected(x, wt, np.array([2**31 - 200], np.int32), [1 << 30], [0], bias_shift=1,
                                  **common)
    # just inside the range is fine: 127 * 2 + (2^31 - 257) = 2^31 - 3
    h.kernels.fully_connected(x, wt, np.array([2**31 - 257], np.int32), [1 << 30], [0], bias_shift=1,
                              **common)
