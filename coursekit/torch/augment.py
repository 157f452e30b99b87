"""Augmentation that is active only while training, and the lesson-07 digit classifier (PyTorch).

Twin of `coursekit.keras.augment`: same names, same signatures. This module must never import
TensorFlow or Keras.

- `TrainOnly`: wraps a torchvision.transforms.v2 transform (any callable on a CHW tensor) as a
  module that applies it to each sample of a batch in ``train()`` mode and passes the batch
  through unchanged in ``eval()`` mode, the way Keras' preprocessing layers behave.
  (A v2 transform called on a whole (N, C, H, W) batch draws ONE random crop/flip for the
  whole batch; `per_sample=True`, the default, draws one per image.)
- `with_augmentation(model, augment)`: ``nn.Sequential(TrainOnly(augment), model)``.
- `small_cnn`: two conv blocks and a linear classifier for small grey images (8x8 digits).
- `train_digits`: train `small_cnn` (optionally augmented) and report train/test accuracy and
  the overfitting gap as a `coursekit.preprocess.DigitsRun`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..preprocess import DigitsRun, train_digits_with
from ..memo import memoized
from .backend import BACKEND
from .init import init_model

__all__ = ["TrainOnly", "small_cnn", "train_digits", "with_augmentation"]


class TrainOnly(nn.Module):
    """Apply `transform` in training mode only (identity in ``eval()`` mode).

    `per_sample=True` calls `transform` once per image of the (N, C, H, W) batch, so each image
    gets its own random draw; `per_sample=False` calls it once on the whole batch (one draw
    shared by every image, which is what a torchvision v2 transform does with a batch).
    """

    def __init__(self, transform: Callable[[torch.Tensor], torch.Tensor] | None, per_sample: bool = True) -> None:
        super().__init__()
        if transform is not None and not callable(transform):
            raise TypeError(
                f"transform must be callable on a CHW tensor (e.g. a torchvision.transforms.v2 "
                f"transform or v2.Compose); received a {type(transform).__name__}."
            )
        self.transform = transform
        self.per_sample = bool(per_sample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.transform is None:
            return x
        if not self.per_sample:
            return self.transform(x)
        return torch.stack([self.transform(img) for img in x])

    def extra_repr(self) -> str:
        return f"per_sample={self.per_sample}"


def with_augmentation(model: nn.Module, augment: Callable | None, per_sample: bool = True) -> nn.Sequential:
    """`model` with the transform `augment` applied to its input while training: Sequential(TrainOnly, model)."""
    return nn.Sequential(TrainOnly(augment, per_sample=per_sample), model)


def small_cnn(in_channels: int = 1, n_classes: int = 10, width: int = 16, image_size: int = 8,
              seed: int | None = None) -> nn.Sequential:
    """Conv(3x3, width)-ReLU-MaxPool(2) -> Conv(3x3, 2*width)-ReLU-MaxPool(2) -> Linear.

    NCHW input (N, in_channels, image_size, image_size); `image_size` must be a multiple of 4.
    Weights are He-uniform (fan_in, ReLU gain) with zero biases, as in the Keras twin.
    """
    if image_size % 4:
        raise ValueError(f"image_size must be a multiple of 4 (two 2x2 poolings); received {image_size!r}.")
    model = nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * width * (image_size // 4) ** 2, n_classes),
    )
    return init_model(model, "he_uniform", bias=0.0, seed=seed)


@memoized
def train_digits(
    train: tuple[Any, Any],
    test: tuple[Any, Any],
    *,
    augment: Callable | None = None,
    per_sample: bool = True,
    label: str = "",
    epochs: int = 8,
    optimizer: str = "adam",
    lr: float = 1e-3,
    batch_size: int = 64,
    width: int = 16,
    seed: int = 0,
    validate: bool = True,
    progress: bool = False,
) -> DigitsRun:
    """Train a fresh `small_cnn` on `train = (x, y)` (NCHW) and score it on `test`.

    `augment` (a v2 transform, or None) is applied while training only, per image unless
    `per_sample=False`. Seeds torch (initialization, augmentation draws) and the shuffling with
    `seed`. Accuracies are measured in eval mode on clean images; `collapsed` is
    `is_collapsed` on the test images. `validate=False` skips the per-epoch test
    evaluation (the history then holds training metrics only; the final scores are computed
    anyway), which makes many short epochs cheaper.
    """
    return train_digits_with(BACKEND.extended(small_cnn=small_cnn, with_augmentation=with_augmentation), "NCHW", train, test, augment=augment, per_sample=per_sample,
                             label=label, epochs=epochs, optimizer=optimizer, lr=lr, batch_size=batch_size,
                             width=width, seed=seed, validate=validate, progress=progress)
