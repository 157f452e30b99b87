"""Augmentation that is active only while training, and the lesson-07 digit classifier (Keras 3).

Twin of `coursekit.torch.augment`: same names, same signatures. This module must never import
PyTorch.

Keras' random preprocessing layers (RandomFlip, RandomTranslation, RandomBrightness, ...) are
already "train only": they transform when called with ``training=True`` (inside ``fit``) and
pass images through at inference. Two exceptions to know (Keras 3.15): `RandomCrop` draws ONE
crop position per batch, and at inference it returns its input unchanged instead of a centre
crop (keras-team/keras#21868), so ZeroPadding2D + RandomCrop inside a model changes the image
size between training and inference.

- `TrainOnly`: a layer that applies a list of layers while training and is the identity at
  inference, whatever those layers do at inference (use it for ZeroPadding2D + RandomCrop).
- `with_augmentation(model, augment)`: a Sequential of the augmentation, then `model`.
- `small_cnn`: two conv blocks and a dense classifier for small grey images (8x8 digits).
- `train_digits`: train `small_cnn` (optionally augmented) and report train/test accuracy and
  the overfitting gap as a `coursekit.preprocess.DigitsRun`.
"""

from __future__ import annotations

from typing import Any


from ..preprocess import DigitsRun, train_digits_with
from . import _tf
from ..memo import memoized
from .backend import BACKEND
from .init import init_model

tf, keras = _tf.tf, _tf.keras
layers = keras.layers

__all__ = ["TrainOnly", "small_cnn", "train_digits", "with_augmentation"]


def _as_layer_list(augment: Any) -> list:
    items = list(augment) if isinstance(augment, (list, tuple)) else [augment]
    bad = [type(a).__name__ for a in items if not isinstance(a, keras.layers.Layer)]
    if bad:
        raise TypeError(
            f"augment must be a keras layer or a list of layers (e.g. [layers.RandomTranslation(...)]); "
            f"received {bad}."
        )
    return items


@keras.saving.register_keras_serializable(package="coursekit")
class TrainOnly(keras.layers.Layer):
    """Apply `augment` (a layer or list of layers, in order) when ``training=True``; pass the
    input through unchanged otherwise. The twin of the torch `TrainOnly` module.

    `per_sample` is accepted for symmetry with the torch twin: each Keras layer decides itself
    whether it draws per image (RandomFlip, RandomTranslation) or per batch (RandomCrop).
    """

    def __init__(self, augment: Any = None, per_sample: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.augment = [] if augment is None else _as_layer_list(augment)
        self.per_sample = bool(per_sample)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.augment:
            if not layer.built:
                layer.build(shape)
            shape = tuple(layer.compute_output_shape(shape))
        self.built = True

    def call(self, inputs, training=None):
        if not training:
            return inputs
        out = inputs
        for layer in self.augment:
            out = layer(out, training=True)
        return out

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({
            "augment": [keras.saving.serialize_keras_object(a) for a in self.augment],
            "per_sample": self.per_sample,
        })
        return config

    @classmethod
    def from_config(cls, config: dict) -> TrainOnly:
        config = dict(config)
        config["augment"] = [keras.saving.deserialize_keras_object(a) for a in config.get("augment", [])]
        return cls(**config)


def with_augmentation(model: keras.Model, augment: Any, per_sample: bool = True) -> keras.Sequential:
    """`model` with `augment` applied to its input while training: Sequential(TrainOnly, model)."""
    shape = tuple(model.input_shape[1:])
    return keras.Sequential([keras.Input(shape), TrainOnly(augment, per_sample=per_sample), model])


def small_cnn(in_channels: int = 1, n_classes: int = 10, width: int = 16, image_size: int = 8,
              seed: int | None = None) -> keras.Sequential:
    """Conv(3x3, width)-ReLU-MaxPool(2) -> Conv(3x3, 2*width)-ReLU-MaxPool(2) -> Dense.

    NHWC input (N, image_size, image_size, in_channels); `image_size` must be a multiple of 4.
    Weights are He-uniform (fan_in, ReLU gain) with zero biases, as in the torch twin.
    """
    if image_size % 4:
        raise ValueError(f"image_size must be a multiple of 4 (two 2x2 poolings); received {image_size!r}.")
    model = keras.Sequential([
        keras.Input((image_size, image_size, in_channels)),
        layers.Conv2D(width, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(2 * width, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(n_classes),
    ])
    return init_model(model, "he_uniform", bias=0.0, seed=seed)


@memoized
def train_digits(
    train: tuple[Any, Any],
    test: tuple[Any, Any],
    *,
    augment: Any = None,
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
    """Train a fresh `small_cnn` on `train = (x, y)` (NHWC) and score it on `test`.

    `augment` (a layer, a list of layers, or None) is applied while training only. Seeds
    python, numpy, TensorFlow and Keras (initialization, shuffling) with `seed`; layers built
    with their own `seed=` draw their augmentation from it. Accuracies are measured at
    inference on clean images; `collapsed` is `is_collapsed` on the test images.
    `validate=False` skips the per-epoch test evaluation (the history then holds training
    metrics only; the final scores are computed anyway), which makes many short epochs cheaper.
    """
    return train_digits_with(BACKEND.extended(small_cnn=small_cnn, with_augmentation=with_augmentation), "NHWC", train, test, augment=augment, per_sample=per_sample,
                             label=label, epochs=epochs, optimizer=optimizer, lr=lr, batch_size=batch_size,
                             width=width, seed=seed, validate=validate, progress=progress)
