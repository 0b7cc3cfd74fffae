"""Format numpy arrays as C initialiser bodies (the only place numbers become C text)."""

from __future__ import annotations

import numpy as np

PER_LINE = {1: 16, 4: 8}


def c_initializer(values: np.ndarray) -> str:
    """Comma-separated literals, a fixed number per line; unsigned bytes in hex."""
    flat = np.asarray(values).reshape(-1)
    if flat.dtype == np.uint8:
        items = [f"0x{int(v):02x}" for v in flat]
    elif flat.dtype == np.int32 or flat.dtype == np.int64:
        # INT32_MIN cannot be written as a negative literal in C.
        items = ["(-2147483647 - 1)" if int(v) == -(2**31) else str(int(v)) for v in flat]
    else:
        items = [str(int(v)) for v in flat]
    per_line = PER_LINE.get(flat.dtype.itemsize, 8)
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n    ".join(lines)


def c_string(text: str) -> str:
    """A C string literal body for plain text (model names come from users)."""
    return "".join(ch if ch.isalnum() or ch in " _-.:/()" else "_" for ch in text)
