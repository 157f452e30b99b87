"""BatchNorm's training-mode pitfalls, made measurable (PyTorch). Twin of coursekit.keras.normalization.

Lesson 03 imports it as ``from coursekit.torch import normalization as ckn``:

- `batch_norm_layers(model)`: the BatchNorm layers of a model, in order;
- `running_stats(layer)`: a BatchNorm layer's running mean and variance as numpy arrays;
- `set_bn_momentum(model, momentum)`: set every BatchNorm layer's momentum, in PyTorch's
  convention (the weight of the NEW batch: ``running = (1 - m) * running + m * batch``; the
  default is 0.1). Keras' momentum is the weight of the OLD average, so torch's m is keras' 1 - m;
- `predict_with_batch_stats(model, inputs, ...)`: what a model forgotten in ``train()`` mode
  predicts: every batch normalized with its own statistics;
- `run_two_branch_bn(momentum=..., **options)`: `run_two_branch` with the BatchNorm momentum set
  before training;
- `branch_grad_norms(model, inputs, y)`: how much gradient each branch's parameters get, in
  training mode (where BatchNorm uses batch statistics);
- `epochs_to_reach(history, threshold)`: the first epoch a metric reaches a threshold;
- `PLACEMENTS`: the lesson's normalization placements, label -> `run_two_branch` options;
- `fold_batch_norm(conv, bn)`: one Conv2d computing ``bn(conv(x))`` with `bn` in eval mode;
- `run_weight_decay(weight_decay, ...)`: plain SGD with that weight decay, recording the norm of
  the scale-invariant weights before BatchNorm (a `coursekit.normalization.DecayRun`).

This module must never import TensorFlow or Keras.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..experiments import FusionRun, api_with, run_two_branch_with
from ..history import epochs_to_reach
from ..normalization import PLACEMENTS, DecayRun, fold_scale_shift, run_weight_decay_with
from ..memo import memoized
from .backend import BACKEND
from .models import two_branch_net as _two_branch_net
from .train import _model_device, fit as _fit, predict as _predict

__all__ = [
    "MOMENTUM_CONVENTION",
    "PLACEMENTS",
    "batch_norm_layers",
    "branch_grad_norms",
    "epochs_to_reach",
    "fold_batch_norm",
    "predict_with_batch_stats",
    "run_two_branch_bn",
    "run_weight_decay",
    "running_stats",
    "set_bn_momentum",
]

MOMENTUM_CONVENTION = "torch"  # momentum = weight of the new batch's statistics
_BN_TYPES = (nn.modules.batchnorm._BatchNorm,)


def batch_norm_layers(model: nn.Module) -> list[nn.Module]:
    """Every BatchNorm module of `model` (BatchNorm1d/2d/3d, SyncBatchNorm), in registration order."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"batch_norm_layers needs a torch.nn.Module; received a {type(model).__name__}.")
    return [m for m in model.modules() if isinstance(m, _BN_TYPES)]


