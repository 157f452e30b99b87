"""A small training helper for PyTorch models: `fit`, `evaluate`, `predict`.

Twin of `coursekit.keras.train`: same names, same signatures, same `History` keys ('loss',
'accuracy', 'val_loss', 'val_accuracy'). Lessons call `fit` so that both halves train alike;
the loop is the one a student would write by hand, kept within 5% of its speed
(bench/fit_overhead.py). This module must never import TensorFlow or Keras.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..history import History
from .device import get_device

from ..progress import runs_bar
from ..training import LOSSES, OPTIMIZERS
from ..training import check_metrics as _check_metrics
from ..training import describe as _describe
from ..training import positive_int as _positive_int
from ..training import progress as _progress
from ..training import short as _short

__all__ = ["LOSSES", "OPTIMIZERS", "evaluate", "fit", "predict", "runs_bar"]


# Arrays up to this size are copied to the device once per fit instead of once per batch.
_DEVICE_CACHE_BYTES = 512 * 2**20


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


def _make_optimizer(optimizer: Any, model: nn.Module, lr: float) -> torch.optim.Optimizer:
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    if not isinstance(optimizer, str) or optimizer.lower() not in OPTIMIZERS:
        raise ValueError(
            f"optimizer must be one of {OPTIMIZERS} or a torch.optim.Optimizer; received "
            f"{optimizer!r}. Example: fit(model, train, optimizer='sgd', lr=0.01)."
        )
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(
            f"{type(model).__name__} has no trainable parameters (none with requires_grad=True), "
            "so there is nothing to fit. Check find_untrainable_parameters(model)."
        )
    name = optimizer.lower()
    # The same hyperparameters as the Keras twin, so both halves train alike.
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, eps=1e-8)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.01, eps=1e-8)
    return torch.optim.RMSprop(params, lr=lr, alpha=0.9)


def _target_like(y: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    # (N,) labels against (N, 1) outputs is the usual mismatch; Keras reshapes silently too.
    if y.shape != out.shape and y.numel() == out.numel():
        y = y.reshape(out.shape)
    return y if y.dtype == out.dtype else y.to(out.dtype)


def _resolve_loss(loss: Any) -> tuple[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    if callable(loss) and not isinstance(loss, str):
        return "custom", loss
    if not isinstance(loss, str) or loss.lower() not in LOSSES:
        raise ValueError(
            f"loss must be one of {LOSSES} or a callable (output, target) -> scalar tensor; "
            f"received {loss!r}. Use 'cross_entropy' for integer class labels and logits."
        )
    name = loss.lower()
    if name == "cross_entropy":
        return name, F.cross_entropy
    if name == "mse":
        return name, lambda out, y: F.mse_loss(out, _target_like(y, out))
    return name, lambda out, y: F.binary_cross_entropy_with_logits(out, _target_like(y, out))


def _accuracy_counter(out: torch.Tensor, y: torch.Tensor, loss_name: str) -> Callable:
    """Pick, from the first batch, how to count correct predictions (summed per sample)."""
    if loss_name == "bce":
        def count(out, y):
            hits = ((out > 0) == (_target_like(y, out) > 0.5)).float()
            return hits.reshape(hits.shape[0], -1).mean(1).sum()
        return count
    if not y.is_floating_point() and out.ndim == y.ndim + 1 and out.shape[1] > 1:
        return lambda out, y: (out.argmax(1) == y).sum()
    if y.shape == out.shape and out.ndim == 2 and out.shape[1] > 1:
        return lambda out, y: (out.argmax(1) == y.argmax(1)).sum()
    raise ValueError(
        f"metric 'accuracy' needs integer labels of shape (N,) with outputs (N, classes), one-hot "
        f"targets shaped like the outputs, or loss='bce'; received outputs {tuple(out.shape)} and "
        f"targets {tuple(y.shape)} ({y.dtype}). Pass metrics=() to record the loss only."
    )


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def _as_tensor(a: Any, role: str) -> torch.Tensor:
    t = a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
    if t.is_floating_point() and t.dtype != torch.get_default_dtype() and role == "x":
        # numpy defaults to float64; model weights are float32.
        t = t.to(torch.get_default_dtype())
    if role == "y" and not t.is_floating_point() and t.dtype != torch.int64:
        t = t.long()  # cross_entropy wants int64 class indices
    return t


def _split_xy(data: Any, name: str) -> tuple[list[torch.Tensor], torch.Tensor]:
    x, y = data
    xs = list(x) if isinstance(x, (list, tuple)) else [x]
    if not xs:
        raise ValueError(f"{name}: x is an empty {type(x).__name__}; pass one array per model input.")
    xs = [_as_tensor(a, "x") for a in xs]
    y = _as_tensor(y, "y")
    n = y.shape[0] if y.ndim else -1
    bad = [tuple(a.shape) for a in xs if a.ndim == 0 or a.shape[0] != n]
    if bad or n < 1:
        raise ValueError(
            f"{name}: every input needs one row per label; received x shapes "
            f"{[tuple(a.shape) for a in xs]} and y shape {tuple(y.shape)}. Fix: slice x and y alike, "
            "e.g. (x[:600], y[:600])."
        )
    return xs, y


class _ArrayData:
    """(x, y) arrays, converted once and (when small enough) moved to the device once."""

    def __init__(self, data: Any, name: str, device: torch.device, batch_size: int) -> None:
        xs, y = _split_xy(data, name)
        nbytes = sum(t.numel() * t.element_size() for t in (*xs, y))
        self.device = device
        self.on_device = device.type == "cpu" or nbytes <= _DEVICE_CACHE_BYTES
        where = device if self.on_device else torch.device("cpu")
        self.xs = [t.to(where) for t in xs]
        self.y = y.to(where)
        self.n = int(y.shape[0])
        self.batch_size = batch_size

    def batches(self, shuffle: bool, generator: torch.Generator | None) -> Iterator[tuple[list, torch.Tensor]]:
        bs = self.batch_size
        if shuffle:
            perm = torch.randperm(self.n, generator=generator).to(self.xs[0].device)
            for i in range(0, self.n, bs):
                idx = perm[i : i + bs]
                yield self._move([t.index_select(0, idx) for t in self.xs]), self._move_one(self.y.index_select(0, idx))
        else:
            for i in range(0, self.n, bs):
                yield self._move([t[i : i + bs] for t in self.xs]), self._move_one(self.y[i : i + bs])

    def _move(self, ts: list[torch.Tensor]) -> list[torch.Tensor]:
        return ts if self.on_device else [t.to(self.device, non_blocking=True) for t in ts]

    def _move_one(self, t: torch.Tensor) -> torch.Tensor:
        return t if self.on_device else t.to(self.device, non_blocking=True)


class _LoaderData:
    """An iterable of batches (e.g. a DataLoader): (x, y), ((x1, x2), y) or (x1, x2, y)."""

    def __init__(self, loader: Iterable, device: torch.device) -> None:
        self.loader = loader
        self.device = device

    def batches(self, shuffle: bool, generator: torch.Generator | None) -> Iterator[tuple[list, torch.Tensor]]:
        for batch in self.loader:
            if not isinstance(batch, (list, tuple)) or len(batch) < 2:
                raise ValueError(
                    "each batch of a DataLoader must be (x, y), ((x1, x2), y) or (x1, x2, y); received "
                    f"a {type(batch).__name__}. Fix: make the Dataset's __getitem__ return (x, y)."
                )
            *xs, y = batch
            if len(xs) == 1 and isinstance(xs[0], (list, tuple)):
                xs = list(xs[0])
            nb = self.device.type == "cuda"
            yield [_as_tensor(t, "x").to(self.device, non_blocking=nb) for t in xs], _as_tensor(y, "y").to(
                self.device, non_blocking=nb
            )


def _as_data(data: Any, name: str, device: torch.device, batch_size: int):
    if isinstance(data, (list, tuple)) and len(data) == 2:
        return _ArrayData(data, name, device, batch_size)
    if isinstance(data, torch.utils.data.DataLoader) or (
        hasattr(data, "__iter__") and not isinstance(data, (list, tuple, str, dict, np.ndarray))
    ):
        return _LoaderData(data, device)
    raise TypeError(
        f"{name} must be a pair (x, y) of arrays, with x a list of arrays for a multi-input model, "
        f"or a torch DataLoader; received {_describe(data)}. Example: fit(model, (x_train, y_train), "
        "val=(x_test, y_test))."
    )


def _model_device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _check_output(out: Any, model: nn.Module) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise TypeError(
            f"{type(model).__name__}.forward must return one tensor of outputs (logits) for fit; "
            f"it returned a {type(out).__name__}. Return only the logits, or wrap the model."
        )
    return out


# --------------------------------------------------------------------------------------------
# Loops
# --------------------------------------------------------------------------------------------


def _evaluate_data(model: nn.Module, data, loss_fn, loss_name: str, want_acc: bool) -> dict[str, float]:
    was_training = model.training
    model.eval()
    total = correct = None
    count_correct = None
    n = 0
    try:
        with torch.no_grad():
            for xs, yb in data.batches(False, None):
                out = _check_output(model(*xs), model)
                bs = yb.shape[0]
                lb = loss_fn(out, yb).detach() * bs
                total = lb if total is None else total + lb
                if want_acc:
                    count_correct = count_correct or _accuracy_counter(out, yb, loss_name)
                    c = count_correct(out, yb)
                    correct = c if correct is None else correct + c
                n += bs
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("the evaluation data holds no samples; pass at least one (x, y) row.")
    values = {"loss": float(total.item()) / n}
    if want_acc:
        values["accuracy"] = float(correct.item()) / n
    return values


def fit(
    model: nn.Module,
    train: Any,
    val: Any = None,
    *,
    epochs: int = 3,
    optimizer: str | torch.optim.Optimizer = "adam",
    lr: float = 1e-3,
    loss: str | Callable = "cross_entropy",
    metrics: Sequence[str] = ("accuracy",),
    batch_size: int = 64,
    shuffle: bool = True,
    seed: int = 0,
    progress: bool = True,
    device: str | torch.device | None = None,
    schedule: Callable[[torch.optim.Optimizer], Any] | None = None,
) -> History:
    """Train `model` for `epochs` and return a `History` ('loss', 'accuracy', 'val_loss',
    'val_accuracy' per epoch, and the seconds each epoch took).

    `train` and `val` are `(x, y)` with `x` one array (or tensor) or a list of arrays for a
    multi-input model, called as ``model(x1, x2)``; or an iterable of batches such as a
    ``torch.utils.data.DataLoader`` yielding ``(x, y)``, ``((x1, x2), y)`` or ``(x1, x2, y)``
    (then `batch_size`, `shuffle` and `seed` are the loader's business). Arrays are
    converted once (float arrays to float32, integer labels to int64) and, up to 512 MiB,
    moved to the device once.

    `optimizer` is one of 'adam', 'sgd' (momentum 0.9), 'adamw' (weight decay 0.01),
    'rmsprop' (alpha 0.9), built with `lr`, or a ready ``torch.optim.Optimizer`` (then `lr` is
    ignored). `loss` is 'cross_entropy' (logits and integer labels), 'mse', 'bce' (logits and
    0/1 targets) or a callable ``(output, target) -> mean loss``. `schedule` is a callable
    ``optimizer -> LR scheduler`` (e.g. ``lambda opt: OneCycleLR(opt, 1e-2, total_steps=n)``);
    its ``step()`` runs after every batch. `seed` fixes the shuffling order only; seed the
    model's initialization with ``coursekit.seed_everything`` before building it.

    The model is moved to `device` (default: `get_device()`), trained in ``model.train()``
    mode and validated in ``model.eval()`` under ``torch.no_grad()``; it is left in the mode
    it had before. The loss is the mean over the epoch's samples, summed on the device so
    that no batch waits for a ``.item()``. A progress bar over epochs goes to stdout
    (nbgrader fails cells that write to stderr); it is off with `progress=False` and while
    nbgrader executes the notebook (``NBGRADER_EXECUTION`` set).
    """
    epochs = _positive_int(epochs, "epochs")
    batch_size = _positive_int(batch_size, "batch_size")
    metrics = _check_metrics(metrics)
    want_acc = "accuracy" in metrics
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"fit trains a torch.nn.Module; received a {type(model).__name__}. For a Keras model "
            "use coursekit.keras.train.fit."
        )
    device = get_device() if device is None else torch.device(device)
    model.to(device)
    loss_name, loss_fn = _resolve_loss(loss)
    opt = _make_optimizer(optimizer, model, lr)
    sched = None
    if schedule is not None:
        if not callable(schedule):
            raise TypeError(
                f"schedule must be a callable optimizer -> LR scheduler, e.g. lambda opt: "
                f"torch.optim.lr_scheduler.StepLR(opt, 100); received a {type(schedule).__name__}."
            )
        sched = schedule(opt)
        if not hasattr(sched, "step"):
            raise TypeError(
                f"schedule(optimizer) must return an LR scheduler with a .step() method; it returned "
                f"a {type(sched).__name__}."
            )
    train_data = _as_data(train, "train", device, batch_size)
    val_data = None if val is None else _as_data(val, "val", device, batch_size)
    generator = torch.Generator().manual_seed(int(seed)) if shuffle else None

    history = History()
    was_training = model.training
    count_correct = None
    bar = _progress(epochs, progress)
    try:
        for _ in range(epochs):
            start = time.perf_counter()
            model.train()
            total = torch.zeros((), device=device)
            correct = torch.zeros((), device=device)
            n = 0
            for xs, yb in train_data.batches(shuffle, generator):
                opt.zero_grad(set_to_none=True)
                out = _check_output(model(*xs), model)
                if want_acc and count_correct is None:
                    # Decided before the loss, so mismatched targets get the accuracy message.
                    count_correct = _accuracy_counter(out, yb, loss_name)
                batch_loss = loss_fn(out, yb)
                batch_loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                bs = yb.shape[0]
                # Summed on the device: a per-batch .item() would stall the GPU every step.
                total.add_(batch_loss.detach(), alpha=bs)
                if want_acc:
                    correct.add_(count_correct(out.detach(), yb))
                n += bs
            if n == 0:
                raise ValueError("the training data holds no samples; pass at least one (x, y) row.")
            values = {"loss": total.item() / n}
            if want_acc:
                values["accuracy"] = correct.item() / n
            if val_data is not None:
                for k, v in _evaluate_data(model, val_data, loss_fn, loss_name, want_acc).items():
                    values["val_" + k] = v
            history.append(values, time.perf_counter() - start)
            bar.set_postfix({k: _short(v) for k, v in values.items()}, refresh=False)
            bar.update(1)
    finally:
        bar.close()
        model.train(was_training)
    return history


def evaluate(
    model: nn.Module,
    x: Any,
    y: Any,
    *,
    loss: str | Callable = "cross_entropy",
    batch_size: int = 256,
    metrics: Sequence[str] = ("accuracy",),
) -> dict[str, float]:
    """Mean loss (and accuracy) of `model` on `(x, y)`, as ``{'loss': ..., 'accuracy': ...}``.

    Runs on the model's own device in ``eval()`` mode under ``torch.no_grad()`` and leaves
    the mode as it was. `x` may be a list of arrays for a multi-input model.
    """
    batch_size = _positive_int(batch_size, "batch_size")
    metrics = _check_metrics(metrics)
    loss_name, loss_fn = _resolve_loss(loss)
    data = _ArrayData((x, y), "evaluate", _model_device(model), batch_size)
    return _evaluate_data(model, data, loss_fn, loss_name, "accuracy" in metrics)


def predict(model: nn.Module, x: Any, batch_size: int = 256) -> np.ndarray:
    """The outputs of `model` on `x` as one numpy array (eval mode, no_grad, in batches).

    `x` is an array or tensor, or a list of them for a multi-input model.
    """
    batch_size = _positive_int(batch_size, "batch_size")
    xs = list(x) if isinstance(x, (list, tuple)) else [x]
    n = len(xs[0]) if xs else 0
    data = _ArrayData((xs, np.zeros(n, np.int64)), "predict", _model_device(model), batch_size)
    was_training = model.training
    model.eval()
    outs = []
    try:
        with torch.no_grad():
            for xb, _ in data.batches(False, None):
                outs.append(_check_output(model(*xb), model).detach().cpu())
    finally:
        model.train(was_training)
    return torch.cat(outs).numpy()
