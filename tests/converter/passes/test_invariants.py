"""passes/invariants.py: a valid graph passes every check; each check fires on a graph broken in
exactly its way, naming the pass that broke it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from tinyrobust.converter.ir import (
    Activation,
    ActivationNode,
    ConvNode,
    Graph,
    Grid,
    IdentityNode,
    InputNode,
    TensorInfo,
    WeightTensor,
)
from tinyrobust.converter.passes.invariants import InvariantError, check_graph
from tinyrobust.errors import InternalError

GRID = Grid(0.1, 0, -128, 127, "test")


def _weights(kind: str = "ternary", codes: list[int] | None = None, scale: list[float] | None = None) -> WeightTensor:
    codes_a = np.array(codes if codes is not None else [[1, -1], [0, 1]], np.int8).reshape(2, 2)
    scale_a = None if scale is None else np.array(scale)
    return WeightTensor(codes_a * 0.5, "ternary", kind, codes_a, scale_a)  # type: ignore[arg-type]


def _valid(weights: WeightTensor | None = None) -> Graph:
    """x → fc (factored dense, relu) → r (relu node): every tensor with a grid."""
    w = weights if weights is not None else _weights(scale=[0.5, 0.5])
    nodes = (
        InputNode("x", "x"),
        ConvNode("fc", ("x",), "fc", "dense", w, np.ones(2), np.zeros(2)),
        ActivationNode("r", ("fc",), "r", Activation("relu")),
    )
    tensors = {t: TensorInfo(t, (2,), t, GRID) for t in ("x", "fc", "r")}
    return Graph(nodes, tensors, ("x",), ("r",), "g")


def _fails(graph: Graph, match: str, quantized: bool = False) -> None:
    with pytest.raises(InvariantError, match=f"after pass 'the_pass': {match}"):
        check_graph(graph, "the_pass", quantized=quantized)


def test_a_valid_graph_passes_both_levels() -> None:
    g = _valid()
    check_graph(g, "p")
    check_graph(g, "p", quantized=True)
    fc = replace(g.nodes[1], weights=WeightTensor(np.full((2, 2), 0.3), "ternary", "ternary"))
    check_graph(replace(g, nodes=(g.nodes[0], fc, g.nodes[2])), "p")  # not factored yet: no codes to check


def test_invariant_error_is_an_internal_error() -> None:
    assert issubclass(InvariantError, InternalError)
    assert InvariantError.exit_code == 3


BREAKS: dict[str, tuple[Callable[[Graph], Graph], str]] = {
    "empty": (lambda g: replace(g, nodes=()), "the first node must be the input"),
    "input not first": (lambda g: replace(g, nodes=(g.nodes[1], g.nodes[0], g.nodes[2])),
                        "the first node must be the input"),
    "read before produced": (lambda g: replace(g, nodes=(g.nodes[0], g.nodes[2], g.nodes[1])),
                             "node 'r' reads 'fc' before it is produced"),
    "produced twice": (lambda g: replace(g, nodes=(*g.nodes, ActivationNode("r2", ("fc",), "r",
                                                                           Activation("relu")))),
                       "tensor 'r' is produced twice"),
    "no tensor info": (lambda g: replace(g, tensors={k: v for k, v in g.tensors.items() if k != "fc"}),
                       "tensor 'fc' has no TensorInfo"),
    "output not produced": (lambda g: replace(g, outputs=("nowhere",)), "graph output 'nowhere' is not produced"),
    "output listed twice": (lambda g: replace(g, outputs=("r", "r")),
                            r"graph outputs \('r', 'r'\) name a tensor twice"),
    "second input not a head node": (lambda g: replace(g, inputs=("x", "fc")), "the first node must be the input"),
}


@pytest.mark.parametrize("name", list(BREAKS))
def test_each_structural_check_fires(name: str) -> None:
    breaking, match = BREAKS[name]
    _fails(breaking(_valid()), match)


@pytest.mark.parametrize("kind,codes,match", [
    ("ternary", [[1, 2], [0, -1]], "layer 'fc': ternary codes outside"),
    ("binary", [[1, 0], [-1, 1]], "layer 'fc': binary codes outside"),
])
def test_codes_outside_their_alphabet_fire(kind: str, codes: list[list[int]], match: str) -> None:
    _fails(_valid(_weights(kind, codes, [0.5, 0.5])), match)


def test_binary_codes_in_plus_minus_one_pass() -> None:
    check_graph(_valid(_weights("binary", [[1, -1], [-1, 1]], [0.5, 0.5])), "p")


def test_int8_codes_are_not_limited_to_trits() -> None:
    check_graph(_valid(_weights("int8", [[100, -128], [3, 0]], [0.01, 0.02])), "p")


@pytest.mark.parametrize("scale", [None, [0.5, -0.1]])
def test_missing_or_negative_channel_scales_fire(scale: list[float] | None) -> None:
    _fails(_valid(_weights(scale=scale)), "layer 'fc': channel scales missing or negative")


def test_quantized_checks_fire_only_when_asked() -> None:
    """A surviving identity, a linear or softmax activation, a tensor without a grid: fine before
    quantisation, errors after it."""
    g = _valid()
    identity = replace(g, nodes=(*g.nodes, IdentityNode("drop", ("r",), "drop")),
                       tensors={**g.tensors, "drop": TensorInfo("drop", (2,), "drop", GRID)}, outputs=("drop",))
    check_graph(identity, "p")
    _fails(identity, "identity 'drop' survived", quantized=True)
    for kind in ("linear", "softmax"):
        act = replace(g, nodes=(*g.nodes[:2], ActivationNode("r", ("fc",), "r", Activation(kind))))  # type: ignore[arg-type]
        check_graph(act, "p")
        _fails(act, f"activation 'r' \\({kind}\\) survived", quantized=True)
    gridless = replace(g, tensors={**g.tensors, "fc": TensorInfo("fc", (2,), "fc")})
    check_graph(gridless, "p")
    _fails(gridless, "tensor 'fc' has no grid", quantized=True)
