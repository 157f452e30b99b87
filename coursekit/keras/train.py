"""A small training helper for Keras 3 models: `fit`, `evaluate`, `predict`.

Twin of `coursekit.torch.train`: same names, same signatures, same `History` keys ('loss',
'accuracy', 'val_loss', 'val_accuracy'). `fit` compiles the model and runs Keras' own
``model.fit(verbose=0)``; a callback collects the history and drives the progress bar, so it
costs no more than a plain ``model.fit`` (bench/fit_overhead.py). This module must never
import PyTorch.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import memo
from ..history import History
from . import _tf

tf, keras = _tf.tf, _tf.keras

from ..progress import runs_bar
from ..training import LOSSES, OPTIMIZERS
from ..training import check_metrics as _check_metrics
from ..training import describe as _describe
from ..training import positive_int as _positive_int
from ..training import progress as _progress
from ..training import short as _short

__all__ = ["LOSSES", "OPTIMIZERS", "evaluate", "fit", "predict", "runs_bar"]



# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


def _make_optimizer(optimizer: Any, lr: Any):
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    if not isinstance(optimizer, str) or optimizer.lower() not in OPTIMIZERS:
        raise ValueError(
            f"optimizer must be one of {OPTIMIZERS} or a keras.optimizers.Optimizer; received "
            f"{optimizer!r}. Example: fit(model, train, optimizer='sgd', lr=0.01)."
        )
    name = optimizer.lower()
    # The same hyperparameters as the PyTorch twin, so both halves train alike.
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=lr, epsilon=1e-8)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=0.9)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=0.01, epsilon=1e-8)
    return keras.optimizers.RMSprop(learning_rate=lr, rho=0.9)


def _resolve_loss(loss: Any) -> tuple[str, Any]:
    if callable(loss) and not isinstance(loss, str):
        return "custom", loss
    if not isinstance(loss, str) or loss.lower() not in LOSSES:
        raise ValueError(
            f"loss must be one of {LOSSES} or a callable (y_true, y_pred) -> loss; received "
            f"{loss!r}. Use 'cross_entropy' for integer class labels and logits."
        )
    name = loss.lower()
    if name == "cross_entropy":
        return name, keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if name == "mse":
        return name, keras.losses.MeanSquaredError()
    return name, keras.losses.BinaryCrossentropy(from_logits=True)


def _accuracy_metric(loss_name: str, y: Any):
    """The Keras metric that counts like the torch twin's accuracy, named 'accuracy'."""
    if loss_name == "bce":
        return keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)  # logits: > 0
    if loss_name == "cross_entropy" or _is_integer(y):
        return keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    shape = tuple(getattr(y, "shape", ()))
    if y is not None and not (len(shape) == 2 and shape[1] > 1):
        # Same rule as the torch twin: float targets count as classes only when one-hot.
        raise ValueError(
            f"metric 'accuracy' needs integer labels of shape (N,) with outputs (N, classes), one-hot "
            f"targets shaped like the outputs, or loss='bce'; received targets {shape} ({y.dtype}). "
            "Pass metrics=() to record the loss only."
        )
    return keras.metrics.CategoricalAccuracy(name="accuracy")


def _is_integer(y: Any) -> bool:
    dtype = getattr(y, "dtype", None)
    if isinstance(dtype, np.dtype):
        return bool(np.issubdtype(dtype, np.integer))
    return bool(getattr(dtype, "is_integer", False))  # a tf.DType


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def _as_array(a: Any) -> Any:
    if isinstance(a, np.ndarray) or tf.is_tensor(a):
        if isinstance(a, np.ndarray) and a.dtype == np.float64:
            return a.astype(np.float32)  # numpy defaults to float64; weights are float32
        return a
    return np.asarray(a)


