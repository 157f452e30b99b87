"""The framework-neutral half of lesson 03's "inside BatchNorm" section: the folding arithmetic
and the weight-decay experiment's body and result. The twins (`coursekit.torch.normalization`,
`coursekit.keras.normalization`) hand it a backend: how to build, train and measure a model.

- `fold_scale_shift(...)`: the per-channel scale and shift that fold an inference-mode
  BatchNorm into the conv before it;
- `DecayRun` and `run_weight_decay_with(backend, ...)`: plain SGD with and without weight decay
  on the two-branch net with BatchNorm after the concatenation, recording the norm of the
  weights that feed BatchNorm (scale-invariant, so their effective learning rate is lr/||w||^2).

This module imports no framework.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .data import make_two_branch
from .seeding import seed_everything

__all__ = ["PLACEMENTS", "DecayBackend", "DecayRun", "fold_scale_shift", "run_weight_decay_with"]

# Where lesson 03 puts a normalization layer: label -> run_two_branch options. One table for both
# frameworks, so the notebooks and tests/test_claims_03.py compare like with like.
PLACEMENTS: dict[str, dict[str, str]] = {
    "no norm": {},
    "BatchNorm on concat": {"norm": "batch"},
    "LayerNorm on concat": {"norm": "layer"},
    "GroupNorm(4) on concat": {"norm": "group"},
    "BatchNorm per branch": {"branch_norm": "batch"},
    "LayerNorm per branch": {"branch_norm": "layer"},
    "GroupNorm(4) per branch": {"branch_norm": "group"},
}


def fold_scale_shift(
    conv_bias: np.ndarray | None,
    mean: np.ndarray,
    var: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    eps: float,
) -> tuple[np.ndarray, np.ndarray]:
    """`(scale, shift)` per output channel such that ``bn(conv(x)) == scale * conv_without_bias(x) + shift``
    for BatchNorm in inference mode: ``gamma * (conv(x) - mean) / sqrt(var + eps) + beta``. The folded
    conv's kernel is the old kernel times `scale` (per output channel) and its bias is `shift`.
    Computed in float64 so the folded layer is as exact as float32 allows."""
    mean = np.asarray(mean, np.float64)
    var = np.asarray(var, np.float64)
    c = mean.shape[0]
    gamma = np.ones(c) if gamma is None else np.asarray(gamma, np.float64)
    beta = np.zeros(c) if beta is None else np.asarray(beta, np.float64)
    bias = np.zeros(c) if conv_bias is None else np.asarray(conv_bias, np.float64)
    shapes = {"conv bias": bias.shape, "mean": mean.shape, "var": var.shape, "gamma": gamma.shape, "beta": beta.shape}
    if any(s != (c,) for s in shapes.values()):
        raise ValueError(f"fold_scale_shift needs one value per channel everywhere; received shapes {shapes}. "
                         "The BatchNorm must normalize the conv's output channels.")
    scale = gamma / np.sqrt(var + float(eps))
    return scale, (bias - mean) * scale + beta


@dataclass
class DecayRun:
    """Plain SGD on the two-branch net (BatchNorm after the concatenation) with one weight decay.
    `norms[i]` is the L2 norm of (kernel, bias) of branch A's and branch B's conv after
    `epochs[i]` epochs (``epochs[0] == 0``: at initialization). ReLU then BatchNorm follow those
    convs, so scaling a conv's kernel and bias by any a > 0 leaves the network's output unchanged:
    only their direction matters, and a step of size lr turns it by about lr/||w||^2 times the
    gradient of the unit-norm weights -- `effective_lr`."""

    weight_decay: float
    lr: float
    epochs: list[int]
    norms: list[tuple[float, float]]
    test_accuracy: float
    framework: str

    @property
    def effective_lr(self) -> list[tuple[float, float]]:
        return [(self.lr / a**2, self.lr / b**2) for a, b in self.norms]

    def __str__(self) -> str:
        (a0, b0), (a1, b1) = self.norms[0], self.norms[-1]
        return (f"weight decay {self.weight_decay:g}: ||w|| of branch A {a0:.3f} -> {a1:.3f}, branch B "
                f"{b0:.3f} -> {b1:.3f} after {self.epochs[-1]} epochs; effective lr x{(a0 / a1) ** 2:.2f} "
                f"(A); test accuracy {self.test_accuracy:.1%}")


class DecayBackend(Protocol):
    """What `run_weight_decay_with` needs from a framework."""

    framework: str
    layout: str

    def build(self) -> Any: ...  # the two-branch net, norm='batch', 4 classes, seeded by the caller

    def sgd(self, model: Any, lr: float, weight_decay: float) -> Any: ...  # plain SGD, no momentum

    def fit(self, model: Any, optimizer: Any, train: Any, epochs: int, batch_size: int, seed: int) -> None: ...

    def branch_norms(self, model: Any) -> tuple[float, float]: ...

    def accuracy(self, model: Any, test: Any) -> float: ...


def _check_number(value: Any, name: str, *, positive: bool) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        rule = "a positive number" if positive else "a number >= 0"
        raise ValueError(f"{name} must be {rule}; received {value!r}. Example: run_weight_decay(1e-2, lr=0.5).")
    return float(value)


def checkpoints(epochs: int, points: int) -> list[int]:
    """How many epochs each of `points` training chunks runs (as even as possible, every chunk >= 1)."""
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive int; received {epochs!r}.")
    if not isinstance(points, int) or isinstance(points, bool) or points < 1:
        raise ValueError(f"points must be a positive int; received {points!r}.")
    points = min(points, epochs)
    return [epochs // points + (1 if i < epochs % points else 0) for i in range(points)]


def run_weight_decay_with(
    backend: DecayBackend,
    weight_decay: float,
    *,
    lr: float = 0.5,
    n: int = 1024,
    epochs: int = 8,
    batch_size: int = 64,
    seed: int = 0,
    points: int = 4,
) -> DecayRun:
    """The body of both twins' `run_weight_decay`: the same data (scale 1, 4 classes, the split of
    `run_two_branch`), the same seeded net, plain SGD with `lr` and `weight_decay`, trained in
    `points` chunks with the branch convs' norms recorded after each."""
    weight_decay = _check_number(weight_decay, "weight_decay", positive=False)
    lr = _check_number(lr, "lr", positive=True)
    chunks = checkpoints(epochs, points)
    data = make_two_branch(n=n, scale=1.0, n_classes=4, layout=backend.layout, seed=0)
    train, test = data.split(0.25, seed=0)
    seed_everything(seed)
    model = backend.build()
    optimizer = backend.sgd(model, lr, weight_decay)
    done, at, norms = 0, [0], [backend.branch_norms(model)]
    for i, chunk in enumerate(chunks):
        backend.fit(model, optimizer, train, chunk, batch_size, seed + 1000 * i)
        done += chunk
        at.append(done)
        norms.append(backend.branch_norms(model))
    return DecayRun(weight_decay=weight_decay, lr=lr, epochs=at, norms=norms,
                    test_accuracy=backend.accuracy(model, test), framework=backend.framework)


