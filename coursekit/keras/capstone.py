"""The capstone's broken pipeline (lesson 08), Keras half. Twin of coursekit.torch.capstone.

"My network always predicts the same class": a two-branch network and its data, broken in four
of the ways the course teaches, so the lesson can diagnose them with coursekit's tools and fix
them one at a time.

- the data: branch B arrives raw, ``RAW_SCALE`` times branch A's scale and shifted by
  ``RAW_SHIFT`` (`capstone_data`);
- the fusion: `GatedConcat` concatenates the branch maps without normalizing them and keeps its
  per-branch gate in a ``tf.Variable`` attribute, which Keras 3 does not track, so the optimizer
  never sees it;
- the initialization: every kernel drawn from N(0, ``BROKEN_INIT_STD``), "small random weights";
- the learning rate: SGD (momentum 0.9) at ``BROKEN_LR``.

`broken_setup` hands out all four; `build_pipeline(fixes=...)` builds the pipeline with any
subset of the fixes applied and `run_pipeline` also trains it (the reference fixes live here,
privately, so the lesson's experiments never depend on the student's answers);
`train_and_report` trains a given model and reports its accuracy and whether it collapsed.
This module must never import PyTorch.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..capstone import (  # noqa: F401  (re-exported: the lesson uses them through this module)
    BROKEN_INIT_STD,
    BROKEN_LR,
    FIXED_LR,
    FIXES,
    OPTIMIZER,
    OUTCOMES,
    RAW_SCALE,
    RAW_SHIFT,
    CapstoneRun,
    Pipeline,
    RunList,
    build_pipeline_with,
    pick_lr,
    run_pipeline_with,
    train_and_report_with,
)
from ..capstone import capstone_data as _capstone_data
from ..data import TwoBranchData
from . import _tf
from ..memo import memoized
from .backend import BACKEND
from .fusion import BN_EPS

tf, keras = _tf.tf, _tf.keras
layers, ops = keras.layers, keras.ops


__all__ = [
    "BROKEN_INIT_STD",
    "BROKEN_LR",
    "FIXED_LR",
    "FIXES",
    "OUTCOMES",
    "RAW_SCALE",
    "RAW_SHIFT",
    "Pipeline",
    "CapstoneNet",
    "CapstoneRun",
    "GatedConcat",
    "RunList",
    "broken_setup",
    "build_pipeline",
    "capstone_data",
    "capstone_net",
    "pick_lr",
    "run_pipeline",
    "train_and_report",
]


def capstone_data(n: int = 1024, seed: int = 0) -> tuple[TwoBranchData, TwoBranchData]:
    """The capstone's raw data, NHWC: see `coursekit.capstone.capstone_data`."""
    return _capstone_data("NHWC", n=n, seed=seed)


