"""converter/model_file.py: files that are not tf-keras .h5 models are named for what they are, with what
to do, before TensorFlow is imported; quantizer names are checked against QKeras; strings from the file
reach the terminal escaped and cut."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

from tinyrobust.cli import main
from tinyrobust.converter import (
    frontend,  # noqa: F401  (see below)
    model_file,
)
from tinyrobust.errors import ModelFileError, UnsupportedModelError

pytestmark = pytest.mark.slow
# The frontend is imported here, at collection, not first inside a test under capsys: TensorFlow's logging
# handlers bind the sys.stderr of their first import, and capsys's stream is closed after that test.
REPO = Path(__file__).resolve().parents[2]

KERAS3 = """
import os, sys
os.environ.pop("TF_USE_LEGACY_KERAS", None)
import keras, tensorflow as tf
out = sys.argv[1]
assert keras.__version__.startswith("3")
m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
m.save(f"{out}/keras3.h5")
m.save(f"{out}/keras3.keras")
tf.saved_model.save(tf.Module(), f"{out}/saved_model")
"""


@pytest.fixture(scope="module")
def keras3_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What Keras 3 writes: a .h5, a .keras archive, and a TensorFlow SavedModel directory."""
    out = tmp_path_factory.mktemp("keras3")
    subprocess.run([sys.executable, "-c", KERAS3, str(out)], check=True, capture_output=True, timeout=300)
    return out


@pytest.fixture(scope="module")
def qkeras_h5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import qkeras as q
    import tf_keras as keras

    inp = keras.Input((4, 4, 1))
    x = q.QConv2D(2, (3, 3), kernel_quantizer=q.ternary(), name="conv")(inp)
    x = keras.layers.Flatten()(x)
    x = q.QDense(3, kernel_quantizer=q.ternary(), name="dense")(x)
    path = tmp_path_factory.mktemp("qkeras") / "m.h5"
    keras.Model(inp, x).save(path)
    return path


def _edited(src: Path, dst: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        f.attrs["model_config"] = json.dumps(edit(config))
    return dst


@pytest.mark.parametrize("name, words", [
    ("keras3.h5", ["saved by Keras 3.", "(Keras 3)", "tf-keras"]),
    ("keras3.keras", ["a Keras 3 .keras archive", "model.save('model.h5')"]),
    ("saved_model", ["a TensorFlow SavedModel directory", "model.save('model.h5')"]),
])
def test_other_formats_are_named_with_what_to_do(keras3_files: Path, name: str, words: list[str], tmp_path: Path,
                                                 capsys) -> None:
    with pytest.raises(ModelFileError) as exc:
        model_file.read_model_config(keras3_files / name)
    assert all(w in str(exc.value) for w in words), exc.value
    assert main(["export", str(keras3_files / name), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words[0] in err[0]


def test_keras3_file_is_refused_before_tensorflow_is_imported(keras3_files: Path) -> None:
    """Before: a 26 s load, then a three-line dump of the InputLayer config."""
    probe = ("import sys; from tinyrobust.cli import main; rc = main(sys.argv[1:]); "
             "print('tf' if 'tensorflow' in sys.modules else 'no tf'); sys.exit(rc)")
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", probe, "export", str(keras3_files / "keras3.h5")],
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO / "toolchain")))
    assert res.returncode == 2 and res.stdout.strip() == "no tf", res.stderr
    print(f"Keras 3 .h5 refused in {time.perf_counter() - t0:.1f} s (interpreter start included)")


@pytest.mark.parametrize("value", [
    {"module": "qkeras.quantizers", "class_name": "ternery", "config": {}, "registered_name": "ternery"},
    "quantized_foo(4, 0, 1)",
])
def test_unknown_quantizer_names_layer_and_quantizer(qkeras_h5: Path, tmp_path: Path, value: object,
                                                     capsys) -> None:
    """Before: Keras' TypeError with the layer's whole config (~1,500 characters)."""
    def edit(config: dict) -> dict:
        for layer in config["config"]["layers"]:
            if layer["config"]["name"] == "dense":
                layer["config"]["kernel_quantizer"] = value
        return config

    bad = _edited(qkeras_h5, tmp_path / "bad.h5", edit)
    with pytest.raises(UnsupportedModelError) as exc:
        model_file.read_model_config(bad)
    name = "ternery" if isinstance(value, dict) else "quantized_foo"
    message = str(exc.value)
    assert message.startswith(f"layer 'dense' (QDense): kernel_quantizer is '{name}', a quantizer QKeras does not")
    assert "config=" not in message and len(message) < 400
    assert main(["export", str(bad), "-o", str(tmp_path / "out")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.parametrize("edit, words", [
    (lambda c: [c], "a JSON list, expected an object"),
    (lambda c: {**c, "config": [1, 2]}, "'config' is a JSON list"),
    (lambda c: {**c, "config": {**c["config"], "layers": {"a": 1}}}, "'layers' is a JSON object"),
    (lambda c: {**c, "config": {**c["config"], "layers": [3]}}, "layer 0 has no class_name"),
])
def test_config_of_the_wrong_shape_is_a_model_file_error(qkeras_h5: Path, tmp_path: Path, edit, words: str,
                                                         capsys) -> None:
    """Before: AttributeError, an internal error."""
    bad = _edited(qkeras_h5, tmp_path / "shape.h5", edit)
    with pytest.raises(ModelFileError, match="is not a Keras model config"):
        model_file.read_model_config(bad)
    assert main(["export", str(bad), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert words in err and "internal error" not in err


def test_strings_from_the_file_are_escaped_and_cut(qkeras_h5: Path, tmp_path: Path, capsys) -> None:
    hostile = "Evil\x1b[2J\x1b[31m\u202e" + "X" * 5000

    def edit(config: dict) -> dict:
        config["config"]["layers"][1]["class_name"] = hostile
        config["config"]["layers"][2]["config"]["name"] = "name\nwith a newline\x07"
        return config

    bad = _edited(qkeras_h5, tmp_path / "hostile.h5", edit)
    assert main(["export", str(bad), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\u202e" not in err and "\x07" not in err
    assert "\\x1b[2J" in err and "\\u202e" in err and "more characters)" in err
    assert len(err) < 2000 and len(err.strip().splitlines()) == 1


def test_known_quantizer_names_match_the_installed_qkeras_and_keras() -> None:
    import inspect

    import qkeras.quantizers as qq
    import tf_keras.activations as acts

    classes = {n for n, v in vars(qq).items() if inspect.isclass(v) and issubclass(v, qq.BaseQuantizer)}
    assert classes - {"BaseQuantizer"} == model_file.QKERAS_QUANTIZERS
    assert all(callable(getattr(qq, n)) for n in model_file.QKERAS_FUNCTIONS)
    keras_names = {n for n, v in vars(acts).items() if callable(v) and not n.startswith("_")
                   and n not in ("get", "serialize", "deserialize", "keras_export")}
    assert model_file.KERAS_ACTIVATIONS <= keras_names


def test_a_good_model_passes(qkeras_h5: Path) -> None:
    assert model_file.read_model_config(qkeras_h5)["class_name"] in ("Functional", "Model")