def _split_xy(data: Any, name: str) -> tuple[Any, Any]:
    x, y = data
    xs = [_as_array(a) for a in x] if isinstance(x, (list, tuple)) else [_as_array(x)]
    if not xs:
        raise ValueError(f"{name}: x is an empty {type(x).__name__}; pass one array per model input.")
    y = _as_array(y)
    n = int(y.shape[0]) if len(y.shape) else -1
    bad = [tuple(a.shape) for a in xs if len(a.shape) == 0 or int(a.shape[0]) != n]
    if bad or n < 1:
        raise ValueError(
            f"{name}: every input needs one row per label; received x shapes "
            f"{[tuple(a.shape) for a in xs]} and y shape {tuple(y.shape)}. Fix: slice x and y alike, "
            "e.g. (x[:600], y[:600])."
        )
    # A functional model with several inputs takes a list; a single input takes the array.
    return (xs if len(xs) > 1 else xs[0]), y


def _is_dataset(data: Any) -> bool:
    return isinstance(data, tf.data.Dataset)


def _check_pair(data: Any, name: str) -> None:
    if not (isinstance(data, (list, tuple)) and len(data) == 2):
        raise TypeError(
            f"{name} must be a pair (x, y) of arrays, with x a list of arrays for a multi-input "
            f"model, or a batched tf.data.Dataset; received {_describe(data)}. Example: "
            "fit(model, (x_train, y_train), val=(x_test, y_test))."
        )


