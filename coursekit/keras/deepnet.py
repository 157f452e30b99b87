"""A deep plain CNN and the per-layer measurements of lesson 05 (initialization), in Keras 3.

Twin of `coursekit.torch.deepnet`: same names, same signatures, same layers in the same order
under the same names (conv1, act1, ..., convN, actN, pool, fc), so one initialization gives
the same per-layer statistics in both halves. Not exported by ``coursekit.keras``; import it
as ``from coursekit.keras.deepnet import plain_cnn``. This module must never import PyTorch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..diagnostics_report import ActivationStats, summarize_values
from ..init_schemes import (PLAIN_CNN_ACTIVATIONS, plain_cnn_widths, residual_stack_arrays, residual_stack_probe,
                            residual_stack_summary)
from . import _tf
from .blocks import ResidualBlock
from .diagnostics import _feed, _inputs, activation_stats
from .init import initialized_layers
from .train import _as_array, _resolve_loss

tf, keras = _tf.tf, _tf.keras
layers = keras.layers

__all__ = ["ACTIVATIONS", "activation_grad_stats", "depth_profile", "grad_unit_spread", "plain_cnn", "residual_profile",
           "unit_spread"]

#: The activations `plain_cnn` accepts.
ACTIVATIONS = PLAIN_CNN_ACTIVATIONS
# Layers that only reshape: their gradient repeats the next layer's.
_RESHAPES = (layers.Flatten, layers.Reshape, layers.InputLayer)


def plain_cnn(depth: int = 10, width: int | Sequence[int] = 16, activation: str = "relu", *,
              in_channels: int = 1, n_classes: int = 10, padding: str = "same") -> keras.Sequential:
    """`depth` times [3x3 conv -> activation], then global average pooling and a dense
    classifier: a plain CNN (no normalization, no skip connections), so every layer's
    initialization shows in its output.

    Layers are named conv1, act1, ..., conv{depth}, act{depth}, pool, fc (the activation is
    its own layer, so its input and output can both be measured). `width` is the channel
    count of every conv, or a list with one count per conv. `padding` 'same' keeps the map
    size; 'valid' shrinks it by 2 per layer (the input must stay >= 3x3). Takes NHWC input of
    any spatial size and returns logits. The twin `coursekit.torch.deepnet.plain_cnn` has
    the same layers, names and weight shapes (in PyTorch's layout).
    """
    widths = plain_cnn_widths(depth, width, activation, padding)
    stack: list = [keras.Input((None, None, int(in_channels)), name="x")]
    for i, c_out in enumerate(widths, start=1):
        stack.append(layers.Conv2D(c_out, 3, padding=padding, name=f"conv{i}"))
        stack.append(layers.Activation(activation, name=f"act{i}"))
    stack += [layers.GlobalAveragePooling2D(name="pool"), layers.Dense(n_classes, name="fc")]
    return keras.Sequential(stack, name=f"plain_cnn_{depth}_{activation}")


def activation_grad_stats(model: keras.Sequential, x: Any, y: Any, loss: str = "cross_entropy",
                          layers: Sequence[str] | None = None) -> ActivationStats:
    """Statistics of the gradient of the loss with respect to each layer's OUTPUT for the
    batch `x`, `y` (what backpropagation carries down the network), in the order the
    layers run. The twin of `activation_stats` for the backward pass: same `LayerStats`
    fields, so `plots.plot_activation_histograms` draws gradient histograms too.

    `model` must be a chain of layers (``keras.Sequential``, e.g. `plain_cnn`). By default
    every layer except pure reshapes is reported; `layers` picks some by name. Runs with
    ``training=False`` under a GradientTape. The loss is the batch mean.
    """
    if not isinstance(model, keras.Sequential):
        raise TypeError(
            f"activation_grad_stats follows a chain of layers, so it needs a keras.Sequential (such as "
            f"plain_cnn); received a {type(model).__name__}. For other models use gradient_flow, "
            "which reports the weights' gradients."
        )
    chain = list(model.layers)
    names = [la.name for la in chain if not isinstance(la, _RESHAPES)]
    if layers is not None:
        unknown = [n for n in layers if n not in names]
        if unknown:
            raise KeyError(f"no layer(s) {unknown} in this model; its layers are {names}.")
        names = [n for n in names if n in set(layers)]
    (h,) = _inputs(x)
    kinds, outs = {}, {}
    _, loss_obj = _resolve_loss(loss)
    with tf.GradientTape() as tape:
        for layer in chain:
            h = layer(h, training=False)
            if layer.name in names:
                tape.watch(h)
                kinds[layer.name], outs[layer.name] = type(layer).__name__, h
        value = loss_obj(_as_array(y), h)
    grads = tape.gradient(value, [outs[n] for n in names])
    stats = ActivationStats()
    for name, g in zip(names, grads):
        arr = np.zeros(tuple(outs[name].shape), np.float32) if g is None else keras.ops.convert_to_numpy(g)
        stats.append(summarize_values(name, kinds[name], arr))
    return stats


def unit_spread(model) -> dict[str, float]:
    """For each Conv/Dense layer: how different its units (output channels) are, as the
    largest standard deviation across units of any one weight position (0.0 = every unit
    holds the same weights, so every unit computes the same output: symmetry is unbroken).
    Keys are layer names."""
    out = {}
    for layer in initialized_layers(model):
        w = np.asarray(layer.kernel.numpy(), dtype=np.float64)  # (*kernel, in, out)
        out[layer.name] = float(w.reshape(-1, w.shape[-1]).std(axis=1).max())
    return out


def grad_unit_spread(model, x: Any, y: Any, loss: str = "cross_entropy") -> dict[str, float]:
    """`unit_spread` of the loss GRADIENT with respect to each Conv/Dense kernel for the batch
    `x` (a list for a multi-input model), `y`: 0.0 means every unit of that layer gets the
    same update, so units that start identical stay identical for ever. Runs with
    ``training=False`` under a GradientTape."""
    targets = initialized_layers(model)
    xs = _inputs(x)
    _, loss_obj = _resolve_loss(loss)
    with tf.GradientTape() as tape:
        out = model(_feed(xs), training=False)
        value = loss_obj(_as_array(y), out)
    grads = tape.gradient(value, [la.kernel for la in targets])
    spread = {}
    for layer, g in zip(targets, grads):
        g = np.zeros(tuple(layer.kernel.shape)) if g is None else keras.ops.convert_to_numpy(g).astype(np.float64)
        spread[layer.name] = float(g.reshape(-1, g.shape[-1]).std(axis=1).max())
    return spread


def depth_profile(model: keras.Sequential, x: Any, y: Any = None) -> dict[str, Any]:
    """Per conv layer of a chain such as `plain_cnn`: the std of its output over the batch
    `x` ('forward') and, with labels `y`, the std of the loss gradient with respect to that
    output ('backward'). Returns ``{'layers': [names], 'forward': array, 'backward': array
    or None}``, ordered from input to output."""
    if not isinstance(model, keras.Sequential):
        raise TypeError(f"depth_profile needs a keras.Sequential such as plain_cnn; received a {type(model).__name__}.")
    convs = [la.name for la in model.layers if isinstance(la, layers.Conv2D)]
    if not convs:
        raise ValueError("depth_profile found no Conv2D among the model's layers.")
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
    x = tf.constant(x_np.transpose(0, 2, 3, 1))  # NHWC
    blocks = [ResidualBlock(channels, zero_gamma=zero_gamma) for _ in range(depth)]
    for block, (w1, w2) in zip(blocks, weights):
        block.build(x.shape)
        block.conv1.kernel.assign(w1.transpose(2, 3, 1, 0))  # OIHW -> HWIO
        block.conv2.kernel.assign(w2.transpose(2, 3, 1, 0))
    probe = tf.constant(residual_stack_probe(x_np.shape, seed=seed).transpose(0, 2, 3, 1))
    params = [v for b in blocks for v in b.trainable_variables]
    kernels = [v for b in blocks for v in (b.conv1.kernel, b.conv2.kernel, b.norm2.gamma)]
    for step in range(steps + 1):
        with tf.GradientTape() as tape:
            h, outs = x, []
            for block in blocks:
                h = block(h, training=True)
                outs.append(h)
            loss = tf.reduce_mean(h * probe)
        if step < steps:
            for v, g in zip(params, tape.gradient(loss, params)):
                v.assign_sub(lr * g)
    grads = [keras.ops.convert_to_numpy(g) for g in tape.gradient(loss, kernels)]
    return residual_stack_summary(x_np, [keras.ops.convert_to_numpy(o) for o in outs],
                                  [(grads[3 * i], grads[3 * i + 1]) for i in range(depth)],
                                  [grads[3 * i + 2] for i in range(depth)])
