"""Learning rates for PyTorch: Leslie Smith's LR range test and named LR schedules.

Twin of `coursekit.keras.lr`: same names, same signatures, the same LR at every step. The
math (schedule formulas, smoothing, divergence, the suggestion) lives in `coursekit.schedules`.
This module must never import TensorFlow or Keras.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..history import LRRangeResult
from ..schedules import (
    ADAMW_WEIGHT_DECAY,
    SCHEDULES,
    SGD_MOMENTUM,
    RangeTestRecorder,
    check_range_data,
    check_range_test,
    check_schedule,
    formula,
    lr_at,
    progress_bar,
    range_test_batches,
    range_test_lrs,
    schedule_values,
)

__all__ = ["SCHEDULES", "lr_at", "lr_range_test", "make_schedule", "schedule_values"]


def lr_range_test(
    model: nn.Module, x, y, *, loss: str | Callable = "cross_entropy",
    optimizer: str | Callable = "sgd", start_lr: float = 1e-6, end_lr: float = 1.0,
    num_steps: int = 100, batch_size: int = 64, smooth: float = 0.05,
    diverge_factor: float = 4.0, seed: int = 0, progress: bool = False,
) -> LRRangeResult:
    """Leslie Smith's LR range test: train `num_steps` mini-batches while the LR grows
    geometrically from `start_lr` to `end_lr`, and record the (smoothed) loss at each LR.

    x: an array, or a list/tuple of arrays for a multi-input model (called as ``model(a, b)``).
    loss: 'cross_entropy' (logits and integer labels), 'mse', or ``loss(output, target)`` in
    torch's argument order. optimizer: 'sgd' (momentum 0.9), 'adam', 'adamw'
    (weight_decay 0.01) or a factory ``lr -> optimizer`` over ``model.parameters()``.
    Stops early once the smoothed loss exceeds `diverge_factor` x its best (or turns NaN),
    recording `diverged_at`. See `coursekit.schedules.RangeTestRecorder` for the smoothing and
    `suggest_lr` for the suggestion.

    The model is left exactly as it was, also when the test raises: parameters, buffers (e.g.
    BatchNorm running stats), gradients, train/eval modes and torch's global RNG. `seed` fixes
    the batch order and the dropout masks. Runs on the device of the model's parameters.
    """
    check_range_test(loss=loss, optimizer=optimizer, start_lr=start_lr, end_lr=end_lr,
                     num_steps=num_steps, batch_size=batch_size, smooth=smooth,
                     diverge_factor=diverge_factor, seed=seed)
    if not isinstance(model, nn.Module):
        raise TypeError(f"lr_range_test expects a torch.nn.Module; received a {type(model).__name__}.")
    params = list(model.parameters())
    if not params:
        raise ValueError(f"{type(model).__name__} has no parameters, so there is nothing to train.")
    multi = isinstance(x, (list, tuple))
    xs = [_as_tensor(a) for a in (x if multi else [x])]
    target = _as_tensor(y)
    check_range_data([len(a) for a in xs], len(target))
    device = params[0].device
    loss_fn = _loss_fn(loss)
    batches = range_test_batches(len(target), batch_size, seed)

    def forward(idx: np.ndarray) -> torch.Tensor:
        inputs = [a[idx].to(device) for a in xs]
        return model(*inputs) if multi else model(inputs[0])

    modes = {m: m.training for m in model.modules()}
    if any(isinstance(p, nn.parameter.UninitializedParameter) for p in model.parameters()):
        # Lazy modules get their shapes from a first call; eval mode keeps BatchNorm stats intact.
        model.eval()
        with torch.no_grad():
            forward(np.arange(min(batch_size, len(target))))
        params = list(model.parameters())
    saved = copy.deepcopy(model.state_dict())
    grads = [None if p.grad is None else p.grad.detach().clone() for p in params]
    recorder = RangeTestRecorder(smooth, diverge_factor)
    bar = progress_bar(progress, num_steps)
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.default_generator.manual_seed(seed)
            if device.type == "cuda":
                with torch.cuda.device(device):
                    torch.cuda.manual_seed(seed)
            model.train()
            opt = _make_optimizer(optimizer, params, start_lr)
            for lr, idx in zip(range_test_lrs(start_lr, end_lr, num_steps), batches):
                for group in opt.param_groups:
                    group["lr"] = lr
                opt.zero_grad(set_to_none=True)
                value = loss_fn(forward(idx), target[idx].to(device))
                if not isinstance(value, torch.Tensor) or value.numel() != 1:
                    raise ValueError(
                        f"the loss must return a scalar tensor; received "
                        f"{type(value).__name__} of shape {tuple(getattr(value, 'shape', ()))}. "
                        "Fix: reduce it, e.g. with .mean()."
                    )
                keep_going = recorder.record(lr, value.item())
                bar.update()
                bar.set_postfix(lr=f"{lr:.2e}", loss=f"{value.item():.3g}")
                if not keep_going:
                    break
                value.backward()
                opt.step()
    finally:
        bar.close()
        model.load_state_dict(saved)
        for p, g in zip(params, grads):
            p.grad = g
        for m, training in modes.items():
            m.training = training
    return recorder.result()


def _as_tensor(a) -> torch.Tensor:
    # Stay on the CPU: only the current batch moves to the model's device.
    return a.detach().cpu() if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))


def _loss_fn(loss: str | Callable) -> Callable:
    if callable(loss):
        return loss
    if loss == "cross_entropy":
        return lambda out, t: F.cross_entropy(out, t.long())
    return lambda out, t: F.mse_loss(out, t.to(out.dtype))


def _make_optimizer(optimizer: str | Callable, params: Sequence[nn.Parameter], lr: float):
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=SGD_MOMENTUM)
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=lr)
    if optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=ADAMW_WEIGHT_DECAY)
    opt = optimizer(lr)
    if not isinstance(opt, torch.optim.Optimizer):
        raise TypeError(
            f"the optimizer factory must return a torch.optim.Optimizer; received a "
            f"{type(opt).__name__}. Example: optimizer=lambda lr: torch.optim.RMSprop("
            "model.parameters(), lr=lr)."
        )
    return opt


def make_schedule(
    name: str, *, base_lr: float, total_steps: int, warmup_steps: int = 0,
    step_size: int | None = None, gamma: float = 0.1, max_lr: float | None = None,
    final_lr: float = 0.0,
) -> Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]:
    """A factory ``optimizer -> LRScheduler`` for schedule `name` (see `coursekit.schedules`).

    Call ``scheduler.step()`` once per optimizer step. The schedule owns the LR: the
    optimizer's own lr is replaced by the schedule's, as Keras does with a schedule object.
    """
    p = check_schedule(name, base_lr=base_lr, total_steps=total_steps, warmup_steps=warmup_steps,
                       step_size=step_size, gamma=gamma, max_lr=max_lr, final_lr=final_lr)

    def factor(step: int) -> float:
        # LambdaLR multiplies each group's initial_lr (set to base_lr below) by this factor.
        return float(formula(p, float(step))) / p.base_lr

    def attach(optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"make_schedule(...) returns a function of a torch optimizer; received a "
                f"{type(optimizer).__name__}. Example: make_schedule('cosine', base_lr=0.1, "
                "total_steps=100)(torch.optim.SGD(model.parameters(), lr=0.1))."
            )
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] = p.base_lr
        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    return attach
