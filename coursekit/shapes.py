"""Framework-neutral shape rules for concatenating feature maps.

Both `coursekit.torch` and `coursekit.keras` call these before touching a tensor, so a
student sees the same teaching error in either framework.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Sequence

LAYOUTS = ("NCHW", "NHWC")

# Fixes we can suggest, keyed by what differs.
_SPATIAL_FIXES = (
    "bring the larger map down with max/avg pooling or a strided conv, or the smaller one up "
    "with nearest/bilinear upsampling; for a difference of a few pixels, pad or center-crop "
    "(coursekit: align_spatial / align_and_concat)"
)
_CHANNEL_FIX = "project one map with a 1x1 conv (coursekit: ChannelProjection)"


class ShapeMismatchError(ValueError):
    """Raised when feature maps cannot be concatenated or aligned as asked."""


def check_layout(data_format: str) -> str:
    """Return `data_format` upper-cased, or raise if it is not NCHW/NHWC."""
    fmt = str(data_format).upper()
    if fmt not in LAYOUTS:
        raise ValueError(
            f"data_format must be one of {LAYOUTS}; received {data_format!r}. "
            "PyTorch convolutions use 'NCHW' (channels first), Keras uses 'NHWC' (channels last)."
        )
    return fmt


def axis_names(rank: int, data_format: str | None) -> list[str]:
    """Human names for each axis, e.g. ['N', 'C', 'H', 'W'] for a rank-4 NCHW tensor."""
    if rank == 4 and data_format is not None:
        return list(check_layout(data_format))
    return [f"dim{i}" for i in range(rank)]


def normalize_axis(axis: int, rank: int) -> int:
    """Turn a possibly negative `axis` into 0..rank-1, with a clear error when out of range."""
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise TypeError(f"axis must be an int; received {axis!r} of type {type(axis).__name__}.")
    if not -rank <= axis < rank:
        raise ShapeMismatchError(
            f"axis {axis} is out of range for tensors of rank {rank} "
            f"(valid: {-rank}..{rank - 1})."
        )
    return axis % rank


def concat_output_shape(
    shapes: Sequence[Sequence[int | None]], axis: int, data_format: str | None = None
) -> tuple:
    """Shape of concatenating tensors of `shapes` along `axis`.

    The rule: every tensor has the same rank, and all dims are equal except the concat axis,
    whose sizes add up. `None` (an unknown batch size in Keras) matches anything.
    Raises `ShapeMismatchError` naming the shapes, the axis, the layout and a fix.
    """
    shapes = [tuple(s) for s in shapes]
    if len(shapes) < 1:
        raise ShapeMismatchError("concatenation needs at least one tensor; received none.")
    ranks = {len(s) for s in shapes}
    if len(ranks) != 1:
        raise ShapeMismatchError(
            f"all tensors must have the same rank to be concatenated; received shapes {shapes} "
            f"with ranks {[len(s) for s in shapes]}. Add or remove a batch/channel axis first."
        )
    rank = ranks.pop()
    if data_format is not None:
        check_layout(data_format)  # a wrong layout name is an error even when the shapes agree
    ax = normalize_axis(axis, rank)
    out = list(shapes[0])
    for i in range(rank):
        sizes = [s[i] for s in shapes]
        if i == ax:
            out[i] = None if any(v is None for v in sizes) else sum(sizes)
            continue
        known = {v for v in sizes if v is not None}
        if len(known) > 1:
            raise ShapeMismatchError(mismatch_message(shapes, ax, i, data_format))
        out[i] = known.pop() if known else None
    return tuple(out)


def mismatch_message(shapes: Sequence[tuple], axis: int, bad_axis: int, data_format: str | None) -> str:
    """The teaching error for a concat whose `bad_axis` sizes differ."""
    rank = len(shapes[0])
    names = axis_names(rank, data_format)
    layout = f" assuming layout {check_layout(data_format)}" if data_format else ""
    sizes = [s[bad_axis] for s in shapes]
    msg = (
        f"Cannot concatenate along axis {axis} ({names[axis]}){layout}: all dims except the concat "
        f"axis must match, but axis {bad_axis} ({names[bad_axis]}) has sizes {sizes}. "
        f"Received shapes {list(shapes)}."
    )
    name = names[bad_axis]
    if name in ("H", "W"):
        msg += f" Fix: {_SPATIAL_FIXES}."
    elif name == "C":
        msg += f" Fix: concatenate along the channel axis instead, or {_CHANNEL_FIX}."
    elif name == "N":
        msg += " Fix: the branches must see the same batch; check your data pipeline."
    if data_format and rank == 4:
        other = "NHWC" if check_layout(data_format) == "NCHW" else "NCHW"
        if _looks_like_other_layout(shapes, data_format):
            msg += (
                f" Note: these shapes look like {other}, not {check_layout(data_format)}; "
                "convert with nchw_to_nhwc / nhwc_to_nchw."
            )
    return msg


def _looks_like_other_layout(shapes: Sequence[tuple], data_format: str) -> bool:
    """Heuristic: a 'channel' dim larger than both spatial dims of a small square map suggests a
    layout mix-up, e.g. (N, 28, 28, 3) read as NCHW."""
    fmt = check_layout(data_format)
    for s in shapes:
        if len(s) != 4 or None in s:
            continue
        if fmt == "NCHW":
            c, h, w = s[1], s[2], s[3]
        else:
            h, w, c = s[1], s[2], s[3]
        if w in (1, 3, 4) and h > w and c > w and c == h:
            return True
        # The mirror case: an NCHW map (N, 3, 28, 28) read as NHWC puts its few channels on "H"
        # and its square spatial dims on "W" and "C".
        if fmt == "NHWC" and h in (1, 3, 4) and w > h and c > h and c == w:
            return True
    return False


def spatial_dims(shape: Sequence[int], data_format: str) -> tuple[int, int]:
    """(H, W) of a rank-4 shape in `data_format`."""
    fmt = check_layout(data_format)
    if len(shape) != 4:
        raise ShapeMismatchError(
            f"expected a rank-4 feature map ({fmt}); received shape {tuple(shape)} of rank {len(shape)}."
        )
    return (shape[2], shape[3]) if fmt == "NCHW" else (shape[1], shape[2])


def channel_dim(shape: Sequence[int], data_format: str) -> int:
    """C of a rank-4 shape in `data_format`."""
    fmt = check_layout(data_format)
    if len(shape) != 4:
        raise ShapeMismatchError(
            f"expected a rank-4 feature map ({fmt}); received shape {tuple(shape)} of rank {len(shape)}."
        )
    return shape[1] if fmt == "NCHW" else shape[3]


SPATIAL_METHODS = ("maxpool", "avgpool", "nearest", "bilinear", "pad", "crop")


def check_spatial_plan(src_hw: tuple[int, int], dst_hw: tuple[int, int], method: str) -> None:
    """Raise a clear error if `method` cannot take a map of size `src_hw` to `dst_hw`."""
    if method not in SPATIAL_METHODS:
        raise ValueError(
            f"unknown alignment method {method!r}; choose one of {SPATIAL_METHODS} "
            "(or use a strided conv layer: StridedConvAlign)."
        )
    (h, w), (th, tw) = src_hw, dst_hw
    if th < 1 or tw < 1:
        raise ShapeMismatchError(f"target size must be at least 1x1; received {th}x{tw}.")
    if method in ("maxpool", "avgpool"):
        if th > h or tw > w or h % th or w % tw:
            raise ShapeMismatchError(
                f"{method} can only shrink a map by an integer factor: {h}x{w} -> {th}x{tw} is not "
                f"possible. Use 'crop' or 'pad' for small differences, or upsample instead."
            )
    elif method in ("nearest", "bilinear"):
        if th < h or tw < w:
            raise ShapeMismatchError(
                f"{method} upsampling only enlarges a map: {h}x{w} -> {th}x{tw} shrinks it. "
                "Use 'maxpool'/'avgpool' or 'crop' to shrink."
            )
    elif method == "pad":
        if th < h or tw < w:
            raise ShapeMismatchError(
                f"'pad' only enlarges a map: {h}x{w} -> {th}x{tw} shrinks it. Use 'crop' instead."
            )
    elif method == "crop":
        if th > h or tw > w:
            raise ShapeMismatchError(
                f"'crop' only shrinks a map: {h}x{w} -> {th}x{tw} enlarges it. Use 'pad' instead."
            )


def center_offsets(src: int, dst: int) -> tuple[int, int]:
    """(before, after) amounts to pad (dst > src) or crop (dst < src) so the map stays centered.
    An odd difference puts the extra pixel after, as Keras' Cropping2D/ZeroPadding2D users expect."""
    diff = abs(dst - src)
    before = diff // 2
    return before, diff - before


