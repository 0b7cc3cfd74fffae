"""passes/grids.py on hand-built graphs: every tensor gets an int8 grid, from the model (input and
activation quantizers), from sigmoid/tanh ranges, from grid-preserving ops, or from calibration; a
tensor that needs calibration without it is an error naming only the root tensor."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tinyrobust.converter.calibration import CalibrationRange
from tinyrobust.converter.ir import (
    Activation,
    ActivationNode,
    AddNode,
    BatchNormNode,
    ConcatNode,
    ConvNode,
    Graph,
    Grid,
    IdentityNode,
    InputNode,
    MulNode,
    Node,
    PadNode,
    PoolNode,
    ReshapeNode,
    TensorInfo,
    WeightTensor,
)
from tinyrobust.converter.passes.grids import (
    SIGMOID_INPUT,
    SIGMOID_OUTPUT,
    TANH_INPUT,
    TANH_OUTPUT,
    CalibrationNeededError,
    GridOptions,
    absorb_input_quantizer,
    assign_grids,
    tensors_improved_by_calibration,
    tensors_needing_calibration,
)
from tinyrobust.errors import UnsupportedModelError

Q4 = Grid.from_levels(0.0, 0.25, 16, "quantized_relu(4,2)")  # [0, 3.75], 16 levels
Q8 = Grid.from_levels(-1.0, 1 / 128, 256, "quantized_bits(8,0)")
OPTS = GridOptions(input_range=(0.0, 1.0))
LINEAR = Activation("linear")


def _conv(name: str, inp: str, activation: Activation = LINEAR) -> ConvNode:
    w = WeightTensor(np.ones((1, 1, 2, 2)), "ternary", "ternary")
    return ConvNode(name, (inp,), name, "conv2d", w, np.ones(2), np.zeros(2), activation=activation)


def _act(name: str, inp: str, kind: str, grid: Grid | None = None) -> ActivationNode:
    return ActivationNode(name, (inp,), name, Activation(kind, grid))  # type: ignore[arg-type]


def _graph(nodes: list[Node], calibration: dict[str, tuple[float, float]] | None = None,
           output: str | None = None) -> Graph:
    tensors = {n.output: TensorInfo(n.output, (2, 2, 2), f"keras {n.name}") for n in nodes}
    ranges = {t: CalibrationRange(lo, hi, "test") for t, (lo, hi) in (calibration or {}).items()}
    return Graph(tuple(nodes), tensors, ("x",), (output or nodes[-1].output,), "g", ranges)


def _grids(graph: Graph, options: GridOptions = OPTS) -> dict[str, Grid]:
    out = assign_grids(graph, options)
    grids = {t: info.grid for t, info in out.tensors.items()}
    assert all(g is not None for g in grids.values())
    return grids  # type: ignore[return-value]


# ---------------------------------------------------------------- stated by the model


def test_input_grid_from_the_input_range_option() -> None:
    g = _grids(_graph([InputNode("x", "x")]), GridOptions(input_range=(-1.0, 3.0)))["x"]
    assert g == Grid.from_range(-1.0, 3.0, g.origin) and "input range" in g.origin


def test_input_quantizer_is_absorbed_into_the_input_grid() -> None:
    """input → quantizer activation → conv: the quantizer node goes; its grid is the input's."""
    graph = _graph([InputNode("x", "x"), _act("q_in", "x", "quantized", Q8), _conv("c", "q_in", Activation(
        "quantized", Q4))])
    out = absorb_input_quantizer(graph)
    assert [n.name for n in out.nodes] == ["x", "c"] and out.nodes[1].inputs == ("x",)
    x = out.nodes[0]
    assert isinstance(x, InputNode) and x.grid is not None
    assert (x.grid.scale, x.grid.zero_point, x.grid.qmin, x.grid.qmax) == (Q8.scale, Q8.zero_point, Q8.qmin, Q8.qmax)
    assert "input quantizer of 'q_in'" in x.grid.origin
    grids = _grids(out, GridOptions(input_range=(0.0, 255.0)))  # the stated grid wins over the option
    assert grids["x"] == x.grid


