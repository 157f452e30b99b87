"""Learning rates for Keras 3: Leslie Smith's LR range test and named LR schedules.

Twin of `coursekit.torch.lr`: same names, same signatures, the same LR at every step. The
math (schedule formulas, smoothing, divergence, the suggestion) lives in `coursekit.schedules`.
This module must never import PyTorch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

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
from . import _tf

tf, keras = _tf.tf, _tf.keras
ops = keras.ops

# NamedSchedule (what make_schedule returns) stays out of __all__ so both halves export the
# same names; it is importable for isinstance checks and registered for saving.
__all__ = ["SCHEDULES", "lr_at", "lr_range_test", "make_schedule", "schedule_values"]


def lr_range_test(
    model, x, y, *, loss: str | Callable = "cross_entropy", optimizer: str | Callable = "sgd",
    start_lr: float = 1e-6, end_lr: float = 1.0, num_steps: int = 100, batch_size: int = 64,
    smooth: float = 0.05, diverge_factor: float = 4.0, seed: int = 0, progress: bool = False,
) -> LRRangeResult:
    """Leslie Smith's LR range test: train `num_steps` mini-batches while the LR grows
    geometrically from `start_lr` to `end_lr`, and record the (smoothed) loss at each LR.

    x: an array, or a list/tuple of arrays for a multi-input model (called as ``model([a, b])``).
    loss: 'cross_entropy' (logits and integer labels, like torch's), 'mse', or
    ``loss(y_true, y_pred)`` in Keras' argument order (e.g. a ``keras.losses`` object).
    optimizer: 'sgd' (momentum 0.9), 'adam', 'adamw' (weight_decay 0.01, torch's default) or a
    factory ``lr -> keras optimizer`` with a float learning rate.
    Stops early once the smoothed loss exceeds `diverge_factor` x its best (or turns NaN),
    recording `diverged_at`. See `coursekit.schedules.RangeTestRecorder` for the smoothing and
    `suggest_lr` for the suggestion.

    The model is left exactly as it was, also when the test raises: every variable (weights,
    BatchNorm moving stats, dropout seed state) and the compiled optimizer's state. `seed`
    fixes the batch order. An unbuilt model is first built by calling it on one batch.
    """
    check_range_test(loss=loss, optimizer=optimizer, start_lr=start_lr, end_lr=end_lr,
                     num_steps=num_steps, batch_size=batch_size, smooth=smooth,
                     diverge_factor=diverge_factor, seed=seed)
    if not isinstance(model, keras.Model):
        raise TypeError(f"lr_range_test expects a keras Model; received a {type(model).__name__}.")
    multi = isinstance(x, (list, tuple))
    xs = [np.asarray(a) for a in (x if multi else [x])]
    target = np.asarray(y)
    check_range_data([len(a) for a in xs], len(target))
    loss_fn = _loss_fn(loss)
    batches = range_test_batches(len(target), batch_size, seed)

    def inputs(idx: np.ndarray):
        batch = [ops.convert_to_tensor(a[idx]) for a in xs]
        return batch if multi else batch[0]

    if not model.built:
        model(inputs(np.arange(min(batch_size, len(target)))), training=False)
    if not model.trainable_variables:
        raise ValueError(f"model {model.name!r} has no trainable variables, so there is nothing to train.")
    saved = _snapshot(model)
    recorder = RangeTestRecorder(smooth, diverge_factor)
    bar = progress_bar(progress, num_steps)
    try:
        opt = _make_optimizer(optimizer, start_lr)
        weights = model.trainable_variables
        for lr, idx in zip(range_test_lrs(start_lr, end_lr, num_steps), batches):
            _set_lr(opt, lr)
            with tf.GradientTape() as tape:
                value = loss_fn(ops.convert_to_tensor(target[idx]), model(inputs(idx), training=True))
            if tuple(getattr(value, "shape", (None,))) not in ((), (1,)):
                raise ValueError(
                    f"the loss must return a scalar; received {type(value).__name__} of shape "
                    f"{tuple(getattr(value, 'shape', ()))}. Fix: reduce it, e.g. with keras.ops.mean."
                )
            raw = float(ops.convert_to_numpy(value).reshape(()))
            keep_going = recorder.record(lr, raw)
            bar.update()
            bar.set_postfix(lr=f"{lr:.2e}", loss=f"{raw:.3g}")
            if not keep_going:
                break
            opt.apply_gradients(zip(tape.gradient(value, weights), weights))
    finally:
        bar.close()
        for variable, value in saved:
            variable.assign(value)
    return recorder.result()


def _snapshot(model) -> list:
    # model.variables covers weights, BatchNorm moving stats and the layers' seed-generator
    # state; a compiled model's optimizer keeps its own (slots, iteration count).
    variables = list(model.variables)
    compiled_opt = getattr(model, "optimizer", None)
    if compiled_opt is not None:
        variables += list(compiled_opt.variables)
    return [(v, np.array(v.numpy(), copy=True)) for v in variables]


def _loss_fn(loss: str | Callable) -> Callable:
    if callable(loss):
        return loss
    if loss == "cross_entropy":
        return lambda t, out: ops.mean(
            keras.losses.sparse_categorical_crossentropy(t, out, from_logits=True)
        )
    return lambda t, out: ops.mean(ops.square(out - ops.cast(t, out.dtype)))


def _make_optimizer(optimizer: str | Callable, lr: float):
    if optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=SGD_MOMENTUM)
    if optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    if optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=ADAMW_WEIGHT_DECAY)
    opt = optimizer(lr)
    if not isinstance(opt, keras.optimizers.Optimizer):
        raise TypeError(
            f"the optimizer factory must return a keras optimizer; received a "
            f"{type(opt).__name__}. Example: optimizer=lambda lr: keras.optimizers.RMSprop(lr)."
        )
    return opt


def _set_lr(opt, lr: float) -> None:
    try:
        opt.learning_rate = lr
    except TypeError:
        raise TypeError(
            "the LR range test sets the learning rate at every step, but the optimizer from "
            "the factory was built with a LearningRateSchedule. Fix: create it with a float, "
            "e.g. optimizer=lambda lr: keras.optimizers.SGD(learning_rate=lr)."
        ) from None


class _KerasMath:
    """The namespace `coursekit.schedules.formula` expects, on float64 keras tensors."""

    pi = math.pi
    cos = staticmethod(ops.cos)
    floor = staticmethod(ops.floor)
    minimum = staticmethod(ops.minimum)
    where = staticmethod(ops.where)

    @staticmethod
    def power(base: float, exponent):
        # A python-float base would otherwise be promoted to float32.
        return ops.power(ops.convert_to_tensor(base, "float64"), exponent)


@keras.saving.register_keras_serializable(package="coursekit")
class NamedSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """One of `coursekit.schedules.SCHEDULES` as a Keras schedule.

    It evaluates `coursekit.schedules.formula` (the function the PyTorch half uses) with
    ``keras.ops`` in float64, so it runs inside ``tf.function`` and matches torch step for step.
    One class for every name, rather than Keras' CosineDecay/ExponentialDecay: those compute
    in float32 and drift by ~1e-4 relative near the end of a cosine.
    """

    def __init__(self, name: str, base_lr: float, total_steps: int, warmup_steps: int = 0,
                 step_size: int | None = None, gamma: float = 0.1, max_lr: float | None = None,
                 final_lr: float = 0.0) -> None:
        self.params = check_schedule(
            name, base_lr=base_lr, total_steps=total_steps, warmup_steps=warmup_steps,
            step_size=step_size, gamma=gamma, max_lr=max_lr, final_lr=final_lr,
        )

    def __call__(self, step):
        step = ops.cast(step, "float64")
        return ops.cast(formula(self.params, step, xp=_KerasMath), "float32")

    def get_config(self) -> dict:
        return self.params.as_config()


def make_schedule(
    name: str, *, base_lr: float, total_steps: int, warmup_steps: int = 0,
    step_size: int | None = None, gamma: float = 0.1, max_lr: float | None = None,
    final_lr: float = 0.0,
) -> NamedSchedule:
    """A ``keras.optimizers.schedules.LearningRateSchedule`` for schedule `name` (see
    `coursekit.schedules`); pass it as an optimizer's learning_rate. Keras counts steps with
    ``optimizer.iterations``, starting at 0 like torch's schedulers."""
    return NamedSchedule(name, base_lr=base_lr, total_steps=total_steps,
                         warmup_steps=warmup_steps, step_size=step_size, gamma=gamma,
                         max_lr=max_lr, final_lr=final_lr)
