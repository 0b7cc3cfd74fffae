"""Frontend handlers, keyed by Keras layer class: each turns one layer into IR nodes."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import qkeras
from tf_keras import layers as kl

from ...errors import UnsupportedModelError
from ..ir import (
    Activation,
    ActivationNode,
    AddNode,
    BatchNormNode,
    ConcatNode,
    ConvNode,
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
from .quantizers import classify_activation, quantize_weights, tabulated_activation, weight_quantizer_kind


@dataclass(frozen=True)
class LayerContext:
    """What a handler needs besides the layer: its input tensor names and shapes."""

    inputs: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]


@dataclass(frozen=True)
class HandlerResult:
    nodes: tuple[Node, ...]
    tensors: tuple[TensorInfo, ...]


Handler = Callable[[Any, LayerContext], HandlerResult]

# Suffixes of IR tensors that live inside one Keras layer (calibration recomputes them).
PRE_ACTIVATION = "/preact"
SEPARABLE_MID = "/depthwise"


def _where(layer: Any) -> str:
    return f"layer '{layer.name}' ({type(layer).__name__})"


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TensorFlow 'same': output size and (before, after) padding."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def spatial_padding(
    layer: Any, in_hw: tuple[int, int], kernel: tuple[int, int], strides: tuple[int, int]
) -> tuple[int, int, int, int]:
    mode = layer.padding
    if mode == "valid":
        return (0, 0, 0, 0)
    if mode != "same":
        raise UnsupportedModelError(f"{_where(layer)}: padding '{mode}' is not supported")
    _, top, bottom = same_padding(in_hw[0], kernel[0], strides[0])
    _, left, right = same_padding(in_hw[1], kernel[1], strides[1])
    return (top, left, bottom, right)


def _check_conv_options(layer: Any) -> None:
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise UnsupportedModelError(f"{_where(layer)}: only channels_last is supported")
    if tuple(getattr(layer, "dilation_rate", (1, 1))) != (1, 1):
        raise UnsupportedModelError(f"{_where(layer)}: dilation is not supported")
    if getattr(layer, "groups", 1) != 1:
        raise UnsupportedModelError(f"{_where(layer)}: grouped convolution is not supported")


def _weights(layer: Any, attr: str, quantizer_attr: str | None) -> WeightTensor:
    values = np.asarray(getattr(layer, attr).numpy(), dtype=np.float64)
    quantizer = getattr(layer, quantizer_attr, None) if quantizer_attr else None
    family, kind = weight_quantizer_kind(quantizer, f"{_where(layer)} {attr}")
    return WeightTensor(values=quantize_weights(quantizer, values), quantizer=family, kind=kind,  # type: ignore[arg-type]
                        description=family if quantizer is None else str(quantizer))


def _bias(layer: Any, cout: int, quantizer_attr: str | None) -> np.ndarray:
    if not getattr(layer, "use_bias", False) or getattr(layer, "bias", None) is None:
        return np.zeros(cout)
    values = np.asarray(layer.bias.numpy(), dtype=np.float64)
    quantizer = getattr(layer, quantizer_attr, None) if quantizer_attr else None
    return quantize_weights(quantizer, values)


def _with_activation(layer: Any, conv: ConvNode, out_shape: tuple[int, ...]) -> HandlerResult:
    """A conv node plus, when the layer has a built-in activation, a separate activation node
    (the fuse pass merges it back where legal)."""
    act = classify_activation(getattr(layer, "activation", None), _where(layer))
    if act.kind == "linear":
        return HandlerResult((conv,), (TensorInfo(conv.output, out_shape, layer.name),))
    pre = layer.name + PRE_ACTIVATION
    conv = replace(conv, output=pre)
    node = ActivationNode(layer.name, (pre,), layer.name, act)
    return HandlerResult(
        (conv, node),
        (
            TensorInfo(pre, out_shape, f"{layer.name} (before activation)"),
            TensorInfo(layer.name, out_shape, layer.name),
        ),
    )


def handle_input(layer: Any, ctx: LayerContext) -> HandlerResult:
    return HandlerResult((InputNode(layer.name, layer.name),), (TensorInfo(layer.name, ctx.output_shape, layer.name),))


def _conv_like(layer: Any, ctx: LayerContext, kernel_attr: str, quantizer_attr: str | None, kind: str) -> HandlerResult:
    _check_conv_options(layer)
    weights = _weights(layer, kernel_attr, quantizer_attr)
    kh, kw = weights.values.shape[:2]
    strides = tuple(int(s) for s in layer.strides)
    h, w, _ = ctx.input_shapes[0]
    pads = spatial_padding(layer, (h, w), (kh, kw), strides)
    cout = ctx.output_shape[-1]
    bias_q = "bias_quantizer_internal" if quantizer_attr else None
    conv = ConvNode(
        name=layer.name,
        inputs=(ctx.inputs[0],),
        output=layer.name,
        kind=kind,  # type: ignore[arg-type]
        weights=weights,
        post_scale=np.ones(cout),
        post_bias=_bias(layer, cout, bias_q),
        strides=strides,  # type: ignore[arg-type]
        padding=pads,
    )
    return _with_activation(layer, conv, ctx.output_shape)


def handle_conv2d(layer: Any, ctx: LayerContext) -> HandlerResult:
    return _conv_like(layer, ctx, "kernel", None, "conv2d")


def handle_qconv2d(layer: Any, ctx: LayerContext) -> HandlerResult:
    return _conv_like(layer, ctx, "kernel", "kernel_quantizer_internal", "conv2d")


def handle_depthwise(layer: Any, ctx: LayerContext) -> HandlerResult:
    return _conv_like(layer, ctx, "depthwise_kernel", None, "depthwise")


def handle_qdepthwise(layer: Any, ctx: LayerContext) -> HandlerResult:
    return _conv_like(layer, ctx, "depthwise_kernel", "depthwise_quantizer_internal", "depthwise")


def _separable(layer: Any, ctx: LayerContext, dw_q: str | None, pw_q: str | None) -> HandlerResult:
    """Separable = depthwise (no bias) then 1×1 pointwise; the intermediate tensor gets its own grid."""
    _check_conv_options(layer)
    dw = _weights(layer, "depthwise_kernel", dw_q)
    pw = _weights(layer, "pointwise_kernel", pw_q)
    kh, kw, cin, mult = dw.values.shape
    strides = tuple(int(s) for s in layer.strides)
    h, w, _ = ctx.input_shapes[0]
    pads = spatial_padding(layer, (h, w), (kh, kw), strides)
    oh, ow, cout = ctx.output_shape
    mid = layer.name + SEPARABLE_MID
    depthwise = ConvNode(
        name=mid,
        inputs=(ctx.inputs[0],),
        output=mid,
        kind="depthwise",
        weights=dw,
        post_scale=np.ones(cin * mult),
        post_bias=np.zeros(cin * mult),
        strides=strides,  # type: ignore[arg-type]
        padding=pads,
    )
    pointwise = ConvNode(
        name=layer.name,
        inputs=(mid,),
        output=layer.name,
        kind="conv2d",
        weights=pw,
        post_scale=np.ones(cout),
        post_bias=_bias(layer, cout, "bias_quantizer_internal" if pw_q else None),
    )
    mid_info = TensorInfo(mid, (oh, ow, cin * mult), f"{layer.name} (depthwise half)")
    rest = _with_activation(layer, pointwise, ctx.output_shape)
    return HandlerResult((depthwise, *rest.nodes), (mid_info, *rest.tensors))


def handle_separable(layer: Any, ctx: LayerContext) -> HandlerResult:
    return _separable(layer, ctx, None, None)


def handle_qseparable(layer: Any, ctx: LayerContext) -> HandlerResult:
    return _separable(layer, ctx, "depthwise_quantizer_internal", "pointwise_quantizer_internal")


def _dense(layer: Any, ctx: LayerContext, quantizer_attr: str | None) -> HandlerResult:
    if len(ctx.input_shapes[0]) != 1:
        raise UnsupportedModelError(f"{_where(layer)}: Dense on a {len(ctx.input_shapes[0])}-D input; Flatten first")
    weights = _weights(layer, "kernel", quantizer_attr)
    cout = ctx.output_shape[-1]
    conv = ConvNode(
        name=layer.name,
        inputs=(ctx.inputs[0],),
        output=layer.name,
        kind="dense",
        weights=weights,
        post_scale=np.ones(cout),
        post_bias=_bias(layer, cout, "bias_quantizer_internal" if quantizer_attr else None),
    )
    return _with_activation(layer, conv, ctx.output_shape)


def handle_dense(layer: Any, ctx: LayerContext) -> HandlerResult:
    return _dense(layer, ctx, None)


def handle_qdense(layer: Any, ctx: LayerContext) -> HandlerResult:
    return _dense(layer, ctx, "kernel_quantizer_internal")


def _bn_params(layer: Any, quantized: bool) -> tuple[np.ndarray, np.ndarray]:
    axis = layer.axis if isinstance(layer.axis, int) else layer.axis[0]
    if axis not in (-1, len(layer.input_shape) - 1):
        raise UnsupportedModelError(f"{_where(layer)}: BatchNormalization must normalise the channel axis")
    c = int(layer.moving_mean.shape[0])

    def param(name: str, default: float, quantizer_attr: str) -> np.ndarray:
        var = getattr(layer, name, None)
        if var is None:
            return np.full(c, default)
        value = np.asarray(var.numpy(), dtype=np.float64)
        quantizer = getattr(layer, quantizer_attr, None) if quantized else None
        return quantize_weights(quantizer, value) if quantizer is not None else value

    gamma = param("gamma", 1.0, "gamma_quantizer_internal") if layer.scale else np.ones(c)
    beta = param("beta", 0.0, "beta_quantizer_internal") if layer.center else np.zeros(c)
    mean = param("moving_mean", 0.0, "mean_quantizer_internal")
    var = param("moving_variance", 1.0, "variance_quantizer_internal")
    scale = gamma / np.sqrt(var + float(layer.epsilon))
    return scale, beta - mean * scale


def handle_batchnorm(layer: Any, ctx: LayerContext) -> HandlerResult:
    scale, offset = _bn_params(layer, quantized=False)
    return _bn_result(layer, ctx, scale, offset)


def handle_qbatchnorm(layer: Any, ctx: LayerContext) -> HandlerResult:
    scale, offset = _bn_params(layer, quantized=True)
    return _bn_result(layer, ctx, scale, offset)


def _bn_result(layer: Any, ctx: LayerContext, scale: np.ndarray, offset: np.ndarray) -> HandlerResult:
    node = BatchNormNode(layer.name, (ctx.inputs[0],), layer.name, scale, offset)
    return HandlerResult((node,), (TensorInfo(layer.name, ctx.output_shape, layer.name),))


def _activation_result(layer: Any, ctx: LayerContext, act: Activation) -> HandlerResult:
    node = ActivationNode(layer.name, (ctx.inputs[0],), layer.name, act)
    return HandlerResult((node,), (TensorInfo(layer.name, ctx.output_shape, layer.name),))


def handle_activation(layer: Any, ctx: LayerContext) -> HandlerResult:
    return _activation_result(layer, ctx, classify_activation(layer.activation, _where(layer)))


def handle_qactivation(layer: Any, ctx: LayerContext) -> HandlerResult:
    return _activation_result(layer, ctx, classify_activation(layer.quantizer, _where(layer)))


def _layer_table(layer: Any, description: str, top: float) -> Activation:
    """An elementwise Keras layer as a table of the layer's own call (through TensorFlow, float32 as Keras
    computes it). A float function: its output grid covers what it gives on the input grid."""
    return tabulated_activation(layer.call, description, top, False, _where(layer))


def handle_relu(layer: Any, ctx: LayerContext) -> HandlerResult:
    max_value = layer.max_value
    slope, threshold = float(layer.negative_slope), float(layer.threshold)
    if max_value is None and slope == 0.0 and threshold == 0.0:
        return _activation_result(layer, ctx, Activation("relu", None, "relu"))
    cap = None if max_value is None else float(max_value)
    description = f"ReLU(max_value={cap}, negative_slope={slope:g}, threshold={threshold:g})"
    return _activation_result(layer, ctx, _layer_table(layer, description, max(cap or 8.0, abs(threshold))))


def handle_leaky_relu(layer: Any, ctx: LayerContext) -> HandlerResult:
    return _activation_result(layer, ctx, _layer_table(layer, f"LeakyReLU(alpha={float(layer.alpha):g})", 8.0))


def handle_add(layer: Any, ctx: LayerContext) -> HandlerResult:
    if len(ctx.inputs) != 2:
        raise UnsupportedModelError(f"{_where(layer)}: Add of {len(ctx.inputs)} inputs; only 2 are supported")
    if ctx.input_shapes[0] != ctx.input_shapes[1]:
        raise UnsupportedModelError(f"{_where(layer)}: Add with broadcasting is not supported")
    node = AddNode(layer.name, (ctx.inputs[0], ctx.inputs[1]), layer.name)
    return HandlerResult((node,), (TensorInfo(layer.name, ctx.output_shape, layer.name),))


def handle_multiply(layer: Any, ctx: LayerContext) -> HandlerResult:
    if len(ctx.inputs) != 2:
        raise UnsupportedModelError(f"{_where(layer)}: Multiply of {len(ctx.inputs)} inputs; only 2 are supported")
    if ctx.input_shapes[0] != ctx.input_shapes[1]:
        raise UnsupportedModelError(f"{_where(layer)}: Multiply with broadcasting is not supported")
    node = MulNode(layer.name, (ctx.inputs[0], ctx.inputs[1]), layer.name)
    return HandlerResult((node,), (TensorInfo(layer.name, ctx.output_shape, layer.name),))


def handle_concat(layer: Any, ctx: LayerContext) -> HandlerResult:
    rank = len(ctx.output_shape)
    if layer.axis not in (-1, rank):
        raise UnsupportedModelError(f"{_where(layer)}: only channel concatenation (axis=-1) is supported")
    node = ConcatNode(layer.name, ctx.inputs, layer.name)
    return HandlerResult((node,), (TensorInfo(layer.name, ctx.output_shape, layer.name),))


def _pool(layer: Any, ctx: LayerContext, kind: str) -> HandlerResult:
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise UnsupportedModelError(f"{_where(layer)}: only channels_last is supported")
    pool = tuple(int(p) for p in layer.pool_size)
    strides = tuple(int(s) for s in layer.strides)
    h, w, _ = ctx.input_shapes[0]
    pads = spatial_padding(layer, (h, w), pool, strides)  # type: ignore[arg-type]
    node = PoolNode(layer.name, (ctx.inputs[0],), layer.name, kind, pool, strides, pads)  # type: ignore[arg-type]
    return HandlerResult((node,), (TensorInfo(layer.name, ctx.output_shape, layer.name),))


def handle_maxpool(layer: Any, ctx: LayerContext) -> HandlerResult:
    return _pool(layer, ctx, "max")


def handle_avgpool(layer: Any, ctx: LayerContext) -> HandlerResult:
    return _pool(layer, ctx, "avg")


def handle_global_avgpool(layer: Any, ctx: LayerContext) -> HandlerResult:
    if getattr(layer, "keepdims", False):
        raise UnsupportedModelError(f"{_where(layer)}: keepdims=True is not supported")
    h, w, _ = ctx.input_shapes[0]
    node = PoolNode(layer.name, (ctx.inputs[0],), layer.name, "avg", (h, w), (h, w), (0, 0, 0, 0), True)
    return HandlerResult((node,), (TensorInfo(layer.name, ctx.output_shape, layer.name),))


def handle_reshape(layer: Any, ctx: LayerContext) -> HandlerResult:
    node = ReshapeNode(layer.name, (ctx.inputs[0],), layer.name)
    return HandlerResult((node,), (TensorInfo(layer.name, ctx.output_shape, layer.name),))


def handle_identity(layer: Any, ctx: LayerContext) -> HandlerResult:
    node = IdentityNode(layer.name, (ctx.inputs[0],), layer.name)
    return HandlerResult((node,), (TensorInfo(layer.name, ctx.output_shape, layer.name),))


def handle_zero_padding(layer: Any, ctx: LayerContext) -> HandlerResult:
    (top, bottom), (left, right) = layer.padding
    node = PadNode(layer.name, (ctx.inputs[0],), layer.name, (int(top), int(left), int(bottom), int(right)))
    return HandlerResult((node,), (TensorInfo(layer.name, ctx.output_shape, layer.name),))


def handler_table() -> dict[type, Handler]:
    """Layer class → handler."""
    return {
        kl.InputLayer: handle_input,
        qkeras.QConv2D: handle_qconv2d,
        qkeras.QDepthwiseConv2D: handle_qdepthwise,
        qkeras.QSeparableConv2D: handle_qseparable,
        qkeras.QDense: handle_qdense,
        qkeras.QActivation: handle_qactivation,
        qkeras.QBatchNormalization: handle_qbatchnorm,
        kl.Conv2D: handle_conv2d,
        kl.DepthwiseConv2D: handle_depthwise,
        kl.SeparableConv2D: handle_separable,
        kl.Dense: handle_dense,
        kl.BatchNormalization: handle_batchnorm,
        kl.Activation: handle_activation,
        kl.ReLU: handle_relu,
        kl.LeakyReLU: handle_leaky_relu,
        kl.Add: handle_add,
        kl.Multiply: handle_multiply,
        kl.Concatenate: handle_concat,
        kl.MaxPooling2D: handle_maxpool,
        kl.AveragePooling2D: handle_avgpool,
        kl.GlobalAveragePooling2D: handle_global_avgpool,
        kl.Flatten: handle_reshape,
        kl.Reshape: handle_reshape,
        kl.Dropout: handle_identity,
        kl.ZeroPadding2D: handle_zero_padding,
    }
