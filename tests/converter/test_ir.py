"""converter/ir.py: int8 grids from quantizer levels and from ranges, and the Graph's small queries
(consumers, producer, rename_input) the passes are built on."""

from __future__ import annotations

import numpy as np
import pytest

from tinyrobust.converter.ir import (
    Activation,
    ActivationNode,
    AddNode,
    Graph,
    Grid,
    IdentityNode,
    InputNode,
    TensorInfo,
    rename_input,
)
from tinyrobust.errors import UnsupportedModelError

# ---------------------------------------------------------------- Grid.wide


@pytest.mark.parametrize(("lo", "hi", "zero_point", "real_min", "real_max"), [
    (-1.5, 3.0, 0, -3.0 * 32768 / 32767, 3.0),  # negative values: symmetric, CMSIS-NN's s16
    (0.0, 3.0, -32768, 0.0, 3.0),  # a ReLU's output: every code on [0, hi]
    (0.5, 3.0, -32768, 0.0, 3.0),  # zero joins the range
])
def test_wide_grid_spends_every_code_on_the_range(lo: float, hi: float, zero_point: int, real_min: float,
                                                   real_max: float) -> None:
    g = Grid.wide(lo, hi, "test")
    assert (g.zero_point, g.qmin, g.qmax, g.bits) == (zero_point, -32768, 32767, 16)
    assert (g.real_min, g.real_max) == (pytest.approx(real_min), pytest.approx(real_max))
    assert g.scale == pytest.approx(3.0 / (65535 if zero_point else 32767))


# ---------------------------------------------------------------- Grid.from_levels


@pytest.mark.parametrize(
    "lowest,step,count,zero_point",
    [
        (0.0, 0.25, 16, -128),  # a 4-bit quantized_relu: zero is the lowest level
        (-1.0, 0.5, 5, -126),  # symmetric: zero is the third level
        (-127 / 64, 1 / 64, 255, -1),  # 8-bit symmetric quantized_bits
        (-2.0, 1 / 64, 256, 0),  # 8-bit asymmetric: zero at q = 0
    ],
)
def test_from_levels_puts_every_level_and_zero_on_the_grid(lowest: float, step: float, count: int,
                                                            zero_point: int) -> None:
    """Level k (k = 0..count−1) is q = −128 + k, and real 0 is exactly q = zero_point."""
    g = Grid.from_levels(lowest, step, count, "test")
    assert (g.scale, g.zero_point, g.qmin, g.qmax) == (step, zero_point, -128, -128 + count - 1)
    q = np.arange(g.qmin, g.qmax + 1)
    np.testing.assert_allclose(g.scale * (q - g.zero_point), lowest + step * np.arange(count), atol=1e-12)
    assert g.qmin <= g.zero_point <= g.qmax
    assert g.origin == "test"


@pytest.mark.parametrize("count", [1, 257, 1000])
def test_from_levels_refuses_a_count_int8_cannot_hold(count: int) -> None:
    with pytest.raises(UnsupportedModelError, match=f"q8: {count} levels do not fit int8"):
        Grid.from_levels(0.0, 0.1, count, "q8")


def test_from_levels_accepts_the_full_256() -> None:
    assert Grid.from_levels(-1.0, 1 / 128, 256, "q").qmax == 127


@pytest.mark.parametrize("lowest,step", [(0.05, 0.1), (-0.25, 0.1), (0.5, 1.0)])
def test_from_levels_refuses_zero_between_two_levels(lowest: float, step: float) -> None:
    """Zero half-way (or any fraction) between lattice points cannot be a zero point."""
    with pytest.raises(UnsupportedModelError, match="zero is not on the grid"):
        Grid.from_levels(lowest, step, 8, "half")


def test_from_levels_refuses_zero_below_the_lowest_level() -> None:
    """Levels 1, 2, 3, 4: zero is on the lattice but below q = −128."""
    with pytest.raises(UnsupportedModelError, match="zero point -129 outside int8"):
        Grid.from_levels(1.0, 1.0, 4, "positive")


@pytest.mark.parametrize("lowest", [-10.0, -300.0])
def test_from_levels_refuses_zero_above_the_top_level(lowest: float) -> None:
    with pytest.raises(UnsupportedModelError):
        Grid.from_levels(lowest, 1.0, 4, "negative")


# ---------------------------------------------------------------- Grid.from_range


