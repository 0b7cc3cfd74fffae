"""Models with several inputs and several outputs, end to end.

Two small QKeras models trained briefly on load_digits: one with two inputs (the top and bottom halves
of the digit, a QDense each, concatenated, then the logits) and one with two outputs (a shared trunk,
a head for the digit and one for its parity). Each is converted (the inputs' grids from their own
quantizer or from calibration data with x0 and x1), checked against Keras, exported and validated byte
for byte on the host and on QEMU; data that lacks an input is refused naming it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zoo
from tinyrobust.cli import main
from tinyrobust.converter.pipeline import convert
from tinyrobust.converter.program import PROGRAM_FORMAT_MULTI, Program
from tinyrobust.dataset import Dataset
from tinyrobust.errors import DatasetError
from tinyrobust.firmware.hostbuild import sanitizer_preload

# Top-1 agreement with Keras, as the zoo models are held to (tests/test_e2e_reference.py).
AGREEMENT = 0.995
SPLIT = 32  # the top four rows of a digit feed input 0, the bottom four input 1

NO_QEMU = shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None


def _halves(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = x.reshape(len(x), -1)
    return flat[:, :SPLIT], flat[:, SPLIT:]


def two_inputs() -> object:
    """Two Inputs → QDense each → Concatenate → QDense → softmax. Each input states its own grid with
    a quantizer (8 and 6 bits: the firmware quantises each on its own); the logits' grid comes from
    calibration data (x0 and x1 through Keras)."""
    import qkeras as q
    import tf_keras as keras
    from tf_keras import layers

    top = keras.Input((SPLIT,), name="top")
    bottom = keras.Input((64 - SPLIT,), name="bottom")
    a = q.QActivation(q.quantized_relu(8, 0), name="top_q")(top)
    a = q.QDense(16, kernel_quantizer=q.ternary(), bias_quantizer=q.quantized_bits(8, 3, 1), name="dense_top")(a)
    a = q.QActivation(q.quantized_relu(4, 2), name="act_top")(a)
    b = q.QActivation(q.quantized_relu(6, 0), name="bottom_q")(bottom)
    b = q.QDense(16, kernel_quantizer=q.quantized_bits(8, 0, 1), bias_quantizer=q.quantized_bits(8, 3, 1),
                 name="dense_bottom")(b)
    b = q.QActivation(q.quantized_relu(4, 2), name="act_bottom")(b)
    x = layers.Concatenate(name="concat")([a, b])
    x = q.QDense(10, kernel_quantizer=q.ternary(alpha="auto_po2"), name="logits")(x)
    x = layers.Activation("softmax", name="softmax")(x)
    return keras.Model([top, bottom], x, name="two_inputs")


def two_outputs() -> object:
    """A shared trunk and two heads: the digit (softmax) and its parity (logits)."""
    import qkeras as q
    import tf_keras as keras
    from tf_keras import layers

    inp = keras.Input((8, 8, 1), name="digit_image")
    x = q.QActivation(q.quantized_relu(8, 0), name="in_q")(inp)
    x = layers.Flatten(name="flat")(x)
    x = q.QDense(24, kernel_quantizer=q.ternary(), name="trunk")(x)
    x = q.QActivation(q.quantized_relu(4, 2), name="act_trunk")(x)
    digit = q.QDense(10, kernel_quantizer=q.ternary(alpha="auto_po2"), name="digit_logits")(x)
    digit = layers.Activation("softmax", name="digit")(digit)
    parity = q.QDense(2, kernel_quantizer=q.quantized_bits(8, 0, 1), name="parity")(x)
    return keras.Model(inp, [digit, parity], name="two_outputs")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both models trained for a few epochs, their .h5 files, and the data as .npz (x0/x1 or x)."""
    import tensorflow as tf

    out = tmp_path_factory.mktemp("multi_io")
    x_train, y_train, x_test, y_test = zoo.digits()
    tf.keras.utils.set_random_seed(3)
    two_in = two_inputs()
    two_in.compile(optimizer=tf.keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    two_in.fit(list(_halves(x_train)), y_train, epochs=8, batch_size=32, verbose=0)
    two_in.save(out / "two_inputs.h5")
    two_out = two_outputs()
    two_out.compile(optimizer=tf.keras.optimizers.Adam(1e-2),
                    loss=[tf.keras.losses.SparseCategoricalCrossentropy(),
                          tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)])
    two_out.fit(x_train, [y_train, y_train % 2], epochs=8, batch_size=32, verbose=0)
    two_out.save(out / "two_outputs.h5")
    for split, x, y in (("calibration", x_train, y_train), ("test", x_test, y_test)):
        x0, x1 = _halves(x)
        np.savez(out / f"{split}_halves.npz", x0=x0, x1=x1, y=y)
        np.savez(out / f"{split}_image.npz", x=x, y=y)
    np.savez(out / "test_only_x0.npz", x0=_halves(x_test)[0], y=y_test)
    return {"two_inputs": out / "two_inputs.h5", "two_outputs": out / "two_outputs.h5", "dir": out}