def running_stats(layer: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    """`(running_mean, running_var)` of one BatchNorm layer, as float64 numpy copies."""
    if not isinstance(layer, _BN_TYPES) or layer.running_mean is None:
        raise TypeError(
            f"running_stats needs a BatchNorm layer that tracks running statistics; received "
            f"{type(layer).__name__}. Find them with batch_norm_layers(model)."
        )
    return (layer.running_mean.detach().cpu().double().numpy().copy(),
            layer.running_var.detach().cpu().double().numpy().copy())


def _check_momentum(momentum: Any) -> float:
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0.0 < momentum <= 1.0:
        raise ValueError(
            f"momentum must be a number in (0, 1] in PyTorch's convention (the weight of the new "
            f"batch; default 0.1); received {momentum!r}. Keras' momentum=0.99 is PyTorch's 0.01."
        )
    return float(momentum)


def set_bn_momentum(model: nn.Module, momentum: float) -> int:
    """Set the momentum of every BatchNorm layer of `model` (PyTorch's convention: the weight of
    the new batch, 0 < momentum <= 1). Returns how many layers were changed."""
    momentum = _check_momentum(momentum)
    bns = batch_norm_layers(model)
    for bn in bns:
        bn.momentum = momentum
    return len(bns)


def _inputs(inputs: Any, device: torch.device) -> list[torch.Tensor]:
    xs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    out = []
    for a in xs:
        t = a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
        if t.is_floating_point():
            t = t.to(torch.get_default_dtype())
        out.append(t.to(device))
    return out


def _tracking(bns: list[nn.Module]) -> list[nn.Module]:
    return [bn for bn in bns if bn.running_mean is not None]  # track_running_stats=False has none


def _save_stats(bns: list[nn.Module]) -> list[tuple[torch.Tensor, ...]]:
    return [(bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()) for bn in bns]


def _restore_stats(bns: list[nn.Module], saved: list[tuple[torch.Tensor, ...]]) -> None:
    with torch.no_grad():
        for bn, (m, v, t) in zip(bns, saved):
            bn.running_mean.copy_(m)
            bn.running_var.copy_(v)
            bn.num_batches_tracked.copy_(t)


def predict_with_batch_stats(
    model: nn.Module,
    inputs: Any,
    batch_size: int = 64,
    order: Sequence[int] | None = None,
    keep_running_stats: bool = True,
) -> np.ndarray:
    """The outputs of `model` on `inputs` computed in ``train()`` mode, the way a model whose
    ``model.eval()`` was forgotten predicts: each batch is normalized with its own statistics.

    Samples are batched in `order` (a permutation of the indices; default: as given) and the
    outputs are returned in the original order, so two orders can be compared sample by sample.
    Train-mode forwards also update the running statistics; with `keep_running_stats` (default)
    they are restored afterwards, otherwise the model keeps the corrupted ones. Runs under
    ``torch.no_grad()`` and leaves the model in the mode it had.
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; received {batch_size!r}.")
    xs = _inputs(inputs, _model_device(model))
    n = int(xs[0].shape[0])
    idx = np.arange(n) if order is None else np.asarray(order)
    if sorted(idx.tolist()) != list(range(n)):
        raise ValueError(f"order must be a permutation of range({n}); received {len(idx)} indices.")
    bns = _tracking(batch_norm_layers(model))
    saved = _save_stats(bns)
    was_training = model.training
    out = [None] * n
    model.train()
    try:
        with torch.no_grad():
            for i in range(0, n, batch_size):
                sel = torch.as_tensor(idx[i : i + batch_size], device=xs[0].device)
                logits = model(*[x.index_select(0, sel) for x in xs]).detach().cpu().numpy()
                for j, k in enumerate(idx[i : i + batch_size]):
                    out[int(k)] = logits[j]
    finally:
        model.train(was_training)
        if keep_running_stats:
            _restore_stats(bns, saved)
    return np.stack(out)


@memoized
def run_two_branch_bn(*, momentum: float = 0.1, **options: Any) -> FusionRun:
    """`run_two_branch(**options)` with every BatchNorm layer's momentum set to `momentum`
    (PyTorch's convention) before training. Same data, seeds and split as `run_two_branch`;
    pass ``norm='batch'`` or ``branch_norm='batch'`` so there is a BatchNorm to set."""
    momentum = _check_momentum(momentum)
    if "batch" not in (options.get("norm"), options.get("branch_norm")):
        raise ValueError(
            "run_two_branch_bn sets the momentum of BatchNorm layers, so pass norm='batch' or "
            f"branch_norm='batch'; received norm={options.get('norm')!r}, "
            f"branch_norm={options.get('branch_norm')!r}."
        )

    def build(**kw: Any) -> nn.Module:
        model = _two_branch_net(**kw)
        set_bn_momentum(model, momentum)
        return model

    run = run_two_branch_with(api_with(BACKEND, two_branch_net=build), "NCHW", **options)
    run.options["momentum"] = momentum
    return run


def branch_grad_norms(model: nn.Module, inputs: Any, y: Any, training: bool = True) -> tuple[float, float]:
    """L2 norms of the loss gradient (cross-entropy) over the parameters of branch A and of
    branch B of a `two_branch_net` (``branch_a.*`` / ``branch_b.*``), on one batch.

    With `training` (default) the forward runs in ``train()`` mode, as during training, so
    BatchNorm uses the batch's statistics; the running statistics are restored afterwards and
    ``param.grad`` is left untouched. ``training=False`` measures the model as evaluated.
    """
    xs = _inputs(inputs, _model_device(model))
    target = torch.as_tensor(np.asarray(y)).long().to(xs[0].device)
    groups = {"a": [], "b": []}
    for name, p in model.named_parameters():
        for tag in groups:
            if name.startswith(f"branch_{tag}.") and p.requires_grad:
                groups[tag].append(p)
    if not groups["a"] or not groups["b"]:
        raise ValueError(
            "branch_grad_norms needs a two_branch_net: parameters named branch_a.* and branch_b.*; "
            f"{type(model).__name__} has {[n for n, _ in model.named_parameters()][:6]}..."
        )
    bns = _tracking(batch_norm_layers(model))
    saved = _save_stats(bns)
    was_training = model.training
    model.train(training)
    try:
        loss = torch.nn.functional.cross_entropy(model(*xs), target)
        grads = torch.autograd.grad(loss, groups["a"] + groups["b"])
    finally:
        model.train(was_training)
        _restore_stats(bns, saved)
    na = len(groups["a"])
    return _l2(grads[:na]), _l2(grads[na:])


def _l2(grads: Sequence[torch.Tensor]) -> float:
    return float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)))


def fold_batch_norm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new ``nn.Conv2d`` that computes ``bn(conv(x))`` with `bn` in eval mode (its running
    statistics): the kernel scaled per output channel by ``gamma / sqrt(running_var + eps)``, the
    bias ``(bias - running_mean) * that + beta``. One layer instead of two at inference; the
    originals are not changed. For training, keep them apart: batch statistics change every step."""
    if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d):
        raise TypeError(f"fold_batch_norm folds an nn.BatchNorm2d into the nn.Conv2d before it; received "
                        f"{type(conv).__name__} and {type(bn).__name__}. Pass (conv, bn) in that order.")
    if bn.num_features != conv.out_channels:
        raise ValueError(f"the BatchNorm normalizes {bn.num_features} channels but the conv makes "
                         f"{conv.out_channels}; fold the BatchNorm that directly follows this conv.")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("this BatchNorm2d keeps no running statistics (track_running_stats=False), so it "
                         "normalizes with each batch's own at inference too and cannot be folded.")
    scale, shift = fold_scale_shift(
        None if conv.bias is None else conv.bias.detach().cpu().numpy(),
        bn.running_mean.cpu().numpy(), bn.running_var.cpu().numpy(),
        None if bn.weight is None else bn.weight.detach().cpu().numpy(),
        None if bn.bias is None else bn.bias.detach().cpu().numpy(), bn.eps)
    folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                       padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=True,
                       padding_mode=conv.padding_mode)
    weight = conv.weight.detach().cpu().double() * torch.from_numpy(scale).view(-1, 1, 1, 1)
    with torch.no_grad():
        folded.weight.copy_(weight.float())
        folded.bias.copy_(torch.from_numpy(shift).float())
    return folded.to(conv.weight.device)


