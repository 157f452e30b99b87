"""Offline data sets for the lessons, as plain numpy arrays.

Framework-neutral: nothing here imports torch, tensorflow or keras. scikit-learn (and through
it Pillow) is imported inside the functions that need it, so `import coursekit` stays fast.

- `load_digits`: scikit-learn's bundled 8x8 digits, optionally upsampled.
- `make_two_branch`: synthetic two-input data whose branch B lives at a different scale, to
  show what concatenating unnormalized features does.
- `make_shapes` / `make_conditioned`: lesson 09's segmentation task and a task where one input
  modulates the other.
- `sample_images`: scikit-learn's two bundled photos (china.jpg, flower.jpg).
- `load_cifar10` / `write_fake_cifar10`: read (or fake) the official python CIFAR-10 files.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_DIRNAME",
    "CIFAR10_FILES",
    "ConditionedData",
    "DISTRIBUTIONS",
    "TwoBranchData",
    "load_cifar10",
    "load_digits",
    "make_conditioned",
    "make_shapes",
    "make_two_branch",
    "resize_image",
    "sample_images",
    "write_fake_cifar10",
]

_LAYOUTS = ("NCHW", "NHWC")


def _check_layout(layout: Any) -> str:
    fmt = str(layout).upper() if isinstance(layout, str) else None
    if fmt not in _LAYOUTS:
        raise ValueError(
            f"layout must be 'NCHW' or 'NHWC'; received {layout!r}. Use 'NCHW' (channels first) "
            "for PyTorch and 'NHWC' (channels last) for Keras."
        )
    return fmt


def _is_int(value: Any) -> bool:
    # bool is an int subclass, but size=True is always a mistake.
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_test_size(test_size: Any) -> float:
    if (
        isinstance(test_size, (bool, np.bool_))
        or not isinstance(test_size, (int, float, np.integer, np.floating))
        or not 0.0 < float(test_size) < 1.0
    ):
        raise ValueError(
            f"test_size must be a fraction strictly between 0 and 1; received {test_size!r}. "
            "For example test_size=0.25 keeps a quarter of the samples for testing."
        )
    return float(test_size)


def _to_layout(x_nchw: np.ndarray, layout: str) -> np.ndarray:
    if layout == "NCHW":
        return np.ascontiguousarray(x_nchw)
    return np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))


# --------------------------------------------------------------------------------------------
# Digits
# --------------------------------------------------------------------------------------------


def load_digits(
    layout: str = "NCHW",
    test_size: float = 0.25,
    seed: int = 0,
    size: int = 8,
    dtype: Any = "float32",
    normalize: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 1797 handwritten digits as `(x_train, y_train, x_test, y_test)`.

    Images have one channel: (N, 1, size, size) for 'NCHW', (N, size, size, 1) for 'NHWC'.
    `size` must be a positive multiple of 8; larger sizes repeat each pixel (nearest
    upsampling) so lessons get bigger feature maps. With `normalize`, pixels are in [0, 1]
    (the raw data is 0..16). The split is stratified by label and fixed by `seed`.
    Labels are int64.
    """
    fmt = _check_layout(layout)
    frac = _check_test_size(test_size)
    if not _is_int(size) or size < 8 or size % 8:
        raise ValueError(
            f"size must be a positive multiple of 8 (the digits are 8x8 and are upsampled by "
            f"whole-pixel repetition); received {size!r}. Try size=8, 16 or 32."
        )
    out_dtype = np.dtype(dtype)
    if normalize and not np.issubdtype(out_dtype, np.floating):
        raise ValueError(
            f"normalize=True scales pixels to [0, 1], which needs a float dtype; received "
            f"dtype={dtype!r}. Use dtype='float32', or normalize=False for integer pixels."
        )

    from sklearn.datasets import load_digits as _sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = _sk_load_digits()
    images = bunch.images  # (1797, 8, 8) float64 in 0..16
    labels = bunch.target.astype(np.int64)
    if normalize:
        images = images / 16.0
    factor = int(size) // 8
    if factor > 1:
        images = images.repeat(factor, axis=1).repeat(factor, axis=2)
    x = _to_layout(images[:, None, :, :], fmt).astype(out_dtype, copy=False)

    x_train, x_test, y_train, y_test = train_test_split(
        x, labels, test_size=frac, random_state=seed, stratify=labels
    )
    return x_train, y_train, x_test, y_test


