"""How much training a lesson does: a quick run for laptops and autograding, a full one on GPU.

Notebooks call `run_size(gpu=...)` once and use its `epochs`, `n_train` and `batch_size`, so
one switch (the `COURSEKIT_RUN_SIZE` environment variable) resizes the whole course.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["ENV_VAR", "FULL", "NBGRADER_ENV_VAR", "RUN_SIZES", "SMALL", "RunSize", "run_size"]

ENV_VAR = "COURSEKIT_RUN_SIZE"
# nbgrader sets this ('autograde' or 'validate') while it executes notebooks.
NBGRADER_ENV_VAR = "NBGRADER_EXECUTION"


@dataclass(frozen=True)
class RunSize:
    """A named training budget: `epochs`, number of training samples, and batch size."""

    name: str
    epochs: int
    n_train: int
    batch_size: int

    def __post_init__(self) -> None:
        for attr in ("epochs", "n_train", "batch_size"):
            value = getattr(self, attr)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"RunSize.{attr} must be a positive int; received {value!r}.")

    def describe(self) -> str:
        """Short text for the start-up line, e.g. 'small: 8 epochs, 1024 samples (set ...)'."""
        if os.environ.get(ENV_VAR):
            how = f" (from {ENV_VAR})"
        else:
            how = f" (set {ENV_VAR}=small|full to change)"
        return f"{self.name}: {self.epochs} epochs, {self.n_train} samples{how}"


# SMALL: one two-branch run takes well under a second (PyTorch) or two (Keras) on a laptop CPU,
# so a lesson can compare several runs inside its 60 s budget and nbgrader's cell timeout.
SMALL = RunSize(name="small", epochs=8, n_train=1024, batch_size=64)
# FULL: three times the epochs and four times the data; slicing digits with it keeps them all.
FULL = RunSize(name="full", epochs=24, n_train=4096, batch_size=64)
RUN_SIZES = {SMALL.name: SMALL, FULL.name: FULL}


def run_size(gpu: bool | None = None) -> RunSize:
    """The run size to use now.

    Precedence: `COURSEKIT_RUN_SIZE` ('small' or 'full', case-insensitive; empty counts as
    unset) wins; otherwise SMALL while nbgrader executes the notebook (`NBGRADER_EXECUTION`
    set); otherwise FULL if `gpu` is true, and SMALL if it is false or None (unknown).
    """
    raw = os.environ.get(ENV_VAR, "")
    choice = raw.strip().lower()
    if choice:
        if choice not in RUN_SIZES:
            raise ValueError(
                f"environment variable {ENV_VAR} must be one of {sorted(RUN_SIZES)}; received "
                f"{raw!r}. Set it to 'small' or 'full', or unset it to choose automatically."
            )
        return RUN_SIZES[choice]
    if os.environ.get(NBGRADER_ENV_VAR):
        return SMALL
    return FULL if gpu else SMALL
