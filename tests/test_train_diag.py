"""coursekit.{torch,keras}.train and .diagnostics, coursekit.diagnostics_report and
coursekit.plots_diag.

Twin tests run once per framework through a small kit (`TorchKit`, `KerasKit`) that builds
the same models in each; torch data is NCHW, keras data NHWC.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import matplotlib

matplotlib.use("Agg")

from coursekit.data import load_digits, make_two_branch
from coursekit.diagnostics_report import (
    BranchReport,
    BranchStats,
    GradStats,
    collapse_report,
    summarize_values,
)
from coursekit.history import History, LRRangeResult

REPO = Path(__file__).resolve().parents[1]
N_TRAIN = 600
FRAMEWORKS = ["torch", "keras"]


# --------------------------------------------------------------------------------------------
# Kits: the same models in both frameworks
# --------------------------------------------------------------------------------------------


class TorchKit:
    name = "torch"
    layout = "NCHW"

    def __init__(self) -> None:
        torch = pytest.importorskip("torch")
        from coursekit.torch import diagnostics, train

        self.torch, self.nn = torch, torch.nn
        self.train, self.diag = train, diagnostics

    def seed(self, seed: int = 0) -> None:
        self.torch.manual_seed(seed)

    def cnn(self, bias: float | None = None):
        nn = self.nn
        model = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32 * 4 * 4, 10),
        )
        if bias is not None:
            nn.init.constant_(model[0].bias, bias)
        return model

    relu_name = "1"

    def zero_last(self, model):
        with self.torch.no_grad():
            model[-1].weight.zero_()
        return model

    def two_branch(self):
        torch, nn = self.torch, self.nn

        class Concat(nn.Module):
            def forward(self, maps):
                return torch.cat(maps, dim=1)  # (N, C_a + C_b, H, W)

        class TwoBranch(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.a = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
                self.b = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
                self.fuse = Concat()
                self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 8 * 8, 2))

            def forward(self, xa, xb):
                return self.head(self.fuse([self.a(xa), self.b(xb)]))

        return TwoBranch()

    def param_count(self, model) -> int:
        return len(list(model.parameters()))


class KerasKit:
    name = "keras"
    layout = "NHWC"

    def __init__(self) -> None:
        pytest.importorskip("tensorflow")
        from coursekit.keras import _tf, diagnostics, train

        self.keras = _tf.keras
        self.train, self.diag = train, diagnostics

    def seed(self, seed: int = 0) -> None:
        self.keras.utils.set_random_seed(seed)

    def cnn(self, bias: float | None = None):
        keras = self.keras
        L = keras.layers
        init = "zeros" if bias is None else keras.initializers.Constant(bias)
        return keras.Sequential([
            keras.Input((8, 8, 1)),
            L.Conv2D(16, 3, padding="same", bias_initializer=init), L.ReLU(name="relu1"), L.MaxPooling2D(),
            L.Conv2D(32, 3, padding="same"), L.ReLU(), L.Flatten(), L.Dense(10),
        ])

    relu_name = "relu1"

    def zero_last(self, model):
        last = model.layers[-1]
        last.kernel.assign(self.keras.ops.zeros_like(last.kernel))
        return model

    def two_branch(self):
        keras = self.keras
        L = keras.layers
        ia, ib = keras.Input((8, 8, 1), name="a"), keras.Input((8, 8, 1), name="b")
        a = L.Conv2D(4, 3, padding="same", activation="relu")(ia)
        b = L.Conv2D(4, 3, padding="same", activation="relu")(ib)
        fused = L.Concatenate(name="fuse")([a, b])  # (N, 8, 8, 8)
        return keras.Model([ia, ib], L.Dense(2)(L.Flatten()(fused)))

    def param_count(self, model) -> int:
        return len(model.trainable_weights)


@pytest.fixture(scope="module", params=FRAMEWORKS)
def kit(request):
    return TorchKit() if request.param == "torch" else KerasKit()


@pytest.fixture(scope="module")
def digits():
    return {layout: load_digits(layout) for layout in ("NCHW", "NHWC")}


_TRAINED: dict = {}


@pytest.fixture(scope="module")
def trained(kit, digits):
    """A CNN trained on 600 digits for 3 epochs, and its History (once per framework)."""
    if kit.name not in _TRAINED:
        xtr, ytr, xte, yte = digits[kit.layout]
        kit.seed(0)
        model = kit.cnn()
        history = kit.train.fit(
            model, (xtr[:N_TRAIN], ytr[:N_TRAIN]), (xte, yte), epochs=3, lr=3e-3, batch_size=32, progress=False
        )
        _TRAINED[kit.name] = (model, history)
    return _TRAINED[kit.name]


# --------------------------------------------------------------------------------------------
# fit / evaluate / predict
# --------------------------------------------------------------------------------------------


def test_fit_learns_digits(kit, trained, digits):
    model, history = trained
    assert isinstance(history, History)
    assert history.epochs == 3 and len(history.seconds) == 3
    assert history["loss"][-1] < history["loss"][0]
    assert history.last("val_accuracy") > 0.8, history.metrics
    _, _, xte, yte = digits[kit.layout]
    scores = kit.train.evaluate(model, xte, yte)
    assert set(scores) == {"loss", "accuracy"}
    np.testing.assert_allclose(scores["loss"], history.last("val_loss"), rtol=1e-4)
    np.testing.assert_allclose(scores["accuracy"], history.last("val_accuracy"), atol=1e-6)
    out = kit.train.predict(model, xte[:70], batch_size=32)
    assert out.shape == (70, 10) and isinstance(out, np.ndarray)


def test_history_keys_match_across_frameworks(digits):
    histories = {}
    for kit_cls in (TorchKit, KerasKit):
        k = kit_cls()
        if k.name not in _TRAINED:
            xtr, ytr, xte, yte = digits[k.layout]
            k.seed(0)
            model = k.cnn()
            _TRAINED[k.name] = (model, k.train.fit(
                model, (xtr[:N_TRAIN], ytr[:N_TRAIN]), (xte, yte), epochs=3, lr=3e-3, batch_size=32, progress=False
            ))
        histories[k.name] = _TRAINED[k.name][1]
    assert list(histories["torch"].metrics) == list(histories["keras"].metrics) == [
        "loss", "accuracy", "val_loss", "val_accuracy"
    ]


def test_keras_validation_matches_keras_own_every_epoch(monkeypatch):
    """keras fit validates with its own compiled pass (Keras' per-epoch evaluate() set-up was a
    third of a small run); each epoch's val_* must equal what Keras' validation_data computes on
    the same weights: a two-input model, a ragged last batch (100 = 3 x 32 + 4), and cross-entropy
    and one-hot (categorical accuracy, MSE) targets."""
    from coursekit.keras import _tf, train as keras_train
    from coursekit.keras.models import two_branch_net
    from coursekit.keras.train import fit

    # the callback goes on the model's own fit: train it there, not on a reused stand-in (whose
    # validation is the same _Validation, tests/test_keras_reuse.py)
    monkeypatch.setattr(keras_train, "REUSE_TRACES", False)
    keras = _tf.keras
    data = make_two_branch(n=300, scale=3.0, layout="NHWC", seed=2)
    train, val = (data.inputs[0][:200], data.inputs[1][:200]), (data.inputs[0][200:], data.inputs[1][200:])
    for loss, y in (("cross_entropy", data.y), ("mse", np.eye(data.n_classes, dtype="float32")[data.y])):
        keras.utils.set_random_seed(0)
        model = two_branch_net(n_classes=data.n_classes, width=4)
        keras_own: list[dict] = []
        model.fit = _with_callback(model.fit, keras_validation_callback(keras, list(val), y[200:], keras_own))
        history = fit(model, (list(train), y[:200]), (list(val), y[200:]), epochs=3, loss=loss, lr=3e-3,
                      batch_size=32, progress=False)
        assert len(keras_own) == 3
        np.testing.assert_allclose(history["val_loss"], [r["loss"] for r in keras_own], rtol=1e-5, err_msg=loss)
        np.testing.assert_allclose(history["val_accuracy"], [r["accuracy"] for r in keras_own], atol=1e-6, err_msg=loss)


def keras_validation_callback(keras, x, y, sink: list):
    """A callback that records Keras' own validation (model.evaluate) on each epoch's weights."""
    class KerasValidation(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            sink.append(self.model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True))
    return KerasValidation()


def _with_callback(fit_method, callback):
    def fit_with(*args, callbacks=(), **kwargs):
        return fit_method(*args, callbacks=[*callbacks, callback], **kwargs)
    return fit_with


def test_fit_two_input_fusion_model(kit):
    data = make_two_branch(n=192, scale=1.0, layout=kit.layout, seed=1)
    kit.seed(0)
    model = kit.two_branch()
    history = kit.train.fit(model, (data.inputs, data.y), epochs=2, lr=3e-3, batch_size=32, progress=False)
    assert list(history.metrics) == ["loss", "accuracy"]
    assert all(np.isfinite(history["loss"]))
    assert kit.train.predict(model, data.inputs).shape == (192, 2)


@pytest.mark.parametrize("progress", [False, True])
def test_fit_writes_nothing_to_stderr(kit, digits, capfd, progress, monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    xtr, ytr, _, _ = digits[kit.layout]
    kit.seed(0)
    kit.train.fit(kit.cnn(), (xtr[:64], ytr[:64]), (xtr[64:96], ytr[64:96]), epochs=2, progress=progress)
    out, err = capfd.readouterr()
    assert err == ""
    assert ("fit" in out) == progress  # the bar goes to stdout, and only when asked for


def test_progress_bar_off_under_nbgrader(kit, digits, capfd, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    xtr, ytr, _, _ = digits[kit.layout]
    kit.train.fit(kit.cnn(), (xtr[:32], ytr[:32]), epochs=1, progress=True)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_fit_rejects_bad_options(kit, digits):
    xtr, ytr, _, _ = digits[kit.layout]
    model = kit.cnn()
    with pytest.raises(ValueError, match=r"optimizer must be one of \('adam', 'sgd', 'adamw', 'rmsprop'\).*'adagrad'"):
        kit.train.fit(model, (xtr[:32], ytr[:32]), optimizer="adagrad", progress=False)
    with pytest.raises(ValueError, match="loss must be one of .*'hinge'"):
        kit.train.fit(model, (xtr[:32], ytr[:32]), loss="hinge", progress=False)
    with pytest.raises(ValueError, match=r"one row per label.*\(32, 1, 8, 8\)|one row per label.*\(32, 8, 8, 1\)"):
        kit.train.fit(model, (xtr[:32], ytr[:31]), progress=False)
    with pytest.raises(TypeError, match="pair \\(x, y\\)"):
        kit.train.fit(model, (xtr[:32], ytr[:32], ytr[:32]), progress=False)
    with pytest.raises(ValueError, match="epochs must be a positive int; received 0"):
        kit.train.fit(model, (xtr[:32], ytr[:32]), epochs=0, progress=False)


def test_fit_other_optimizers_losses_and_metrics(kit, digits):
    xtr, ytr, _, _ = digits[kit.layout]
    onehot = np.eye(10, dtype=np.float32)[ytr[:64]]
    h = kit.train.fit(kit.cnn(), (xtr[:64], onehot), epochs=1, optimizer="sgd", lr=0.01, loss="mse", progress=False)
    assert set(h.metrics) == {"loss", "accuracy"}
    h = kit.train.fit(kit.cnn(), (xtr[:64], ytr[:64]), epochs=1, optimizer="rmsprop", metrics=(), progress=False)
    assert list(h.metrics) == ["loss"]
    h = kit.train.fit(kit.cnn(), (xtr[:64], onehot), epochs=1, optimizer="adamw", loss="bce", progress=False)
    assert 0.0 <= h.last("accuracy") <= 1.0  # for bce: the share of correct 0/1 entries


# --- torch specifics --------------------------------------------------------------------------


def _torch_devices() -> list[str]:
    try:
        import torch
    except ImportError:  # the test itself skips
        return ["cpu"]
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", _torch_devices())
def test_torch_modes_and_device(device, digits, monkeypatch):
    tk = TorchKit()
    torch, nn = tk.torch, tk.nn
    xtr, ytr, xte, yte = digits["NCHW"]

    class Recorder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.modes: list[tuple[bool, bool, str]] = []

        def forward(self, x):
            self.modes.append((self.training, torch.is_grad_enabled(), x.device.type))
            return x

    recorder = Recorder()
    model = nn.Sequential(recorder, nn.Flatten(), nn.Linear(64, 10))
    calls = []
    monkeypatch.setattr(tk.train, "get_device", lambda: calls.append(1) or torch.device(device))
    h = tk.train.fit(model, (xtr[:64], ytr[:64]), (xte[:40], yte[:40]), epochs=2, batch_size=32, progress=False)
    assert calls == [1]  # the default device comes from get_device()
    assert next(model.parameters()).device.type == device
    # per epoch: 2 training batches (train mode, grad on), then 2 validation batches (eval, no_grad)
    assert recorder.modes == ([(True, True, device)] * 2 + [(False, False, device)] * 2) * 2
    assert model.training  # left in the mode it had before
    assert h.epochs == 2


def test_torch_schedule_dataloader_and_optimizer_instance(digits):
    tk = TorchKit()
    torch = tk.torch
    xtr, ytr, _, _ = digits["NCHW"]
    model = tk.cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tk.train.fit(
        model, (xtr[:64], ytr[:64]), epochs=2, batch_size=32, optimizer=opt, progress=False, device="cpu",
        schedule=lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.5),
    )
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**4)  # stepped once per batch
    ds = torch.utils.data.TensorDataset(torch.as_tensor(xtr[:64]), torch.as_tensor(ytr[:64]))
    loader = torch.utils.data.DataLoader(ds, batch_size=16, shuffle=True)
    h = tk.train.fit(model, loader, (xtr[64:96], ytr[64:96]), epochs=1, progress=False, device="cpu")
    assert set(h.metrics) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_keras_schedule_dataset_and_existing_compile(digits):
    kk = KerasKit()
    keras = kk.keras
    import tensorflow as tf

    xtr, ytr, _, _ = digits["NHWC"]
    model = kk.cnn()
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    kk.train.fit(model, (xtr[:64], ytr[:64]), epochs=2, batch_size=32, optimizer="sgd", schedule=schedule, progress=False)
    assert int(model.optimizer.iterations) == 4  # the schedule sees every batch
    ds = tf.data.Dataset.from_tensor_slices((xtr[:64], ytr[:64])).batch(16)
    h = kk.train.fit(model, ds, (xtr[64:96], ytr[64:96]), epochs=1, optimizer=None, loss=None, progress=False)
    assert set(h.metrics) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    h = kk.train.fit(kk.cnn(), (xtr[:32], ytr[:32]), epochs=1, device="CPU:0", progress=False)
    assert h.epochs == 1
    with pytest.raises(ValueError, match="not compiled"):
        kk.train.fit(kk.cnn(), (xtr[:32], ytr[:32]), optimizer=None, loss=None, progress=False)


def test_public_api_mirrors():
    tk, kk = TorchKit(), KerasKit()
    for mod_t, mod_k in ((tk.train, kk.train), (tk.diag, kk.diag)):
        assert mod_t.__all__ == mod_k.__all__
        for name in mod_t.__all__:
            ft, fk = getattr(mod_t, name), getattr(mod_k, name)
            if callable(ft):
                pt = [(p.name, p.kind, p.default) for p in inspect.signature(ft).parameters.values()]
                pk = [(p.name, p.kind, p.default) for p in inspect.signature(fk).parameters.values()]
                assert pt == pk, name
                assert ft.__doc__ and fk.__doc__


# --------------------------------------------------------------------------------------------
# Diagnostics
# --------------------------------------------------------------------------------------------


def test_activation_stats_flags_dead_relus(kit, digits):
    x = digits[kit.layout][2][:64]
    kit.seed(0)
    healthy = kit.diag.activation_stats(kit.cnn(), x)
    dead = kit.diag.activation_stats(kit.cnn(bias=-10.0), x)
    assert healthy.by_name(kit.relu_name).frac_zero < 0.5
    assert dead.by_name(kit.relu_name).frac_zero > 0.99
    assert dead.by_name(kit.relu_name).frac_zero_entries > 0.99
    kinds = [s.kind for s in healthy]
    assert "Flatten" not in kinds and any("Conv" in k for k in kinds)
    s = healthy[0]
    assert s.values.size <= 20_000 and s.shape[0] == 64
    assert "dead" in str(healthy) and "layer" in str(healthy).splitlines()[0]
    picked = kit.diag.activation_stats(kit.cnn(), x, layers=[kit.relu_name])
    assert [p.name for p in picked] == [kit.relu_name]
    with pytest.raises(KeyError, match="no layer named 'nope'"):
        kit.diag.activation_stats(kit.cnn(), x, layers=["nope"])


def test_activation_stats_includes_fusion_layer(kit):
    data = make_two_branch(n=32, layout=kit.layout)
    stats = kit.diag.activation_stats(kit.two_branch(), data.inputs)
    fused = stats.by_name("fuse")
    assert fused.shape == (32, 8, 8, 8)
    assert [s.name for s in stats].index("fuse") == len(stats) - 2  # after both branches, before the head


@pytest.mark.parametrize("scale", [100.0, 1.0])
def test_branch_report_shows_scale_imbalance(kit, scale):
    data = make_two_branch(n=128, scale=scale, layout=kit.layout, seed=0)
    kit.seed(0)
    model = kit.two_branch()
    report = kit.diag.branch_report(model, data.inputs, data.y)
    assert report.fusion == "fuse" and len(report.branches) == 2
    assert sum(report.grad_shares) == pytest.approx(1.0)
    assert sum(report.param_grad_shares) == pytest.approx(1.0)
    if scale == 100.0:
        assert report.dominant == 1 and report.scale_shares[1] > 0.9
        assert report.param_grad_shares[1] > 0.9  # the big branch also takes the weight updates
        assert "dominates" in str(report)
    else:
        assert 0.3 < report.scale_shares[0] < 0.7
        assert "dominates" not in str(report)
    again = kit.diag.branch_report(model, data.inputs, data.y, fusion="fuse")
    assert again.scales == pytest.approx(report.scales)


def test_branch_report_without_fusion_layer(kit, digits):
    x, y = digits[kit.layout][2][:16], digits[kit.layout][3][:16]
    with pytest.raises(LookupError, match="no fusion layer found"):
        kit.diag.branch_report(kit.cnn(), x, y)


def test_is_collapsed(kit, trained, digits):
    x = digits[kit.layout][2][:64]
    kit.seed(0)
    collapsed = kit.diag.is_collapsed(kit.zero_last(kit.cnn()), x)
    assert collapsed.collapsed and collapsed.constant and collapsed.reason == "constant"
    assert collapsed.n_distinct_predictions == 1 and "collapsed" in str(collapsed)
    healthy = kit.diag.is_collapsed(trained[0], x)
    assert not healthy.collapsed and healthy.n_distinct_predictions > 5 and healthy.spread > 0.1
    assert not kit.diag.is_collapsed(kit.cnn(), x).constant


def test_find_untrainable_parameters_healthy(kit, digits):
    x, y = digits[kit.layout][2][:16], digits[kit.layout][3][:16]
    assert kit.diag.find_untrainable_parameters(kit.cnn()) == []
    assert kit.diag.find_untrainable_parameters(kit.cnn(), x, y) == []


LOOSE_WEIGHT = None  # set by the torch test: a parameter created outside the module


def test_find_untrainable_parameters_torch(digits):
    global LOOSE_WEIGHT
    tk = TorchKit()
    torch, nn = tk.torch, tk.nn
    x, y = digits["NCHW"][2][:16], digits["NCHW"][3][:16]
    LOOSE_WEIGHT = nn.Parameter(torch.rand(1))  # the course's bug: created outside the module

    class Buggy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Linear(64, 10)
            self.gains = [nn.Parameter(torch.ones(1))]  # a plain list: never registered
            self.frozen = nn.Linear(10, 10)
            self.frozen.requires_grad_(False)

        def forward(self, x):
            return self.frozen(self.body(x.flatten(1)) * self.gains[0] * LOOSE_WEIGHT)

    model = Buggy()
    found = tk.diag.find_untrainable_parameters(model, x, y)
    text = "\n".join(found)
    assert len(found) == 3, text
    assert "model.gains[0]" in text and "plain list" in text and "nn.ParameterList" in text
    assert "layer frozen (Linear) is frozen" in text
    assert "global variable `LOOSE_WEIGHT`" in text
    static = tk.diag.find_untrainable_parameters(model)  # without data: the list and the frozen layer
    assert len(static) == 2

    healthy = tk.cnn()
    opt = torch.optim.Adam(list(healthy.parameters())[:-2])
    missing = tk.diag.find_untrainable_parameters(healthy, optimizer=opt)
    assert len(missing) == 1 and "6.weight, 6.bias" in missing[0]


def test_find_untrainable_parameters_keras(digits):
    kk = KerasKit()
    keras = kk.keras
    L = keras.layers
    x, y = digits["NHWC"][2][:16], digits["NHWC"][3][:16]
    global LOOSE_WEIGHT
    LOOSE_WEIGHT = keras.Variable(1.0, name="loose")

    class Gain(L.Layer):
        def build(self, shape):
            self.g = self.add_weight(shape=(1,), initializer="ones", trainable=False)

        def call(self, x):
            return x * self.g * LOOSE_WEIGHT

    model = keras.Sequential([
        keras.Input((8, 8, 1)), L.Flatten(), L.Dense(10), Gain(name="gain"), L.Dense(10, name="frozen"),
        L.BatchNormalization(),
    ])
    model.get_layer("frozen").trainable = False
    found = kk.diag.find_untrainable_parameters(model, x, y)
    text = "\n".join(found)
    assert len(found) == 3, text
    assert "gain" in text and "trainable=False" in text
    assert "layer sequential" in text and "frozen (Dense) is frozen" in text
    assert "global variable `LOOSE_WEIGHT`" in text
    assert "moving_mean" not in text  # BatchNorm statistics are not frozen weights


def test_gradient_flow_lists_every_parameter(kit, digits):
    x, y = digits[kit.layout][2][:32], digits[kit.layout][3][:32]
    kit.seed(0)
    model = kit.cnn()
    flow = kit.diag.gradient_flow(model, x, y)
    assert len(flow) == kit.param_count(model) == 6
    assert all(isinstance(g, GradStats) and g.has_grad and g.grad_norm > 0 for g in flow)
    assert "kernel" in flow[0].name or flow[0].name == "0.weight"  # input side first
    assert "|grad|" in str(flow)


# --------------------------------------------------------------------------------------------
# Neutral reports and plots
# --------------------------------------------------------------------------------------------


def test_reports_text_and_rules():
    s = summarize_values("relu", "ReLU", np.maximum(np.random.default_rng(0).standard_normal((8, 50_000)), 0))
    assert s.values.size == 20_000 and 0 <= s.frac_zero < 0.01 and 0.4 < s.frac_zero_entries < 0.6
    single = collapse_report(np.tile([[0.0, 3.0]], (10, 1)) + np.linspace(0, 1, 10)[:, None], input_spread=1.0)
    assert single.collapsed and single.single_class and not single.constant
    assert not collapse_report(np.tile([[0.0, 3.0]], (10, 1)) + np.linspace(0, 1, 10)[:, None], 1.0, y=[0] * 10)
    with pytest.raises(ValueError, match="at least 2 samples"):
        collapse_report(np.zeros((1, 3)), 1.0)


def _fake_branch_report() -> BranchReport:
    branches = [
        BranchStats(0, (4, 8), 0.1, 0.2, 0.15, 0.5, 0.6, 0.1, 0.01, 10),
        BranchStats(1, (4, 8), 10.0, 20.0, 15.0, 0.4, 0.4, 10.0, 0.99, 10),
    ]
    return BranchReport("fuse", "Concat", branches, loss=0.7)


def test_plots_return_figures():
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from coursekit import plots_diag as pd

    h1, h2 = History(), History()
    for i in range(3):
        h1.append({"loss": 1.0 / (i + 1), "val_loss": 1.2 / (i + 1)}, 0.1)
        h2.append({"loss": 2.0 / (i + 1), "val_loss": 2.2 / (i + 1)}, 0.1)
    stats = [
        summarize_values("conv", "Conv2d", np.random.default_rng(0).standard_normal((16, 4, 5, 5))),
        summarize_values("relu", "ReLU", np.zeros((16, 4, 5, 5))),
    ]
    grads = [GradStats("w", (3, 3), 0.1, 1.0, 0.1), GradStats("b", (3,), 0.0, 0.0, 0.0, has_grad=False)]
    lr = LRRangeResult(list(np.logspace(-5, 0, 20)), list(np.linspace(2, 1, 20)), list(np.linspace(2, 1, 20)), 1e-3, 0.5)
    figs = [
        pd.plot_history({"a": h1, "b": h2}, log_scale=True),
        pd.plot_history(h1, metrics=("loss",)),
        pd.plot_activation_histograms(stats, bins=20),
        pd.plot_branch_report(_fake_branch_report()),
        pd.plot_gradient_flow(grads),
        pd.plot_lr_range(lr),
    ]
    assert all(isinstance(f, Figure) for f in figs)
    with pytest.raises(KeyError, match="no run has metric"):
        pd.plot_history(h1, metrics=("accuracy",))
    plt.close("all")


def test_plots_from_real_diagnostics(kit, digits):
    import matplotlib.pyplot as plt

    from coursekit import plots_diag as pd

    x, y = digits[kit.layout][2][:32], digits[kit.layout][3][:32]
    model = kit.cnn()
    pd.plot_activation_histograms(kit.diag.activation_stats(model, x))
    pd.plot_gradient_flow(kit.diag.gradient_flow(model, x, y))
    data = make_two_branch(n=64, layout=kit.layout)
    pd.plot_branch_report(kit.diag.branch_report(kit.two_branch(), data.inputs, data.y))
    plt.close("all")


# --------------------------------------------------------------------------------------------
# Import isolation
# --------------------------------------------------------------------------------------------


def test_import_isolation():
    cases = {
        "coursekit.torch.train, coursekit.torch.diagnostics": ("tensorflow", "keras"),
        "coursekit.keras.train, coursekit.keras.diagnostics": ("torch",),
        "coursekit.diagnostics_report, coursekit.plots_diag, coursekit.history": ("torch", "tensorflow", "keras", "matplotlib"),
    }
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    procs = {
        mods: subprocess.Popen(
            [sys.executable, "-c", f"import sys, {mods}; print(','.join(m for m in {forbidden!r} if m in sys.modules))"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for mods, forbidden in cases.items()
    }
    for mods, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        assert out.strip() == "", f"importing {mods} loaded {out.strip()}"


def test_accuracy_needs_class_targets(kit, digits):
    xtr, _, _, _ = digits[kit.layout]
    model = kit.cnn()
    target = np.zeros(32, np.float32)  # regression targets: accuracy means nothing
    with pytest.raises(ValueError, match=r"metric 'accuracy' needs integer labels.*metrics=\(\)"):
        kit.train.fit(model, (xtr[:32], target), loss="mse", progress=False)
