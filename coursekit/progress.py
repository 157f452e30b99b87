"""Progress bars for the lessons: one over the epochs of a fit, one over the runs of an experiment.

Framework-neutral (tqdm only, imported on first use). Every bar is a ``tqdm.auto`` bar: in a
Jupyter kernel an ipywidgets progress bar (its text/plain form is the usual text bar), elsewhere
a text bar on **stdout** — never stderr, because nbgrader gives 0 points to a test cell that
writes to stderr, and tqdm's own default is stderr.

Bars are for a person watching a cell, so they are off while nbgrader executes a notebook
(``NBGRADER_EXECUTION`` set): graded notebooks then carry no widget state and grading pays
nothing for them.

- `bar(total, desc, unit)`: a bar to ``update()`` by hand (``fit`` and the LR range test use it);
- `runs_bar(items, desc)`: iterate over `items`, one step per training run, e.g.
  ``RunTable(ck.run_two_branch(scale=s) for s in ck.runs_bar((1, 10, 100), "concat at 3 scales"))``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

from .runsize import NBGRADER_ENV_VAR

__all__ = ["bar", "enabled", "runs_bar"]


def enabled(progress: bool = True) -> bool:
    """Whether a bar asked for with `progress` is shown: not while nbgrader executes a notebook."""
    return bool(progress) and not os.environ.get(NBGRADER_ENV_VAR)


def bar(total: int | None, desc: str, unit: str = "it", *, progress: bool = True, leave: bool = True):
    """A ``tqdm.auto`` bar on stdout (a widget in Jupyter), disabled unless `enabled(progress)`."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stdout, disable=not enabled(progress), leave=leave)


def runs_bar(items: Iterable[Any], desc: str, *, total: int | None = None, progress: bool = True):
    """Iterate over `items` with one bar over the runs (``unit="run"``); `desc` names the experiment.

    `total` defaults to ``len(items)`` when `items` has a length. The bar stays after the loop,
    showing how many runs took how long.
    """
    if total is None and hasattr(items, "__len__"):
        total = len(items)
    from tqdm.auto import tqdm

    return tqdm(items, total=total, desc=desc, unit="run", file=sys.stdout, disable=not enabled(progress),
                leave=True)