# --- Helpers shared by coursekit.torch.align and coursekit.keras.align -------------------------
# They live here so both frameworks raise word-for-word the same teaching errors.

_LAYOUT_AXES = {
    "NCHW": "(batch, channels, height, width)",
    "NHWC": "(batch, height, width, channels)",
}
_CONVERTERS = {("NCHW", "NHWC"): "nchw_to_nhwc", ("NHWC", "NCHW"): "nhwc_to_nchw"}


def other_layout(data_format: str) -> str:
    """The layout that is not `data_format`: NCHW <-> NHWC."""
    return "NHWC" if check_layout(data_format) == "NCHW" else "NCHW"


def require_rank4(shape: Sequence[int | None], data_format: str, where: str, add_batch: str) -> None:
    """Raise `ShapeMismatchError` unless `shape` has rank 4.

    `where` names the caller in the message; `add_batch` is the framework's spelling of
    "add a batch axis" (e.g. "x.unsqueeze(0)"), the usual fix for a single image.
    """
    fmt = check_layout(data_format)
    shape = tuple(shape)
    if len(shape) == 4:
        return
    raise ShapeMismatchError(
        f"{where} expects a rank-4 {fmt} feature map {_LAYOUT_AXES[fmt]}; received shape {shape} "
        f"of rank {len(shape)}. Fix: a single image has no batch axis yet, add it with "
        f"{add_batch}; a flattened (dense) output must be reshaped back to 4 axes."
    )


