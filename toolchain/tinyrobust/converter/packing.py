"""Packed weight formats shared by the lowering and the C kernels (see tr_nn_types.h).

Every format packs one row per output channel (conv / fully connected) or per kernel tap
(depthwise); every row starts on a 32-bit word:

- ``t2r16-v1``: 2 bits per trit, 0 -> 00, +1 -> 01, -1 -> 11, lowest bits first; ceil(K/16)*4 bytes.
- ``trit5r20-v1``: 5 trits per byte, byte = sum_k (t_k + 1)·3^k; ceil(K/20)*4 bytes, padding trits 0.
- ``s8r4-v1``: int8 weights; ceil(K/4)*4 bytes, padding bytes 0.
"""

from __future__ import annotations

import numpy as np

T2 = "t2r16-v1"
TRIT5 = "trit5r20-v1"
S8 = "s8r4-v1"
FORMATS = (T2, TRIT5, S8)

# weights per 32-bit word for each format: rows are padded to a whole number of words
_WEIGHTS_PER_WORD = {T2: 16, TRIT5: 20, S8: 4}
BITS_PER_WEIGHT = {T2: 2.0, TRIT5: 1.6, S8: 8.0}
TERNARY_FORMATS = (T2, TRIT5)
_POW3 = np.array([1, 3, 9, 27, 81], dtype=np.int64)


def _check_format(fmt: str) -> None:
    if fmt not in _WEIGHTS_PER_WORD:
        raise ValueError(f"unknown weight format {fmt!r}; expected one of {FORMATS}")


def row_bytes(k: int, fmt: str) -> int:
    """Bytes one packed row of k weights occupies."""
    _check_format(fmt)
    if k < 0:
        raise ValueError(f"row length must be >= 0, got {k}")
    per_word = _WEIGHTS_PER_WORD[fmt]
    return -(-k // per_word) * 4


def pack_rows(codes: np.ndarray, fmt: str) -> np.ndarray:
    """Pack an int8 (rows, K) array into (rows, row_bytes(K, fmt)) uint8."""
    _check_format(fmt)
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"pack_rows expects a 2-D (rows, K) array, got shape {codes.shape}")
    rows, k = codes.shape
    values = codes.astype(np.int64)
    if fmt == S8:
        if values.size and (values.min() < -128 or values.max() > 127):
            raise ValueError("s8 weights must lie in [-128, 127]")
        padded = np.zeros((rows, row_bytes(k, fmt)), dtype=np.int64)
        padded[:, :k] = values
        return (padded & 0xFF).astype(np.uint8)
    if values.size and not np.isin(values, (-1, 0, 1)).all():
        raise ValueError(f"{fmt} weights must be ternary (-1, 0, +1)")
    if fmt == T2:
        padded = np.zeros((rows, row_bytes(k, fmt) * 4), dtype=np.int64)
        padded[:, :k] = values & 3  # +1 -> 01, -1 -> 11, 0 -> 00
        groups = padded.reshape(rows, -1, 4)
        return (groups << np.array([0, 2, 4, 6])).sum(axis=2).astype(np.uint8)
    padded = np.zeros((rows, row_bytes(k, fmt) * 5), dtype=np.int64)
    padded[:, :k] = values
    groups = (padded + 1).reshape(rows, -1, 5)
    return (groups * _POW3).sum(axis=2).astype(np.uint8)


def unpack_rows(packed: np.ndarray, fmt: str, rows: int, k: int) -> np.ndarray:
    """Inverse of pack_rows; raises ValueError on any byte pack_rows cannot produce."""
    _check_format(fmt)
    packed = np.asarray(packed)
    expected = (rows, row_bytes(k, fmt))
    if packed.dtype != np.uint8 or packed.shape != expected:
        raise ValueError(f"packed rows must be uint8 of shape {expected}, got {packed.dtype} {packed.shape}")
    data = packed.astype(np.int64)
    if fmt == S8:
        full = np.where(data > 127, data - 256, data)
    elif fmt == T2:
        codes = (data[:, :, None] >> np.array([0, 2, 4, 6])) & 3
        if (codes == 2).any():
            raise ValueError("t2 code 10 is invalid")
        full = np.where(codes == 3, -1, codes).reshape(rows, -1)
    else:
        if (data > 242).any():
            raise ValueError("trit5 byte above 242 is invalid")
        full = ((data[:, :, None] // _POW3) % 3 - 1).reshape(rows, -1)
    if (full[:, k:] != 0).any():
        raise ValueError("nonzero padding after the last weight of a row")
    return full[:, :k].astype(np.int8)


def padded_length(k: int, fmt: str) -> int:
    """Weights a packed row of k weights holds, padding included (whole 32-bit words)."""
    _check_format(fmt)
    per_word = _WEIGHTS_PER_WORD[fmt]
    return -(-k // per_word) * per_word
