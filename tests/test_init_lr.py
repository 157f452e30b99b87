"""Initialization schemes, the LR range test and LR schedules, in both halves.

coursekit.init_schemes / coursekit.schedules hold the math; coursekit.{torch,keras}.init and
coursekit.{torch,keras}.lr apply it. Every behavioural test runs for both frameworks.

Tolerance of the weight-statistics tests: the relative standard error of a sample std over n
iid draws is sqrt((kurtosis - 1) / (4 n)): 0.26 % for a normal (kurtosis 3) and 0.16 % for a
uniform (1.8) over the smallest tested layer, Conv2d(64, 128, 3) with n = 73,728. STD_RTOL = 2 %
is therefore >= 7.5 standard errors (a false failure is astronomically unlikely), yet far below
the errors it must catch: a truncated normal without Keras' 1/0.88 correction (-12 %), a missed
ReLU gain (-29 %), fan_in and fan_out swapped (±41 % for this conv).
"""

from __future__ import annotations

import inspect
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import torch  # noqa: E402  (tests/conftest.py has loaded triton before TensorFlow)
import keras  # noqa: E402

from torch import nn  # noqa: E402

from coursekit import init_schemes as schemes  # noqa: E402
from coursekit import schedules  # noqa: E402
from coursekit.data import load_digits, make_two_branch  # noqa: E402
from coursekit.history import LRRangeResult  # noqa: E402
from coursekit.keras import init as kinit  # noqa: E402
from coursekit.keras import lr as klr  # noqa: E402
from coursekit.keras._tf import tf  # noqa: E402
from coursekit.torch import init as tinit  # noqa: E402
from coursekit.torch import lr as tlr  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("torch", "keras")
STD_RTOL = 0.02  # see the module docstring
SCHEDULE_RTOL = 1e-7  # keras returns float32: rounding alone is up to 2**-24 = 6e-8 relative


# --- helpers ---------------------------------------------------------------------------------

def init_target(fw: str):
    """Conv(64 -> 128, 3x3) then a Linear/Dense(512 -> 256) nested in an inner container."""
    if fw == "torch":
        return nn.Sequential(nn.Conv2d(64, 128, 3), nn.Flatten(), nn.Sequential(nn.Linear(512, 256)))
    inner = keras.Sequential([keras.Input((512,)), keras.layers.Dense(256)], name="inner")
    return keras.Sequential(
        [keras.Input((4, 4, 64)), keras.layers.Conv2D(128, 3), keras.layers.Flatten(), inner]
    )


def weights_and_biases(fw: str, model) -> list[tuple[np.ndarray, np.ndarray, tuple[int, int]]]:
    """(weight, bias, (fan_in, fan_out)) for every initialized layer, as numpy."""
    out = []
    if fw == "torch":
        for layer in tinit.initialized_layers(model):
            w = layer.weight.detach().numpy()
            out.append((w, layer.bias.detach().numpy(), schemes.fans(w.shape, "torch")))
    else:
        for layer in kinit.initialized_layers(model):
            w = np.asarray(layer.kernel)
            out.append((w, np.asarray(layer.bias), schemes.fans(w.shape, "keras")))
    return out


def init(fw: str):
    return tinit.init_model if fw == "torch" else kinit.init_model


def digits_cnn(fw: str):
    """A small CNN with BatchNorm (so running statistics must be restored too)."""
    if fw == "torch":
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
            nn.Linear(8 * 64, 10),
        )
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, padding="same"),
        keras.layers.BatchNormalization(), keras.layers.ReLU(), keras.layers.Flatten(),
        keras.layers.Dense(10),
    ])


@pytest.fixture(scope="module")
def digits():
    x, y, _, _ = load_digits("NCHW")
    return x[:512], y[:512]


def data_for(fw: str, digits):
    x, y = digits
    return (x, y) if fw == "torch" else (np.ascontiguousarray(x.transpose(0, 2, 3, 1)), y)


def state_of(fw: str, model) -> list[np.ndarray]:
    """Every number the model holds: parameters and buffers (torch), all variables (keras)."""
    if fw == "torch":
        return [v.detach().cpu().numpy().copy() for v in model.state_dict().values()]
    variables = list(model.variables)
    if getattr(model, "optimizer", None) is not None:
        variables += list(model.optimizer.variables)
    return [np.array(v.numpy(), copy=True) for v in variables]


