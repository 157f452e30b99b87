"""The capstone's broken pipeline (lesson 08), PyTorch half. Twin of coursekit.keras.capstone.

"My network always predicts the same class": a two-branch network and its data, broken in four
of the ways the course teaches, so the lesson can diagnose them with coursekit's tools and fix
them one at a time.

- the data: branch B arrives raw, ``RAW_SCALE`` times branch A's scale and shifted by
  ``RAW_SHIFT`` (`capstone_data`);
- the fusion: `GatedConcat` concatenates the branch maps without normalizing them and keeps its
  per-branch gate in a plain tensor, so the optimizer never sees it;
- the initialization: every weight drawn from N(0, ``BROKEN_INIT_STD``), "small random weights";
- the learning rate: SGD (momentum 0.9) at ``BROKEN_LR``.

`broken_setup` hands out all four; `build_pipeline(fixes=...)` builds the pipeline with any
subset of the fixes applied and `run_pipeline` also trains it (the reference fixes live here,
privately, so the lesson's experiments never depend on the student's answers);
`train_and_report` trains a given model and reports its accuracy and whether it collapsed.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..capstone import (  # noqa: F401  (re-exported: the lesson uses them through this module)
    BROKEN_INIT_STD,
    BROKEN_LR,
    FIXED_LR,
    FIXES,
    OPTIMIZER,
    OUTCOMES,
    RAW_SCALE,
    RAW_SHIFT,
    CapstoneRun,
    Pipeline,
    RunList,
    build_pipeline_with,
    pick_lr,
    run_pipeline_with,
    train_and_report_with,
)
from ..capstone import capstone_data as _capstone_data
from ..data import TwoBranchData
from ..memo import memoized
from .backend import BACKEND


__all__ = [
    "BROKEN_INIT_STD",
    "BROKEN_LR",
    "FIXED_LR",
    "FIXES",
    "OUTCOMES",
    "RAW_SCALE",
    "RAW_SHIFT",
    "Pipeline",
    "CapstoneNet",
    "CapstoneRun",
    "GatedConcat",
    "RunList",
    "broken_setup",
    "build_pipeline",
    "capstone_data",
    "capstone_net",
    "pick_lr",
    "run_pipeline",
    "train_and_report",
]

# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def capstone_data(n: int = 1024, seed: int = 0) -> tuple[TwoBranchData, TwoBranchData]:
    """The capstone's raw data, NCHW: see `coursekit.capstone.capstone_data`."""
    return _capstone_data("NCHW", n=n, seed=seed)


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