def test_each_input_keeps_its_own_quantizer_and_an_unstated_one_is_calibrated() -> None:
    """Two inputs, each behind its own quantizer, and a third with none: each absorbed grid is its own
    quantizer's; only the third is a tensor calibration improves."""
    nodes: list[Node] = [InputNode("x", "x"), InputNode("y", "y"), InputNode("z", "z"),
                         _act("qx", "x", "quantized", Q8), _act("qy", "y", "quantized", Q4),
                         ConcatNode("cat", ("qx", "qy", "z"), "cat")]
    graph = replace(_graph(nodes), inputs=("x", "y", "z"))
    out = absorb_input_quantizer(graph)
    assert [n.name for n in out.nodes] == ["x", "y", "z", "cat"] and out.nodes[3].inputs == ("x", "y", "z")
    x, y, z = out.nodes[:3]
    assert isinstance(x, InputNode) and isinstance(y, InputNode) and isinstance(z, InputNode)
    assert (x.grid.scale, y.grid.scale, z.grid) == (Q8.scale, Q4.scale, None)  # type: ignore[union-attr]
    assert tensors_improved_by_calibration(out, GridOptions()) == [("z", "model input")]
    assert tensors_improved_by_calibration(out, GridOptions(input_range=(0.0, 1.0))) == []


def test_a_non_quantizer_after_the_input_is_not_absorbed() -> None:
    graph = _graph([InputNode("x", "x"), _act("r", "x", "relu"), _conv("c", "r", Activation("quantized", Q4))])
    assert absorb_input_quantizer(graph) is graph


def test_quantized_activations_give_their_grid() -> None:
    """Fused into a conv, an add or a multiply, or as a node of its own."""
    graph = _graph([InputNode("x", "x"), _conv("c1", "x", Activation("quantized", Q4)),
                    _conv("c2", "x", Activation("quantized", Q8)),
                    AddNode("s", ("c1", "c2"), "s", Activation("quantized", Q8)), _act("q", "s", "quantized", Q4),
                    MulNode("m", ("q", "c1"), "m", Activation("quantized", Q8))])
    grids = _grids(graph)
    assert (grids["c1"], grids["c2"], grids["s"], grids["q"], grids["m"]) == (Q4, Q8, Q8, Q4, Q8)


# ---------------------------------------------------------------- sigmoid and tanh


@pytest.mark.parametrize("kind,table_in,table_out", [("sigmoid", SIGMOID_INPUT, SIGMOID_OUTPUT),
                                                     ("tanh", TANH_INPUT, TANH_OUTPUT)])
def test_table_grids_without_calibration(kind: str, table_in: Grid, table_out: Grid) -> None:
    """A linear conv read only by the table gets the default input range; the table output its range."""
    grids = _grids(_graph([InputNode("x", "x"), _conv("c", "x"), _act("t", "c", kind)]))
    assert grids["c"] == table_in and grids["t"] == table_out


def test_table_grid_constants() -> None:
    """sigmoid [0, 1) and tanh [−1, 1) outputs; inputs ±8 and ±4, zero at q = 0."""
    assert (SIGMOID_OUTPUT.real_min, SIGMOID_OUTPUT.real_max) == (0.0, 255 / 256)
    assert (TANH_OUTPUT.real_min, TANH_OUTPUT.real_max) == (-1.0, 127 / 128)
    assert (SIGMOID_INPUT.real_min, SIGMOID_INPUT.real_max) == (-8.0, 8.0 - 1 / 16)
    assert (TANH_INPUT.real_min, TANH_INPUT.real_max) == (-4.0, 4.0 - 1 / 32)


@pytest.mark.parametrize("kind,cal,lo,hi", [("sigmoid", (-20.0, 3.0), -8.0, 3.0),
                                            ("tanh", (-1.0, 10.0), -1.0, 4.0),
                                            ("tanh", (-0.5, 0.5), -0.5, 0.5)])
