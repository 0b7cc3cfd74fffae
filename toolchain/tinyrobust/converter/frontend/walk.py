"""Walk a tf-keras model's layers in order into the IR, one class-keyed handler per layer."""

from __future__ import annotations

from typing import Any

from tf_keras import layers as kl

from ...errors import UnsupportedModelError
from ..ir import Graph, InputNode, Node, TensorInfo
from .handlers import LayerContext, handler_table


def tensor_shape(t: Any) -> tuple[int, ...]:
    dims = tuple(t.shape)[1:]
    if any(d is None for d in dims):
        raise UnsupportedModelError(f"tensor {t.name} has an undefined dimension {dims}; fix the input shape")
    return tuple(int(d) for d in dims)


def as_list(x: Any) -> list[Any]:
    return list(x) if isinstance(x, list | tuple) else [x]



def build_graph(model: Any, name: str) -> Graph:
    """Walk the layers in order; wire inputs by Keras tensor identity, not by names.

    The graph's inputs and outputs keep the model's order (model.inputs, model.outputs): input k of
    the deployed model is the k-th array a caller passes to Keras."""
    table = handler_table()
    produced: dict[int, str] = {}  # id(keras tensor) → IR tensor name
    nodes: list[Node] = []
    tensors: dict[str, TensorInfo] = {}
    input_tensors = as_list(model.inputs)
    input_layers = {id(layer.output): layer for layer in model.layers if isinstance(layer, kl.InputLayer)}
    for k, t in enumerate(input_tensors):
        # Sequential models do not list their InputLayer: their one input is called "input".
        layer = input_layers.get(id(t))
        in_name = layer.name if layer is not None else "input" if len(input_tensors) == 1 else f"input_{k}"
        produced[id(t)] = in_name
        nodes.append(InputNode(in_name, in_name))
        tensors[in_name] = TensorInfo(in_name, tensor_shape(t), layer.name if layer is not None else "model input")
    for layer in model.layers:
        handler = table.get(type(layer))
        if handler is None:
            raise UnsupportedModelError(
                f"layer '{layer.name}' has unsupported class {type(layer).__name__}; supported: "
                + ", ".join(sorted(c.__name__ for c in table))
            )
        if len(layer._inbound_nodes) != 1:
            raise UnsupportedModelError(f"layer '{layer.name}' is shared (called {len(layer._inbound_nodes)} times)")
        if isinstance(layer, kl.InputLayer):
            continue  # its InputNode is above, in the model's input order
        ins = as_list(layer.input)
        try:
            in_names = tuple(produced[id(t)] for t in ins)
        except KeyError as exc:
            raise UnsupportedModelError(f"layer '{layer.name}': an input is not produced by a known layer") from exc
        ctx = LayerContext(in_names, tuple(tensor_shape(t) for t in ins), tensor_shape(layer.output))
        result = handler(layer, ctx)
        nodes.extend(result.nodes)
        for info in result.tensors:
            tensors[info.name] = info
        produced[id(layer.output)] = result.nodes[-1].output
    outputs = tuple(produced[id(t)] for t in as_list(model.outputs))
    if set(outputs) & set(produced[id(t)] for t in input_tensors):
        raise UnsupportedModelError("a model input is also a model output: nothing to deploy for it")
    if len(set(outputs)) != len(outputs):
        raise UnsupportedModelError(f"the model lists one tensor as several outputs ({', '.join(outputs)})")
    return Graph(tuple(nodes), tensors, inputs=tuple(produced[id(t)] for t in input_tensors), outputs=outputs,
                 name=name)
