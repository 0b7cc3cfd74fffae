"""`tinyrobust train` end to end: a model trained for one epoch exports with no calibration data and is
bit-exact on the host target; bad inputs (an unreadable .npz, samples the architecture cannot take,
a bad λ) are one line and exit 2 with nothing written; the CLI offers the frontend's names."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from tinyrobust import cli, preflight
from tinyrobust.cli import main
from tinyrobust.converter.frontend import builders, recipe
from tinyrobust.workflows.demo import digits_split


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("train")
    s = digits_split()
    paths = {"train": d / "train.npz", "val": d / "val.npz"}
    np.savez(paths["train"], x=s.x_train[:256], y=s.y_train[:256])
    np.savez(paths["val"], x=s.x_test[:64], y=s.y_test[:64])
    return paths


def test_the_cli_offers_the_frontends_names() -> None:
    assert cli.TRAIN_ARCHITECTURES == preflight.TRAIN_ARCHITECTURES == tuple(builders.ARCHITECTURES)
    assert cli.QUANTIZE == recipe.QUANTIZE


@pytest.mark.slow
def test_a_trained_model_exports_without_calibration_bit_exact(digits: dict[str, Path], tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "m.h5"
    rc = main(["train", "--data", str(digits["train"]), "--val", str(digits["val"]), "--arch", "digits_cnn",
               "--jr", "0.01", "--lipschitz", "1,0.001", "--epochs", "1", "--seed", "2", "-o", str(model),
               "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and model.is_file()
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(model.stat().st_mode) == 0o666 & ~umask  # a plain write's mode, not mkstemp's 0600
    assert "epoch 1/1: loss" in out and "jr+lip " in out and "wrote" in out  # plain lines when not a terminal
    report = tmp_path / "v.json"
    rc = main(["validate", str(model), "--data", str(digits["val"]), "--target", "host", "--json", str(report),
               "--no-progress"])  # no --calibration: every tensor's grid comes from the model
    assert rc == 0, capsys.readouterr().err
    r = json.loads(report.read_text())
    assert r["agreement"]["target_reference_exact"] == r["samples"] == 64


@pytest.mark.parametrize(("change", "message"), [
    ({"--data": "not-npz"}, "not a readable .npz"),
    ({"--data": "flat"}, "takes images"),
    ({"--jr": "-1"}, "λ must be a positive number"),
    ({"--lipschitz": "0,1"}, "β and λ must be positive"),
    ({"--arch": "lenet"}, "neither a built-in architecture"),
])
def test_bad_input_is_one_line_and_nothing_written(change: dict[str, str], message: str, digits: dict[str, Path],
                                                   tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "not-npz").write_text("hello")
    np.savez(tmp_path / "flat", x=np.zeros((8, 64), np.float32), y=np.arange(8) % 2)
    args = {"--data": str(digits["train"]), "--val": str(digits["val"]), "--arch": "digits_cnn", "--epochs": "1"}
    for key, value in change.items():
        args[key] = str(tmp_path / value) if key == "--data" else value
    if args["--data"].endswith("flat"):
        args["--data"] = args["--val"] = str(tmp_path / "flat.npz")
    out = tmp_path / "m.h5"
    rc = main(["train", *[a for kv in args.items() for a in kv], "-o", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flat.npz", "not-npz"]  # no model, no temporary
