"""Branch rules for fusion layers: pure Python on shape tuples, framework-neutral.

Both `coursekit.torch.fusion` and `coursekit.keras.fusion` call these before touching a tensor,
so the twins raise word-for-word the same teaching errors.
"""

from __future__ import annotations

from typing import Sequence

from coursekit import shapes as _shapes
from coursekit.shapes import ShapeMismatchError

_NORM_NAMES = ("batch", "layer", "group")
_WEIGHT_MODES = ("scalar", "softmax", "channel")
_SE_MODES = ("concat", "branch")


def _branch_channels(in_channels, where: str) -> tuple[int, ...]:
    """`in_channels` as a tuple of positive ints, one per branch (at least two)."""
    if isinstance(in_channels, (str, bytes)):
        chans = None
    else:
        try:
            chans = tuple(in_channels)
        except TypeError:
            chans = None
    if chans is None:
        raise TypeError(
            f"{where}: in_channels must be a list with one channel count per branch, e.g. "
            f"in_channels=[64, 128]; received {in_channels!r}."
        )
    chans = tuple(_shapes.positive_int(c, "every in_channels entry") for c in chans)
    if len(chans) < 2:
        raise ValueError(
            f"{where}: fusion needs at least 2 branches, so in_channels must list 2 or more "
            f"channel counts; received {list(chans)}. A single map needs no fusion layer."
        )
    return chans


def _branch_count(num_branches, where: str) -> int:
    n = _shapes.positive_int(num_branches, "num_branches")
    if n < 2:
        raise ValueError(
            f"{where}: fusion needs at least 2 branches; received num_branches={n}. "
            "A single map needs no fusion layer."
        )
    return n


def _choice(value, valid: tuple[str, ...], name: str, where: str) -> str:
    key = value.lower() if isinstance(value, str) else value
    if key not in valid:
        raise ValueError(f"{where}: unknown {name} {value!r}; choose one of {valid}.")
    return key


def _norm_name(norm, where: str) -> str | None:
    if norm is None:
        return None
    key = norm.lower() if isinstance(norm, str) else norm
    if key not in _NORM_NAMES:
        raise ValueError(
            f"{where}: unknown norm {norm!r}; choose one of {_NORM_NAMES}, or None for no "
            "normalization."
        )
    return key


def _check_groups(groups: int, channels: int, norm: str | None, where: str) -> None:
    if norm == "group" and channels % groups:
        divisors = [d for d in range(1, channels + 1) if channels % d == 0]
        raise ValueError(
            f"{where}: norm='group' splits the {channels} concatenated channels into groups of "
            f"equal size, so groups must divide {channels}; received groups={groups}. "
            f"Fix: pick one of {divisors}."
        )


def _is_shape(value) -> bool:
    # A bare shape such as (None, 8, 8, 3): what Keras' compute_output_shape receives when a
    # single tensor is passed where a list of maps belongs.
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(
        v is None or isinstance(v, int) for v in value
    )


def _as_list(maps, where: str) -> list:
    """`maps` as a list of maps (or of shapes); a single map gets a teaching TypeError."""
    if not isinstance(maps, (list, tuple)) or _is_shape(maps):
        if _is_shape(maps):
            what, shape = "map", tuple(maps)
        else:
            what, shape = type(maps).__name__, getattr(maps, "shape", None)
        note = f" of shape {tuple(shape)}" if shape is not None else ""
        raise TypeError(
            f"{where} fuses a list of feature maps, one per branch, e.g. layer([a, b]); "
            f"received a single {what}{note}. Fix: wrap the maps in a list."
        )
    return list(maps)


def _check_branches(
    shapes: Sequence[Sequence[int | None]], fmt: str, where: str, num_branches: int,
    channels: Sequence[int] | None = None, add_batch: str = "",
) -> None:
    """Raise unless `shapes` are `num_branches` rank-4 maps that can be fused pixel by pixel.

    `channels` lists the channel count each branch must have; None means "all equal" (for the
    element-wise layers). `None` sizes (Keras' unknown batch) match anything.
    """
    shapes = [tuple(s) for s in shapes]
    if len(shapes) != num_branches:
        raise ShapeMismatchError(
            f"{where} was built for {num_branches} branches but received {len(shapes)} feature "
            f"map(s) with shapes {shapes}. Fix: pass a list with one map per branch, or build the "
            f"layer for {len(shapes)} branches."
        )
    for i, s in enumerate(shapes):
        try:
            _shapes.require_rank4(s, fmt, where, add_batch)
        except ShapeMismatchError as err:
            raise ShapeMismatchError(f"branch {i}: {err}") from None
    c_axis = fmt.index("C")
    got = [_shapes.channel_dim(s, fmt) for s in shapes]
    if channels is not None:
        for i, (c, want) in enumerate(zip(got, channels)):
            if c == want:
                continue
            msg = (
                f"{where} expects {list(channels)} channels per branch on axis {c_axis} (C) of "
                f"{fmt} maps, but branch {i} has {c}; received shapes {shapes}."
            )
            other = _shapes.other_layout(fmt)
            if [_shapes.channel_dim(s, other) for s in shapes] == list(channels):
                msg += (
                    f" The shapes look like {other}: convert them with "
                    f"{other.lower()}_to_{fmt.lower()}, or pass data_format='{other}' when "
                    "creating the layer."
                )
            else:
                msg += (
                    f" Fix: project branch {i} to {want} channels with ChannelProjection, or "
                    f"build the layer for the channels you have ({got})."
                )
            raise ShapeMismatchError(msg)
    elif len({c for c in got if c is not None}) > 1:
        raise ShapeMismatchError(
            f"{where} combines maps element-wise, so every branch needs the same shape, but "
            f"they differ in C (axis {c_axis} of {fmt} maps): {got}; received shapes {shapes}. "
            "Fix: project them to a common channel count with ChannelProjection."
        )
    hw = [_shapes.spatial_dims(s, fmt) for s in shapes]
    if any(len({v for v in sizes if v is not None}) > 1 for sizes in zip(*hw)):
        sizes = ", ".join(f"{h}x{w}" for h, w in hw)
        raise ShapeMismatchError(
            f"{where} fuses maps pixel by pixel, so every branch needs the same height and "
            f"width; received {sizes} ({fmt} shapes {shapes}). Fix: align them first with "
            "align_and_concat, or resize each map with align_spatial."
        )
    batch = [s[0] for s in shapes]
    if len({n for n in batch if n is not None}) > 1:
        raise ShapeMismatchError(
            f"{where} fuses the branches sample by sample, so they need the same batch size; "
            f"received {batch} (shapes {shapes}). Fix: feed every branch from the same batch."
        )