def _validate(model: Path, data: Path, target: str, tmp_path: Path, *extra: str) -> tuple[int, dict]:
    report = tmp_path / f"{target}.json"
    rc = main(["validate", str(model), "--data", str(data), "--target", target, "--json", str(report),
               "--no-progress", *extra])
    return rc, json.loads(report.read_text()) if report.exists() else {}


# ---- without TensorFlow: the dataset's inputs --------------------------------------------------------


def test_dataset_reads_one_array_per_input(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x0=np.zeros((5, 3), np.float32), x1=np.ones((5, 2, 2), np.float32), y=np.arange(5))
    data = Dataset.load(path)
    assert [a.shape for a in data.inputs] == [(5, 3), (5, 2, 2)] and len(data.limit(2).inputs[1]) == 2
    data.check_inputs([("a", (3,)), ("b", (2, 2))], "--data")  # quiet: both present, both shaped right
    with pytest.raises(DatasetError, match=r"x1 has samples of shape \(2, 2\), the model's input 1 'b' takes \(4,\)"):
        data.check_inputs([("a", (3,)), ("b", (4,))], "--data")
    with pytest.raises(DatasetError, match="no array 'x2' for the model's input 2 'c'"):
        data.check_inputs([("a", (3,)), ("b", (2, 2)), ("c", (1,))], "--data")
    with pytest.raises(DatasetError, match="holds 2 inputs .* the model takes one"):
        data.check_shape((3,), "--data")


def test_dataset_refuses_inputs_of_different_lengths_and_x_beside_x0(tmp_path: Path) -> None:
    np.savez(tmp_path / "n.npz", x0=np.zeros((5, 3)), x1=np.zeros((4, 3)), y=np.arange(5))
    with pytest.raises(DatasetError, match="x1 holds 4 samples, x0 holds 5"):
        Dataset.load(tmp_path / "n.npz")
    np.savez(tmp_path / "b.npz", x=np.zeros((5, 3)), x0=np.zeros((5, 3)), y=np.arange(5))
    with pytest.raises(DatasetError, match="holds both 'x' and 'x0'"):
        Dataset.load(tmp_path / "b.npz")


# ---- conversion, reference and targets ---------------------------------------------------------------


@pytest.mark.slow
def test_two_inputs_convert_and_agree_with_keras(models: dict[str, Path], tmp_path: Path) -> None:
    deployed = convert(models["two_inputs"], calibration=Dataset.load(models["dir"] / "calibration_halves.npz"))
    program = deployed.program
    assert program.inputs == ("top", "bottom") and len(program.outputs) == 1
    top, bottom = program.input_quantizations
    assert (top.source, bottom.source) == ("input quantizer of 'top_q'", "input quantizer of 'bottom_q'")
    assert (top.scale, top.qmax - top.qmin, bottom.scale, bottom.qmax - bottom.qmin) == (1 / 256, 255, 1 / 64, 63)
    # Agreement is measured on all 1797 digits for resolution, as the zoo's is.
    test = Dataset.load(models["dir"] / "test_halves.npz")
    cal = Dataset.load(models["dir"] / "calibration_halves.npz")
    everything = [np.concatenate([a, b]) for a, b in zip(cal.inputs, test.inputs, strict=True)]
    keras_top1 = deployed.keras_predict_outputs(everything)[0].argmax(1)
    (reference,) = deployed.predict_int8_outputs(everything)
    agree = float(np.mean(keras_top1 == reference.argmax(1)))
    print(f"two_inputs: keras acc {np.mean(keras_top1[-len(test):] == test.y):.4f}, top-1 agreement {agree:.4f}")
    assert agree >= AGREEMENT
    reference = reference[-len(test):]
    # run_inputs takes one int8 array per input and gives the same bytes as the packed run.
    ints = [q.quantize(x) for q, x in zip(program.input_quantizations, test.inputs, strict=True)]
    (by_input,) = deployed.reference.run_inputs(ints)
    assert np.array_equal(by_input, reference)
    # Several inputs are written as format v3 and read back equal.
    program.save(tmp_path / "p.json")
    assert json.loads((tmp_path / "p.json").read_text())["format"] == PROGRAM_FORMAT_MULTI
    assert Program.load(tmp_path / "p.json").to_json_bytes() == program.to_json_bytes()


@pytest.mark.slow
def test_two_outputs_convert_and_agree_with_keras(models: dict[str, Path]) -> None:
    deployed = convert(models["two_outputs"], calibration=Dataset.load(models["dir"] / "calibration_image.npz"))
    program = deployed.program
    assert len(program.inputs) == 1 and program.outputs == ("digit_logits", "parity")
    test = Dataset.load(models["dir"] / "test_image.npz")
    everything = np.concatenate([Dataset.load(models["dir"] / "calibration_image.npz").x, test.x])
    keras_digit, keras_parity = deployed.keras_predict_outputs([everything])
    digit, parity = deployed.predict_int8_outputs([everything])
    assert digit.shape == (len(everything), 10) and parity.shape == (len(everything), 2)
    for name, k, r in (("digit", keras_digit, digit), ("parity", keras_parity, parity)):
        agree = float(np.mean(k.argmax(1) == r.argmax(1)))
        print(f"two_outputs {name}: top-1 agreement {agree:.4f}")
        assert agree >= AGREEMENT, name
    with pytest.raises(Exception, match="has 2 outputs"):
        _ = program.output  # a single-output step refuses clearly


