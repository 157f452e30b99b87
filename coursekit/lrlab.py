"""The framework-neutral half of lesson 06's experiments (learning rate).

`coursekit.torch.lrlab` and `coursekit.keras.lrlab` differ only in the data layout and in how
they find a network's ReLUs; the rest (steps per epoch, a run with an LR schedule, what a run's
learning rate did) is written once here and takes the framework's half as an argument.
Imports no framework.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

from .data import TwoBranchData
from .experiments import FusionRun, api_with, run_two_branch_with

# The extra columns `annotate` adds, for `coursekit.experiments.compare(runs, columns=COLUMNS)`.
COLUMNS = ("epoch-1 loss", "final train loss", "dead head ReLUs", "output")
TEST_SIZE = 0.25  # run_two_branch's split


def steps_per_epoch(data: TwoBranchData, batch_size: int = 64) -> int:
    """Optimizer steps per epoch when `run_two_branch` / `run_scheduled` train on `data`
    (its 75 % training split in batches of `batch_size`, the last one possibly smaller)."""
    train, _ = data.split(TEST_SIZE, seed=0)
    return math.ceil(len(train) / int(batch_size))


def run_scheduled_with(exp: Any, layout: str, make_schedule: Callable, data: TwoBranchData,
                       schedule: str, *, base_lr: float, optimizer: str, epochs: int, batch_size: int, seed: int,
                       label: str | None, progress: bool, **schedule_options: Any) -> FusionRun:
    """The body of both halves' `run_scheduled`: `exp` is the framework's `coursekit.backend.Backend`
    and `make_schedule` its schedule factory."""
    total = int(epochs) * steps_per_epoch(data, batch_size)
    sched = make_schedule(schedule, base_lr=base_lr, total_steps=total, **schedule_options)
    api = api_with(exp, fit=functools.partial(exp.fit, schedule=sched))
    run = run_two_branch_with(api, layout, data, label=label or f"{schedule} {base_lr:g}",
                              optimizer=optimizer, lr=base_lr, epochs=epochs, batch_size=batch_size,
                              seed=seed, report=False, progress=progress)
    run.options["schedule"] = schedule
    return run


def annotate_with(run: FusionRun, x: Any, dead_relus: Callable, is_collapsed: Callable) -> FusionRun:
    """The body of both halves' `annotate`, given their `dead_relus` and `is_collapsed`."""
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


def tiny_regression_data(seed: int = 0, n: int = 64):
    """The data of `tiny_regression` (both halves): x (n, 3) and y = x @ (1.5, -2, 0.5) + noise,
    float32 numpy arrays drawn from `seed`."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    y = (x @ np.array([[1.5], [-2.0], [0.5]]) + 0.1 * rng.standard_normal((n, 1))).astype(np.float32)
    return x, y
