"""Matplotlib figures the lessons share. Framework-neutral: tensors are converted by duck typing,
and matplotlib is imported only when a figure is drawn."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .grading import to_numpy
from .shapes import check_layout

from .plots_diag import *  # noqa: F401,F403  (training and diagnostics figures)
from .plots_diag import __all__ as _diag_all

__all__ = ["show_feature_maps", "show_images", *_diag_all]


def _as_nchw(x: Any, data_format: str) -> np.ndarray:
    arr = to_numpy(x)
    if arr.ndim == 3:  # a single map without batch axis
        arr = arr[None]
    if arr.ndim != 4:
        raise ValueError(
            f"show_feature_maps expects rank-4 maps ({data_format}) or rank-3 single maps; "
            f"received shape {arr.shape}."
        )
    return arr if check_layout(data_format) == "NCHW" else arr.transpose(0, 3, 1, 2)


def show_feature_maps(
    maps: Mapping[str, Any],
    data_format: str = "NCHW",
    max_channels: int = 6,
    sample: int = 0,
    title: str | None = None,
):
    """One row per named feature map, showing its first channels for one sample.

    Each row is labelled with the map's name and full shape, so the picture and the shape
    arithmetic can be read side by side. Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    if not maps:
        raise ValueError("show_feature_maps needs at least one map; received an empty mapping.")
    rows = {name: _as_nchw(x, data_format) for name, x in maps.items()}
    ncols = min(max_channels, max(a.shape[1] for a in rows.values()))
    fig, axes = plt.subplots(len(rows), ncols, figsize=(1.6 * ncols + 1.2, 1.7 * len(rows)), squeeze=False)
    for r, (name, arr) in enumerate(rows.items()):
        shape = tuple(to_numpy(maps[name]).shape)
        for c in range(ncols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < arr.shape[1]:
                ax.imshow(arr[sample, c], cmap="viridis", interpolation="nearest")
                ax.set_xlabel(f"{arr.shape[2]}x{arr.shape[3]}", fontsize=7)
            else:
                ax.axis("off")
            if c == 0:
                ax.set_ylabel(f"{name}\n{shape}", fontsize=8)
    fig.suptitle(title or f"feature maps ({check_layout(data_format)}), channels 0..{ncols - 1}", fontsize=10)
    fig.tight_layout()
    return fig


def show_images(images: Mapping[str, Any], cmap: str | None = None):
    """A row of HWC or HW images with titles; returns the Figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(images), figsize=(2.4 * len(images), 2.6), squeeze=False)
    for ax, (name, img) in zip(axes[0], images.items()):
        arr = to_numpy(img)
        ax.imshow(arr.squeeze(), cmap=cmap or ("gray" if arr.squeeze().ndim == 2 else None))
        ax.set_title(f"{name}\n{arr.shape}", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig
