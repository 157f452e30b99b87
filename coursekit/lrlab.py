"""The framework-neutral half of lesson 06's experiments (learning rate).

`coursekit.torch.lrlab` and `coursekit.keras.lrlab` differ only in the data layout and in how
they find a network's ReLUs; the rest (steps per epoch, a run with an LR schedule, what a run's
learning rate did) is written once here and takes the framework's half as an argument.
Imports no framework.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

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


# Lesson 06's exercise 2: what moves the range test's suggestion. One base test on
# `tiny_regression` and five changes of one setting each; a suggestion counts as moved when it
# changes by more than SHIFT_TOLERANCE (x or /). Over seeds 0-5 and both frameworks the five move it
# by about x0.3-0.5, x4-11, x1.4-1.9, x0.6-0.7 and x1.00 (tests/test_claims_06.py), far from 1.25.
RANGE_BASE = {"start_lr": 1e-4, "end_lr": 10.0, "num_steps": 100, "smooth": 0.05, "diverge_factor": 4.0}
RANGE_KNOBS = {
    "200 steps": {"num_steps": 200},
    "25 steps": {"num_steps": 25},
    "end_lr 1000": {"end_lr": 1000.0},
    "smooth 0.3": {"smooth": 0.3},
    "diverge_factor 2": {"diverge_factor": 2.0},
}
SHIFTS = ("lower", "same", "higher")
SHIFT_TOLERANCE = 1.25


def shift_of(base_lr: float, lr: float, tolerance: float = SHIFT_TOLERANCE) -> str:
    """"lower", "same" or "higher": where `lr` lies against `base_lr`, "same" within a factor
    `tolerance` either way."""
    if not (base_lr > 0 and lr > 0):
        raise ValueError(f"shift_of compares two positive learning rates; received {base_lr!r} and {lr!r}.")
    if lr < base_lr / tolerance:
        return "lower"
    return "higher" if lr > base_lr * tolerance else "same"


@dataclass(frozen=True)
class KnobShift:
    """One changed setting of the range test: the base and the changed test's suggested LR."""

    knob: str
    base_lr: float
    lr: float

    @property
    def shift(self) -> str:
        return shift_of(self.base_lr, self.lr)

    def __str__(self) -> str:
        return (f"{self.knob:>17}: suggested lr {self.lr:.3g} against {self.base_lr:.3g} "
                f"(x{self.lr / self.base_lr:.2f}) -> {self.shift}")


def range_knob_shifts_with(lr_range_test: Callable[..., Any], tiny_regression: Callable[[int], tuple],
                           seed: int = 0, knobs: Sequence[str] | None = None) -> dict[str, KnobShift]:
    """The body of both halves' `range_knob_shifts`: the suggested LR of the base range test
    (`RANGE_BASE`, SGD, mean squared error, the full batch of `tiny_regression(seed)`) and of each
    change in `RANGE_KNOBS` (or of the `knobs` named), every test from the same fresh model."""
    names = list(RANGE_KNOBS) if knobs is None else list(knobs)
    unknown = [k for k in names if k not in RANGE_KNOBS]
    if unknown:
        raise ValueError(f"unknown knob(s) {unknown}; choose from {list(RANGE_KNOBS)}.")

    def suggested(**changes: Any) -> float:
        model, x, y = tiny_regression(seed)
        result = lr_range_test(model, x, y, loss="mse", optimizer="sgd", batch_size=len(y), seed=seed,
                               **{**RANGE_BASE, **changes})
        if result.suggested_lr is None:
            raise RuntimeError(f"the range test with {changes or 'the base settings'} found no descent (seed {seed}).")
        return float(result.suggested_lr)

    base = suggested()
    return {knob: KnobShift(knob, base, suggested(**RANGE_KNOBS[knob])) for knob in names}


# Lesson 06's exercise 3: range tests that went wrong, read off their curves. Each is the base test
# on `tiny_regression` with one mistake; the letters are the order the exercise shows them in.
RANGE_FAULTS = ("healthy", "ends too low", "starts too high", "already trained")
RANGE_FAULT_CURVES = {"A": "ends too low", "B": "already trained", "C": "healthy", "D": "starts too high"}
_FAULT_SETTINGS = {"healthy": {}, "ends too low": {"end_lr": 1e-2}, "starts too high": {"start_lr": 1.0, "end_lr": 1e3},
                   "already trained": {}}


def least_squares_fit(seed: int = 0) -> tuple[Any, Any]:
    """The weights (3, 1) and bias (1,) that fit `tiny_regression_data(seed)` best: a model
    that has nothing left to learn (float32 numpy)."""
    import numpy as np

    x, y = tiny_regression_data(seed)
    solution = np.linalg.lstsq(np.hstack([x, np.ones((len(x), 1), np.float32)]), y, rcond=None)[0]
    return solution[:3].astype(np.float32), solution[3].astype(np.float32)


def range_fault_curves_with(lr_range_test: Callable[..., Any], tiny_regression: Callable[[int], tuple],
                            set_linear: Callable[[Any, Any, Any], None], seed: int = 0) -> dict[str, Any]:
    """The body of both halves' `range_fault_curves`: {letter: LRRangeResult}, each curve the range
    test of `RANGE_BASE` on `tiny_regression(seed)` with the mistake `RANGE_FAULT_CURVES[letter]`
    (`set_linear(model, weights, bias)` loads `least_squares_fit` for "already trained")."""
    curves = {}
    for letter, fault in RANGE_FAULT_CURVES.items():
        model, x, y = tiny_regression(seed)
        if fault == "already trained":
            set_linear(model, *least_squares_fit(seed))
        curves[letter] = lr_range_test(model, x, y, loss="mse", optimizer="sgd", batch_size=len(y), seed=seed,
                                       **{**RANGE_BASE, **_FAULT_SETTINGS[fault]})
    return curves


def range_fault_table(curves: dict[str, Any]) -> str:
    """One line per curve of `range_fault_curves`: its LR span, points, first and lowest smoothed
    loss and where the test stopped."""
    lines = []
    for letter, r in curves.items():
        low = min(range(len(r.losses)), key=lambda i: r.losses[i])
        stop = f"stopped at lr {r.diverged_at:.3g}" if r.diverged_at is not None else "never stopped"
        lines.append(f"{letter}: lr {r.lrs[0]:.3g} to {r.lrs[-1]:.3g}, {len(r.lrs):3d} points, smoothed loss "
                     f"{r.losses[0]:.3g} at first, lowest {r.losses[low]:.3g} at lr {r.lrs[low]:.3g}, {stop}")
    return "\n".join(lines)