class _DecayBackend:
    framework, layout = "torch", "NCHW"

    def build(self) -> nn.Module:
        return _two_branch_net(n_classes=4, norm="batch")

    def sgd(self, model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
        return torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay)  # no momentum

    def fit(self, model: nn.Module, optimizer: Any, train: Any, epochs: int, batch_size: int, seed: int) -> None:
        _fit(model, (train.inputs, train.y), epochs=epochs, optimizer=optimizer, batch_size=batch_size,
             seed=seed, progress=False)

    def branch_norms(self, model: nn.Module) -> tuple[float, float]:
        convs = (model.branch_a[0], model.branch_b[0])
        return tuple(float(torch.sqrt(sum((p.detach().double() ** 2).sum() for p in c.parameters()))) for c in convs)

    def accuracy(self, model: nn.Module, test: Any) -> float:
        return float((np.argmax(_predict(model, test.inputs), axis=1) == test.y).mean())


@memoized
def run_weight_decay(weight_decay: float, *, lr: float = 0.5, n: int = 1024, epochs: int = 8,
                     batch_size: int = 64, seed: int = 0, points: int = 4) -> DecayRun:
    """Plain SGD (`lr`, no momentum) with `weight_decay` on the two-branch net with BatchNorm after
    the concatenation (scale-1 data, 4 classes, `run_two_branch`'s split), trained in `points`
    chunks; returns the norms of the branch convs' weights after each chunk (`DecayRun`)."""
    return run_weight_decay_with(_DecayBackend(), weight_decay, lr=lr, n=n, epochs=epochs,
                                 batch_size=batch_size, seed=seed, points=points)
