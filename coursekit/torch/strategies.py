"""Comparing fusion strategies (lesson 04), in PyTorch.

Twin of `coursekit.keras.strategies`: same names, same signatures. It adds what the fusion
layers in `coursekit.torch.fusion` do not cover: the article's complementary weight
``w * a + (1 - w) * b`` (registered, but unconstrained), a two-branch net around any fusion
module, a training run with such a net that records the fusion weights before and after, and
readers for what a trained SE or attention gate does per sample.
This module must never import TensorFlow or Keras.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from coursekit.branches import _as_list, _check_branches

from ..data import TwoBranchData
from ..experiments import (FusionRun, FusionWeighting, by_carrier, fusion_weighting_with, fusion_weights,
                           run_custom_fusion_with)
from .align import _ADD_BATCH, _as_tensor, _layout
from .fusion import AttentionGateFusion, SEFusion
from .backend import BACKEND
from .models import TwoBranchNet
from .models import two_branch_net


__all__ = [
    "ComplementWeightFusion",
    "attention_by_carrier",
    "fusion_weighting",
    "fusion_weights",
    "run_custom_fusion",
    "se_gates_by_carrier",
    "two_branch_net_with",
]


class ComplementWeightFusion(nn.Module):
    """``w * maps[0] + (1 - w) * maps[1]`` with one learned scalar ``w`` (``.weight``).

    The form of the article's ``weight_layer`` snippet, but registered, so it trains. Nothing
    keeps ``w`` in [0, 1]: outside it one branch gets a negative weight. `init` is the starting
    ``w`` (the article draws it with ``torch.rand(1)``).
    """

    def __init__(self, init: float = 0.5, data_format: str | None = None) -> None:
        super().__init__()
        self.data_format = _layout(data_format)
        self.weight = nn.Parameter(torch.tensor([float(init)]))

    def branch_weights(self) -> np.ndarray:
        """The two multipliers ``[w, 1 - w]`` as a numpy array."""
        w = float(self.weight.detach().cpu()[0])
        return np.array([w, 1.0 - w])

    def forward(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        where = "ComplementWeightFusion"
        maps = [_as_tensor(m) for m in _as_list(maps, where)]
        _check_branches([m.shape for m in maps], self.data_format, where, 2, None, _ADD_BATCH)
        return self.weight * maps[0] + (1 - self.weight) * maps[1]

    def extra_repr(self) -> str:
        return f"w={float(self.weight.detach()[0]):.4f}"


def two_branch_net_with(
    fusion: nn.Module, *, n_classes: int = 4, in_channels: Sequence[int] = (1, 1), width: int = 8,
    activations: str | Sequence[str] = "relu", branch_norm: str | None = None, head_width: int = 16,
    groups: int = 4,
) -> TwoBranchNet:
    """`two_branch_net` with the module `fusion` as its fusion layer (``.fusion``).

    `fusion` takes the list ``[branch_a, branch_b]`` of ``(N, width, H, W)`` maps and must
    return one ``(N, width, H, W)`` map, like ``AddFusion``. The other layers are created, in
    the same order, exactly as by ``two_branch_net(fusion='add', ...)``, so after the same seed
    they start from the same weights.
    """
    if not isinstance(fusion, nn.Module):
        raise TypeError(
            f"two_branch_net_with needs the fusion layer as an nn.Module; received a "
            f"{type(fusion).__name__}. Fix: pass an instance, e.g. ComplementWeightFusion(0.5)."
        )
    model = TwoBranchNet(n_classes=n_classes, in_channels=in_channels, width=width, activations=activations,
                         fusion="add", branch_norm=branch_norm, head_width=head_width, groups=groups)
    model.fusion = fusion
    return model


def run_custom_fusion(
    fusion: nn.Module | Callable[[], nn.Module],
    data: TwoBranchData | None = None,
    *,
    label: str = "custom",
    scale: float = 1.0,
    distribution: str = "normal",
    n: int = 1024,
    n_classes: int = 4,
    branch_norm: str | None = None,
    activations: str | tuple[str, str] = "relu",
    width: int = 8,
    optimizer: str = "adam",
    lr: float = 1e-3,
    epochs: int = 8,
    batch_size: int = 64,
    seed: int = 0,
    report: bool = False,
    progress: bool = False,
) -> FusionRun:
    """`run_two_branch` with a fusion layer of your own: the same data, split, seeding and
    training, on ``two_branch_net_with(layer)``.

    `fusion` is the layer, or a function of no arguments that makes it; a function is called
    after the run seeds everything, so a layer drawing its start (``torch.rand``) is seeded
    too. ``run.extra`` holds the ``model``, the ``fusion`` layer and, for a layer with
    ``branch_weights()``, its ``weights_before`` and ``weights_after`` training.
    """
    def build_around(make: Callable[[], nn.Module], options: dict) -> TwoBranchNet:
        model = TwoBranchNet(n_classes=options["n_classes"], width=options["width"],
                             activations=options["activations"], fusion="add",
                             branch_norm=options["branch_norm"])
        model.fusion = make()
        return model

    return run_custom_fusion_with(BACKEND, "NCHW", nn.Module, "torch.nn.Module", **locals())  # build_around and the arguments


# --- What a trained gate does ------------------------------------------------------------------

def _branches(model: TwoBranchNet, data: TwoBranchData) -> list[torch.Tensor]:
    if data.layout != "NCHW":
        raise ValueError(f"this reader needs NCHW data here; received layout {data.layout!r}.")
    device = next(model.parameters()).device
    xa = torch.as_tensor(data.x_a, device=device)
    xb = torch.as_tensor(data.x_b, device=device)
    return [model.branch_a(xa), model.branch_b(xb)]


def _fusion_of(model: Any, kind: type, what: str) -> nn.Module:
    layer = getattr(model, "fusion", None)
    if not isinstance(layer, kind):
        raise TypeError(
            f"{what} reads a model whose fusion is a {kind.__name__}; this one has "
            f"{type(layer).__name__}. Build it with fusion={'attention' if kind is AttentionGateFusion else 'se'!r}."
        )
    return layer


def attention_by_carrier(model: TwoBranchNet, data: TwoBranchData) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """What a trained attention gate (``fusion='attention'``) does on `data`.

    Returns ``(maps, means)``: `maps` are the per-pixel branch weights, numpy
    ``(N, branches, H, W)`` in both frameworks; `means` maps 'A-carried' / 'B-carried' to the
    mean weight of each branch over the samples whose label that branch carries.
    """
    layer = _fusion_of(model, AttentionGateFusion, "attention_by_carrier")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            maps = layer.attention(_branches(model, data)).cpu().numpy()
    finally:
        model.train(was_training)
    return maps, by_carrier(maps.mean(axis=(2, 3)), data.carrier)


def se_gates_by_carrier(model: TwoBranchNet, data: TwoBranchData) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """What a trained SE gate (``fusion='se'``) does on `data`.

    Returns ``(gates, means)``: `gates` is the excitation s per sample and channel, numpy
    ``(N, 2 * width)`` (branch A's channels first); `means` maps 'A-carried' / 'B-carried' to
    the mean gate of branch A's and of branch B's channels, ``[mean_A, mean_B]``.
    """
    layer = _fusion_of(model, SEFusion, "se_gates_by_carrier")
    if layer.se is None:
        raise ValueError("se_gates_by_carrier reads SEFusion(mode='concat'), the one two_branch_net builds.")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            maps = _branches(model, data)
            s = layer.se.scale(torch.cat(maps, dim=1)).cpu().numpy()[:, :, 0, 0]
    finally:
        model.train(was_training)
    c = layer.in_channels[0]
    per_sample = np.stack([s[:, :c].mean(axis=1), s[:, c:].mean(axis=1)], axis=1)
    return s, by_carrier(per_sample, data.carrier)


def fusion_weighting(fusion: str, seed: int = 0) -> FusionWeighting:
    """Who decides how much of each branch passes the fusion layer ``two_branch_net(fusion=fusion)``
    builds: "nothing", "fixed" or "input", measured (`coursekit.experiments.fusion_weighting_with`)."""

    def apply(layer: nn.Module, pair: list[np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            return layer([torch.from_numpy(m) for m in pair]).double().numpy()

    return fusion_weighting_with(fusion, "NCHW", build=lambda f: two_branch_net(n_classes=4, fusion=f).fusion.eval(),
                                 apply=apply, n_params=lambda layer: sum(p.numel() for p in layer.parameters()),
                                 seed=seed)
