"""Keras `fit` reuses one compiled stand-in per architecture (coursekit.keras.train._Trainer): the
same numbers as compiling every model afresh, the same random draws afterwards, and no sharing with
layers or functions written outside Keras and coursekit."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("keras")

import keras  # noqa: E402

import coursekit.keras.train as train  # noqa: E402
from coursekit.data import make_two_branch  # noqa: E402
from coursekit.keras.models import two_branch_net  # noqa: E402
from coursekit.seeding import seed_everything  # noqa: E402

DATA = make_two_branch(n=256, scale=100, n_classes=4, layout="NHWC", seed=0)
TRAIN, TEST = DATA.split(0.25, seed=0)
# (architecture, optimizer, lr): the first architecture three times with Adam (its second fit makes the
# stand-in, the third reuses it, at other learning rates), once with SGD (kept apart: trained the plain
# way), and a second architecture twice
RUNS = [({}, "adam", 1e-3), ({"norm": "batch"}, "adam", 1e-2), ({}, "adam", 3e-3), ({}, "sgd", 0.05),
        ({"norm": "batch"}, "adam", 1e-3), ({}, "adam", 1e-3)]


@pytest.fixture
def fresh_cache(monkeypatch):
    monkeypatch.setattr(train, "_TRAINERS", type(train._TRAINERS)())
    monkeypatch.setattr(train, "_SEEN", type(train._SEEN)())
    return train


def _runs(reuse: bool) -> list[dict]:
    train.REUSE_TRACES = reuse
    out = []
    try:
        for options, optimizer, lr in RUNS:
            seed_everything(0)
            model = two_branch_net(n_classes=4, **options)
            history = train.fit(model, (TRAIN.inputs, TRAIN.y), (TEST.inputs, TEST.y), epochs=2, optimizer=optimizer,
                                lr=lr, batch_size=32, progress=False)
            after = two_branch_net(n_classes=4, **options)  # the random draws after a fit are untouched
            out.append({"history": history.as_dict(), "weights": model.get_weights(),
                        "optimizer": [v.numpy() for v in model.optimizer.variables],
                        "after": after.get_weights()})
    finally:
        train.REUSE_TRACES = True
    return out


def test_reusing_a_traced_step_gives_the_numbers_of_a_fresh_compile(fresh_cache):
    plain, reused = _runs(False), _runs(True)
    assert len(fresh_cache._TRAINERS) == 2, "a stand-in per (architecture, optimizer) that came back"
    for i, (a, b) in enumerate(zip(plain, reused)):
        assert a["history"] == b["history"], f"run {i} {RUNS[i]}: histories differ"
        for key in ("weights", "optimizer", "after"):
            assert len(a[key]) == len(b[key]) and all(np.array_equal(x, y) for x, y in zip(a[key], b[key])), (
                f"run {i} {RUNS[i]}: {key} differ")
    assert int(reused[0]["optimizer"][0]) == 2 * len(TRAIN.y) // 32, "the model's optimizer counts its own steps"


def test_the_stand_in_keeps_its_traced_step(fresh_cache):
    traced = []
    for _ in range(3):
        seed_everything(0)
        model = two_branch_net(n_classes=4)
        train.fit(model, (TRAIN.inputs, TRAIN.y), epochs=1, progress=False)
        traced += [t.model.train_function for t in fresh_cache._TRAINERS.values()]
    assert len(traced) == 2, "the first fit trains the plain way; the second makes the stand-in"
    assert traced[0] is traced[1], "a third fit of the architecture must not trace again"
    assert model.train_function is None, "the user's model was never traced"
    # and the trained model goes on training with its own compile, the plain Keras way
    before = model.optimizer.iterations.numpy()
    train.fit(model, (TRAIN.inputs, TRAIN.y), epochs=1, optimizer=None, loss=None, progress=False)
    assert model.optimizer.iterations.numpy() == 2 * before


class Doubling(keras.layers.Layer):
    """A layer written outside Keras and coursekit: its call may read anything."""

    def call(self, x):
        return 2.0 * x


class Halving(keras.layers.Layer):
    def call(self, x):
        return 0.5 * x


def _with(layer_or_activation) -> keras.Model:
    inputs = keras.Input((3,))
    if isinstance(layer_or_activation, keras.layers.Layer):
        h = layer_or_activation(keras.layers.Dense(4, name="d1")(inputs))
    else:
        h = keras.layers.Dense(4, activation=layer_or_activation, name="d1")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="d2")(h))


def test_code_from_outside_keras_and_coursekit_is_never_shared(fresh_cache):
    def triple(x):
        return 3.0 * x

    assert train._architecture_key(_with(Doubling())) is None
    assert train._architecture_key(_with(triple)) is None
    assert train._architecture_key(_with(keras.layers.Lambda(triple))) is None
    assert train._architecture_key(_with("relu")) is not None
    # a layer of each class trains on its own call, not on a stand-in of the other
    x = np.random.default_rng(0).standard_normal((64, 3)).astype(np.float32)
    y = np.arange(64) % 2
    losses = {}
    for layer in (Doubling(), Halving()):
        keras.utils.set_random_seed(0)
        model = _with(layer)
        losses[type(layer).__name__] = train.fit(model, (x, y), epochs=1, shuffle=False, progress=False).last("loss")
    assert losses["Doubling"] != losses["Halving"]
    assert not fresh_cache._TRAINERS


def test_names_do_not_split_an_architecture():
    """Layers named automatically (dense_3, dense_7) are the same architecture."""
    a = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    b = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    c = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, use_bias=False), keras.layers.Dense(2)])
    assert train._architecture_key(a) == train._architecture_key(b) != train._architecture_key(c)


def test_a_setting_that_cloning_loses_is_not_trained_on_a_clone(fresh_cache):
    """`set_bn_momentum` sets the momentum of a BatchNorm inside the fusion layer, which the fusion
    layer's config does not carry: a clone would train with the default momentum."""
    from coursekit.keras.normalization import batch_norm_layers, set_bn_momentum

    histories = []
    for reuse in (False, True, True):  # the second fit with reuse on would make the stand-in
        train.REUSE_TRACES = reuse
        try:
            seed_everything(0)
            model = two_branch_net(n_classes=4, norm="batch")
            set_bn_momentum(model, 0.5)
            histories.append(train.fit(model, (TRAIN.inputs, TRAIN.y), (TEST.inputs, TEST.y), epochs=2,
                                       progress=False).as_dict())
        finally:
            train.REUSE_TRACES = True
    assert histories[0] == histories[1] == histories[2]
    assert list(fresh_cache._TRAINERS.values()) == [None], "the unfaithful clone is remembered, and not used"
    assert batch_norm_layers(model)[0].momentum == 0.5
