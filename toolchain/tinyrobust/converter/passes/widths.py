"""Choose int8 or int16 activations per tensor, and insert the conversions between the two.

int8 rounding noise compounds layer by layer: on a ResNet-8 the tensors after the last block are at
~33 dB SNR against Keras, and near-tied logits change class. int16 codes make each rounding
256 times finer (512 on a ReLU's output: Grid.wide puts its zero point at −32768). They matter only
where the model states no grid itself: a quantizer's levels already fit int8 exactly, so only
tensors whose grid came from calibration are widened.

Which nodes run wide (the --fidelity modes of converter/precision.py; pipeline.choose_wide_nodes):
- "fast": none; every tensor int8, as before.
- "exact": every node that can: convolutions, dense, depthwise, standalone BatchNorm and Add whose
  output grid comes from calibration (not a quantizer, not a table's input), and the pooling,
  padding, views and relus that follow them (they keep their input's grid).
- "balanced": `exact`, minus what does not pay: see `choose_wide_nodes`.

Widths must agree where the kernels need it: a weighted op, add, pool and pad read and write one
width; tables and Mul are int8 only; requantize (relu, quantizer activations) converts any width to
any. Where a tensor's width differs from what a consumer needs, a conversion (an ActivationNode of
kind "quantized" onto the other width's grid, lowered to tr_requantize_s8_s16 / _s16_s8) is
inserted once and shared. Model inputs stay int8 (the host quantises them); a wide model output stays
int16 when asked (exact, balanced: finer logits keep near-tied classes in order), else its wide producer
writes `<output>:int16` and a conversion writes the output itself on its int8 grid.
"""

from __future__ import annotations

from dataclasses import replace

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
    Node,
    PadNode,
    PoolNode,
    ReshapeNode,
    TensorInfo,
    rename_input,
)
from .grids import table_inputs

# Nodes whose output grid is computed from calibration when the model states none (grids.COMPUTED
# minus Mul, which has no int16 kernel).
_WIDENABLE = (ConvNode, AddNode, BatchNormNode)
# Nodes that keep their input's grid, and so its width.
_INHERITING = (PoolNode, PadNode, ReshapeNode)


def _computed_from_calibration(graph: Graph, node: Node, table_fed: set[str]) -> bool:
    if not isinstance(node, _WIDENABLE):
        return False
    if isinstance(node, ConvNode | AddNode) and node.activation.kind == "quantized":
        return False  # the model states this grid
    return node.output not in table_fed and node.output in graph.calibration


def widenable_nodes(graph: Graph) -> list[str]:
    """Names of the nodes that may run on int16, in graph order."""
    table_fed = table_inputs(graph)
    return [n.name for n in graph.nodes if _computed_from_calibration(graph, n, table_fed)]


def _wide_grid(graph: Graph, tensor: str, narrow: Grid) -> Grid:
    """int16 grid of a calibrated tensor: the samples' whole min/max range, where int8 had to buy its
    resolution by clipping outliers. No margin beyond it: held-out inputs do exceed it (on MobileNetV1 a
    few values by up to 2,000 int16 steps), but a margin of 2 cost 6 dB on every tensor and doubled
    MobileNetV1's top-1 disagreements with Keras (3 → 6 of 597)."""
    rng = graph.calibration.get(tensor)
    lo, hi = (rng.extremes if rng is not None and rng.extremes is not None else (narrow.real_min, narrow.real_max))
    return Grid.wide(lo, hi, f"int16 over [{lo:.4g}, {hi:.4g}] (calibration min/max; {narrow.origin} in int8)")


def _holding(narrow: Grid) -> Grid:
    """The int16 grid holding every level of an int8 grid exactly: step / 128, zero point 0 (|q − z| ≤ 255,
    so ±255·128 fits int16). Widening onto it loses nothing."""
    return Grid(narrow.scale / 128.0, 0, -32768, 32767, f"{narrow.origin}, exactly in int16")


