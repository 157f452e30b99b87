"""Lesson 09's experiments in Keras: a small U-Net, a conditioned classifier, and counters.

Twin of `coursekit.torch.architectures`. The layers themselves are in `coursekit.keras.blocks`;
the arithmetic the counts are checked against is in `coursekit.architectures`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ._tf import keras
from ..architectures import ArchRun, boundary_accuracy, iou
from ..data import ConditionedData, make_conditioned, make_shapes
from ..seeding import seed_everything
from ..memo import memoized
from .align import align_spatial
from .blocks import FiLM, GatedFusion
from .models import count_params
from .train import fit, predict

layers, ops = keras.layers, keras.ops

__all__ = ["SKIPS", "CONDITIONINGS", "MiniUNet", "ConditionedNet", "run_unet", "run_conditioned",
           "saved_activation_bytes", "count_flops"]

SKIPS = ("concat", "add", "none")
CONDITIONINGS = ("concat", "film", "gated")


def _choice(name: str, value: Any, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {list(options)}; received {value!r}.")
    return value


def MiniUNet(skip: str = "concat", width: int = 8, align: str = "pad", size: int | None = None) -> keras.Model:
    """A one-level U-Net (functional model, NHWC): full-resolution encoder, a half-resolution
    middle, a decoder that upsamples and fuses the encoder's map through the skip connection
    (`skip`: 'concat', 'add' or 'none'), then one logit per pixel. An odd input size makes the
    upsampled decoder map one pixel smaller than the encoder's: `align` ('pad' the decoder or
    'crop' the encoder, the original U-Net's choice) makes them match. Keras needs the input
    `size` to know the shapes; None means 25."""
    _choice("skip", skip, SKIPS)
    _choice("align", align, ("pad", "crop"))
    size = 25 if size is None else size
    x = keras.Input((size, size, 1))
    e = layers.Conv2D(width, 3, padding="same", activation="relu", name="enc")(x)
    m = layers.MaxPooling2D(2)(e)
    m = layers.Conv2D(2 * width, 3, padding="same", activation="relu", name="mid1")(m)
    m = layers.Conv2D(2 * width, 3, padding="same", activation="relu", name="mid2")(m)
    u = layers.UpSampling2D(2, interpolation="nearest")(m)
    u = layers.Conv2D(width, 1, name="up")(u)
    if align == "pad":
        u = layers.Lambda(lambda t: align_spatial(t, (size, size), "pad"))(u)
    else:
        hw = (size // 2) * 2
        e = layers.Lambda(lambda t: align_spatial(t, (hw, hw), "crop"))(e)
    if skip == "concat":
        d = layers.Concatenate()([e, u])
    elif skip == "add":
        d = layers.Add()([e, u])
    else:
        d = u
    d = layers.Conv2D(width, 3, padding="same", activation="relu", name="dec")(d)
    return keras.Model(x, layers.Conv2D(1, 1, name="head")(d), name=f"mini_unet_{skip}")


class _TileCondition(layers.Layer):
    """c (N, D) -> (N, H, W, D), the H and W of a reference map."""

    def call(self, h, c):
        shape = ops.shape(h)
        return ops.broadcast_to(c[:, None, None, :], (shape[0], shape[1], shape[2], ops.shape(c)[1]))


def ConditionedNet(fusion: str = "film", width: int = 16, in_channels: int = 2, cond_dim: int = 2,
                   n_classes: int = 4, image_size: int = 8) -> keras.Model:
    """Classify `x` as the condition `c` says (functional model with inputs [x, c]): a 3x3 conv
    stem on `x`, then `c` fused in by `fusion` ('concat': c tiled into constant channels and
    concatenated; 'film': `FiLM`; 'gated': `GatedFusion`), a 3x3 conv, global average pooling
    and a linear classifier."""
    _choice("fusion", fusion, CONDITIONINGS)
    x = keras.Input((image_size, image_size, in_channels))
    c = keras.Input((cond_dim,))
    h = layers.Conv2D(width, 3, padding="same", activation="relu", name="stem")(x)
    if fusion == "concat":
        h = layers.Concatenate()([h, _TileCondition()(h, c)])
    elif fusion == "film":
        h = FiLM(cond_dim, width, name="condition")(h, c)
    else:
        h = GatedFusion(cond_dim, width, name="condition")(h, c)
    h = layers.Conv2D(width, 3, padding="same", activation="relu", name="conv")(h)
    out = layers.Dense(n_classes, name="classifier")(layers.GlobalAveragePooling2D()(h))
    return keras.Model([x, c], out, name=f"conditioned_{fusion}")


@memoized
def run_unet(skip: str = "concat", *, n: int = 1024, epochs: int = 8, size: int = 25, width: int = 8,
             lr: float = 3e-3, seed: int = 0, label: str | None = None) -> ArchRun:
    """Train `MiniUNet(skip)` on `make_shapes` (75/25 split) with Adam and a per-pixel BCE loss;
    the score is the test IoU, the curve the test pixel accuracy after every epoch,
    and ``extra['boundary']`` the test accuracy on the outlines (`boundary_accuracy`)."""
    x, mask = make_shapes(n=n, size=size, layout="NHWC", seed=seed)
    n_test = n // 4
    seed_everything(seed)
    model = MiniUNet(skip=skip, width=width, size=size)
    start = time.perf_counter()
    hist = fit(model, (x[n_test:], mask[n_test:]), (x[:n_test], mask[:n_test]), epochs=epochs, lr=lr, loss="bce",
               seed=seed, progress=False)
    seconds = time.perf_counter() - start
    logits = predict(model, x[:n_test])
    steps = -(-(n - n_test) // 64)
    return ArchRun(label=label or f"U-Net skip={skip}", metric="IoU", score=iou(logits > 0, mask[:n_test]),
                   curve=[float(v) for v in hist["val_accuracy"]], steps_per_point=steps,
                   n_params=count_params(model), seconds=seconds,
                   extra={"model": model, "boundary": boundary_accuracy(logits > 0, mask[:n_test])})


@memoized
def run_conditioned(fusion: str = "film", *, data: ConditionedData | None = None, n: int = 1024, epochs: int = 8,
                    width: int = 16, lr: float = 1e-2, seed: int = 0, label: str | None = None) -> ArchRun:
    """Train `ConditionedNet(fusion)` on `make_conditioned` (75/25 split) with Adam; the score is
    the final test accuracy and the curve the test accuracy after every epoch."""
    data = data if data is not None else make_conditioned(n=n, layout="NHWC", seed=seed)
    train, test = data.split(0.25, seed=seed)
    seed_everything(seed)
    model = ConditionedNet(fusion=fusion, width=width, in_channels=data.c.shape[1], cond_dim=data.c.shape[1],
                           image_size=int(data.x.shape[1]))
    start = time.perf_counter()
    hist = fit(model, (train.inputs, train.y), (test.inputs, test.y), epochs=epochs, lr=lr, batch_size=32, seed=seed,
               progress=False)
    seconds = time.perf_counter() - start
    curve = [float(v) for v in hist["val_accuracy"]]
    return ArchRun(label=label or f"{fusion}", metric="accuracy", score=curve[-1], curve=curve,
                   steps_per_point=-(-len(train) // 32), n_params=count_params(model), seconds=seconds,
                   extra={"model": model})


def saved_activation_bytes(module: Any, x: Any) -> int:
    """Keras keeps no inspectable list of what the backward pass will read (TensorFlow's tape
    decides inside its C++ runtime), so this twin raises; the PyTorch half measures it."""
    raise NotImplementedError(
        "saved_activation_bytes counts what autograd saves, which only PyTorch exposes "
        "(torch.autograd.graph.saved_tensors_hooks). In Keras use the analytic count: "
        "coursekit.architectures.dense_block_saved_floats."
    )


def count_flops(module: Any, *inputs: Any) -> int:
    """Forward FLOPs of ``module(*inputs)`` from TensorFlow's own profiler (float ops of the
    traced graph, counted per multiply and per add as torch's counter does for convs)."""
    from ._tf import tf
    from tensorflow.python.profiler import model_analyzer, option_builder

    specs = [tf.TensorSpec(np.shape(i), tf.float32) for i in inputs]
    graph = tf.function(lambda *t: module(*t)).get_concrete_function(*specs).graph
    opts = option_builder.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    info = model_analyzer.profile(graph, options=opts)
    return int(info.total_float_ops)
