"""Input normalization statistics and augmentation checks, framework-free (numpy only).

Lesson 07 computes per-channel statistics from the TRAINING set, normalizes every split with
them, and checks what an augmentation pipeline did to an image. Nothing here imports torch,
tensorflow or keras; the framework halves (`coursekit.torch.augment`,
`coursekit.keras.augment`) build the pipelines and models.

Convention: `std` is the population standard deviation (``ddof=0``), the one
``torch.std(unbiased=False)``, ``np.std`` and Keras' ``Normalization.adapt`` use. (PyTorch's
``tensor.std()`` defaults to ``ddof=1``; on millions of pixels the two agree to 1e-6, on a
tiny array they do not.)

- `channel_axes`, `channel_stats`, `normalize`: per-channel mean/std over (N, H, W) in
  either layout, and standardization with given statistics.
- `mean_of_image_stds`: the average of per-image standard deviations, the recipe behind the
  widely copied CIFAR-10 constants `CIFAR10_POPULAR_STD`; it is smaller than the pixel std.
- `random_shifts`: a copy of a batch with every image moved by a random whole-pixel shift
  (a test set whose digits are not perfectly centred).
- `center_crop_offsets`: where torchvision's and Keras' CenterCrop start (they differ by one
  pixel when the margin is 3 mod 4).
- `find_shift`: which whole-pixel shift (if any) turns an image into an augmented copy.
- `DigitsRun`, `plot_gap`: the result of training the lesson's small digit classifier, and a
  bar chart of train vs test accuracy for several runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from .history import History

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_POPULAR_STD",
    "CIFAR10_STD",
    "ChannelStats",
    "DigitsRun",
    "MIRROR_DIGITS",
    "MIRROR_OUTCOMES",
    "center_crop_offsets",
    "channel_axes",
    "channel_stats",
    "find_shift",
    "mean_of_image_stds",
    "mirror",
    "mirror_outcome",
    "mirrored_shares",
    "normalize",
    "plot_gap",
    "random_shifts",
]

#: Per-channel mean of CIFAR-10's 50,000 training images, pixels scaled to [0, 1].
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
#: Per-channel (population) standard deviation of the same pixels: the numbers to normalize with.
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
#: The std constants of kuangliu/pytorch-cifar, copied into many tutorials. They reproduce as the
#: MEAN OF PER-IMAGE stds (see `mean_of_image_stds`), which leaves out how much the images'
#: own means differ, so they are about 20% too small: normalized pixels get std ~1.2, not 1.
CIFAR10_POPULAR_STD = (0.2023, 0.1994, 0.2010)

_LAYOUTS = ("NCHW", "NHWC")


class ChannelStats(NamedTuple):
    """Per-channel `mean` and `std`, float64 arrays of shape (C,)."""

    mean: np.ndarray
    std: np.ndarray


def _layout(layout: Any) -> str:
    fmt = layout.upper() if isinstance(layout, str) else None
    if fmt not in _LAYOUTS:
        raise ValueError(
            f"layout must be 'NCHW' or 'NHWC'; received {layout!r}. PyTorch tensors are 'NCHW' "
            "(channels first), Keras tensors and images on disk 'NHWC' (channels last)."
        )
    return fmt


def _as_array(x: Any, what: str = "x") -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    elif hasattr(x, "numpy") and not isinstance(x, np.ndarray):  # tf.Tensor
        x = x.numpy()
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{what} must hold numbers; received dtype {arr.dtype}.")
    return arr


def channel_axes(layout: str = "NCHW") -> tuple[int, int, int]:
    """The axes to reduce for per-channel statistics of a batch: every axis but the channel
    axis, i.e. (0, 2, 3) for NCHW and (0, 1, 2) for NHWC."""
    return (0, 2, 3) if _layout(layout) == "NCHW" else (0, 1, 2)


def _check_batch(arr: np.ndarray, fmt: str, what: str) -> None:
    if arr.ndim != 4:
        raise ValueError(
            f"{what} must be a batch of images, 4-D in layout {fmt}; received shape {arr.shape}. "
            "Add a batch axis (x[None]) for one image, or a channel axis (x[:, None] for NCHW, "
            "x[..., None] for NHWC) for grey images."
        )


def channel_stats(x: Any, layout: str = "NCHW", ddof: int = 0) -> ChannelStats:
    """Per-channel mean and standard deviation of the batch `x` (numpy array or tensor).

    Reduces over samples, height and width (`channel_axes(layout)`), in float64; returns a
    `ChannelStats(mean, std)` of shape (C,) arrays. `ddof=0` (the default) is the population
    std that Keras' Normalization.adapt and torch's BatchNorm use.
    """
    fmt = _layout(layout)
    arr = _as_array(x)
    _check_batch(arr, fmt, "x")
    if not isinstance(ddof, (int, np.integer)) or isinstance(ddof, bool) or ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 (population std) or 1 (sample std); received {ddof!r}.")
    axes = channel_axes(fmt)
    arr = arr.astype(np.float64, copy=False)
    return ChannelStats(arr.mean(axis=axes), arr.std(axis=axes, ddof=int(ddof)))


def _broadcast(values: Any, fmt: str, n_channels: int, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 1:
        v = np.repeat(v, n_channels)
    if v.size != n_channels:
        raise ValueError(
            f"{name} has {v.size} values but x has {n_channels} channels (axis "
            f"{1 if fmt == 'NCHW' else 3} in {fmt}). Pass one value per channel, or check the layout."
        )
    return v.reshape((1, -1, 1, 1) if fmt == "NCHW" else (1, 1, 1, -1))


def normalize(x: Any, mean: Any, std: Any, layout: str = "NCHW") -> np.ndarray:
    """`(x - mean) / std` per channel, as float32; `mean` and `std` hold one value per
    channel (or one for all). Use the TRAINING set's statistics for every split."""
    fmt = _layout(layout)
    arr = _as_array(x)
    _check_batch(arr, fmt, "x")
    c = arr.shape[1] if fmt == "NCHW" else arr.shape[3]
    m = _broadcast(mean, fmt, c, "mean")
    s = _broadcast(std, fmt, c, "std")
    if np.any(s <= 0):
        raise ValueError(f"std must be > 0 for every channel; received {s.ravel().tolist()}.")
    return ((arr.astype(np.float64) - m) / s).astype(np.float32)


