"""BatchNorm's training-mode pitfalls, made measurable (Keras 3). Twin of coursekit.torch.normalization.

Lesson 03 imports it as ``from coursekit.keras import normalization as ckn``:

- `batch_norm_layers(model)`: the BatchNormalization layers of a model, in order;
- `running_stats(layer)`: a BatchNormalization layer's moving mean and variance as numpy arrays;
- `set_bn_momentum(model, momentum)`: set every BatchNormalization layer's momentum, in Keras'
  convention (the weight of the OLD average: ``moving = m * moving + (1 - m) * batch``; Keras'
  default is 0.99, coursekit's models use 0.9). PyTorch's momentum is the weight of the NEW
  batch, so keras' m is torch's 1 - m;
- `predict_with_batch_stats(model, inputs, ...)`: what a model called with ``training=True``
  predicts: every batch normalized with its own statistics;
- `run_two_branch_bn(momentum=..., **options)`: `run_two_branch` with the BatchNormalization
  momentum set before training;
- `branch_grad_norms(model, inputs, y)`: how much gradient each branch's weights get, in
  training mode (where BatchNormalization uses batch statistics);
- `epochs_to_reach(history, threshold)`: the first epoch a metric reaches a threshold;
- `PLACEMENTS`: the lesson's normalization placements, label -> `run_two_branch` options;
- `fold_batch_norm(conv, bn)`: one Conv2D computing ``bn(conv(x))`` with `bn` in inference mode;
- `run_weight_decay(weight_decay, ...)`: plain SGD with that weight decay, recording the norm of
  the scale-invariant weights before BatchNorm (a `coursekit.normalization.DecayRun`).

This module must never import PyTorch.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ._tf import keras, tf  # first: silences TensorFlow's start-up noise
from ..experiments import FusionRun, api_with, run_two_branch_with
from ..history import epochs_to_reach
from ..normalization import PLACEMENTS, DecayRun, fold_scale_shift, run_weight_decay_with
from ..memo import memoized
from .backend import BACKEND
from .models import two_branch_net as _two_branch_net
from .train import fit as _fit, predict as _predict

__all__ = [
    "MOMENTUM_CONVENTION",
    "PLACEMENTS",
    "batch_norm_layers",
    "branch_grad_norms",
    "epochs_to_reach",
    "fold_batch_norm",
    "predict_with_batch_stats",
    "run_two_branch_bn",
    "run_weight_decay",
    "running_stats",
    "set_bn_momentum",
]

MOMENTUM_CONVENTION = "keras"  # momentum = weight of the old moving average
_BN = keras.layers.BatchNormalization


def batch_norm_layers(model) -> list:
    """Every BatchNormalization layer of `model`, nested ones included, in order."""
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"batch_norm_layers needs a Keras model or layer; received a {type(model).__name__}.")
    layers = [model] + list(model._flatten_layers(include_self=False, recursive=True))
    return [layer for layer in layers if isinstance(layer, _BN)]


def running_stats(layer) -> tuple[np.ndarray, np.ndarray]:
    """`(moving_mean, moving_variance)` of one BatchNormalization layer, as float64 numpy copies."""
    if not isinstance(layer, _BN) or not layer.built:
        raise TypeError(
            f"running_stats needs a built BatchNormalization layer; received {type(layer).__name__}. "
            "Find them with batch_norm_layers(model)."
        )
    return (np.array(keras.ops.convert_to_numpy(layer.moving_mean), dtype=np.float64),
            np.array(keras.ops.convert_to_numpy(layer.moving_variance), dtype=np.float64))


def _check_momentum(momentum: Any) -> float:
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0.0 <= momentum < 1.0:
        raise ValueError(
            f"momentum must be a number in [0, 1) in Keras' convention (the weight of the old moving "
            f"average; default 0.99); received {momentum!r}. PyTorch's momentum=0.1 is Keras' 0.9."
        )
    return float(momentum)


def set_bn_momentum(model, momentum: float) -> int:
    """Set the momentum of every BatchNormalization layer of `model` (Keras' convention: the
    weight of the old average, 0 <= momentum < 1). Set it before `fit` compiles the model.
    Returns how many layers were changed."""
    momentum = _check_momentum(momentum)
    bns = batch_norm_layers(model)
    for bn in bns:
        bn.momentum = momentum
    return len(bns)


def _inputs(inputs: Any) -> list[np.ndarray]:
    xs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    out = []
    for a in xs:
        arr = np.asarray(keras.ops.convert_to_numpy(a))
        out.append(arr.astype(np.float32) if np.issubdtype(arr.dtype, np.floating) else arr)
    return out


def _save_stats(bns: list) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(keras.ops.convert_to_numpy(bn.moving_mean), keras.ops.convert_to_numpy(bn.moving_variance))
            for bn in bns]


def _restore_stats(bns: list, saved: list[tuple[np.ndarray, np.ndarray]]) -> None:
    for bn, (m, v) in zip(bns, saved):
        bn.moving_mean.assign(m)
        bn.moving_variance.assign(v)


def predict_with_batch_stats(
    model,
    inputs: Any,
    batch_size: int = 64,
    order: Sequence[int] | None = None,
    keep_running_stats: bool = True,
) -> np.ndarray:
    """The outputs of `model` on `inputs` computed with ``training=True``, the way a model called
    in training mode predicts: each batch is normalized with its own statistics.

    Samples are batched in `order` (a permutation of the indices; default: as given) and the
    outputs are returned in the original order, so two orders can be compared sample by sample.
    Training-mode calls also update the moving statistics; with `keep_running_stats` (default)
    they are restored afterwards, otherwise the model keeps the corrupted ones.
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; received {batch_size!r}.")
    xs = _inputs(inputs)
    n = int(xs[0].shape[0])
    idx = np.arange(n) if order is None else np.asarray(order)
    if sorted(idx.tolist()) != list(range(n)):
        raise ValueError(f"order must be a permutation of range({n}); received {len(idx)} indices.")
    bns = batch_norm_layers(model)
    saved = _save_stats(bns)
    out = [None] * n
    try:
        for i in range(0, n, batch_size):
            sel = idx[i : i + batch_size]
            batch = [x[sel] for x in xs]
            logits = keras.ops.convert_to_numpy(model(batch if len(batch) > 1 else batch[0], training=True))
            for j, k in enumerate(sel):
                out[int(k)] = logits[j]
    finally:
        if keep_running_stats:
            _restore_stats(bns, saved)
    return np.stack(out)


