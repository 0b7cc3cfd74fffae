"""Open a Keras .h5 safely: read its JSON config with h5py and refuse what we cannot deploy
*before* Keras deserialises anything (a Lambda's bytecode would run on load)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...errors import ModelFileError, UnsupportedModelError, shown
from .. import model_file

# Layer classes the handlers accept, by Keras class name as stored in the file's config.
SUPPORTED_CLASSES = frozenset(
    {
        "InputLayer",
        "QConv2D",
        "QDepthwiseConv2D",
        "QSeparableConv2D",
        "QDense",
        "QActivation",
        "Conv2D",
        "DepthwiseConv2D",
        "SeparableConv2D",
        "Dense",
        "BatchNormalization",
        "QBatchNormalization",
        "Activation",
        "ReLU",
        "LeakyReLU",
        "Add",
        "Multiply",
        "Concatenate",
        "MaxPooling2D",
        "AveragePooling2D",
        "GlobalAveragePooling2D",
        "Flatten",
        "Reshape",
        "Dropout",
        "ZeroPadding2D",
    }
)
CONTAINER_CLASSES = frozenset({"Sequential", "Functional", "Model"})
CODE_CARRYING_CLASSES = frozenset({"Lambda", "TFOpLambda", "SlicingOpLambda"})


def read_model_config(path: Path) -> dict[str, Any]:
    """The file's model_config, after every check that needs no Keras (converter/model_file.py)."""
    return model_file.read_model_config(path)


def _iter_layers(config: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(class_name, layer name) for every layer, descending into nested models."""
    inner = config.get("config", {})
    for layer in inner.get("layers", []):
        cls = layer.get("class_name", "?")
        name = layer.get("config", {}).get("name", "?")
        if cls in CONTAINER_CLASSES:
            yield cls, name
            yield from _iter_layers(layer)
        else:
            yield cls, name


def check_config_supported(config: dict[str, Any], path: Path) -> None:
    top = config.get("class_name")
    if top not in CONTAINER_CLASSES:
        raise ModelFileError(f"{path}: top-level object is {shown(repr(top))}, not a Keras model")
    for raw_cls, raw_name in _iter_layers(config):
        cls, name = shown(raw_cls), shown(raw_name)
        if raw_cls in CODE_CARRYING_CLASSES:
            raise UnsupportedModelError(
                f"layer '{name}' ({cls}) is refused: it carries Python code, which tinyrobust never "
                "executes. Replace it with supported layers and re-save the model."
            )
        if raw_cls in CONTAINER_CLASSES:
            raise UnsupportedModelError(
                f"layer '{name}' ({cls}) is a nested model; flatten it into one functional model"
            )
        if raw_cls not in SUPPORTED_CLASSES:
            raise UnsupportedModelError(
                f"layer '{name}' has unsupported class {cls}. Supported: {', '.join(sorted(SUPPORTED_CLASSES))}"
            )
