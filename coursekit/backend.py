"""The explicit framework backend: what the framework-neutral bodies need from one framework.

Each framework has one `Backend`, `coursekit.torch.backend.BACKEND` and
`coursekit.keras.backend.BACKEND` (einops' `_backends.py` is the model). A neutral body such as
`coursekit.experiments.run_two_branch_with` receives it, never a framework module, so what it can
call is written down here and checked for both frameworks by tests/test_twins.py. Bodies that need
a lesson's own builders as well get them from `Backend.extended`, by name, at the call.
This module imports no framework.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from types import SimpleNamespace
from typing import Any, Callable

__all__ = ["Backend"]


@dataclass(frozen=True)
class Backend:
    """One framework's half of the course's shared experiments."""

    name: str  # "torch" or "keras"
    layout: str  # the framework's image layout: "NCHW" or "NHWC"
    two_branch_net: Callable[..., Any]  # the lessons' two-branch network
    init_model: Callable[..., Any]  # re-initialize a model with a named scheme
    fit: Callable[..., Any]  # coursekit's training loop, returning a History
    predict: Callable[..., Any]  # class scores of a model on inputs, as numpy
    evaluate: Callable[..., Any]  # loss and accuracy of a model on (x, y)
    branch_report: Callable[..., Any]  # scale, gradient and parameter-gradient shares per branch
    count_params: Callable[..., int]  # trainable parameters
    is_collapsed: Callable[..., Any]  # whether a model's output is constant
    run_size: Callable[..., Any]  # the run size this machine picks

    def extended(self, **extra: Callable[..., Any]) -> SimpleNamespace:
        """This backend's callables plus (or, for a name it has, instead of) `extra`: what one
        neutral body calls, e.g. ``BACKEND.extended(small_cnn=small_cnn)``."""
        return SimpleNamespace(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **extra})