def hw_pair(value, name: str) -> tuple[int, int]:
    """`value` as an (H, W) pair of positive ints; a single int means the same on both axes."""
    if _is_int(value):
        pair = (value, value)
    else:
        try:
            pair = tuple(value)
        except TypeError:
            pair = ()
    if len(pair) != 2 or not all(_is_int(v) for v in pair):
        raise TypeError(
            f"{name} must be an int or an (H, W) pair of ints; received {value!r}. "
            f"Example: {name}=(4, 4)."
        )
    pair = (int(pair[0]), int(pair[1]))
    if min(pair) < 1:
        raise ValueError(f"{name} must be positive on both axes; received {value!r}.")
    return pair


def _is_int(v) -> bool:
    # Accept numpy/torch integer scalars too, but not bools or floats such as 2.0.
    if isinstance(v, bool):
        return False
    try:
        operator.index(v)
    except TypeError:
        return False
    return True


def check_channels(shape: Sequence[int | None], expected: int, data_format: str, where: str) -> None:
    """Raise `ShapeMismatchError` unless a rank-4 `shape` has `expected` channels.

    If the count fits the *other* layout, say so: that is the most common cause.
    """
    fmt = check_layout(data_format)
    shape = tuple(shape)
    c = channel_dim(shape, fmt)
    axis = fmt.index("C")
    if c is None:
        raise ShapeMismatchError(
            f"{where} needs to know the channel count (axis {axis}, C, of a {fmt} map) to build its "
            f"weights; received shape {shape}. Fix: give the input a concrete channel size, "
            "e.g. keras.Input(shape=(H, W, C))."
        )
    if c == expected:
        return
    msg = (
        f"{where} expects {expected} input channels on axis {axis} (C) of a {fmt} map; received "
        f"shape {shape}, which has {c} there."
    )
    other = other_layout(fmt)
    if channel_dim(shape, other) == expected:
        msg += (
            f" The shape looks like {other}: convert it with {_CONVERTERS[(other, fmt)]}, "
            f"or pass data_format='{other}' when creating the layer."
        )
    else:
        msg += (
            f" Fix: create the layer with in_channels={c}, or project the map to {expected} "
            "channels first."
        )
    raise ShapeMismatchError(msg)


def check_divisible(hw: tuple[int | None, int | None], factor: tuple[int, int], where: str) -> None:
    """Raise `ShapeMismatchError` if a kernel=stride=`factor` op would silently drop pixels."""
    (h, w), (fh, fw) = hw, factor
    if (h is not None and h % fh) or (w is not None and w % fw):
        raise ShapeMismatchError(
            f"{where} shrinks H by {fh} and W by {fw}, so both must divide evenly; received a "
            f"{h}x{w} map, whose remainder rows/columns would be silently dropped. Fix: crop or "
            "pad the map to a multiple of the factor first, or choose a factor that divides it."
        )


def positive_int(value, name: str) -> int:
    """`value` as a positive int (numpy/torch integer scalars accepted), else a clear error."""
    if not _is_int(value) or int(value) < 1:
        raise ValueError(f"{name} must be a positive int; received {value!r}.")
    return int(value)


def target_index(target, n_maps: int) -> int:
    """Normalize `target` (negative counts from the end) into 0..n_maps-1, else a clear error."""
    if not _is_int(target) or not -n_maps <= int(target) < n_maps:
        raise IndexError(
            f"target={target!r} is not a valid index into the {n_maps} maps; pass an int in "
            f"0..{n_maps - 1} naming the map whose spatial size the others should match."
        )
    return int(target) % n_maps


