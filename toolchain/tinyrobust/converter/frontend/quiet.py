"""TensorFlow's start-up noise, kept off the user's terminal.

Importing TensorFlow 2.21 prints, from C++ straight to file descriptor 2 (so no Python logging setting
reaches it), lines such as "All log messages before absl::InitializeLog() is called are written to
STDERR" and "cudart_stub.cc:31] Could not find cuda drivers", and ART warns that PyTorch is missing.
They appear on every run, successful or not, and say nothing a tinyrobust user can act on.
`quiet_startup` captures descriptor 2 while the TensorFlow stack is imported and writes back every line
except those known start-up lines, so a real error still shows. TF_CPP_MIN_LOG_LEVEL=3 (set by the
frontend unless the user set it) silences the later "failed call to cuInit" line.

No TensorFlow import here: the frontend imports this module first.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

# Substrings of the start-up lines dropped; anything else printed during the import is kept.
STARTUP_NOISE = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "cudart_stub.cc",
    "cuda_platform.cc",
    "cuda_dnn.cc",
    "cuda_fft.cc",
    "cuda_blas.cc",
    "cpu_feature_guard.cc",
    "To enable the following instructions",
    "oneDNN custom operations are on",
    "TF-TRT Warning",
    "PyTorch not found",
)


def is_noise(line: str) -> bool:
    return any(marker in line for marker in STARTUP_NOISE)


@contextmanager
def quiet_startup() -> Iterator[None]:
    """Within: descriptor 2 goes to a temporary file; on exit, what is not start-up noise is replayed."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no descriptor 2 (embedded interpreter): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="PyTorch not found")
                yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [ln for ln in captured.read().decode("utf-8", "replace").splitlines(True) if not is_noise(ln)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
