"""passes/factor_alpha.py: per-output-channel scales factored out of the weights. Ternary channels give
codes in {−1, 0, 1} times α, binary {−1, 1}; a channel that is neither is refused naming the layer and
the channel; quantized_bits weights land on their exact grid; float weights get int8 symmetric codes."""

from __future__ import annotations

import numpy as np
import pytest

from tinyrobust.converter.ir import ConvNode, Graph, InputNode, TensorInfo, WeightApproximation, WeightTensor
from tinyrobust.converter.passes.factor_alpha import factor_alpha, factor_weights
from tinyrobust.errors import UnsupportedModelError


def _graph(weights: WeightTensor, kind: str = "dense", name: str = "layer_7") -> Graph:
    cout = weights.values.shape[-1] if kind != "depthwise" else weights.values.shape[2] * weights.values.shape[3]
    conv = ConvNode(name, ("x",), "y", kind, weights, np.ones(cout), np.zeros(cout))  # type: ignore[arg-type]
    tensors = {"x": TensorInfo("x", (4,), "x"), "y": TensorInfo("y", (cout,), "y")}
    return Graph((InputNode("x", "x"), conv), tensors, ("x",), ("y",), "g")


def _factored(graph: Graph) -> WeightTensor:
    node = factor_alpha(graph).nodes[1]
    assert isinstance(node, ConvNode)
    return node.weights


def test_ternary_channels_become_codes_and_alpha() -> None:
    """Dense (C_in 5, C_out 4), one α per column, channel 3 all zero (α 0)."""
    rng = np.random.default_rng(3)
    codes = rng.integers(-1, 2, (5, 4))
    codes[0, :3] = 1  # every live channel reaches α
    codes[:, 3] = 0
    alpha = np.array([0.25, 0.013, 1.7, 0.9])
    w = _factored(_graph(WeightTensor(codes * alpha, "ternary", "ternary")))
    assert w.codes is not None and w.channel_scale is not None
    assert w.codes.dtype == np.int8 and w.codes.shape == (5, 4)
    np.testing.assert_array_equal(w.codes, codes)
    np.testing.assert_allclose(w.channel_scale, [0.25, 0.013, 1.7, 0.0])
    np.testing.assert_allclose(w.codes * w.channel_scale, codes * alpha)


def test_ternary_within_float32_rounding_is_accepted() -> None:
    """QKeras computes in float32: magnitudes equal to ~1e-7 relative are one α."""
    m = np.array([[0.3], [-0.3 * (1 + 2e-7)], [0.0]])
    w = factor_weights(WeightTensor(m, "ternary", "ternary"), False, "layer 'd'")
    np.testing.assert_array_equal(w.codes, [[1], [-1], [0]])


def test_depthwise_channels_are_input_channel_times_multiplier() -> None:
    """Depthwise (KH, KW, C_in 2, mult 2): output channel c·2 + m has its own α."""
    alpha = np.array([0.1, 0.2, 0.3, 0.4])  # per output channel, in c·mult + m order
    codes = np.array([[1, -1], [0, 1], [-1, 1], [1, 0]]).reshape(1, 2, 2, 2)  # 1×2 kernel
    values = codes * alpha.reshape(2, 2)
    w = factor_weights(WeightTensor(values, "ternary", "ternary"), True, "layer 'dw'")
    np.testing.assert_allclose(w.channel_scale, alpha)
    assert w.codes.shape == (1, 2, 2, 2)
    np.testing.assert_array_equal(w.codes, codes)


def test_a_non_ternary_channel_is_refused_naming_layer_and_channel() -> None:
    m = np.array([[0.5, 0.2, 0.1], [-0.5, 0.0, 0.05], [0.0, -0.2, 0.1]])  # channel 2 holds 0.1 and 0.05
    with pytest.raises(UnsupportedModelError, match=r"layer 'layer_7': channel 2 is not ternary: magnitudes \[0.05"):
        factor_alpha(_graph(WeightTensor(m, "ternary", "ternary")))


def test_binary_channels_become_plus_minus_one() -> None:
    m = np.array([[0.4, -1.0], [-0.4, -1.0], [0.4, 1.0]])
    w = _factored(_graph(WeightTensor(m, "binary", "binary")))
    np.testing.assert_array_equal(w.codes, np.sign(m))
    np.testing.assert_allclose(w.channel_scale, [0.4, 1.0])