def test_calibration_narrows_a_table_input(kind: str, cal: tuple[float, float], lo: float, hi: float) -> None:
    """The calibrated range, clipped where the function saturates: finer steps than the default."""
    grids = _grids(_graph([InputNode("x", "x"), _conv("c", "x"), _act("t", "c", kind)], {"c": cal}))
    assert grids["c"].scale == pytest.approx((hi - lo) / 255)
    assert grids["c"].real_min == pytest.approx(lo, abs=grids["c"].scale)
    assert grids["c"].real_max == pytest.approx(hi, abs=grids["c"].scale)
    assert grids["c"].scale < (SIGMOID_INPUT if kind == "sigmoid" else TANH_INPUT).scale


def test_table_after_an_add_and_after_a_batchnorm() -> None:
    graph = _graph([InputNode("x", "x"), _conv("c", "x", Activation("quantized", Q4)),
                    AddNode("s", ("c", "c"), "s"), _act("t", "s", "tanh"),
                    BatchNormNode("bn", ("t",), "bn", np.ones(2), np.zeros(2)), _act("sg", "bn", "sigmoid")])
    grids = _grids(graph)
    assert grids["s"] == TANH_INPUT and grids["bn"] == SIGMOID_INPUT


def test_improved_by_calibration_lists_table_inputs_only() -> None:
    """c1 feeds only sigmoids (improvable); c2 feeds a sigmoid and a relu; c3 a sigmoid and a tanh;
    c4 nothing but a quantizer."""
    graph = _graph([
        InputNode("x", "x"),
        _conv("c1", "x"), _act("s1", "c1", "sigmoid"), _act("s1b", "c1", "sigmoid"),
        _conv("c2", "x"), _act("s2", "c2", "sigmoid"), _act("r2", "c2", "relu"),
        _conv("c3", "x"), _act("s3", "c3", "sigmoid"), _act("t3", "c3", "tanh"),
        _conv("c4", "x"), _act("q4", "c4", "quantized", Q4),
    ])
    assert tensors_improved_by_calibration(graph, OPTS) == [("c1", "keras c1")]


# ---------------------------------------------------------------- inherited grids


def test_grid_preserving_ops_inherit() -> None:
    """relu, max pool, padded average pool, pad and reshape keep their input's grid."""
    graph = _graph([
        InputNode("x", "x"), _conv("c", "x", Activation("quantized", Q8)),
        _act("r", "c", "relu"),
        PoolNode("mp", ("r",), "mp", "max", (2, 2), (2, 2), (0, 0, 0, 0)),
        PoolNode("ap", ("mp",), "ap", "avg", (2, 2), (1, 1), (0, 0, 1, 1)),
        PadNode("pd", ("ap",), "pd", (1, 1, 1, 1)),
        ReshapeNode("fl", ("pd",), "fl"),
    ])
    grids = _grids(graph)
    assert all(grids[t] == Q8 for t in ("r", "mp", "ap", "pd", "fl"))


def test_average_pool_over_a_coarse_grid_gets_256_levels() -> None:
    """An unpadded average of a 16-level grid: the mean has finer resolution, so 256 levels over the
    same range; over a 256-level grid it just inherits."""
    graph = _graph([
        InputNode("x", "x"), _conv("c", "x", Activation("quantized", Q4)),
        PoolNode("gap", ("c",), "gap", "avg", (2, 2), (2, 2), (0, 0, 0, 0), True),
        _conv("c8", "x", Activation("quantized", Q8)),
        PoolNode("ap8", ("c8",), "ap8", "avg", (2, 2), (2, 2), (0, 0, 0, 0)),
    ])
    grids = _grids(graph)
    fine = grids["gap"]
    assert (fine.qmin, fine.qmax) == (-128, 127)
    assert fine.real_min == pytest.approx(Q4.real_min) and fine.real_max == pytest.approx(Q4.real_max)
    assert fine.scale == pytest.approx(Q4.scale * 15 / 255)
    assert grids["ap8"] == Q8


def test_concat_of_equal_grids_keeps_it() -> None:
    graph = _graph([InputNode("x", "x"), _conv("a", "x", Activation("quantized", Q4)),
                    _conv("b", "x", Activation("quantized", Q4)), ConcatNode("cat", ("a", "b"), "cat")])
    assert _grids(graph)["cat"] == Q4


