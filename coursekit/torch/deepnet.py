"""A deep plain CNN and the per-layer measurements of lesson 05 (initialization), in PyTorch.

Twin of `coursekit.keras.deepnet`: same names, same signatures, same layers in the same order
under the same names (conv1, act1, ..., convN, actN, pool, fc), so one initialization gives
the same per-layer statistics in both halves. Not exported by ``coursekit.torch``; import it
as ``from coursekit.torch.deepnet import plain_cnn``. This module must never import
TensorFlow or Keras.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..diagnostics_report import ActivationStats, summarize_values
from ..init_schemes import (PLAIN_CNN_ACTIVATIONS, plain_cnn_widths, residual_stack_arrays, residual_stack_probe,
                            residual_stack_summary)
from .blocks import ResidualBlock
from .diagnostics import _eval_mode, _inputs, _target, activation_stats
from .init import initialized_layers
from .train import _model_device, _resolve_loss

__all__ = ["ACTIVATIONS", "activation_grad_stats", "depth_profile", "grad_unit_spread", "plain_cnn", "residual_profile",
           "unit_spread"]

_ACT = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "linear": nn.Identity}
#: The activations `plain_cnn` accepts.
ACTIVATIONS = PLAIN_CNN_ACTIVATIONS


def plain_cnn(depth: int = 10, width: int | Sequence[int] = 16, activation: str = "relu", *,
              in_channels: int = 1, n_classes: int = 10, padding: str = "same") -> nn.Sequential:
    """`depth` times [3x3 conv -> activation], then global average pooling and a linear
    classifier: a plain CNN (no normalization, no skip connections), so every layer's
    initialization shows in its output.

    Modules are named conv1, act1, ..., conv{depth}, act{depth}, pool, flatten, fc. `width`
    is the channel count of every conv, or a list with one count per conv. `padding` 'same'
    keeps the map size; 'valid' shrinks it by 2 per layer (the input must stay >= 3x3).
    Takes NCHW input and returns logits. The twin `coursekit.keras.deepnet.plain_cnn` has the
    same layers, names and weight shapes (in Keras' layout).
    """
    widths = plain_cnn_widths(depth, width, activation, padding)
    layers: list[tuple[str, nn.Module]] = []
    c_in = int(in_channels)
    for i, c_out in enumerate(widths, start=1):
        layers.append((f"conv{i}", nn.Conv2d(c_in, c_out, 3, padding=1 if padding == "same" else 0)))
        layers.append((f"act{i}", _ACT[activation]()))
        c_in = c_out
    layers += [("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(c_in, n_classes))]
    return nn.Sequential(OrderedDict(layers))


def activation_grad_stats(model: nn.Sequential, x: Any, y: Any, loss: str = "cross_entropy",
                          layers: Sequence[str] | None = None) -> ActivationStats:
    """Statistics of the gradient of the loss with respect to each layer's OUTPUT for the
    batch `x`, `y` (what backpropagation carries down the network), in the order the
    layers run. The twin of `activation_stats` for the backward pass: same `LayerStats`
    fields, so `plots.plot_activation_histograms` draws gradient histograms too.

    `model` must be a chain of layers (``nn.Sequential``, e.g. `plain_cnn`). By default
    every layer except pure reshapes is reported; `layers` picks some by name. Runs in
    ``eval()`` mode; ``param.grad`` is left untouched. The loss is the batch mean.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(
            f"activation_grad_stats follows a chain of layers, so it needs an nn.Sequential (such as "
            f"plain_cnn); received a {type(model).__name__}. For other models use gradient_flow, "
            "which reports the parameters' gradients."
        )
    names = [n for n, m in model.named_children() if not isinstance(m, (nn.Flatten, nn.Identity))]
    if layers is not None:
        unknown = [n for n in layers if n not in names]
        if unknown:
            raise KeyError(f"no layer(s) {unknown} in this model; its layers are {names}.")
        names = [n for n in names if n in set(layers)]
    device = _model_device(model)
    (h,) = _inputs(x, device)
    h = h.detach().requires_grad_(True)  # so every layer's output is part of the graph
    kinds, outs = {}, {}
    with _eval_mode(model):
        for name, module in model.named_children():
            h = module(h)
            if name in names:
                kinds[name], outs[name] = type(module).__name__, h
        _, loss_fn = _resolve_loss(loss)
        value = loss_fn(h, _target(y, h.device))
        grads = torch.autograd.grad(value, [outs[n] for n in names], allow_unused=True)
    stats = ActivationStats()
    for name, g in zip(names, grads):
        arr = np.zeros(tuple(outs[name].shape), np.float32) if g is None else g.detach().float().cpu().numpy()
        stats.append(summarize_values(name, kinds[name], arr))
    return stats


def unit_spread(model: nn.Module) -> dict[str, float]:
    """For each Conv/Linear layer: how different its units (output channels) are, as the
    largest standard deviation across units of any one weight position (0.0 = every unit
    holds the same weights, so every unit computes the same output: symmetry is unbroken).
    Keys are module names as in ``model.named_modules()``."""
    names = {id(m): n for n, m in model.named_modules()}
    out = {}
    for layer in initialized_layers(model):
        w = layer.weight.detach().double().cpu()  # (out, in, *kernel)
        out[names[id(layer)]] = float(w.reshape(w.shape[0], -1).std(0, unbiased=False).max())
    return out


def grad_unit_spread(model: nn.Module, x: Any, y: Any, loss: str = "cross_entropy") -> dict[str, float]:
    """`unit_spread` of the loss GRADIENT with respect to each Conv/Linear weight for the batch
    `x` (a list for a multi-input model), `y`: 0.0 means every unit of that layer gets the
    same update, so units that start identical stay identical for ever. Runs in ``eval()``
    mode through ``torch.autograd.grad``; ``param.grad`` is left untouched."""
    names = {id(m): n for n, m in model.named_modules()}
    targets = initialized_layers(model)
    device = _model_device(model)
    xs = _inputs(x, device)
    _, loss_fn = _resolve_loss(loss)
    with _eval_mode(model):
        out = model(*xs)
        value = loss_fn(out, _target(y, out.device))
        grads = torch.autograd.grad(value, [la.weight for la in targets], allow_unused=True)
    spread = {}
    for layer, g in zip(targets, grads):
        g = torch.zeros_like(layer.weight) if g is None else g
        g = g.detach().double().cpu()
        spread[names[id(layer)]] = float(g.reshape(g.shape[0], -1).std(0, unbiased=False).max())
    return spread


def depth_profile(model: nn.Sequential, x: Any, y: Any = None) -> dict[str, Any]:
    """Per conv layer of a chain such as `plain_cnn`: the std of its output over the batch
    `x` ('forward') and, with labels `y`, the std of the loss gradient with respect to that
    output ('backward'). Returns ``{'layers': [names], 'forward': array, 'backward': array
    or None}``, ordered from input to output."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"depth_profile needs an nn.Sequential such as plain_cnn; received a {type(model).__name__}.")
    convs = [n for n, m in model.named_children() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("depth_profile found no nn.Conv2d among the model's layers.")
    forward = np.array([s.std for s in activation_stats(model, x, layers=convs)])
    backward = None
    if y is not None:
        backward = np.array([s.std for s in activation_grad_stats(model, x, y, layers=convs)])
    return {"layers": convs, "forward": forward, "backward": backward}


def residual_profile(depth: int = 16, channels: int = 8, zero_gamma: bool = False, *, steps: int = 0,
                     lr: float = 0.1, seed: int = 0, batch: int = 32, size: int = 16) -> dict[str, np.ndarray]:
    """Lesson 05's residual stack at initialization: `depth` `ResidualBlock`s of `channels` channels
    (BatchNorm in training mode, as in the first training step), fed the non-negative batch of
    `init_schemes.residual_stack_arrays` with its He-normal conv weights, so both twins measure the
    same numbers. `zero_gamma` starts every block's second BatchNorm scale at 0. `steps` plain SGD
    steps (learning rate `lr`, every parameter) on that loss come first; 0 measures the initialization.

    Returns ``{'forward': array, 'conv_grad': array, 'gamma_grad': array}``, one entry per block:
    the std of the block's output over the std of the stack's input, and the norms of the gradients
    of the loss, the mean of the output times a fixed random tensor, with respect to the block's two conv kernels
    (together) and to its second BatchNorm's scale."""
    x_np, weights = residual_stack_arrays(depth, channels, seed=seed, batch=batch, size=size)
    blocks = [ResidualBlock(channels, zero_gamma=zero_gamma).train() for _ in range(depth)]
    with torch.no_grad():
        for block, (w1, w2) in zip(blocks, weights):
            block.conv1.weight.copy_(torch.from_numpy(w1))
            block.conv2.weight.copy_(torch.from_numpy(w2))
    x = torch.from_numpy(x_np)
    probe = torch.from_numpy(residual_stack_probe(x_np.shape, seed=seed))
    params = [p for b in blocks for p in b.parameters()]
    for step in range(steps + 1):
        for p in params:
            p.grad = None
        h, outs = x, []
        for block in blocks:
            h = block(h)
            outs.append(h)
        (h * probe).mean().backward()
        if step < steps:
            with torch.no_grad():
                for p in params:
                    p -= lr * p.grad
    return residual_stack_summary(
        x_np, [o.detach().numpy() for o in outs],
        [(b.conv1.weight.grad.numpy(), b.conv2.weight.grad.numpy()) for b in blocks],
        [b.norm2.weight.grad.numpy() for b in blocks])
