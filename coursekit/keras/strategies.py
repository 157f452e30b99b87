"""Comparing fusion strategies (lesson 04), in Keras 3 (TensorFlow backend).

Twin of `coursekit.torch.strategies`: same names, same signatures. It adds what the fusion
layers in `coursekit.keras.fusion` do not cover: the article's complementary weight
``w * a + (1 - w) * b`` (a layer weight, but unconstrained), a two-branch net around any fusion
layer, a training run with such a net that records the fusion weights before and after, and
readers for what a trained SE or attention gate does per sample.
This module must never import PyTorch.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ._tf import keras  # first: silences TensorFlow's start-up noise
from keras import layers, ops

from coursekit.branches import _as_list, _check_branches

from ..data import TwoBranchData
from ..experiments import (FusionRun, FusionWeighting, by_carrier, fusion_weighting_with, fusion_weights,
                           run_custom_fusion_with)
from ..models import check_two_branch_options
from .align import _ADD_BATCH, _as_tensor, _layout
from .backend import BACKEND
from .fusion import _NORM_MAP, AttentionGateFusion, SEFusion
from .models import two_branch_net


__all__ = [
    "ComplementWeightFusion",
    "attention_by_carrier",
    "fusion_weighting",
    "fusion_weights",
    "run_custom_fusion",
    "se_gates_by_carrier",
    "two_branch_net_with",
]


@keras.saving.register_keras_serializable(package="coursekit")
class ComplementWeightFusion(layers.Layer):
    """``w * maps[0] + (1 - w) * maps[1]`` with one learned scalar ``w`` (``.weight``).

    The form of the article's ``weight_layer`` snippet, but made with ``add_weight``, so it
    trains. Nothing keeps ``w`` in [0, 1]: outside it one branch gets a negative weight. `init`
    is the starting ``w`` (the article draws it at random in [0, 1)).
    """

    def __init__(self, init: float = 0.5, data_format: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.init = float(init)
        self.data_format = _layout(data_format)
        self.weight = self.add_weight(shape=(1,), initializer=keras.initializers.Constant(self.init),
                                      trainable=True, name="weight")
        self.built = True

    def branch_weights(self) -> np.ndarray:
        """The two multipliers ``[w, 1 - w]`` as a numpy array."""
        w = float(np.array(self.weight.numpy())[0])
        return np.array([w, 1.0 - w])

    def _check(self, shapes) -> None:
        where = "ComplementWeightFusion"
        _check_branches(_as_list(shapes, where), self.data_format, where, 2, None, _ADD_BATCH)

    def call(self, maps):
        maps = [_as_tensor(m) for m in _as_list(maps, "ComplementWeightFusion")]
        self._check([tuple(m.shape) for m in maps])
        w = ops.cast(self.weight, maps[0].dtype)
        return w * maps[0] + (1.0 - w) * maps[1]

    def compute_output_shape(self, input_shape) -> tuple:
        self._check(input_shape)
        return tuple(input_shape[0])

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(init=self.init, data_format=self.data_format)
        return config


def _build(make_fusion: Callable[[], Any], n_classes: int, in_channels: Sequence[int], width: int,
           activations, branch_norm: str | None, head_width: int, groups: int) -> keras.Model:
    # The layers of coursekit.keras.two_branch_net, created in the same order.
    acts = check_two_branch_options("add", activations, None, branch_norm)
    x_a = keras.Input((None, None, in_channels[0]), name="x_a")
    x_b = keras.Input((None, None, in_channels[1]), name="x_b")
    branches = []
    for tag, inp, act in (("a", x_a, acts[0]), ("b", x_b, acts[1])):
        h = layers.Conv2D(width, 3, padding="same", activation=act, name=f"branch_{tag}_conv")(inp)
        if branch_norm is not None:
            norm_layer = _NORM_MAP[branch_norm](width, groups, None)
            norm_layer.name = f"branch_{tag}_norm"
            h = norm_layer(h)
        branches.append(h)
    fusion = make_fusion()
    if not isinstance(fusion, layers.Layer):
        raise TypeError(
            f"the fusion layer must be a keras Layer; received a {type(fusion).__name__}. Fix: pass an "
            "instance, e.g. ComplementWeightFusion(0.5)."
        )
    h = fusion(branches)
    h = layers.Conv2D(head_width, 3, padding="same", activation="relu", name="head_conv")(h)
    h = layers.GlobalAveragePooling2D(name="head_pool")(h)
    out = layers.Dense(n_classes, name="head_dense")(h)
    return keras.Model([x_a, x_b], out, name="two_branch_custom")


def two_branch_net_with(
    fusion, *, n_classes: int = 4, in_channels: Sequence[int] = (1, 1), width: int = 8,
    activations: str | Sequence[str] = "relu", branch_norm: str | None = None, head_width: int = 16,
    groups: int = 4,
) -> keras.Model:
    """`two_branch_net` with the layer `fusion` as its fusion layer.

    `fusion` takes the list ``[branch_a, branch_b]`` of ``(N, H, W, width)`` maps and must
    return one ``(N, H, W, width)`` map, like ``AddFusion``. The other layers are created, in
    the same order, exactly as by ``two_branch_net(fusion='add', ...)``, so after the same seed
    they start from the same weights.
    """
    return _build(lambda: fusion, n_classes, in_channels, width, activations, branch_norm, head_width, groups)


def run_custom_fusion(
    fusion,
    data: TwoBranchData | None = None,
    *,
    label: str = "custom",
    scale: float = 1.0,
    distribution: str = "normal",
    n: int = 1024,
    n_classes: int = 4,
    branch_norm: str | None = None,
    activations: str | tuple[str, str] = "relu",
    width: int = 8,
    optimizer: str = "adam",
    lr: float = 1e-3,
    epochs: int = 8,
    batch_size: int = 64,
    seed: int = 0,
    report: bool = False,
    progress: bool = False,
) -> FusionRun:
    """`run_two_branch` with a fusion layer of your own: the same data, split, seeding and
    training, on ``two_branch_net_with(layer)``.

    `fusion` is the layer, or a function of no arguments that makes it; a function is called
    after the run seeds everything, so a layer drawing its start at random is seeded too.
    ``run.extra`` holds the ``model``, the ``fusion`` layer and, for a layer with
    ``branch_weights()``, its ``weights_before`` and ``weights_after`` training.
    """
    def build_around(make: Callable[[], Any], options: dict) -> keras.Model:
        return _build(make, options["n_classes"], (1, 1), options["width"], options["activations"],
                      options["branch_norm"], 16, 4)

    return run_custom_fusion_with(BACKEND, "NHWC", layers.Layer, "keras.layers.Layer", **locals())  # build_around and the arguments


# --- What a trained gate does ------------------------------------------------------------------

def _fusion_of(model: Any, kind: type, what: str):
    found = [l for l in model.layers if isinstance(l, kind)]
    if not found:
        raise TypeError(
            f"{what} reads a model whose fusion is a {kind.__name__}; {model.name} has none. Build it "
            f"with fusion={'attention' if kind is AttentionGateFusion else 'se'!r}."
        )
    return found[0]


def _branches(model: keras.Model, layer, data: TwoBranchData) -> list:
    if data.layout != "NHWC":
        raise ValueError(f"this reader needs NHWC data here; received layout {data.layout!r}.")
    probe = keras.Model(model.inputs, list(layer._inbound_nodes[0].input_tensors))
    return list(probe([data.x_a, data.x_b], training=False))


def attention_by_carrier(model: keras.Model, data: TwoBranchData) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """What a trained attention gate (``fusion='attention'``) does on `data`.

    Returns ``(maps, means)``: `maps` are the per-pixel branch weights, numpy
    ``(N, branches, H, W)`` in both frameworks; `means` maps 'A-carried' / 'B-carried' to the
    mean weight of each branch over the samples whose label that branch carries.
    """
    layer = _fusion_of(model, AttentionGateFusion, "attention_by_carrier")
    a = ops.convert_to_numpy(layer.attention(_branches(model, layer, data)))  # (N, H, W, branches)
    maps = np.transpose(a, (0, 3, 1, 2))
    return maps, by_carrier(maps.mean(axis=(2, 3)), data.carrier)


def se_gates_by_carrier(model: keras.Model, data: TwoBranchData) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """What a trained SE gate (``fusion='se'``) does on `data`.

    Returns ``(gates, means)``: `gates` is the excitation s per sample and channel, numpy
    ``(N, 2 * width)`` (branch A's channels first); `means` maps 'A-carried' / 'B-carried' to
    the mean gate of branch A's and of branch B's channels, ``[mean_A, mean_B]``.
    """
    layer = _fusion_of(model, SEFusion, "se_gates_by_carrier")
    if layer.se is None:
        raise ValueError("se_gates_by_carrier reads SEFusion(mode='concat'), the one two_branch_net builds.")
    maps = _branches(model, layer, data)
    s = ops.convert_to_numpy(layer.se.scale(ops.concatenate(maps, axis=-1)))[:, 0, 0, :]
    c = layer.in_channels[0]
    per_sample = np.stack([s[:, :c].mean(axis=1), s[:, c:].mean(axis=1)], axis=1)
    return s, by_carrier(per_sample, data.carrier)


def fusion_weighting(fusion: str, seed: int = 0) -> FusionWeighting:
    """Who decides how much of each branch passes the fusion layer ``two_branch_net(fusion=fusion)``
    builds: "nothing", "fixed" or "input", measured (`coursekit.experiments.fusion_weighting_with`)."""

    def apply(layer, pair: list[np.ndarray]) -> np.ndarray:
        out = layer([ops.convert_to_tensor(m) for m in pair], training=False)
        return np.asarray(ops.convert_to_numpy(out), np.float64)

    return fusion_weighting_with(fusion, "NHWC", build=lambda f: two_branch_net(n_classes=4, fusion=f).get_layer("fusion"),
                                 apply=apply, n_params=lambda layer: layer.count_params(), seed=seed)
