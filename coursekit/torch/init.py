"""Weight initialization for PyTorch models, by scheme name.

Twin of `coursekit.keras.init`: same names, same signatures, same variances. The formulas live
in `coursekit.init_schemes` (see its docstring for the gain and truncation conventions).
This module must never import TensorFlow or Keras.
"""

from __future__ import annotations

import torch
from torch import nn

from ..init_schemes import (
    INIT_SCHEMES,
    InitDraw,
    canonical_scheme,
    check_bias,
    check_options,
    expected_std,
    fans,
    resolve_draw,
)

__all__ = ["INIT_SCHEMES", "expected_std", "fans", "init_model", "initialized_layers"]

# The layers whose weights a scheme sets; their weights are (out, in, *kernel) or (out, in).
_TARGETS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def initialized_layers(model: nn.Module) -> list[nn.Module]:
    """The Conv1d/2d/3d and Linear modules `init_model` sets, nested ones included."""
    return [m for m in model.modules() if isinstance(m, _TARGETS)]


def init_model(model: nn.Module, scheme: str, *, bias: str | float = 0.0, mode: str = "fan_in",
               std: float = 0.01, value: float = 0.0, nonlinearity: str = "relu",
               seed: int | None = None) -> nn.Module:
    """Initialize every Conv/Linear weight of `model` with `scheme` and set the biases; returns
    `model` (changed in place).

    scheme: one of `INIT_SCHEMES`; mode ('fan_in'/'fan_out') and nonlinearity (the gain) apply
    to the He schemes, `std` to 'normal', `value` to 'constant'. bias: a number, or 'zeros',
    'constant' (uses `value`), 'normal' (uses `std`) or 'keep'. seed: draws come from a private
    generator seeded with it (the global RNG is left alone); None uses torch's global RNG.
    """
    scheme = canonical_scheme(scheme)
    check_options(mode, nonlinearity, std, value, seed)
    bias = check_bias(bias)
    if not isinstance(model, nn.Module):
        raise TypeError(f"init_model expects a torch.nn.Module; received a {type(model).__name__}.")
    layers = initialized_layers(model)
    if not layers:
        raise ValueError(
            f"init_model found no Conv1d/Conv2d/Conv3d/Linear layer in {type(model).__name__}, so "
            "there is nothing to initialize. Fix: pass the model that holds them."
        )
    for layer in layers:
        if isinstance(layer.weight, nn.parameter.UninitializedParameter):
            raise ValueError(
                f"{type(layer).__name__} has no weights yet (a lazy module); its shape is only "
                "known after a first forward pass. Fix: call the model on one input batch first."
            )
    # Draw on the CPU with a CPU generator, so a seed gives the same weights on any device.
    gen = None if seed is None else torch.Generator().manual_seed(int(seed))
    options = {"mode": mode, "std": std, "value": value, "nonlinearity": nonlinearity}
    with torch.no_grad():
        for layer in layers:
            fan_in, fan_out = fans(layer.weight.shape, "torch")
            _fill(layer.weight, resolve_draw(scheme, fan_in, fan_out, **options), gen)
            if layer.bias is not None and bias != "keep":
                if isinstance(bias, float):
                    draw = InitDraw("constant", bias, 0.0)
                else:
                    draw = resolve_draw(bias, 1, 1, **options)
                _fill(layer.bias, draw, gen)
    return model


def _fill(param: torch.Tensor, draw: InitDraw, gen: torch.Generator | None) -> None:
    if draw.distribution == "constant":
        param.fill_(draw.param)
        return
    values = torch.empty(param.shape, dtype=param.dtype)
    if draw.distribution == "normal":
        values.normal_(0.0, draw.param, generator=gen)
    else:
        values.uniform_(-draw.param, draw.param, generator=gen)
    param.copy_(values)
