"""The torch backend: what coursekit's framework-neutral bodies call (`coursekit.backend.Backend`)."""

from __future__ import annotations

from ..backend import Backend
from .device import run_size
from .diagnostics import branch_report, is_collapsed
from .init import init_model
from .models import count_params, two_branch_net
from .train import evaluate, fit, predict

__all__ = ["BACKEND"]

BACKEND = Backend(name="torch", layout="NCHW", two_branch_net=two_branch_net, init_model=init_model, fit=fit,
                  predict=predict, evaluate=evaluate, branch_report=branch_report, count_params=count_params,
                  is_collapsed=is_collapsed, run_size=run_size)
