"""validate on an export of a hand-made Program (no TensorFlow): a QEMU instance killed mid-run is
restarted and the run stays bit-exact, with the restart in the JSON; a death it cannot survive is one
line and exit 2; the input-saturation warning fires on badly ranged data and stays quiet on good data;
labels that are not classes are refused, unless the task is regression; --task auto says what it chose;
outputs are checked before any work."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from program_fixtures import autoencoder_program, small_program
from qemu_faults import FaultyLinks
from tinyrobust.cli import main
from tinyrobust.converter.passes.structure import final_softmax_note
from tinyrobust.converter.reference import Reference
from tinyrobust.firmware.project import load_export
from tinyrobust.targets import factory
from tinyrobust.targets.faultproxy import Fault
from tinyrobust.targets.qemu import QEMU_BOARD, QemuTarget
from tinyrobust.workflows.export import export_program
from tinyrobust.workflows.output_error import auc, dequantize

needs_qemu = [
    pytest.mark.qemu,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                       reason="needs qemu-system-arm and arm-none-eabi-gcc"),
]
INFER_FRAME = 8 + 8 + 16


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("validate") / "export"
    export_program(small_program(), "nucleo_h743zi", out)
    return out


def _data(path: Path, n: int, *, scale: float = 1.0, offset: float = 0.0, labels: np.ndarray | None = None) -> Path:
    rng = np.random.default_rng(n)
    x = (rng.random((n, 4, 4, 1)) * scale + offset).astype(np.float32)
    np.savez(path, x=x, y=rng.integers(0, 4, n) if labels is None else labels)
    return path


def _kill_first_instance(monkeypatch: pytest.MonkeyPatch, max_restarts: int) -> FaultyLinks:
    """The qemu target as the CLI opens it, every instance's link through a FaultProxy, and instance 0's
    proxy kills its QEMU (SIGKILL) after 30 requests."""
    links = FaultyLinks([Fault("kill", at_byte=INFER_FRAME * 30)])
    monkeypatch.setattr(factory, "QemuTarget", partial(QemuTarget, link_url=links, max_restarts=max_restarts))
    return links


@pytest.mark.usefixtures("export_dir")
class TestEmulatorDeath:
    pytestmark = needs_qemu

    def test_run_survives_and_the_json_counts_the_restart(self, export_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch, capsys) -> None:
        import time

        load_export(export_dir)  # the firmware is built before the clock starts
        factory.firmware_for(load_export(export_dir), QEMU_BOARD)
        links = _kill_first_instance(monkeypatch, max_restarts=3)
        report = tmp_path / "r.json"
        t0 = time.perf_counter()
        try:
            rc = main(["validate", str(export_dir), "--data", str(_data(tmp_path / "d.npz", 300)), "--target",
                       "qemu", "--json", str(report), "--no-progress"])
        finally:
            links.close()
        seconds = time.perf_counter() - t0
        assert rc == 0, capsys.readouterr().err
        r = json.loads(report.read_text())
        link = r["link"]
        print(f"validate, one QEMU killed: {r['samples']} samples, {link['restarts']} restart(s), "
              f"{link['resent_samples']} re-sent, {seconds:.1f} s: {link['events']}")
        assert r["samples"] == 300 and r["agreement"]["target_reference_exact"] == 300
        assert link["restarts"] == 1 and link["resent_samples"] == 1 and link["workers"] == 2
        assert "QEMU instance 0" in link["events"][0] and "killed by signal 9 (SIGKILL)" in link["events"][0]
        assert links.proxies[0].fired and len(links.killed_at) == 1

    def test_a_death_that_cannot_be_survived_is_one_line_and_exit_2(self, export_dir: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch, capsys) -> None:
        links = _kill_first_instance(monkeypatch, max_restarts=0)
        report = tmp_path / "r.json"
        try:
            rc = main(["validate", str(export_dir), "--data", str(_data(tmp_path / "d.npz", 300)), "--target",
                       "qemu", "--json", str(report), "--no-progress"])
        finally:
            links.close()
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1, err
        assert "QEMU instance 0" in err[0] and "was killed by signal 9 (SIGKILL)" in err[0]
        assert not report.exists()


# ---------------------------------------------------------------- data checks (reference target: fast)


def test_saturation_warning_fires_on_badly_ranged_input(export_dir: Path, tmp_path: Path, capsys) -> None:
    report = tmp_path / "r.json"
    data = _data(tmp_path / "pixels.npz", 200, scale=255.0)  # uint8-style 0…255 for a model that takes 0…1
    assert main(["validate", str(export_dir), "--data", str(data), "--json", str(report), "--no-progress"]) == 0
    err = capsys.readouterr().err
    r = json.loads(report.read_text())
    sat = r["input_saturation"]
    assert 0.98 < sat["fraction"] <= 1.0 and sat["above"] > 0 and sat["grid"] == [0.0, 1.0]
    assert len(r["warnings"]) == 1 and f"{100 * sat['fraction']:.1f} % of input values" in r["warnings"][0]
    assert err.count("warning:") == 1 and "outside the input grid [0, 1]" in err


def test_saturation_warning_names_the_fraction_just_over_the_threshold(export_dir: Path, tmp_path: Path,
                                                                       capsys) -> None:
    rng = np.random.default_rng(1)
    x = rng.random((100, 4, 4, 1)).astype(np.float32)
    x.reshape(-1)[:32] = 1.5  # 32 of 1,600 values = 2 %
    data = tmp_path / "few.npz"
    np.savez(data, x=x, y=rng.integers(0, 4, 100))
    assert main(["validate", str(export_dir), "--data", str(data), "--no-progress"]) == 0
    assert "2.0 % of input values (32 of 1,600)" in capsys.readouterr().err


def test_saturation_warning_stays_quiet_on_well_ranged_input(export_dir: Path, tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(2)
    x = rng.random((100, 4, 4, 1)).astype(np.float32)
    x.reshape(-1)[:16] = 1.5  # 1 % exactly: outliers, not a range mismatch
    data = tmp_path / "good.npz"
    np.savez(data, x=x, y=rng.integers(0, 4, 100))
    report = tmp_path / "r.json"
    assert main(["validate", str(export_dir), "--data", str(data), "--json", str(report), "--no-progress"]) == 0
    r = json.loads(report.read_text())
    assert r["warnings"] == [] and r["input_saturation"]["fraction"] == 0.01
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("label", [4, 99])
def test_labels_that_are_not_classes_are_refused(export_dir: Path, tmp_path: Path, capsys, label: int) -> None:
    labels = np.zeros(50, np.int64)
    labels[7] = label
    data = _data(tmp_path / "labels.npz", 50, labels=labels)
    assert main(["validate", str(export_dir), "--data", str(data), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "1 of 50 labels are not classes of this model (it has 4 outputs" in err[0], err


def test_auto_says_it_took_labelled_data_for_a_classifier(export_dir: Path, tmp_path: Path, capsys) -> None:
    report = tmp_path / "r.json"
    assert main(["validate", str(export_dir), "--data", str(_data(tmp_path / "d.npz", 30)), "--json", str(report),
                 "--no-progress"]) == 0
    r = json.loads(report.read_text())
    assert r["task"]["kind"] == "classification" and "classes of the 4 outputs" in r["task"]["reason"]
    assert 0.0 <= r["accuracy"]["target"] <= 1.0 and "output_error" not in r
    out = capsys.readouterr().out
    assert "task: classification (chosen by --task auto" in out and "accuracy: keras n/a" in out


def test_without_labels_auto_measures_the_output_and_checks_no_classes(export_dir: Path, tmp_path: Path,
                                                                         capsys) -> None:
    """No y and no softmax: regression. From an export directory there is no Keras model to compare with."""
    data = tmp_path / "unlabelled.npz"
    np.savez(data, x=np.random.default_rng(3).random((30, 4, 4, 1)).astype(np.float32))
    report = tmp_path / "r.json"
    assert main(["validate", str(export_dir), "--data", str(data), "--json", str(report), "--no-progress"]) == 0
    r = json.loads(report.read_text())
    assert r["task"]["kind"] == "regression" and "no labels" in r["task"]["reason"]
    assert r["accuracy"] is None and r["output_error"] is None and r["agreement"]["target_reference_exact"] == 30
    out = capsys.readouterr().out
    assert "output vs keras: n/a" in out and "accuracy" not in out


def test_a_softmax_model_without_labels_is_still_a_classifier(tmp_path: Path, capsys) -> None:
    """Its output is logits, so only argmax means anything: no accuracy without labels, bit-exactness still."""
    program = replace(small_program(), notes=(final_softmax_note("probs"),))
    export_program(program, "nucleo_h743zi", tmp_path / "sm")
    data = tmp_path / "unlabelled.npz"
    np.savez(data, x=np.random.default_rng(5).random((20, 4, 4, 1)).astype(np.float32))
    report = tmp_path / "r.json"
    assert main(["validate", str(tmp_path / "sm"), "--data", str(data), "--json", str(report), "--no-progress"]) == 0
    r = json.loads(report.read_text())
    assert r["task"]["kind"] == "classification" and "softmax 'probs'" in r["task"]["reason"]
    assert r["accuracy"] == {"keras": None, "reference": None, "target": None} and "output_error" not in r
    assert "accuracy: keras n/a   reference n/a   target n/a" in capsys.readouterr().out


def test_regression_does_not_check_labels_as_classes(export_dir: Path, tmp_path: Path) -> None:
    labels = np.full(20, 99)  # not classes of the 4 outputs: refused as a classification, unread by regression
    data = _data(tmp_path / "d.npz", 20, labels=labels)
    assert main(["validate", str(export_dir), "--data", str(data), "--task", "regression", "--no-progress"]) == 0


def test_an_autoencoder_export_with_anomaly_labels_ranks_its_reconstruction_error(tmp_path: Path, capsys) -> None:
    """From an export directory (no Keras): the deployed score's AUC on the reference and on the target,
    no output error, no accuracy."""
    program = autoencoder_program()
    export_program(program, "nucleo_h743zi", tmp_path / "ae")
    rng = np.random.default_rng(4)
    x = rng.random((40, 16)).astype(np.float32)
    y = np.arange(40) % 2
    np.savez(tmp_path / "d.npz", x=x, y=y)
    report = tmp_path / "r.json"
    assert main(["validate", str(tmp_path / "ae"), "--data", str(tmp_path / "d.npz"), "--json", str(report),
                 "--no-progress"]) == 0
    r = json.loads(report.read_text())
    assert r["task"]["kind"] == "anomaly" and r["accuracy"] is None and r["output_error"] is None
    an = r["anomaly"]
    deployed = dequantize(Reference(program).run(program.input_quantization.quantize(x).reshape(40, -1)),
                          0.05, 0)
    expected = auc(np.mean((x - deployed) ** 2, axis=1), y)
    assert an["auc"] == {"keras": None, "reference": expected, "target": expected}
    assert an["auc_difference"] is None and an["spearman_keras_target"] is None
    assert an["samples"] == 40 and an["anomalous"] == 20
    assert "anomaly AUC (40 samples, 20 anomalous): keras n/a" in capsys.readouterr().out
    assert r["warnings"] == []


def test_anomaly_labels_of_one_kind_give_no_auc_and_say_so(tmp_path: Path, capsys) -> None:
    export_program(autoencoder_program(), "nucleo_h743zi", tmp_path / "ae")
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(6).random((10, 16)).astype(np.float32), y=np.zeros(10, int))
    report = tmp_path / "r.json"
    assert main(["validate", str(tmp_path / "ae"), "--data", str(tmp_path / "d.npz"), "--task", "anomaly",
                 "--json", str(report), "--no-progress"]) == 0
    r = json.loads(report.read_text())
    assert r["anomaly"]["auc"] == {"keras": None, "reference": None, "target": None}
    assert len(r["warnings"]) == 1 and "every one of the 10 samples is normal (0)" in r["warnings"][0]
    assert "warning: every one of the 10 samples is normal (0)" in capsys.readouterr().err


def test_anomaly_on_a_model_that_is_no_autoencoder_is_refused(export_dir: Path, tmp_path: Path, capsys) -> None:
    data = _data(tmp_path / "d.npz", 20, labels=np.arange(20) % 2)
    assert main(["validate", str(export_dir), "--data", str(data), "--task", "anomaly", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not have the input's shape" in err[0], err


@pytest.mark.parametrize("where", ["directory", "unwritable"])
def test_json_that_cannot_be_written_is_refused_before_the_run(export_dir: Path, tmp_path: Path, capsys,
                                                               where: str) -> None:
    """Before: the whole run, then a traceback (IsADirectoryError / PermissionError) and the results lost."""
    fresh = tmp_path / "export"
    shutil.copytree(export_dir, fresh, ignore=shutil.ignore_patterns("firmware*"))
    json_path = tmp_path if where == "directory" else Path("/proc/tinyrobust/r.json")
    rc = main(["validate", str(fresh), "--data", str(_data(tmp_path / "d.npz", 20)), "--target", "qemu",
               "--json", str(json_path), "--no-progress"])
    err = capsys.readouterr()
    assert rc == 2 and len(err.err.strip().splitlines()) == 1 and "--json" in err.err, err.err
    assert err.out == "" and not list(fresh.glob("firmware*"))  # nothing ran, nothing was built