def _needs(node: Node, out_bits: int) -> int | None:
    """The width every input of `node` must have, or None when any will do."""
    if isinstance(node, ActivationNode) and node.activation.kind in ("relu", "quantized"):
        return None  # requantize converts any width to any
    if isinstance(node, ConcatNode):
        return None  # concat requantises each input onto its own grid (any width)
    if isinstance(node, (*_WIDENABLE, *_INHERITING)):
        return out_bits
    return 8  # tables, Mul: int8 only


CONVERSION_MARK = ":int"  # a conversion's tensor is "<tensor>:int8" or "<tensor>:int16"


def counterpart(tensor: str) -> str:
    """The model's tensor that `tensor` holds, converted or not (for comparing with Keras)."""
    return tensor.split(CONVERSION_MARK, 1)[0]


def _conversion(tensor: str, grid: Grid, bits: int, info: TensorInfo) -> tuple[ActivationNode, TensorInfo]:
    name = f"{tensor}{CONVERSION_MARK}{bits}"
    act = Activation("quantized", grid=grid, description=f"conversion to int{bits}")
    return ActivationNode(f"{tensor}_to_int{bits}", (tensor,), name, act), replace(info, name=name, grid=grid)


def widen(graph: Graph, wide_nodes: frozenset[str] | set[str], int16_outputs: bool = False) -> Graph:
    """The graph with `wide_nodes` (names from widenable_nodes) on int16 grids, their width carried
    through pooling, padding, views and relus, and conversions where widths meet. A model output a wide
    node writes stays int16 with `int16_outputs` (finer logits: near-tied classes keep their order),
    else a conversion brings it back to its int8 grid."""
    if not wide_nodes:
        return graph
    tensors = dict(graph.tensors)
    narrow_grid = {name: info.grid for name, info in graph.tensors.items()}
    # 1. widths and grids, in graph order
    for node in graph.nodes:
        if isinstance(node, InputNode):
            continue
        grid = tensors[node.output].grid
        assert grid is not None
        if node.name in wide_nodes:
            grid = _wide_grid(graph, node.output, grid)
        elif isinstance(node, _INHERITING) or (isinstance(node, ActivationNode) and node.activation.kind == "relu"):
            source = tensors[node.inputs[0]].grid
            assert source is not None
            if source.bits == 16:
                grid = source
        tensors[node.output] = replace(tensors[node.output], grid=grid)
    # 2. conversions where a consumer needs the other width; wide outputs converted back to int8
    nodes: list[Node] = []
    converted: dict[tuple[str, int], str] = {}
    for node in graph.nodes:
        out_grid = tensors[node.output].grid
        assert out_grid is not None
        need = _needs(node, out_grid.bits)
        if need is not None and not isinstance(node, InputNode):
            for t in dict.fromkeys(node.inputs):
                have = tensors[t].grid
                assert have is not None
                if have.bits == need:
                    continue
                if (t, need) not in converted:
                    target = narrow_grid[t] if need == 8 else _holding(have)
                    assert target is not None
                    conv, info = _conversion(t, target, need, tensors[t])
                    nodes.append(conv)
                    tensors[info.name] = info
                    converted[(t, need)] = info.name
                node = rename_input(node, t, converted[(t, need)])
        if node.output in graph.outputs and out_grid.bits == 16 and not int16_outputs:
            wide_name = f"{node.output}{CONVERSION_MARK}16"
            tensors[wide_name] = replace(tensors[node.output], name=wide_name)
            tensors[node.output] = replace(tensors[node.output], grid=narrow_grid[node.output])
            act = Activation("quantized", grid=narrow_grid[node.output], description="conversion to int8")
            nodes.append(replace(node, output=wide_name))
            nodes.append(ActivationNode(f"{node.output}_to_int8", (wide_name,), node.output, act))
            continue
        nodes.append(node)
    return replace(graph, nodes=tuple(nodes), tensors=tensors)
