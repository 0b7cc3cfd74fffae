"""What the user gave as a model file, decided before TensorFlow is imported (which takes 10–30 s).

tinyrobust reads QKeras models saved by tf-keras (Keras 2) as .h5. Everything else is named for what it
is, with what to do: a Keras 3 .h5 or .keras archive, a TensorFlow SavedModel directory, a file that is
not HDF5, an HDF5 file without a model, a model config that is valid JSON of the wrong shape, and a
quantizer QKeras does not know (named with its layer, not as a dump of the layer's config). Strings from
the file reach the terminal only through `errors.shown` (escaped, cut to a sane length).

Only h5py, json and zipfile here: converter/frontend/ imports TensorFlow on import, so these checks
live outside it (frontend/safe_load.py calls them before Keras reads anything).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py

from ..errors import ModelFileError, UnsupportedModelError, shown

# Quantizers QKeras 0.9 resolves by name (qkeras.quantizers: the BaseQuantizer classes, then the
# quantisation functions), and the Keras activations QKeras falls back to for any other name.
# tests/converter/test_model_file.py checks these against the installed QKeras and tf-keras.
QKERAS_QUANTIZERS = frozenset({
    "bernoulli", "binary", "quantized_bits", "quantized_hswish", "quantized_po2", "quantized_relu",
    "quantized_relu_po2", "quantized_sigmoid", "quantized_tanh", "quantized_ulaw", "stochastic_binary",
    "stochastic_ternary", "ternary",
})
QKERAS_FUNCTIONS = frozenset({"binary_sigmoid", "binary_tanh", "hard_sigmoid", "hard_tanh", "smooth_sigmoid",
                              "smooth_tanh"})
KERAS_ACTIVATIONS = frozenset({
    "elu", "exponential", "gelu", "hard_sigmoid", "linear", "mish", "relu", "selu", "sigmoid", "softmax",
    "softplus", "softsign", "swish", "tanh",
})
KNOWN_QUANTIZER_NAMES = QKERAS_QUANTIZERS | QKERAS_FUNCTIONS | KERAS_ACTIVATIONS
CONTAINERS = frozenset({"Sequential", "Functional", "Model"})
RESAVE = "load it with tf_keras and QKeras and save it with model.save('model.h5')"


def _is_keras_archive(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
    return "config.json" in names or "metadata.json" in names


def check_model_path_kind(path: Path) -> None:
    """Refuse a TensorFlow SavedModel directory by name (a directory may otherwise be an export)."""
    if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
        raise ModelFileError(
            f"{path}: a TensorFlow SavedModel directory, which tinyrobust does not read (it needs the "
            f"QKeras layers, not a traced graph); {RESAVE}"
        )


def check_model_path(path: Path) -> None:
    """Refuse, by name, what is not a file tinyrobust can open as a Keras .h5 model."""
    path = Path(path)
    if path.is_dir():
        check_model_path_kind(path)
        raise ModelFileError(f"{path}: a directory, not a model file (.h5)")
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    if zipfile.is_zipfile(path):
        if _is_keras_archive(path):
            raise ModelFileError(
                f"{path}: a Keras 3 .keras archive; tinyrobust reads QKeras models saved by tf-keras (Keras 2) "
                f"as .h5: build the model with tf_keras and QKeras and save it with model.save('model.h5')"
            )
        raise ModelFileError(f"{path}: a zip archive, not a Keras .h5 model")


def read_model_config(path: Path) -> dict[str, Any]:
    """The model_config of a tf-keras .h5, checked for everything that needs no Keras: the file's kind,
    the Keras version that wrote it, the config's shape and its quantizer names."""
    path = Path(path)
    check_model_path(path)
    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            version = f.attrs.get("keras_version")
            if raw is None:
                raise ModelFileError(f"{path}: HDF5 file holds no Keras model_config (weights-only file?)")
            if isinstance(raw, bytes):
                raw = raw.decode("utf-8", errors="replace")
            if isinstance(version, bytes):
                version = version.decode("utf-8", errors="replace")
            if isinstance(version, str) and version.split(".")[0].isdigit() and int(version.split(".")[0]) >= 3:
                raise ModelFileError(
                    f"{path}: saved by Keras {shown(version, 20)} (Keras 3); tinyrobust reads QKeras models "
                    f"saved by tf-keras (Keras 2): build the model with tf_keras and QKeras and save it as .h5"
                )
            if "model_weights" not in f and "layer_names" not in f.attrs:
                raise ModelFileError(f"{path}: Keras model file has no weights")
    except ModelFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ModelFileError(f"{path}: not a readable Keras .h5 model ({shown(exc, 200)})") from exc
    if not isinstance(raw, str):
        raise ModelFileError(f"{path}: model_config is a {type(raw).__name__}, not JSON text")
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: model_config is not valid JSON ({exc})") from exc
    _check_shape(config, path, "model_config")
    check_quantizer_names(config)
    return config


