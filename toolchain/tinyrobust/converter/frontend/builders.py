"""The models `tinyrobust train` starts from: a built-in architecture by name, built for the data's
input shape and class count with a quantization recipe (recipe.py), or a user's .h5 (a float Keras model
is converted by QKeras's own model_quantize, and its logits given a grid, before fine-tuning)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import qkeras as q
import tf_keras as keras
from qkeras.utils import model_quantize

from ...errors import DatasetError, UnsupportedModelError
from . import architectures, models
from .loader import load_model
from .recipe import LOGITS, RELU, Quantization

Builder = Callable[[Quantization, tuple[int, ...], int], Any]

ARCHITECTURES: dict[str, Builder] = {
    "digits_cnn": lambda r, shape, classes: models.digits_cnn(r, shape, classes),
    "paper": lambda r, shape, classes: models.paper_model(quant=r, input_shape=shape, classes=classes),
    "resnet8": lambda r, shape, classes: architectures.resnet8(shape, classes, quant=r),
    "ds_cnn": lambda r, shape, classes: architectures.ds_cnn(shape, classes, quant=r),
}
MIN_SIDE = {"digits_cnn": 2, "paper": 4, "resnet8": 4, "ds_cnn": 2}  # below this the pooling has nothing left


def build(arch: str, quant: Quantization, input_shape: tuple[int, ...], classes: int) -> Any:
    """A built-in architecture for (H, W, C) samples and `classes` outputs."""
    if len(input_shape) != 3 or min(input_shape[:2]) < MIN_SIDE[arch]:
        raise DatasetError(f"--arch {arch} takes images (H, W, C) with H, W >= {MIN_SIDE[arch]}; the data's samples "
                           f"have shape {tuple(input_shape)}")
    return ARCHITECTURES[arch](quant, tuple(input_shape), classes)


def _is_qkeras(model: Any) -> bool:
    return any(type(layer).__module__.startswith("qkeras") for layer in model.layers)


def _softmax_on_top(model: Any) -> bool:
    last = model.layers[-1]
    return isinstance(last, keras.layers.Activation) and last.get_config().get("activation") == "softmax"


def _rebuilt(model: Any, *, logits_grid: bool) -> Any:
    """The same layers (weights shared) as a functional model, optionally with a quantized_bits grid on
    the logits below the final softmax. (A Sequential model's config does not survive model_quantize.)"""
    first = 0 if isinstance(model, keras.Sequential) else 1  # a Sequential's layers exclude its input
    inp = keras.Input(model.input_shape[1:], name="input")
    values = {model.input.name: inp}
    current = inp
    for layer in model.layers[first:]:
        inputs = layer.input
        args = [values[t.name] for t in inputs] if isinstance(inputs, list) else values.get(inputs.name, current)
        if logits_grid and layer is model.layers[-1]:
            args = q.QActivation(LOGITS, name="logits_q")(args)
        current = layer(args)
        values[layer.output.name] = current
    return keras.Model(inp, current, name=model.name)


def with_logits_grid(model: Any) -> Any:
    if not _softmax_on_top(model) or isinstance(model.layers[-2], q.QActivation):
        return model
    return _rebuilt(model, logits_grid=True)


def from_file(path: Path, quant: Quantization) -> tuple[Any, str]:
    """(model to fine-tune, what was done to it). A QKeras model is taken as it is; a float one is
    quantized by model_quantize (weights kept) with the recipe's quantizers."""
    model = load_model(path)
    if _is_qkeras(model):
        return model, "a QKeras model: fine-tuned as it is (--quantize applies to float models)"
    if not quant.quantized:
        return model, "a float model, fine-tuned in float (--quantize none)"
    spec = quant.weights_spec()
    config = {
        "QConv2D": {"kernel_quantizer": spec, "bias_quantizer": None},
        "QDepthwiseConv2D": {"depthwise_quantizer": spec, "bias_quantizer": None},
        "QSeparableConv2D": {"depthwise_quantizer": spec, "pointwise_quantizer": spec, "bias_quantizer": None},
        "QDense": {"kernel_quantizer": spec, "bias_quantizer": None},
        "QActivation": {"relu": RELU},
    }
    try:
        converted = model_quantize(_rebuilt(model, logits_grid=False), config, 8, transfer_weights=True)
        how = "QKeras's model_quantize"
    except (ValueError, TypeError, KeyError):
        # model_quantize re-reads the model from JSON, and tf-keras 2.16+ no longer finds QKeras's classes
        # there for configs that name their module ("keras.layers"): clone layer by layer instead.
        converted = _quantize_by_cloning(model, quant)
        how = "layer-by-layer cloning (QKeras's model_quantize could not read it back)"
    return with_logits_grid(converted), f"a float model, quantized to {quant.mode} by {how}"


def _quantize_by_cloning(model: Any, quant: Quantization) -> Any:
    """Conv2D / DepthwiseConv2D / SeparableConv2D / Dense → their QKeras twins with the recipe's weight
    quantizer (weights copied), ReLUs → quantized_relu; other layers cloned as they are."""

    def clone(layer: Any) -> Any:
        config = layer.get_config()
        if isinstance(layer, keras.layers.SeparableConv2D):
            return q.QSeparableConv2D(**config, depthwise_quantizer=quant.weights(),
                                      pointwise_quantizer=quant.weights())
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            return q.QDepthwiseConv2D(**config, depthwise_quantizer=quant.weights())
        if isinstance(layer, keras.layers.Conv2D):
            return q.QConv2D(**config, kernel_quantizer=quant.weights())
        if isinstance(layer, keras.layers.Dense):
            return q.QDense(**config, kernel_quantizer=quant.weights())
        if isinstance(layer, keras.layers.ReLU) or (isinstance(layer, keras.layers.Activation)
                                                    and config.get("activation") == "relu"):
            return q.QActivation(RELU, name=layer.name)
        return layer.__class__.from_config(config)

    try:
        clone_model = keras.models.clone_model(_rebuilt(model, logits_grid=False), clone_function=clone)
    except (ValueError, TypeError) as exc:
        raise UnsupportedModelError(f"cannot quantize this model's layers ({exc})") from exc
    for layer in clone_model.layers:
        source = model.get_layer(layer.name) if any(m.name == layer.name for m in model.layers) else None
        if source is not None and source.get_weights():
            layer.set_weights(source.get_weights())
    return clone_model


def starting_model(arch: str | Path, quant: Quantization, input_shape: tuple[int, ...],
                   classes: int, seed: int = 0) -> tuple[Any, str]:
    """(model, how it was made) for `--arch`: a built-in name or a .h5 path, checked against the data.
    Initial weights come from `seed`."""
    keras.utils.set_random_seed(seed)
    if isinstance(arch, str) and arch in ARCHITECTURES:
        return build(arch, quant, input_shape, classes), f"--arch {arch}, --quantize {quant.mode}"
    model, note = from_file(Path(arch), quant)
    takes = tuple(int(d) for d in model.input_shape[1:])
    if takes != tuple(input_shape):
        raise DatasetError(f"--data: samples have shape {tuple(input_shape)}, the model {arch} takes {takes}")
    outputs = int(model.output_shape[-1])
    if outputs < classes:
        raise DatasetError(f"--data: labels go up to {classes - 1}, the model {arch} has {outputs} outputs")
    return model, note
