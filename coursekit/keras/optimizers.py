"""Lesson 06's optimizer section in Keras 3: weight decay in Adam (L2 penalty against AdamW),
warmup, and the update/weight ratio. Twin of `coursekit.torch.optimizers`; the shared body and
the result type are in `coursekit.optimizers`.

Import it as ``from coursekit.keras import optimizers``. This module must never import PyTorch.
"""

from __future__ import annotations

import numpy as np

from ..optimizers import EPSILON, LinearDigits, OptimRun, OverfitRun, overfit_one_batch_with, run_optimizer_with
from . import _tf

tf, keras = _tf.tf, _tf.keras

__all__ = ["overfit_one_batch", "run_optimizer"]


def _linear(w0: np.ndarray):
    """The classifier's kernel and bias as variables: `w0` (classes, inputs) in Keras' Dense layout
    (inputs, classes), bias zero."""
    return (keras.Variable(w0.T.copy(), name="kernel"),
            keras.Variable(np.zeros(w0.shape[0], np.float32), name="bias"))


class _Backend:
    """Keras' Adam and AdamW on the linear digits classifier (float32, TensorFlow backend)."""

    def train(self, data: LinearDigits, decay: str, lr: float, weight_decay: float, lr_at: list[float]):
        w, b = _linear(data.w0)
        if decay == "decoupled":
            opt = keras.optimizers.AdamW(learning_rate=lr, epsilon=EPSILON, weight_decay=weight_decay)
        elif decay == "framework":  # Keras 3 applies any optimizer's weight_decay decoupled, as AdamW does
            opt = keras.optimizers.Adam(learning_rate=lr, epsilon=EPSILON, weight_decay=weight_decay)
        else:
            opt = keras.optimizers.Adam(learning_rate=lr, epsilon=EPSILON)
        opt.build([w, b])
        x, y = tf.constant(data.x), tf.constant(data.y)
        l2 = tf.constant(weight_decay / 2 if decay == "l2" else 0.0)
        scce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

        @tf.function(reduce_retracing=True)
        def step(idx, step_lr):
            opt.learning_rate.assign(step_lr)
            xb, yb = tf.gather(x, idx), tf.gather(y, idx)
            with tf.GradientTape() as tape:
                loss = scce(yb, tf.matmul(xb, w) + b)
                total = loss + l2 * (tf.reduce_sum(w * w) + tf.reduce_sum(b * b))
            before = tf.identity(w)
            opt.apply_gradients(zip(tape.gradient(total, [w, b]), [w, b]))
            return tf.norm(w - before) / tf.norm(before), loss

        ratios, losses = [], []
        for step_lr, idx in zip(lr_at, data.order):
            r, loss = step(tf.constant(idx), tf.constant(step_lr, tf.float32))
            ratios.append(float(r))
            losses.append(float(loss))
        w_np, b_np = w.numpy(), b.numpy()
        return w_np.T, b_np, np.array(ratios), np.array(losses), data.x_test @ w_np + b_np

    def train_one_batch(self, x, y, w0, lr, steps, frozen):
        w, b = _linear(w0)
        trained = [b] if frozen else [w, b]  # the bug: a layer left frozen
        opt = keras.optimizers.Adam(learning_rate=lr, epsilon=EPSILON)
        opt.build(trained)
        x, y = tf.constant(x), tf.constant(y)
        scce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                logits = tf.matmul(x, w) + b
                loss = scce(y, logits)
            opt.apply_gradients(zip(tape.gradient(loss, trained), trained))
            hit = tf.cast(tf.equal(tf.argmax(logits, axis=1), y), tf.float32)
            return loss, tf.reduce_mean(hit)

        losses, accuracies = [], []
        for _ in range(steps):
            loss, acc = step()
            losses.append(float(loss))
            accuracies.append(float(acc))
        return np.array(losses), np.array(accuracies)


def run_optimizer(*, decay: str = "none", lr: float = 1e-2, weight_decay: float = 0.0, warmup: int = 0,
                  steps: int = 200, n: int = 1024, seed: int = 0, label: str | None = None) -> OptimRun:
    """Train a linear softmax classifier on the 8x8 digits (`n` training images, batches of 64) for
    `steps` steps of Adam at learning rate `lr`, reached by a linear warmup over the first `warmup`
    steps when `warmup` > 0. `decay` picks how `weight_decay` enters (`coursekit.optimizers.DECAY_MODES`;
    "framework" is ``keras.optimizers.Adam(weight_decay=...)``, decoupled like AdamW). Weights and
    batches come from `seed` in NumPy, the same as in the PyTorch twin. Returns an `OptimRun`."""
    return run_optimizer_with(_Backend(), decay=decay, lr=lr, weight_decay=weight_decay, warmup=warmup,
                              steps=steps, n=n, seed=seed, label=label)


def overfit_one_batch(*, bug: str = "none", steps: int = 300, lr: float = 1e-2, seed: int = 0) -> OverfitRun:
    """The overfit-one-batch check on the linear digits classifier of `run_optimizer`: `steps` Adam
    steps on the same batch of 64 images, with one planted `bug` (`coursekit.optimizers.OVERFIT_BUGS`).
    A healthy model drives that batch's loss to about 0; returns an `OverfitRun`."""
    return overfit_one_batch_with(_Backend(), bug=bug, steps=steps, lr=lr, seed=seed)
