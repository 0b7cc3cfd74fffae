"""Per-layer fidelity (workflows/fidelity.py, `validate --layers`) and the input grid taken from the
calibration data, on hls4ml's jet tagger (no input quantizer; standardised inputs far outside [0, 1]),
trained briefly on bundled data (tests/published_zoo.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinyrobust.cli import main
from tinyrobust.converter.pipeline import convert
from tinyrobust.dataset import Dataset
from tinyrobust.workflows.fidelity import fidelity_report, layer_fidelity


@pytest.fixture(scope="module")
def jet(tmp_path_factory: pytest.TempPathFactory, published_model) -> dict[str, object]:
    out = tmp_path_factory.mktemp("jet")
    model, task = published_model("jet_tagger")
    np.savez(out / "cal.npz", x=task.x[task.train])
    np.savez(out / "test.npz", x=task.x[task.test], y=task.y[task.test])
    return {"model": model, "task": task, "cal": out / "cal.npz", "test": out / "test.npz"}


def _agreement(deployed, x: np.ndarray) -> float:
    return float(np.mean(deployed.keras_predict(x).argmax(1) == deployed.predict(x).argmax(1)))


@pytest.mark.slow
def test_input_grid_comes_from_the_calibration_data(jet) -> None:
    """With its calibration data and no hand-chosen range: ≥ 99.5 % top-1 agreement on every sample; the
    input grid's origin says it came from calibration."""
    task = jet["task"]
    deployed = convert(jet["model"], calibration=Dataset(task.x[task.train], None))
    assert "calibration" in deployed.program.input_quantization.source
    assert _agreement(deployed, task.x) >= 0.995


@pytest.mark.slow
def test_fidelity_names_a_saturated_input_and_stays_quiet_on_a_well_ranged_one(jet) -> None:
    """Forcing the old [0, 1] input range: the report's first tensor beyond one step is the input, with
    most of its values clipped; with the calibrated range the input is hardly clipped."""
    task = jet["task"]
    cal = Dataset(task.x[task.train], None)
    x = task.x[task.test][:150]
    forced = fidelity_report(layer_fidelity(convert(jet["model"], calibration=cal, input_range=(0.0, 1.0)), x), 150)
    rows = {r["tensor"]: r for r in forced["layers"]}
    assert forced["first_beyond_one_step"]["tensor"] == "input" and rows["input"]["clipped"] > 0.5
    calibrated = fidelity_report(layer_fidelity(convert(jet["model"], calibration=cal), x), 150)
    rows = {r["tensor"]: r for r in calibrated["layers"]}
    assert rows["input"]["clipped"] < 0.01 and rows["input"]["mean_steps"] < 0.3
    for r in calibrated["layers"]:
        assert r["cosine"] > 0.999 and r["snr_db"] is not None and r["snr_db"] > 25, r


@pytest.mark.slow
def test_validate_layers_writes_the_table(jet, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    report = tmp_path / "v.json"
    rc = main(["validate", str(jet["model"]), "--data", str(jet["test"]), "--calibration", str(jet["cal"]),
               "--layers", "--json", str(report), "--out", str(tmp_path / "export"), "--no-progress"])
    assert rc == 0
    fidelity = json.loads(report.read_text())["fidelity"]
    assert [r["tensor"] for r in fidelity["layers"]][:2] == ["input", "relu1"] and len(fidelity["worst"]) == 3
    assert "per-layer fidelity vs Keras" in capsys.readouterr().out
    assert "## Per-layer fidelity vs Keras" in (tmp_path / "export" / "report.md").read_text()
