"""The host target: the generated C library compiled with the host gcc, driven through ctypes.

Same sources as the firmware, plain-C kernel path (hosts have no Arm DSP extension). With
`sanitize=True` it is built with ASan/UBSan; the loading process then needs libasan in LD_PRELOAD
(tests run it in a subprocess that sets it).
"""

from __future__ import annotations

import ctypes
import hashlib
from pathlib import Path

import numpy as np

from ..errors import TargetError
from ..firmware.codegen.c_names import library_file, library_prefix
from ..firmware.hostbuild import build_host_shared_lib
from ..firmware.sources import tr_nn_dir, tr_nn_sources
from .base import Progress, Target, as_batch, as_sample
from .protocol import Hello

MODEL_SOURCES = ("tr_model.c", "tr_model_weights.c")


def build_host_library(model_dir: Path, out: Path, *, sanitize: bool = False) -> Path:
    prefix = library_prefix(model_dir)
    sources = [*tr_nn_sources(), *(model_dir / library_file(name, prefix) for name in MODEL_SOURCES)]
    return build_host_shared_lib(sources, [tr_nn_dir(), model_dir], out, sanitize=sanitize)


class HostTarget(Target):
    name = "host"

    def __init__(self, model_dir: Path, build_dir: Path, *, sanitize: bool = False):
        p = library_prefix(model_dir)  # the library's C names start with it (export --name)
        key = hashlib.sha256((model_dir / f"{p}_model.c").read_bytes()).hexdigest()[:16]
        lib_path = build_dir / f"lib{p}_model_{key}{'_san' if sanitize else ''}.so"
        if not lib_path.exists():
            build_host_library(model_dir, lib_path, sanitize=sanitize)
        lib = ctypes.CDLL(str(lib_path))
        i8p = ctypes.POINTER(ctypes.c_int8)
        self._c_run = getattr(lib, f"{p}_model_run")
        self._c_run.argtypes = [i8p, i8p]
        self._c_run.restype = ctypes.c_int32
        self._c_run_until = getattr(lib, f"{p}_model_run_until")
        self._c_run_until.argtypes = [i8p, ctypes.c_int32]
        self._c_run_until.restype = ctypes.c_int32
        self._c_layer_output = getattr(lib, f"{p}_model_layer_output")
        self._c_layer_output.argtypes = [ctypes.c_int32, ctypes.POINTER(ctypes.c_int32)]
        self._c_layer_output.restype = i8p
        self._lib = lib
        defs = _read_defines(model_dir / f"{p}_model.h")
        m = f"{p.upper()}_MODEL"
        self._hello = Hello(
            protocol_version=1,
            counter_kind=2,
            layers=defs[f"{m}_NUM_LAYERS"],
            input_bytes=defs[f"{m}_INPUT_BYTES"],
            output_bytes=defs[f"{m}_OUTPUT_BYTES"],
            arena_bytes=defs[f"{m}_ARENA_BYTES"],
            core_clock_hz=0,
            model_hash=bytes((ctypes.c_uint8 * 32).in_dll(lib, f"{p}_model_hash")),
            flags=0,
            board="host",
            firmware_version="host-ctypes",
        )

    @property
    def hello(self) -> Hello:
        return self._hello

    def _run(self, sample: bytes) -> bytes:
        inp = (ctypes.c_int8 * len(sample)).from_buffer_copy(sample)
        out = (ctypes.c_int8 * self._hello.output_bytes)()
        status = self._c_run(inp, out)
        if status != 0:
            raise TargetError(f"tr_model_run returned {status}")
        return bytes(out)

    def infer_batch(self, x_int8: np.ndarray, progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
        batch = as_batch(x_int8, self._hello.input_bytes)
        outs = np.zeros((len(batch), self._hello.output_bytes), dtype=np.int8)
        for i, row in enumerate(batch):
            outs[i] = np.frombuffer(self._run(row.tobytes()), dtype=np.int8)
            if progress is not None:
                progress(1)
        return outs, np.zeros(len(batch), dtype=np.int64)

    def profile(self, x: np.ndarray | bytes) -> list[int]:
        return [0] * self._hello.layers  # the host has no meaningful counter

    def layer_output(self, x: np.ndarray | bytes, layer: int) -> bytes:
        sample = as_sample(x, self._hello.input_bytes)
        inp = (ctypes.c_int8 * len(sample)).from_buffer_copy(sample)
        status = self._c_run_until(inp, layer)
        if status != 0:
            raise TargetError(f"tr_model_run_until returned {status}")
        n = ctypes.c_int32(0)
        ptr = self._c_layer_output(layer, ctypes.byref(n))
        return ctypes.string_at(ptr, n.value)

    def close(self) -> None:
        pass  # ctypes cannot unload safely; the library lives as long as the process


def _read_defines(header: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in header.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "#define" and parts[2].lstrip("-").isdigit():
            out[parts[1]] = int(parts[2])
    return out