def assert_bit_identical(before: list[np.ndarray], after: list[np.ndarray]) -> None:
    assert len(before) == len(after)
    for i, (a, b) in enumerate(zip(before, after)):
        assert a.dtype == b.dtype and np.array_equal(a, b), f"state entry {i} changed"


def range_test(fw: str):
    return tlr.lr_range_test if fw == "torch" else klr.lr_range_test


# --- public API mirrors ----------------------------------------------------------------------

def test_public_names_and_signatures_mirror():
    assert tinit.__all__ == kinit.__all__
    assert tlr.__all__ == klr.__all__
    for t_mod, k_mod in ((tinit, kinit), (tlr, klr)):
        for name in t_mod.__all__:
            t_obj, k_obj = getattr(t_mod, name), getattr(k_mod, name)
            if callable(t_obj):
                t_sig, k_sig = inspect.signature(t_obj), inspect.signature(k_obj)
                assert [(p.name, p.kind, p.default) for p in t_sig.parameters.values()] == [
                    (p.name, p.kind, p.default) for p in k_sig.parameters.values()
                ], name
                assert t_obj.__doc__ and k_obj.__doc__
            else:
                assert t_obj is k_obj


# --- fans and formulas -----------------------------------------------------------------------

def test_fans_for_both_layouts():
    assert schemes.fans((128, 64, 3, 3), "torch") == (576, 1152)
    assert schemes.fans((3, 3, 64, 128), "keras") == (576, 1152)
    assert schemes.fans((256, 512), "torch") == (512, 256)
    assert schemes.fans((512, 256), "keras") == (512, 256)
    with pytest.raises(ValueError, match=r"framework_layout must be one of \['torch', 'keras'\]; received 'tf'"):
        schemes.fans((2, 2), "tf")
    with pytest.raises(ValueError, match=r"rank >= 2 .* received shape \(10,\)"):
        schemes.fans((10,), "torch")


def test_expected_std_formulas():
    fi, fo = 576, 1152
    assert schemes.expected_std("he_normal", fi, fo) == pytest.approx(math.sqrt(2 / fi))
    assert schemes.expected_std("kaiming_uniform", fi, fo, mode="fan_out") == pytest.approx(math.sqrt(2 / fo))
    assert schemes.expected_std("he_normal", fi, fo, nonlinearity="tanh") == pytest.approx(5 / 3 / math.sqrt(fi))
    assert schemes.expected_std("he_normal", fi, fo, nonlinearity="linear") == pytest.approx(1 / math.sqrt(fi))
    # Xavier ignores mode and nonlinearity (gain 1, as Keras' Glorot and torch's default).
    assert schemes.expected_std("xavier_uniform", fi, fo, mode="fan_out", nonlinearity="tanh") == pytest.approx(
        math.sqrt(2 / (fi + fo))
    )
    assert schemes.expected_std("normal", fi, fo, std=0.05) == 0.05
    assert schemes.expected_std("constant", fi, fo, value=3.0) == 0.0
    assert schemes.resolve_draw("he_uniform", fi, fo).param == pytest.approx(math.sqrt(6 / fi))