def _shuffled_dataset(x: Any, y: Any, batch_size: int, seed: int):
    """Batches of (x, y) in a new seeded order every epoch.

    A seeded tf.data shuffle makes `seed` fix the order, as in the torch twin (Keras' own
    shuffle of numpy input follows TensorFlow's global seed instead). Only the indices are
    shuffled; each batch is one vectorized gather, like Keras' own array adapter.
    """
    xs = [tf.convert_to_tensor(a) for a in (x if isinstance(x, list) else [x])]
    y = tf.convert_to_tensor(y)
    n = int(y.shape[0])
    indices = tf.data.Dataset.range(n).shuffle(n, seed=int(seed), reshuffle_each_iteration=True)

    def take(idx):
        batch = tuple(tf.gather(a, idx) for a in xs)
        return (batch if len(batch) > 1 else batch[0]), tf.gather(y, idx)

    return indices.batch(batch_size).map(take, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------


class _Validation:
    """The validation loss (and accuracy) after each epoch, as the torch twin computes them: the
    model in inference mode on batches of `batch_size`, the loss averaged over all samples.

    Keras' own ``validation_data`` runs a full ``evaluate()`` every epoch, whose set-up costs about
    45 ms, and its eager metric updates more: together a third of a small two-branch run on a CPU.
    Here one compiled call per batch (forward pass, loss, metric update) does the work; the numbers
    agree with ``model.fit``'s own ``val_*`` to float rounding (tests/test_train_diag.py).
    """

    def __init__(self, model: keras.Model, data: Any, batch_size: int, loss_obj: Any, metric: Any) -> None:
        self.metric = metric

        def step(inputs, y):  # one compiled call per batch: forward, loss and metric update
            out = model(inputs if len(inputs) > 1 else inputs[0], training=False)
            if metric is not None:
                metric.update_state(y, out)
            return loss_obj(y, out)

        self.step = tf.function(step, reduce_retracing=True)
        self.batches: list = []
        self.n = 0
        self.set_data(data, batch_size)

    def set_data(self, data: Any, batch_size: int) -> None:
        """Validate on `data` from now on (the compiled step stays: `_Trainer` reuses it)."""
        x, y = data
        xs = x if isinstance(x, list) else [x]
        n = int(y.shape[0])
        self.batches = [([a[i : i + batch_size] for a in xs], y[i : i + batch_size]) for i in range(0, n, batch_size)]
        self.n = n

    def __call__(self) -> dict[str, float]:
        if self.metric is not None:
            self.metric.reset_state()
        total = sum(float(self.step(inputs, y)) * int(y.shape[0]) for inputs, y in self.batches)
        values = {"val_loss": total / self.n}
        if self.metric is not None:
            values["val_accuracy"] = float(self.metric.result())
        return values


class _Collect(keras.callbacks.Callback):
    """Fills a coursekit `History` at each epoch end (running `validate`, if any) and advances the
    progress bar."""

    def __init__(self, history: History, keys: Sequence[str], bar, validate: _Validation | None = None) -> None:
        super().__init__()
        self.history = history
        self.keys = keys
        self.bar = bar
        self.validate = validate
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = dict(logs or {})
        if self.validate is not None:
            logs.update(self.validate())
        values = {k: float(logs[k]) for k in self.keys if k in logs}
        self.history.append(values, time.perf_counter() - self._start)
        self.bar.set_postfix({k: _short(v) for k, v in values.items()}, refresh=False)
        self.bar.update(1)


# --------------------------------------------------------------------------------------------
# Reusing traced train steps
# --------------------------------------------------------------------------------------------

#: Whether `fit` reuses one compiled stand-in per architecture (see `_Trainer`). False: every fit
#: compiles and traces anew, as a plain ``model.compile(); model.fit()`` does (bench/keras_reuse.py
#: and tests/test_keras_reuse.py compare the two).
REUSE_TRACES = True
_MAX_TRAINERS = 32
_MEMO_GUARD = threading.local()
_TRAINERS: OrderedDict[tuple, _Trainer | None] = OrderedDict()  # None: this architecture is not cloned faithfully
_SEEN: OrderedDict[tuple, None] = OrderedDict()  # keys fitted once, without a stand-in yet
# Modules whose layers, activations and regularizers are pure functions of their config. A class or
# function written in a notebook may read state its config does not hold, so it is never shared.
_TRUSTED = frozenset(sys.stdlib_module_names) | {"keras", "coursekit", "tensorflow", "numpy", "ml_dtypes", "optree"}


def _trusted(value: Any) -> bool:
    module = getattr(value, "__module__", None) if callable(value) else type(value).__module__
    return module is None or module.split(".")[0] in _TRUSTED


def _architecture_key(model: keras.Model) -> str | None:
    """A text that two models share exactly when one traced train step fits both: the model's
    config with layer names replaced by their position, each layer's class and plain public
    attributes. None for models that are not functional or Sequential, or hold a class, function
    or ``Lambda`` defined outside Keras and coursekit."""
    cls = type(model)
    if cls.__module__.split(".")[0] != "keras" or cls.__name__ not in ("Functional", "Sequential"):
        return None
    try:
        all_layers = list(model._flatten_layers(include_self=False, recursive=True))
        text = json.dumps(model.get_config(), sort_keys=True, default=repr)
    except Exception:  # an unserializable layer: train it the plain way
        return None
    parts = []
    for i, layer in enumerate(all_layers):
        if not _trusted(layer) or isinstance(layer, keras.layers.Lambda):
            return None
        plain = {}
        for name, value in vars(layer).items():
            values = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
            if not all(_trusted(v) for v in values):
                return None
            if not name.startswith("_") and name != "name" and isinstance(value, (bool, int, float, str, type(None))):
                plain[name] = value
        parts.append(f"{type(layer).__module__}.{type(layer).__qualname__}{sorted(plain.items())}")
        text = text.replace(json.dumps(layer.name), f'"#{i}"')
    return text.replace(json.dumps(model.name), '"#model"') + "|" + "|".join(parts)


class _Trainer:
    """A compiled clone of a model whose traced train step serves every later `fit` of a model
    of the same architecture with the same optimizer, loss and metric.

    Keras traces a new train step for every model it compiles, about 0.4 s on a CPU: a third to
    half of a small two-branch run, and the lessons train dozens of fresh models of a few
    architectures. So `fit` copies the fresh model's variables into the stand-in, puts its
    optimizer back to its state right after building (learning rate set to the new one), trains
    it with Keras' own ``model.fit``, and copies the variables back: the same operations on the
    same numbers as compiling the fresh model (tests/test_keras_reuse.py checks they agree)."""

    def __init__(self, model: keras.Model, optimizer: keras.optimizers.Optimizer, loss_obj: Any,
                 compile_metrics: list, val_metric: Any) -> None:
        state = random.getstate()  # building the clone draws initializer seeds: give them back
        try:
            self.model = keras.models.clone_model(model)
        finally:
            random.setstate(state)
        self.model.compile(optimizer=optimizer, loss=loss_obj, metrics=compile_metrics)
        optimizer.build(self.model.trainable_variables)
        self.fresh_optimizer = [v.numpy() for v in optimizer.variables]
        self.loss_obj, self.val_metric = loss_obj, val_metric
        self.validation: _Validation | None = None

    def fits(self, model: keras.Model) -> bool:
        mine, theirs = self.model.variables, model.variables
        return len(mine) == len(theirs) and all(
            tuple(a.shape) == tuple(b.shape) and a.dtype == b.dtype for a, b in zip(mine, theirs))

    def load(self, model: keras.Model, lr: float) -> None:
        """Start from `model`'s variables and a freshly built optimizer with learning rate `lr`."""
        for mine, theirs in zip(self.model.variables, model.variables):
            mine.assign(theirs)
        for variable, value in zip(self.model.optimizer.variables, self.fresh_optimizer):
            variable.assign(value)
        self.model.optimizer.learning_rate = lr

    def validate_on(self, data: Any, batch_size: int) -> _Validation:
        if self.validation is None:
            self.validation = _Validation(self.model, data, batch_size, self.loss_obj, self.val_metric)
        else:
            self.validation.set_data(data, batch_size)
        return self.validation

    def unload(self, model: keras.Model, optimizer: keras.optimizers.Optimizer, loss_obj: Any,
               compile_metrics: list) -> None:
        """Give `model` the trained variables, compiled with `optimizer` in the state training left."""
        _load_trained(model, self.model.variables, optimizer, loss_obj, compile_metrics,
                      self.model.optimizer.variables)


def _trainer_for(model: keras.Model, key: tuple, make: Callable[[], _Trainer]) -> _Trainer | None:
    """The stand-in for `key` (made by `make` at the second fit), or None at the first fit and where a clone is not a
    faithful copy: a sublayer's setting that its parent's config does not carry (e.g. the momentum
    `set_bn_momentum` gives a BatchNorm inside a fusion layer) is lost by cloning, so the clone's
    own key must be the model's."""
    if key not in _TRAINERS and key not in _SEEN:
        # the first fit of an architecture trains the plain way: making a stand-in costs about what one
        # reuse saves, so it is made only for an architecture that comes back (bench/keras_reuse.py)
        _SEEN[key] = None
        while len(_SEEN) > 4 * _MAX_TRAINERS:
            _SEEN.popitem(last=False)
        return None
    if key not in _TRAINERS:
        trainer = make()
        _TRAINERS[key] = trainer if _architecture_key(trainer.model) == key[0] else None
        while len(_TRAINERS) > _MAX_TRAINERS:
            _TRAINERS.popitem(last=False)
    _TRAINERS.move_to_end(key)
    trainer = _TRAINERS[key]
    return trainer if trainer is not None and trainer.fits(model) else None


def fit(
    model: keras.Model,
    train: Any,
    val: Any = None,
    *,
    epochs: int = 3,
    optimizer: str | keras.optimizers.Optimizer | None = "adam",
    lr: float = 1e-3,
    loss: str | Callable | None = "cross_entropy",
    metrics: Sequence[str] = ("accuracy",),
    batch_size: int = 64,
    shuffle: bool = True,
    seed: int = 0,
    progress: bool = True,
    device: str | None = None,
    schedule: keras.optimizers.schedules.LearningRateSchedule | None = None,
) -> History:
    """Compile and train `model` for `epochs`; return a `History` ('loss', 'accuracy',
    'val_loss', 'val_accuracy' per epoch, and the seconds each epoch took).

    `train` and `val` are `(x, y)` with `x` one array or a list of arrays for a multi-input
    functional model; or a batched ``tf.data.Dataset`` of ``(x, y)`` (then `batch_size`,
    `shuffle` and `seed` are the dataset's business). Shuffled array input goes through a
    ``tf.data`` pipeline seeded by `seed`, so `seed` fixes the order as in the torch twin.

    `optimizer` is one of 'adam', 'sgd' (momentum 0.9), 'adamw' (weight decay 0.01),
    'rmsprop' (rho 0.9), built with `lr`, or a ready ``keras.optimizers.Optimizer`` (then `lr`
    is ignored). `loss` is 'cross_entropy' (logits and integer labels:
    ``SparseCategoricalCrossentropy(from_logits=True)``), 'mse', 'bce' (logits and 0/1
    targets) or a Keras loss / callable ``(y_true, y_pred) -> loss``. Pass ``optimizer=None,
    loss=None`` to keep the model's own ``compile()``. `schedule` is a
    ``keras.optimizers.schedules.LearningRateSchedule`` given to the optimizer as its learning
    rate, so it steps every batch (with a ready optimizer, build it with the schedule
    yourself).

    A functional or Sequential model built from Keras and coursekit layers whose architecture,
    optimizer and loss `fit` has seen before trains on a compiled stand-in kept for them (then
    copied back), so Keras traces that train step once instead of once per model; the
    numbers are those of a fresh compile (`REUSE_TRACES`, tests/test_keras_reuse.py).

    Runs ``model.fit(..., verbose=0)`` under ``tf.device(device)`` when `device` is given
    (e.g. 'CPU:0'). A progress bar over epochs goes to stdout (nbgrader fails cells that
    write to stderr); it is off with `progress=False` and while nbgrader executes the
    notebook (``NBGRADER_EXECUTION`` set).
    """
    epochs = _positive_int(epochs, "epochs")
    batch_size = _positive_int(batch_size, "batch_size")
    metrics = _check_metrics(metrics)
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"fit trains a keras.Model; received a {type(model).__name__}. For a PyTorch model "
            "use coursekit.torch.train.fit."
        )
    if (optimizer is None) != (loss is None):
        raise ValueError(
            f"pass both optimizer and loss, or neither (None, None) to keep the model's compile(); "
            f"received optimizer={optimizer!r}, loss={loss!r}."
        )

    if _is_dataset(train):
        train_x, train_y, y_probe = train, None, None
    else:
        _check_pair(train, "train")
        train_x, train_y = _split_xy(train, "train")
        y_probe = train_y
    if val is None or _is_dataset(val):
        val_data = val
    else:
        _check_pair(val, "val")
        val_data = _split_xy(val, "val")

    trainer = None
    if optimizer is None:
        if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", False):
            raise ValueError(
                "optimizer=None, loss=None keep an existing compile(), but this model is not compiled. "
                "Pass optimizer='adam', loss='cross_entropy' (the defaults) or call model.compile first."
            )
        if schedule is not None:
            raise ValueError("schedule needs an optimizer to attach to; pass optimizer='adam' (or another).")
    else:
        if schedule is not None:
            if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
                raise TypeError(
                    "schedule must be a keras.optimizers.schedules.LearningRateSchedule, e.g. "
                    f"keras.optimizers.schedules.CosineDecay(1e-3, 1000); received a {type(schedule).__name__}."
                )
            if not isinstance(optimizer, str):
                raise ValueError(
                    "schedule only applies to an optimizer built by fit (a name such as 'adam'); for a "
                    "ready optimizer, build it with learning_rate=schedule yourself."
                )
        loss_name, loss_obj = _resolve_loss(loss)
        opt = _make_optimizer(optimizer, schedule if schedule is not None else lr)
        compile_metrics = [_accuracy_metric(loss_name, y_probe)] if "accuracy" in metrics else []
        reusable = (REUSE_TRACES and isinstance(optimizer, str) and schedule is None and train_y is not None
                    and loss_name != "custom" and not _is_dataset(val_data) and model.built)
        key = _architecture_key(model) if reusable else None
        if key is not None and memo.active() and not getattr(_MEMO_GUARD, "off", False):
            # while grading, a run the unanswered notebook made is read back (coursekit.memo): the
            # key holds everything the result depends on, as plain values, or the run trains
            settings = dict(epochs=epochs, optimizer=optimizer.lower(), lr=float(lr), loss=loss_name,
                            metrics=tuple(metrics), batch_size=batch_size, shuffle=bool(shuffle), seed=seed,
                            device=device, floatx=keras.config.floatx(),
                            policy=keras.config.dtype_policy().name)
            weights = [np.asarray(v.numpy()) for v in model.variables]
            run_key = (key, weights, train_x, train_y, val_data, settings)
            state = {}

            def run() -> tuple[History, list, list]:
                state["history"] = fit(model, train, val, epochs=epochs, optimizer=optimizer, lr=lr, loss=loss,
                                       metrics=metrics, batch_size=batch_size, shuffle=shuffle, seed=seed,
                                       progress=progress, device=device)
                return (state["history"], [np.asarray(v.numpy()) for v in model.variables],
                        [np.asarray(v.numpy()) for v in model.optimizer.variables])

            with _memo_off():  # the inner fit trains: it must not look itself up again
                history, values, opt_values = memo.cached(f"{__name__}.fit", run_key, run)
            if "history" not in state:  # read back: the model as that training left it
                _load_trained(model, values, opt, loss_obj, compile_metrics, opt_values)
            return history
        if key is not None:
            def make() -> _Trainer:  # its own optimizer, loss and metrics: the stand-in keeps them
                accuracy = "accuracy" in metrics
                return _Trainer(model, _make_optimizer(optimizer, lr), _resolve_loss(loss)[1],
                                [_accuracy_metric(loss_name, y_probe)] if accuracy else [],
                                _accuracy_metric(loss_name, y_probe) if accuracy else None)

            metric_kind = type(compile_metrics[0]).__name__ if compile_metrics else None
            trainer = _trainer_for(model, (key, optimizer.lower(), loss_name, metric_kind, device), make)
        if trainer is None:
            model.compile(optimizer=opt, loss=loss_obj, metrics=compile_metrics)
            if model.built and not opt.built:
                # Keras builds the optimizer while tracing the first train step, and a tf.function that
                # creates variables is traced twice: building it now saves that second trace (~0.3 s a fit).
                opt.build(model.trainable_variables)

    if train_y is not None and shuffle:
        fit_args = {"x": _shuffled_dataset(train_x, train_y, batch_size, seed), "shuffle": False}
    elif train_y is not None:
        fit_args = {"x": train_x, "y": train_y, "batch_size": batch_size, "shuffle": False}
    else:
        fit_args = {"x": train_x, "shuffle": False}  # Keras warns if shuffle=True meets a Dataset
    validate = None
    if val_data is not None and optimizer is not None and not _is_dataset(val_data):
        # array validation data with fit's own loss: validated by coursekit (see _Validation)
        if trainer is not None:
            validate = trainer.validate_on(val_data, batch_size)
        else:
            val_metric = _accuracy_metric(loss_name, y_probe) if "accuracy" in metrics else None  # as compiled
            validate = _Validation(model, val_data, batch_size, loss_obj, val_metric)
    elif val_data is not None:  # a dataset, or the model's own compile(): Keras validates
        fit_args["validation_data"] = val_data
        if not _is_dataset(val_data):
            fit_args["validation_batch_size"] = batch_size

    keys = ["loss", *metrics]
    keys += ["val_" + k for k in keys] if val_data is not None else []
    history = History()
    bar = _progress(epochs, progress)
    callbacks = [_Collect(history, keys, bar, validate)]
    trained = model
    if trainer is not None:
        trainer.load(model, lr)
        trained = trainer.model
    try:
        if device is None:
            trained.fit(epochs=epochs, verbose=0, callbacks=callbacks, **fit_args)
        else:
            with tf.device(device):
                trained.fit(epochs=epochs, verbose=0, callbacks=callbacks, **fit_args)
    finally:
        bar.close()
        if trainer is not None:  # also after an interrupt: the model keeps what training reached
            trainer.unload(model, opt, loss_obj, compile_metrics)
    return history


