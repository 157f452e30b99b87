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
- `PLACEMENTS`: the lesson's normalization placements, label -> `run_two_branch` options.

This module must never import TensorFlow or Keras.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..experiments import FusionRun, api_with, run_two_branch_with
from . import experiments as _experiments
from .models import two_branch_net as _two_branch_net
from .train import _model_device

__all__ = [
    "MOMENTUM_CONVENTION",
    "PLACEMENTS",
    "batch_norm_layers",
    "branch_grad_norms",
    "epochs_to_reach",
    "predict_with_batch_stats",
    "run_two_branch_bn",
    "running_stats",
    "set_bn_momentum",
]

MOMENTUM_CONVENTION = "torch"  # momentum = weight of the new batch's statistics
# Where lesson 03 puts a normalization layer: label -> run_two_branch options. The same labels
# and options in both twins, so the notebooks and tests/test_claims_03.py compare like with like.
PLACEMENTS: dict[str, dict[str, str]] = {
    "no norm": {},
    "BatchNorm on concat": {"norm": "batch"},
    "LayerNorm on concat": {"norm": "layer"},
    "GroupNorm(4) on concat": {"norm": "group"},
    "BatchNorm per branch": {"branch_norm": "batch"},
    "LayerNorm per branch": {"branch_norm": "layer"},
    "GroupNorm(4) per branch": {"branch_norm": "group"},
}
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

    run = run_two_branch_with(api_with(_experiments, two_branch_net=build), "NCHW", **options)
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


def epochs_to_reach(history: Any, threshold: float, metric: str = "val_accuracy") -> int | None:
    """The first epoch (counting from 1) at which `history[metric]` reaches `threshold`, or
    None if it never does: "how fast did it converge", in epochs."""
    values = history[metric]
    return next((i + 1 for i, v in enumerate(values) if v >= threshold), None)