def test_concat_of_different_grids_gets_the_union_range() -> None:
    """[0, 3.75] ∪ [−1, 127/128] → a 256-level grid over [−1, 3.75]."""
    graph = _graph([InputNode("x", "x"), _conv("a", "x", Activation("quantized", Q4)),
                    _conv("b", "x", Activation("quantized", Q8)), ConcatNode("cat", ("a", "b"), "cat")])
    cat = _grids(graph)["cat"]
    assert cat.scale == pytest.approx((3.75 + 1.0) / 255)
    assert cat.real_min == pytest.approx(-1.0, abs=cat.scale / 2)
    assert cat.real_max == pytest.approx(3.75, abs=cat.scale / 2)
    assert "union" in cat.origin


# ---------------------------------------------------------------- calibration


def test_calibration_gives_a_linear_conv_its_grid() -> None:
    grids = _grids(_graph([InputNode("x", "x"), _conv("c", "x")], {"c": (-2.0, 6.0)}))
    assert grids["c"].scale == pytest.approx(8 / 255) and "calibration" in grids["c"].origin


def test_missing_calibration_names_only_the_root_tensor() -> None:
    """The linear conv 'c' has no grid; the pool, relu, reshape and concat after it inherit its
    absence, so only 'c' is named (with its Keras layer). A second linear conv 'd' and the multiply 'm'
    after it compute new ranges: roots too."""
    graph = _graph([
        InputNode("x", "x"), _conv("c", "x"),
        PoolNode("mp", ("c",), "mp", "max", (2, 2), (2, 2), (0, 0, 0, 0)),
        _act("r", "mp", "relu"), ReshapeNode("fl", ("r",), "fl"),
        _conv("q", "x", Activation("quantized", Q4)), ConcatNode("cat", ("fl", "q"), "cat"),
        _conv("d", "cat"), MulNode("m", ("d", "d"), "m"),
    ])
    roots = [("c", "keras c"), ("d", "keras d"), ("m", "keras m")]
    assert tensors_needing_calibration(graph, OPTS) == roots
    with pytest.raises(CalibrationNeededError) as info:
        assign_grids(graph, OPTS)
    assert info.value.tensors == roots
    message = str(info.value)
    assert "'c' (from keras c)" in message and "'d' (from keras d)" in message and "--calibration" in message
    for inherited in ("'mp'", "'r'", "'fl'", "'cat'"):
        assert inherited not in message
    assert isinstance(info.value, UnsupportedModelError)


def test_with_calibration_nothing_is_missing() -> None:
    graph = _graph([InputNode("x", "x"), _conv("c", "x"), _act("r", "c", "relu")], {"c": (-1.0, 1.0)})
    assert tensors_needing_calibration(graph, OPTS) == []
    grids = _grids(graph)
    assert grids["r"] == grids["c"]


def test_a_node_without_a_grid_rule_is_refused() -> None:
    """An identity must have been removed by the structural passes."""
    graph = _graph([InputNode("x", "x"), IdentityNode("drop", ("x",), "drop")])
    with pytest.raises(UnsupportedModelError, match="layer 'drop': no grid rule for IdentityNode"):
        assign_grids(graph, OPTS)


def test_an_unstated_input_grid_comes_from_calibration_unless_the_option_states_it() -> None:
    """No input quantizer: --input-range wins; else the calibration data's range; else [0, 1]."""
    nodes: list[Node] = [InputNode("x", "x")]
    calibrated = _grids(_graph(nodes, {"x": (-3.0, 4.0)}), GridOptions())["x"]
    assert calibrated.real_min == pytest.approx(-3.0, abs=0.02) and calibrated.real_max == pytest.approx(4.0, abs=0.02)
    assert "calibration" in calibrated.origin
    stated = _grids(_graph(nodes, {"x": (-3.0, 4.0)}), GridOptions(input_range=(0.0, 2.0)))["x"]
    assert stated.real_max == pytest.approx(2.0) and "--input-range" in stated.origin
    default = _grids(_graph(nodes), GridOptions())["x"]
    assert default.real_max == pytest.approx(1.0) and "default input range" in default.origin
    assert tensors_improved_by_calibration(_graph(nodes), GridOptions()) == [("x", "model input")]
    assert tensors_improved_by_calibration(_graph(nodes), GridOptions(input_range=(0.0, 1.0))) == []