def test_expected_std_matches_the_frameworks_own_initializers():
    """Our formula against torch.nn.init and Keras' built-ins (micrograd-style references)."""
    shape_t, shape_k = (128, 64, 3, 3), (3, 3, 64, 128)
    fi, fo = schemes.fans(shape_t, "torch")
    torch.manual_seed(0)
    w = torch.empty(shape_t)
    refs = [
        (lambda: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"), "he_normal", {"mode": "fan_out"}),
        (lambda: nn.init.kaiming_uniform_(w, nonlinearity="tanh"), "he_uniform", {"nonlinearity": "tanh"}),
        (lambda: nn.init.xavier_normal_(w), "xavier_normal", {}),
        (lambda: nn.init.xavier_uniform_(w), "xavier_uniform", {}),
    ]
    for draw, scheme, opts in refs:
        draw()
        assert w.std().item() == pytest.approx(schemes.expected_std(scheme, fi, fo, **opts), rel=STD_RTOL), scheme
    for init_cls, scheme in (
        (keras.initializers.HeNormal, "he_normal"), (keras.initializers.HeUniform, "he_uniform"),
        (keras.initializers.GlorotNormal, "xavier_normal"), (keras.initializers.GlorotUniform, "xavier_uniform"),
    ):
        k = np.asarray(init_cls(seed=0)(shape_k))
        assert k.std() == pytest.approx(schemes.expected_std(scheme, fi, fo), rel=STD_RTOL), scheme
    # Keras' HeNormal is truncated at 2 std (same variance, no tails); ours is not, see below.
    k = np.asarray(keras.initializers.HeNormal(seed=0)(shape_k))
    assert np.mean(np.abs(k) > 2 * math.sqrt(2 / fi) / 0.87962566103423978) == 0.0


# --- init_model ------------------------------------------------------------------------------

STAT_CASES = [
    ("normal", {"std": 0.02}),
    ("xavier_uniform", {}),
    ("xavier_normal", {}),
    ("he_uniform", {}),
    ("he_uniform", {"mode": "fan_out"}),
    ("he_normal", {}),
    ("he_normal", {"mode": "fan_out"}),
    ("kaiming_uniform", {"nonlinearity": "tanh"}),
    ("kaiming_normal", {"mode": "fan_out", "nonlinearity": "sigmoid"}),
]


@pytest.mark.parametrize("fw", FRAMEWORKS)
@pytest.mark.parametrize("scheme, opts", STAT_CASES, ids=[f"{s}-{o}" for s, o in STAT_CASES])
def test_weight_statistics_match_expected_std(fw, scheme, opts):
    model = init_target(fw)
    assert init(fw)(model, scheme, bias=0.25, seed=0, **opts) is model
    found = weights_and_biases(fw, model)
    assert len(found) == 2  # the conv and the nested dense layer
    draw_kind = schemes.resolve_draw(scheme, 1, 1, **opts).distribution
    for w, b, (fi, fo) in found:
        expected = schemes.expected_std(scheme, fi, fo, **opts)
        n = w.size
        assert w.std() == pytest.approx(expected, rel=STD_RTOL), (w.shape, w.std(), expected)
        assert abs(w.mean()) < 6 * expected / math.sqrt(n)
        if draw_kind == "uniform":
            bound = math.sqrt(3) * expected
            assert np.abs(w).max() <= bound * (1 + 1e-6) and np.abs(w).max() > 0.99 * bound
        else:
            # Untruncated normal: 4.55 % beyond 2 std (a truncated one has none).
            assert 0.035 < np.mean(np.abs(w) > 2 * expected) < 0.056
        np.testing.assert_array_equal(b, np.float32(0.25))


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_zeros_constant_exact_and_bias_options(fw):
    model = init_target(fw)
    init(fw)(model, "zeros", bias=1.5)
    for w, b, _ in weights_and_biases(fw, model):
        assert not w.any()
        np.testing.assert_array_equal(b, np.float32(1.5))
    init(fw)(model, "constant", value=0.3, bias="constant")
    for w, b, _ in weights_and_biases(fw, model):
        np.testing.assert_array_equal(w, np.float32(0.3))
        np.testing.assert_array_equal(b, np.float32(0.3))
    init(fw)(model, "he_normal", bias="keep", seed=1)
    for _, b, _ in weights_and_biases(fw, model):
        np.testing.assert_array_equal(b, np.float32(0.3))
    init(fw)(model, "zeros", bias="normal", std=0.5, seed=1)
    biases = np.concatenate([b for _, b, _ in weights_and_biases(fw, model)])
    assert biases.std() == pytest.approx(0.5, rel=0.1)  # 384 draws: 10 % is ~3.9 standard errors


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_seed_is_reproducible_and_layers_differ(fw):
    def draw(seed):
        model = init_target(fw)
        init(fw)(model, "he_normal", seed=seed)
        return [w for w, _, _ in weights_and_biases(fw, model)]

    a, b, c = draw(3), draw(3), draw(4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    # Two same-shaped layers must not receive the same values from one seed.
    if fw == "torch":
        twin = nn.Sequential(nn.Linear(32, 32), nn.Linear(32, 32))
        tinit.init_model(twin, "he_normal", seed=0)
        assert not torch.equal(twin[0].weight, twin[1].weight)
    else:
        twin = keras.Sequential([keras.Input((32,)), keras.layers.Dense(32), keras.layers.Dense(32)])
        kinit.init_model(twin, "he_normal", seed=0)
        assert not np.array_equal(np.asarray(twin.layers[0].kernel), np.asarray(twin.layers[1].kernel))


def test_torch_seed_leaves_global_rng_alone():
    model = init_target("torch")  # construction itself draws from the global RNG
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tinit.init_model(model, "he_uniform", seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_keras_reaches_layers_inside_custom_layers():
    class Block(keras.layers.Layer):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.conv = keras.layers.Conv2D(4, 3)

        def build(self, shape):
            self.conv.build(shape)

        def call(self, x):
            return self.conv(x)

    inp = keras.Input((6, 6, 2))
    model = keras.Model(inp, Block()(inp))
    assert len(kinit.initialized_layers(model)) == 1
    kinit.init_model(model, "constant", value=2.0)
    np.testing.assert_array_equal(np.asarray(kinit.initialized_layers(model)[0].kernel), np.float32(2.0))


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_init_errors(fw):
    model = init_target(fw)
    with pytest.raises(ValueError, match=r"unknown initialization scheme 'glorot'; valid schemes are \['constant', "
                                         r"'he_normal', 'he_uniform', 'kaiming_normal', 'kaiming_uniform', "
                                         r"'normal', 'xavier_normal', 'xavier_uniform', 'zeros'\]"):
        init(fw)(model, "glorot")
    with pytest.raises(ValueError, match=r"mode must be one of \['fan_in', 'fan_out'\]; received 'fan_avg'"):
        init(fw)(model, "he_normal", mode="fan_avg")
    with pytest.raises(ValueError, match=r"nonlinearity must be one of \['relu', 'tanh', 'sigmoid', 'linear'\]; "
                                         r"received 'gelu'"):
        init(fw)(model, "he_normal", nonlinearity="gelu")
    with pytest.raises(ValueError, match=r"bias must be a finite number or one of .* received 'he_normal'"):
        init(fw)(model, "he_normal", bias="he_normal")
    with pytest.raises(ValueError, match=r"seed must be an int >= 0 or None; received 1.5"):
        init(fw)(model, "he_normal", seed=1.5)
    with pytest.raises(ValueError, match=r"unknown initialization scheme 'Xavier'"):
        schemes.expected_std("Xavier", 4, 4)


def test_unbuilt_models_are_refused():
    unbuilt = keras.Sequential([keras.layers.Dense(4)])
    with pytest.raises(ValueError, match=r"not built yet .* Fix: start the model with keras.Input\(shape=...\), "
                                         r"or call it on one input batch first"):
        kinit.init_model(unbuilt, "he_normal")
    with pytest.raises(ValueError, match=r"has no weights yet \(a lazy module\).*call the model on one input batch"):
        tinit.init_model(nn.Sequential(nn.LazyLinear(4)), "he_normal")
    with pytest.raises(ValueError, match=r"found no Conv1d/Conv2d/Conv3d/Linear layer in ReLU"):
        tinit.init_model(nn.ReLU(), "he_normal")


# --- lesson 05: variance through depth -------------------------------------------------------

def deep_relu_stack(fw: str, scheme: str, **opts) -> float:
    """std of the output of 10 (conv 3x3 -> ReLU) layers over the std of the input."""
    x = np.random.default_rng(0).standard_normal((8, 64, 36, 36)).astype("float32")
    if fw == "torch":
        model = nn.Sequential(*[m for _ in range(10) for m in (nn.Conv2d(64, 64, 3), nn.ReLU())])
        tinit.init_model(model, scheme, seed=0, **opts)
        with torch.no_grad():
            y = model(torch.from_numpy(x)).numpy()
    else:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        model = keras.Sequential(
            [keras.Input((36, 36, 64))] + [keras.layers.Conv2D(64, 3, activation="relu") for _ in range(10)]
        )
        kinit.init_model(model, scheme, seed=0, **opts)
        y = np.asarray(model(x))
    return float(y.std() / x.std())


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_he_keeps_activation_scale_and_small_normal_collapses(fw):
    # He fan_in keeps E[a^2] at 1, so the ReLU output's std sits near sqrt(1 - 1/pi) = 0.83.
    assert 0.5 < deep_relu_stack(fw, "he_normal") < 2.0
    # std=0.01 scales the variance by 576 * 1e-4 / 2 per layer: ~1e-8 after ten.
    assert deep_relu_stack(fw, "normal", std=0.01) < 1e-2


# --- LR range test ---------------------------------------------------------------------------

@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_lr_range_test_sweeps_and_restores(fw, digits):
    model = digits_cnn(fw)
    x, y = data_for(fw, digits)
    before = state_of(fw, model)
    result = range_test(fw)(model, x, y, start_lr=1e-4, end_lr=1.0, num_steps=60, batch_size=64)
    assert isinstance(result, LRRangeResult)
    assert_bit_identical(before, state_of(fw, model))
    assert 2 <= len(result.lrs) <= 60 and len(result.losses) == len(result.raw_losses) == len(result.lrs)
    assert result.lrs[0] == pytest.approx(1e-4)
    assert np.all(np.diff(result.lrs) > 0)
    assert np.all(np.isfinite(result.losses)) and np.all(np.isfinite(result.raw_losses))
    assert result.suggested_lr is not None and 1e-4 <= result.suggested_lr <= 1.0
    # The model learns on the way: the smoothed loss falls below its starting value.
    assert min(result.losses) < 0.8 * result.losses[0]


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_lr_range_test_detects_divergence(fw, digits):
    model = digits_cnn(fw)
    x, y = data_for(fw, digits)
    before = state_of(fw, model)
    # Adam: with SGD + BatchNorm, Keras' loss at LR 10 stalls at chance level (~2.3, under 4x
    # the best) instead of exploding, which is a flat line, not the divergence tested here.
    result = range_test(fw)(model, x, y, optimizer="adam", start_lr=1e-4, end_lr=10.0, num_steps=60)
    assert_bit_identical(before, state_of(fw, model))
    assert result.diverged_at is not None and 1e-4 < result.diverged_at <= 10.0
    assert len(result.lrs) < 60 and np.all(np.isfinite(result.losses))
    assert result.suggested_lr is not None and result.suggested_lr < result.diverged_at


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_lr_range_test_restores_when_the_loss_raises(fw, digits):
    model = digits_cnn(fw)
    if fw == "torch":
        model.eval()  # its mode must come back too
    x, y = data_for(fw, digits)
    before = state_of(fw, model)
    calls = []
    base = torch.nn.functional.cross_entropy if fw == "torch" else keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def flaky(a, b):
        calls.append(1)
        if len(calls) == 6:
            raise RuntimeError("loss exploded on purpose")
        return base(a, b)

    with pytest.raises(RuntimeError, match="on purpose"):
        range_test(fw)(model, x, y, loss=flaky, optimizer="adam", start_lr=1e-3, end_lr=1.0, num_steps=20)
    assert len(calls) == 6
    assert_bit_identical(before, state_of(fw, model))
    if fw == "torch":
        assert not any(m.training for m in model.modules())


def test_torch_range_test_keeps_global_rng_and_grads(digits):
    model = digits_cnn("torch")
    x, y = data_for("torch", digits)
    model(torch.from_numpy(x[:4])).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    tlr.lr_range_test(model, x, y, num_steps=5, optimizer="adamw")
    assert torch.equal(torch.rand(3), expected)
    for p, g in zip(model.parameters(), grads):
        assert torch.equal(p.grad, g)


def test_keras_range_test_restores_a_compiled_optimizer(digits):
    model = digits_cnn("keras")
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="mse")
    model.optimizer.build(model.trainable_variables)
    x, y = data_for("keras", digits)
    before = state_of("keras", model)
    # The factory hands back the compiled optimizer itself, so the test really moves its state.
    klr.lr_range_test(model, x, y, optimizer=lambda lr: model.optimizer, num_steps=5)
    assert_bit_identical(before, state_of("keras", model))


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_lr_range_test_multi_input_and_progress(fw):
    data = make_two_branch(n=128, scale=1.0, layout="NCHW" if fw == "torch" else "NHWC")
    if fw == "torch":
        class TwoBranch(nn.Module):
            def __init__(self):
                super().__init__()
                self.a, self.b = nn.Conv2d(1, 4, 3), nn.Conv2d(1, 4, 3)
                self.head = nn.Linear(2 * 4 * 36, 2)

            def forward(self, a, b):
                return self.head(torch.cat([self.a(a), self.b(b)], 1).flatten(1))

        model = TwoBranch()
    else:
        ia, ib = keras.Input((8, 8, 1)), keras.Input((8, 8, 1))
        fused = keras.layers.Concatenate()([keras.layers.Conv2D(4, 3)(ia), keras.layers.Conv2D(4, 3)(ib)])
        model = keras.Model([ia, ib], keras.layers.Dense(2)(keras.layers.Flatten()(fused)))
    before = state_of(fw, model)
    result = range_test(fw)(model, data.inputs, data.y, num_steps=8, batch_size=32, progress=True)
    assert len(result.lrs) == 8
    assert_bit_identical(before, state_of(fw, model))


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_lr_range_test_argument_errors(fw, digits):
    model = digits_cnn(fw)
    x, y = data_for(fw, digits)
    run = range_test(fw)
    with pytest.raises(ValueError, match=r"end_lr must exceed start_lr; received start_lr=1.0, end_lr=0.1"):
        run(model, x, y, start_lr=1.0, end_lr=0.1)
    with pytest.raises(ValueError, match=r"optimizer must be one of \['sgd', 'adam', 'adamw'\] or a factory"):
        run(model, x, y, optimizer="rmsprop")
    with pytest.raises(ValueError, match=r"x and y must hold the same.*\[512\] and 100 labels"):
        run(model, x, y[:100])
    with pytest.raises(ValueError, match=r"smooth is the weight of the newest loss"):
        run(model, x, y, smooth=0.0)


def test_recorder_smoothing_and_suggestion():
    rec = schedules.RangeTestRecorder(smooth=0.5, diverge_factor=4.0)
    assert rec.record(1e-3, 2.0) and rec.losses == [2.0]  # bias correction: no pull towards 0
    assert rec.record(1e-2, 1.0) and rec.losses[-1] == pytest.approx((0.25 * 2 + 0.5 * 1) / 0.75)
    assert not rec.record(1e-1, float("nan")) and rec.diverged_at == 1e-1 and len(rec.losses) == 2
    # Steepest fall per decade before the minimum: between 1e-3 and 1e-2 here.
    assert schedules.suggest_lr([1e-4, 1e-3, 1e-2, 1e-1], [2.0, 1.9, 1.0, 0.9]) in (1e-3, 1e-2)
    assert schedules.suggest_lr([1e-4, 1e-3, 1e-2], [1.0, 2.0, 3.0]) is None


# --- schedules -------------------------------------------------------------------------------

SCHEDULE_CASES = [
    ("constant", {}),
    ("step", {"step_size": 7, "gamma": 0.5}),
    ("cosine", {}),
    ("cosine", {"final_lr": 1e-3}),
    ("one_cycle", {}),
    ("one_cycle", {"max_lr": 0.4}),
    ("warmup_cosine", {"warmup_steps": 10}),
    ("warmup_cosine", {"warmup_steps": 10, "final_lr": 1e-3}),
]
TOTAL = 53


def torch_lrs(scheduler_factory, steps: int, momentum: float = 0.0) -> list[float]:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=123.0, momentum=momentum)
    scheduler = scheduler_factory(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize("name, kw", SCHEDULE_CASES, ids=[f"{n}-{k}" for n, k in SCHEDULE_CASES])
def test_torch_and_keras_schedules_agree_at_every_step(name, kw):
    t = np.array(torch_lrs(tlr.make_schedule(name, base_lr=0.1, total_steps=TOTAL, **kw), TOTAL + 3))
    schedule = klr.make_schedule(name, base_lr=0.1, total_steps=TOTAL, **kw)
    k = np.array([float(schedule(step)) for step in range(TOTAL + 3)])
    np.testing.assert_allclose(k, t, rtol=SCHEDULE_RTOL, atol=0)
    np.testing.assert_allclose(t[:TOTAL], tlr.schedule_values(name, base_lr=0.1, total_steps=TOTAL, **kw),
                               rtol=1e-12, atol=0)
    assert len(set(t[TOTAL:])) == 1  # after total_steps the LR stays put
    assert t[0] == pytest.approx(schedules.lr_at(name, 0, base_lr=0.1, total_steps=TOTAL, **kw))


def test_one_cycle_equals_torch_onecycle():
    for total, peak in ((TOTAL, 0.1), (10, 0.3), (1000, 0.05)):
        ref = torch_lrs(
            lambda opt, peak=peak, total=total: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=peak, total_steps=total),
            total, momentum=0.9,
        )
        ours = torch_lrs(tlr.make_schedule("one_cycle", base_lr=peak, total_steps=total), total)
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=0)