@memoized
def run_two_branch_bn(*, momentum: float = 0.9, **options: Any) -> FusionRun:
    """`run_two_branch(**options)` with every BatchNormalization layer's momentum set to
    `momentum` (Keras' convention) before training. Same data, seeds and split as
    `run_two_branch`; pass ``norm='batch'`` or ``branch_norm='batch'`` so there is one to set."""
    momentum = _check_momentum(momentum)
    if "batch" not in (options.get("norm"), options.get("branch_norm")):
        raise ValueError(
            "run_two_branch_bn sets the momentum of BatchNormalization layers, so pass norm='batch' or "
            f"branch_norm='batch'; received norm={options.get('norm')!r}, "
            f"branch_norm={options.get('branch_norm')!r}."
        )

    def build(**kw: Any):
        model = _two_branch_net(**kw)
        set_bn_momentum(model, momentum)
        return model

    run = run_two_branch_with(api_with(BACKEND, two_branch_net=build), "NHWC", **options)
    run.options["momentum"] = momentum
    return run


def branch_grad_norms(model, inputs: Any, y: Any, training: bool = True) -> tuple[float, float]:
    """L2 norms of the loss gradient (cross-entropy on logits) over the weights of branch A and
    of branch B of a `two_branch_net` (layers named ``branch_a_*`` / ``branch_b_*``), on one batch.

    With `training` (default) the model is called with ``training=True``, as during training, so
    BatchNormalization uses the batch's statistics; the moving statistics are restored
    afterwards. ``training=False`` measures the model as evaluated.
    """
    xs = _inputs(inputs)
    target = np.asarray(y).astype(np.int64)
    groups = {"a": [], "b": []}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        for tag in groups:
            if layer.name.startswith(f"branch_{tag}_"):
                groups[tag].extend(layer.trainable_weights)
    if not groups["a"] or not groups["b"]:
        raise ValueError(
            "branch_grad_norms needs a two_branch_net: layers named branch_a_* and branch_b_*; "
            f"{model.name} has {[layer.name for layer in model.layers][:6]}..."
        )
    bns = batch_norm_layers(model)
    saved = _save_stats(bns)
    try:
        with tf.GradientTape() as tape:
            logits = model(xs if len(xs) > 1 else xs[0], training=training)
            loss = keras.losses.sparse_categorical_crossentropy(target, logits, from_logits=True)
            loss = keras.ops.mean(loss)
        grads = tape.gradient(loss, groups["a"] + groups["b"])
    finally:
        _restore_stats(bns, saved)
    na = len(groups["a"])
    return _l2(grads[:na]), _l2(grads[na:])


def _l2(grads: Sequence[Any]) -> float:
    return float(np.sqrt(sum(np.sum(np.asarray(g, dtype=np.float64) ** 2) for g in grads)))