@contextlib.contextmanager
def _memo_off():
    """`fit` called from inside the memo's lookup trains for real."""
    saved = getattr(_MEMO_GUARD, "off", False)
    _MEMO_GUARD.off = True
    try:
        yield
    finally:
        _MEMO_GUARD.off = saved


def _load_trained(model: keras.Model, values: Sequence, optimizer: keras.optimizers.Optimizer, loss_obj: Any,
                  compile_metrics: list, optimizer_values: Sequence) -> None:
    """Leave `model` as a training that ended at `values` left it: those variables, compiled with
    `optimizer` in the state `optimizer_values` (a stand-in's, or a run the memo kept: both hold the
    model's architecture, so the same variables; a mismatch raises before anything is loaded)."""
    model.compile(optimizer=optimizer, loss=loss_obj, metrics=compile_metrics)
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    if (len(model.variables), len(optimizer.variables)) != (len(values), len(optimizer_values)):
        raise RuntimeError(
            f"coursekit: trained state of {len(values)} + {len(optimizer_values)} variables for a model and "
            f"optimizer of {len(model.variables)} + {len(optimizer.variables)}; please report this."
        )
    for variable, value in zip(model.variables, values):
        variable.assign(value)
    for variable, value in zip(optimizer.variables, optimizer_values):
        variable.assign(value)


