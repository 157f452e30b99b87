"""Lesson 06's experiments (learning rate) in PyTorch. Twin of `coursekit.keras.lrlab`.

Thin helpers over `run_two_branch`, `make_schedule` and the diagnostics, so the notebook and
its claims tests run the very same experiments:

- `run_scheduled`: `run_two_branch` with an LR schedule stepped after every batch;
- `steps_per_epoch`: optimizer steps per epoch of `run_two_branch` on some data;
- `dead_relus` / `annotate`: how many ReLU units a run left dead and whether its output
  collapsed, added to a run's `extra` so `compare(runs, columns=COLUMNS)` prints them;
- `tiny_regression`: the small full-batch problem of the LR-range-test exercise;
- `range_knob_shifts`: how five changed settings move the range test's suggestion (exercise 2);
- `range_fault_curves` / `range_fault_table`: four range tests, three of them with a mistake (exercise 3).

Import it as ``from coursekit.torch import lrlab``. This module must never import TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

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
from ..memo import memoized
from .backend import BACKEND
from .diagnostics import activation_stats, is_collapsed
from .lr import lr_range_test, make_schedule

__all__ = ["COLUMNS", "annotate", "dead_relus", "range_fault_curves", "range_fault_table", "range_knob_shifts",
           "run_scheduled", "steps_per_epoch", "tiny_regression"]



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
    return run_scheduled_with(BACKEND, "NCHW", make_schedule, data, schedule, base_lr=base_lr,
                              optimizer=optimizer, epochs=epochs, batch_size=batch_size, seed=seed, label=label,
                              progress=progress, **schedule_options)


def dead_relus(model: nn.Module, x: Any) -> dict[str, float]:
    """The dead-unit fraction (`LayerStats.frac_zero`) after each ReLU of a two-branch net on
    the batch `x`: keys 'branch_a', 'branch_b' and 'head' (the ReLU after the head conv)."""
    stats = [s for s in activation_stats(model, x, layers=[nn.ReLU])]
    if len(stats) != 3:
        raise ValueError(
            f"dead_relus expects a two_branch_net with activations='relu' (3 ReLUs); found "
            f"{len(stats)}: {[s.name for s in stats]}."
        )
    return {key: s.frac_zero for key, s in zip(("branch_a", "branch_b", "head"), stats)}


def annotate(run: FusionRun, x: Any) -> FusionRun:
    """Add what a learning rate did to `run.extra` (and return the run): the first and last
    epoch's training loss, the dead head ReLUs on `x`, and whether the output collapsed."""
    return annotate_with(run, x, dead_relus, is_collapsed)


def tiny_regression(seed: int = 0, n: int = 64) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A linear model and a full batch of noisy linear data: (model, x (n, 3), y (n, 1)).

    The data (numpy, `seed`) are the same as the Keras twin's; the model is nn.Linear(3, 1)
    initialized from torch's seed `seed`.
    """
    x, y = tiny_regression_data(seed, n)
    torch.manual_seed(seed)
    return nn.Linear(3, 1), torch.from_numpy(x), torch.from_numpy(y)


@memoized
def range_knob_shifts(seed: int = 0, knobs: Sequence[str] | None = None) -> dict[str, KnobShift]:
    """How each change in `coursekit.lrlab.RANGE_KNOBS` (or each of `knobs`) moves the suggested LR
    of the range test on `tiny_regression(seed)` (SGD, mean squared error, full batch):
    {knob: KnobShift}, whose `.shift` is "lower", "same" or "higher"."""
    return range_knob_shifts_with(lr_range_test, tiny_regression, seed, knobs)


def _set_linear(model: nn.Linear, weights, bias) -> None:
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(weights.T.copy()))
        model.bias.copy_(torch.from_numpy(bias.reshape(1).copy()))


@memoized
def range_fault_curves(seed: int = 0) -> dict[str, LRRangeResult]:
    """Four range tests on `tiny_regression(seed)`, labelled "A" to "D": one healthy, and one each
    whose range ends too low, starts too high, or runs on a model that has nothing left to learn
    (`coursekit.lrlab.RANGE_FAULT_CURVES` says which is which)."""
    return range_fault_curves_with(lr_range_test, tiny_regression, _set_linear, seed)
