"""Shared by the "lost, or only late?" / "slower, or stuck?" claims tests of lessons 02-04
(tests/test_claims_0N_budget.py): the framework of a case, the order of two step counts, and the
check that each curve lands in the range the lesson's prose states at this run size."""

from __future__ import annotations

import pytest


def ck_of(fw: str):
    """coursekit's half for `fw` ('torch' or 'keras')."""
    if fw == "torch":
        from coursekit import torch as ck
    else:
        pytest.importorskip("keras")
        from coursekit import keras as ck
    return ck


def later(a: int | None, b: int | None) -> bool:
    """a (steps, or None: not within the run) comes strictly after b."""
    return b is not None and (a is None or a > b)


def check_stated(curves: dict, stated: dict, threshold: float = 0.9) -> None:
    """Each curve's steps to `threshold` lies in its stated (low, high) range; None states "not within
    the run"."""
    for key, c in curves.items():
        got = c.steps_to(threshold)
        if stated[key] is None:
            assert got is None, c.describe(threshold)
        else:
            low, high = stated[key]
            assert got is not None and low <= got <= high, c.describe(threshold)
