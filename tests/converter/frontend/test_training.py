"""converter/frontend/training.py on tiny models: the per-layer Jacobian estimate is unbiased (its mean
over many projections is the exact squared Frobenius norm from tf.GradientTape's Jacobian), the
orthogonality term is numpy's Σ‖WᵀW − βI‖², a seed fixes the trained weights, early stopping stops,
and adversarial training runs through a QKeras model's straight-through estimators."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest

from tinyrobust.converter.frontend import training  # sets TF_USE_LEGACY_KERAS before TensorFlow loads

tf: Any = importlib.import_module("tensorflow")
keras: Any = importlib.import_module("tf_keras")
qkeras: Any = importlib.import_module("qkeras")
kl = keras.layers


def _tiny(seed: int = 0) -> Any:
    keras.utils.set_random_seed(seed)
    inp = keras.Input((4, 4, 1))
    x = kl.Conv2D(3, 3, padding="same", name="conv")(inp)
    x = kl.ReLU(name="relu")(x)
    x = kl.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = kl.Activation("tanh", name="tanh")(x)
    x = kl.Flatten(name="flat")(x)
    x = kl.Dense(5, name="logits")(x)
    x = kl.Activation("softmax", name="softmax")(x)
    return keras.Model(inp, x)


def _data(n: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 4, 4, 1)).astype(np.float32)
    y = (x[:, :2].sum(axis=(1, 2, 3)) * 2).astype(np.int64) % 5
    return x, y


def test_cuts_are_the_weighted_layers_inputs_and_the_logits() -> None:
    model = _tiny()
    names = [t.name.split("/")[0] for t in training.jacobian_cuts(model)]
    assert len(names) == 4  # input, relu (into dw), flat (into logits), logits
    assert names[1].startswith("relu") and names[2].startswith("flat") and names[3].startswith("logits")


def test_jacobian_estimate_is_the_exact_frobenius_norm_on_average() -> None:
    model = _tiny()
    x, _ = _data(3)
    repeats = 3000  # each copy of a sample draws its own projection: the batch mean averages over them
    xb = tf.constant(np.repeat(x, repeats, axis=0))
    dims = [training._flat_dim(t) for t in training.jacobian_cuts(model)[1:]]
    projections = [tf.constant(v) for v in training.random_projections(np.random.default_rng(1), len(xb), dims)]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xb)
        taps = training.forward_cuts(model, xb, training=False)
    estimate = float(training.jacobian_penalty(taps, tape, projections))

    exact = 0.0
    xs = tf.constant(x)
    for i in range(len(taps) - 1):
        with tf.GradientTape(persistent=True) as t:
            t.watch(xs)
            cut = training.forward_cuts(model, xs, training=False)
            end = cut[i + 1] * 1.0  # recorded, so the Jacobian reaches back to cut[i]
        j = t.jacobian(end, cut[i])  # (3, …out, 3, …in): keep each sample's own block
        assert j is not None
        j = tf.reshape(j, (3, dims[i], 3, -1)).numpy()
        exact += np.mean([np.sum(j[s, :, s, :] ** 2) for s in range(3)])
    assert exact > 0
    assert estimate == pytest.approx(exact, rel=0.05)


def test_orthogonality_term_is_numpys() -> None:
    model = _tiny()
    beta = 0.7
    expected = 0.0
    w = model.get_layer("conv").kernel.numpy().reshape(-1, 3)
    expected += np.sum((w.T @ w - beta * np.eye(3)) ** 2)
    d = model.get_layer("dw").depthwise_kernel.numpy().reshape(9, 3)
    full = np.zeros((27, 3))  # the depthwise operator per input channel: block-diagonal
    for c in range(3):
        full[c * 9:(c + 1) * 9, c] = d[:, c]
    expected += np.sum((full.T @ full - beta * np.eye(3)) ** 2)
    w = model.get_layer("logits").kernel.numpy()
    expected += np.sum((w.T @ w - beta * np.eye(5)) ** 2)
    assert float(training.orthogonality_penalty(model, beta)) == pytest.approx(expected, rel=1e-5)


def test_a_seed_fixes_the_weights_and_regularisers_change_them() -> None:
    x, y = _data()
    schedule = training.Schedule(epochs=2, batch_size=48, seed=3)
    regs = training.Regularisers(jr=0.1, lipschitz=(1.0, 0.01))
    runs = []
    for _ in range(2):
        model = _tiny(seed=5)
        initial = model.get_weights()
        history = training.fit(model, x, y, x[:32], y[:32], schedule=schedule, regularisers=regs)
        runs.append(model.get_weights())
        assert len(history.epochs) == 2 and history.epochs[-1].regulariser > 0
    assert all(np.array_equal(a, b) for a, b in zip(runs[0], runs[1], strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(runs[0], initial, strict=True))


def test_early_stopping_restores_the_best_epoch() -> None:
    x, y = _data()
    model = _tiny()
    seen: list[training.EpochStats] = []
    # a learning rate of ~0 makes validation accuracy flat: patience 1 stops after epoch 2
    schedule = training.Schedule(epochs=10, batch_size=32, lr_max=1e-9, lr_min=1e-10, patience=1, seed=0)
    history = training.fit(model, x, y, x, y, schedule=schedule, on_epoch=seen.append)
    assert history.stopped_early and len(history.epochs) == 2 and len(seen) == 2
    assert history.best_epoch == 1


def test_fgsm_training_through_a_ternary_model() -> None:
    keras.utils.set_random_seed(0)
    inp = keras.Input((4, 4, 1))
    x = qkeras.QConv2D(4, 3, padding="same", kernel_quantizer=qkeras.stochastic_ternary(alpha="auto_po2"))(inp)
    x = qkeras.QActivation(qkeras.quantized_relu(4, 2))(x)
    x = kl.Flatten()(x)
    x = qkeras.QDense(5, kernel_quantizer=qkeras.ternary(alpha="auto_po2"))(x)
    model = keras.Model(inp, kl.Activation("softmax")(x))
    xs, ys = _data(32)  # one step: tracing the attack through QKeras is what costs here
    before = [w.copy() for w in model.get_weights()]
    regs = training.Regularisers(adv="fgsm", adv_eps=0.1)
    history = training.fit(model, xs, ys, xs, ys, schedule=training.Schedule(epochs=1, batch_size=32),
                           regularisers=regs)
    assert np.isfinite(history.epochs[0].loss)
    assert not all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


def test_training_leaves_the_process_deterministic_switch_as_it_found_it() -> None:
    """Deterministic ops are on while fit runs and put back after: left on, they changed what every later
    training in the process computed (a zoo model trained after it deployed at 98.8 % agreement)."""
    from tensorflow.python.framework import config as tf_config

    x, y = _data()
    for before in (False, True):
        (tf_config.enable_op_determinism if before else tf_config.disable_op_determinism)()
        training.fit(_tiny(), x, y, x[:32], y[:32], schedule=training.Schedule(epochs=1, batch_size=48))
        assert tf_config.is_op_determinism_enabled() == before
    tf_config.disable_op_determinism()
