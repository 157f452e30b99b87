"""Lesson 06's experiments (learning rate) in Keras 3. Twin of `coursekit.torch.lrlab`.

Thin helpers over `run_two_branch`, `make_schedule` and the diagnostics, so the notebook and
its claims tests run the very same experiments:

- `run_scheduled`: `run_two_branch` with an LR schedule stepped after every batch;
- `steps_per_epoch`: optimizer steps per epoch of `run_two_branch` on some data;
- `dead_relus` / `annotate`: how many ReLU units a run left dead and whether its output
  collapsed, added to a run's `extra` so `compare(runs, columns=COLUMNS)` prints them;
- `tiny_regression`: the small full-batch problem of the LR-range-test exercise;
- `range_knob_shifts`: how five changed settings move the range test's suggestion (exercise 2);
- `range_fault_curves` / `range_fault_table`: four range tests, three of them with a mistake (exercise 3).

Import it as ``from coursekit.keras import lrlab``. This module must never import PyTorch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..data import TwoBranchData
from ..experiments import FusionRun
from ..history import LRRangeResult
from ..lrlab import (
    COLUMNS,
    KnobShift,
    annotate_with,
    range_fault_curves_with,
    range_fault_table,
    range_knob_shifts_with,
    run_scheduled_with,
    steps_per_epoch,
    tiny_regression_data,
)
from . import _tf
from ..memo import memoized
from .backend import BACKEND
from .diagnostics import activation_stats, is_collapsed
from .lr import lr_range_test, make_schedule

keras = _tf.keras

__all__ = ["COLUMNS", "annotate", "dead_relus", "range_fault_curves", "range_fault_table", "range_knob_shifts",
           "run_scheduled", "steps_per_epoch", "tiny_regression"]

# two_branch_net's convolutions that end in a ReLU (Keras fuses the activation into the conv).
_RELU_CONVS = {"branch_a": "branch_a_conv", "branch_b": "branch_b_conv", "head": "head_conv"}


@memoized
def run_scheduled(
    data: TwoBranchData,
    schedule: str,
    *,
    base_lr: float,
    optimizer: str = "sgd",
    epochs: int = 8,
    batch_size: int = 64,
    seed: int = 0,
    label: str | None = None,
    progress: bool = False,
    **schedule_options: Any,
) -> FusionRun:
    """`run_two_branch(data, optimizer=..., lr=base_lr, ...)` with the LR following schedule
    `schedule` (see `coursekit.schedules`) over all ``epochs * steps_per_epoch`` steps.

    `schedule_options` go to `make_schedule` (warmup_steps, step_size, gamma, max_lr,
    final_lr). With 'constant' the run is the same as `run_two_branch`'s. `progress` shows
    fit's bar over the epochs.
    """
    return run_scheduled_with(BACKEND, "NHWC", make_schedule, data, schedule, base_lr=base_lr,
                              optimizer=optimizer, epochs=epochs, batch_size=batch_size, seed=seed, label=label,
                              progress=progress, **schedule_options)


def dead_relus(model, x: Any) -> dict[str, float]:
    """The dead-unit fraction (`LayerStats.frac_zero`) after each ReLU of a two-branch net on
    the batch `x`: keys 'branch_a', 'branch_b' and 'head' (the head conv's ReLU)."""
    for name in _RELU_CONVS.values():
        try:
            layer = model.get_layer(name)
        except ValueError:
            layer = None
        if layer is None or layer.get_config().get("activation") != "relu":
            raise ValueError(
                f"dead_relus expects a two_branch_net with activations='relu'; layer {name!r} is "
                f"{'missing' if layer is None else 'not followed by a ReLU'}."
            )
    stats = activation_stats(model, x, layers=list(_RELU_CONVS.values()))
    return {key: stats.by_name(name).frac_zero for key, name in _RELU_CONVS.items()}


def annotate(run: FusionRun, x: Any) -> FusionRun:
    """Add what a learning rate did to `run.extra` (and return the run): the first and last
    epoch's training loss, the dead head ReLUs on `x`, and whether the output collapsed."""
    return annotate_with(run, x, dead_relus, is_collapsed)


def tiny_regression(seed: int = 0, n: int = 64):
    """A linear model and a full batch of noisy linear data: (model, x (n, 3), y (n, 1)).

    The data (numpy, `seed`) are the same as the PyTorch twin's; the model is a built
    ``Dense(1)`` on 3 inputs initialized from Keras' seed `seed`.
    """
    x, y = tiny_regression_data(seed, n)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)], name="tiny_regression")
    return model, x, y


@memoized
def range_knob_shifts(seed: int = 0, knobs: Sequence[str] | None = None) -> dict[str, KnobShift]:
    """How each change in `coursekit.lrlab.RANGE_KNOBS` (or each of `knobs`) moves the suggested LR
    of the range test on `tiny_regression(seed)` (SGD, mean squared error, full batch):
    {knob: KnobShift}, whose `.shift` is "lower", "same" or "higher"."""
    return range_knob_shifts_with(lr_range_test, tiny_regression, seed, knobs)


def _set_linear(model, weights, bias) -> None:
    model.set_weights([weights, bias.reshape(1)])


@memoized
def range_fault_curves(seed: int = 0) -> dict[str, LRRangeResult]:
    """Four range tests on `tiny_regression(seed)`, labelled "A" to "D": one healthy, and one each
    whose range ends too low, starts too high, or runs on a model that has nothing left to learn
    (`coursekit.lrlab.RANGE_FAULT_CURVES` says which is which)."""
    return range_fault_curves_with(lr_range_test, tiny_regression, _set_linear, seed)
