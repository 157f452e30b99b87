"""Fusion as real architectures do it, in Keras 3: Inception, DenseNet, FPN, FiLM, gating.

Twin of `coursekit.torch.blocks` (same class names, constructor arguments and attribute
names, so weights copy across and the twins compute the same numbers). Maps are NHWC.
Sub-layers are built in ``__init__``, like PyTorch's, so weights can be inspected or copied
before the first call. This module must never import PyTorch.
"""

from __future__ import annotations

from typing import Sequence

from ._tf import keras  # first: silences TensorFlow's start-up noise
from keras import layers, ops

from .align import align_spatial
from .fusion import BN_EPS, BN_MOMENTUM, _TorchStyleBatchNorm

__all__ = ["InceptionBlock", "DenseLayer", "DenseBlock", "Transition", "FPNTopDown", "FiLM", "GatedFusion",
           "ResidualBlock"]


def _positive(name: str, value: int, cls: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{cls}: {name} must be a positive int; received {value!r}.")
    return value


def _conv(filters: int, kernel: int, in_channels: int, use_bias: bool = True) -> layers.Conv2D:
    conv = layers.Conv2D(filters, kernel, padding="same", use_bias=use_bias)
    conv.build((None, None, None, in_channels))
    return conv


def _dense(units: int, in_features: int) -> layers.Dense:
    dense = layers.Dense(units, kernel_initializer="zeros", bias_initializer="zeros")
    dense.build((None, in_features))
    return dense


def _batch_norm(channels: int) -> layers.BatchNormalization:
    norm = _TorchStyleBatchNorm(axis=-1, momentum=BN_MOMENTUM, epsilon=BN_EPS)
    norm.build((None, None, None, channels))
    return norm


class InceptionBlock(layers.Layer):
    """GoogLeNet's block: four parallel branches, concatenated along channels.

    1x1 conv | 1x1 reduce -> 3x3 | 1x1 reduce -> 5x5 | 3x3 max-pool (stride 1) -> 1x1 proj,
    each conv followed by ReLU. Every branch pads so that it keeps H x W — the condition for
    concatenating them. With `reduce=False` it is the paper's naive block: 3x3 and 5x5 read
    the input directly and the pool branch passes its `in_channels` through.
    """

    def __init__(self, in_channels: int, c1: int, c3_reduce: int, c3: int, c5_reduce: int, c5: int,
                 pool_proj: int, reduce: bool = True, **kwargs):
        super().__init__(**kwargs)
        for name, value in dict(in_channels=in_channels, c1=c1, c3_reduce=c3_reduce, c3=c3, c5_reduce=c5_reduce,
                                c5=c5, pool_proj=pool_proj).items():
            _positive(name, value, "InceptionBlock")
        self.reduce = bool(reduce)
        self.b1 = _conv(c1, 1, in_channels)
        if self.reduce:
            self.b3_reduce = _conv(c3_reduce, 1, in_channels)
            self.b5_reduce = _conv(c5_reduce, 1, in_channels)
            self.pool_proj = _conv(pool_proj, 1, in_channels)
        self.b3 = _conv(c3, 3, c3_reduce if self.reduce else in_channels)
        self.b5 = _conv(c5, 5, c5_reduce if self.reduce else in_channels)
        self.pool = layers.MaxPooling2D(3, strides=1, padding="same")
        self.out_channels = c1 + c3 + c5 + (pool_proj if self.reduce else in_channels)

    def branches(self, x) -> list:
        """The four branch outputs, before concatenation."""
        if self.reduce:
            r3, r5 = ops.relu(self.b3_reduce(x)), ops.relu(self.b5_reduce(x))
        else:
            r3 = r5 = x
        pooled = self.pool(x)
        return [ops.relu(self.b1(x)), ops.relu(self.b3(r3)), ops.relu(self.b5(r5)),
                ops.relu(self.pool_proj(pooled)) if self.reduce else pooled]

    def call(self, x):
        return ops.concatenate(self.branches(x), axis=-1)


class DenseLayer(layers.Layer):
    """One DenseNet layer: BatchNorm -> ReLU -> 3x3 conv (no bias) making `growth` new channels."""

    def __init__(self, in_channels: int, growth: int, **kwargs):
        super().__init__(**kwargs)
        self.norm = _batch_norm(_positive("in_channels", in_channels, "DenseLayer"))
        self.conv = _conv(_positive("growth", growth, "DenseLayer"), 3, in_channels, use_bias=False)

    def call(self, x, training=None):
        return self.conv(ops.relu(self.norm(x, training=training)))


class DenseBlock(layers.Layer):
    """`num_layers` DenseLayers, each reading the concatenation of the input and every earlier
    layer's output; returns that concatenation: in_channels + growth * num_layers channels."""

    def __init__(self, in_channels: int, growth: int, num_layers: int, **kwargs):
        super().__init__(**kwargs)
        _positive("num_layers", num_layers, "DenseBlock")
        self.layers = [DenseLayer(in_channels + i * growth, growth) for i in range(num_layers)]
        self.out_channels = in_channels + growth * num_layers

    def call(self, x, training=None):
        features = [x]
        for layer in self.layers:
            features.append(layer(ops.concatenate(features, axis=-1), training=training))
        return ops.concatenate(features, axis=-1)


class Transition(layers.Layer):
    """DenseNet's transition between blocks: BatchNorm -> ReLU -> 1x1 conv -> 2x2 average pool,
    which cuts the channels the block accumulated (`out_channels`) and halves H and W."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__(**kwargs)
        self.norm = _batch_norm(_positive("in_channels", in_channels, "Transition"))
        self.conv = _conv(_positive("out_channels", out_channels, "Transition"), 1, in_channels, use_bias=False)
        self.pool = layers.AveragePooling2D(2)

    def call(self, x, training=None):
        return self.pool(self.conv(ops.relu(self.norm(x, training=training))))


class FPNTopDown(layers.Layer):
    """A feature pyramid's top-down path (Lin et al. 2017).

    Takes backbone maps from fine to coarse (each with its own channels and half the size of
    the one before, or any smaller size); returns one map per level, all `out_channels` wide:
    P_coarsest = lateral(C_coarsest); P_i = lateral(C_i) + nearest-upsample(P_{i+1}) to C_i's
    size; then a 3x3 conv smooths each sum. The lateral 1x1 convs are what make the channels
    equal, so that the sum is defined.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(in_channels, (list, tuple)) or not in_channels:
            raise ValueError(f"FPNTopDown: in_channels must be a non-empty list, fine to coarse; received {in_channels!r}.")
        self.lateral = [_conv(out_channels, 1, _positive("in_channels", c, "FPNTopDown")) for c in in_channels]
        self.smooth = [_conv(out_channels, 3, out_channels) for _ in in_channels]

    def call(self, features):
        if len(features) != len(self.lateral):
            raise ValueError(f"FPNTopDown was built for {len(self.lateral)} levels; received {len(features)} maps. "
                             "Pass one map per level, fine to coarse.")
        top = self.lateral[-1](features[-1])
        outs = [top]
        for i in range(len(features) - 2, -1, -1):
            lateral = self.lateral[i](features[i])
            top = lateral + align_spatial(top, tuple(lateral.shape[1:3]), "nearest")
            outs.insert(0, top)
        return [conv(p) for conv, p in zip(self.smooth, outs)]


class FiLM(layers.Layer):
    """Feature-wise linear modulation (Perez et al. 2018): ``gamma(c) * x + beta(c)`` per channel.

    One dense layer (`film`) maps the condition vector `c` (N, cond_dim) to 2 * channels
    numbers: gamma = 1 + the first half, beta = the second. It starts at zero, so the layer
    starts as the identity and training decides how much `c` changes the features.
    """

    def __init__(self, cond_dim: int, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = _positive("channels", channels, "FiLM")
        self.film = _dense(2 * channels, _positive("cond_dim", cond_dim, "FiLM"))

    def call(self, x, c):
        gb = self.film(c)
        gamma, beta = gb[:, : self.channels], gb[:, self.channels:]
        return (1.0 + gamma)[:, None, None, :] * x + beta[:, None, None, :]


class GatedFusion(layers.Layer):
    """Multiplicative gating by a condition: ``sigmoid(gate(c)) * x`` per channel.

    FiLM without the shift, and with gates in (0, 1): the condition can only turn channels
    down. `gate` starts at zero, so every gate starts at 0.5.
    """

    def __init__(self, cond_dim: int, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.gate = _dense(_positive("channels", channels, "GatedFusion"), _positive("cond_dim", cond_dim, "GatedFusion"))

    def call(self, x, c):
        return ops.sigmoid(self.gate(c))[:, None, None, :] * x


class ResidualBlock(layers.Layer):
    """ResNet's basic block (He et al. 2016): 3x3 conv -> BatchNorm -> ReLU -> 3x3 conv -> BatchNorm,
    added to the input, then ReLU; the convs have no bias, since BatchNorm follows them.

    With `zero_gamma=True` the second BatchNorm's scale starts at 0 (Goyal et al. 2017, Keras'
    ``gamma_initializer="zeros"``): the residual branch then adds nothing at first and the block
    computes ReLU(x), the identity on the non-negative maps a previous block hands it."""

    def __init__(self, channels: int, zero_gamma: bool = False, **kwargs):
        super().__init__(**kwargs)
        _positive("channels", channels, "ResidualBlock")
        self.conv1 = _conv(channels, 3, channels, use_bias=False)
        self.norm1 = _batch_norm(channels)
        self.conv2 = _conv(channels, 3, channels, use_bias=False)
        self.norm2 = _batch_norm(channels)
        if zero_gamma:
            self.norm2.gamma.assign(ops.zeros_like(self.norm2.gamma))

    def residual(self, x, training=None):
        """The branch added to the input."""
        h = ops.relu(self.norm1(self.conv1(x), training=training))
        return self.norm2(self.conv2(h), training=training)

    def call(self, x, training=None):
        return ops.relu(x + self.residual(x, training=training))