def mean_of_image_stds(x: Any, layout: str = "NCHW", ddof: int = 0) -> np.ndarray:
    """The per-channel std of each image, averaged over images: shape (C,).

    This is NOT the std of the data set's pixels. By the law of total variance, pixel variance
    = mean of per-image variances + variance of the per-image means, so this recipe misses the
    second term (and averages std's instead of variances): it is always <= `channel_stats`'s
    std. It reproduces the popular CIFAR-10 constants `CIFAR10_POPULAR_STD`.
    """
    fmt = _layout(layout)
    arr = _as_array(x)
    _check_batch(arr, fmt, "x")
    axes = (2, 3) if fmt == "NCHW" else (1, 2)
    return arr.astype(np.float64).std(axis=axes, ddof=int(ddof)).mean(axis=0)


def random_shifts(x: Any, max_shift: int = 1, layout: str = "NCHW", fill: float = 0.0,
                  seed: int = 0) -> np.ndarray:
    """Each image of the batch `x` moved by its own random shift (dy, dx), each uniform in
    -max_shift..max_shift, the uncovered border filled with `fill`. Same shape and dtype."""
    fmt = _layout(layout)
    arr = _as_array(x)
    _check_batch(arr, fmt, "x")
    k = int(max_shift)
    if k < 0:
        raise ValueError(f"max_shift must be >= 0; received {max_shift!r}.")
    nhwc = arr if fmt == "NHWC" else arr.transpose(0, 2, 3, 1)
    n, h, w, _ = nhwc.shape
    padded = np.pad(nhwc, ((0, 0), (k, k), (k, k), (0, 0)), constant_values=fill)
    offsets = np.random.default_rng(seed).integers(0, 2 * k + 1, size=(n, 2))
    out = np.stack([padded[i, a : a + h, b : b + w] for i, (a, b) in enumerate(offsets)])
    out = out if fmt == "NHWC" else out.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out).astype(arr.dtype, copy=False)