class GatedConcat(layers.Layer):
    """The BROKEN fusion: ``concatenate([gate[0] * a, gate[1] * b])`` on channels, no normalization.

    The gate is meant to learn how much of each branch to pass on, but it is a ``tf.Variable``
    assigned as an attribute instead of a weight made with ``self.add_weight``: Keras 3 does not
    track it, so ``model.trainable_variables`` and the optimizer never see it and it stays at 1.
    And the two maps are joined as they come, whatever their scales.
    """

    def __init__(self, width: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.width = int(width)
        self.gate = tf.Variable(tf.ones(2), trainable=True)  # the bug: not self.add_weight(...)

    def call(self, maps):
        a, b = maps
        return ops.concatenate([self.gate[0] * a, self.gate[1] * b], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[0][:-1], 2 * self.width)

    def get_config(self) -> dict:
        return {**super().get_config(), "width": self.width}


class _GatedNormConcat(layers.Layer):
    """Reference fusion fix: BatchNormalization over the concatenation (no center/scale), then a
    registered per-branch gate (init 1) on each half."""

    def __init__(self, width: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.width = int(width)
        self.norm = layers.BatchNormalization(center=False, scale=False, epsilon=BN_EPS, momentum=0.9)
        self.gate = self.add_weight(shape=(2,), initializer="ones", name="gate")

    def call(self, maps, training=None):
        x = self.norm(ops.concatenate(list(maps), axis=-1), training=training)
        w = self.width
        return ops.concatenate([self.gate[0] * x[..., :w], self.gate[1] * x[..., w:]], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[0][:-1], 2 * self.width)


def capstone_net(fusion=None, width: int = 8, n_classes: int = 4) -> keras.Model:
    """The capstone's functional model on NHWC inputs ``[x_a, x_b]``: per branch Conv2D(width, 3,
    'same', relu) (``branch_a_conv``, ``branch_b_conv``), `fusion` (a layer taking ``[a, b]`` and
    returning ``2 * width`` channels, named 'fusion'; None: the broken `GatedConcat`), then
    ``head_conv`` Conv2D(16, 3, 'same', relu), ``head_pool`` global average pool and
    ``head_dense`` Dense(n_classes) logits. Keras' default initializers."""
    if fusion is None:
        fusion = GatedConcat(width, name="fusion")
    elif not isinstance(fusion, layers.Layer):
        raise TypeError(
            f"fusion must be a keras Layer taking [a, b] (two NHWC maps of {width} channels) and returning "
            f"{2 * width} channels; received a {type(fusion).__name__}. Did you pass the factory instead "
            "of calling it, e.g. make_fusion instead of make_fusion(8)?"
        )
    x_a = keras.Input((None, None, 1), name="x_a")
    x_b = keras.Input((None, None, 1), name="x_b")
    a = layers.Conv2D(width, 3, padding="same", activation="relu", name="branch_a_conv")(x_a)
    b = layers.Conv2D(width, 3, padding="same", activation="relu", name="branch_b_conv")(x_b)
    h = fusion([a, b])
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="head_conv")(h)
    h = layers.GlobalAveragePooling2D(name="head_pool")(h)
    out = layers.Dense(n_classes, name="head_dense")(h)
    return keras.Model([x_a, x_b], out, name="capstone")


# The torch half has a class of this name; in Keras the functional model is the class.
CapstoneNet = capstone_net


def fixed_fusion():
    """The reference fusion fix as a new layer (what build_pipeline's 'fusion' fix puts in)."""
    return _GatedNormConcat(8, name="fusion")


def _lesson_api():
    """What the neutral pipeline bodies (coursekit.capstone) call: the backend and this lesson's builders."""
    return BACKEND.extended(build_pipeline=build_pipeline, capstone_data=capstone_data, capstone_net=capstone_net,
                            fixed_fusion=fixed_fusion, train_and_report=train_and_report)


def train_and_report(model, train: TwoBranchData, test: TwoBranchData, *, lr: float,
                     optimizer: str = OPTIMIZER, epochs: int | None = None, batch_size: int = 64,
                     seed: int = 0, label: str = "run", progress: bool = False) -> CapstoneRun:
    """Train `model` on `train` with coursekit's `fit` (`optimizer`, `lr`; epochs from `run_size`
    unless given), then report test accuracy and `is_collapsed` on the test inputs. `progress`
    shows fit's bar over the epochs."""
    return train_and_report_with(_lesson_api(), model, train, test, lr=lr, optimizer=optimizer, epochs=epochs,
                                 batch_size=batch_size, seed=seed, label=label, progress=progress)


def build_pipeline(fixes: Sequence[str] = (), *, seed: int = 0, n: int | None = None, lr: float | None = None,
                   init: str | dict | Any = None, optimizer: str = OPTIMIZER) -> Pipeline:
    """The capstone pipeline with the fixes in `fixes` applied and the other bugs left in, untrained.

    fixes: any of ``FIXES`` = 'input' (standardize each branch with its training mean and std),
    'fusion' (BatchNormalization over the concatenation, then a registered gate), 'init' (He normal,
    fan_in, biases 0), 'lr' (``FIXED_LR`` instead of ``BROKEN_LR``). `lr` and `init` override
    those two choices; `init` is a scheme name, an ``init_model`` keyword dict, 'default'
    (Keras' own init) or a function that initializes the model in place. `n` samples (default:
    the run size's), split 75/25; `seed` seeds the model.
    """
    return build_pipeline_with(_lesson_api(), fixes, seed=seed, n=n, lr=lr, init=init, optimizer=optimizer)


def broken_setup(n: int | None = None, seed: int = 0) -> Pipeline:
    """The broken pipeline: raw data (`capstone_data`), a `capstone_net` with the broken fusion and
    every kernel drawn from N(0, ``BROKEN_INIT_STD``) (biases 0), and SGD at ``BROKEN_LR``."""
    return build_pipeline((), seed=seed, n=n)


@memoized
def run_pipeline(fixes: Sequence[str] = (), *, seed: int = 0, n: int | None = None, epochs: int | None = None,
                 lr: float | None = None, init: str | dict | Any = None, optimizer: str = OPTIMIZER,
                 label: str | None = None, progress: bool = False) -> CapstoneRun:
    """`build_pipeline(fixes, ...)` and train it with `train_and_report`; the label defaults to the
    fixes applied ('broken' for none). `progress` shows fit's bar over the epochs."""
    return run_pipeline_with(_lesson_api(), fixes, seed=seed, n=n, epochs=epochs, lr=lr, init=init, optimizer=optimizer,
                             label=label, progress=progress)
