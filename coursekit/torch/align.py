"""Aligning and concatenating CNN feature maps in PyTorch.

Twin of `coursekit.keras.align`: same names, same signatures, same errors. The default layout
here is NCHW (PyTorch's); pass ``data_format="NHWC"`` for channels-last tensors.
This module must never import TensorFlow or Keras.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from coursekit import shapes as _shapes
from coursekit.shapes import ShapeMismatchError

__all__ = [
    "nchw_to_nhwc",
    "nhwc_to_nchw",
    "concat",
    "align_spatial",
    "StridedConvAlign",
    "ChannelProjection",
    "align_and_concat",
]

DEFAULT_DATA_FORMAT = "NCHW"
_ADD_BATCH = "x.unsqueeze(0)"


def _layout(data_format: str | None) -> str:
    return _shapes.check_layout(DEFAULT_DATA_FORMAT if data_format is None else data_format)


def _as_tensor(x) -> torch.Tensor:
    # Accept numpy arrays and nested lists too, as keras.ops does, so the twins behave alike.
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(x)


def nchw_to_nhwc(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, H, W, C). Returns a permuted view, not a copy."""
    x = _as_tensor(x)
    _shapes.require_rank4(x.shape, "NCHW", "nchw_to_nhwc", _ADD_BATCH)
    return x.permute(0, 2, 3, 1)


def nhwc_to_nchw(x: torch.Tensor) -> torch.Tensor:
    """(N, H, W, C) -> (N, C, H, W). Returns a permuted view, not a copy."""
    x = _as_tensor(x)
    _shapes.require_rank4(x.shape, "NHWC", "nhwc_to_nchw", _ADD_BATCH)
    return x.permute(0, 3, 1, 2)


def concat(
    maps: Sequence[torch.Tensor], axis: int | None = None, data_format: str | None = None
) -> torch.Tensor:
    """Concatenate feature maps; ``axis=None`` means the channel axis of `data_format`.

    Shapes are checked with coursekit's rules first, so a mismatch raises a
    `ShapeMismatchError` that names the offending axis and a fix, instead of torch's message.
    """
    fmt = _layout(data_format)
    if not isinstance(maps, (list, tuple)):
        raise TypeError(
            f"concat expects a list or tuple of tensors, e.g. concat([a, b]); received a "
            f"{type(maps).__name__}{_shapes.shape_note(maps)}."
        )
    maps = [_as_tensor(m) for m in maps]
    shape_list = [tuple(m.shape) for m in maps]
    if axis is None:
        if any(len(s) != 4 for s in shape_list):
            raise ShapeMismatchError(
                f"concat(axis=None) joins rank-4 {fmt} maps along their channel axis; received "
                f"shapes {shape_list}. Fix: pass axis=... explicitly for other ranks, or add the "
                f"missing batch axis with {_ADD_BATCH}."
            )
        axis = fmt.index("C")
    _shapes.concat_output_shape(shape_list, axis, fmt)
    return torch.cat(maps, dim=axis)