# --------------------------------------------------------------------------------------------
# Two-branch synthetic data
# --------------------------------------------------------------------------------------------

DISTRIBUTIONS = ("normal", "uniform", "exponential")


@dataclass(frozen=True)
class TwoBranchData:
    """Inputs for a two-branch network: `x_a` (unit scale), `x_b` (scaled), labels `y`.

    Dict-like: `data["x_a"]`, `data.keys()`, `for key in data`, `dict(data)` and `**data`
    work as for a dict of the fields, but `len(data)` is the number of samples.
    `carrier[i]` says which branch holds sample i's label (0 = A, 1 = B), so a lesson can
    score each half separately. `split(test_size)` returns a stratified `(train, test)` pair;
    `inputs` is `[x_a, x_b]` for a two-input model.
    """

    x_a: np.ndarray
    x_b: np.ndarray
    y: np.ndarray
    carrier: np.ndarray
    n_classes: int = 2
    scale: float = 1.0
    shift: float = 0.0
    distribution: str = "normal"
    layout: str = "NCHW"
    seed: int = 0

    def __repr__(self) -> str:
        return (
            f"TwoBranchData(n={len(self)}, x_a={self.x_a.shape}, x_b={self.x_b.shape}, "
            f"n_classes={self.n_classes}, scale={self.scale}, shift={self.shift}, "
            f"distribution={self.distribution!r}, layout={self.layout!r})"
        )

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def keys(self) -> list[str]:
        """Field names, so that `dict(data)` and `**data` work."""
        return [f.name for f in fields(self) if f.init]

    def __getitem__(self, key: str) -> Any:
        if not isinstance(key, str) or key not in self.keys():
            raise KeyError(
                f"TwoBranchData has keys {self.keys()}; received {key!r}. "
                "Index samples with data.subset(indices) instead."
            )
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def items(self) -> list[tuple[str, Any]]:
        return [(k, getattr(self, k)) for k in self.keys()]

    @property
    def inputs(self) -> list[np.ndarray]:
        """`[x_a, x_b]`, the order a two-input model expects."""
        return [self.x_a, self.x_b]

    def subset(self, indices: Any) -> "TwoBranchData":
        """The samples at `indices` (an index array, slice or boolean mask)."""
        return replace(
            self,
            x_a=self.x_a[indices],
            x_b=self.x_b[indices],
            y=self.y[indices],
            carrier=self.carrier[indices],
        )

    def split(
        self, test_size: float = 0.25, seed: int | None = None
    ) -> tuple["TwoBranchData", "TwoBranchData"]:
        """Stratified `(train, test)` split by label and carrier branch, like scikit-learn's
        (ceil(test_size * n) test samples); `seed` defaults to the data's own."""
        frac = _check_test_size(test_size)
        rng = np.random.default_rng(self.seed if seed is None else seed)
        # Stratify on (label, carrier) so both halves keep the A/B information balance.
        strata = self.y * 2 + self.carrier
        groups = [np.flatnonzero(strata == s) for s in np.unique(strata)]
        # ceil(frac * n) test samples in total, as scikit-learn does; per-stratum rounding
        # would drift, so hand out the leftovers by largest remainder.
        n_test = math.ceil(frac * len(self))
        quotas = np.array([frac * g.size for g in groups])
        counts = np.floor(quotas).astype(int)
        order = np.argsort(-(quotas - counts), kind="stable")
        counts[order[: n_test - counts.sum()]] += 1
        test_idx = []
        for idx, k in zip(groups, counts):
            test_idx.append(rng.permutation(idx)[:k])
        is_test = np.zeros(len(self), dtype=bool)
        is_test[np.concatenate(test_idx)] = True
        if is_test.all() or not is_test.any():
            raise ValueError(
                f"test_size={test_size} leaves an empty train or test set for {len(self)} samples; "
                "use more samples or a test_size nearer 0.5."
            )
        return self.subset(np.flatnonzero(~is_test)), self.subset(np.flatnonzero(is_test))


