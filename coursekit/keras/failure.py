"""Why plain concatenation fails (lesson 02), Keras half. Twin of coursekit.torch.failure.

- `combined_model`: the two-branch model of the article "Why do CNNs fail to learn after
  concatenating features using torch.cat()?" (its Example 1: a ReLU branch and a sigmoid branch,
  concatenated, then a 3x3 conv), given one input per branch and a classifier so it can train.
- `run_combined`: train it on `coursekit.data.make_two_branch` data like `run_two_branch`.
- `head_input_shares`: how much each branch contributes to the pre-activation of the first
  layer after the concatenation, the place where one branch can drown the other.
This module must never import PyTorch.
"""

from __future__ import annotations

import types
from typing import Any, Sequence

import numpy as np

from ..data import TwoBranchData
from ..diagnostics_report import shares
from ..experiments import FusionRun, api_with, init_head_shares_with, run_two_branch_with
from ..models import check_two_branch_options
from . import _tf
from ..memo import memoized
from .backend import BACKEND
from .fusion import ConcatFusion
from .models import two_branch_net

keras = _tf.keras
layers = keras.layers

__all__ = ["CombinedModel", "combined_model", "head_input_shares", "init_head_shares", "run_combined"]


def combined_model(
    activations: str | Sequence[str] = ("relu", "sigmoid"),
    in_channels: Sequence[int] = (1, 1),
    width: int = 16,
    n_classes: int = 4,
) -> keras.Model:
    """The article's Example 1, adapted to two inputs and a classifier (functional model).

    Article: BranchA = Conv2d(3, 16, 3) + ReLU and BranchB = Conv2d(3, 16, 3) + sigmoid both read
    the same image; their maps are concatenated (32 channels) and go through Conv2d(32, 32, 3) +
    ReLU. Here branch A reads `x_a` and branch B `x_b` (NHWC, `in_channels` each), and a global
    average pool and a Dense layer turn the 32 maps into `n_classes` logits. Convolutions are
    unpadded ("valid"), as in the article. Layer names match `two_branch_net`: branch_a_conv,
    branch_b_conv, fusion, head_conv, head_pool, head_dense.
    """
    acts = check_two_branch_options("concat", activations, None, None)
    x_a = keras.Input((None, None, in_channels[0]), name="x_a")
    x_b = keras.Input((None, None, in_channels[1]), name="x_b")
    a = layers.Conv2D(width, 3, activation=acts[0], name="branch_a_conv")(x_a)
    b = layers.Conv2D(width, 3, activation=acts[1], name="branch_b_conv")(x_b)
    h = ConcatFusion([width, width], name="fusion")([a, b])
    h = layers.Conv2D(2 * width, 3, activation="relu", name="head_conv")(h)  # the article's conv2
    h = layers.GlobalAveragePooling2D(name="head_pool")(h)
    out = layers.Dense(n_classes, name="head_dense")(h)
    return keras.Model([x_a, x_b], out, name="article_combined")


# The torch half has a class of this name; in Keras the functional model is the class.
CombinedModel = combined_model


def _combined_api(width: int) -> types.SimpleNamespace:
    def build(n_classes: int = 4, activations: Any = ("relu", "sigmoid"), **_: Any):
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
    """`run_two_branch` with the article's `combined_model` instead of `two_branch_net`: same data,
    split, seeding, training and metrics, so the two are directly comparable."""
    acts = activations if isinstance(activations, str) else "/".join(activations)
    return run_two_branch_with(
        _combined_api(width), "NHWC", data, label=label or f"article model {acts} x{scale:g}", scale=scale,
        distribution=distribution, n=n, n_classes=n_classes, activations=activations, optimizer=optimizer,
        lr=lr, epochs=epochs, batch_size=batch_size, seed=seed, report=report,
    )


def _branch_output(model, tag: str):
    names = {layer.name for layer in model.layers}
    for name in (f"branch_{tag}_norm", f"branch_{tag}_conv"):
        if name in names:
            return model.get_layer(name).output
    raise TypeError(f"head_input_shares needs layers named branch_{tag}_conv (and optionally branch_{tag}_norm), "
                    f"as two_branch_net and combined_model build them; {model.name} has {sorted(names)}.")


def head_input_shares(model, x: Sequence[Any]) -> list[float]:
    """Each branch's share of what the first layer after the concatenation receives.

    That layer (``head_conv``, a Conv2D) computes ``a * K_a + b * K_b + bias``, where `a` and `b`
    are the branch maps and `K_a`, `K_b` the kernel's input channels that read them. This returns
    ``||a * K_a||^2`` divided by the sum over both branches (the bias left out): the part of the
    next layer's pre-activation that each branch moves. A branch with a share near 0 is drowned,
    whatever its gradient says. `x` is ``[x_a, x_b]`` (NHWC arrays); runs with training=False.
    """
    names = {layer.name for layer in model.layers}
    fusion = model.get_layer("fusion") if "fusion" in names else None
    if not isinstance(fusion, ConcatFusion) or fusion.norm is not None or fusion.proj is not None:
        raise TypeError(
            "head_input_shares needs a two-branch model whose 'fusion' layer is a plain ConcatFusion (no norm, "
            "no projection), e.g. two_branch_net(fusion='concat') or combined_model(); received "
            f"{model.name} with fusion {type(fusion).__name__}."
        )
    if "head_conv" not in names:
        raise TypeError(f"head_input_shares needs the Conv2D after the concatenation to be named 'head_conv'; "
                        f"{model.name} has {sorted(names)}.")
    conv = model.get_layer("head_conv")
    probe = keras.Model(model.inputs, [_branch_output(model, "a"), _branch_output(model, "b")])
    maps = probe([np.asarray(v, dtype="float32") for v in x], training=False)
    kernel = conv.kernel
    norms, start = [], 0
    for m in maps:
        c = int(m.shape[-1])
        part = keras.ops.conv(m, kernel[:, :, start:start + c, :], strides=conv.strides, padding=conv.padding,
                              dilation_rate=conv.dilation_rate)
        start += c
        norms.append(float(np.sum(keras.ops.convert_to_numpy(part).astype(np.float64) ** 2)))
    return shares(norms)


def init_head_shares(setting: str, seed: int = 0, n: int = 256) -> list[float]:
    """`head_input_shares` of a freshly built ``two_branch_net(n_classes=4)`` (seeded with `seed`,
    untrained) on `n` samples of one of lesson 02's `INIT_SHARE_SETTINGS`, e.g. ``"x10"``."""
    return init_head_shares_with(setting, "NHWC", build=lambda **o: two_branch_net(n_classes=4, **o),
                                 head_input_shares=head_input_shares, n=n, seed=seed)
