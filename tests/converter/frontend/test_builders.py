"""converter/frontend/builders.py and recipe.py: every built-in architecture, built with a quantized
recipe, converts with no calibration data (every tensor has a grid); a float Keras .h5 is quantized
with its weights kept; wrong shapes are refused."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinyrobust.converter.frontend import builders, recipe  # sets TF_USE_LEGACY_KERAS before TensorFlow loads
from tinyrobust.converter.pipeline import convert
from tinyrobust.errors import DatasetError

keras: Any = importlib.import_module("tf_keras")
qkeras: Any = importlib.import_module("qkeras")


@pytest.mark.parametrize(("arch", "shape", "mode"), [
    ("digits_cnn", (8, 8, 1), "int8"),
    ("resnet8", (4, 4, 3), "stq"),  # residual adds: the grids on tensors with no activation
])  # ds_cnn and paper convert the same way (checked by hand; 15 s each here)
def test_a_quantized_architecture_converts_without_calibration(arch: str, shape: tuple[int, ...], mode: str,
                                                               tmp_path: Path) -> None:
    model = builders.build(arch, recipe.Quantization(mode), shape, 4)
    path = tmp_path / f"{arch}.h5"
    model.save(path)
    deployed = convert(path)  # raises CalibrationNeededError if any tensor lacked a grid
    x = np.random.default_rng(0).uniform(0, 1, (8, *shape)).astype(np.float32)
    agree = np.argmax(deployed.keras_predict(x), 1) == np.argmax(deployed.predict(x), 1)
    assert agree.mean() >= 0.75  # untrained: near-ties may flip, the grids must not be wrong


def test_float_weights_and_activations_with_none() -> None:
    model = builders.build("digits_cnn", recipe.Quantization("none"), (8, 8, 1), 10)
    assert not any(type(layer).__module__.startswith("qkeras") for layer in model.layers)


def test_a_float_h5_is_quantized_with_its_weights(tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    inp = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(4, 3, name="conv")(inp)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.Flatten(name="flat")(x)
    x = keras.layers.Dense(3, name="dense")(x)
    float_model = keras.Model(inp, keras.layers.Activation("softmax", name="softmax")(x))
    float_model.save(tmp_path / "f.h5")
    model, note = builders.from_file(tmp_path / "f.h5", recipe.Quantization("ternary"))
    assert "ternary" in note
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("QActivation") == 2 and "QConv2D" in kinds and "QDense" in kinds  # relu and logits
    kept, given = model.get_layer("conv").get_weights()[0], float_model.get_layer("conv").get_weights()[0]
    np.testing.assert_array_equal(kept, given)
    model.save(tmp_path / "q.h5")
    convert(tmp_path / "q.h5")


def test_wrong_shapes_are_refused() -> None:
    with pytest.raises(DatasetError, match="takes images"):
        builders.build("resnet8", recipe.Quantization("stq"), (64,), 10)
    with pytest.raises(DatasetError, match="takes images"):
        builders.build("paper", recipe.Quantization("stq"), (2, 2, 1), 10)