# --------------------------------------------------------------------------------------------
# evaluate / predict
# --------------------------------------------------------------------------------------------


def predict(model: keras.Model, x: Any, batch_size: int = 256) -> np.ndarray:
    """The outputs of `model` on `x` as one numpy array (inference mode, in batches).

    `x` is an array, or a list of arrays for a multi-input model.
    """
    batch_size = _positive_int(batch_size, "batch_size")
    xs = [_as_array(a) for a in x] if isinstance(x, (list, tuple)) else [_as_array(x)]
    n = int(xs[0].shape[0])
    outs = []
    for i in range(0, n, batch_size):
        batch = [a[i : i + batch_size] for a in xs]
        out = model(batch if len(batch) > 1 else batch[0], training=False)
        if isinstance(out, (list, tuple, dict)):
            raise TypeError(
                f"predict expects a model with one output tensor (the logits); {model.name} returned a "
                f"{type(out).__name__}. Build a model with a single output."
            )
        outs.append(keras.ops.convert_to_numpy(out))
    return np.concatenate(outs)


def evaluate(
    model: keras.Model,
    x: Any,
    y: Any,
    *,
    loss: str | Callable = "cross_entropy",
    batch_size: int = 256,
    metrics: Sequence[str] = ("accuracy",),
) -> dict[str, float]:
    """Mean loss (and accuracy) of `model` on `(x, y)`, as ``{'loss': ..., 'accuracy': ...}``.

    Needs no ``compile()``: the loss named here is applied to the outputs of `predict`.
    `x` may be a list of arrays for a multi-input model.
    """
    batch_size = _positive_int(batch_size, "batch_size")
    metrics = _check_metrics(metrics)
    loss_name, loss_obj = _resolve_loss(loss)
    _, y_arr = _split_xy((x, y), "evaluate")
    out = predict(model, x, batch_size)
    values = {"loss": float(keras.ops.convert_to_numpy(loss_obj(y_arr, out)))}
    if "accuracy" in metrics:
        metric = _accuracy_metric(loss_name, y_arr)
        metric.update_state(y_arr, out)
        values["accuracy"] = float(keras.ops.convert_to_numpy(metric.result()))
    return values
