"""Fusing several CNN feature maps into one, in Keras 3 (TensorFlow backend).

Twin of `coursekit.torch.fusion`: same names, same signatures, same errors. Every fusion layer
takes a LIST of maps, one per branch, and checks it before touching a tensor: the branch count
the layer was built for, rank 4, the channels of each branch and matching H and W. The default
layout is NHWC (Keras' channels_last); pass ``data_format="NCHW"`` for channels-first tensors.
Weights are created in ``__init__`` (like PyTorch's), so they can be inspected or copied before
the first call; every layer works eagerly and in a functional model with a ``None`` batch size.
This module must never import PyTorch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ._tf import keras  # first: silences TensorFlow's start-up noise
from keras import layers, ops

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

# BatchNorm settings shared with the PyTorch twin. Keras' momentum weighs the OLD average
# (moving = 0.9 * moving + 0.1 * batch); PyTorch's weighs the new batch, so keras 0.9 is
# torch 0.1. Keras' default epsilon is 1e-3, torch's 1e-5: both halves use 1e-5.
BN_EPS = 1e-5
BN_MOMENTUM = 0.9
GN_EPS = 1e-5


@keras.saving.register_keras_serializable(package="coursekit")
class _TorchStyleBatchNorm(layers.BatchNormalization):
    """BatchNormalization whose moving variance follows PyTorch's rule.

    Both frameworks normalize a training batch with its biased variance, but PyTorch updates
    the running variance with the unbiased one (times n / (n - 1), n = N*H*W) while Keras uses
    the biased one. Without this the twins' inference outputs drift apart after training.
    """

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or mask is not None or self.renorm:
            return super().call(inputs, training=training, mask=mask)
        x = ops.cast(inputs, keras.backend.result_type(inputs.dtype, "float32"))
        mean, variance = ops.moments(x, axes=self._reduction_axes, synchronized=self.synchronized)
        dims = ops.shape(x)
        n = 1
        for ax in self._reduction_axes:
            n = n * dims[ax]
        n = ops.cast(n, x.dtype)
        unbiased = variance * n / ops.maximum(n - 1.0, 1.0)
        m = self.momentum
        self.moving_mean.assign(ops.cast(self.moving_mean, x.dtype) * m + mean * (1.0 - m))
        self.moving_variance.assign(ops.cast(self.moving_variance, x.dtype) * m + unbiased * (1.0 - m))
        out = ops.batch_normalization(
            x, mean, variance, axis=self.axis,
            offset=ops.cast(self.beta, x.dtype) if self.center else None,
            scale=ops.cast(self.gamma, x.dtype) if self.scale else None,
            epsilon=self.epsilon,
        )
        return ops.cast(out, self.compute_dtype)


# timm-style name -> factory. 'layer' is GroupNormalization with one group: it normalizes each
# sample over (H, W, C) with a per-channel affine, exactly like torch's GroupNorm(1, C)
# (LayerNormalization over (H, W, C) would learn a per-pixel affine instead).
_NORM_MAP = {
    "batch": lambda c, groups, dtype: _TorchStyleBatchNorm(
        axis=-1, momentum=BN_MOMENTUM, epsilon=BN_EPS, dtype=dtype, name="batch_normalization"),
    "layer": lambda c, groups, dtype: layers.GroupNormalization(
        groups=1, axis=-1, epsilon=GN_EPS, dtype=dtype),
    "group": lambda c, groups, dtype: layers.GroupNormalization(
        groups=groups, axis=-1, epsilon=GN_EPS, dtype=dtype),
}

from coursekit.branches import (  # shared with the twin, so both raise the same errors
    _WEIGHT_MODES,
    _SE_MODES,
    _branch_channels,
    _branch_count,
    _choice,
    _norm_name,
    _check_groups,
    _is_shape,
    _as_list,
    _check_branches,
)

# --- Helpers -----------------------------------------------------------------------------------

def _to_nhwc(x, fmt: str):
    # Keras' CPU convolutions and the norms above work channels_last, so NCHW maps take a detour.
    return x if fmt == "NHWC" else nchw_to_nhwc(x)


def _from_nhwc(x, fmt: str):
    return x if fmt == "NHWC" else nhwc_to_nchw(x)


def _channel_view(w, fmt: str):
    """A per-channel vector shaped to broadcast over a rank-4 map in `fmt`."""
    return ops.reshape(w, (1, -1, 1, 1) if fmt == "NCHW" else (1, 1, 1, -1))


def _sum(terms: list):
    # Left to right, the same order as the PyTorch twin, so float32 results agree bit for bit
    # wherever the kernels do.
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def _shapes_of(maps) -> list[tuple]:
    return [tuple(m.shape) for m in maps]


def _fused_shape(shapes: Sequence[Sequence[int | None]], fmt: str, channels: int) -> tuple:
    """The shape every branch agrees on (None only where all are unknown), with C = `channels`."""
    out = []
    for sizes in zip(*[tuple(s) for s in shapes]):
        known = [v for v in sizes if v is not None]
        out.append(known[0] if known else None)
    out[fmt.index("C")] = channels
    return tuple(out)


def _conv1x1(filters: int, in_channels: int, dtype) -> layers.Conv2D:
    # Built now, like torch's nn.Conv2d, so weights can be copied in before the first call.
    conv = layers.Conv2D(filters, 1, data_format="channels_last", dtype=dtype)
    conv.build((None, None, None, in_channels))
    return conv


# --- Layers --------------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="coursekit")
class ConcatFusion(layers.Layer):
    """Concatenate branches along channels, then optionally normalize and project.

    `in_channels` lists each branch's channels (two or more). `norm` acts on the concatenated
    channels: 'batch' (BatchNormalization, epsilon=1e-5, momentum=0.9, moving variance updated
    like PyTorch's), 'layer' (GroupNormalization with 1 group: per-sample statistics over
    H, W, C with a per-channel affine), 'group' (GroupNormalization(`groups`)) or None.
    `out_channels` adds a 1x1 conv (``.proj``) to that many channels; None keeps
    ``sum(in_channels)``. The norm is ``.norm`` (None when absent).
    """

    def __init__(
        self, in_channels: Sequence[int], norm: str | None = None, out_channels: int | None = None,
        groups: int = 8, data_format: str | None = None, **kwargs,
    ) -> None:
        super().__init__(**kwargs)
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
        self.norm = None
        if self.norm_name is not None:
            self.norm = _NORM_MAP[self.norm_name](total, self.groups, self.dtype_policy)
            self.norm.build((None, None, None, total))
        self.proj = None if out_channels is None else _conv1x1(self.out_channels, total, self.dtype_policy)
        self.built = True

    @property
    def _where(self) -> str:
        return f"ConcatFusion(in_channels={list(self.in_channels)})"

    def _check(self, shapes) -> None:
        where = self._where
        _check_branches(_as_list(shapes, where), self.data_format, where, len(self.in_channels),
                        self.in_channels, _ADD_BATCH)

    def call(self, maps, training=None):
        maps = [_as_tensor(m) for m in _as_list(maps, self._where)]
        self._check(_shapes_of(maps))
        fmt = self.data_format
        x = ops.concatenate(maps, axis=fmt.index("C"))
        if self.norm is None and self.proj is None:
            return x
        x = _to_nhwc(x, fmt)
        if self.norm is not None:
            x = self.norm(x, training=training)
        if self.proj is not None:
            x = self.proj(x)
        return _from_nhwc(x, fmt)

    def compute_output_shape(self, input_shape) -> tuple:
        self._check(input_shape)
        return _fused_shape(input_shape, self.data_format, self.out_channels)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            in_channels=list(self.in_channels), norm=self.norm_name,
            out_channels=None if self.proj is None else self.out_channels, groups=self.groups,
            data_format=self.data_format,
        )
        return config


@keras.saving.register_keras_serializable(package="coursekit")
class AddFusion(layers.Layer):
    """Element-wise sum of `num_branches` maps of identical shape (no weights).

    `data_format` only affects which axis the errors call C, H and W.
    """

    def __init__(self, num_branches: int, data_format: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_branches = _branch_count(num_branches, type(self).__name__)
        self.data_format = _layout(data_format)
        self.built = True

    @property
    def _where(self) -> str:
        return f"AddFusion(num_branches={self.num_branches})"

    def _check(self, shapes) -> None:
        where = self._where
        _check_branches(_as_list(shapes, where), self.data_format, where, self.num_branches,
                        None, _ADD_BATCH)

    def call(self, maps):
        maps = [_as_tensor(m) for m in _as_list(maps, self._where)]
        self._check(_shapes_of(maps))
        return _sum(maps)

    def compute_output_shape(self, input_shape) -> tuple:
        self._check(input_shape)
        c = _shapes.channel_dim(tuple(input_shape[0]), self.data_format)
        return _fused_shape(input_shape, self.data_format, c)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(num_branches=self.num_branches, data_format=self.data_format)
        return config


@keras.saving.register_keras_serializable(package="coursekit")
class WeightedSumFusion(layers.Layer):
    """Sum of branches, each scaled by a learned weight.

    `mode`: 'scalar' - one free scalar per branch (init 1.0, so it starts as AddFusion);
    'softmax' - one logit per branch (init 0), weights = softmax over branches, so they stay
    positive and sum to 1 (init: the plain average); 'channel' - one weight per branch and
    channel (needs `channels`, init 1/num_branches). The weights are the layer's own variable
    ``.weight`` (made with ``add_weight``), shaped (num_branches,) or (num_branches, channels),
    so they are in ``trainable_weights`` and the optimizer updates them: a ``keras.Variable``
    created outside the layer never trains.
    """

    def __init__(
        self, num_branches: int, channels: int | None = None, mode: str = "softmax",
        data_format: str | None = None, **kwargs,
    ) -> None:
        super().__init__(**kwargs)
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
            shape, value = (n, self.channels), 1.0 / n
        else:
            shape, value = (n,), 1.0 if self.mode == "scalar" else 0.0
        self.weight = self.add_weight(
            shape=shape, initializer=keras.initializers.Constant(value), trainable=True,
            name="weight",
        )
        self.built = True

    def effective_weights(self):
        """The multipliers actually applied: softmax of the logits in 'softmax' mode."""
        return ops.softmax(self.weight, axis=0) if self.mode == "softmax" else self.weight

    def branch_weights(self) -> np.ndarray:
        """The effective per-branch weights as a numpy array, for plots:
        (num_branches,) or, in 'channel' mode, (num_branches, channels)."""
        if self.mode == "softmax":
            return ops.convert_to_numpy(self.effective_weights())
        # A copy: np.array on the variable itself trips a NumPy 2 deprecation inside TF.
        return np.array(self.weight.numpy())

    @property
    def _where(self) -> str:
        return f"WeightedSumFusion(num_branches={self.num_branches}, mode={self.mode!r})"

    def _check(self, shapes) -> None:
        where = self._where
        expected = None if self.channels is None else (self.channels,) * self.num_branches
        _check_branches(_as_list(shapes, where), self.data_format, where, self.num_branches,
                        expected, _ADD_BATCH)

    def call(self, maps):
        maps = [_as_tensor(m) for m in _as_list(maps, self._where)]
        self._check(_shapes_of(maps))
        w = ops.cast(self.effective_weights(), maps[0].dtype)
        if self.mode == "channel":
            return _sum([_channel_view(w[i], self.data_format) * m for i, m in enumerate(maps)])
        return _sum([w[i] * m for i, m in enumerate(maps)])

    def compute_output_shape(self, input_shape) -> tuple:
        self._check(input_shape)
        c = _shapes.channel_dim(tuple(input_shape[0]), self.data_format)
        return _fused_shape(input_shape, self.data_format, c)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            num_branches=self.num_branches, channels=self.channels, mode=self.mode,
            data_format=self.data_format,
        )
        return config


@keras.saving.register_keras_serializable(package="coursekit")
class SqueezeExcitation(layers.Layer):
    """Squeeze-and-Excitation (Hu et al., 2018, https://arxiv.org/abs/1709.01507).

    Squeeze: global average pooling gives z (eq. 2). Excitation: s = sigmoid(W2 relu(W1 z))
    (eq. 3), where W1 (``.fc1``) maps `channels` to `squeeze_channels` and W2 (``.fc2``) maps
    back; both are 1x1 convs with bias. Output: x scaled channel-wise by s (eq. 4).
    `squeeze_channels` defaults to ``max(1, channels // reduction)`` (the paper's r = 16).
    Takes ONE map; to gate several branches use `SEFusion`.
    """

    def __init__(
        self, channels: int, reduction: int = 16, squeeze_channels: int | None = None,
        data_format: str | None = None, **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.channels = _shapes.positive_int(channels, "channels")
        self.reduction = _shapes.positive_int(reduction, "reduction")
        self.squeeze_channels = (
            max(1, self.channels // self.reduction) if squeeze_channels is None
            else _shapes.positive_int(squeeze_channels, "squeeze_channels")
        )
        self.data_format = _layout(data_format)
        self.fc1 = _conv1x1(self.squeeze_channels, self.channels, self.dtype_policy)
        self.fc2 = _conv1x1(self.channels, self.squeeze_channels, self.dtype_policy)
        self.built = True

    def scale(self, x):
        """The excitation s, shaped (N, 1, 1, C) (or (N, C, 1, 1) for NCHW)."""
        z = ops.mean(_to_nhwc(x, self.data_format), axis=(1, 2), keepdims=True)
        s = ops.sigmoid(self.fc2(ops.relu(self.fc1(z))))
        return _from_nhwc(s, self.data_format)

    def _check(self, shape) -> None:
        where = f"SqueezeExcitation(channels={self.channels})"
        if isinstance(shape, (list, tuple)) and not _is_shape(shape):
            raise TypeError(
                f"{where} gates one feature map; received a {type(shape).__name__} of "
                f"{len(shape)}. Fix: call it on each map, or fuse several branches with SEFusion."
            )
        _shapes.require_rank4(tuple(shape), self.data_format, where, _ADD_BATCH)
        _shapes.check_channels(tuple(shape), self.channels, self.data_format, where)

    def call(self, x):
        if isinstance(x, (list, tuple)):
            self._check(x)  # raises: a list of maps is not one map
        x = _as_tensor(x)
        self._check(tuple(x.shape))
        return x * ops.cast(self.scale(x), x.dtype)

    def compute_output_shape(self, input_shape) -> tuple:
        self._check(input_shape)
        return tuple(input_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            channels=self.channels, reduction=self.reduction,
            squeeze_channels=self.squeeze_channels, data_format=self.data_format,
        )
        return config


@keras.saving.register_keras_serializable(package="coursekit")
class SEFusion(layers.Layer):
    """Fuse branches by concatenation with Squeeze-and-Excitation channel gating.

    `mode`: 'concat' - concatenate, then one `SqueezeExcitation` (``.se``) over all
    ``sum(in_channels)`` channels, so a branch's gates can depend on the other branches;
    'branch' - a separate gate per branch (``.gates``), then concatenate. `reduction` is the
    SE ratio r of each gate.
    """

    def __init__(
        self, in_channels: Sequence[int], reduction: int = 16, mode: str = "concat",
        data_format: str | None = None, **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        name = type(self).__name__
        self.in_channels = _branch_channels(in_channels, name)
        self.reduction = _shapes.positive_int(reduction, "reduction")
        self.mode = _choice(mode, _SE_MODES, "mode", name)
        self.data_format = _layout(data_format)
        fmt, dtype = self.data_format, self.dtype_policy
        if self.mode == "concat":
            self.se = SqueezeExcitation(sum(self.in_channels), self.reduction, data_format=fmt, dtype=dtype)
            self.gates = None
        else:
            self.se = None
            self.gates = [
                SqueezeExcitation(c, self.reduction, data_format=fmt, dtype=dtype) for c in self.in_channels
            ]
        self.built = True

    @property
    def _where(self) -> str:
        return f"SEFusion(in_channels={list(self.in_channels)}, mode={self.mode!r})"

    def _check(self, shapes) -> None:
        where = self._where
        _check_branches(_as_list(shapes, where), self.data_format, where, len(self.in_channels),
                        self.in_channels, _ADD_BATCH)

    def call(self, maps):
        maps = [_as_tensor(m) for m in _as_list(maps, self._where)]
        self._check(_shapes_of(maps))
        c_axis = self.data_format.index("C")
        if self.se is not None:
            return self.se(ops.concatenate(maps, axis=c_axis))
        return ops.concatenate([gate(m) for gate, m in zip(self.gates, maps)], axis=c_axis)

    def compute_output_shape(self, input_shape) -> tuple:
        self._check(input_shape)
        return _fused_shape(input_shape, self.data_format, sum(self.in_channels))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            in_channels=list(self.in_channels), reduction=self.reduction, mode=self.mode,
            data_format=self.data_format,
        )
        return config


@keras.saving.register_keras_serializable(package="coursekit")
class AttentionGateFusion(layers.Layer):
    """Weigh branches by their content, pixel by pixel.

    A small head shared by all branches (1x1 conv `in_channels` -> `hidden` (``.hidden_conv``),
    ReLU, 1x1 conv `hidden` -> 1 (``.score_conv``)) scores each branch at each pixel; a softmax
    across branches turns the scores into weights a_i, and the output is sum_i a_i * x_i.
    Every branch must have `in_channels` channels. `hidden` defaults to
    ``max(8, in_channels // 4)``.
    """

    def __init__(
        self, in_channels: int, num_branches: int = 2, hidden: int | None = None,
        data_format: str | None = None, **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.in_channels = _shapes.positive_int(in_channels, "in_channels")
        self.num_branches = _branch_count(num_branches, type(self).__name__)
        self.hidden = (
            max(8, self.in_channels // 4) if hidden is None else _shapes.positive_int(hidden, "hidden")
        )
        self.data_format = _layout(data_format)
        self.hidden_conv = _conv1x1(self.hidden, self.in_channels, self.dtype_policy)
        self.score_conv = _conv1x1(1, self.hidden, self.dtype_policy)
        self.built = True

    @property
    def _where(self) -> str:
        return f"AttentionGateFusion(in_channels={self.in_channels}, num_branches={self.num_branches})"

    def _check(self, shapes) -> None:
        where = self._where
        _check_branches(_as_list(shapes, where), self.data_format, where, self.num_branches,
                        (self.in_channels,) * self.num_branches, _ADD_BATCH)

    def _checked(self, maps) -> list:
        maps = [_as_tensor(m) for m in _as_list(maps, self._where)]
        self._check(_shapes_of(maps))
        return maps

    def _weights(self, maps: list):
        # (N, H, W, branches): one score map per branch, softmax across branches per pixel.
        scores = [self.score_conv(ops.relu(self.hidden_conv(_to_nhwc(m, self.data_format)))) for m in maps]
        return ops.softmax(ops.concatenate(scores, axis=-1), axis=-1)

    def attention(self, maps):
        """The per-pixel branch weights, for plots: (N, H, W, branches) for NHWC, with the branch
        axis where the channel axis is, so (N, branches, H, W) for NCHW. They sum to 1 over
        branches."""
        return _from_nhwc(self._weights(self._checked(maps)), self.data_format)

    def call(self, maps):
        maps = self._checked(maps)
        a = ops.cast(self._weights(maps), maps[0].dtype)
        return _sum([_from_nhwc(a[..., i:i + 1], self.data_format) * m for i, m in enumerate(maps)])

    def compute_output_shape(self, input_shape) -> tuple:
        self._check(input_shape)
        return _fused_shape(input_shape, self.data_format, self.in_channels)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            in_channels=self.in_channels, num_branches=self.num_branches, hidden=self.hidden,
            data_format=self.data_format,
        )
        return config
