"""The float-level graph IR: typed, frozen dataclasses, refined by pure passes.

The frontend produces a Graph whose weights are the values QKeras's own quantizers give (float);
passes fold BatchNorm, factor alpha out of ternary weights, fuse activations and attach int8
grids; `lower` turns the legal Graph into an integer Program.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from ..errors import UnsupportedModelError
from .calibration import CalibrationRange

WeightKind = Literal["ternary", "binary", "int8"]
ActivationKind = Literal["linear", "relu", "quantized", "sigmoid", "tanh", "softmax", "table"]


@dataclass(frozen=True)
class Grid:
    """A uniform grid: real = scale · (q − zero_point), q in [qmin, qmax] within int8, or within int16
    for a tensor widened for fidelity (see `wide`)."""

    scale: float
    zero_point: int
    qmin: int
    qmax: int
    origin: str  # where it came from: "quantizer …", "calibration", "sigmoid", …

    @property
    def bits(self) -> int:
        """8 or 16: the element width the grid's codes need."""
        return 8 if -128 <= self.qmin and self.qmax <= 127 else 16

    @property
    def real_min(self) -> float:
        return self.scale * (self.qmin - self.zero_point)

    @property
    def real_max(self) -> float:
        return self.scale * (self.qmax - self.zero_point)

    @staticmethod
    def from_levels(lowest: float, step: float, count: int, origin: str) -> Grid:
        """Grid for the levels lowest + k·step, k = 0..count−1 (count ≤ 256, 0 among them)."""
        if not 2 <= count <= 256:
            raise UnsupportedModelError(f"{origin}: {count} levels do not fit int8")
        offset = lowest / step
        if abs(offset - round(offset)) > 1e-4:
            raise UnsupportedModelError(f"{origin}: zero is not on the grid (lowest {lowest}, step {step})")
        zero_point = -128 - int(round(offset))
        if not -128 <= zero_point <= -128 + count - 1:
            raise UnsupportedModelError(f"{origin}: zero point {zero_point} outside int8 or off its levels "
                                        "(0 must be one of the grid's levels)")
        return Grid(float(step), zero_point, -128, -128 + count - 1, origin)

    @staticmethod
    def holding(levels: np.ndarray, origin: str) -> Grid | None:
        """The int8 grid holding every one of `levels` and zero exactly (step: their smallest gap), or
        None when they are not all on one uniform grid of at most 256 levels."""
        levels = np.union1d(np.asarray(levels, dtype=np.float64), [0.0])
        if len(levels) < 2 or len(levels) > 256:
            return None
        step = float(np.diff(levels).min())
        k = (levels - levels[0]) / step
        count = round(float(k[-1])) + 1
        if not np.allclose(k, np.round(k), rtol=0.0, atol=1e-4) or count > 256:
            return None
        return Grid.from_levels(float(levels[0]), step, count, origin)

    @staticmethod
    def wide(lo: float, hi: float, origin: str) -> Grid:
        """int16 grid (codes −32768..32767) covering [lo, hi] ∪ {0}: symmetric, zero point 0 (CMSIS-NN's
        s16 convention) when the range holds negative values; zero point −32768 when it does not (a
        ReLU's output), so that all 65,536 codes cover [0, hi]: half the step, 6 dB less rounding noise
        on every such tensor than s16's unused negative half would leave. Our s16 kernels take any offset."""
        if float(lo) >= 0.0:
            return Grid((float(hi) or 1e-6) / 65535.0, -32768, -32768, 32767, origin)
        magnitude = max(-float(lo), float(hi), 0.0) or 1e-6
        return Grid(magnitude / 32767.0, 0, -32768, 32767, origin)

    @staticmethod
    def from_range(lo: float, hi: float, origin: str) -> Grid:
        """Asymmetric 256-level grid covering [lo, hi] ∪ {0}, zero exactly representable."""
        lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
        if hi - lo <= 0:
            hi = lo + 1e-6
        scale = (hi - lo) / 255.0
        zero_point = int(np.clip(round(-128 - lo / scale), -128, 127))
        return Grid(scale, zero_point, -128, 127, origin)


@dataclass(frozen=True)
class TableFunction:
    """An elementwise activation deployed as a 256-entry table (kind "table"): the lowering evaluates
    `evaluate` (real values in, real values out, float64) once on every level of the input grid."""

    # Supplied by the frontend (a QKeras quantizer or Keras layer run through TensorFlow). Left out of
    # ==/hash: the IR stays hashable, and the Program only keeps the computed table.
    evaluate: Callable[[np.ndarray], np.ndarray] = field(compare=False, repr=False)
    # True for a QKeras quantizer: its levels are the model's statement, so any output the int8 grid
    # cannot hold exactly is reported (a note naming the layer). False: a float function, rounded like
    # any float tensor.
    quantizer: bool
    # The input interval outside which the output no longer changes (None: unbounded on a side);
    # the input grid needs no finer range than this.
    active_range: tuple[float | None, float | None] = (None, None)


@dataclass(frozen=True)
class Activation:
    """An activation applied to a tensor. `grid` is the output grid a quantizer states."""

    kind: ActivationKind
    grid: Grid | None = None
    description: str = ""
    table: TableFunction | None = None  # kind "table" only


