"""Load a Keras .h5 with tf-keras and QKeras's custom objects, after safe_load has refused what must
never be deserialised (Lambda layers carry code that would run on load)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tf_keras
from qkeras.utils import _add_supported_quantized_objects

from ...errors import ModelFileError, shown
from .safe_load import check_config_supported, read_model_config


def load_model(path: Path) -> Any:
    """The tf-keras model in `path`, after refusing Lambda and unsupported classes unexecuted."""
    path = Path(path)
    config = read_model_config(path)
    check_config_supported(config, path)
    custom: dict[str, Any] = {}
    _add_supported_quantized_objects(custom)
    try:
        return tf_keras.models.load_model(path, custom_objects=custom, compile=False)
    except Exception as exc:  # Keras raises many types for a damaged file
        detail = f"{type(exc).__name__}: {shown(exc, 300)}"
        raise ModelFileError(f"{path}: Keras could not load the model ({detail})") from exc