#: Lesson 07's exercise 4: the digits whose mirror image it asks about, and the two outcomes. It
#: leaves out 1, 4 and 9: the claims tests found their shares near one half in some runs.
MIRROR_DIGITS = ("0", "2", "3", "5", "6", "7", "8")
MIRROR_OUTCOMES = ("kept", "lost")


def mirror(x: Any, layout: str = "NCHW") -> np.ndarray:
    """The batch `x` flipped left to right (along the width axis of `layout`), as numpy."""
    fmt = _layout(layout)
    arr = _as_array(x)
    _check_batch(arr, fmt, "x")
    return np.ascontiguousarray(np.flip(arr, axis=3 if fmt == "NCHW" else 2))


def mirrored_shares(predict: Callable[[np.ndarray], Any], x: Any, y: Any, layout: str = "NCHW") -> dict[int, float]:
    """For each class in `y`: the share of its images in `x` that, mirrored left to right, the
    classifier still assigns to that class. `predict` maps a batch to class scores (N, classes)."""
    labels = _as_array(y, "y").astype(int).ravel()
    mirrored = mirror(x, layout)
    if len(labels) != len(mirrored):
        raise ValueError(f"x has {len(mirrored)} images but y has {len(labels)} labels; pass matching arrays.")
    predicted = _as_array(predict(mirrored), "predict(x)").argmax(axis=1)
    return {int(c): float((predicted[labels == c] == c).mean()) for c in np.unique(labels)}


def mirror_outcome(share: float) -> str:
    """'kept' when at least half of a class's mirrored images keep their class, else 'lost'."""
    return MIRROR_OUTCOMES[0] if share >= 0.5 else MIRROR_OUTCOMES[1]


_CROP_CONVENTIONS = ("torchvision", "keras")


def center_crop_offsets(height: int, width: int, size: int | tuple[int, int],
                        convention: str = "torchvision") -> tuple[int, int]:
    """(top, left) of a centre crop of `size` from a `height` x `width` image.

    torchvision rounds half the margin to the nearest integer (Python's round, halves to even):
    ``round((H - h) / 2)``; Keras floors it: ``(H - h) // 2``. They agree unless the margin
    is 3 mod 4 (e.g. 39 -> 32: torchvision starts at 4, Keras at 3).
    """
    if convention not in _CROP_CONVENTIONS:
        raise ValueError(f"convention must be one of {_CROP_CONVENTIONS}; received {convention!r}.")
    th, tw = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if th > height or tw > width:
        raise ValueError(f"cannot centre-crop {th}x{tw} from a {height}x{width} image: the crop is larger.")
    if convention == "torchvision":
        return round((height - th) / 2.0), round((width - tw) / 2.0)
    return (height - th) // 2, (width - tw) // 2


def find_shift(original: Any, augmented: Any, max_shift: int = 1, atol: float = 1e-6) -> tuple[int, int] | None:
    """The whole-pixel shift `(dy, dx)` with `augmented[y, x] == original[y + dy, x + dx]`
    (zero where that falls outside the image), |dy|, |dx| <= max_shift; None if there is none.

    Images are HW, or 3-D with the channel axis first or last (whichever is the smaller); both
    must have the same shape. A mirrored, rescaled or interpolated copy gives None.
    """
    a = _as_array(original, "original").astype(np.float64)
    b = _as_array(augmented, "augmented").astype(np.float64)
    if a.shape != b.shape:
        return None
    if a.ndim == 3:
        if a.shape[0] <= a.shape[-1]:  # CHW -> HWC
            a, b = a.transpose(1, 2, 0), b.transpose(1, 2, 0)
    elif a.ndim == 2:
        a, b = a[:, :, None], b[:, :, None]
    else:
        raise ValueError(f"find_shift compares single images (HW, CHW or HWC); received shape {a.shape}.")
    h, w = a.shape[:2]
    k = int(max_shift)
    padded = np.zeros((h + 2 * k, w + 2 * k, a.shape[2]))
    padded[k : k + h, k : k + w] = a
    for dy in range(-k, k + 1):
        for dx in range(-k, k + 1):
            window = padded[k + dy : k + dy + h, k + dx : k + dx + w]
            if np.allclose(window, b, atol=atol, rtol=0.0):
                return (dy, dx)
    return None