def test_binary_with_a_zero_weight_is_refused() -> None:
    m = np.array([[0.4, -1.0], [-0.4, 0.0], [0.4, 1.0]])
    with pytest.raises(UnsupportedModelError, match="layer 'layer_7': channel 1 has zero weights, not binary"):
        factor_alpha(_graph(WeightTensor(m, "binary", "binary")))


def test_binary_with_two_magnitudes_is_refused() -> None:
    m = np.array([[0.4], [-0.2]])
    with pytest.raises(UnsupportedModelError, match="channel 0 is not ternary"):
        factor_alpha(_graph(WeightTensor(m, "binary", "binary")))


def test_quantized_bits_lands_on_its_exact_grid() -> None:
    """Channel 0: k·2⁻⁷ with k in [−128, 127] (gcd 1): codes are k exactly. Channel 1: multiples of
    3·0.01: the largest exact step is 0.03, codes k/3. Channel 2: all zero."""
    k0 = np.array([-128, 127, 5, -3, 0, 64])
    k1 = np.array([3, -9, 30, 0, 6, -3])
    m = np.stack([k0 / 128.0, k1 * 0.01, np.zeros(6)], axis=1)
    w = _factored(_graph(WeightTensor(m, "quantized_bits", "int8")))
    np.testing.assert_array_equal(w.codes[:, 0], k0)
    np.testing.assert_array_equal(w.codes[:, 1], k1 // 3)
    np.testing.assert_array_equal(w.codes[:, 2], 0)
    np.testing.assert_allclose(w.channel_scale[:2], [1 / 128, 0.03])
    np.testing.assert_allclose(w.codes * w.channel_scale, m, atol=1e-12)


def test_quantized_bits_off_any_int8_grid_is_refused() -> None:
    m = np.array([[0.1], [0.1 * np.sqrt(2)]])
    with pytest.raises(UnsupportedModelError, match="layer 'layer_7': channel 0 of quantized_bits weights is not on"):
        factor_alpha(_graph(WeightTensor(m, "quantized_bits", "int8")))


def test_float_weights_get_int8_per_channel_symmetric_codes() -> None:
    """Step = max|w| / 127 per channel; every weight within half a step; a zero channel stays zero."""
    rng = np.random.default_rng(0)
    m = rng.normal(0, 1, (20, 3)) * np.array([0.01, 3.0, 0.0])
    w = _factored(_graph(WeightTensor(m, "float", "int8")))
    peak = np.abs(m).max(axis=0)
    np.testing.assert_allclose(w.channel_scale[:2], peak[:2] / 127)
    assert w.channel_scale[2] > 0
    assert np.abs(w.codes[:, :2]).max(axis=0).tolist() == [127, 127]
    assert int(w.codes.min()) >= -127  # symmetric: -128 is never used
    np.testing.assert_array_equal(w.codes[:, 2], 0)
    assert np.all(np.abs(w.codes * w.channel_scale - m) <= w.channel_scale / 2 + 1e-12)


def test_conv_layout_is_one_channel_per_last_axis() -> None:
    """conv2d (KH 2, KW 2, C_in 3, C_out 2): channel 1 has α 0.5 over all 12 taps."""
    rng = np.random.default_rng(1)
    codes = rng.integers(-1, 2, (2, 2, 3, 2))
    codes[0, 0, 0] = 1
    w = _factored(_graph(WeightTensor(codes * np.array([0.2, 0.5]), "ternary", "ternary"), kind="conv2d"))
    np.testing.assert_array_equal(w.codes, codes)
    np.testing.assert_allclose(w.channel_scale, [0.2, 0.5])


def test_an_already_factored_layer_is_left_alone() -> None:
    """codes set means factored: even a would-be-refused channel is not looked at again."""
    m = np.array([[0.5], [0.1]])
    weights = WeightTensor(m, "ternary", "ternary", np.array([[1], [1]], np.int8), np.array([0.5]))
    g = _graph(weights)
    assert factor_alpha(g).nodes[1].weights is weights


def test_po2_within_seven_octaves_is_exact_with_no_note() -> None:
    """Powers of two from 2⁻⁸ to 2⁻² (6 octaves) and a channel with −2⁻¹ … 2⁻⁸ (7 octaves, the peak
    negative: code −128): the smallest magnitude is the step, codes·step are the weights exactly."""
    m = np.array([[2.0**-8, -(2.0**-1)], [-(2.0**-2), 2.0**-8], [2.0**-5, 2.0**-3], [2.0**-4, -(2.0**-8)]])
    g = factor_alpha(_graph(WeightTensor(m, "quantized_po2", "int8", description="quantized_po2(4,1)")))
    w = g.nodes[1].weights
    np.testing.assert_array_equal(w.codes * w.channel_scale, m)
    np.testing.assert_array_equal(w.channel_scale, [2.0**-8, 2.0**-8])
    assert w.exact and w.approximation is None and g.notes == ()


def test_po2_over_seven_octaves_is_approximated_and_noted() -> None:
    """A channel 2⁻⁸ … +2⁻¹ has no int8 grid (+2⁻¹ would be code 128). The nearest: step 2⁻¹/124, on
    which 2⁻², 2⁻³ and 2⁻¹ are whole codes and only 2⁻⁸ moves (by 1/32 of a step); peak/127 would move
    every 2⁻² by half a step, peak/128 clip the peak by a whole one. The note names the layer, the
    quantizer and the counts. Channel 1 is exact."""
    col0 = np.array([2.0**-1, 2.0**-8, *([2.0**-2, -(2.0**-2)] * 4), *([2.0**-3, -(2.0**-3)] * 3)])
    col1 = np.array([2.0**-3, -(2.0**-8)] * 8)
    m = np.stack([col0, col1], axis=1)
    g = factor_alpha(_graph(WeightTensor(m, "quantized_po2", "int8", description="quantized_po2(4,1)")))
    w = g.nodes[1].weights
    assert not w.exact and w.approximation == WeightApproximation(1, 2, 1, 32, pytest.approx(1 / 32))
    np.testing.assert_allclose(w.channel_scale, [0.5 / 124, 2.0**-8], rtol=1e-15)
    assert w.codes[1, 0] == 1
    np.testing.assert_allclose(np.delete(w.codes[:, 0] * w.channel_scale[0], 1), np.delete(col0, 1), rtol=1e-15)
    np.testing.assert_array_equal(w.codes[:, 1] * w.channel_scale[1], col1)
    assert g.notes == ("layer 'layer_7': quantized_po2(4,1) weights are not on one int8 grid per channel; "
                       "approximated with int8 codes (1 of 2 channels, 1 of 32 weights moved, max error 0.031 "
                       "weight steps)",)


def test_ulaw_levels_are_approximated_on_the_nearest_grid() -> None:
    """quantized_ulaw(4,0,1)'s levels 0, ±0.752101, ±0.875 are on no one int8 grid: the channel gets the
    step peak/n that moves the weights least, 0.875/121 (0.752101 is 104.005 steps of it), every weight
    within 1 % of a step where peak/127 would leave 0.23."""
    levels = np.array([0.0, 0.752101, -0.875, 0.875, -0.752101, 0.752101])
    m = np.stack([levels, levels[::-1]], axis=1)
    g = factor_alpha(_graph(WeightTensor(m, "quantized_ulaw", "int8", description="quantized_ulaw(4,0,1)")))
    w = g.nodes[1].weights
    a = w.approximation
    assert a is not None and (a.channels, a.of_channels, a.moved, a.of_weights) == (2, 2, 6, 12)
    assert a.max_error_steps == pytest.approx(0.004824, abs=1e-5)
    np.testing.assert_allclose(w.channel_scale, [0.875 / 121] * 2)
    assert len(g.notes) == 1 and g.notes[0].startswith("layer 'layer_7': quantized_ulaw(4,0,1) weights are not on")


def test_float_weights_are_recorded_and_named_in_one_note() -> None:
    """Float weights are int8-approximated by nature: the tensor records it, and one note names the
    float layers (here the one)."""
    m = np.array([[0.3], [0.1 * np.sqrt(2)], [-0.05]])
    g = factor_alpha(_graph(WeightTensor(m, "float", "int8", description="float")))
    a = g.nodes[1].weights.approximation
    assert a is not None and a.moved == 2 and 0 < a.max_error_steps <= 0.5
    assert g.notes == (f"unquantised (float) weights of 'layer_7' are approximated with int8 per-channel codes "
                       f"(step max|w|/127; max error {a.max_error_steps:.2g} weight steps)",)


def test_float_weights_on_an_int8_grid_are_exact_and_quiet() -> None:
    m = np.array([[127 / 4], [-3 / 4], [0.0]])  # step 1/4 = peak/127: every weight a whole code
    g = factor_alpha(_graph(WeightTensor(m, "float", "int8", description="float")))
    assert g.nodes[1].weights.exact and g.notes == ()
