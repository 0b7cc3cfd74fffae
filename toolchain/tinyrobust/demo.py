"""`tinyrobust demo`: the whole promise on the embedded example.

Train (or load the committed) stochastic-ternary QKeras model on load_digits, export it for the
NUCLEO-H743ZI with the firmware built, validate it on the emulated Cortex-M7 (QEMU) over the
held-out split, and print what a user wants to see.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HELD_OUT_FROM = 1200  # load_digits samples [1200:] (597) are never trained on
EXAMPLE_NAME = "digits_stq.h5"


@dataclass(frozen=True)
class DigitsSplit:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def digits_split(seed: int = 0) -> DigitsSplit:
    """load_digits (ships with scikit-learn) scaled to [0, 1], shuffled once, split 1200 / 597."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    y = d.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    return DigitsSplit(x[:HELD_OUT_FROM], y[:HELD_OUT_FROM], x[HELD_OUT_FROM:], y[HELD_OUT_FROM:])


def train_digits_model(path: Path, epochs: int = 30, seed: int = 1) -> Path:
    """A small stochastic-ternary CNN in the seed paper's style, trained with QKeras."""
    import qkeras as q
    import tensorflow as tf
    import tf_keras as keras

    from . import frontend  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

    tf.keras.utils.set_random_seed(seed)
    st = q.stochastic_ternary
    inp = keras.Input((8, 8, 1), name="image")
    x = q.QConv2D(16, (3, 3), padding="same", kernel_quantizer=st(alpha="auto_po2"), name="conv1")(inp)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = q.QActivation(q.quantized_relu(4, 2), name="act1")(x)
    x = q.QDepthwiseConv2D((3, 3), padding="same", depthwise_quantizer=st(alpha="auto_po2"), name="dw2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = q.QActivation(q.quantized_relu(4, 2), name="act2")(x)
    x = keras.layers.MaxPooling2D((2, 2), name="pool2")(x)
    x = q.QConv2D(32, (3, 3), padding="same", kernel_quantizer=st(alpha="auto_po2"), name="conv3")(x)
    x = keras.layers.BatchNormalization(name="bn3")(x)
    x = q.QActivation(q.quantized_relu(4, 2), name="act3")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = q.QDense(10, kernel_quantizer=st(alpha="auto_po2"), name="logits")(x)
    x = keras.layers.Activation("softmax", name="softmax")(x)
    model = keras.Model(inp, x, name="digits_stq")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    split = digits_split()
    model.fit(split.x_train, split.y_train, epochs=epochs, batch_size=32, verbose=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def example_model() -> Path | None:
    """The committed example in a source checkout (examples/digits_stq.h5), if present."""
    candidate = Path(__file__).resolve().parents[2] / "examples" / EXAMPLE_NAME
    return candidate if candidate.is_file() else None


def run_demo(work_dir: Path | None = None, target: str = "qemu", limit: int | None = None) -> int:
    from .commands import convert_model
    from .dataset import Dataset
    from .export import export_program, load_export
    from .validate import validate

    with tempfile.TemporaryDirectory(prefix="tinyrobust-demo-") as tmp_name:
        work = Path(work_dir) if work_dir else Path(tmp_name)
        work.mkdir(parents=True, exist_ok=True)
        split = digits_split()
        cal_path, test_path = work / "digits_train.npz", work / "digits_test.npz"
        np.savez(cal_path, x=split.x_train, y=split.y_train)
        np.savez(test_path, x=split.x_test, y=split.y_test)
        model = example_model()
        if model is None:
            print("training the example model on load_digits (no committed example found)…")
            model = train_digits_model(work / EXAMPLE_NAME)
        print(f"model: {model}")
        deployed = convert_model(model, calibration=cal_path, input_range="0,1", packing="t2")
        result = export_program(deployed.program, "nucleo_h743zi", work / "export", model_path=model, build=True)
        export = load_export(result.out_dir)
        data = Dataset.load(test_path).limit(limit)
        keras_out = deployed.keras_predict(data.x)
        validation = validate(export, data, target, keras_outputs=keras_out,
                              progress=os.environ.get("CI") is None)
        print()
        print("\n".join(summary(result.report, validation.report)))
        return 0 if validation.bit_exact else 1


def summary(export_report: dict, report: dict) -> list[str]:
    acc = report["accuracy"]
    n = report["samples"]
    lines = [
        "tinyrobust demo: stochastic-ternary CNN on load_digits → NUCLEO-H743ZI (validated on "
        f"{report['target']})",
        f"  held-out samples        {n}",
        f"  accuracy keras          {100 * acc['keras']:.2f} %",
        f"  accuracy reference      {100 * acc['reference']:.2f} %",
        f"  accuracy target         {100 * acc['target']:.2f} %",
        f"  bit-exact vs reference  {report['agreement']['target_reference_exact']}/{n}",
        f"  top-1 ref vs keras      {report['agreement']['reference_keras_top1']}/{n}",
    ]
    lat = report.get("latency") or {}
    if lat.get("unit") not in (None, "none"):
        macs = export_report["totals"]["macs"]
        lines.append(f"  latency                 {lat['mean']:,.0f} {lat['unit']} per inference "
                     f"({lat['mean'] / max(macs, 1):.2f} per MAC, {macs:,} MACs)")
    t = export_report["totals"]
    lines.append(f"  weights                 {t['params']:,} ({export_report['packing']}, "
                 f"{t['packed_weight_bytes']:,} B packed)")
    linked = export_report["budget"]["linked"] or export_report["budget"]["estimate"]
    for name, r in linked["regions"].items():
        lines.append(f"  {name:<23} {r['used']:>9,} / {r['size']:,} B ({100 * r['used'] / r['size']:.1f} %)")
    return lines
