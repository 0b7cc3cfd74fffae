"""validate on models whose output is not a class: the MLPerf Tiny FC autoencoder (640 → 640, trained
briefly on digits 0 and 1 by tests/published_zoo.py; every other digit is an anomaly) is measured by its
output error vs Keras and the AUC of its reconstruction error, on the reference and bit-exact on QEMU;
a softmax classifier is still scored by argmax."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinyrobust.cli import main

AUC_TOLERANCE = 0.02  # |AUC deployed − AUC Keras|: int8 rounding may swap a few close pairs, not the ranking


@pytest.fixture(scope="module")
def autoencoder(tmp_path_factory: pytest.TempPathFactory, published_model) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("autoencoder")
    model, task = published_model("fc_autoencoder")
    # task.test lists the untrained anomalies of the training split first: shuffled, any prefix has both kinds
    test = np.random.default_rng(0).permutation(task.test)
    x, y = task.x[test], task.y[test]
    np.savez(out / "cal.npz", x=task.x[task.train])
    np.savez(out / "test.npz", x=x, y=y)
    # QEMU: 20 samples, half of them anomalous, so the AUC has 100 pairs to rank
    few = np.r_[np.flatnonzero(y == 0)[:10], np.flatnonzero(y == 1)[:10]]
    np.savez(out / "few.npz", x=x[few], y=y[few])
    return {"model": model, "cal": out / "cal.npz", "test": out / "test.npz", "few": out / "few.npz"}


def _validate(model: Path, data: Path, cal: Path, report: Path, *extra: str) -> tuple[int, dict]:
    rc = main(["validate", str(model), "--data", str(data), "--calibration", str(cal), "--json", str(report),
               "--no-progress", *extra])
    return rc, json.loads(report.read_text()) if report.exists() else {}


def _check_anomaly_report(r: dict, samples: int) -> None:
    assert r["task"]["kind"] == "anomaly" and r["task"]["requested"] == "auto"
    assert "input's shape (640)" in r["task"]["reason"]
    assert r["accuracy"] is None and "reference_keras_top1" not in r["agreement"]  # no argmax anywhere
    assert r["agreement"]["target_reference_exact"] == samples  # bit-exact
    (err,) = r["output_error"]
    assert err["tensor"] == "reconstruction" and err["values"] == samples * 640
    # within an int8 step on average (an int16 output's steps are 256 times finer)
    assert err["snr_db"] is not None and err["snr_db"] > 20 and err["mean_steps"] < (1.0 if err["bits"] == 8 else 256.0)
    an = r["anomaly"]
    assert an["samples"] == samples and 0 < an["anomalous"] < samples
    auc = an["auc"]
    assert all(auc[k] is not None for k in ("keras", "reference", "target"))
    assert auc["reference"] == auc["target"]
    assert an["auc_difference"] == pytest.approx(abs(auc["target"] - auc["keras"]))
    assert an["auc_difference"] <= AUC_TOLERANCE
    assert an["spearman_keras_target"] > 0.98


@pytest.mark.slow
def test_autoencoder_on_the_reference_is_measured_by_error_and_auc(autoencoder, tmp_path: Path, capsys) -> None:
    """200 held-out samples; with --out the export's report.md and report.html gain the tables."""
    rc, r = _validate(autoencoder["model"], autoencoder["test"], autoencoder["cal"], tmp_path / "r.json",
                      "--limit", "200", "--out", str(tmp_path / "export"))
    out = capsys.readouterr().out
    assert rc == 0, out
    _check_anomaly_report(r, 200)
    e, an = r["output_error"][0], r["anomaly"]
    assert an["auc"]["keras"] > 0.75  # the detector works (0.84 here): agreement near chance would say little
    print(f"fc_autoencoder, reference, 200 samples: SNR {e['snr_db']:.1f} dB, mean {e['mean_steps']:.2f} max "
          f"{e['max_steps']:.2f} steps; AUC keras {an['auc']['keras']:.4f} deployed {an['auc']['target']:.4f}, "
          f"Spearman {an['spearman_keras_target']:.4f}")
    assert "task: anomaly (chosen by --task auto" in out and "accuracy:" not in out
    assert "output 'reconstruction' vs keras" in out and "anomaly AUC (200 samples" in out
    md = (tmp_path / "export" / "report.md").read_text()
    assert "### Output vs Keras on `reference` (200 samples, task anomaly)" in md
    assert f"| {an['auc']['keras']:.4f} | {an['auc']['reference']:.4f} | {an['auc']['target']:.4f} |" in md
    assert 'id="output-measures"' in (tmp_path / "export" / "report.html").read_text()
    kept = json.loads((tmp_path / "export" / "report.json").read_text())
    assert kept["output_measures"]["anomaly"]["auc"] == an["auc"]


@pytest.mark.slow
def test_autoencoder_as_regression_reads_no_labels(autoencoder, tmp_path: Path) -> None:
    rc, r = _validate(autoencoder["model"], autoencoder["few"], autoencoder["cal"], tmp_path / "r.json",
                      "--task", "regression")
    assert rc == 0 and r["task"] == {"kind": "regression", "requested": "regression",
                                     "reason": "output 640 compared with Keras's"}
    assert r["accuracy"] is None and "anomaly" not in r and r["output_error"][0]["snr_db"] > 20


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                    reason="needs qemu-system-arm and arm-none-eabi-gcc")
def test_autoencoder_on_qemu_is_bit_exact_and_ranks_as_keras_does(autoencoder, tmp_path: Path) -> None:
    rc, r = _validate(autoencoder["model"], autoencoder["few"], autoencoder["cal"], tmp_path / "q.json",
                      "--target", "qemu")
    assert rc == 0
    _check_anomaly_report(r, 20)
    e, an = r["output_error"][0], r["anomaly"]
    print(f"fc_autoencoder, qemu, 20 samples: SNR {e['snr_db']:.1f} dB, mean {e['mean_steps']:.2f} max "
          f"{e['max_steps']:.2f} steps; AUC keras {an['auc']['keras']:.4f} deployed {an['auc']['target']:.4f}, "
          f"Spearman {an['spearman_keras_target']:.4f}; {r['latency']['mean']:.0f} {r['latency']['unit']}")


@pytest.mark.slow
def test_a_softmax_classifier_is_still_scored_by_argmax(trained_model, digits_files, tmp_path: Path,
                                                        capsys) -> None:
    model = trained_model("ternary_bn_relu")
    rc, r = _validate(model, digits_files["test"], digits_files["calibration"], tmp_path / "c.json",
                      "--limit", "100")
    assert rc == 0
    assert r["task"]["kind"] == "classification" and "softmax 'softmax'" in r["task"]["reason"]
    assert r["accuracy"]["keras"] > 0.5 and r["accuracy"]["target"] == r["accuracy"]["reference"]
    assert r["agreement"]["reference_keras_top1"] > 90 and "output_error" not in r and "anomaly" not in r
    capsys.readouterr()
    # its deployed output is the logits below the softmax: no output error against Keras's probabilities
    rc, _ = _validate(model, digits_files["test"], digits_files["calibration"], tmp_path / "x.json",
                      "--limit", "100", "--task", "regression")
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "ends in the softmax 'softmax'" in err[0], err