def _grating(size: int, angle: float, period: float, phase: float) -> np.ndarray:
    """A (size, size) sinusoidal stripe pattern; orientation is visible to a 3x3 conv."""
    r = np.arange(size, dtype=np.float64)
    yy, xx = np.meshgrid(r, r, indexing="ij")
    proj = xx * math.cos(angle) + yy * math.sin(angle)
    return np.cos(2.0 * math.pi * proj / period + phase)


def _quantile_map(z: np.ndarray, distribution: str) -> np.ndarray:
    """Monotone map of `z` onto a mean-0, std-1 sample of `distribution` (ranks are kept, so
    is the label information)."""
    flat = z.ravel()
    # Tied values (e.g. noise=0) share their average rank, so equal inputs stay equal.
    _, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    starts = np.cumsum(counts) - counts
    ranks = (starts + (counts - 1) / 2.0)[inverse.ravel()]
    u = (ranks + 0.5) / flat.size
    if distribution == "normal":
        from scipy.special import ndtri

        out = ndtri(u)
    elif distribution == "uniform":
        out = (u - 0.5) * math.sqrt(12.0)
    else:  # exponential(1) has mean 1 and std 1
        out = -np.log1p(-u) - 1.0
    # Finite samples miss the tails a little; re-standardize so std(x_b) / std(x_a) == scale.
    out = (out - out.mean()) / out.std()
    return out.reshape(z.shape)


