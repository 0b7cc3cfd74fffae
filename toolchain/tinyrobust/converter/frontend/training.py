"""The training loop of `tinyrobust train` and its regularisers.

Defaults follow the seed paper's schedule: Adamax, a learning rate cosine-annealed from 1e-3 to 1e-6
over the whole run, categorical cross-entropy (on the logits below the final softmax), batch 64.
Everything random (shuffling, projections, adversarial starts, stochastic-ternary sampling) derives
from one seed, so two runs with the same seed give identical weights.

Regularisers, each added to the loss with its weight:
- `jr`: per-layer Jacobian regularisation. The network is cut at the input of every weighted layer
  (convolution, depthwise, dense) and at the logits; for each block between two cuts, the squared
  Frobenius norm of its Jacobian is estimated from one random projection per step: ‖J‖²_F = C · E‖vᵀJ‖²
  for v uniform on the unit sphere of the block's C outputs (Hoffman et al. 2019). One extra
  backward pass per block, plus the double back-propagation through them.
- `lipschitz` (β, λ): Defensive Quantization's orthogonality term λ · Σ ‖WᵀW − βI‖²_F over weighted
  layers (W the kernel as fan-in × outputs; a depthwise kernel is block-diagonal, so only its
  per-channel squared norms enter), keeping each layer's gain near √β so quantisation error is
  not amplified from layer to layer.
- `adv`: adversarial training as a baseline (FGSM, or PGD with a random start), examples crafted
  through the model being trained (for QKeras models: through its straight-through estimators);
  the loss is the mean of the clean and the adversarial cross-entropy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras

ADVERSARIAL = ("fgsm", "pgd")
PGD_STEPS = 7


@dataclass(frozen=True)
class Schedule:
    epochs: int = 30
    batch_size: int = 64
    lr_max: float = 1e-3
    lr_min: float = 1e-6
    patience: int | None = None  # epochs without a better validation accuracy before stopping
    seed: int = 0


@dataclass(frozen=True)
class Regularisers:
    jr: float = 0.0
    lipschitz: tuple[float, float] | None = None  # (β, λ)
    adv: str | None = None  # "fgsm" | "pgd"
    adv_eps: float = 0.1  # L∞, in the data's units
    input_range: tuple[float, float] = (0.0, 1.0)  # adversarial inputs are clipped to it

    def describe(self) -> str:
        parts = [f"jr={self.jr:g}"] if self.jr else []
        if self.lipschitz:
            parts.append(f"lipschitz=({self.lipschitz[0]:g},{self.lipschitz[1]:g})")
        if self.adv:
            parts.append(f"adv={self.adv}(eps={self.adv_eps:g})")
        return ", ".join(parts) or "none"


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    loss: float  # cross-entropy + regularisers, mean over the epoch's steps
    accuracy: float  # training accuracy (training mode, clean inputs)
    regulariser: float  # the weighted regularisers' mean value
    val_loss: float
    val_accuracy: float
    seconds: float


@dataclass(frozen=True)
class History:
    epochs: tuple[EpochStats, ...] = field(default_factory=tuple)
    best_epoch: int = 0
    stopped_early: bool = False

    @property
    def seconds(self) -> float:
        return sum(e.seconds for e in self.epochs)


# ---------------------------------------------------------------- model anatomy


def weighted_layers(model: Any) -> list[Any]:
    """Layers with a kernel (convolutions, depthwise, separable, dense), in topological order."""
    return [layer for layer in model.layers
            if any(hasattr(layer, a) for a in ("kernel", "depthwise_kernel", "pointwise_kernel"))]


def logits_tensor(model: Any) -> tuple[Any, bool]:
    """(the logits tensor, whether it is below a final softmax): CE is computed from logits."""
    last = model.layers[-1]
    if isinstance(last, keras.layers.Activation) and last.get_config().get("activation") == "softmax":
        return last.input, True
    if isinstance(last, keras.layers.Softmax):
        return last.input, True
    return model.output, False


def jacobian_cuts(model: Any) -> list[Any]:
    """The tensors the per-layer Jacobian regulariser cuts the network at: the input, the input of
    every weighted layer after it, and the logits (each once, in order)."""
    cuts = [model.input]
    for layer in weighted_layers(model):
        if not any(layer.input is c for c in cuts):
            cuts.append(layer.input)
    logits, _ = logits_tensor(model)
    if not any(logits is c for c in cuts):
        cuts.append(logits)
    return cuts


def _flat_dim(t: Any) -> int:
    return int(np.prod([int(d) for d in t.shape[1:]]))


def _key(t: Any) -> str:
    return t.name


def forward_cuts(model: Any, x: Any, *, training: bool) -> list[Any]:
    """The model's forward pass layer by layer, returning its Jacobian cuts (the last one the logits).
    Run by hand rather than through a sub-model returning the cuts: a functional model's extra outputs
    are copies, so a tape could not differentiate the next cut with respect to them."""
    cuts = jacobian_cuts(model)
    values = {_key(model.input): x}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        inputs = layer.input
        args = [values[_key(t)] for t in inputs] if isinstance(inputs, list) else values[_key(inputs)]
        values[_key(layer.output)] = layer(args, training=training)
    return [values[_key(c)] for c in cuts]


# ---------------------------------------------------------------- regularisers


def jacobian_penalty(taps: list[Any], tape: tf.GradientTape, projections: list[Any]) -> Any:
    """Σ over blocks of C · mean over the batch of ‖vᵀ J‖², J the Jacobian of cut l+1 with respect to
    cut l, v one unit vector per sample (projections[l], shape (batch, C)). `tape` is persistent and
    recorded the forward pass producing `taps`; it records the projections too (re-entered here)."""
    batch = tf.shape(taps[0])[0]
    with tape:
        projected = [tf.reduce_sum(tf.reshape(end, (batch, -1)) * v)
                     for end, v in zip(taps[1:], projections, strict=True)]
    total = tf.constant(0.0)
    for start, p, v in zip(taps[:-1], projected, projections, strict=True):
        vj = tape.gradient(p, start)
        if vj is None:  # this cut does not reach the next one (a branch); nothing to penalise
            continue
        dim = float(v.shape[-1])
        total += dim * tf.reduce_mean(tf.reduce_sum(tf.reshape(vj * vj, (batch, -1)), axis=1))
    return total


def random_projections(rng: np.random.Generator, batch: int, dims: list[int]) -> list[np.ndarray]:
    """One uniform unit vector per sample for each block output dimension."""
    out = []
    for dim in dims:
        v = rng.standard_normal((batch, dim)).astype(np.float32)
        out.append(v / np.linalg.norm(v, axis=1, keepdims=True))
    return out


def _kernels(model: Any) -> list[tuple[Any, bool]]:
    """(kernel variable, is depthwise) for every weighted layer; a separable layer gives both."""
    out = []
    for layer in weighted_layers(model):
        if hasattr(layer, "depthwise_kernel"):
            out.append((layer.depthwise_kernel, True))
        if hasattr(layer, "pointwise_kernel"):
            out.append((layer.pointwise_kernel, False))
        if hasattr(layer, "kernel"):
            out.append((layer.kernel, False))
    return out


def orthogonality_penalty(model: Any, beta: float) -> Any:
    """Σ ‖WᵀW − βI‖²_F over the weighted layers' kernels, W = kernel reshaped to (fan-in, outputs).
    A depthwise kernel (kh, kw, C, M) acts block-diagonally, so WᵀW is diagonal: Σ_c (‖w_c‖² − β)²."""
    total = tf.constant(0.0)
    for kernel, depthwise in _kernels(model):
        if depthwise:
            w = tf.reshape(kernel, (-1, int(np.prod(kernel.shape[2:]))))  # (kh·kw, C·M)
            total += tf.reduce_sum(tf.square(tf.reduce_sum(w * w, axis=0) - beta))
        else:
            w = tf.reshape(kernel, (-1, int(kernel.shape[-1])))
            gram = tf.matmul(w, w, transpose_a=True)
            total += tf.reduce_sum(tf.square(gram - beta * tf.eye(int(kernel.shape[-1]))))
    return total


# ---------------------------------------------------------------- the loop


def _cosine(schedule: Schedule, steps: int) -> Any:
    return keras.optimizers.schedules.CosineDecay(schedule.lr_max, decay_steps=max(steps, 1),
                                                  alpha=schedule.lr_min / schedule.lr_max)


def _accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    probs = model.predict(x, batch_size=256, verbose=0)
    eps = 1e-7
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], eps, 1.0))))
    return loss, float(np.mean(np.argmax(probs, axis=1) == y))


def fit(model: Any, x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, *,
        schedule: Schedule = Schedule(), regularisers: Regularisers = Regularisers(),
        on_epoch: Callable[[EpochStats], None] | None = None) -> History:
    """Train `model` in place; with schedule.patience, the weights of the best validation epoch are
    restored at the end. TensorFlow's deterministic ops are on while it trains: multi-threaded CPU
    reductions otherwise sum in an order that varies run to run (seen: the same seed gave different
    first-epoch losses in two processes). The switch is process-wide, so it is put back afterwards: it
    changes what every later training in the process computes (seen: a model trained after it in the
    test session agreed 98.8 % with its deployment instead of 99.7 %)."""
    # Only enable_op_determinism is public; its query and its undo live beside it in TensorFlow's config.
    from tensorflow.python.framework import config as tf_config

    was_on = tf_config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    try:
        return _fit(model, x, y, x_val, y_val, schedule=schedule, regularisers=regularisers, on_epoch=on_epoch)
    finally:
        if not was_on:
            tf_config.disable_op_determinism()


def _fit(model: Any, x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, *,
         schedule: Schedule, regularisers: Regularisers,
         on_epoch: Callable[[EpochStats], None] | None) -> History:
    keras.utils.set_random_seed(schedule.seed)
    rng = np.random.default_rng(schedule.seed)
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.int64)
    steps_per_epoch = math.ceil(len(x) / schedule.batch_size)
    optimizer = keras.optimizers.Adamax(_cosine(schedule, steps_per_epoch * schedule.epochs))
    _, softmax_on_top = logits_tensor(model)
    dims = [_flat_dim(t) for t in jacobian_cuts(model)[1:]]
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=softmax_on_top)
    lo, hi = regularisers.input_range
    jr, lip, adv = regularisers.jr, regularisers.lipschitz, regularisers.adv
    eps = regularisers.adv_eps

    def adversarial(xb: Any, yb: Any, start: Any) -> Any:
        """FGSM, or PGD with `start` as the random start, through the model's own gradients."""
        steps, step_size, x_adv = (1, eps, xb) if adv == "fgsm" else (PGD_STEPS, 2.5 * eps / PGD_STEPS, xb + start)
        for _ in range(steps):
            with tf.GradientTape() as t:
                t.watch(x_adv)
                loss = ce(yb, forward_cuts(model, x_adv, training=False)[-1])
            x_adv = x_adv + step_size * tf.sign(t.gradient(loss, x_adv))
            x_adv = tf.clip_by_value(tf.clip_by_value(x_adv, xb - eps, xb + eps), lo, hi)
        return tf.stop_gradient(x_adv)

    @tf.function
    def step(xb: Any, yb: Any, projections: list[Any], start: Any) -> tuple[Any, Any, Any]:
        x_adv = adversarial(xb, yb, start) if adv else None
        with tf.GradientTape() as outer:
            with tf.GradientTape(persistent=True) as inner:
                inner.watch(xb)
                taps = forward_cuts(model, xb, training=True)
            logits = taps[-1]
            loss = ce(yb, logits)
            reg = tf.constant(0.0)
            if jr:
                reg += jr * jacobian_penalty(taps, inner, projections)
            if lip:
                reg += lip[1] * orthogonality_penalty(model, lip[0])
            if x_adv is not None:
                loss = 0.5 * loss + 0.5 * ce(yb, forward_cuts(model, x_adv, training=True)[-1])
            total = loss + reg
        del inner
        grads = outer.gradient(total, model.trainable_variables)
        optimizer.apply_gradients([(g, v) for g, v in zip(grads, model.trainable_variables, strict=True)
                                   if g is not None])
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, axis=1), yb), tf.float32))
        return total, reg, correct

    stats: list[EpochStats] = []
    best_acc, best_epoch, best_weights, stopped = -1.0, 0, None, False
    for epoch in range(1, schedule.epochs + 1):
        started = time.monotonic()
        order = rng.permutation(len(x))
        loss_sum = reg_sum = correct_sum = 0.0
        for s in range(steps_per_epoch):
            idx = order[s * schedule.batch_size:(s + 1) * schedule.batch_size]
            projections = [tf.constant(v) for v in random_projections(rng, len(idx), dims)] if jr else []
            start = rng.uniform(-eps, eps, size=x[idx].shape).astype(np.float32) if adv == "pgd" else \
                np.zeros((), np.float32)
            total, reg, correct = step(tf.constant(x[idx]), tf.constant(y[idx]), projections, tf.constant(start))
            loss_sum += float(total) * len(idx)
            reg_sum += float(reg) * len(idx)
            correct_sum += float(correct)
        val_loss, val_acc = _accuracy(model, x_val, y_val)
        e = EpochStats(epoch, loss_sum / len(x), correct_sum / len(x), reg_sum / len(x), val_loss, val_acc,
                       time.monotonic() - started)
        stats.append(e)
        if on_epoch is not None:
            on_epoch(e)
        if val_acc > best_acc:
            best_acc, best_epoch = val_acc, epoch
            if schedule.patience is not None:
                best_weights = model.get_weights()
        elif schedule.patience is not None and epoch - best_epoch >= schedule.patience:
            stopped = True
            break
    if best_weights is not None:
        model.set_weights(best_weights)
    return History(tuple(stats), best_epoch, stopped)
