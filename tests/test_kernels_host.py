"""Host C kernels (plain-C path, ASan + UBSan) against the numpy reference, bit for bit."""

from __future__ import annotations

import ctypes
from pathlib import Path

import c_harness as h
import numpy as np
import pytest
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
    """A realistic layer (16x16x24 -> 32, 3x3, stride 1 and 2) in every weight format."""
    rng = np.random.default_rng(5)
    cases = []
    for fmt in packing.FORMATS:
        for stride in (1, 2):
            x = rng.integers(-128, 128, (16, 16, 24)).astype(np.int8)
            wt = rng.integers(-1, 2, (32, 3, 3, 24)).astype(np.int8)
            bias = rng.integers(-5000, 5000, 32).astype(np.int32)
            mult = rng.integers(1 << 30, 1 << 31, 32).astype(np.int32)
            shift = np.full(32, -7 if fmt != packing.S8 else -12, np.int32)
            oh = (16 + 2 - 3) // stride + 1
            ref = h.kernels.convolve(x, wt, bias, mult, shift, stride=(stride, stride), padding=(1, 1),
                                     pad_value=-5, output_offset=3, act_min=-128, act_max=127,
                                     out_hw=(oh, oh))
            params = (16, 16, 24, 32, 3, 3, oh, oh, stride, stride, 1, 1, -5, 3, -128, 127)
            blobs = (x.tobytes(), packing.pack_rows(wt.reshape(32, -1), fmt).tobytes(), bias.tobytes(),
                     mult.tobytes(), shift.tobytes())
            cases.append(h.Case(h.OP_CONV[fmt], params, blobs, ref.tobytes(), label=f"big {fmt} s{stride}"))
    h.check_results(cases, h.run_host(asan_runner, cases, tmp_path))


def _t2_lut_expected() -> np.ndarray:
    dec = {0: 0, 1: 1, 2: 0, 3: -1}
    out = np.zeros((256, 2), np.uint32)
    for b in range(256):
        w = [dec[(b >> (2 * i)) & 3] & 0xFFFF for i in range(4)]
        out[b] = (w[0] | w[1] << 16, w[2] | w[3] << 16)
    return out


def _t5_luts_expected() -> tuple[np.ndarray, np.ndarray]:
    even, odd = np.zeros((243, 3), np.uint32), np.zeros((243, 3), np.uint32)
    for b in range(243):
        w = [((b // 3**k) % 3 - 1) & 0xFFFF for k in range(5)]
        even[b] = (w[0] | w[1] << 16, w[2] | w[3] << 16, w[4])
        odd[b] = (w[0] << 16, w[1] | w[2] << 16, w[3] | w[4] << 16)
    return even, odd


def test_dsp_decode_tables(shared_lib: ctypes.CDLL) -> None:
    """The preprocessor-built tables the DSP path uses hold exactly the decoded weights."""
    t2 = np.ctypeslib.as_array((ctypes.c_uint32 * 512).in_dll(shared_lib, "tr_t2_pair_lut")).reshape(256, 2)
    np.testing.assert_array_equal(t2, _t2_lut_expected())
    even, odd = _t5_luts_expected()
    for name, want in (("tr_t5_even_lut", even), ("tr_t5_odd_lut", odd)):
        got = np.ctypeslib.as_array((ctypes.c_uint32 * 729).in_dll(shared_lib, name)).reshape(243, 3)
        np.testing.assert_array_equal(got, want)


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