class GatedConcat(nn.Module):
    """The BROKEN fusion: ``cat([gate[0] * a, gate[1] * b])`` along channels, no normalization.

    The gate is meant to learn how much of each branch to pass on, but it is a plain tensor
    attribute (``torch.ones(2, requires_grad=True)``), not an ``nn.Parameter``: the module does
    not register it, so ``model.parameters()`` and the optimizer never see it and it stays at 1.
    And the two maps are joined as they come, whatever their scales.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = int(width)
        self.gate = torch.ones(2, requires_grad=True)  # the bug: not an nn.Parameter

    def forward(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        a, b = maps
        return torch.cat([self.gate[0] * a, self.gate[1] * b], dim=1)


class _GatedNormConcat(nn.Module):
    """Reference fusion fix: BatchNorm over the concatenation (no affine), then a registered
    per-branch gate (init 1) on each half."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = int(width)
        self.norm = nn.BatchNorm2d(2 * self.width, affine=False)
        self.gate = nn.Parameter(torch.ones(2))

    def forward(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        x = self.norm(torch.cat(list(maps), dim=1))
        w = self.width
        return torch.cat([self.gate[0] * x[:, :w], self.gate[1] * x[:, w:]], dim=1)


class CapstoneNet(nn.Module):
    """Two conv branches -> `fusion` -> conv head -> global average pool -> linear classifier.

    ``branch_a`` / ``branch_b``: Conv2d(1, width, 3, padding=1) + ReLU each; ``fusion``: any module
    taking ``[a, b]`` and returning ``2 * width`` channels (default: the broken `GatedConcat`);
    ``head``: Conv2d(2 * width, head_width, 3, padding=1), ReLU, global average pool, Linear.
    `forward(x_a, x_b)` takes NCHW tensors and returns logits.
    """

    def __init__(self, fusion: nn.Module | None = None, width: int = 8, n_classes: int = 4,
                 head_width: int = 16) -> None:
        super().__init__()
        self.branch_a = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU())
        self.branch_b = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU())
        self.fusion = GatedConcat(width) if fusion is None else fusion
        self.head = nn.Sequential(
            nn.Conv2d(2 * width, head_width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
            nn.Flatten(), nn.Linear(head_width, n_classes),
        )

    def forward(self, x_a: torch.Tensor, x_b: torch.Tensor) -> torch.Tensor:
        return self.head(self.fusion([self.branch_a(x_a), self.branch_b(x_b)]))


def capstone_net(fusion: nn.Module | None = None, width: int = 8, n_classes: int = 4) -> CapstoneNet:
    """Build a `CapstoneNet` with `fusion` (None: the broken `GatedConcat`); torch's default init."""
    if fusion is not None and not isinstance(fusion, nn.Module):
        raise TypeError(
            f"fusion must be an nn.Module taking [a, b] (two NCHW maps of {width} channels) and returning "
            f"{2 * width} channels; received a {type(fusion).__name__}. Did you pass the factory instead "
            "of calling it, e.g. make_fusion instead of make_fusion(8)?"
        )
    return CapstoneNet(fusion=fusion, width=width, n_classes=n_classes)


# --------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------


def fixed_fusion():
    """The reference fusion fix as a new layer (what build_pipeline's 'fusion' fix puts in)."""
    return _GatedNormConcat(8)


def _lesson_api():
    """What the neutral pipeline bodies (coursekit.capstone) call: the backend and this lesson's builders."""
    return BACKEND.extended(build_pipeline=build_pipeline, capstone_data=capstone_data, capstone_net=capstone_net,
                            fixed_fusion=fixed_fusion, train_and_report=train_and_report)


def train_and_report(model: nn.Module, train: TwoBranchData, test: TwoBranchData, *, lr: float,
                     optimizer: str = OPTIMIZER, epochs: int | None = None, batch_size: int = 64,
                     seed: int = 0, label: str = "run", progress: bool = False) -> CapstoneRun:
    """Train `model` on `train` with coursekit's `fit` (`optimizer`, `lr`; epochs from `run_size`
    unless given), then report test accuracy and `is_collapsed` on the test inputs. `progress`
    shows fit's bar over the epochs."""
    return train_and_report_with(_lesson_api(), model, train, test, lr=lr, optimizer=optimizer, epochs=epochs,
                                 batch_size=batch_size, seed=seed, label=label, progress=progress)


def build_pipeline(fixes: Sequence[str] = (), *, seed: int = 0, n: int | None = None, lr: float | None = None,
                   init: str | dict | Any = None, optimizer: str = OPTIMIZER) -> Pipeline:
    """The capstone pipeline with the fixes in `fixes` applied and the other bugs left in, untrained.

    fixes: any of ``FIXES`` = 'input' (standardize each branch with its training mean and std),
    'fusion' (BatchNorm over the concatenation, then a registered gate), 'init' (He normal,
    fan_in, biases 0), 'lr' (``FIXED_LR`` instead of ``BROKEN_LR``). `lr` and `init` override
    those two choices; `init` is a scheme name, an ``init_model`` keyword dict, 'default'
    (torch's own init) or a function that initializes the model in place. `n` samples (default:
    the run size's), split 75/25; `seed` seeds the model.
    """
    return build_pipeline_with(_lesson_api(), fixes, seed=seed, n=n, lr=lr, init=init, optimizer=optimizer)


def broken_setup(n: int | None = None, seed: int = 0) -> Pipeline:
    """The broken pipeline: raw data (`capstone_data`), a `CapstoneNet` with the broken fusion and
    every weight drawn from N(0, ``BROKEN_INIT_STD``) (biases 0), and SGD at ``BROKEN_LR``."""
    return build_pipeline((), seed=seed, n=n)


@memoized
def run_pipeline(fixes: Sequence[str] = (), *, seed: int = 0, n: int | None = None, epochs: int | None = None,
                 lr: float | None = None, init: str | dict | Any = None, optimizer: str = OPTIMIZER,
                 label: str | None = None, progress: bool = False) -> CapstoneRun:
    """`build_pipeline(fixes, ...)` and train it with `train_and_report`; the label defaults to the
    fixes applied ('broken' for none). `progress` shows fit's bar over the epochs."""
    return run_pipeline_with(_lesson_api(), fixes, seed=seed, n=n, epochs=epochs, lr=lr, init=init, optimizer=optimizer,
                             label=label, progress=progress)
