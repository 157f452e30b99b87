"""Aligning and concatenating CNN feature maps in Keras 3 (TensorFlow backend).

Twin of `coursekit.torch.align`: same names, same signatures, same errors. The default layout
here is NHWC (Keras' channels_last); pass ``data_format="NCHW"`` for channels-first tensors.
Everything goes through `keras.ops`, so the functions work eagerly and on the symbolic
KerasTensors of a functional model. This module must never import PyTorch.
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Sequence

# Before the first keras import: the backend is fixed at import time, and TF's C++ start-up
# chatter would otherwise land in notebook cells.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
from keras import layers, ops  # noqa: E402

from coursekit import shapes as _shapes  # noqa: E402
from coursekit.shapes import ShapeMismatchError  # noqa: E402

__all__ = [
    "nchw_to_nhwc",
    "nhwc_to_nchw",
    "concat",
    "align_spatial",
    "StridedConvAlign",
    "ChannelProjection",
    "align_and_concat",
]

DEFAULT_DATA_FORMAT = "NHWC"
_ADD_BATCH = "keras.ops.expand_dims(x, 0)"


def _layout(data_format: str | None) -> str:
    return _shapes.check_layout(DEFAULT_DATA_FORMAT if data_format is None else data_format)


def _as_tensor(x):
    # Symbolic inputs must stay symbolic; numpy arrays and lists become backend tensors so
    # every function returns the same kind of object.
    if isinstance(x, keras.KerasTensor) or ops.is_tensor(x):
        return x
    return ops.convert_to_tensor(x)


def _shape(x) -> tuple:
    return tuple(x.shape)


def nchw_to_nhwc(x):
    """(N, C, H, W) -> (N, H, W, C)."""
    x = _as_tensor(x)
    _shapes.require_rank4(_shape(x), "NCHW", "nchw_to_nhwc", _ADD_BATCH)
    return ops.transpose(x, (0, 2, 3, 1))


def nhwc_to_nchw(x):
    """(N, H, W, C) -> (N, C, H, W)."""
    x = _as_tensor(x)
    _shapes.require_rank4(_shape(x), "NHWC", "nhwc_to_nchw", _ADD_BATCH)
    return ops.transpose(x, (0, 3, 1, 2))


def concat(maps: Sequence, axis: int | None = None, data_format: str | None = None):
    """Concatenate feature maps; ``axis=None`` means the channel axis of `data_format`.

    Shapes are checked with coursekit's rules first (an unknown ``None`` batch size matches
    anything), so a mismatch raises a `ShapeMismatchError` that names the offending axis and a
    fix, instead of TensorFlow's message.
    """
    fmt = _layout(data_format)
    if not isinstance(maps, (list, tuple)):
        raise TypeError(
            f"concat expects a list or tuple of tensors, e.g. concat([a, b]); received a "
            f"{type(maps).__name__}{_shapes.shape_note(maps)}."
        )
    maps = [_as_tensor(m) for m in maps]
    shape_list = [_shape(m) for m in maps]
    if axis is None:
        if any(len(s) != 4 for s in shape_list):
            raise ShapeMismatchError(
                f"concat(axis=None) joins rank-4 {fmt} maps along their channel axis; received "
                f"shapes {shape_list}. Fix: pass axis=... explicitly for other ranks, or add the "
                f"missing batch axis with {_ADD_BATCH}."
            )
        axis = fmt.index("C")
    _shapes.concat_output_shape(shape_list, axis, fmt)
    return ops.concatenate(maps, axis=axis)


def align_spatial(x, size: tuple[int, int], method: str, data_format: str | None = None):
    """Resize one rank-4 map to spatial `size` = (H, W) without learnable parameters.

    `method` is one of `coursekit.shapes.SPATIAL_METHODS`:
    maxpool/avgpool shrink by an integer factor per axis (pool size = strides = factor);
    nearest/bilinear enlarge with ``keras.ops.image.resize`` (half-pixel centers, which equals
    PyTorch's ``align_corners=False``); pad adds centered zeros and crop takes a center crop
    (an odd difference puts the extra pixel after, see `coursekit.shapes.center_offsets`).
    Returns `x` itself when it already has `size`.
    """
    fmt = _layout(data_format)
    x = _as_tensor(x)
    _shapes.require_rank4(_shape(x), fmt, "align_spatial", _ADD_BATCH)
    dst = _shapes.hw_pair(size, "size")
    src = _shapes.known_spatial_dims(_shape(x), fmt, "align_spatial")
    _shapes.check_spatial_plan(src, dst, method)
    if src == dst:
        return x
    if method in ("pad", "crop"):
        return _pad_or_crop(x, src, dst, method, fmt)
    # Work in channels_last, the layout TensorFlow's CPU pooling kernels support.
    y = x if fmt == "NHWC" else nchw_to_nhwc(x)
    if method in ("maxpool", "avgpool"):
        factor = (src[0] // dst[0], src[1] // dst[1])
        pool = ops.max_pool if method == "maxpool" else ops.average_pool
        y = pool(y, pool_size=factor, strides=factor, padding="valid", data_format="channels_last")
    else:
        # TF's resize samples at pixel centers: for "nearest" that is torch's "nearest-exact"
        # (equal to torch "nearest"/UpSampling2D for integer factors), for "bilinear" it is
        # torch's align_corners=False. Upsampling only, so antialias changes nothing.
        y = ops.image.resize(
            y, dst, interpolation=method, antialias=False, data_format="channels_last"
        )
    return y if fmt == "NHWC" else nhwc_to_nchw(y)


def _pad_or_crop(x, src: tuple[int, int], dst: tuple[int, int], method: str, fmt: str):
    (top, bottom), (left, right) = (_shapes.center_offsets(s, d) for s, d in zip(src, dst))
    if method == "crop":
        rows, cols = slice(top, top + dst[0]), slice(left, left + dst[1])
        return x[:, rows, cols, :] if fmt == "NHWC" else x[:, :, rows, cols]
    hw = [[top, bottom], [left, right]]
    pads = [[0, 0], *hw, [0, 0]] if fmt == "NHWC" else [[0, 0], [0, 0], *hw]
    return ops.pad(x, pads, mode="constant", constant_values=0)


@keras.saving.register_keras_serializable(package="coursekit")
class StridedConvAlign(layers.Layer):
    """Learnable downsampling: a conv with kernel_size = strides = `factor` and no padding.

    Shrinks H and W by `factor` (an int, or an (fh, fw) pair) and maps `in_channels` to
    `out_channels`. The wrapped ``layers.Conv2D`` (always channels_last, kernel shaped
    (fh, fw, in, out)) is available as ``.conv`` and is built at construction, like PyTorch's.
    """

    def __init__(
        self, in_channels: int, out_channels: int, factor: int | tuple[int, int],
        data_format: str | None = None, **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.in_channels = _shapes.positive_int(in_channels, "in_channels")
        self.out_channels = _shapes.positive_int(out_channels, "out_channels")
        self.factor = _shapes.hw_pair(factor, "factor")
        self.data_format = _layout(data_format)
        self.conv = layers.Conv2D(
            self.out_channels, kernel_size=self.factor, strides=self.factor, padding="valid",
            data_format="channels_last", dtype=self.dtype_policy,
        )
        self.conv.build((None, None, None, self.in_channels))
        self.built = True

    def call(self, x):
        fmt = self.data_format
        where = f"StridedConvAlign(in_channels={self.in_channels}, factor={self.factor})"
        _shapes.require_rank4(_shape(x), fmt, where, _ADD_BATCH)
        _shapes.check_channels(_shape(x), self.in_channels, fmt, where)
        _shapes.check_divisible(_shapes.spatial_dims(_shape(x), fmt), self.factor, where)
        if fmt == "NHWC":
            return self.conv(x)
        return nhwc_to_nchw(self.conv(nchw_to_nhwc(x)))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            in_channels=self.in_channels, out_channels=self.out_channels,
            factor=list(self.factor), data_format=self.data_format,
        )
        return config


@keras.saving.register_keras_serializable(package="coursekit")
class ChannelProjection(layers.Layer):
    """A 1x1 conv that maps `in_channels` to `out_channels` and leaves H, W unchanged.

    The usual fix when two maps to be fused disagree on C. The wrapped ``layers.Conv2D``
    (always channels_last, kernel shaped (1, 1, in, out)) is available as ``.conv`` and is
    built at construction, like PyTorch's.
    """

    def __init__(
        self, in_channels: int, out_channels: int, use_bias: bool = True,
        data_format: str | None = None, **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.in_channels = _shapes.positive_int(in_channels, "in_channels")
        self.out_channels = _shapes.positive_int(out_channels, "out_channels")
        self.use_bias = bool(use_bias)
        self.data_format = _layout(data_format)
        self.conv = layers.Conv2D(
            self.out_channels, 1, use_bias=self.use_bias, data_format="channels_last",
            dtype=self.dtype_policy,
        )
        self.conv.build((None, None, None, self.in_channels))
        self.built = True

    def call(self, x):
        fmt = self.data_format
        where = f"ChannelProjection(in_channels={self.in_channels}, out_channels={self.out_channels})"
        _shapes.require_rank4(_shape(x), fmt, where, _ADD_BATCH)
        _shapes.check_channels(_shape(x), self.in_channels, fmt, where)
        if fmt == "NHWC":
            return self.conv(x)
        return nhwc_to_nchw(self.conv(nchw_to_nhwc(x)))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            in_channels=self.in_channels, out_channels=self.out_channels,
            use_bias=self.use_bias, data_format=self.data_format,
        )
        return config


def align_and_concat(
    maps: Sequence, method: str = "maxpool", target: int = 0, data_format: str | None = None
):
    """Resize every map to the spatial size of ``maps[target]`` with `method`, then
    concatenate them along the channel axis."""
    uses = SimpleNamespace(align_spatial=align_spatial, concat=concat, _as_tensor=_as_tensor)  # what the body calls
    return _shapes.align_and_concat_with(uses, maps, method, target, _layout(data_format), _ADD_BATCH)
