"""The CLI's stable surface: validate on a .h5 reports the DESIGN.md keys; the demo runs end to end."""

from __future__ import annotations

import json

import pytest

from tinyrobust.cli import main

pytestmark = pytest.mark.slow


def test_validate_h5_reports_design_keys(trained_model, digits_files, tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = main(["validate", str(trained_model("ternary_bn_relu")), "--data", str(digits_files["test"]),
               "--calibration", str(digits_files["calibration"]), "--target", "host", "--json", str(out),
               "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    r = json.loads(out.read_text())
    for key in ("samples", "target", "board", "latency"):
        assert key in r
    for key in ("keras", "reference", "target"):
        assert 0.0 <= r["accuracy"][key] <= 1.0
    assert r["agreement"]["target_reference_exact"] == r["samples"] == 597
    assert r["agreement"]["reference_keras_top1"] >= 0.99 * r["samples"]
    printed = capsys.readouterr().out
    assert "bit-exact target vs reference: 597/597" in printed


@pytest.mark.qemu
def test_demo_runs_end_to_end(tmp_path, capsys):
    assert main(["demo", "--work-dir", str(tmp_path), "--limit", "60"]) == 0
    printed = capsys.readouterr().out
    assert "bit-exact vs reference  60/60" in printed
    assert "emulated instructions per inference" in printed
    assert (tmp_path / "export" / "firmware" / "firmware.elf").is_file()
