"""Fusing several CNN feature maps into one, in PyTorch.

Twin of `coursekit.keras.fusion`: same names, same signatures, same errors. Every fusion layer
takes a LIST of maps, one per branch, and checks it before touching a tensor: the branch count
the layer was built for, rank 4, the channels of each branch and matching H and W. The default
layout is NCHW (PyTorch's); pass ``data_format="NHWC"`` for channels-last tensors.
This module must never import TensorFlow or Keras.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from coursekit import shapes as _shapes

from .align import _ADD_BATCH, _as_tensor, _layout, nchw_to_nhwc, nhwc_to_nchw

__all__ = [
    "ConcatFusion",
    "AddFusion",
    "WeightedSumFusion",
    "SqueezeExcitation",
    "SEFusion",
    "AttentionGateFusion",
]

# BatchNorm settings shared with the Keras twin. PyTorch's momentum weighs the NEW batch
# (running = 0.9 * running + 0.1 * batch); Keras' weighs the OLD average, so torch 0.1 is
# keras 0.9. Keras' default epsilon is 1e-3, torch's 1e-5: both halves use 1e-5.
BN_EPS = 1e-5
BN_MOMENTUM = 0.1
GN_EPS = 1e-5

# timm-style name -> factory. 'layer' is GroupNorm with one group: it normalizes each sample
# over (C, H, W) with a per-channel affine, which Keras' GroupNormalization(groups=1) matches
# exactly (nn.LayerNorm over (C, H, W) would learn a per-pixel affine instead).
_NORM_MAP = {
    "batch": lambda c, groups: nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM),
    "layer": lambda c, groups: nn.GroupNorm(1, c, eps=GN_EPS),
    "group": lambda c, groups: nn.GroupNorm(groups, c, eps=GN_EPS),
}


from coursekit.branches import (  # shared with the twin, so both raise the same errors
    _WEIGHT_MODES,
    _SE_MODES,
    _branch_channels,
    _branch_count,
    _choice,
    _norm_name,
    _check_groups,
    _as_list,
    _check_branches,
)

# --- Helpers -----------------------------------------------------------------------------------

def _to_nchw(x: torch.Tensor, fmt: str) -> torch.Tensor:
    # nn.Conv2d and the norms only take NCHW, so channels-last maps take a detour.
    return x if fmt == "NCHW" else nhwc_to_nchw(x)


def _from_nchw(x: torch.Tensor, fmt: str) -> torch.Tensor:
    return x if fmt == "NCHW" else nchw_to_nhwc(x)


def _channel_view(w: torch.Tensor, fmt: str) -> torch.Tensor:
    """A per-channel vector shaped to broadcast over a rank-4 map in `fmt`."""
    return w.view(1, -1, 1, 1) if fmt == "NCHW" else w.view(1, 1, 1, -1)


def _sum(terms: list[torch.Tensor]) -> torch.Tensor:
    # Left to right, the same order as the Keras twin, so float32 results agree bit for bit
    # wherever the kernels do.
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


# --- Layers --------------------------------------------------------------------------------------

class ConcatFusion(nn.Module):
    """Concatenate branches along channels, then optionally normalize and project.

    `in_channels` lists each branch's channels (two or more). `norm` acts on the concatenated
    channels: 'batch' (BatchNorm2d, eps=1e-5, momentum=0.1), 'layer' (GroupNorm with 1 group:
    per-sample statistics over C, H, W with a per-channel affine), 'group'
    (GroupNorm(`groups`, C)) or None. `out_channels` adds a 1x1 conv (``.proj``) to that many
    channels; None keeps ``sum(in_channels)``. The norm is ``.norm`` (None when absent).
    """

    def __init__(
        self, in_channels: Sequence[int], norm: str | None = None, out_channels: int | None = None,
        groups: int = 8, data_format: str | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.in_channels = _branch_channels(in_channels, name)
        self.norm_name = _norm_name(norm, name)
        self.groups = _shapes.positive_int(groups, "groups")
        self.data_format = _layout(data_format)
        total = sum(self.in_channels)
        _check_groups(self.groups, total, self.norm_name, name)
        self.out_channels = (
            total if out_channels is None else _shapes.positive_int(out_channels, "out_channels")
        )
        self.norm = None if self.norm_name is None else _NORM_MAP[self.norm_name](total, self.groups)
        self.proj = None if out_channels is None else nn.Conv2d(total, self.out_channels, 1)

    def forward(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        where = f"ConcatFusion(in_channels={list(self.in_channels)})"
        maps = [_as_tensor(m) for m in _as_list(maps, where)]
        _check_branches([m.shape for m in maps], self.data_format, where, len(self.in_channels),
                        self.in_channels, _ADD_BATCH)
        fmt = self.data_format
        x = torch.cat(maps, dim=fmt.index("C"))
        if self.norm is None and self.proj is None:
            return x
        x = _to_nchw(x, fmt)
        if self.norm is not None:
            x = self.norm(x)
        if self.proj is not None:
            x = self.proj(x)
        return _from_nchw(x, fmt)

    def extra_repr(self) -> str:
        return (
            f"in_channels={list(self.in_channels)}, norm={self.norm_name!r}, "
            f"data_format={self.data_format!r}"
        )


class AddFusion(nn.Module):
    """Element-wise sum of `num_branches` maps of identical shape (no parameters).

    `data_format` only affects which axis the errors call C, H and W.
    """

    def __init__(self, num_branches: int, data_format: str | None = None) -> None:
        super().__init__()
        self.num_branches = _branch_count(num_branches, type(self).__name__)
        self.data_format = _layout(data_format)

    def forward(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        where = f"AddFusion(num_branches={self.num_branches})"
        maps = [_as_tensor(m) for m in _as_list(maps, where)]
        _check_branches([m.shape for m in maps], self.data_format, where, self.num_branches,
                        None, _ADD_BATCH)
        return _sum(maps)

    def extra_repr(self) -> str:
        return f"num_branches={self.num_branches}, data_format={self.data_format!r}"


class WeightedSumFusion(nn.Module):
    """Sum of branches, each scaled by a learned weight.

    `mode`: 'scalar' - one free scalar per branch (init 1.0, so it starts as AddFusion);
    'softmax' - one logit per branch (init 0), weights = softmax over branches, so they stay
    positive and sum to 1 (init: the plain average); 'channel' - one weight per branch and
    channel (needs `channels`, init 1/num_branches). The weights are the registered parameter
    ``.weight``, shaped (num_branches,) or (num_branches, channels), so ``model.parameters()``
    hands them to the optimizer: an ``nn.Parameter`` created outside the module never trains.
    """

    def __init__(
        self, num_branches: int, channels: int | None = None, mode: str = "softmax",
        data_format: str | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.num_branches = _branch_count(num_branches, name)
        self.mode = _choice(mode, _WEIGHT_MODES, "mode", name)
        self.channels = None if channels is None else _shapes.positive_int(channels, "channels")
        self.data_format = _layout(data_format)
        n = self.num_branches
        if self.mode == "channel":
            if self.channels is None:
                raise ValueError(
                    f"{name}: mode='channel' learns one weight per branch and channel, so it "
                    "needs channels=C; received channels=None. Fix: pass channels=<channels of "
                    "each branch>, or use mode='scalar' or 'softmax'."
                )
            init = torch.full((n, self.channels), 1.0 / n)
        else:
            init = torch.full((n,), 1.0 if self.mode == "scalar" else 0.0)
        self.weight = nn.Parameter(init)

    def effective_weights(self) -> torch.Tensor:
        """The multipliers actually applied: softmax of the logits in 'softmax' mode."""
        return torch.softmax(self.weight, dim=0) if self.mode == "softmax" else self.weight

    def branch_weights(self) -> np.ndarray:
        """The effective per-branch weights as a numpy array, for plots:
        (num_branches,) or, in 'channel' mode, (num_branches, channels)."""
        return self.effective_weights().detach().cpu().numpy()

    def forward(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        where = f"WeightedSumFusion(num_branches={self.num_branches}, mode={self.mode!r})"
        maps = [_as_tensor(m) for m in _as_list(maps, where)]
        expected = None if self.channels is None else (self.channels,) * self.num_branches
        _check_branches([m.shape for m in maps], self.data_format, where, self.num_branches,
                        expected, _ADD_BATCH)
        w = self.effective_weights()
        if self.mode == "channel":
            return _sum([_channel_view(w[i], self.data_format) * m for i, m in enumerate(maps)])
        return _sum([w[i] * m for i, m in enumerate(maps)])

    def extra_repr(self) -> str:
        return f"num_branches={self.num_branches}, mode={self.mode!r}, channels={self.channels}"


class SqueezeExcitation(nn.Module):
    """Squeeze-and-Excitation (Hu et al., 2018, https://arxiv.org/abs/1709.01507).

    Squeeze: global average pooling gives z (eq. 2). Excitation: s = sigmoid(W2 relu(W1 z))
    (eq. 3), where W1 (``.fc1``) maps `channels` to `squeeze_channels` and W2 (``.fc2``) maps
    back; both are 1x1 convs with bias. Output: x scaled channel-wise by s (eq. 4).
    `squeeze_channels` defaults to ``max(1, channels // reduction)`` (the paper's r = 16).
    The parameter names equal ``torchvision.ops.SqueezeExcitation``'s, so its state_dict loads.
    Takes ONE map; to gate several branches use `SEFusion`.
    """

    def __init__(
        self, channels: int, reduction: int = 16, squeeze_channels: int | None = None,
        data_format: str | None = None,
    ) -> None:
        super().__init__()
        self.channels = _shapes.positive_int(channels, "channels")
        self.reduction = _shapes.positive_int(reduction, "reduction")
        self.squeeze_channels = (
            max(1, self.channels // self.reduction) if squeeze_channels is None
            else _shapes.positive_int(squeeze_channels, "squeeze_channels")
        )
        self.data_format = _layout(data_format)
        self.fc1 = nn.Conv2d(self.channels, self.squeeze_channels, 1)
        self.fc2 = nn.Conv2d(self.squeeze_channels, self.channels, 1)

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """The excitation s, shaped (N, C, 1, 1) (or (N, 1, 1, C) for NHWC)."""
        y = _to_nchw(x, self.data_format)
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(y, 1)))))
        return _from_nchw(s, self.data_format)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        where = f"SqueezeExcitation(channels={self.channels})"
        if isinstance(x, (list, tuple)):
            raise TypeError(
                f"{where} gates one feature map; received a {type(x).__name__} of "
                f"{len(x)}. Fix: call it on each map, or fuse several branches with SEFusion."
            )
        x = _as_tensor(x)
        _shapes.require_rank4(x.shape, self.data_format, where, _ADD_BATCH)
        _shapes.check_channels(tuple(x.shape), self.channels, self.data_format, where)
        return x * self.scale(x)

    def extra_repr(self) -> str:
        return f"squeeze_channels={self.squeeze_channels}, data_format={self.data_format!r}"


class SEFusion(nn.Module):
    """Fuse branches by concatenation with Squeeze-and-Excitation channel gating.

    `mode`: 'concat' - concatenate, then one `SqueezeExcitation` (``.se``) over all
    ``sum(in_channels)`` channels, so a branch's gates can depend on the other branches;
    'branch' - a separate gate per branch (``.gates``), then concatenate. `reduction` is the
    SE ratio r of each gate.
    """

    def __init__(
        self, in_channels: Sequence[int], reduction: int = 16, mode: str = "concat",
        data_format: str | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.in_channels = _branch_channels(in_channels, name)
        self.reduction = _shapes.positive_int(reduction, "reduction")
        self.mode = _choice(mode, _SE_MODES, "mode", name)
        self.data_format = _layout(data_format)
        fmt = self.data_format
        if self.mode == "concat":
            self.se = SqueezeExcitation(sum(self.in_channels), self.reduction, data_format=fmt)
            self.gates = None
        else:
            self.se = None
            self.gates = nn.ModuleList(
                SqueezeExcitation(c, self.reduction, data_format=fmt) for c in self.in_channels
            )

    def forward(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        where = f"SEFusion(in_channels={list(self.in_channels)}, mode={self.mode!r})"
        maps = [_as_tensor(m) for m in _as_list(maps, where)]
        _check_branches([m.shape for m in maps], self.data_format, where, len(self.in_channels),
                        self.in_channels, _ADD_BATCH)
        c_axis = self.data_format.index("C")
        if self.se is not None:
            return self.se(torch.cat(maps, dim=c_axis))
        return torch.cat([gate(m) for gate, m in zip(self.gates, maps)], dim=c_axis)

    def extra_repr(self) -> str:
        return f"in_channels={list(self.in_channels)}, mode={self.mode!r}"


class AttentionGateFusion(nn.Module):
    """Weigh branches by their content, pixel by pixel.

    A small head shared by all branches (1x1 conv `in_channels` -> `hidden` (``.hidden_conv``),
    ReLU, 1x1 conv `hidden` -> 1 (``.score_conv``)) scores each branch at each pixel; a softmax
    across branches turns the scores into weights a_i, and the output is sum_i a_i * x_i.
    Every branch must have `in_channels` channels. `hidden` defaults to
    ``max(8, in_channels // 4)``.
    """

    def __init__(
        self, in_channels: int, num_branches: int = 2, hidden: int | None = None,
        data_format: str | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = _shapes.positive_int(in_channels, "in_channels")
        self.num_branches = _branch_count(num_branches, type(self).__name__)
        self.hidden = (
            max(8, self.in_channels // 4) if hidden is None else _shapes.positive_int(hidden, "hidden")
        )
        self.data_format = _layout(data_format)
        self.hidden_conv = nn.Conv2d(self.in_channels, self.hidden, 1)
        self.score_conv = nn.Conv2d(self.hidden, 1, 1)

    def _checked(self, maps) -> list[torch.Tensor]:
        where = f"AttentionGateFusion(in_channels={self.in_channels}, num_branches={self.num_branches})"
        maps = [_as_tensor(m) for m in _as_list(maps, where)]
        _check_branches([m.shape for m in maps], self.data_format, where, self.num_branches,
                        (self.in_channels,) * self.num_branches, _ADD_BATCH)
        return maps

    def _weights(self, maps: list[torch.Tensor]) -> torch.Tensor:
        # (N, branches, H, W): one score map per branch, softmax across branches per pixel.
        scores = [self.score_conv(F.relu(self.hidden_conv(_to_nchw(m, self.data_format)))) for m in maps]
        return torch.softmax(torch.cat(scores, dim=1), dim=1)

    def attention(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        """The per-pixel branch weights, for plots: (N, branches, H, W) for NCHW, with the branch
        axis where the channel axis is, so (N, H, W, branches) for NHWC. They sum to 1 over
        branches."""
        return _from_nchw(self._weights(self._checked(maps)), self.data_format)

    def forward(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        maps = self._checked(maps)
        a = self._weights(maps)
        return _sum([_from_nchw(a[:, i:i + 1], self.data_format) * m for i, m in enumerate(maps)])

    def extra_repr(self) -> str:
        return f"num_branches={self.num_branches}, data_format={self.data_format!r}"
