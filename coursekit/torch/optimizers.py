"""Lesson 06's optimizer section in PyTorch: weight decay in Adam (L2 penalty against AdamW),
warmup, and the update/weight ratio. Twin of `coursekit.keras.optimizers`; the shared body and
the result type are in `coursekit.optimizers`.

Import it as ``from coursekit.torch import optimizers``. This module must never import TensorFlow.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..optimizers import EPSILON, LinearDigits, OptimRun, OverfitRun, overfit_one_batch_with, run_optimizer_with

__all__ = ["overfit_one_batch", "run_optimizer"]


def _linear(w0: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's weight (a copy of `w0`, (classes, inputs)) and zero bias, both trainable."""
    return torch.tensor(w0, requires_grad=True), torch.zeros(w0.shape[0], requires_grad=True)


class _Backend:
    """PyTorch's Adam and AdamW on the linear digits classifier (float32, CPU)."""

    def train(self, data: LinearDigits, decay: str, lr: float, weight_decay: float, lr_at: list[float]):
        w, b = _linear(data.w0)
        if decay == "decoupled":
            opt = torch.optim.AdamW([w, b], lr=lr, eps=EPSILON, weight_decay=weight_decay)
        elif decay == "framework":  # torch's Adam adds weight_decay * param to the gradient: an L2 penalty
            opt = torch.optim.Adam([w, b], lr=lr, eps=EPSILON, weight_decay=weight_decay)
        else:
            opt = torch.optim.Adam([w, b], lr=lr, eps=EPSILON)
        x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
        ratios, losses = [], []
        for step_lr, idx in zip(lr_at, data.order):
            for group in opt.param_groups:
                group["lr"] = step_lr
            idx = torch.from_numpy(idx)
            loss = F.cross_entropy(x[idx] @ w.T + b, y[idx])
            total = loss + weight_decay / 2 * (w.pow(2).sum() + b.pow(2).sum()) if decay == "l2" else loss
            before = w.detach().clone()
            opt.zero_grad()
            total.backward()
            opt.step()
            ratios.append(float((w.detach() - before).norm() / before.norm()))
            losses.append(float(loss.detach()))
        with torch.no_grad():
            logits = torch.from_numpy(data.x_test) @ w.T + b
        return w.detach().numpy(), b.detach().numpy(), np.array(ratios), np.array(losses), logits.numpy()

    def train_one_batch(self, x, y, w0, lr, steps, frozen):
        w, b = _linear(w0)
        w.requires_grad_(not frozen)  # the bug: a layer left frozen
        opt = torch.optim.Adam([b] if frozen else [w, b], lr=lr, eps=EPSILON)
        x, y = torch.from_numpy(x), torch.from_numpy(y)
        losses, accuracies = [], []
        for _ in range(steps):
            logits = x @ w.T + b
            loss = F.cross_entropy(logits, y)
            losses.append(float(loss.detach()))
            accuracies.append(float((logits.argmax(1) == y).float().mean()))
            opt.zero_grad()
            loss.backward()
            opt.step()
        return np.array(losses), np.array(accuracies)


def run_optimizer(*, decay: str = "none", lr: float = 1e-2, weight_decay: float = 0.0, warmup: int = 0,
                  steps: int = 200, n: int = 1024, seed: int = 0, label: str | None = None) -> OptimRun:
    """Train a linear softmax classifier on the 8x8 digits (`n` training images, batches of 64) for
    `steps` steps of Adam at learning rate `lr`, reached by a linear warmup over the first `warmup`
    steps when `warmup` > 0. `decay` picks how `weight_decay` enters (`coursekit.optimizers.DECAY_MODES`;
    "framework" is ``torch.optim.Adam(weight_decay=...)``, an L2 penalty). Weights and batches come
    from `seed` in NumPy, the same as in the Keras twin. Returns an `OptimRun`."""
    return run_optimizer_with(_Backend(), decay=decay, lr=lr, weight_decay=weight_decay, warmup=warmup,
                              steps=steps, n=n, seed=seed, label=label)


def overfit_one_batch(*, bug: str = "none", steps: int = 300, lr: float = 1e-2, seed: int = 0) -> OverfitRun:
    """The overfit-one-batch check on the linear digits classifier of `run_optimizer`: `steps` Adam
    steps on the same batch of 64 images, with one planted `bug` (`coursekit.optimizers.OVERFIT_BUGS`).
    A healthy model drives that batch's loss to about 0; returns an `OverfitRun`."""
    return overfit_one_batch_with(_Backend(), bug=bug, steps=steps, lr=lr, seed=seed)
