"""Bad input gets a clear error, exit 2, and nothing half-written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinyrobust.cli import main

pytestmark = pytest.mark.slow


def _tiny_model(path: Path, extra=None) -> Path:
    import qkeras as q
    import tf_keras as keras

    inp = keras.Input((4, 4, 1))
    x = q.QConv2D(2, (3, 3), kernel_quantizer=q.ternary(), name="conv")(inp)
    if extra is not None:
        x = extra(x)
    x = keras.layers.Flatten()(x)
    x = q.QDense(3, kernel_quantizer=q.ternary(), name="dense")(x)
    keras.Model(inp, x).save(path)
    return path


def _cal(tmp_path: Path, shape=(4, 4, 1)) -> Path:
    path = tmp_path / "cal.npz"
    np.savez(path, x=np.random.default_rng(0).random((8, *shape)).astype(np.float32), y=np.zeros(8, np.int64))
    return path


def test_lambda_is_refused_and_never_executed(tmp_path, capsys):
    import tf_keras as keras

    marker = tmp_path / "lambda_ran"
    marker_name = str(marker)  # Keras stores the closure in the file; a str serialises, a Path does not

    def side_effect(x):
        with open(marker_name, "w") as f:
            f.write("executed")
        return x

    model = _tiny_model(tmp_path / "lambda.h5", extra=keras.layers.Lambda(side_effect, name="sneaky"))
    marker.unlink()  # building the model traced the Lambda once; from here on it must never run
    out = tmp_path / "out"
    rc = main(["export", str(model), "--calibration", str(_cal(tmp_path)), "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "sneaky" in err and "Lambda" in err
    assert not marker.exists(), "the Lambda's code ran"
    assert not out.exists()


def test_truncated_h5_is_a_clear_error(tmp_path, capsys):
    model = _tiny_model(tmp_path / "m.h5")
    data = model.read_bytes()
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(data[: len(data) // 2])
    rc = main(["export", str(truncated), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "truncated.h5" in err and "not a readable Keras .h5 model" in err
    assert not (tmp_path / "out").exists()


def test_non_keras_file_is_a_clear_error(tmp_path, capsys):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"this is not HDF5 at all" * 10)
    assert main(["export", str(junk)]) == 2
    assert "junk.h5" in capsys.readouterr().err


def test_unsupported_layer_names_layer_and_class(tmp_path, capsys):
    import tf_keras as keras

    inp = keras.Input((8, 3))
    x = keras.layers.Conv1D(2, 3, name="time_conv")(inp)
    path = tmp_path / "conv1d.h5"
    keras.Model(inp, x).save(path)
    assert main(["export", str(path)]) == 2
    err = capsys.readouterr().err
    assert "time_conv" in err and "Conv1D" in err and "Supported" in err


def test_missing_calibration_names_the_tensor(tmp_path, capsys):
    model = _tiny_model(tmp_path / "m.h5")
    rc = main(["export", str(model), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "calibration" in err and "'conv'" in err


def test_wrong_data_shape_is_refused(tmp_path, capsys):
    model = _tiny_model(tmp_path / "m.h5")
    cal = _cal(tmp_path)
    out = tmp_path / "out"
    assert main(["export", str(model), "--calibration", str(cal), "-o", str(out)]) == 0
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((2, 5, 5, 1), np.float32), y=np.zeros(2, np.int64))
    capsys.readouterr()
    assert main(["validate", str(out), "--data", str(bad), "--no-progress"]) == 2
    assert "(5, 5, 1)" in capsys.readouterr().err


def test_corrupt_export_is_refused(tmp_path, capsys):
    model = _tiny_model(tmp_path / "m.h5")
    out = tmp_path / "out"
    assert main(["export", str(model), "--calibration", str(_cal(tmp_path)), "-o", str(out)]) == 0
    program = out / "program.json"
    text = program.read_text()
    assert '"model_name": "m"' in text
    program.write_text(text.replace('"model_name": "m"', '"model_name": "edited"', 1))  # an edit, not whitespace
    capsys.readouterr()
    assert main(["validate", str(out), "--data", str(_cal(tmp_path)), "--no-progress"]) == 2
    assert "sha256" in capsys.readouterr().err


def test_export_is_deterministic(tmp_path):
    model = _tiny_model(tmp_path / "m.h5")
    cal = _cal(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["export", str(model), "--calibration", str(cal), "-o", str(a)]) == 0
    assert main(["export", str(model), "--calibration", str(cal), "-o", str(b)]) == 0
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b and files_a
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_wrong_data_shape_with_h5_is_refused_before_keras(tmp_path, capsys):
    model = _tiny_model(tmp_path / "m.h5")
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((2, 3, 3, 1), np.float32), y=np.zeros(2, np.int64))
    rc = main(["validate", str(model), "--data", str(bad), "--calibration", str(_cal(tmp_path)), "--no-progress"])
    assert rc == 2 and "(3, 3, 1)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse refuses it: usage, one error line, exit 2
        main(["validate", str(model), "--data", str(bad), "--limit", "0", "--no-progress"])
    assert exc.value.code == 2