def _json_type(value: Any) -> str:
    for kind, name in ((bool, "boolean"), (dict, "object"), (list, "list"), (str, "string"), (int, "number"),
                       (float, "number")):
        if isinstance(value, kind):
            return name
    return "null" if value is None else type(value).__name__


def _check_shape(config: Any, path: Path, where: str) -> None:
    """The structure the rest of tinyrobust walks: {class_name: str, config: {layers: [{class_name: str,
    config: {name: str, ...}}, ...]}}, nested models included."""
    def bad(what: str) -> ModelFileError:
        return ModelFileError(f"{path}: {where} is not a Keras model config ({what})")

    if not isinstance(config, dict):
        raise bad(f"a JSON {_json_type(config)}, expected an object")
    if not isinstance(config.get("class_name"), str):
        raise bad("no class_name")
    inner = config.get("config")
    if not isinstance(inner, dict):
        raise bad(f"'config' is a JSON {_json_type(inner)}, expected an object")
    layers = inner.get("layers", [])
    if not isinstance(layers, list):
        raise bad(f"'layers' is a JSON {_json_type(layers)}, expected a list")
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict) or not isinstance(layer.get("class_name"), str):
            raise bad(f"layer {i} has no class_name")
        if not isinstance(layer.get("config"), dict) or not isinstance(layer["config"].get("name", ""), str):
            raise bad(f"layer {i} ({shown(layer['class_name'])}) has no config object with a name")
        if layer["class_name"] in CONTAINERS:
            _check_shape(layer, path, f"nested model {shown(layer['config'].get('name', '?'))!r}")


def _layers(config: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for layer in config["config"].get("layers", []):
        yield layer
        if layer["class_name"] in CONTAINERS:
            yield from _layers(layer)


def _quantizer_name(value: Any) -> str | None:
    """'quantized_bits' of "quantized_bits(4, 0, 1)" or of {"class_name": "quantized_bits", ...}."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.split("(", 1)[0].strip()
    if isinstance(value, dict) and isinstance(value.get("class_name"), str):
        return value["class_name"]
    return repr(value)


def check_quantizer_names(config: dict[str, Any]) -> None:
    """Every quantizer (and QKeras activation) a layer names is one QKeras knows; QKeras would otherwise
    fail inside Keras with the layer's whole config, or, for a string, call whatever that name is in its
    module."""
    for layer in _layers(config):
        cls = layer["class_name"]
        if not cls.startswith("Q"):
            continue  # Keras' own layers name Keras activations, which Keras checks itself
        for key, value in layer["config"].items():
            if not (key.endswith("quantizer") or key == "activation"):
                continue
            name = _quantizer_name(value)
            if name is not None and name not in KNOWN_QUANTIZER_NAMES:
                raise UnsupportedModelError(
                    f"layer '{shown(layer['config'].get('name', '?'))}' ({shown(cls)}): {shown(key)} is "
                    f"'{shown(name)}', a quantizer QKeras does not know (known: "
                    f"{', '.join(sorted(QKERAS_QUANTIZERS))})"
                )