def target_tip(method: str, src_hw: tuple[int, int], dst_hw: tuple[int, int], all_hw: Sequence[tuple[int, int]]) -> str:
    """A hint for align_and_concat when `method` points the wrong way for one map: which
    `target` index would work for every map. Empty when there is nothing useful to add."""
    (h, w), (th, tw) = src_hw, dst_hw
    if th < 1 or tw < 1:
        raise ShapeMismatchError(f"target size must be at least 1x1; received {th}x{tw}.")
    areas = [a * b for a, b in all_hw]
    if method in ("maxpool", "avgpool", "crop") and (h < th or w < tw):
        k = areas.index(min(areas))
        return (
            f" Tip: {method!r} only shrinks, so make the smallest map the target (target={k}), "
            "or pick an upsampling method."
        )
    if method in ("nearest", "bilinear", "pad") and (h > th or w > tw):
        k = areas.index(max(areas))
        return (
            f" Tip: {method!r} only enlarges, so make the largest map the target (target={k}), "
            "or pick a pooling method."
        )
    return ""


def known_spatial_dims(shape: Sequence[int | None], data_format: str, where: str) -> tuple[int, int]:
    """`spatial_dims`, refusing the unknown (None) height or width of a symbolic Keras input,
    since a resize cannot be planned without it."""
    hw = spatial_dims(shape, data_format)
    if None in hw:
        raise ShapeMismatchError(
            f"{where} needs a known height and width to plan the resize; received shape {tuple(shape)} "
            f"({data_format}). Fix: give the model input a concrete spatial size, e.g. "
            "keras.Input(shape=(32, 32, 3)) instead of shape=(None, None, 3)."
        )
    return hw


def shape_note(x) -> str:
    """' of shape (...) (a single tensor: wrap it in a list)' for a tensor passed where a list was
    expected; empty for anything without a shape."""
    shape = getattr(x, "shape", None)
    return f" of shape {tuple(shape)} (a single tensor: wrap it in a list)" if shape is not None else ""


def align_and_concat_with(api, maps, method: str, target, data_format: str, add_batch: str):
    """The body of both halves' `align_and_concat`: `api` is the framework's align module
    (providing `_as_tensor`, `align_spatial` and `concat`), `data_format` already checked."""
    if not isinstance(maps, (list, tuple)) or len(maps) == 0:
        received = f"an empty {type(maps).__name__}" if isinstance(maps, (list, tuple)) else \
            f"a {type(maps).__name__}{shape_note(maps)}"
        raise TypeError(
            "align_and_concat expects a non-empty list or tuple of feature maps, e.g. "
            f"align_and_concat([a, b]); received {received}."
        )
    maps = [api._as_tensor(m) for m in maps]
    target = target_index(target, len(maps))
    all_hw = []
    for i, m in enumerate(maps):
        try:
            require_rank4(tuple(m.shape), data_format, "align_and_concat", add_batch)
            all_hw.append(known_spatial_dims(tuple(m.shape), data_format, "align_and_concat"))
        except ShapeMismatchError as err:
            raise ShapeMismatchError(f"map {i}{' (the target)' if i == target else ''}: {err}") from err
    dst = all_hw[target]
    check_spatial_plan(dst, dst, method)  # rejects an unknown method once, up front
    aligned = []
    for i, (m, src) in enumerate(zip(maps, all_hw)):
        try:
            aligned.append(api.align_spatial(m, dst, method, data_format))
        except ShapeMismatchError as err:
            raise ShapeMismatchError(
                f"map {i} (shape {tuple(m.shape)}, {src[0]}x{src[1]}) cannot be brought to the "
                f"{dst[0]}x{dst[1]} of map {target} with method {method!r}: {err}"
                + target_tip(method, src, dst, all_hw)
            ) from err
    return api.concat(aligned, axis=None, data_format=data_format)


OUTCOMES = ("ok", "error", "silent")


def snippet_outcome(run: Callable[[], Any], intended: Sequence[int]) -> tuple[str, str]:
    """What a line of fusion code does (lesson 01's exercise 3): ``("error", message)`` if `run()`
    raises; ``("ok", shape)`` if it returns a tensor of the `intended` shape; ``("silent", shape)``
    if it runs and returns another shape: a wrong result that no error announces."""
    try:
        out = run()
    except Exception as err:  # noqa: BLE001 - any error is the outcome we report
        return "error", f"{type(err).__name__}: {str(err).splitlines()[0][:90]}"
    shape = tuple(int(d) for d in out.shape)
    return ("ok" if shape == tuple(intended) else "silent"), str(shape)
