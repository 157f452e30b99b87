"""Fusion as real architectures do it, in PyTorch: Inception, DenseNet, FPN, FiLM, gating.

Twin of `coursekit.keras.blocks` (same class names, constructor arguments and attribute
names, so weights copy across and the twins compute the same numbers). Maps are NCHW.
This module must never import TensorFlow or Keras.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .align import align_spatial

__all__ = ["InceptionBlock", "DenseLayer", "DenseBlock", "Transition", "FPNTopDown", "FiLM", "GatedFusion",
           "ResidualBlock"]


def _positive(name: str, value: int, cls: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{cls}: {name} must be a positive int; received {value!r}.")
    return value


class InceptionBlock(nn.Module):
    """GoogLeNet's block: four parallel branches, concatenated along channels.

    1x1 conv | 1x1 reduce -> 3x3 | 1x1 reduce -> 5x5 | 3x3 max-pool (stride 1) -> 1x1 proj,
    each conv followed by ReLU. Every branch pads so that it keeps H x W — the condition for
    concatenating them. With `reduce=False` it is the paper's naive block: 3x3 and 5x5 read
    the input directly and the pool branch passes its `in_channels` through.
    """

    def __init__(self, in_channels: int, c1: int, c3_reduce: int, c3: int, c5_reduce: int, c5: int,
                 pool_proj: int, reduce: bool = True):
        super().__init__()
        for name, value in dict(in_channels=in_channels, c1=c1, c3_reduce=c3_reduce, c3=c3, c5_reduce=c5_reduce,
                                c5=c5, pool_proj=pool_proj).items():
            _positive(name, value, "InceptionBlock")
        self.reduce = bool(reduce)
        self.b1 = nn.Conv2d(in_channels, c1, 1)
        if self.reduce:
            self.b3_reduce = nn.Conv2d(in_channels, c3_reduce, 1)
            self.b5_reduce = nn.Conv2d(in_channels, c5_reduce, 1)
            self.pool_proj = nn.Conv2d(in_channels, pool_proj, 1)
        self.b3 = nn.Conv2d(c3_reduce if self.reduce else in_channels, c3, 3, padding=1)
        self.b5 = nn.Conv2d(c5_reduce if self.reduce else in_channels, c5, 5, padding=2)
        self.out_channels = c1 + c3 + c5 + (pool_proj if self.reduce else in_channels)

    def branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four branch outputs, before concatenation."""
        if self.reduce:
            r3, r5 = F.relu(self.b3_reduce(x)), F.relu(self.b5_reduce(x))
        else:
            r3 = r5 = x
        pooled = F.max_pool2d(x, 3, stride=1, padding=1)
        return [F.relu(self.b1(x)), F.relu(self.b3(r3)), F.relu(self.b5(r5)),
                F.relu(self.pool_proj(pooled)) if self.reduce else pooled]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.branches(x), dim=1)


class DenseLayer(nn.Module):
    """One DenseNet layer: BatchNorm -> ReLU -> 3x3 conv (no bias) making `growth` new channels."""

    def __init__(self, in_channels: int, growth: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(_positive("in_channels", in_channels, "DenseLayer"))
        self.conv = nn.Conv2d(in_channels, _positive("growth", growth, "DenseLayer"), 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.relu(self.norm(x)))


class DenseBlock(nn.Module):
    """`num_layers` DenseLayers, each reading the concatenation of the input and every earlier
    layer's output; returns that concatenation: in_channels + growth * num_layers channels."""

    def __init__(self, in_channels: int, growth: int, num_layers: int):
        super().__init__()
        _positive("num_layers", num_layers, "DenseBlock")
        self.layers = nn.ModuleList(DenseLayer(in_channels + i * growth, growth) for i in range(num_layers))
        self.out_channels = in_channels + growth * num_layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)