@pytest.mark.parametrize("lo,hi", [(-0.3, 2.0), (0.0, 1.0), (-5.0, 5.0), (-1e-3, 7.5), (-3.0, -2.0), (2.0, 3.0)])
def test_from_range_covers_the_range_and_zero_exactly(lo: float, hi: float) -> None:
    """256 levels; [lo, hi] ∪ {0} covered to within half a step (zero is nudged onto a level), and
    q = zero_point means exactly real 0."""
    g = Grid.from_range(lo, hi, "cal")
    want_lo, want_hi = min(lo, 0.0), max(hi, 0.0)
    assert (g.qmin, g.qmax) == (-128, 127)
    assert g.scale == pytest.approx((want_hi - want_lo) / 255)
    assert g.qmin <= g.zero_point <= g.qmax
    assert g.real_min <= want_lo + g.scale / 2 + 1e-12
    assert g.real_max >= want_hi - g.scale / 2 - 1e-12
    assert g.real_max - g.real_min == pytest.approx(want_hi - want_lo)
    assert isinstance(g.zero_point, int)


def test_from_range_of_one_sign_keeps_zero_at_the_edge() -> None:
    assert Grid.from_range(2.0, 3.0, "pos").zero_point == -128  # [0, 3]
    assert Grid.from_range(-3.0, -2.0, "neg").zero_point == 127  # [-3, 0]


def test_from_range_zero_point_by_hand() -> None:
    """[-1, 3]: scale 4/255, zero at −128 + 1/scale = −128 + 63.75 → −64."""
    g = Grid.from_range(-1.0, 3.0, "hand")
    assert g.scale == pytest.approx(4 / 255)
    assert g.zero_point == -64


@pytest.mark.parametrize("value", [0.0, 2.5, -4.0])
def test_from_range_of_a_degenerate_range_is_still_a_grid(value: float) -> None:
    """lo == hi: a positive scale (never a division by zero), zero on the grid, the value covered."""
    g = Grid.from_range(value, value, "flat")
    assert g.scale > 0 and np.isfinite(g.scale)
    assert g.qmin <= g.zero_point <= g.qmax
    assert g.real_min - g.scale / 2 <= min(value, 0.0) and max(value, 0.0) <= g.real_max + g.scale / 2


def test_real_min_and_real_max() -> None:
    g = Grid(0.5, -3, -10, 20, "hand")
    assert g.real_min == 0.5 * (-10 + 3)
    assert g.real_max == 0.5 * (20 + 3)


# ---------------------------------------------------------------- Graph


def _graph() -> Graph:
    """x → a (identity) → b (relu); a and x → s (add); s is the output."""
    nodes = (
        InputNode("x", "x"),
        IdentityNode("a", ("x",), "a"),
        ActivationNode("b", ("a",), "b", Activation("relu")),
        AddNode("s", ("b", "x"), "s"),
    )
    tensors = {t: TensorInfo(t, (4,), t) for t in ("x", "a", "b", "s")}
    return Graph(nodes, tensors, ("x",), ("s",), "g")


def test_consumers_lists_every_reader_in_order() -> None:
    g = _graph()
    assert [n.name for n in g.consumers("x")] == ["a", "s"]
    assert [n.name for n in g.consumers("a")] == ["b"]
    assert g.consumers("s") == []
    assert g.consumers("nowhere") == []


def test_producer_finds_the_writer_or_raises() -> None:
    g = _graph()
    assert g.producer("x") is g.nodes[0]
    assert g.producer("b").name == "b"
    with pytest.raises(KeyError, match="missing"):
        g.producer("missing")


def test_with_note_appends_without_touching_the_original() -> None:
    g = _graph()
    g2 = g.with_note("one").with_note("two")
    assert g2.notes == ("one", "two") and g.notes == ()
    assert g2.nodes is g.nodes


def test_rename_input_replaces_every_occurrence_only() -> None:
    add = AddNode("s", ("x", "x"), "s")
    renamed = rename_input(add, "x", "y")
    assert renamed.inputs == ("y", "y") and renamed.output == "s"
    assert add.inputs == ("x", "x")  # frozen: a new node
    other = AddNode("t", ("p", "q"), "t")
    assert rename_input(other, "x", "y") == other


def test_rename_input_leaves_an_input_node_alone() -> None:
    node = InputNode("x", "x")
    assert rename_input(node, "x", "y") is node
