"""passes/widths.py on hand-built graphs: which nodes may run on int16, the int16 grids they get, how
their width carries through views, pools and relus, the conversions inserted where widths meet, and the
model's outputs (int16, or converted back to their int8 grid)."""

from __future__ import annotations

import numpy as np
import pytest

from tinyrobust.converter.calibration import CalibrationRange
from tinyrobust.converter.ir import (
    Activation,
    ActivationNode,
    AddNode,
    ConvNode,
    Graph,
    Grid,
    InputNode,
    MulNode,
    Node,
    PoolNode,
    ReshapeNode,
    TensorInfo,
    WeightTensor,
)
from tinyrobust.converter.passes import run_widths, widenable_nodes
from tinyrobust.converter.passes.grids import GridOptions, assign_grids
from tinyrobust.converter.passes.widths import counterpart
from tinyrobust.converter.pipeline import choose_wide_nodes

Q4 = Grid.from_levels(0.0, 0.25, 16, "quantized_relu(4,2)")


LINEAR = Activation("linear")


def _conv(name: str, inp: str, activation: Activation = LINEAR) -> ConvNode:
    w = WeightTensor(np.ones((1, 1, 2, 2)), "ternary", "ternary")
    return ConvNode(name, (inp,), name, "conv2d", w, np.ones(2), np.zeros(2), activation=activation)


def _graph(nodes: list[Node], shapes: dict[str, tuple[int, ...]] | None = None, outputs: tuple[str, ...] = ()) -> Graph:
    """Every computed tensor calibrated to [-2, 3] (extremes [-4, 6]); int8 grids assigned."""
    shapes = shapes or {}
    tensors = {n.output: TensorInfo(n.output, shapes.get(n.output, (4, 4, 2)), f"keras {n.name}") for n in nodes}
    ranges = {n.output: CalibrationRange(-2.0, 3.0, "test", (-4.0, 6.0)) for n in nodes
              if not isinstance(n, InputNode)}
    graph = Graph(tuple(nodes), tensors, ("x",), outputs or (nodes[-1].output,), "g", ranges)
    return assign_grids(graph, GridOptions(input_range=(0.0, 1.0)))


def _bits(graph: Graph) -> dict[str, int]:
    return {t: info.grid.bits for t, info in graph.tensors.items()}  # type: ignore[union-attr]


def _chain() -> Graph:
    """x → conv a → conv b → flatten → conv c (the output)."""
    return _graph([InputNode("x", "x"), _conv("a", "x"), _conv("b", "a"), ReshapeNode("flat", ("b",), "flat"),
                   _conv("c", "flat")], {"flat": (32,)})


def test_fast_changes_nothing() -> None:
    graph = _chain()
    assert run_widths(graph, frozenset(), int16_outputs=True) is graph


def test_exact_widens_every_calibrated_tensor_and_converts_the_input() -> None:
    graph = _chain()
    assert widenable_nodes(graph) == ["a", "b", "c"]
    out = run_widths(graph, frozenset(widenable_nodes(graph)), int16_outputs=True)
    bits = _bits(out)
    assert bits == {"x": 8, "x:int16": 16, "a": 16, "b": 16, "flat": 16, "c": 16}
    assert [n.name for n in out.nodes] == ["x", "x_to_int16", "a", "b", "flat", "c"]
    assert out.nodes[2].inputs == ("x:int16",)
    # the int16 grid spans the calibration samples' extremes, zero point 0 (CMSIS-NN s16)
    a = out.tensors["a"].grid
    assert a is not None and (a.zero_point, a.qmin, a.qmax) == (0, -32768, 32767)
    assert a.scale == pytest.approx(6.0 / 32767)
    assert counterpart("x:int16") == "x" and counterpart("a") == "a"
    # the input's int8 levels sit exactly on its int16 copy's grid
    x, x16 = graph.tensors["x"].grid, out.tensors["x:int16"].grid
    assert x is not None and x16 is not None and x16.zero_point == 0 and x16.scale * 128 == pytest.approx(x.scale)