def make_two_branch(
    n: int = 512,
    scale: float = 100.0,
    shift: float = 0.0,
    layout: str = "NCHW",
    seed: int = 0,
    image_size: int = 8,
    noise: float = 0.1,
    distribution: str = "normal",
    n_classes: int = 2,
) -> TwoBranchData:
    """Synthetic images for two branches whose scales differ by `scale`.

    Each sample's label is drawn as a stripe pattern (one orientation per class) into exactly
    one branch, chosen at random half the time each (`carrier`); the other branch shows only
    noise for that sample. So each branch alone reaches about `0.5 + 0.5 / n_classes`
    accuracy and both together nearly 100%: a fused model that ignores either branch loses
    half the information.

    Branch A is standardized (mean 0, std 1). Branch B is mapped monotonically onto a
    standardized `distribution` ('normal', 'uniform' or 'exponential'), then multiplied by
    `scale` and offset by `shift`, so its std is `scale` times A's. Shapes are
    (n, 1, image_size, image_size) for 'NCHW' and (n, image_size, image_size, 1) for 'NHWC';
    arrays are float32, labels int64. Deterministic given `seed`.
    """
    fmt = _check_layout(layout)
    if not _is_int(n_classes) or n_classes < 2:
        raise ValueError(
            f"n_classes must be an int >= 2; received {n_classes!r}. Use 2 for a binary task."
        )
    if not _is_int(n) or n < 2 * n_classes:
        raise ValueError(
            f"n must be an int of at least 2 * n_classes = {2 * n_classes} (every class needs a "
            f"sample in each branch); received {n!r}."
        )
    if not _is_int(image_size) or image_size < 4:
        raise ValueError(
            f"image_size must be an int >= 4 (the stripe patterns need a few pixels); "
            f"received {image_size!r}."
        )
    for name, value in (("scale", scale), ("shift", shift), ("noise", noise)):
        if (
            isinstance(value, (bool, np.bool_))
            or not isinstance(value, (int, float, np.integer, np.floating))
            or not math.isfinite(value)
        ):
            raise ValueError(f"{name} must be a finite number; received {value!r}.")
    if scale <= 0:
        raise ValueError(
            f"scale must be > 0 (it multiplies branch B's features); received {scale!r}. "
            "Use scale=1.0 for branches on the same scale."
        )
    if noise < 0:
        raise ValueError(f"noise must be >= 0 (it is a standard deviation); received {noise!r}.")
    if distribution not in DISTRIBUTIONS:
        raise ValueError(
            f"distribution must be one of {DISTRIBUTIONS}; received {distribution!r}."
        )
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative int; received {seed!r}.")

    n, n_classes, size = int(n), int(n_classes), int(image_size)
    rng = np.random.default_rng(seed)
    # Balanced labels and carriers, then shuffled, so small n still has every (class, branch).
    y = np.arange(n, dtype=np.int64) % n_classes
    rng.shuffle(y)
    carrier = np.zeros(n, dtype=np.int64)
    for k in range(n_classes):
        idx = np.flatnonzero(y == k)
        carrier[idx[rng.permutation(idx.size)[: idx.size // 2]]] = 1

    # Patterns are fixed (not seeded) so that different seeds give new samples of one task.
    # B's orientations sit halfway between A's and use another period, so the branches differ.
    angles = np.arange(n_classes) * math.pi / n_classes
    pat_a = np.stack([_grating(size, a, 4.0, math.pi / 4) for a in angles])
    offset = math.pi / (2 * n_classes)
    pat_b = np.stack([_grating(size, a + offset, 3.0, math.pi / 3) for a in angles])

    z_a = (carrier == 0)[:, None, None] * pat_a[y] + noise * rng.standard_normal((n, size, size))
    z_b = (carrier == 1)[:, None, None] * pat_b[y] + noise * rng.standard_normal((n, size, size))

    a = (z_a - z_a.mean()) / z_a.std()
    b = _quantile_map(z_b, distribution) * float(scale) + float(shift)

    return TwoBranchData(
        x_a=_to_layout(a[:, None].astype(np.float32), fmt),
        x_b=_to_layout(b[:, None].astype(np.float32), fmt),
        y=y,
        carrier=carrier,
        n_classes=n_classes,
        scale=float(scale),
        shift=float(shift),
        distribution=distribution,
        layout=fmt,
        seed=int(seed),
    )


# --------------------------------------------------------------------------------------------
# Sample photos
# --------------------------------------------------------------------------------------------


def _resize_axis(img: np.ndarray, axis: int, new: int) -> np.ndarray:
    old = img.shape[axis]
    if new == old:
        return img
    if new > old:
        # Nearest: output pixel i samples the source pixel whose span contains its center.
        idx = np.minimum(((np.arange(new) + 0.5) * old / new).astype(np.int64), old - 1)
        return np.take(img, idx, axis=axis)
    # Area: average the source pixels falling in each output bin (no aliasing when shrinking).
    starts = (np.arange(new) * old) // new
    counts = np.diff(np.append(starts, old))
    sums = np.add.reduceat(img, starts, axis=axis)
    shape = [1] * img.ndim
    shape[axis] = new
    return sums / counts.reshape(shape)


def resize_image(image: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    """Resize an HW or HWC array to `size=(h, w)` (an int means square) with numpy only:
    area averaging along axes that shrink, nearest neighbour along axes that grow.
    Float images keep their dtype; integer images come back as float32."""
    h, w = _check_hw(size)
    arr = np.asarray(image)
    if arr.ndim not in (2, 3):
        raise ValueError(
            f"resize_image expects an HW or HWC image; received shape {arr.shape}."
        )
    # Averaging needs floats; integer images come back as float32.
    out_dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.dtype(np.float32)
    out = _resize_axis(_resize_axis(arr.astype(np.float64), 0, h), 1, w)
    return out.astype(out_dtype, copy=False)


def _check_hw(size: Any) -> tuple[int, int]:
    if _is_int(size):
        size = (size, size)
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(_is_int(s) and s > 0 for s in size)
    ):
        raise ValueError(
            f"size must be (height, width) with positive ints, or one int for a square; "
            f"received {size!r}. Example: size=(64, 96)."
        )
    return int(size[0]), int(size[1])


def sample_images(size: int | Sequence[int] | None = None) -> list[np.ndarray]:
    """scikit-learn's bundled photos [china, flower] as float32 HWC arrays in [0, 1].

    The originals are 427x640x3; `size=(h, w)` resizes them with `resize_image`.
    Needs Pillow (scikit-learn uses it to decode the JPEGs).
    """
    hw = None if size is None else _check_hw(size)
    from sklearn.datasets import load_sample_images

    images = []
    for img in load_sample_images().images:  # sorted by name: china.jpg, flower.jpg
        x = np.asarray(img, dtype=np.float32) / np.float32(255.0)
        if hw is not None:
            x = np.clip(resize_image(x, hw), 0.0, 1.0).astype(np.float32, copy=False)
        images.append(x)
    return images


# --------------------------------------------------------------------------------------------
# CIFAR-10
# --------------------------------------------------------------------------------------------

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR10_DIRNAME = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_FILES = (*CIFAR10_TRAIN_FILES, "test_batch")
_CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
_PIXELS = 3 * 32 * 32


class _CifarUnpickler(pickle.Unpickler):
    """Refuses every global except what numpy arrays need: a CIFAR batch is only dicts, lists,
    bytes and one uint8 array, so a file asking for anything else is not one (and unpickling
    an arbitrary file could otherwise run code)."""

    _ALLOWED = {
        # Protocol-2 pickles written by Python 3 encode bytes through _codecs.encode.
        ("_codecs", "encode"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name}")
        # Files written under numpy 1.x name numpy.core, which numpy 2 only keeps as a shim.
        module = module.replace("numpy.core.", "numpy._core.") if hasattr(np, "_core") else module
        return super().find_class(module, name)


def _resolve_cifar_dir(root: str | Path) -> Path:
    root = Path(root).expanduser()
    nested = root / CIFAR10_DIRNAME
    folder = nested if nested.is_dir() else root
    missing = [name for name in CIFAR10_FILES if not (folder / name).is_file()]
    if missing:
        if not root.exists():
            where = f"{root} (this path does not exist)"
        elif folder == root:
            where = f"{root} (it has no {CIFAR10_DIRNAME!r} subfolder either)"
        else:
            where = str(folder)
        raise FileNotFoundError(
            f"CIFAR-10 files not found: looked in {where}, missing {missing}. Expected the "
            f"folder {CIFAR10_DIRNAME!r} holding {list(CIFAR10_FILES)} (plus batches.meta). "
            f"coursekit never downloads data: download cifar-10-python.tar.gz by hand from "
            f"{_CIFAR10_URL}, extract it with `tar xzf cifar-10-python.tar.gz`, and pass the "
            f"extracted {CIFAR10_DIRNAME!r} folder or its parent as root."
        )
    return folder


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as fh:
            # The official files are Python 2 pickles; 'bytes' keeps their str keys as bytes.
            batch = _CifarUnpickler(fh, encoding="bytes").load()
    except Exception as exc:  # any failure to unpickle means the file is not a valid batch
        raise ValueError(
            f"{path} is not a readable CIFAR-10 python batch ({type(exc).__name__}: {exc}). "
            f"The file may be truncated or corrupted: re-extract cifar-10-python.tar.gz "
            f"(from {_CIFAR10_URL})."
        ) from exc

    def get(key: str) -> Any:
        # Re-pickled copies made under Python 3 may use str keys instead of bytes.
        for k in (key.encode(), key):
            if isinstance(batch, dict) and k in batch:
                return batch[k]
        raise ValueError(
            f"{path} is not a CIFAR-10 python batch: expected a dict with keys b'data' and "
            f"b'labels', got {type(batch).__name__}"
            + (f" with keys {sorted(map(repr, batch))}" if isinstance(batch, dict) else "")
            + ". Re-extract cifar-10-python.tar.gz."
        )

    data, labels = get("data"), get("labels")
    data = np.asarray(data)
    labels = np.asarray(labels)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS:
        raise ValueError(
            f"{path}: b'data' must be a uint8 array of shape (N, {_PIXELS}); received "
            f"{data.dtype} array of shape {data.shape}. Re-extract cifar-10-python.tar.gz."
        )
    if (
        labels.ndim != 1
        or labels.shape[0] != data.shape[0]
        or not np.issubdtype(labels.dtype, np.integer)
    ):
        raise ValueError(
            f"{path}: b'labels' must be {data.shape[0]} integers (one per image); received "
            f"{labels.dtype} array of shape {labels.shape}."
        )
    if labels.size and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        raise ValueError(
            f"{path}: labels must lie in 0..{len(CIFAR10_CLASSES) - 1}; received values "
            f"{labels.min()}..{labels.max()}."
        )
    return data, labels.astype(np.int64)


def _cifar_images(data: np.ndarray, layout: str, dtype: Any, normalize: bool) -> np.ndarray:
    # Each row stores the red plane, then green, then blue, each 32x32 row-major: that is NCHW.
    x = data.reshape(-1, 3, 32, 32)
    x = _to_layout(x, layout)
    if normalize:
        return (x.astype(dtype) / np.asarray(255, dtype=dtype)).astype(dtype, copy=False)
    return x.astype(dtype, copy=False)


def load_cifar10(
    root: str | Path,
    layout: str = "NCHW",
    limit: int | None = None,
    *,
    dtype: Any = "float32",
    normalize: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CIFAR-10 from the official python files as `(x_train, y_train, x_test, y_test)`.

    `root` is the extracted `cifar-10-batches-py` folder or its parent. Images are
    (N, 3, 32, 32) for 'NCHW' or (N, 32, 32, 3) for 'NHWC', float32 in [0, 1] (uint8 0..255
    with `normalize=False, dtype='uint8'`); labels are int64 indices into `CIFAR10_CLASSES`.
    `limit` keeps the first `limit` training and the first `limit` test images (only the
    batches needed are read). Nothing is downloaded: a missing folder raises
    FileNotFoundError saying where to get the archive.
    """
    fmt = _check_layout(layout)
    if limit is not None and (not _is_int(limit) or limit < 1):
        raise ValueError(
            f"limit must be None (all images) or a positive int; received {limit!r}."
        )
    out_dtype = np.dtype(dtype)
    if normalize and not np.issubdtype(out_dtype, np.floating):
        raise ValueError(
            f"normalize=True scales pixels to [0, 1], which needs a float dtype; received "
            f"dtype={dtype!r}. Use normalize=False with dtype='uint8' for raw pixels."
        )
    folder = _resolve_cifar_dir(root)

    xs, ys, have = [], [], 0
    for name in CIFAR10_TRAIN_FILES:
        if limit is not None and have >= limit:
            break
        data, labels = _read_cifar_batch(folder / name)
        xs.append(data)
        ys.append(labels)
        have += data.shape[0]
    x_train = np.concatenate(xs)[:limit]
    y_train = np.concatenate(ys)[:limit]
    x_test, y_test = _read_cifar_batch(folder / "test_batch")
    x_test, y_test = x_test[:limit], y_test[:limit]
    return (
        _cifar_images(x_train, fmt, out_dtype, normalize),
        y_train,
        _cifar_images(x_test, fmt, out_dtype, normalize),
        y_test,
    )


def write_fake_cifar10(
    root: str | Path, n_train_per_batch: int = 10, n_test: int = 10, seed: int = 0
) -> Path:
    """Write a tiny, valid CIFAR-10 python file set to `root/cifar-10-batches-py`; return it.

    Random uint8 pixels and labels cycling through the 10 classes, pickled with bytes keys
    like the official Python 2 files, so `load_cifar10(root)` can be tried without the
    170 MB download.
    """
    for name, value in (("n_train_per_batch", n_train_per_batch), ("n_test", n_test)):
        if not _is_int(value) or value < 1:
            raise ValueError(f"{name} must be a positive int; received {value!r}.")
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative int; received {seed!r}.")
    folder = Path(root).expanduser() / CIFAR10_DIRNAME
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_classes = len(CIFAR10_CLASSES)

    def batch(label: str, n: int, offset: int) -> dict:
        labels = [int(v) for v in (offset + np.arange(n)) % n_classes]
        return {
            b"batch_label": label.encode(),
            b"labels": labels,
            b"data": rng.integers(0, 256, size=(n, _PIXELS), dtype=np.uint8),
            b"filenames": [f"fake_{offset + i:06d}.png".encode() for i in range(n)],
        }

    # Protocol 2 matches the official files (written by Python 2's cPickle).
    for i, name in enumerate(CIFAR10_TRAIN_FILES):
        n = int(n_train_per_batch)
        b = batch(f"training batch {i + 1} of 5", n, i * n)
        (folder / name).write_bytes(pickle.dumps(b, protocol=2))
    test = batch("testing batch 1 of 1", int(n_test), 0)
    (folder / "test_batch").write_bytes(pickle.dumps(test, protocol=2))
    meta = {
        b"label_names": [c.encode() for c in CIFAR10_CLASSES],
        b"num_cases_per_batch": int(n_train_per_batch),
        b"num_vis": _PIXELS,
    }
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def edge_kernels() -> np.ndarray:
    """Four fixed 3x3 filters, (4, 3, 3) float32: identity, horizontal edge, vertical edge, blur.

    Lessons run a photo through them to get feature maps a person can read, in either layout
    (PyTorch weight (4, 1, 3, 3) = `k[:, None]`; Keras kernel (3, 3, 1, 4) = `k.transpose(1, 2, 0)[:, :, None]`).
    """
    identity = np.zeros((3, 3))
    identity[1, 1] = 1.0
    sobel_h = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]]) / 4.0
    return np.stack([identity, sobel_h, sobel_h.T, np.full((3, 3), 1 / 9)]).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Lesson 09: shapes to segment, and a task where one input modulates the other
# --------------------------------------------------------------------------------------------


def _check_count(name: str, value: Any, minimum: int, hint: str) -> int:
    if not _is_int(value) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; received {value!r}. {hint}")
    return int(value)


def make_shapes(
    n: int = 512, size: int = 25, layout: str = "NCHW", seed: int = 0, noise: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Images of 1 to 3 filled shapes (disks, squares, triangles) and their masks.

    Returns `(x, mask)`: `x` float32 of shape (n, 1, size, size) for 'NCHW' or
    (n, size, size, 1) for 'NHWC' (shapes of brightness 1 to 2 on a dark, noisy background,
    standardized); `mask` float32 of the same shape, 1 where a shape covers the pixel. Shapes
    are 2 to 6 pixels in radius, so their outlines need full-resolution features: this is
    the segmentation task of lesson 09's U-Net. Deterministic given `seed`.
    """
    fmt = _check_layout(layout)
    n = _check_count("n", n, 1, "Ask for at least one image.")
    size = _check_count("size", size, 12, "Shapes 2-6 px in radius need an image of 12 px or more.")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    x = np.zeros((n, 1, size, size), np.float32)
    mask = np.zeros((n, 1, size, size), np.float32)
    for i in range(n):
        for _ in range(int(rng.integers(1, 4))):
            r = rng.uniform(2.0, 6.0)
            cy, cx = rng.uniform(r, size - r, size=2)
            kind = int(rng.integers(3))
            if kind == 0:
                inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            elif kind == 1:
                inside = (np.abs(yy - cy) <= r * 0.8) & (np.abs(xx - cx) <= r * 0.8)
            else:  # an upright triangle: below its apex, inside two slanted edges
                inside = (yy >= cy - r) & (yy <= cy + r * 0.7) & (np.abs(xx - cx) <= (yy - cy + r) * 0.6)
            shade = rng.uniform(1.0, 2.0)
            x[i, 0] = np.where(inside, shade, x[i, 0])
            mask[i, 0] = np.maximum(mask[i, 0], inside)
    x += rng.normal(0.0, noise, x.shape).astype(np.float32)
    x = (x - x.mean()) / x.std()
    return _to_layout(x.astype(np.float32), fmt), _to_layout(mask, fmt)


@dataclass(frozen=True)
class ConditionedData:
    """Images `x` with two channels, a condition `c` (one-hot, which channel to read) and `y`.

    Each channel shows a stripe pattern of its own orientation (one of `n_classes`); the label
    is the orientation in the channel that `c` names. So the condition must *modulate* what
    the image features mean — the task of FiLM. `inputs` is `[x, c]`.
    """

    x: np.ndarray
    c: np.ndarray
    y: np.ndarray
    layout: str = "NCHW"
    seed: int = 0

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __repr__(self) -> str:
        return f"ConditionedData(n={len(self)}, x={self.x.shape}, c={self.c.shape}, layout={self.layout!r})"

    @property
    def inputs(self) -> list[np.ndarray]:
        """`[x, c]`, the order a two-input model expects."""
        return [self.x, self.c]

    def subset(self, indices: Any) -> "ConditionedData":
        """The samples at `indices`."""
        return replace(self, x=self.x[indices], c=self.c[indices], y=self.y[indices])

    def split(self, test_size: float = 0.25, seed: int | None = None) -> tuple["ConditionedData", "ConditionedData"]:
        """A random `(train, test)` split with ceil(test_size * n) test samples."""
        frac = _check_test_size(test_size)
        order = np.random.default_rng(self.seed if seed is None else seed).permutation(len(self))
        n_test = math.ceil(frac * len(self))
        if n_test >= len(self):
            raise ValueError(f"test_size={test_size} leaves no training sample out of {len(self)}; use more samples.")
        return self.subset(np.sort(order[n_test:])), self.subset(np.sort(order[:n_test]))


def make_conditioned(
    n: int = 512, layout: str = "NCHW", seed: int = 0, image_size: int = 8, noise: float = 0.2, n_classes: int = 4,
    channels: int = 2,
) -> ConditionedData:
    """A task where one input (`c`) decides how to read the other (`x`); see `ConditionedData`.

    Both channels carry an independent orientation; `c` (float32, shape (n, 2)) is one-hot and
    picks the channel whose orientation is the label, so neither input alone beats chance
    (1 / n_classes) by much. Deterministic given `seed`.
    """
    fmt = _check_layout(layout)
    n = _check_count("n", n, 2, "Ask for at least two samples.")
    n_classes = _check_count("n_classes", n_classes, 2, "Use 2 or more orientations.")
    image_size = _check_count("image_size", image_size, 4, "The stripe patterns need a few pixels.")
    rng = np.random.default_rng(seed)
    angles = np.arange(n_classes) * np.pi / n_classes
    channels = _check_count("channels", channels, 2, "The condition picks one of at least two channels.")
    labels = rng.integers(0, n_classes, size=(n, channels))
    x = np.zeros((n, channels, image_size, image_size), np.float32)
    for i in range(n):
        for ch in range(channels):
            x[i, ch] = _grating(image_size, angles[labels[i, ch]], period=3.0, phase=rng.uniform(0, 2 * np.pi))
    x += rng.normal(0.0, noise, x.shape).astype(np.float32)
    x = (x - x.mean()) / x.std()
    which = rng.integers(0, channels, size=n)
    c = np.eye(channels, dtype=np.float32)[which]
    y = labels[np.arange(n), which].astype(np.int64)
    return ConditionedData(x=_to_layout(x.astype(np.float32), fmt), c=c, y=y, layout=fmt, seed=seed)
