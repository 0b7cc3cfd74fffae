"""passes/rewire.py: the graph-editing helpers every pass uses (drop a node, merge a consumer into
its producer, find a tensor's single consumer), each returning a new Graph."""

from __future__ import annotations

from tinyrobust.converter.ir import (
    Activation,
    ActivationNode,
    AddNode,
    Graph,
    IdentityNode,
    InputNode,
    PoolNode,
    TensorInfo,
)
from tinyrobust.converter.passes.rewire import drop_node, merge_into_producer, single_consumer


def _graph() -> Graph:
    """x → id → r (relu) ; add(id, r) → s (output)."""
    nodes = (
        InputNode("x", "x"),
        IdentityNode("id", ("x",), "id"),
        ActivationNode("r", ("id",), "r", Activation("relu")),
        AddNode("s", ("id", "r"), "s"),
    )
    return Graph(nodes, {t: TensorInfo(t, (3,), t) for t in ("x", "id", "r", "s")}, ("x",), ("s",), "g")


def test_drop_node_rewires_every_reader_and_removes_the_tensor() -> None:
    g = _graph()
    out = drop_node(g, g.nodes[1], "x")
    assert [n.name for n in out.nodes] == ["x", "r", "s"]
    assert out.producer("r").inputs == ("x",) and out.producer("s").inputs == ("x", "r")
    assert set(out.tensors) == {"x", "r", "s"} and out.output == "s"
    assert [n.name for n in g.nodes] == ["x", "id", "r", "s"] and "id" in g.tensors  # the original is untouched


def test_drop_node_at_the_output_moves_the_output() -> None:
    g = _graph()
    out = drop_node(g, g.nodes[3], "r")
    assert out.output == "r" and "s" not in out.tensors


def test_drop_node_matches_the_node_by_identity() -> None:
    """An equal but distinct node object is not the graph's node: nothing is dropped."""
    g = _graph()
    twin = IdentityNode("id", ("x",), "id")
    assert twin == g.nodes[1] and twin is not g.nodes[1]
    out = drop_node(g, twin, "x")
    assert len(out.nodes) == 4


def test_merge_into_producer_replaces_in_place_and_drops_the_consumer() -> None:
    """The merged node takes the producer's position and writes the consumer's tensor; the producer's
    old output tensor disappears."""
    pool = PoolNode("p", ("x",), "p", "max", (1, 1), (1, 1), (0, 0, 0, 0))
    relu = ActivationNode("r", ("p",), "r", Activation("relu"))
    tail = ActivationNode("t", ("r",), "t", Activation("sigmoid"))
    g = Graph((InputNode("x", "x"), pool, relu, tail), {t: TensorInfo(t, (1, 1, 3), t) for t in "xprt"},
              ("x",), ("t",), "g")
    merged = PoolNode("p", ("x",), "r", "max", (1, 1), (1, 1), (0, 0, 0, 0))
    out = merge_into_producer(g, pool, relu, merged)
    assert out.nodes == (g.nodes[0], merged, tail)
    assert out.nodes[1] is merged
    assert set(out.tensors) == {"x", "r", "t"}


def test_single_consumer() -> None:
    g = _graph()
    assert single_consumer(g, "x") is g.nodes[1]
    assert single_consumer(g, "r") is g.nodes[3]
    assert single_consumer(g, "id") is None  # read by r and by s
    assert single_consumer(g, "unknown") is None


def test_single_consumer_of_the_graph_output_is_none() -> None:
    """Even with one reader, the output tensor must stay as it is."""
    g = _graph()
    nodes = (*g.nodes, ActivationNode("after", ("s",), "after", Activation("relu")))
    g2 = Graph(nodes, {**g.tensors, "after": TensorInfo("after", (3,), "after")}, ("x",), ("s",), "g")
    assert len(g2.consumers("s")) == 1
    assert single_consumer(g2, "s") is None