def test_an_int8_output_gets_its_int8_grid_back_through_a_conversion() -> None:
    graph = _chain()
    out = run_widths(graph, frozenset(widenable_nodes(graph)), int16_outputs=False)
    assert out.outputs == ("c",)
    assert out.tensors["c"].grid == graph.tensors["c"].grid  # the int8 grid it had
    assert out.tensors["c:int16"].grid.bits == 16  # type: ignore[union-attr]
    last = out.nodes[-1]
    assert isinstance(last, ActivationNode) and last.inputs == ("c:int16",) and last.output == "c"


def test_a_quantizer_grid_stays_int8_and_its_wide_consumer_converts_it() -> None:
    """conv q states its grid (quantized_relu): never widened; conv w after it reads a widened copy."""
    graph = _graph([InputNode("x", "x"), _conv("q", "x", Activation("quantized", Q4)), _conv("w", "q")])
    assert widenable_nodes(graph) == ["w"]
    out = run_widths(graph, frozenset({"w"}), int16_outputs=True)
    assert _bits(out)["q"] == 8 and _bits(out)["w"] == 16
    conv = next(n for n in out.nodes if n.name == "w")
    assert conv.inputs == ("q:int16",)


def test_int8_only_consumers_read_a_narrowed_copy_on_the_int8_grid() -> None:
    """Mul has no int16 kernel: a wide conv feeding it is converted back to its own int8 grid, once for
    both of Mul's inputs."""
    nodes: list[Node] = [InputNode("x", "x"), _conv("a", "x"), MulNode("m", ("a", "a"), "m")]
    graph = _graph(nodes)
    assert widenable_nodes(graph) == ["a"]  # Mul is computed but has no int16 kernel
    out = run_widths(graph, frozenset({"a"}), int16_outputs=True)
    mul = next(n for n in out.nodes if n.name == "m")
    assert mul.inputs == ("a:int8", "a:int8")
    assert out.tensors["a:int8"].grid == graph.tensors["a"].grid
    assert sum(1 for n in out.nodes if n.name == "a_to_int8") == 1


def test_width_carries_through_pools_and_relus_and_an_add_converts_a_narrow_side() -> None:
    nodes: list[Node] = [InputNode("x", "x"), _conv("a", "x"), ActivationNode("r", ("a",), "r", Activation("relu")),
                         PoolNode("p", ("r",), "p", "max", (2, 2), (2, 2), (0, 0, 0, 0)), _conv("n", "x"),
                         PoolNode("pn", ("n",), "pn", "max", (2, 2), (2, 2), (0, 0, 0, 0)),
                         AddNode("s", ("p", "pn"), "s")]
    graph = _graph(nodes, {"p": (2, 2, 2), "pn": (2, 2, 2), "s": (2, 2, 2)})
    out = run_widths(graph, frozenset({"a", "s"}), int16_outputs=True)
    bits = _bits(out)
    assert (bits["r"], bits["p"], bits["n"], bits["pn"], bits["s"]) == (16, 16, 8, 8, 16)
    add = next(n for n in out.nodes if n.name == "s")
    assert add.inputs == ("p", "pn:int16")


def test_balanced_widens_only_tensors_no_larger_than_the_largest_int8_one() -> None:
    """a: 4·4·2 = 32 values (the largest); b: 16 (an int16 b is no larger than an int8 a); c: 32."""
    graph = _graph([InputNode("x", "x"), _conv("a", "x"), _conv("b", "a"), _conv("c", "b")],
                   {"x": (4, 4, 2), "a": (4, 4, 2), "b": (2, 2, 4), "c": (4, 4, 2)})
    assert choose_wide_nodes(graph, "balanced") == {"b"}
    assert choose_wide_nodes(graph, "exact") == {"a", "b", "c"}
    assert choose_wide_nodes(graph, "fast") == set()
