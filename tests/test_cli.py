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


@pytest.mark.qemu
def test_robustness_cli_on_qemu(trained_model, digits_files, tmp_path, capsys):
    import base64
    import re

    report, page = tmp_path / "rob.json", tmp_path / "rob.html"
    rc = main(["robustness", str(trained_model("stochastic_dw_sep")), "--data", str(digits_files["test"]),
               "--calibration", str(digits_files["calibration"]), "--target", "qemu", "--limit", "12",
               "--attacks", "fgsm,pgd,square,boundary", "--json", str(report), "--html", str(page),
               "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    r = json.loads(report.read_text())
    assert r["target"] == "qemu"
    assert r["confirmations"]["all_confirmed"]
    assert all(c["evaluated"] for c in r["masking_checks"])
    table = r["table"]["rows"]
    for model in ("keras", "target"):
        assert set(table[model]) >= {"clean", "fgsm", "pgd", "square", "boundary"}
        assert all(0.0 <= v <= 1.0 for v in table[model].values() if v is not None)
    pngs = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page.read_text())
    assert pngs and base64.b64decode(pngs[0]).startswith(b"\x89PNG\r\n\x1a\n")
