"""Lesson 06's experiments (learning rate) in PyTorch. Twin of `coursekit.keras.lrlab`.

Thin helpers over `run_two_branch`, `make_schedule` and the diagnostics, so the notebook and
its claims tests run the very same experiments:

- `run_scheduled`: `run_two_branch` with an LR schedule stepped after every batch;
- `steps_per_epoch`: optimizer steps per epoch of `run_two_branch` on some data;
- `dead_relus` / `annotate`: how many ReLU units a run left dead and whether its output
  collapsed, added to a run's `extra` so `compare(runs, columns=COLUMNS)` prints them;
- `tiny_regression`: the small full-batch problem of the LR-range-test exercise.

Import it as ``from coursekit.torch import lrlab``. This module must never import TensorFlow.
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data import TwoBranchData
from ..experiments import FusionRun, run_two_branch_with
from . import experiments as _exp
from .diagnostics import activation_stats, is_collapsed
from .lr import make_schedule

__all__ = ["COLUMNS", "annotate", "dead_relus", "run_scheduled", "steps_per_epoch", "tiny_regression"]

# The extra columns `annotate` adds, for `coursekit.experiments.compare(runs, columns=COLUMNS)`.
COLUMNS = ("epoch-1 loss", "final train loss", "dead head ReLUs", "output")
TEST_SIZE = 0.25  # run_two_branch's split


def steps_per_epoch(data: TwoBranchData, batch_size: int = 64) -> int:
    """Optimizer steps per epoch when `run_two_branch` / `run_scheduled` train on `data`
    (its 75 % training split in batches of `batch_size`, the last one possibly smaller)."""
    train, _ = data.split(TEST_SIZE, seed=0)
    return math.ceil(len(train) / int(batch_size))


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
    total = int(epochs) * steps_per_epoch(data, batch_size)
    sched = make_schedule(schedule, base_lr=base_lr, total_steps=total, **schedule_options)
    api = SimpleNamespace(
        two_branch_net=_exp.two_branch_net, init_model=_exp.init_model, predict=_exp.predict,
        branch_report=_exp.branch_report, count_params=_exp.count_params,
        fit=functools.partial(_exp.fit, schedule=sched),
    )
    run = run_two_branch_with(api, "NCHW", data, label=label or f"{schedule} {base_lr:g}",
                              optimizer=optimizer, lr=base_lr, epochs=epochs, batch_size=batch_size,
                              seed=seed, report=False, progress=progress)
    run.options["schedule"] = schedule
    return run


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
    model = run.extra["model"]
    dead = dead_relus(model, x)
    report = is_collapsed(model, x)
    run.extra.update({
        "dead": dead,
        "collapse": report,
        "epoch-1 loss": _short(run.history["loss"][0]),
        "final train loss": _short(run.history.last("loss")),
        "dead head ReLUs": f"{dead['head']:.0%}",
        "output": report.reason or "varies",
    })
    return run


def _short(v: float) -> str:
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else "inf"
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"


def tiny_regression(seed: int = 0, n: int = 64) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A linear model and a full batch of noisy linear data: (model, x (n, 3), y (n, 1)).

    The data (numpy, `seed`) are the same as the Keras twin's; the model is nn.Linear(3, 1)
    initialized from torch's seed `seed`.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    y = (x @ np.array([[1.5], [-2.0], [0.5]]) + 0.1 * rng.standard_normal((n, 1))).astype(np.float32)
    torch.manual_seed(seed)
    return nn.Linear(3, 1), torch.from_numpy(x), torch.from_numpy(y)