@dataclass
class DigitsRun:
    """One training run of the lesson's digit classifier (`train_digits` in either half).

    `train_accuracy` is measured on the clean (un-augmented) training images in inference mode,
    so `gap = train_accuracy - test_accuracy` is the overfitting gap. `collapsed` is the
    `is_collapsed` report on test images; `extra` holds the model.
    """

    label: str
    history: History
    train_accuracy: float
    test_accuracy: float
    test_loss: float
    collapsed: Any = None
    seconds: float = 0.0
    extra: dict = field(default_factory=dict, repr=False)

    @property
    def gap(self) -> float:
        return self.train_accuracy - self.test_accuracy

    def summary(self) -> str:
        flag = f", collapsed ({self.collapsed.reason})" if self.collapsed else ""
        return (
            f"{self.label:<28} final train loss {self.history.last('loss'):8.4g}  train acc "
            f"{self.train_accuracy:6.1%}  test acc {self.test_accuracy:6.1%}  gap {self.gap:+6.1%}{flag}"
        )

    def __str__(self) -> str:
        return self.summary()


def train_digits_with(api: Any, layout: str, train: tuple[Any, Any], test: tuple[Any, Any], *, augment: Any,
                      per_sample: bool, label: str, epochs: int, optimizer: str, lr: float, batch_size: int,
                      width: int, seed: int, validate: bool, progress: bool) -> DigitsRun:
    """The body of both halves' `train_digits`: `api` is the framework's augment module
    (small_cnn, with_augmentation, fit, evaluate, is_collapsed); `layout` is 'NCHW' or 'NHWC'."""
    from .seeding import seed_everything

    x_train, y_train = train
    x_test, y_test = test
    seed_everything(seed)
    shape = tuple(np.shape(x_train))
    channels, size = (shape[1], shape[2]) if layout == "NCHW" else (shape[3], shape[1])
    net = api.small_cnn(in_channels=channels, n_classes=int(np.max(y_train)) + 1, width=width, image_size=size,
                        seed=seed)
    model = api.with_augmentation(net, augment, per_sample) if augment is not None else net
    start = time.perf_counter()
    val = (x_test, y_test) if validate else None
    history = api.fit(model, (x_train, y_train), val, epochs=epochs, optimizer=optimizer, lr=lr,
                      batch_size=batch_size, seed=seed, progress=progress)
    seconds = time.perf_counter() - start
    train_scores = api.evaluate(model, x_train, y_train)
    test_scores = api.evaluate(model, x_test, y_test)
    return DigitsRun(
        label=label or ("augmented" if augment is not None else "plain"),
        history=history,
        train_accuracy=train_scores["accuracy"],
        test_accuracy=test_scores["accuracy"],
        test_loss=test_scores["loss"],
        collapsed=api.is_collapsed(model, x_test, y=y_test),
        seconds=seconds,
        extra={"model": model},
    )


def plot_gap(runs: Any, title: str = "train vs test accuracy", extra: dict | None = None):
    """Bars of train and test accuracy (and any `extra` {name: [one value per run]}) for a list of
    `DigitsRun` (or a dict label -> run); the gap is written above each pair. Returns the Figure."""
    import matplotlib.pyplot as plt

    items = list(runs.values()) if isinstance(runs, dict) else list(runs)
    series = {"train (clean)": [r.train_accuracy for r in items], "test": [r.test_accuracy for r in items]}
    series.update(extra or {})
    n = len(series)
    x = np.arange(len(items))
    w = 0.8 / n
    fig, ax = plt.subplots(figsize=(1.9 * len(items) + 2.2, 3.2))
    for i, (name, values) in enumerate(series.items()):
        bars = ax.bar(x + (i - (n - 1) / 2) * w, values, w, label=name)
        ax.bar_label(bars, labels=[f"{v:.0%}" for v in values], fontsize=7)
    for xi, r in zip(x, items):
        ax.text(xi, 1.06, f"gap {r.gap:+.1%}", ha="center", fontsize=8)
    ax.set_xticks(x, [r.label for r in items], fontsize=8)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
