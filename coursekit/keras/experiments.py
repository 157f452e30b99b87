"""The lessons' experiments in Keras: train a two-branch net and measure what fusion did.
Twin of coursekit.torch.experiments; notebooks show these runs and tests assert their gaps."""

from __future__ import annotations

from ..data import TwoBranchData
from ..experiments import BranchCurve, FusionRun, branch_a_curve_with, run_two_branch_with
from ..memo import memoized
from .backend import BACKEND

__all__ = ["branch_a_curve", "run_two_branch"]



@memoized
def run_two_branch(
    data: TwoBranchData | None = None,
    *,
    label: str | None = None,
    scale: float = 1.0,
    distribution: str = "normal",
    n: int = 1024,
    n_classes: int = 4,
    fusion: str = "concat",
    norm: str | None = None,
    branch_norm: str | None = None,
    activations: str | tuple[str, str] = "relu",
    width: int = 8,
    init: str | None = None,
    init_options: dict | None = None,
    optimizer: str = "adam",
    lr: float = 1e-3,
    epochs: int = 8,
    batch_size: int = 64,
    seed: int = 0,
    report: bool = True,
    progress: bool = False,
) -> FusionRun:
    """Train `two_branch_net` on two-branch data (NHWC; made from `scale`/`distribution` unless
    `data` is given), 75/25 split, and return a `FusionRun` with test metrics per carrier branch
    and, with `report`, the branch report of the trained model on the test set."""
    options = dict(locals())
    return run_two_branch_with(BACKEND, "NHWC", **options)


@memoized
def branch_a_curve(*, scale: float = 100.0, fusion: str = "concat", norm: str | None = None,
                   branch_norm: str | None = None, label: str = "", n: int = 1024, epochs: int = 8,
                   batch_size: int = 64, lr: float = 1e-3, seed: int = 0) -> BranchCurve:
    """Train `run_two_branch`'s net (`fusion`, Adam at `lr`; `norm` on the fusion or `branch_norm`
    per branch, as in `run_two_branch`) on data with branch B at `scale` and record its
    test accuracy on branch A's half after every epoch: a `BranchCurve`, whose ``steps_to(0.9)`` is
    how many steps the drowned branch takes to be learned. `label` names the curve in figures."""
    return branch_a_curve_with(BACKEND, "NHWC", scale=scale, fusion=fusion, norm=norm,
                               branch_norm=branch_norm, label=label, n=n, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
