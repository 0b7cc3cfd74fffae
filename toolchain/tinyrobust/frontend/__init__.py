"""The only part of tinyrobust that imports TensorFlow / QKeras.

`load_model` checks the file's config before Keras deserialises it; `build_graph` walks the
model with class-keyed handlers; `tensor_ranges` and `predict` run the float model.
"""

from __future__ import annotations

import os

# Must precede the first TensorFlow import anywhere in the process: QKeras needs tf-keras,
# never Keras 3. Users should not have to set it themselves.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from collections.abc import Mapping, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from ..ir import Graph, Node, TensorInfo, UnsupportedModelError  # noqa: E402
from .handlers import PRE_ACTIVATION, SEPARABLE_MID, LayerContext, handler_table  # noqa: E402
from .safe_load import ModelFileError, check_config_supported, read_model_config  # noqa: E402

__all__ = ["ModelFileError", "load_model", "build_graph", "tensor_ranges", "predict", "UnsupportedModelError"]


def load_model(path: Path) -> Any:
    """The tf-keras model in `path`, after refusing Lambda and unsupported classes unexecuted."""
    path = Path(path)
    config = read_model_config(path)
    check_config_supported(config, path)
    import tf_keras
    from qkeras.utils import _add_supported_quantized_objects

    custom: dict[str, Any] = {}
    _add_supported_quantized_objects(custom)
    try:
        return tf_keras.models.load_model(path, custom_objects=custom, compile=False)
    except Exception as exc:  # Keras raises many types for a damaged file
        raise ModelFileError(f"{path}: Keras could not load the model ({type(exc).__name__}: {exc})") from exc


def _shape(t: Any) -> tuple[int, ...]:
    dims = tuple(t.shape)[1:]
    if any(d is None for d in dims):
        raise UnsupportedModelError(f"tensor {t.name} has an undefined dimension {dims}; fix the input shape")
    return tuple(int(d) for d in dims)


def _as_list(x: Any) -> list[Any]:
    return list(x) if isinstance(x, list | tuple) else [x]


def build_graph(model: Any, name: str) -> Graph:
    """Walk the layers in order; wire inputs by Keras tensor identity, not by names."""
    if len(_as_list(model.inputs)) != 1 or len(_as_list(model.outputs)) != 1:
        raise UnsupportedModelError("only models with one input and one output are supported")
    table = handler_table()
    produced: dict[int, str] = {}  # id(keras tensor) → IR tensor name
    nodes: list[Node] = []
    tensors: dict[str, TensorInfo] = {}
    input_tensor = _as_list(model.inputs)[0]
    layers = list(model.layers)
    from tf_keras import layers as kl

    if not any(isinstance(layer, kl.InputLayer) for layer in layers):
        # Sequential models do not list their InputLayer.
        in_name = "input"
        produced[id(input_tensor)] = in_name
        from ..ir import InputNode

        nodes.append(InputNode(in_name, in_name))
        tensors[in_name] = TensorInfo(in_name, _shape(input_tensor), "model input")
    for layer in layers:
        handler = table.get(type(layer))
        if handler is None:
            raise UnsupportedModelError(
                f"layer '{layer.name}' has unsupported class {type(layer).__name__}; supported: "
                + ", ".join(sorted(c.__name__ for c in table))
            )
        if len(layer._inbound_nodes) != 1:
            raise UnsupportedModelError(f"layer '{layer.name}' is shared (called {len(layer._inbound_nodes)} times)")
        if isinstance(layer, kl.InputLayer):
            ins: list[Any] = []
        else:
            ins = _as_list(layer.input)
        try:
            in_names = tuple(produced[id(t)] for t in ins)
        except KeyError as exc:
            raise UnsupportedModelError(f"layer '{layer.name}': an input is not produced by a known layer") from exc
        ctx = LayerContext(in_names, tuple(_shape(t) for t in ins), _shape(layer.output))
        result = handler(layer, ctx)
        nodes.extend(result.nodes)
        for info in result.tensors:
            tensors[info.name] = info
        produced[id(layer.output)] = result.nodes[-1].output
    output = produced[id(_as_list(model.outputs)[0])]
    return Graph(tuple(nodes), tensors, input=nodes[0].output, output=output, name=name)




def _separable_half(layer: Any, x: Any) -> Any:
    """The depthwise half of a (Q)SeparableConv2D, as the layer computes it internally."""
    import tensorflow as tf

    kernel = layer.depthwise_kernel
    quantizer = getattr(layer, "depthwise_quantizer_internal", None)
    if quantizer is not None:
        kernel = quantizer(kernel)
    strides = (1, *layer.strides, 1)
    return tf.nn.depthwise_conv2d(x, kernel, strides=strides, padding=layer.padding.upper())


def _pre_activation(layer: Any, x: Any) -> Any:
    """A layer's output before its built-in activation (e.g. the logits under softmax)."""
    import tf_keras

    saved = layer.activation
    layer.activation = tf_keras.activations.linear
    try:
        return layer(x, training=False)
    finally:
        layer.activation = saved


def tensor_ranges(
    model: Any, tensor_names: Sequence[str], x: np.ndarray, batch: int = 256
) -> Mapping[str, tuple[float, float]]:
    """min/max over `x` of IR tensors: layer outputs, or a separable layer's depthwise half."""
    import tf_keras

    if not tensor_names:
        return {}
    probes: list[tuple[str, Any, Any]] = []  # (IR tensor, keras tensor, function computing it, or None)
    for name in tensor_names:
        if name.endswith(SEPARABLE_MID):
            layer = model.get_layer(name[: -len(SEPARABLE_MID)])
            probes.append((name, layer.input, lambda v, layer=layer: _separable_half(layer, v)))
        elif name.endswith(PRE_ACTIVATION):
            layer = model.get_layer(name[: -len(PRE_ACTIVATION)])
            probes.append((name, layer.input, lambda v, layer=layer: _pre_activation(layer, v)))
        else:
            try:
                probes.append((name, model.get_layer(name).output, None))
            except ValueError as exc:
                raise UnsupportedModelError(f"tensor '{name}' needs calibration but is not a layer output") from exc
    probe = tf_keras.Model(model.inputs, [p[1] for p in probes])
    lo = {n: np.inf for n in tensor_names}
    hi = {n: -np.inf for n in tensor_names}
    for start in range(0, len(x), batch):
        values = _as_list(probe(x[start : start + batch], training=False))
        for (name, _, post), v in zip(probes, values, strict=True):
            v = np.asarray(post(v) if post is not None else v)
            lo[name] = min(lo[name], float(v.min()))
            hi[name] = max(hi[name], float(v.max()))
    return {n: (lo[n], hi[n]) for n in tensor_names}


def predict(model: Any, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """The float model's outputs (inference mode)."""
    outs = [np.asarray(model(x[i : i + batch], training=False)) for i in range(0, len(x), batch)]
    return np.concatenate(outs, axis=0) if outs else np.zeros((0,))
