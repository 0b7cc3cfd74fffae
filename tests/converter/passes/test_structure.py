"""passes/structure.py on hand-built graphs: identities and linear activations removed, the final
softmax dropped with a note (refused anywhere else), ZeroPadding2D folded into the padding of the conv
or depthwise that reads it, and nowhere else."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tinyrobust.converter.ir import (
    Activation,
    ActivationNode,
    ConvNode,
    Graph,
    IdentityNode,
    InputNode,
    Node,
    PadNode,
    PoolNode,
    TensorInfo,
    WeightTensor,
)
from tinyrobust.converter.passes.structure import (
    drop_final_softmax,
    dropped_final_softmax,
    fold_zero_padding,
    remove_identities,
)
from tinyrobust.errors import UnsupportedModelError


def _graph(nodes: list[Node], shapes: dict[str, tuple[int, ...]], output: str | None = None) -> Graph:
    tensors = {t: TensorInfo(t, s, f"layer {t}") for t, s in shapes.items()}
    return Graph(tuple(nodes), tensors, ("x",), (output or nodes[-1].output,), "g")


def _conv(name: str, inp: str, kind: str = "conv2d", padding: tuple[int, int, int, int] = (0, 0, 0, 0)) -> ConvNode:
    shape = (3, 3, 2, 2) if kind == "conv2d" else (3, 3, 2, 1) if kind == "depthwise" else (8, 2)
    w = WeightTensor(np.ones(shape), "ternary", "ternary")
    return ConvNode(name, (inp,), name, kind, w, np.ones(2), np.zeros(2), padding=padding)  # type: ignore[arg-type]


def _names(graph: Graph) -> list[str]:
    return [n.name for n in graph.nodes]


# ---------------------------------------------------------------- remove_identities


def test_identities_and_linear_activations_are_removed_and_readers_rewired() -> None:
    """x → drop (Dropout) → lin (linear) → c (conv) → r (relu): only x, c, r remain, c reads x."""
    g = _graph(
        [InputNode("x", "x"), IdentityNode("drop", ("x",), "drop"),
         ActivationNode("lin", ("drop",), "lin", Activation("linear")), _conv("c", "lin"),
         ActivationNode("r", ("c",), "r", Activation("relu"))],
        {"x": (4, 4, 2), "drop": (4, 4, 2), "lin": (4, 4, 2), "c": (2, 2, 2), "r": (2, 2, 2)},
    )
    out = remove_identities(g)
    assert _names(out) == ["x", "c", "r"]
    assert out.producer("c").inputs == ("x",)
    assert set(out.tensors) == {"x", "c", "r"}
    assert out.output == "r"
    assert _names(g) == ["x", "drop", "lin", "c", "r"]  # the pass is pure


def test_an_identity_at_the_output_moves_the_output() -> None:
    g = _graph([InputNode("x", "x"), _conv("c", "x"), IdentityNode("drop", ("c",), "drop")],
               {"x": (4, 4, 2), "c": (2, 2, 2), "drop": (2, 2, 2)})
    out = remove_identities(g)
    assert out.output == "c" and _names(out) == ["x", "c"]


def test_a_graph_without_identities_is_unchanged() -> None:
    g = _graph([InputNode("x", "x"), _conv("c", "x"), ActivationNode("s", ("c",), "s", Activation("sigmoid"))],
               {"x": (4, 4, 2), "c": (2, 2, 2), "s": (2, 2, 2)})
    assert remove_identities(g) is g


# ---------------------------------------------------------------- drop_final_softmax


def test_final_softmax_is_dropped_with_a_note() -> None:
    g = _graph([InputNode("x", "x"), _conv("fc", "x", kind="dense"),
                ActivationNode("probs", ("fc",), "probs", Activation("softmax"))],
               {"x": (8,), "fc": (2,), "probs": (2,)})
    out = drop_final_softmax(g)
    assert _names(out) == ["x", "fc"]
    assert out.output == "fc" and "probs" not in out.tensors
    assert len(out.notes) == 1 and "'probs'" in out.notes[0] and "argmax" in out.notes[0]
    assert g.notes == () and dropped_final_softmax(g.notes) is None
    assert dropped_final_softmax(out.notes) == "probs"  # what validate --task auto reads back


def test_every_heads_final_softmax_is_dropped() -> None:
    g = _graph([InputNode("x", "x"), _conv("fa", "x", kind="dense"), _conv("fb", "x", kind="dense"),
                ActivationNode("pa", ("fa",), "pa", Activation("softmax")),
                ActivationNode("pb", ("fb",), "pb", Activation("softmax"))],
               {"x": (8,), "fa": (2,), "fb": (2,), "pa": (2,), "pb": (2,)})
    out = drop_final_softmax(replace(g, outputs=("pa", "pb")))
    assert out.outputs == ("fa", "fb") and _names(out) == ["x", "fa", "fb"] and len(out.notes) == 2


def test_a_softmax_output_beside_its_own_input_is_refused() -> None:
    g = _graph([InputNode("x", "x"), _conv("fc", "x", kind="dense"),
                ActivationNode("probs", ("fc",), "probs", Activation("softmax"))],
               {"x": (8,), "fc": (2,), "probs": (2,)})
    with pytest.raises(UnsupportedModelError, match="layer 'probs': the model outputs both this softmax and its input"):
        drop_final_softmax(replace(g, outputs=("fc", "probs")))


def test_softmax_before_the_output_is_refused_naming_the_layer() -> None:
    g = _graph([InputNode("x", "x"), _conv("fc", "x", kind="dense"),
                ActivationNode("mid_softmax", ("fc",), "sm", Activation("softmax")),
                ActivationNode("r", ("sm",), "r", Activation("relu"))],
               {"x": (8,), "fc": (2,), "sm": (2,), "r": (2,)})
    with pytest.raises(UnsupportedModelError, match="layer 'mid_softmax': softmax is only supported as the"):
        drop_final_softmax(g)


def test_no_softmax_no_note() -> None:
    g = _graph([InputNode("x", "x"), _conv("fc", "x", kind="dense")], {"x": (8,), "fc": (2,)})
    out = drop_final_softmax(g)
    assert out is g and out.notes == ()


# ---------------------------------------------------------------- fold_zero_padding


@pytest.mark.parametrize("kind", ["conv2d", "depthwise"])
def test_zero_padding_folds_into_the_following_conv(kind: str) -> None:
    """ZeroPadding2D (top 1, left 2, bottom 0, right 3) before a 'same' conv (1, 1, 1, 1): the conv
    reads the unpadded input with padding (2, 3, 1, 4); the pad node and its tensor are gone."""
    g = _graph([InputNode("x", "x"), PadNode("zp", ("x",), "zp", (1, 2, 0, 3)), _conv("c", "zp", kind, (1, 1, 1, 1))],
               {"x": (4, 4, 2), "zp": (5, 9, 2), "c": (5, 9, 2)})
    out = fold_zero_padding(g)
    assert _names(out) == ["x", "c"]
    conv = out.producer("c")
    assert isinstance(conv, ConvNode)
    assert conv.padding == (2, 3, 1, 4) and conv.inputs == ("x",) and conv.kind == kind
    assert "zp" not in out.tensors


def test_two_paddings_in_a_row_both_fold() -> None:
    g = _graph([InputNode("x", "x"), PadNode("p1", ("x",), "p1", (1, 0, 0, 0)),
                PadNode("p2", ("p1",), "p2", (0, 1, 0, 0)), _conv("c", "p2")],
               {"x": (4, 4, 2), "p1": (5, 4, 2), "p2": (5, 5, 2), "c": (3, 3, 2)})
    out = fold_zero_padding(g)
    # p2 folds first; then the conv reads p1, which folds too
    assert _names(out) == ["x", "c"]
    assert out.producer("c").padding == (1, 1, 0, 0) and out.producer("c").inputs == ("x",)
    assert set(out.tensors) == {"x", "c"}


def test_zero_padding_before_a_pool_is_kept() -> None:
    """A pool skips padded taps, so padding with real zeros must stay an explicit pad."""
    pool = PoolNode("mp", ("zp",), "mp", "max", (2, 2), (2, 2), (0, 0, 0, 0))
    g = _graph([InputNode("x", "x"), PadNode("zp", ("x",), "zp", (1, 1, 1, 1)), pool],
               {"x": (4, 4, 2), "zp": (6, 6, 2), "mp": (3, 3, 2)})
    out = fold_zero_padding(g)
    assert _names(out) == ["x", "zp", "mp"] and out.producer("mp").padding == (0, 0, 0, 0)


def test_zero_padding_read_twice_is_kept() -> None:
    g = _graph([InputNode("x", "x"), PadNode("zp", ("x",), "zp", (1, 1, 1, 1)), _conv("a", "zp"), _conv("b", "zp")],
               {"x": (4, 4, 2), "zp": (6, 6, 2), "a": (4, 4, 2), "b": (4, 4, 2)}, output="b")
    out = fold_zero_padding(g)
    assert _names(out) == ["x", "zp", "a", "b"]
    assert out.producer("a").padding == (0, 0, 0, 0) and out.producer("b").padding == (0, 0, 0, 0)


def test_zero_padding_at_the_output_is_kept() -> None:
    g = _graph([InputNode("x", "x"), PadNode("zp", ("x",), "zp", (1, 1, 1, 1))], {"x": (4, 4, 2), "zp": (6, 6, 2)})
    assert fold_zero_padding(g) is g