class Transition(nn.Module):
    """DenseNet's transition between blocks: BatchNorm -> ReLU -> 1x1 conv -> 2x2 average pool,
    which cuts the channels the block accumulated (`out_channels`) and halves H and W."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(_positive("in_channels", in_channels, "Transition"))
        self.conv = nn.Conv2d(in_channels, _positive("out_channels", out_channels, "Transition"), 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.norm(x))), 2)


class FPNTopDown(nn.Module):
    """A feature pyramid's top-down path (Lin et al. 2017).

    Takes backbone maps from fine to coarse (each with its own channels and half the size of
    the one before, or any smaller size); returns one map per level, all `out_channels` wide:
    P_coarsest = lateral(C_coarsest); P_i = lateral(C_i) + nearest-upsample(P_{i+1}) to C_i's
    size; then a 3x3 conv smooths each sum. The lateral 1x1 convs are what make the channels
    equal, so that the sum is defined.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int):
        super().__init__()
        if not isinstance(in_channels, (list, tuple)) or not in_channels:
            raise ValueError(f"FPNTopDown: in_channels must be a non-empty list, fine to coarse; received {in_channels!r}.")
        self.lateral = nn.ModuleList(nn.Conv2d(_positive("in_channels", c, "FPNTopDown"), out_channels, 1)
                                     for c in in_channels)
        self.smooth = nn.ModuleList(nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in in_channels)

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(features) != len(self.lateral):
            raise ValueError(f"FPNTopDown was built for {len(self.lateral)} levels; received {len(features)} maps. "
                             "Pass one map per level, fine to coarse.")
        top = self.lateral[-1](features[-1])
        outs = [top]
        for i in range(len(features) - 2, -1, -1):
            lateral = self.lateral[i](features[i])
            top = lateral + align_spatial(top, tuple(lateral.shape[2:]), "nearest")
            outs.insert(0, top)
        return [conv(p) for conv, p in zip(self.smooth, outs)]


class FiLM(nn.Module):
    """Feature-wise linear modulation (Perez et al. 2018): ``gamma(c) * x + beta(c)`` per channel.

    One linear layer (`film`) maps the condition vector `c` (N, cond_dim) to 2 * channels
    numbers: gamma = 1 + the first half, beta = the second. It starts at zero, so the layer
    starts as the identity and training decides how much `c` changes the features.
    """

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.channels = _positive("channels", channels, "FiLM")
        self.film = nn.Linear(_positive("cond_dim", cond_dim, "FiLM"), 2 * channels)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(c).split(self.channels, dim=1)
        return (1.0 + gamma)[:, :, None, None] * x + beta[:, :, None, None]


class GatedFusion(nn.Module):
    """Multiplicative gating by a condition: ``sigmoid(gate(c)) * x`` per channel.

    FiLM without the shift, and with gates in (0, 1): the condition can only turn channels
    down. `gate` starts at zero, so every gate starts at 0.5.
    """

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.gate = nn.Linear(_positive("cond_dim", cond_dim, "GatedFusion"), _positive("channels", channels, "GatedFusion"))
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.gate(c))[:, :, None, None] * x


class ResidualBlock(nn.Module):
    """ResNet's basic block (He et al. 2016): 3x3 conv -> BatchNorm -> ReLU -> 3x3 conv -> BatchNorm,
    added to the input, then ReLU; the convs have no bias, since BatchNorm follows them.

    With `zero_gamma=True` the second BatchNorm's scale starts at 0 (Goyal et al. 2017, torchvision's
    ``zero_init_residual``): the residual branch then adds nothing at first and the block computes
    ReLU(x), the identity on the non-negative maps a previous block hands it."""

    def __init__(self, channels: int, zero_gamma: bool = False):
        super().__init__()
        _positive("channels", channels, "ResidualBlock")
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(channels)
        if zero_gamma:
            nn.init.zeros_(self.norm2.weight)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """The branch added to the input."""
        return self.norm2(self.conv2(F.relu(self.norm1(self.conv1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.residual(x))