@dataclass(frozen=True)
class WeightApproximation:
    """How far codes·scale are from weights that sit on no int8 grid (per channel, in that channel's step)."""

    channels: int  # channels with at least one weight moved (on no one int8 grid)
    of_channels: int
    moved: int  # weights whose deployed value differs from Keras's
    of_weights: int
    max_error_steps: float  # the largest |code·step − value| / step


@dataclass(frozen=True)
class WeightTensor:
    """Quantized weights. Before factor_alpha: `values` only (float, as Keras computes them).
    After: codes (int8, same layout) with per-output-channel scale; codes·scale == values unless
    `approximation` says by how much they differ.
    Layout: conv (KH, KW, Cin, Cout); depthwise (KH, KW, Cin, mult); dense (Cin, Cout).
    """

    values: np.ndarray
    quantizer: str  # "ternary", "stochastic_ternary", "binary", "stochastic_binary", "quantized_bits",
    #                 "quantized_po2", "quantized_ulaw", "float"
    kind: WeightKind
    codes: np.ndarray | None = None
    channel_scale: np.ndarray | None = None
    description: str = ""  # the quantizer as QKeras prints it, e.g. "quantized_ulaw(4,0,1)", for messages
    approximation: WeightApproximation | None = None

    @property
    def exact(self) -> bool:
        """After factor_alpha: codes·scale equal the weights Keras computes."""
        return self.approximation is None


@dataclass(frozen=True)
class InputNode:
    name: str
    output: str
    grid: Grid | None = None


@dataclass(frozen=True)
class ConvNode:
    """conv2d / depthwise / dense: y = post_scale ⊙ (W ⊛ x) + post_bias, then `activation`."""

    name: str
    inputs: tuple[str]
    output: str
    kind: Literal["conv2d", "depthwise", "dense"]
    weights: WeightTensor
    post_scale: np.ndarray  # (Cout,)
    post_bias: np.ndarray  # (Cout,)
    strides: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    activation: Activation = Activation("linear")


@dataclass(frozen=True)
class BatchNormNode:
    """y = scale ⊙ x + offset per channel (inference BatchNorm, already reduced)."""

    name: str
    inputs: tuple[str]
    output: str
    scale: np.ndarray
    offset: np.ndarray


@dataclass(frozen=True)
class ActivationNode:
    name: str
    inputs: tuple[str]
    output: str
    activation: Activation


@dataclass(frozen=True)
class AddNode:
    name: str
    inputs: tuple[str, str]
    output: str
    activation: Activation = Activation("linear")


@dataclass(frozen=True)
class MulNode:
    """Elementwise product of two tensors of one shape (Keras Multiply)."""

    name: str
    inputs: tuple[str, str]
    output: str
    activation: Activation = Activation("linear")


@dataclass(frozen=True)
class ConcatNode:
    name: str
    inputs: tuple[str, ...]
    output: str


@dataclass(frozen=True)
class PoolNode:
    name: str
    inputs: tuple[str]
    output: str
    kind: Literal["max", "avg"]
    pool: tuple[int, int]
    strides: tuple[int, int]
    padding: tuple[int, int, int, int]
    global_pool: bool = False


@dataclass(frozen=True)
class PadNode:
    name: str
    inputs: tuple[str]
    output: str
    padding: tuple[int, int, int, int]


@dataclass(frozen=True)
class ReshapeNode:
    """Flatten or Reshape: NHWC row-major bytes are unchanged, so it lowers to a view."""

    name: str
    inputs: tuple[str]
    output: str


@dataclass(frozen=True)
class IdentityNode:
    """Dropout and linear activations: removed by the first pass."""

    name: str
    inputs: tuple[str]
    output: str


Node = (
    InputNode
    | ConvNode
    | BatchNormNode
    | ActivationNode
    | AddNode
    | MulNode
    | ConcatNode
    | PoolNode
    | PadNode
    | ReshapeNode
    | IdentityNode
)


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # without batch
    source: str  # Keras layer that produces it
    grid: Grid | None = None


@dataclass(frozen=True)
class Graph:
    """Nodes in topological order; tensors by name; the model's inputs and outputs in Keras order."""

    nodes: tuple[Node, ...]
    tensors: Mapping[str, TensorInfo]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    name: str
    calibration: Mapping[str, CalibrationRange] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def input(self) -> str:
        """The input of a single-input graph (callers that handle only that case)."""
        if len(self.inputs) != 1:
            raise UnsupportedModelError(f"model '{self.name}' has {len(self.inputs)} inputs; this step takes one")
        return self.inputs[0]

    @property
    def output(self) -> str:
        """The output of a single-output graph (callers that handle only that case)."""
        if len(self.outputs) != 1:
            raise UnsupportedModelError(f"model '{self.name}' has {len(self.outputs)} outputs; this step takes one")
        return self.outputs[0]

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if not isinstance(n, InputNode) and tensor in n.inputs]

    def producer(self, tensor: str) -> Node:
        for n in self.nodes:
            if n.output == tensor:
                return n
        raise KeyError(tensor)

    def with_note(self, note: str) -> Graph:
        return replace(self, notes=(*self.notes, note))


def rename_input(node: Node, old: str, new: str) -> Node:
    """The node with every input `old` replaced by `new`."""
    if isinstance(node, InputNode):
        return node
    return replace(node, inputs=tuple(new if t == old else t for t in node.inputs))
