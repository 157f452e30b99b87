"""The small multi-branch CNNs the lessons train (Keras). Twin of coursekit.torch.models."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ._tf import keras
from ..models import check_two_branch_options
from .fusion import (
    _NORM_MAP,
    AddFusion,
    AttentionGateFusion,
    ConcatFusion,
    SEFusion,
    WeightedSumFusion,
)

layers = keras.layers

__all__ = ["TwoBranchNet", "count_params", "two_branch_net"]


def _fusion_layer(fusion: str, width: int, norm: str | None, groups: int):
    if fusion == "concat":
        return ConcatFusion([width, width], norm=norm, groups=groups, name="fusion")
    if fusion == "concat_1x1":
        return ConcatFusion([width, width], norm=norm, out_channels=width, groups=groups, name="fusion")
    if fusion == "add":
        return AddFusion(2, name="fusion")
    if fusion == "weighted":
        return WeightedSumFusion(2, channels=width, mode="softmax", name="fusion")
    if fusion == "se":
        return SEFusion([width, width], reduction=4, name="fusion")
    return AttentionGateFusion(width, num_branches=2, name="fusion")


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
) -> keras.Model:
    """Two conv branches -> fusion -> conv head -> global average pool -> dense classifier.

    The same layers, in the same order, as `coursekit.torch.TwoBranchNet`; takes NHWC inputs
    `[x_a, x_b]` of any spatial size and returns logits.
    """
    acts = check_two_branch_options(fusion, activations, norm, branch_norm)
    x_a = keras.Input((None, None, in_channels[0]), name="x_a")
    x_b = keras.Input((None, None, in_channels[1]), name="x_b")
    branches = []
    for tag, inp, act in (("a", x_a, acts[0]), ("b", x_b, acts[1])):
        h = layers.Conv2D(width, 3, padding="same", activation=act, name=f"branch_{tag}_conv")(inp)
        if branch_norm is not None:
            norm_layer = _NORM_MAP[branch_norm](width, groups, None)
            norm_layer.name = f"branch_{tag}_norm"
            h = norm_layer(h)
        branches.append(h)
    h = _fusion_layer(fusion, width, norm, groups)(branches)
    h = layers.Conv2D(head_width, 3, padding="same", activation="relu", name="head_conv")(h)
    h = layers.GlobalAveragePooling2D(name="head_pool")(h)
    out = layers.Dense(n_classes, name="head_dense")(h)
    return keras.Model([x_a, x_b], out, name=f"two_branch_{fusion}")


# The torch half has a class of this name; in Keras the functional model is the class.
TwoBranchNet = two_branch_net


def count_params(model) -> int:
    """Trainable parameters (BatchNorm's running statistics excluded, as in the twin)."""
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))
