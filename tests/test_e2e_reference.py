"""Foundation end to end: QKeras model → Program → numpy reference, compared with Keras.

For every zoo model: the reference's top-1 agrees with Keras on ≥ 99.5 % of the held-out digits,
and every tensor the model quantizes itself (QActivation grids) equals Keras's within one step.
"""

from __future__ import annotations

import numpy as np
import pytest

import zoo
from tinyrobust.converter.pipeline import convert
from tinyrobust.dataset import Dataset

pytestmark = pytest.mark.slow

# Top-1 agreement the contract expects (DESIGN: ≥ 99.5 %; the rest are honest tie flips).
AGREEMENT = 0.995
# Unquantized float weights are deployed as int8 per-channel approximations (reported as such), so a
# model built on them is held to a looser, stated bound.
APPROXIMATED_AGREEMENT = {"float_layers": 0.94}


def _keras_layer_outputs(model, names, x):
    import tf_keras

    probe = tf_keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    outs = probe(x, training=False)
    return [np.asarray(o) for o in (outs if isinstance(outs, list) else [outs])]


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_reference_matches_keras(name, trained_model, digits_files, record_property):
    test = Dataset.load(digits_files["test"])
    calibration = Dataset.load(digits_files["calibration"])
    deployed = convert(trained_model(name), calibration=calibration)
    # Agreement is a property of the two implementations, not of generalisation: measure it on all
    # 1797 digits for resolution; accuracy on the held-out split.
    everything = np.concatenate([calibration.x, test.x])
    keras_all = deployed.keras_predict(everything).argmax(1)
    ref_all = deployed.predict(everything).argmax(1)
    agree = float(np.mean(keras_all == ref_all))
    n_test = len(test.x)
    acc_keras = float(np.mean(keras_all[-n_test:] == test.y))
    acc_ref = float(np.mean(ref_all[-n_test:] == test.y))
    record_property("agreement", agree)
    print(f"{name}: keras acc {acc_keras:.4f} reference acc {acc_ref:.4f} top-1 agreement {agree:.4f}")
    assert agree >= APPROXIMATED_AGREEMENT.get(name, AGREEMENT), f"{name}: top-1 agreement {agree:.4f}"

    # Each layer whose output grid the model states, run on Keras's own inputs: within one step.
    checked = _quantized_layers_within_one_step(deployed, test.x[:200])
    if name not in APPROXIMATED_AGREEMENT:  # the float model has no layer on a model-stated input grid
        assert checked, f"{name}: no quantized layer could be compared in isolation"


def _stated(deployed, tensor: str) -> bool:
    return deployed.graph.tensors[tensor].grid.origin.startswith(("quantizer", "input quantizer"))


def _code_range(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def _quantized_layers_within_one_step(deployed, x) -> int:
    """Feed every op whose inputs and output sit on model-stated grids with Keras's values for its
    inputs (exact on those grids) and compare its output with Keras's: ≤ 1 output step."""
    program = deployed.program
    layer_names = {layer.name for layer in deployed.keras_model.layers}
    checked = 0
    for index, op in enumerate(program.ops):
        tensors = [program.tensor(t) for t in (*op.inputs, op.output)]
        if not all(t.source in layer_names or t.name == program.input for t in tensors):
            continue
        if not all(_stated(deployed, t.name) for t in tensors):
            continue
        sources = [t.source for t in tensors]
        values = _keras_layer_outputs(deployed.keras_model, [s for s in sources if s in layer_names], x)
        by_source = dict(zip([s for s in sources if s in layer_names], values, strict=True))
        ins = []
        for t in tensors[:-1]:
            v = by_source[t.source] if t.source in by_source else x
            ins.append(np.clip(np.round(v / t.scale) + t.zero_point, *_code_range(t.bits)).astype(t.dtype))
        out_t = tensors[-1]
        ours = np.stack([
            deployed.reference.run_op(index, [i[k].reshape(program.tensor(n).shape) for i, n in zip(ins, op.inputs,
                                                                                                 strict=True)])
            for k in range(len(x))
        ]).astype(np.float64)
        ours = out_t.scale * (ours - out_t.zero_point)
        steps = np.abs(ours.reshape(len(x), -1) - by_source[out_t.source].reshape(len(x), -1)) / out_t.scale
        assert steps.max() <= 1.0 + 1e-6, f"{op.name}: {steps.max():.2f} steps from Keras on Keras's inputs"
        checked += 1
    return checked


def test_digits_accuracy_is_reported(trained_model, digits_files):
    deployed = convert(trained_model("stochastic_dw_sep"), calibration=Dataset.load(digits_files["calibration"]))
    test = Dataset.load(digits_files["test"])
    acc_keras = float(np.mean(deployed.keras_predict(test.x).argmax(1) == test.y))
    acc_ref = float(np.mean(deployed.predict(test.x).argmax(1) == test.y))
    print(f"load_digits stochastic ternary: keras {acc_keras:.4f}, reference {acc_ref:.4f}")
    assert acc_keras > 0.8
    assert abs(acc_keras - acc_ref) < 0.02
