"""Attach an int8 grid to every tensor.

Grids come, in order of preference, from the model itself (input and activation quantizers),
from known function ranges (sigmoid / tanh tables and their inputs; other tables: the levels their
function takes on the input grid, their input clipped where the function saturates), from grid-preserving ops
(pooling, padding, views, relu), and last from calibration ranges the user supplied. A tensor
that needs calibration when none was given is an error naming it: never a silent guess.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ...errors import UnsupportedModelError
from ..ir import (
    Activation,
    ActivationNode,
    AddNode,
    BatchNormNode,
    ConcatNode,
    ConvNode,
    Graph,
    Grid,
    InputNode,
    MulNode,
    PadNode,
    PoolNode,
    ReshapeNode,
)
from .rewire import drop_node, single_consumer

# Output grids of the 256-entry tables: sigmoid in [0, 1), tanh in [−1, 1).
SIGMOID_OUTPUT = Grid(1.0 / 256.0, -128, -128, 127, "sigmoid output range [0, 1)")
TANH_OUTPUT = Grid(1.0 / 128.0, 0, -128, 127, "tanh output range [-1, 1)")
# Input grids of the tables where the model states none: beyond ±8 (sigmoid) and ±4 (tanh) the
# functions are within half an output step of saturation, so a wider range only loses resolution.
SIGMOID_INPUT = Grid(16.0 / 256.0, 0, -128, 127, "sigmoid input range [-8, 8)")
TANH_INPUT = Grid(8.0 / 256.0, 0, -128, 127, "tanh input range [-4, 4)")
LUT_INPUT = {"sigmoid": SIGMOID_INPUT, "tanh": TANH_INPUT}
LUT_SATURATION = {"sigmoid": 8.0, "tanh": 4.0}
# Nodes whose output range is computed (not inherited): without a stated grid they need calibration.
COMPUTED = (ConvNode, AddNode, MulNode, BatchNormNode)


DEFAULT_INPUT_RANGE = (0.0, 1.0)


@dataclass(frozen=True)
class GridOptions:
    # The float range of an input no quantizer states: this when given, else the calibration data's,
    # else DEFAULT_INPUT_RANGE.
    input_range: tuple[float, float] | None = None


class CalibrationNeededError(UnsupportedModelError):
    def __init__(self, tensors: list[tuple[str, str]]):
        self.tensors = tensors
        listed = ", ".join(f"'{t}' (from {src})" for t, src in tensors)
        super().__init__(
            f"these tensors have no grid stated by the model and need calibration data: {listed}. "
            "Pass --calibration data.npz (x: float32 samples in the model's input domain), or add "
            "QActivation quantizers to the model."
        )


def absorb_input_quantizer(graph: Graph) -> Graph:
    """An input quantizer (QActivation right after an input) *is* the firmware's grid for that input."""
    for k in range(len(graph.inputs)):
        node = graph.nodes[k]
        assert isinstance(node, InputNode)
        consumer = single_consumer(graph, node.output)
        if isinstance(consumer, ActivationNode) and consumer.activation.kind == "quantized":
            assert consumer.activation.grid is not None
            graph = drop_node(graph, consumer, node.output)
            grid = replace(consumer.activation.grid, origin=f"input quantizer of '{consumer.name}'")
            graph = replace(graph, nodes=tuple(replace(n, grid=grid) if n is node else n for n in graph.nodes))
    return graph


def _table_reader(graph: Graph, tensor: str) -> Activation | None:
    """The table activation (sigmoid, tanh or kind "table") that is every consumer of `tensor`, if one is."""
    consumers = graph.consumers(tensor)
    if not consumers or not all(isinstance(c, ActivationNode) for c in consumers):
        return None
    acts = {c.activation for c in consumers}  # type: ignore[union-attr]
    if len(acts) != 1:
        return None
    act = acts.pop()
    return act if act.kind in LUT_INPUT or act.kind == "table" else None


def _calibrated(graph: Graph, tensor: str) -> Grid | None:
    rng = graph.calibration.get(tensor)
    return None if rng is None else Grid.from_range(rng.lo, rng.hi, rng.describe())


def _lut_input_grid(graph: Graph, tensor: str, act: Activation) -> Grid | None:
    """Calibrated range clipped to where the function still changes (finer steps, smaller table error);
    without calibration, that whole range where it is bounded (else None: calibration is needed)."""
    rng = graph.calibration.get(tensor)
    if act.kind in LUT_INPUT:
        if rng is None:
            return LUT_INPUT[act.kind]
        limit = LUT_SATURATION[act.kind]
        lo, hi = max(rng.lo, -limit), min(rng.hi, limit)
        return Grid.from_range(lo, hi, f"{act.kind} input: calibration range [{lo:.4g}, {hi:.4g}] within ±{limit:g}")
    assert act.table is not None
    a_lo, a_hi = act.table.active_range
    if rng is None:
        if a_lo is None or a_hi is None:
            return None
        return Grid.from_range(a_lo, a_hi, f"{act.description} input: where it changes [{a_lo:.4g}, {a_hi:.4g}]")
    lo = float(np.clip(rng.lo, a_lo if a_lo is not None else -np.inf, a_hi if a_hi is not None else np.inf))
    hi = float(np.clip(rng.hi, a_lo if a_lo is not None else -np.inf, a_hi if a_hi is not None else np.inf))
    return Grid.from_range(lo, hi, f"{act.description} input: calibration range clipped to [{lo:.4g}, {hi:.4g}], "
                           "where the function changes")


