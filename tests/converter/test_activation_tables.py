"""QKeras activation quantizers that are not a plain requantisation (quantized_tanh, quantized_sigmoid,
quantized_relu with negative_slope or use_sigmoid, quantized_relu_po2, quantized_hswish) and Keras
ReLU/LeakyReLU variants, deployed as tr_lut_s8 tables of the function itself: on a tiny model converted
with calibration data, the table is the Keras layer evaluated on every input level (exact where the
quantizer's levels fit an int8 grid, else a note saying by how much it is not), the input grid comes
from calibration clipped where the function changes, nothing fuses it away, what cannot be a table is
refused naming the layer, and the C kernel answers what the reference does."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinyrobust.converter import memplan
from tinyrobust.converter.frontend import build_graph  # sets TF_USE_LEGACY_KERAS before TensorFlow loads
from tinyrobust.converter.ir import ActivationNode, Grid
from tinyrobust.converter.passes import GridOptions, run_structural, tensors_needing_calibration
from tinyrobust.converter.pipeline import DeployedModel, convert
from tinyrobust.dataset import Dataset
from tinyrobust.errors import UnsupportedModelError
from tinyrobust.workflows.report import build_report, render_markdown

keras: Any = importlib.import_module("tf_keras")  # only after the frontend import above
qkeras: Any = importlib.import_module("qkeras")
kl = keras.layers

# Quantizers whose levels are one uniform grid that fits int8: the deployed table is exact.
EXACT = [
    "quantized_tanh(4)",
    "quantized_tanh(3, symmetric=1, use_real_tanh=1)",
    "quantized_sigmoid(4)",  # QKeras's default (hard) sigmoid: what a quantized_hard_sigmoid would be
    "quantized_sigmoid(5, use_real_sigmoid=1)",
    "quantized_relu(4, 0, negative_slope=0.25)",
    "quantized_relu(4, 0, use_sigmoid=1)",  # levels k/8 and 15/16: one grid of step 1/16
    "quantized_hswish(6, 2)",
    "binary_tanh",  # QKeras's function: levels ±1
]


def _model(activation: Any) -> Any:
    """Input(8) → QDense(16) → activation → QDense(4): the activation reads a calibrated tensor."""
    bits = qkeras.quantized_bits(8, 0, 1)
    inp = keras.Input((8,), name="x")
    h = qkeras.QDense(16, kernel_quantizer=bits, bias_quantizer=bits, name="d1")(inp)
    h = activation(h)
    out = qkeras.QDense(4, kernel_quantizer=bits, name="d2")(h)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(3)
    for layer in (model.get_layer("d1"), model.get_layer("d2")):
        kernel, *rest = layer.get_weights()
        layer.set_weights([rng.uniform(-1, 1, kernel.shape).astype(np.float32) * 0.7, *rest])
    return model


def _convert(model: Any, tmp_path: Path) -> DeployedModel:
    path = tmp_path / "m.h5"
    model.save(path)
    x = np.random.default_rng(0).uniform(0, 1, (256, 8)).astype(np.float32)
    return convert(path, calibration=Dataset(x, None))


def _table_op(deployed: DeployedModel) -> tuple[int, Any]:
    (index,) = [i for i, op in enumerate(deployed.program.ops) if op.kernel == "tr_lut_s8"]
    return index, deployed.program.ops[index]


def _real(deployed: DeployedModel, tensor: str, q: np.ndarray) -> np.ndarray:
    spec = deployed.program.tensor(tensor)
    return spec.scale * (q.astype(np.float64) - spec.zero_point)


def _layer_outputs(deployed: DeployedModel, layer: str, values: np.ndarray) -> np.ndarray:
    """The Keras layer itself (QActivation, ReLU, …) on the given float inputs."""
    out = deployed.keras_model.get_layer(layer)(values.astype(np.float32), training=False)
    return np.asarray(out, dtype=np.float64)


def _check_table_is_the_layer(deployed: DeployedModel, layer: str, exact: bool) -> float:
    """The table's entries against the Keras layer on every input level it can see, and the reference's
    table output on real data against the Keras layer applied to the deployed pre-activation. Returns
    the largest difference in output steps."""
    index, op = _table_op(deployed)
    gi = deployed.graph.tensors[op.inputs[0]].grid
    go = deployed.graph.tensors[op.output].grid
    codes = np.arange(gi.qmin, gi.qmax + 1)
    entries = op.arrays["table"][codes + 128]
    keras_out = _layer_outputs(deployed, layer, _real(deployed, op.inputs[0], codes)[None])[0]
    table_steps = np.abs(_real(deployed, op.output, entries) - keras_out) / go.scale
    # On data: the reference's pre-activation and table output, the Keras layer on that pre-activation.
    x = np.random.default_rng(1).uniform(0, 1, (64, 8)).astype(np.float32)
    layers = deployed.reference.run_layers_batch(deployed.quantize_input(x))
    pre, out = layers[index - 1], layers[index]
    keras_data = _layer_outputs(deployed, layer, _real(deployed, op.inputs[0], pre))
    data_steps = np.abs(_real(deployed, op.output, out) - keras_data) / go.scale
    worst = float(max(table_steps.max(), data_steps.max()))
    if exact:
        assert worst < 1e-3, f"table off the quantizer by {worst} steps"
    return worst


@pytest.mark.parametrize("quantizer", EXACT)
def test_quantizer_table_is_exact(quantizer: str, tmp_path: Path) -> None:
    deployed = _convert(_model(qkeras.QActivation(quantizer, name="act")), tmp_path)
    _check_table_is_the_layer(deployed, "act", exact=True)
    assert deployed.program.notes == ()
    go = deployed.graph.tensors["act"].grid
    assert go.origin.startswith("quantizer ") and "layer 'act'" in go.origin  # the model states it
    gi = deployed.graph.tensors["d1"].grid
    assert "calibration range clipped to" in gi.origin  # the pre-activation was calibrated
    x = np.random.default_rng(5).uniform(0, 1, (200, 8))
    assert np.mean(deployed.predict(x).argmax(1) == deployed.keras_predict(x).argmax(1)) >= 0.9


def test_quantizer_built_into_a_dense_is_a_separate_table(tmp_path: Path) -> None:
    """QDense(activation=quantized_tanh): not fused into the dense; its pre-activation is calibrated."""
    bits = qkeras.quantized_bits(8, 0, 1)
    inp = keras.Input((8,), name="x")
    h = qkeras.QDense(16, kernel_quantizer=bits, activation="quantized_tanh(4)", name="d1")(inp)
    model = keras.Model(inp, qkeras.QDense(4, kernel_quantizer=bits, name="d2")(h))
    structural = run_structural(build_graph(model, "m"))
    (table,) = [n for n in structural.nodes if isinstance(n, ActivationNode)]
    assert table.activation.kind == "table" and table.inputs == ("d1/preact",)
    deployed = _convert(model, tmp_path)
    assert [op.kernel for op in deployed.program.ops][1] == "tr_lut_s8"
    assert "calibration range clipped to" in deployed.graph.tensors["d1/preact"].grid.origin
    index, _ = _table_op(deployed)
    x = np.random.default_rng(1).uniform(0, 1, (64, 8)).astype(np.float32)
    layers = deployed.reference.run_layers_batch(deployed.quantize_input(x))
    pre = _real(deployed, "d1/preact", layers[index - 1])
    quantizer = model.get_layer("d1").activation
    expected = np.asarray(quantizer(pre.astype(np.float32)), dtype=np.float64)
    np.testing.assert_allclose(_real(deployed, "d1", layers[index]), expected, atol=1e-6)


@pytest.mark.parametrize("quantizer", ["quantized_relu_po2(4)", "quantized_ulaw(4, 0, 1)"])
def test_levels_no_grid_holds_are_approximated_with_a_note(quantizer: str, tmp_path: Path) -> None:
    """quantized_relu_po2's levels are powers of two, quantized_ulaw's logarithmic: no int8 grid holds them
    all. The grid covers the levels the input reaches and the report says, naming the layer, how far the
    table is from them."""
    deployed = _convert(_model(qkeras.QActivation(quantizer, name="act")), tmp_path)
    worst = _check_table_is_the_layer(deployed, "act", exact=False)
    (note,) = deployed.program.notes
    name = quantizer.replace(" ", "")
    assert note.startswith(f"layer 'act': {name} has output levels no int8 grid holds exactly")
    stated = float(re.search(r"at most ([0-9.e-]+) output steps", note).group(1))
    assert 1e-3 < worst <= 0.5 + 1e-6
    assert stated == pytest.approx(worst, rel=1e-2)
    markdown = render_markdown(build_report(deployed.program, board="host", budget=None, linked=None))
    assert f"## Notes\n\n- {note}" in markdown  # the export report says so


def test_powers_of_two_that_fit_a_grid_are_exact(tmp_path: Path) -> None:
    """quantized_relu_po2 capped at 1 with a 1-bit exponent: levels 1/2, 1 (and 0 below): one grid holds them."""
    deployed = _convert(_model(qkeras.QActivation("quantized_relu_po2(1, 1)", name="act")), tmp_path)
    _check_table_is_the_layer(deployed, "act", exact=True)
    assert deployed.program.notes == ()


@pytest.mark.parametrize("layer", [
    lambda: kl.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.2, name="act"),
    lambda: kl.LeakyReLU(alpha=0.2, name="act"),
    lambda: qkeras.QActivation("hard_sigmoid", name="act"),  # QKeras's: clip(0.5·x + 0.5, 0, 1)
    lambda: kl.Activation("swish", name="act"),  # Keras's elementwise activations likewise
])
def test_keras_relu_variants_are_tables_of_the_layer(layer: Any, tmp_path: Path) -> None:
    """A float function: rounded onto its output grid like any float tensor (≤ half a step), no note."""
    deployed = _convert(_model(layer()), tmp_path)
    assert _check_table_is_the_layer(deployed, "act", exact=False) <= 0.5 + 1e-6
    assert deployed.program.notes == ()


def test_an_unquantised_upper_bound_makes_quantized_relu_a_table() -> None:
    """relu_upper_bound with is_quantized_clip=False caps the levels below the quantizer's range: a table
    on the exact grid 0…3 in steps of 1/4. With the default is_quantized_clip (what a saved model reloads
    with: QKeras does not save it) the bound changes nothing and it stays a plain requantisation."""
    def act(quantizer: Any) -> Any:
        graph = build_graph(_model(qkeras.QActivation(quantizer, name="act")), "m")
        return next(n.activation for n in graph.nodes if n.name == "act")

    capped = act(qkeras.quantized_relu(4, 2, relu_upper_bound=3.0, is_quantized_clip=False))
    assert capped.kind == "table" and (capped.grid.scale, capped.grid.real_min, capped.grid.real_max) == (0.25, 0, 3)
    plain = act(qkeras.quantized_relu(4, 2, relu_upper_bound=3.0))
    assert plain.kind == "quantized" and plain.grid.real_max == 3.75


@pytest.mark.parametrize(("layer", "needing"), [
    (lambda: qkeras.QActivation("quantized_tanh(4)", name="act"), ["d2"]),
    (lambda: kl.ReLU(max_value=6.0, name="act"), ["d2"]),
    (lambda: kl.LeakyReLU(alpha=0.2, name="act"), ["d1", "d2"]),
])
def test_a_bounded_table_needs_no_calibration_and_an_unbounded_one_does(layer: Any, needing: list[str]) -> None:
    """quantized_tanh and ReLU(max_value) change only on a bounded input interval: their input grid is
    that interval without calibration. LeakyReLU is unbounded: its input is listed as needing calibration."""
    graph = run_structural(build_graph(_model(layer()), "m"))
    assert [t for t, _ in tensors_needing_calibration(graph, GridOptions())] == needing


def test_a_tensor_also_read_by_another_op_is_calibrated_whole() -> None:
    """Only a tensor that tables alone read gets the table's range: one a dense also reads keeps its
    calibrated range, so without calibration data it is listed."""
    bits = qkeras.quantized_bits(8, 0, 1)
    inp = keras.Input((8,), name="x")
    d1 = qkeras.QDense(16, kernel_quantizer=bits, name="d1")(inp)
    act = qkeras.QActivation("quantized_tanh(4)", name="act")(d1)
    side = qkeras.QDense(16, kernel_quantizer=bits, name="side")(d1)
    out = qkeras.QDense(4, kernel_quantizer=bits, name="d2")(kl.Add(name="add")([act, side]))
    graph = run_structural(build_graph(keras.Model(inp, out), "m"))
    assert "d1" in [t for t, _ in tensors_needing_calibration(graph, GridOptions())]


class _Cube(qkeras.quantizers.BaseQuantizer):
    """A quantizer QKeras does not ship: refused by class, whatever it computes."""

    def __call__(self, x: Any) -> Any:
        return x * x * x


@pytest.mark.parametrize(("quantizer", "message"), [
    (lambda: qkeras.quantized_relu(4, 0, use_stochastic_rounding=True), "stochastic rounding"),
    (lambda: qkeras.quantized_tanh(4, use_stochastic_rounding=True), "stochastic rounding"),
    (lambda: qkeras.quantized_bits(4, 0, alpha="auto"), "not elementwise"),
    (lambda: _Cube(), "activation quantizer _Cube is not supported"),
])
def test_what_no_table_can_deploy_is_refused_naming_the_layer(quantizer: Any, message: str) -> None:
    inp = keras.Input((8,))
    out = qkeras.QActivation(quantizer(), name="act")(inp)
    with pytest.raises(UnsupportedModelError, match=r"layer 'act' \(QActivation\).*" + message):
        build_graph(keras.Model(inp, out), "m")


def test_an_activation_outside_the_lists_is_refused_naming_the_layer() -> None:
    """exponential is elementwise but unbounded and not listed: refused, not guessed."""
    inp = keras.Input((8,))
    with pytest.raises(UnsupportedModelError, match=r"layer 'act' \(Activation\): activation 'exponential' is not"):
        build_graph(keras.Model(inp, kl.Activation("exponential", name="act")(inp)), "m")


def test_grid_holding_levels() -> None:
    """Grid.holding: the exact grid for uniform levels (zero added), None for levels no grid holds."""
    grid = Grid.holding(np.array([0.25, 0.5, 0.75]), "t")
    assert grid is not None and grid.scale == 0.25 and grid.real_min == 0.0 and grid.real_max == 0.75
    assert Grid.holding(np.array([-0.5, 1.0]), "t").real_min == -0.5
    assert Grid.holding(2.0 ** np.arange(-8, 3), "t") is None  # 2^-8 … 4: 1025 steps of 2^-8
    assert Grid.holding(np.array([0.1, 0.25]), "t") is None  # no common step
    assert Grid.holding(np.arange(300) / 8, "t") is None  # too many levels


def test_table_runs_bit_exact_in_c_on_the_host(tmp_path: Path) -> None:
    """The converted model (dense, quantizer table, dense) through the generated C on the host target."""
    from tinyrobust.firmware.codegen import render_model_library
    from tinyrobust.targets.host import HostTarget

    deployed = _convert(_model(qkeras.QActivation("quantized_relu_po2(4)", name="act")), tmp_path)
    program = memplan.plan(deployed.program)
    (tmp_path / "lib").mkdir()
    render_model_library(program, tmp_path / "lib")
    target = HostTarget(tmp_path / "lib", tmp_path / "build")
    x = deployed.quantize_input(np.random.default_rng(2).uniform(0, 1, (32, 8)))
    try:
        np.testing.assert_array_equal(target.infer_batch(x)[0], deployed.reference.run(x))
        index, _ = _table_op(deployed)
        assert target.layer_output(x[0], index) == deployed.reference.run_layers(x[0])[index].tobytes()
    finally:
        target.close()