def align_spatial(
    x: torch.Tensor, size: tuple[int, int], method: str, data_format: str | None = None
) -> torch.Tensor:
    """Resize one rank-4 map to spatial `size` = (H, W) without learnable parameters.

    `method` is one of `coursekit.shapes.SPATIAL_METHODS`:
    maxpool/avgpool shrink by an integer factor per axis (kernel = stride = factor);
    nearest/bilinear enlarge (half-pixel centers, i.e. ``align_corners=False``);
    pad adds centered zeros and crop takes a center crop (an odd difference puts the extra
    pixel after, see `coursekit.shapes.center_offsets`).
    Returns `x` itself when it already has `size`.
    """
    fmt = _layout(data_format)
    x = _as_tensor(x)
    _shapes.require_rank4(x.shape, fmt, "align_spatial", _ADD_BATCH)
    dst = _shapes.hw_pair(size, "size")
    src = _shapes.spatial_dims(tuple(x.shape), fmt)
    _shapes.check_spatial_plan(src, dst, method)
    if src == dst:
        return x
    if method in ("pad", "crop"):
        return _pad_or_crop(x, src, dst, method, fmt)
    # Pooling and interpolation only take NCHW, so route channels-last maps through it.
    y = x if fmt == "NCHW" else nhwc_to_nchw(x)
    if method in ("maxpool", "avgpool"):
        factor = (src[0] // dst[0], src[1] // dst[1])
        pool = F.max_pool2d if method == "maxpool" else F.avg_pool2d
        y = pool(y, kernel_size=factor, stride=factor)
    elif method == "nearest":
        # "nearest-exact" samples at pixel centers like Keras/TF; for integer factors it equals
        # mode="nearest" (and nn.Upsample), and it keeps the twins equal for any size.
        y = F.interpolate(y, size=dst, mode="nearest-exact")
    else:
        y = F.interpolate(y, size=dst, mode="bilinear", align_corners=False)
    return y if fmt == "NCHW" else nchw_to_nhwc(y)


def _pad_or_crop(
    x: torch.Tensor, src: tuple[int, int], dst: tuple[int, int], method: str, fmt: str
) -> torch.Tensor:
    (top, bottom), (left, right) = (_shapes.center_offsets(s, d) for s, d in zip(src, dst))
    h_axis = fmt.index("H")
    if method == "crop":
        return x.narrow(h_axis, top, dst[0]).narrow(h_axis + 1, left, dst[1])
    # F.pad lists (before, after) pairs starting from the last axis.
    pads = (left, right, top, bottom) if fmt == "NCHW" else (0, 0, left, right, top, bottom)
    return F.pad(x, pads, mode="constant", value=0.0)


class StridedConvAlign(nn.Module):
    """Learnable downsampling: a conv with kernel_size = stride = `factor` and no padding.

    Shrinks H and W by `factor` (an int, or an (fh, fw) pair) and maps `in_channels` to
    `out_channels`. The wrapped ``nn.Conv2d`` is available as ``.conv``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, factor: int | tuple[int, int],
        data_format: str | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = _shapes.positive_int(in_channels, "in_channels")
        self.out_channels = _shapes.positive_int(out_channels, "out_channels")
        self.factor = _shapes.hw_pair(factor, "factor")
        self.data_format = _layout(data_format)
        self.conv = nn.Conv2d(
            self.in_channels, self.out_channels, kernel_size=self.factor, stride=self.factor,
            padding=0,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmt = self.data_format
        where = f"StridedConvAlign(in_channels={self.in_channels}, factor={self.factor})"
        x = _as_tensor(x)
        _shapes.require_rank4(x.shape, fmt, where, _ADD_BATCH)
        _shapes.check_channels(tuple(x.shape), self.in_channels, fmt, where)
        _shapes.check_divisible(_shapes.spatial_dims(tuple(x.shape), fmt), self.factor, where)
        if fmt == "NCHW":
            return self.conv(x)
        return nchw_to_nhwc(self.conv(nhwc_to_nchw(x)))

    def extra_repr(self) -> str:
        return f"factor={self.factor}, data_format={self.data_format!r}"


class ChannelProjection(nn.Module):
    """A 1x1 conv that maps `in_channels` to `out_channels` and leaves H, W unchanged.

    The usual fix when two maps to be fused disagree on C. The wrapped ``nn.Conv2d`` is
    available as ``.conv``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, use_bias: bool = True,
        data_format: str | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = _shapes.positive_int(in_channels, "in_channels")
        self.out_channels = _shapes.positive_int(out_channels, "out_channels")
        self.use_bias = bool(use_bias)
        self.data_format = _layout(data_format)
        self.conv = nn.Conv2d(self.in_channels, self.out_channels, 1, bias=self.use_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmt = self.data_format
        where = f"ChannelProjection(in_channels={self.in_channels}, out_channels={self.out_channels})"
        x = _as_tensor(x)
        _shapes.require_rank4(x.shape, fmt, where, _ADD_BATCH)
        _shapes.check_channels(tuple(x.shape), self.in_channels, fmt, where)
        if fmt == "NCHW":
            return self.conv(x)
        return nchw_to_nhwc(self.conv(nhwc_to_nchw(x)))

    def extra_repr(self) -> str:
        return f"data_format={self.data_format!r}"


def align_and_concat(
    maps: Sequence[torch.Tensor], method: str = "maxpool", target: int = 0,
    data_format: str | None = None,
) -> torch.Tensor:
    """Resize every map to the spatial size of ``maps[target]`` with `method`, then
    concatenate them along the channel axis."""
    uses = SimpleNamespace(align_spatial=align_spatial, concat=concat, _as_tensor=_as_tensor)  # what the body calls
    return _shapes.align_and_concat_with(uses, maps, method, target, _layout(data_format), _ADD_BATCH)
