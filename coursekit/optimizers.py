"""The framework-neutral half of lesson 06's optimizer section: weight decay in Adam (an L2 penalty
against decoupled weight decay), Adam's first steps with and without warmup, and the
update/weight ratio as a debugging signal, and the overfit-one-batch check. The twins (`coursekit.torch.optimizers`,
`coursekit.keras.optimizers`) hand `run_optimizer_with` a backend that trains with their
framework's own Adam and AdamW.

The model is the smallest one where the effects show cleanly: a linear softmax classifier on the
8x8 digits (64 inputs, 10 classes), its weights and batch order drawn here in NumPy so that both
frameworks start from, and see, the same numbers. Four of its 64 inputs are 0 in every training
image (the digits' corner and edge pixels), so their weights get no gradient from the data: how a
decay moves them shows what the decay itself does.

This module imports no framework.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .data import load_digits

__all__ = ["DECAY_MODES", "OVERFIT_BUGS", "LinearDigits", "OptimRun", "OptimizerBackend", "OverfitRun", "linear_digits",
           "overfit_one_batch_with", "run_optimizer_with"]

#: How weight decay enters Adam: "none"; "l2", a penalty wd/2 * ||params||^2 added to the loss (its
#: gradient then goes through Adam's per-weight scaling); "decoupled", AdamW (each step first
#: multiplies the parameters by 1 - lr * wd); "framework", the framework's own
#: ``Adam(weight_decay=wd)``, which PyTorch implements as "l2" and Keras 3 as "decoupled".
DECAY_MODES = ("none", "l2", "decoupled", "framework")
BATCH = 64
#: Adam's epsilon in both frameworks. They add it at different places (PyTorch to sqrt(v_hat),
#: Keras to sqrt(v) before the bias correction), so a tiny one keeps their updates equal.
EPSILON = 1e-12


@dataclass(frozen=True)
class LinearDigits:
    """The data, initial weights and batch order of one run (see `linear_digits`)."""

    x: np.ndarray        # (n, 64) float32 training images, flattened
    y: np.ndarray        # (n,) int64 labels
    x_test: np.ndarray
    y_test: np.ndarray
    w0: np.ndarray       # (10, 64) float32 initial weights, N(0, 0.1^2); the bias starts at 0
    order: np.ndarray    # (steps, BATCH) training-sample indices of every step
    dead: np.ndarray     # indices of the inputs that are 0 in every training image


def linear_digits(steps: int, *, n: int = 1024, seed: int = 0) -> LinearDigits:
    """Data, initial weights and the batches of `steps` Adam steps (batches of 64, reshuffled every
    epoch), drawn with `seed`; the same arrays for both frameworks."""
    for name, value, low in (("steps", steps, 1), ("n", n, BATCH)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an int >= {low}; received {value!r}.")
    x, y, x_test, y_test = load_digits("NHWC")
    if n > len(x):
        raise ValueError(f"n must be at most {len(x)} (the digits' training split); received {n}.")
    x, y = x[:n].reshape(n, -1), y[:n]
    rng = np.random.default_rng(seed)
    w0 = (rng.standard_normal((10, x.shape[1])) * 0.1).astype(np.float32)
    per_epoch = n // BATCH
    epochs = -(-steps // per_epoch)
    order = np.concatenate([rng.permutation(n)[: per_epoch * BATCH] for _ in range(epochs)])
    order = order.reshape(-1, BATCH)[:steps]
    return LinearDigits(x.astype(np.float32), y.astype(np.int64), x_test.reshape(len(x_test), -1).astype(np.float32),
                        y_test.astype(np.int64), w0, order, np.flatnonzero(x.max(0) == 0))


@dataclass
class OptimRun:
    """One run of Adam on the linear digits classifier.

    `ratios[t]` is the update/weight ratio of step t+1, ||W_after - W_before|| / ||W_before||;
    `losses[t]` the training loss of its batch (without any penalty). `dead_shrink` and
    `active_shrink` are the norm of the final weights over the initial ones, for the weights of the
    always-zero inputs and for the others."""

    label: str
    decay: str
    lr: float
    weight_decay: float
    warmup: int
    ratios: np.ndarray
    losses: np.ndarray
    dead_shrink: float
    active_shrink: float
    test_accuracy: float
    extra: dict = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return len(self.ratios)

    def __str__(self) -> str:
        return (f"{self.label}: {self.steps} steps, dead-input weights x{self.dead_shrink:.3f}, other weights "
                f"x{self.active_shrink:.3f}, first update/weight ratio {self.ratios[0]:.2g}, "
                f"test accuracy {self.test_accuracy:.1%}")


class OptimizerBackend(Protocol):
    """What a framework supplies: train the linear classifier and report what `OptimRun` holds."""

    def train(self, data: LinearDigits, decay: str, lr: float, weight_decay: float,
              lr_at: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Run len(lr_at) Adam steps, step t at learning rate lr_at[t]; return (final W (10, 64), final
        b, per-step update/weight ratios of W, per-step batch losses, test logits)."""
        ...

    def train_one_batch(self, x: np.ndarray, y: np.ndarray, w0: np.ndarray, lr: float, steps: int,
                        frozen: bool) -> tuple[np.ndarray, np.ndarray]:
        """`steps` Adam steps on the one batch (x, y) with cross-entropy, on the weights and the bias,
        or on the bias alone when `frozen`; return the per-step (loss, accuracy) on that batch,
        measured before each step."""
        ...


