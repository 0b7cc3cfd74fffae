"""The lowered, integer-only Program and its deterministic serialisation.

A Program is what the reference executes, what codegen renders and what memplan places. It
holds Ops (the C function each calls, its typed integer params, packed weights and tables),
the int8 tensors between them and, once planned, arena offsets. Nothing in it needs TensorFlow.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExportError, UnsupportedModelError
from .ops import family_of
from .ops.base import Op, params_from_obj, params_to_obj

# A single-input, single-output Program is written as v2, byte for byte as before (its sha256 is baked
# into firmware already exported); v3 holds several inputs and outputs. Both are read.
PROGRAM_FORMAT = "tinyrobust-program-v2"
PROGRAM_FORMAT_MULTI = "tinyrobust-program-v3"


@dataclass(frozen=True)
class TensorSpec:
    """An int8 (or, where `bits` = 16, int16) activation tensor, real = scale · (q − zero_point), NHWC
    without the batch axis.

    `alias_of` names the tensor whose bytes this one reinterprets (Flatten, Reshape); an alias
    owns no memory. `source` is the Keras layer that produced it, for reports and calibration.
    """

    name: str
    shape: tuple[int, ...]
    scale: float
    zero_point: int
    source: str
    alias_of: str | None = None
    bits: int = 8

    @property
    def elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.elements * self.bits // 8

    @property
    def dtype(self) -> type:
        return np.int16 if self.bits == 16 else np.int8


@dataclass(frozen=True)
class InputQuantization:
    """How the host turns the model's float input into the firmware's int8 input."""

    scale: float
    zero_point: int
    qmin: int
    qmax: int
    source: str  # where the grid came from: an input quantizer or the --input-range

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """float → int8 on this grid; round half to even like tf.round, so an input quantizer matches."""
        q = np.round(np.asarray(x, dtype=np.float64) / self.scale) + self.zero_point
        return np.clip(q, self.qmin, self.qmax).astype(np.int8)


@dataclass(frozen=True)
class Placement:
    """Arena offsets from memplan: tensor name → byte offset, plus per-op scratch offsets."""

    arena_bytes: int
    lower_bound_bytes: int
    tensor_offsets: Mapping[str, int]
    scratch_offsets: Mapping[int, int]


@dataclass(frozen=True)
class Program:
    """`inputs` / `outputs` in the Keras model's order, `input_quantizations[k]` the grid of input k.

    Targets see one input buffer and one output buffer: the inputs' int8 bytes one after another in
    that order (`pack_inputs`), and the outputs' likewise (`split_outputs` takes them apart). A
    single-input, single-output model's buffers are its tensors, as before.
    """

    tensors: Mapping[str, TensorSpec]
    ops: tuple[Op, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    input_quantizations: tuple[InputQuantization, ...]
    packing: str
    model_name: str
    notes: tuple[str, ...] = ()
    placement: Placement | None = None

    def __post_init__(self) -> None:
        if not self.inputs or not self.outputs or len(self.input_quantizations) != len(self.inputs):
            raise ValueError(f"a Program needs inputs, outputs and one grid per input: {len(self.inputs)} inputs, "
                             f"{len(self.outputs)} outputs, {len(self.input_quantizations)} grids")
        # inputs are quantised on the host and sent as int8; an output may be int16 (its bytes little-endian)
        wide_in = [t for t in self.inputs if t in self.tensors and self.tensors[t].bits != 8]
        if wide_in:
            raise ValueError(f"model inputs are int8; {', '.join(wide_in)} is int16")

    def tensor(self, name: str) -> TensorSpec:
        return self.tensors[name]

    @property
    def input(self) -> str:
        """The input of a single-input model (for steps that handle only that case)."""
        return self._only(self.inputs, "inputs")

    @property
    def output(self) -> str:
        """The output of a single-output model (for steps that handle only that case)."""
        return self._only(self.outputs, "outputs")

    @property
    def input_quantization(self) -> InputQuantization:
        self._only(self.inputs, "inputs")
        return self.input_quantizations[0]

    def _only(self, names: tuple[str, ...], what: str) -> str:
        if len(names) != 1:
            raise UnsupportedModelError(f"model '{self.model_name}' has {len(names)} {what} "
                                        f"({', '.join(names)}); this step supports one")
        return names[0]

    @property
    def input_bytes(self) -> int:
        """Bytes of the packed input: every input's int8 bytes, in input order."""
        return sum(self.tensor(t).nbytes for t in self.inputs)

    @property
    def output_bytes(self) -> int:
        return sum(self.tensor(t).nbytes for t in self.outputs)

    def input_offsets(self) -> tuple[int, ...]:
        """Where input k starts in the packed input."""
        return _offsets([self.tensor(t).nbytes for t in self.inputs])

    def output_offsets(self) -> tuple[int, ...]:
        return _offsets([self.tensor(t).nbytes for t in self.outputs])

    def pack_inputs(self, xs: Sequence[np.ndarray]) -> np.ndarray:
        """Float samples, one (N, *shape) array per input in input order → packed int8 (N, input_bytes)."""
        if len(xs) != len(self.inputs):
            raise ValueError(f"{len(xs)} input arrays for {len(self.inputs)} inputs")
        n = len(xs[0])
        return np.concatenate([q.quantize(x).reshape(n, -1)
                               for q, x in zip(self.input_quantizations, xs, strict=True)], axis=1)

    def split_outputs(self, packed: np.ndarray) -> list[np.ndarray]:
        """Packed output bytes (N, output_bytes) → one (N, output k elements) array per output, as int8 or,
        for an int16 output, int16 (its bytes little-endian, as the Cortex-M stores them)."""
        bounds = (*self.output_offsets(), self.output_bytes)
        packed = np.asarray(packed)
        outs = []
        for t, a, b in zip(self.outputs, bounds[:-1], bounds[1:], strict=True):
            part = packed[:, a:b]
            if self.tensor(t).bits == 16:
                part = np.ascontiguousarray(part).view(np.dtype("<i2")).astype(np.int16)
            outs.append(part)
        return outs

    def output_values(self, packed: np.ndarray) -> np.ndarray:
        """The one output's values (N, elements), int8 or int16, from packed output bytes."""
        self._only(self.outputs, "outputs")
        return self.split_outputs(packed)[0]

    def storage_of(self, name: str) -> str:
        """The tensor whose memory `name` lives in (follows Flatten/Reshape aliases)."""
        spec = self.tensors[name]
        while spec.alias_of is not None:
            spec = self.tensors[spec.alias_of]
        return spec.name

    def with_placement(self, placement: Placement) -> Program:
        return replace(self, placement=placement)

    # ---- serialisation: canonical JSON, arrays as base64 of little-endian bytes ----
    def to_json_bytes(self) -> bytes:
        return (json.dumps(_program_to_obj(self), sort_keys=True, indent=1) + "\n").encode()

    def sha256(self) -> bytes:
        return hashlib.sha256(self.to_json_bytes()).digest()

    def save(self, path: Path) -> None:
        path.write_bytes(self.to_json_bytes())

    @staticmethod
    def load(path: Path) -> Program:
        try:
            obj = json.loads(Path(path).read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ExportError(f"{path}: not a readable tinyrobust program ({exc})") from exc
        if not isinstance(obj, dict) or obj.get("format") not in (PROGRAM_FORMAT, PROGRAM_FORMAT_MULTI):
            found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
            raise ExportError(f"{path}: program format {found!r}, expected {PROGRAM_FORMAT!r} "
                              f"or {PROGRAM_FORMAT_MULTI!r}")
        try:
            return _program_from_obj(obj)
        except (KeyError, TypeError, ValueError) as exc:
            raise ExportError(f"{path}: a damaged tinyrobust program ({type(exc).__name__}: {exc})") from exc


def _offsets(sizes: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in np.cumsum([0, *sizes[:-1]]))


def _grid_to_obj(q: InputQuantization) -> dict[str, Any]:
    return {"scale": q.scale, "zero_point": q.zero_point, "qmin": q.qmin, "qmax": q.qmax, "source": q.source}


def _grid_from_obj(o: Mapping[str, Any]) -> InputQuantization:
    return InputQuantization(float(o["scale"]), int(o["zero_point"]), int(o["qmin"]), int(o["qmax"]), o["source"])


def _array_to_obj(a: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(a)
    little = a.astype(a.dtype.newbyteorder("<"), copy=False)
    return {"dtype": a.dtype.name, "shape": list(a.shape), "b64": base64.b64encode(little.tobytes()).decode()}


def _array_from_obj(o: Mapping[str, Any]) -> np.ndarray:
    dtype = np.dtype(o["dtype"]).newbyteorder("<")
    raw = base64.b64decode(o["b64"])
    return np.frombuffer(raw, dtype=dtype).reshape(o["shape"]).astype(dtype.newbyteorder("="))


def _program_to_obj(p: Program) -> dict[str, Any]:
    single = len(p.inputs) == 1 and len(p.outputs) == 1
    io: dict[str, Any] = (
        {"format": PROGRAM_FORMAT, "input": p.inputs[0], "output": p.outputs[0],
         "input_quantization": _grid_to_obj(p.input_quantizations[0])}
        if single else
        {"format": PROGRAM_FORMAT_MULTI, "inputs": list(p.inputs), "outputs": list(p.outputs),
         "input_quantizations": [_grid_to_obj(q) for q in p.input_quantizations]}
    )
    return {
        **io,
        "model_name": p.model_name,
        "packing": p.packing,
        "notes": list(p.notes),
        "tensors": [
            {
                "name": t.name,
                "shape": list(t.shape),
                "scale": t.scale,
                "zero_point": t.zero_point,
                "source": t.source,
                "alias_of": t.alias_of,
                # written only for int16 tensors, so an int8 program's bytes (and sha256) are unchanged
                **({"bits": t.bits} if t.bits != 8 else {}),
            }
            for t in p.tensors.values()
        ],
        "ops": [
            {
                "kernel": op.kernel,
                "name": op.name,
                "inputs": list(op.inputs),
                "output": op.output,
                "params": params_to_obj(op.params),
                "arrays": {k: _array_to_obj(v) for k, v in op.arrays.items()},
                "weight_format": op.weight_format,
            }
            for op in p.ops
        ],
        "placement": None
        if p.placement is None
        else {
            "arena_bytes": p.placement.arena_bytes,
            "lower_bound_bytes": p.placement.lower_bound_bytes,
            "tensor_offsets": dict(p.placement.tensor_offsets),
            "scratch_offsets": {str(k): v for k, v in p.placement.scratch_offsets.items()},
        },
    }


def _program_from_obj(o: Mapping[str, Any]) -> Program:
    tensors = {
        t["name"]: TensorSpec(
            name=t["name"],
            shape=tuple(t["shape"]),
            scale=float(t["scale"]),
            zero_point=int(t["zero_point"]),
            source=t["source"],
            alias_of=t["alias_of"],
            bits=int(t.get("bits", 8)),
        )
        for t in o["tensors"]
    }
    ops = tuple(
        Op(
            kernel=op["kernel"],
            name=op["name"],
            inputs=tuple(op["inputs"]),
            output=op["output"],
            params=params_from_obj(family_of(op["kernel"]).params_type, op["params"]),
            arrays={k: _array_from_obj(v) for k, v in op["arrays"].items()},
            weight_format=op["weight_format"],
        )
        for op in o["ops"]
    )
    pl = o.get("placement")
    placement = (
        None
        if pl is None
        else Placement(
            arena_bytes=int(pl["arena_bytes"]),
            lower_bound_bytes=int(pl["lower_bound_bytes"]),
            tensor_offsets={k: int(v) for k, v in pl["tensor_offsets"].items()},
            scratch_offsets={int(k): int(v) for k, v in pl["scratch_offsets"].items()},
        )
    )
    if o["format"] == PROGRAM_FORMAT:
        inputs, outputs, grids = (o["input"],), (o["output"],), (_grid_from_obj(o["input_quantization"]),)
    else:
        inputs, outputs = tuple(o["inputs"]), tuple(o["outputs"])
        grids = tuple(_grid_from_obj(q) for q in o["input_quantizations"])
    return Program(
        tensors=tensors,
        ops=ops,
        inputs=inputs,
        outputs=outputs,
        input_quantizations=grids,
        packing=o["packing"],
        model_name=o["model_name"],
        notes=tuple(o["notes"]),
        placement=placement,
    )