@pytest.mark.slow
def test_two_inputs_are_bit_exact_on_the_host(models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "export"
    rc, r = _validate(models["two_inputs"], models["dir"] / "test_halves.npz", "host", tmp_path,
                      "--calibration", str(models["dir"] / "calibration_halves.npz"), "--out", str(out))
    assert rc == 0, r
    assert r["agreement"]["target_reference_exact"] == r["samples"] == 597
    assert r["agreement"]["reference_keras_top1"] >= 0.99 * 597  # 1797 digits give the finer bound above
    assert r["accuracy"]["target"] == r["accuracy"]["reference"] > 0.8
    assert [s["input"] for s in r["input_saturation"]] == ["top", "bottom"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(i["name"], i["offset"], i["bytes"]) for i in manifest["inputs"]] == [("top", 0, 32), ("bottom", 32, 32)]
    header = (out / "model" / "tr_model.h").read_text()
    assert "#define TR_MODEL_INPUT1_OFFSET 32\n" in header and "#define TR_MODEL_INPUT_BYTES 64\n" in header
    # The packed copies in and out of the arena, under ASan/UBSan.
    env = dict(os.environ, LD_PRELOAD=sanitizer_preload(), ASAN_OPTIONS="detect_leaks=0:abort_on_error=1")
    proc = subprocess.run([sys.executable, "-m", "tinyrobust.cli", "validate", str(out), "--data",
                           str(models["dir"] / "test_halves.npz"), "--target", "host", "--host-sanitize",
                           "--no-progress", "--limit", "100"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "bit-exact target vs reference: 100/100" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.slow
def test_two_outputs_are_bit_exact_on_the_host(models: dict[str, Path], tmp_path: Path) -> None:
    rc, r = _validate(models["two_outputs"], models["dir"] / "test_image.npz", "host", tmp_path,
                      "--calibration", str(models["dir"] / "calibration_image.npz"))
    assert rc == 0, r
    assert r["agreement"]["target_reference_exact"] == r["samples"] == 597
    assert r["agreement"]["target_reference_exact_per_output"] == {"digit_logits": 597, "parity": 597}
    assert r["agreement"]["reference_keras_top1"] >= 0.99 * 597  # output 0: the digit


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.skipif(NO_QEMU, reason="needs qemu-system-arm and arm-none-eabi-gcc")
@pytest.mark.parametrize("name, data", [("two_inputs", "halves"), ("two_outputs", "image")])
def test_several_inputs_and_outputs_are_bit_exact_on_qemu(models: dict[str, Path], tmp_path: Path, name: str,
                                                          data: str) -> None:
    out = tmp_path / "export"
    assert main(["export", str(models[name]), "--calibration", str(models["dir"] / f"calibration_{data}.npz"),
                 "-o", str(out), "--board", "qemu_mps2_an500"]) == 0
    rc, r = _validate(out, models["dir"] / f"test_{data}.npz", "qemu", tmp_path, "--limit", "60")
    assert rc == 0, r
    assert r["agreement"]["target_reference_exact"] == r["samples"] == 60
    assert r["latency"]["unit"] == "emulated instructions" and len(r["per_layer"]) > 0


@pytest.mark.slow
def test_data_without_an_input_is_refused_naming_it(models: dict[str, Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "export"
    assert main(["export", str(models["two_inputs"]), "--calibration",
                 str(models["dir"] / "calibration_halves.npz"), "-o", str(out)]) == 0
    capsys.readouterr()
    rc, r = _validate(out, models["dir"] / "test_only_x0.npz", "host", tmp_path)
    err = capsys.readouterr().err
    assert rc == 2 and r == {}
    assert "no array 'x1' for the model's input 1 'bottom' (shape (32,))" in err
    # An image dataset for a two-input model: 'x' is input 0 only, and the message says what is missing.
    rc, _ = _validate(out, models["dir"] / "test_image.npz", "host", tmp_path)
    assert rc == 2 and "no array 'x1'" in capsys.readouterr().err
    # The same data with both inputs passes that check (quiet), so the refusals above are the data's.
    rc, _ = _validate(out, models["dir"] / "test_halves.npz", "reference", tmp_path, "--limit", "5")
    assert rc == 0
    # --layers compares one input with Keras: refused before validating, naming the inputs.
    rc, _ = _validate(models["two_inputs"], models["dir"] / "test_halves.npz", "reference", tmp_path, "--layers",
                      "--calibration", str(models["dir"] / "calibration_halves.npz"))
    err = capsys.readouterr().err
    assert rc == 2 and "--layers compares a model with one input; this one has 2 (top, bottom)" in err