def _table_output_grid(node: ActivationNode, gi: Grid) -> Grid:
    """A table with no stated grid: the exact grid of the values it takes on the input grid where one
    holds them, else 256 levels over their range (the lowering reports a quantizer's approximation)."""
    assert node.activation.table is not None
    y = node.activation.table.evaluate(gi.scale * (np.arange(gi.qmin, gi.qmax + 1, dtype=np.float64) - gi.zero_point))
    origin = f"{node.activation.description} of layer '{node.name}' on its input grid"
    exact = Grid.holding(np.unique(y), origin)
    return exact if exact is not None else Grid.from_range(float(y.min()), float(y.max()), origin + " (approximate)")


def _grid_for(graph: Graph, node, grids: dict[str, Grid], options: GridOptions) -> Grid | None:
    if isinstance(node, InputNode):
        if node.grid is not None:
            return node.grid
        if options.input_range is not None:
            lo, hi = options.input_range
            return Grid.from_range(lo, hi, f"input range [{lo}, {hi}] (--input-range)")
        calibrated = _calibrated(graph, node.output)
        if calibrated is not None:
            return calibrated
        lo, hi = DEFAULT_INPUT_RANGE
        return Grid.from_range(lo, hi, f"default input range [{lo}, {hi}] (no input quantizer, calibration "
                               "data or --input-range)")
    if isinstance(node, ConvNode | AddNode | MulNode) and node.activation.kind == "quantized":
        return node.activation.grid
    if isinstance(node, ActivationNode):
        act = node.activation
        if act.kind == "quantized":
            return act.grid
        if act.kind == "sigmoid":
            return SIGMOID_OUTPUT
        if act.kind == "tanh":
            return TANH_OUTPUT
        if act.kind == "relu":
            return grids.get(node.inputs[0])  # same grid, clamped at its zero point
        if act.kind == "table":
            if act.grid is not None:
                return act.grid
            gi = grids.get(node.inputs[0])
            return None if gi is None else _table_output_grid(node, gi)
    if isinstance(node, PoolNode) and node.kind == "avg" and node.padding == (0, 0, 0, 0):
        gi = grids.get(node.inputs[0])
        if gi is not None and gi.qmax - gi.qmin + 1 < 256:
            # The mean of a coarse grid has finer resolution than the grid: keep it (256 levels over
            # the same range) instead of rounding it back onto the input grid.
            return Grid.from_range(gi.real_min, gi.real_max, f"average pool: 256 levels over {gi.origin}")
        return gi
    if isinstance(node, PoolNode | PadNode | ReshapeNode):
        return grids.get(node.inputs[0])
    if isinstance(node, ConcatNode):
        ins = [grids.get(t) for t in node.inputs]
        if any(g is None for g in ins):
            return None
        if all(g == ins[0] for g in ins):
            return ins[0]
        lo = min(g.real_min for g in ins)  # type: ignore[union-attr]
        hi = max(g.real_max for g in ins)  # type: ignore[union-attr]
        return Grid.from_range(lo, hi, "union of the concatenated inputs' ranges")
    if isinstance(node, COMPUTED):
        table = _table_reader(graph, node.output)
        if table is not None:
            return _lut_input_grid(graph, node.output, table)
        return _calibrated(graph, node.output)
    raise UnsupportedModelError(f"layer '{node.name}': no grid rule for {type(node).__name__}")


def _walk(graph: Graph, options: GridOptions) -> tuple[dict[str, Grid], list[tuple[str, str]]]:
    grids: dict[str, Grid] = {}
    missing: list[tuple[str, str]] = []
    for node in graph.nodes:
        grid = _grid_for(graph, node, grids, options)
        if grid is None:
            # Grid-inheriting nodes miss only because an upstream tensor does: list the root only.
            if isinstance(node, COMPUTED):
                missing.append((node.output, graph.tensors[node.output].source))
        else:
            grids[node.output] = grid
    return grids, missing


def tensors_needing_calibration(graph: Graph, options: GridOptions) -> list[tuple[str, str]]:
    """(tensor, source layer) pairs whose grid must come from calibration data."""
    return _walk(graph, options)[1]


def tensors_improved_by_calibration(graph: Graph, options: GridOptions) -> list[tuple[str, str]]:
    """Tensors with a default grid that calibration makes finer: table inputs, and a model input no
    quantizer or --input-range states."""
    improved = [
        (n.output, graph.tensors[n.output].source)
        for n in graph.nodes
        if isinstance(n, COMPUTED) and _table_reader(graph, n.output)
    ]
    inputs = [n for n in graph.nodes[:len(graph.inputs)] if isinstance(n, InputNode)]
    if options.input_range is None:
        improved[:0] = [(n.output, "model input") for n in inputs if n.grid is None]
    return improved


def table_inputs(graph: Graph) -> set[str]:
    """Tensors read only by tables (their grid is clipped where the function saturates)."""
    return {n.output for n in graph.nodes if _table_reader(graph, n.output)}


def assign_grids(graph: Graph, options: GridOptions) -> Graph:
    grids, missing = _walk(graph, options)
    if missing:
        raise CalibrationNeededError(missing)
    tensors = {name: replace(info, grid=grids[name]) for name, info in graph.tensors.items() if name in grids}
    return replace(graph, tensors=tensors)