def test_warmup_is_linear_and_schedules_fit_their_definitions():
    v = schedules.schedule_values("warmup_cosine", base_lr=0.1, total_steps=50, warmup_steps=10)
    np.testing.assert_allclose(v[:11], [0.1 * i / 10 for i in range(11)], rtol=1e-12, atol=1e-15)
    assert np.all(np.diff(v[10:]) < 0)
    step = schedules.schedule_values("step", base_lr=1.0, total_steps=9, step_size=3, gamma=0.1)
    np.testing.assert_allclose(step, [1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01], rtol=1e-12)
    cos = schedules.schedule_values("cosine", base_lr=1.0, total_steps=4, final_lr=0.0)
    np.testing.assert_allclose(cos, [1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2])


def test_keras_schedule_in_graph_mode_optimizer_and_config():
    schedule = klr.make_schedule("one_cycle", base_lr=0.2, total_steps=20)
    graph = tf.function(lambda s: schedule(s))
    np.testing.assert_allclose([float(graph(tf.constant(i, tf.int64))) for i in range(20)],
                               schedules.schedule_values("one_cycle", base_lr=0.2, total_steps=20), rtol=SCHEDULE_RTOL)
    var = keras.Variable(np.zeros(2, "float32"))
    opt = keras.optimizers.SGD(learning_rate=schedule)
    for _ in range(3):
        opt.apply_gradients([(keras.ops.ones(2), var)])
    assert float(opt.learning_rate) == pytest.approx(schedules.lr_at("one_cycle", 3, base_lr=0.2, total_steps=20), rel=1e-6)
    clone = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert isinstance(clone, klr.NamedSchedule) and float(clone(7)) == float(schedule(7))


