"""Why plain concatenation fails (lesson 02), PyTorch half. Twin of coursekit.keras.failure.

- `combined_model`: the two-branch model of the article "Why do CNNs fail to learn after
  concatenating features using torch.cat()?" (its Example 1: a ReLU branch and a sigmoid branch,
  concatenated, then a 3x3 conv), given one input per branch and a classifier so it can train.
- `run_combined`: train it on `coursekit.data.make_two_branch` data like `run_two_branch`.
- `head_input_shares`: how much each branch contributes to the pre-activation of the first
  layer after the concatenation, the place where one branch can drown the other.
"""

from __future__ import annotations

import types
from typing import Any, Sequence

import torch
from torch import nn

from ..data import TwoBranchData
from ..diagnostics_report import shares
from ..experiments import FusionRun, api_with, init_head_shares_with, run_two_branch_with
from ..models import check_two_branch_options
from ..memo import memoized
from .backend import BACKEND
from .fusion import ConcatFusion
from .models import two_branch_net

__all__ = ["CombinedModel", "combined_model", "head_input_shares", "init_head_shares", "run_combined"]

_ACT = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "linear": nn.Identity}


class CombinedModel(nn.Module):
    """The article's Example 1, adapted to two inputs and a classifier.

    Article: BranchA = Conv2d(3, 16, 3) + ReLU and BranchB = Conv2d(3, 16, 3) + sigmoid both read
    the same image; their maps are concatenated (32 channels) and go through Conv2d(32, 32, 3) +
    ReLU. Here branch A reads `x_a` and branch B `x_b` (`in_channels` each), the concatenation is
    a `ConcatFusion` module (a plain ``torch.cat`` that the diagnostics can hook), and a global
    average pool and a Linear layer turn the 32 maps into `n_classes` logits. Convolutions are
    unpadded, as in the article: 8x8 inputs give 6x6 branch maps and 4x4 head maps.
    The attributes match `TwoBranchNet`: branch_a, branch_b, fusion, head (head[0] is conv2).
    """

    def __init__(
        self,
        activations: str | Sequence[str] = ("relu", "sigmoid"),
        in_channels: Sequence[int] = (1, 1),
        width: int = 16,
        n_classes: int = 4,
    ) -> None:
        super().__init__()
        acts = check_two_branch_options("concat", activations, None, None)
        self.branch_a = nn.Sequential(nn.Conv2d(in_channels[0], width, kernel_size=3), _ACT[acts[0]]())
        self.branch_b = nn.Sequential(nn.Conv2d(in_channels[1], width, kernel_size=3), _ACT[acts[1]]())
        self.fusion = ConcatFusion([width, width])
        self.head = nn.Sequential(
            nn.Conv2d(2 * width, 2 * width, kernel_size=3),  # the article's conv2
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(2 * width, n_classes),
        )

    def forward(self, x_a: torch.Tensor, x_b: torch.Tensor) -> torch.Tensor:
        return self.head(self.fusion([self.branch_a(x_a), self.branch_b(x_b)]))


def combined_model(
    activations: str | Sequence[str] = ("relu", "sigmoid"),
    in_channels: Sequence[int] = (1, 1),
    width: int = 16,
    n_classes: int = 4,
) -> CombinedModel:
    """Build a `CombinedModel` (same options as the Keras twin)."""
    return CombinedModel(activations=activations, in_channels=in_channels, width=width, n_classes=n_classes)


def _combined_api(width: int) -> types.SimpleNamespace:
    def build(n_classes: int = 4, activations: Any = ("relu", "sigmoid"), **_: Any) -> CombinedModel:
        return combined_model(activations=activations, width=width, n_classes=n_classes)

    return api_with(BACKEND, two_branch_net=build)


@memoized
def run_combined(
    data: TwoBranchData | None = None,
    *,
    label: str | None = None,
    activations: str | tuple[str, str] = ("relu", "sigmoid"),
    scale: float = 1.0,
    distribution: str = "normal",
    n: int = 1024,
    n_classes: int = 4,
    width: int = 16,
    optimizer: str = "adam",
    lr: float = 1e-3,
    epochs: int = 8,
    batch_size: int = 64,
    seed: int = 0,
    report: bool = True,
) -> FusionRun:
    """`run_two_branch` with the article's `CombinedModel` instead of `two_branch_net`: same data,
    split, seeding, training and metrics, so the two are directly comparable."""
    acts = activations if isinstance(activations, str) else "/".join(activations)
    return run_two_branch_with(
        _combined_api(width), "NCHW", data, label=label or f"article model {acts} x{scale:g}", scale=scale,
        distribution=distribution, n=n, n_classes=n_classes, activations=activations, optimizer=optimizer,
        lr=lr, epochs=epochs, batch_size=batch_size, seed=seed, report=report,
    )


def _branches_and_head(model: nn.Module) -> tuple[nn.Module, nn.Module, nn.Conv2d]:
    fusion = getattr(model, "fusion", None)
    head = getattr(model, "head", None)
    if not isinstance(fusion, ConcatFusion) or fusion.norm is not None or fusion.proj is not None:
        raise TypeError(
            f"head_input_shares needs a two-branch model whose .fusion is a plain ConcatFusion (no norm, no "
            f"projection), e.g. two_branch_net(fusion='concat') or combined_model(); received "
            f"{type(model).__name__} with fusion {type(fusion).__name__}."
        )
    if not isinstance(head, nn.Sequential) or not isinstance(head[0], nn.Conv2d):
        raise TypeError(f"head_input_shares needs model.head[0] to be the Conv2d after the concatenation; "
                        f"{type(model).__name__} has head {type(head).__name__}.")
    return model.branch_a, model.branch_b, head[0]


def head_input_shares(model: nn.Module, x: Sequence[Any]) -> list[float]:
    """Each branch's share of what the first layer after the concatenation receives.

    That layer (``model.head[0]``, a Conv2d) computes ``W_a * a + W_b * b + bias``, where `a` and
    `b` are the branch maps and `W_a`, `W_b` the kernel's input channels that read them. This
    returns ``||W_i * branch_i||^2`` divided by the sum over both branches (the bias left out):
    the part of the next layer's pre-activation that each branch moves. A branch with a share
    near 0 is drowned, whatever its gradient says. `x` is ``[x_a, x_b]`` (NCHW arrays or
    tensors); runs in eval mode without gradients.
    """
    branch_a, branch_b, conv = _branches_and_head(model)
    device = next(model.parameters()).device
    xs = [torch.as_tensor(v, dtype=torch.float32, device=device) for v in x]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            maps = [branch_a(xs[0]), branch_b(xs[1])]
            norms, start = [], 0
            for m in maps:
                c = m.shape[1]
                w = conv.weight[:, start:start + c]
                start += c
                part = nn.functional.conv2d(m, w, None, conv.stride, conv.padding, conv.dilation)
                norms.append(float(part.double().pow(2).sum()))
    finally:
        model.train(was_training)
    return shares(norms)


def init_head_shares(setting: str, seed: int = 0, n: int = 256) -> list[float]:
    """`head_input_shares` of a freshly built ``two_branch_net(n_classes=4)`` (seeded with `seed`,
    untrained) on `n` samples of one of lesson 02's `INIT_SHARE_SETTINGS`, e.g. ``"x10"``."""
    return init_head_shares_with(setting, "NCHW", build=lambda **o: two_branch_net(n_classes=4, **o),
                                 head_input_shares=head_input_shares, n=n, seed=seed)