def fold_batch_norm(conv: keras.layers.Conv2D, bn: keras.layers.BatchNormalization) -> keras.layers.Conv2D:
    """A new ``Conv2D`` that computes ``bn(conv(x))`` with `bn` in inference mode (its moving
    statistics): the kernel scaled per output channel by ``gamma / sqrt(moving_variance + epsilon)``,
    the bias ``(bias - moving_mean) * that + beta``. One layer instead of two at inference; the
    originals are not changed. For training, keep them apart: batch statistics change every step."""
    if not isinstance(conv, keras.layers.Conv2D) or not isinstance(bn, keras.layers.BatchNormalization):
        raise TypeError(f"fold_batch_norm folds a BatchNormalization into the Conv2D before it; received "
                        f"{type(conv).__name__} and {type(bn).__name__}. Pass (conv, bn) in that order.")
    if not conv.built or not bn.built:
        raise ValueError("fold_batch_norm needs built layers (called once on data, or part of a built model); "
                         f"received conv built={conv.built}, batch norm built={bn.built}.")
    channels_last = conv.data_format == "channels_last"
    axis = bn.axis if isinstance(bn.axis, int) else (bn.axis[0] if len(bn.axis) == 1 else None)
    if axis not in ((-1, 3) if channels_last else (1, -3)):
        raise ValueError(f"the BatchNormalization normalizes axis {bn.axis!r}, not the conv's channel axis "
                         f"({'-1' if channels_last else '1'} for data_format={conv.data_format!r}); fold the "
                         "BatchNormalization that normalizes this conv's channels.")
    kernel = np.asarray(conv.kernel.numpy(), np.float64)  # (kh, kw, in, out)
    if bn.moving_mean.shape[0] != kernel.shape[-1]:
        raise ValueError(f"the BatchNormalization normalizes {bn.moving_mean.shape[0]} channels but the conv "
                         f"makes {kernel.shape[-1]}; fold the BatchNormalization that directly follows this conv.")
    scale, shift = fold_scale_shift(
        conv.bias.numpy() if conv.use_bias else None, bn.moving_mean.numpy(), bn.moving_variance.numpy(),
        bn.gamma.numpy() if bn.scale else None, bn.beta.numpy() if bn.center else None, bn.epsilon)
    config = {**conv.get_config(), "use_bias": True, "name": f"{conv.name}_folded"}
    folded = keras.layers.Conv2D.from_config(config)
    in_shape = (None, None, None, kernel.shape[2] * conv.groups)
    folded.build(in_shape if channels_last else (None, in_shape[3], None, None))
    folded.set_weights([(kernel * scale).astype(np.float32), shift.astype(np.float32)])
    return folded


class _DecayBackend:
    framework, layout = "keras", "NHWC"

    def build(self) -> keras.Model:
        return _two_branch_net(n_classes=4, norm="batch")

    def sgd(self, model: keras.Model, lr: float, weight_decay: float) -> keras.optimizers.Optimizer:
        # Keras subtracts lr * weight_decay * w each step, as torch's SGD does: the same update.
        return keras.optimizers.SGD(learning_rate=lr, weight_decay=weight_decay or None)

    def fit(self, model: keras.Model, optimizer: Any, train: Any, epochs: int, batch_size: int, seed: int) -> None:
        _fit(model, (train.inputs, train.y), epochs=epochs, optimizer=optimizer, batch_size=batch_size,
             seed=seed, progress=False)

    def branch_norms(self, model: keras.Model) -> tuple[float, float]:
        convs = (model.get_layer("branch_a_conv"), model.get_layer("branch_b_conv"))
        return tuple(float(np.sqrt(sum((np.asarray(w, np.float64) ** 2).sum() for w in c.get_weights())))
                     for c in convs)

    def accuracy(self, model: keras.Model, test: Any) -> float:
        return float((np.argmax(_predict(model, test.inputs), axis=1) == test.y).mean())


@memoized
def run_weight_decay(weight_decay: float, *, lr: float = 0.5, n: int = 1024, epochs: int = 8,
                     batch_size: int = 64, seed: int = 0, points: int = 4) -> DecayRun:
    """Plain SGD (`lr`, no momentum) with `weight_decay` on the two-branch net with BatchNorm after
    the concatenation (scale-1 data, 4 classes, `run_two_branch`'s split), trained in `points`
    chunks; returns the norms of the branch convs' weights after each chunk (`DecayRun`)."""
    return run_weight_decay_with(_DecayBackend(), weight_decay, lr=lr, n=n, epochs=epochs,
                                 batch_size=batch_size, seed=seed, points=points)
