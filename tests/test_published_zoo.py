"""The published architectures as users bring them (tests/published_zoo.py: MLPerf Tiny, hls4ml and the
QKeras examples, each trained briefly on bundled data): deployed with their calibration data and the
default settings, every classifier must agree with Keras top-1 on ≥ 99.5 % of the held-out samples (on
the reference, every sample; KNOWN_GAPS names the three that do not yet, with their floors) and run
bit-exact on the emulated Cortex-M7 (QEMU, a sample)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import published_zoo as pz
from tinyrobust.cli import main
from tinyrobust.converter.pipeline import DeployedModel, convert
from tinyrobust.dataset import Dataset
from tinyrobust.workflows.export import export_program

pytestmark = pytest.mark.slow

AGREEMENT_GOAL = 0.995
# Below the goal today, measured (seed 3): ResNet-8 99.0 %, DS-CNN 99.5 % (594 of 597), MobileNetV1 84 %.
# The per-layer account (validate --layers) shows int8 rounding noise compounding layer by layer (the
# MobileNet's SNR falls from 46 dB after the stem to 4 dB at pw13), not one wrong tensor: the remedy is
# int16 activations on the tensors that lose it, not built yet. Held as floors so the gap cannot widen.
KNOWN_GAPS = {"resnet8": 0.975, "ds_cnn": 0.985, "mobilenet_v1": 0.78}
QEMU_SAMPLES = 4

_deployed: dict[str, DeployedModel] = {}


def _deploy(name: str, published_model) -> DeployedModel:
    if name not in _deployed:
        path, task = published_model(name)
        _deployed[name] = convert(path, calibration=Dataset(task.x[task.train][:pz.CALIBRATION], None))
    return _deployed[name]


@pytest.mark.parametrize("name", pz.CLASSIFIERS)
def test_agrees_with_keras_on_every_held_out_sample(name: str, published_model) -> None:
    _, task = published_model(name)
    deployed = _deploy(name, published_model)
    x, y = task.x[task.test], task.y[task.test]
    keras_top1 = deployed.keras_predict(x).argmax(1)
    chance = 1.0 / len(np.unique(task.y))
    # The check is only as good as the model: near chance, ties between logits decide top-1.
    assert np.mean(keras_top1 == y) > chance + 0.1, f"{name} trained to {np.mean(keras_top1 == y):.3f}"
    agreement = float(np.mean(deployed.predict(x).argmax(1) == keras_top1))
    print(f"{name}: Keras accuracy {np.mean(keras_top1 == y):.4f}, top-1 agreement {agreement:.4f} ({len(x)} samples)")
    assert agreement >= KNOWN_GAPS.get(name, AGREEMENT_GOAL), f"{name}: {agreement:.4f} of {len(x)} samples"


@pytest.mark.qemu
@pytest.mark.parametrize("name", pz.CLASSIFIERS)
def test_bit_exact_on_qemu(name: str, published_model, tmp_path: Path) -> None:
    path, task = published_model(name)
    deployed = _deploy(name, published_model)
    export_program(deployed.program, "nucleo_h743zi", tmp_path / "export", model_path=path)
    picks = task.test[:: max(1, len(task.test) // QEMU_SAMPLES)][:QEMU_SAMPLES]
    np.savez(tmp_path / "sample.npz", x=task.x[picks], y=task.y[picks])
    report = tmp_path / "qemu.json"
    rc = main(["validate", str(tmp_path / "export"), "--data", str(tmp_path / "sample.npz"), "--target", "qemu",
               "--json", str(report), "--no-progress"])
    r = json.loads(report.read_text())
    assert rc == 0, r
    assert r["agreement"]["target_reference_exact"] == r["samples"] == QEMU_SAMPLES