@pytest.mark.parametrize("make", [tlr.make_schedule, klr.make_schedule], ids=FRAMEWORKS)
def test_schedule_errors(make):
    with pytest.raises(ValueError, match=r"unknown schedule 'linear'; valid schedules are \['constant', 'step', "
                                         r"'cosine', 'one_cycle', 'warmup_cosine'\]"):
        make("linear", base_lr=0.1, total_steps=10)
    with pytest.raises(ValueError, match=r"'step' schedule .* received step_size=None"):
        make("step", base_lr=0.1, total_steps=10)
    with pytest.raises(ValueError, match=r"warmup_steps applies to 'warmup_cosine' only"):
        make("cosine", base_lr=0.1, total_steps=10, warmup_steps=2)
    with pytest.raises(ValueError, match=r"0 <= warmup_steps < total_steps; received warmup_steps=10"):
        make("warmup_cosine", base_lr=0.1, total_steps=10, warmup_steps=10)
    with pytest.raises(ValueError, match=r"max_lr applies to 'one_cycle' only"):
        make("cosine", base_lr=0.1, total_steps=10, max_lr=1.0)
    with pytest.raises(ValueError, match=r"base_lr must be a finite number > 0; received 0"):
        make("constant", base_lr=0, total_steps=10)


def test_torch_schedule_needs_an_optimizer():
    with pytest.raises(TypeError, match=r"returns a function of a torch optimizer; received a list"):
        tlr.make_schedule("constant", base_lr=0.1, total_steps=5)([])


# --- import isolation ------------------------------------------------------------------------

def test_modules_import_only_their_framework():
    check = "import sys, {mods}; print(','.join(m for m in {forbidden!r} if m in sys.modules))"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    jobs = {
        "coursekit.torch.init, coursekit.torch.lr": ("tensorflow", "keras"),
        "coursekit.keras.init, coursekit.keras.lr": ("torch",),
        "coursekit.init_schemes, coursekit.schedules": ("torch", "tensorflow", "keras"),
    }
    # All at once: each interpreter start costs seconds.
    procs = {
        mods: subprocess.Popen(
            [sys.executable, "-c", check.format(mods=mods, forbidden=forbidden)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for mods, forbidden in jobs.items()
    }
    for mods, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.strip() == "", f"importing {mods} also imported {out.strip()}"