def run_optimizer_with(backend: OptimizerBackend, *, decay: str = "none", lr: float = 1e-2,
                       weight_decay: float = 0.0, warmup: int = 0, steps: int = 200, n: int = 1024,
                       seed: int = 0, label: str | None = None) -> OptimRun:
    """The body both twins' `run_optimizer` share; see there."""
    if decay not in DECAY_MODES:
        raise ValueError(f"decay must be one of {list(DECAY_MODES)}; received {decay!r}.")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number; received {lr!r}.")
    if not (isinstance(weight_decay, (int, float)) and math.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be a number >= 0; received {weight_decay!r}.")
    if (decay == "none") != (weight_decay == 0):
        raise ValueError(
            f"decay={decay!r} with weight_decay={weight_decay!r}: pass decay='none' with weight_decay=0, or one of "
            "'l2', 'decoupled', 'framework' with a weight_decay > 0.")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0 (steps of linear warmup); received {warmup!r}.")
    data = linear_digits(steps, n=n, seed=seed)
    # linear warmup: step t (from 1) runs at lr * t / warmup until t reaches warmup
    lr_at = [lr * min(1.0, t / warmup) if warmup else lr for t in range(1, steps + 1)]
    w, _, ratios, losses, logits = backend.train(data, decay, float(lr), float(weight_decay), lr_at)
    live = np.setdiff1d(np.arange(data.w0.shape[1]), data.dead)
    w64, w0 = np.asarray(w, np.float64), data.w0.astype(np.float64)
    return OptimRun(
        label=label or f"Adam lr {lr:g}" + (f", {decay} wd {weight_decay:g}" if decay != "none" else "")
        + (f", warmup {warmup}" if warmup else ""),
        decay=decay, lr=float(lr), weight_decay=float(weight_decay), warmup=warmup,
        ratios=np.asarray(ratios, np.float64), losses=np.asarray(losses, np.float64),
        dead_shrink=float(np.linalg.norm(w64[:, data.dead]) / np.linalg.norm(w0[:, data.dead])),
        active_shrink=float(np.linalg.norm(w64[:, live]) / np.linalg.norm(w0[:, live])),
        test_accuracy=float((np.argmax(logits, axis=1) == data.y_test).mean()),
    )


#: The bugs `overfit_one_batch` can plant: "none"; "frozen", the weights are left out of training
#: (``requires_grad=False`` / ``trainable=False`` forgotten on a layer) and only the bias learns;
#: "shuffled_labels", the batch's labels are permuted, a data bug.
OVERFIT_BUGS = ("none", "frozen", "shuffled_labels")


@dataclass
class OverfitRun:
    """Adam on one batch of 64 digits, over and over: the loss and the accuracy on that batch
    before each step."""

    bug: str
    losses: np.ndarray
    accuracies: np.ndarray

    @property
    def perfect_from(self) -> int | None:
        """The step (from 1) from which every prediction on the batch stays right; None if never."""
        wrong = np.flatnonzero(self.accuracies < 1.0)
        if len(wrong) == len(self.accuracies) or (len(wrong) and wrong[-1] == len(self.accuracies) - 1):
            return None
        return int(wrong[-1]) + 2 if len(wrong) else 1

    def __str__(self) -> str:
        when = f"all right from step {self.perfect_from}" if self.perfect_from else "never all right"
        return (f"bug {self.bug!r}: batch loss {self.losses[0]:.3f} -> {self.losses[-1]:.4f} after {len(self.losses)} "
                f"steps; batch accuracy {self.accuracies[-1]:.0%} ({when})")


def overfit_one_batch_with(backend: OptimizerBackend, *, bug: str = "none", steps: int = 300, lr: float = 1e-2,
                           seed: int = 0) -> OverfitRun:
    """The body both twins' `overfit_one_batch` share; see there."""
    if bug not in OVERFIT_BUGS:
        raise ValueError(f"bug must be one of {list(OVERFIT_BUGS)}; received {bug!r}.")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number; received {lr!r}.")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1; received {steps!r}.")
    data = linear_digits(steps, seed=seed)
    idx = data.order[0]
    x, y = data.x[idx], data.y[idx]
    if bug == "shuffled_labels":
        y = np.random.default_rng(seed + 1).permutation(y)
    losses, accuracies = backend.train_one_batch(x, y, data.w0, float(lr), steps, bug == "frozen")
    return OverfitRun(bug, np.asarray(losses, np.float64), np.asarray(accuracies, np.float64))
