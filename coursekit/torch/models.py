"""The small multi-branch CNNs the lessons train (PyTorch). Twin of coursekit.keras.models."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..models import check_two_branch_options, fused_channels
from .fusion import (
    _NORM_MAP,
    AddFusion,
    AttentionGateFusion,
    ConcatFusion,
    SEFusion,
    WeightedSumFusion,
)

__all__ = ["TwoBranchNet", "count_params", "two_branch_net"]

_ACT = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "linear": nn.Identity}


def _fusion_layer(fusion: str, width: int, norm: str | None, groups: int) -> nn.Module:
    if fusion == "concat":
        return ConcatFusion([width, width], norm=norm, groups=groups)
    if fusion == "concat_1x1":
        return ConcatFusion([width, width], norm=norm, out_channels=width, groups=groups)
    if fusion == "add":
        return AddFusion(2)
    if fusion == "weighted":
        return WeightedSumFusion(2, channels=width, mode="softmax")
    if fusion == "se":
        return SEFusion([width, width], reduction=4)
    return AttentionGateFusion(width, num_branches=2)


class TwoBranchNet(nn.Module):
    """Two conv branches -> fusion -> conv head -> global average pool -> linear classifier.

    Each branch is Conv2d(in, width, 3, padding=1) and its activation, optionally followed by a
    per-branch norm (`branch_norm`); `fusion` joins them (see coursekit.models.FUSIONS), `norm`
    normalizes the concatenation. `forward(x_a, x_b)` takes NCHW tensors.
    """

    def __init__(
        self,
        n_classes: int = 4,
        in_channels: Sequence[int] = (1, 1),
        width: int = 8,
        activations: str | Sequence[str] = "relu",
        fusion: str = "concat",
        norm: str | None = None,
        branch_norm: str | None = None,
        head_width: int = 16,
        groups: int = 4,
    ) -> None:
        super().__init__()
        acts = check_two_branch_options(fusion, activations, norm, branch_norm)
        self.branch_a = nn.Sequential(nn.Conv2d(in_channels[0], width, 3, padding=1), _ACT[acts[0]]())
        self.branch_b = nn.Sequential(nn.Conv2d(in_channels[1], width, 3, padding=1), _ACT[acts[1]]())
        if branch_norm is not None:
            self.branch_a.append(_NORM_MAP[branch_norm](width, groups))
            self.branch_b.append(_NORM_MAP[branch_norm](width, groups))
        self.fusion = _fusion_layer(fusion, width, norm, groups)
        self.head = nn.Sequential(
            nn.Conv2d(fused_channels(fusion, width), head_width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(head_width, n_classes),
        )

    def forward(self, x_a: torch.Tensor, x_b: torch.Tensor) -> torch.Tensor:
        return self.head(self.fusion([self.branch_a(x_a), self.branch_b(x_b)]))


def two_branch_net(
    n_classes: int = 4,
    in_channels: Sequence[int] = (1, 1),
    width: int = 8,
    activations: str | Sequence[str] = "relu",
    fusion: str = "concat",
    norm: str | None = None,
    branch_norm: str | None = None,
    head_width: int = 16,
    groups: int = 4,
) -> TwoBranchNet:
    """Build a `TwoBranchNet` (the same options, in the same order, as the Keras twin's)."""
    return TwoBranchNet(n_classes=n_classes, in_channels=in_channels, width=width, activations=activations,
                        fusion=fusion, norm=norm, branch_norm=branch_norm, head_width=head_width, groups=groups)


def count_params(model) -> int:
    """Trainable parameters (BatchNorm's running statistics excluded, as in the twin)."""
    return sum(p.numel() for p in model.parameters())
