"""Round-trip and rejection tests for the packed weight formats."""

from __future__ import annotations

import numpy as np
import pytest

from tinyrobust.converter import packing

TERNARY = (packing.T2, packing.TRIT5)


@pytest.mark.parametrize("fmt", packing.FORMATS)
def test_round_trip_random(fmt: str) -> None:
    rng = np.random.default_rng(1234)
    for _ in range(200):
        rows = int(rng.integers(1, 6))
        k = int(rng.integers(0, 70))
        if fmt == packing.S8:
            codes = rng.integers(-128, 128, size=(rows, k)).astype(np.int8)
        else:
            codes = rng.integers(-1, 2, size=(rows, k)).astype(np.int8)
        packed = packing.pack_rows(codes, fmt)
        assert packed.dtype == np.uint8
        assert packed.shape == (rows, packing.row_bytes(k, fmt))
        assert packed.shape[1] % 4 == 0
        np.testing.assert_array_equal(packing.unpack_rows(packed, fmt, rows, k), codes)


def test_row_bytes() -> None:
    assert [packing.row_bytes(k, packing.T2) for k in (0, 1, 16, 17, 32)] == [0, 4, 4, 8, 8]
    assert [packing.row_bytes(k, packing.TRIT5) for k in (1, 20, 21, 40)] == [4, 4, 8, 8]
    assert [packing.row_bytes(k, packing.S8) for k in (1, 4, 5, 9)] == [4, 4, 8, 12]
    with pytest.raises(ValueError):
        packing.row_bytes(4, "nope")


def test_known_bit_patterns() -> None:
    # t2: trits (+1, -1, 0, +1) -> 01, 11, 00, 01 lowest first = 0b01_00_11_01
    t2 = packing.pack_rows(np.array([[1, -1, 0, 1]], dtype=np.int8), packing.T2)
    assert t2.tolist() == [[0b01001101, 0, 0, 0]]
    # trit5: (+1, -1, 0, 0, 0) -> 2 + 0*3 + 1*9 + 1*27 + 1*81 = 119; padding bytes are all-zero trits = 121
    t5 = packing.pack_rows(np.array([[1, -1, 0, 0, 0]], dtype=np.int8), packing.TRIT5)
    assert t5.tolist() == [[119, 121, 121, 121]]
    s8 = packing.pack_rows(np.array([[-1, 127, -128]], dtype=np.int8), packing.S8)
    assert s8.tolist() == [[255, 127, 128, 0]]


def test_rejects_invalid_t2_code() -> None:
    packed = packing.pack_rows(np.zeros((1, 16), dtype=np.int8), packing.T2)
    packed[0, 1] = 0b00001000  # trit 5 = code 10
    with pytest.raises(ValueError, match="10"):
        packing.unpack_rows(packed, packing.T2, 1, 16)


def test_rejects_trit5_byte_over_242() -> None:
    packed = packing.pack_rows(np.zeros((1, 20), dtype=np.int8), packing.TRIT5)
    packed[0, 2] = 243
    with pytest.raises(ValueError, match="242"):
        packing.unpack_rows(packed, packing.TRIT5, 1, 20)


@pytest.mark.parametrize("fmt", packing.FORMATS)
def test_rejects_nonzero_padding(fmt: str) -> None:
    codes = np.zeros((2, 3), dtype=np.int8)
    packed = packing.pack_rows(codes, fmt)
    if fmt == packing.T2:
        packed[1, 0] |= 0b01 << 6  # trit 3 is padding
    elif fmt == packing.TRIT5:
        packed[1, 0] += 2 * 27  # trit 3 -> +1
    else:
        packed[1, 3] = 1
    with pytest.raises(ValueError, match="padding"):
        packing.unpack_rows(packed, fmt, 2, 3)


@pytest.mark.parametrize("fmt", TERNARY)
def test_rejects_non_ternary(fmt: str) -> None:
    with pytest.raises(ValueError):
        packing.pack_rows(np.array([[2]], dtype=np.int8), fmt)


def test_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        packing.pack_rows(np.zeros(4, dtype=np.int8), packing.T2)
    with pytest.raises(ValueError):
        packing.unpack_rows(np.zeros((1, 8), dtype=np.uint8), packing.T2, 1, 16)
    with pytest.raises(ValueError):
        packing.unpack_rows(np.zeros((1, 4), dtype=np.int8), packing.S8, 1, 4)
