"""Framework-neutral parts of the training helpers: option names and checks, the progress bar.

`coursekit.torch.train` and `coursekit.keras.train` share these, so both accept and reject the
same options with the same words.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

OPTIMIZERS = ("adam", "sgd", "adamw", "rmsprop")
LOSSES = ("cross_entropy", "mse", "bce")
METRICS = ("accuracy",)


def check_metrics(metrics: Any) -> tuple[str, ...]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    if metrics is None:
        return ()
    metrics = tuple(metrics)
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise ValueError(
            f"metrics must be a subset of {METRICS}; received {metrics!r}. Loss is always recorded; "
            "pass metrics=() for loss only."
        )
    return metrics


def describe(data: Any) -> str:
    if isinstance(data, (list, tuple)):
        return f"a {type(data).__name__} of length {len(data)}"
    shape = getattr(data, "shape", None)
    return f"a {type(data).__name__}" + (f" of shape {tuple(shape)}" if shape is not None else "")


def positive_int(value: Any, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int; received {value!r}.")
    return int(value)


def progress(epochs: int, progress: bool):
    # On stdout (nbgrader fails a cell that writes to stderr); off while nbgrader executes.
    from .progress import bar

    return bar(epochs, "fit", "epoch", progress=progress)


def short(v: float) -> str:
    return "nan" if math.isnan(v) else f"{v:.4g}"
