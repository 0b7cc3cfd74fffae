"""The published architectures as users bring them (tests/published_zoo.py: MLPerf Tiny, hls4ml and the
QKeras examples, each trained briefly on bundled data): deployed with their calibration data and the
default settings (--fidelity exact: int16 activations on the calibrated tensors), every classifier must
agree with Keras top-1 on ≥ 99.5 % of the held-out samples (on the reference, every sample) and run
bit-exact on the emulated Cortex-M7 (QEMU, a sample). The models are trained with TensorFlow's
deterministic ops, so a machine gives the same figures on every run. int8 everywhere (--fidelity fast)
left ResNet-8 at 99.0 %, DS-CNN at 99.5 % and MobileNetV1 at 84 % (an earlier training run): the int8
rounding noise compounds layer by layer, which the last test measures."""

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
from tinyrobust.workflows.fidelity import layer_fidelity

pytestmark = pytest.mark.slow

# MobileNetV1 (int16 throughout, 13 depthwise-separable blocks) is the closest to it: this briefly trained
# model amplifies any perturbation by ~2 dB per layer and its disagreements are Keras near-ties. With
# CMSIS-NN's symmetric s16 grids it agreed on 99.16 % (592/597); with the ReLU outputs' int16 grids on
# [0, max] (Grid.wide), on 99.83 % (596/597). Trained with seeds 4 to 7 instead: 1, 0, 1 and 3
# disagreements, the 3 on a model at 56 % accuracy on two classes.
AGREEMENT_GOAL = 0.995
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
    assert agreement >= AGREEMENT_GOAL, f"{name}: {agreement:.4f} of {len(x)} samples"


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


def test_int16_activations_lift_the_logits_snr_over_int8(published_model) -> None:
    """ResNet-8's logits against Keras: int16 activations (the default) end tens of dB above int8 everywhere
    (measured: 36 dB at --fidelity fast, 78 dB at exact), and the int8 run is the one whose noise grew
    from layer to layer."""
    path, task = published_model("resnet8")
    x = task.x[task.test][:40]
    calibration = Dataset(task.x[task.train][:pz.CALIBRATION], None)
    fast = layer_fidelity(convert(path, calibration=calibration, fidelity="fast"), x)
    exact = layer_fidelity(_deploy("resnet8", published_model), x)
    assert {op.kernel for op in _deploy("resnet8", published_model).program.ops} >= {"tr_convolve_s16_t2",
                                                                                      "tr_add_s16"}
    logits_fast, logits_exact = fast[-1], exact[-1]
    assert logits_fast.tensor == logits_exact.tensor == "logits"
    assert logits_fast.snr_db is not None and logits_exact.snr_db is not None
    assert logits_exact.snr_db > logits_fast.snr_db + 20, (logits_fast.snr_db, logits_exact.snr_db)
    assert fast[1].snr_db is not None and fast[1].snr_db > logits_fast.snr_db + 5  # int8: noise compounds
