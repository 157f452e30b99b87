"""Training diagnostics for Keras 3 models: dead units, unbalanced fusion branches, collapsed
outputs, variables the optimizer never updates, and gradient flow.

Twin of `coursekit.torch.diagnostics`: same names, same signatures, same report classes
(`coursekit.diagnostics_report`). Everything runs the model with ``training=False``, so
diagnosing never changes it (no BatchNormalization statistics update, no dropout draw).

`activation_stats` and `branch_report` read the layer graph, so they need a functional or
Sequential model: a subclassed ``keras.Model`` hides its graph inside ``call()`` and gets a
TypeError that says how to rebuild it. The other functions work with any model.
This module must never import PyTorch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..diagnostics_report import (
    ActivationStats,
    BranchReport,
    BranchStats,
    CollapseReport,
    GradientFlow,
    GradStats,
    collapse_report,
    grad_ratio,
    shares,
    summarize_values,
)
from . import _tf
from .train import _as_array, _resolve_loss, predict

tf, keras = _tf.tf, _tf.keras

__all__ = [
    "activation_stats",
    "branch_report",
    "find_untrainable_parameters",
    "gradient_flow",
    "is_collapsed",
]

# Layers that only reshape or pass values through: their stats repeat the previous layer's.
_PASS_THROUGH = (
    keras.layers.InputLayer, keras.layers.Flatten, keras.layers.Reshape, keras.layers.Dropout,
    keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D, keras.layers.SpatialDropout3D,
    keras.layers.Identity,
)
# Layers whose non-trainable variables are running statistics, not frozen weights.
_STATISTICS = (keras.layers.BatchNormalization, keras.layers.Normalization)


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def _inputs(x: Any) -> list:
    xs = [_as_array(a) for a in x] if isinstance(x, (list, tuple)) else [_as_array(x)]
    if not xs:
        raise ValueError("x is an empty list; pass one array per model input, e.g. [x_a, x_b].")
    return [tf.convert_to_tensor(a) for a in xs]


def _feed(xs: list) -> Any:
    return xs if len(xs) > 1 else xs[0]


def _single_output(out: Any, model) -> Any:
    if isinstance(out, (list, tuple)) and len(out) == 1:
        out = out[0]
    if isinstance(out, (list, tuple, dict)):
        raise TypeError(
            f"this diagnostic expects a model with one output tensor (the logits); {model.name} returned "
            f"a {type(out).__name__}. Build a model with a single output."
        )
    return out


def _loss_value(loss: Any, y: Any, out: Any):
    _, loss_obj = _resolve_loss(loss)
    return loss_obj(_as_array(y), out)


def _graph(model, x: Any, what: str) -> tuple[list, list]:
    """The symbolic inputs and outputs of a functional or Sequential model."""
    if isinstance(model, keras.Sequential) and not getattr(model, "inputs", None):
        # A Sequential without keras.Input gets its graph on the first call.
        model(_feed(_inputs(x)), training=False)
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not inputs or not outputs:
        raise TypeError(
            f"{what} reads the layer graph of a functional or Sequential keras.Model; {model.name} "
            f"({type(model).__name__}) is a subclassed model whose call() hides its graph. Fix: build "
            "it with the functional API, e.g. inputs = keras.Input((8, 8, 1)); outputs = ...; "
            "model = keras.Model(inputs, outputs)."
        )
    return list(inputs), list(outputs)


def _sublayers(layer) -> list:
    """Direct sublayers (Keras tracks layers held as attributes or in lists)."""
    flatten = getattr(layer, "_flatten_layers", None)
    if flatten is None:
        return list(getattr(layer, "layers", []))
    return list(flatten(include_self=False, recursive=False))


def _norm(t: Any) -> float:
    return 0.0 if t is None else float(tf.norm(tf.cast(tf.convert_to_tensor(t), tf.float64)))


def _tf_var(v: Any) -> Any:
    # A keras.Variable wraps the tf.Variable that GradientTape sees.
    return getattr(v, "value", v)


# --------------------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------------------


def _select_layers(model, layers: Any) -> list | None:
    if layers is None:
        return None
    if isinstance(layers, (str, keras.layers.Layer, type)):
        layers = [layers]
    chosen = []
    all_layers = model.layers
    for item in layers:
        if isinstance(item, str):
            try:
                chosen.append(model.get_layer(item))
            except ValueError:
                raise KeyError(
                    f"no layer named {item!r} in {model.name}; its layers are {[l.name for l in all_layers][:30]}."
                ) from None
        elif isinstance(item, keras.layers.Layer):
            if not any(l is item for l in all_layers):
                raise ValueError(f"the layer {item.name} passed in layers is not a layer of {model.name}.")
            chosen.append(item)
        elif isinstance(item, type) and issubclass(item, keras.layers.Layer):
            chosen.extend(l for l in all_layers if isinstance(l, item))
        else:
            raise TypeError(
                f"layers must hold layer names, layers or layer classes (e.g. ['conv1', keras.layers.ReLU]); "
                f"received a {type(item).__name__}."
            )
    return chosen


def _layer_outputs(layer) -> list:
    """One symbolic output per call of `layer` (a shared layer is called several times)."""
    outs = []
    for node in layer._inbound_nodes:
        tensors = list(node.output_tensors)
        if tensors:
            outs.append(tensors[0])
    return outs


def activation_stats(model, x: Any, layers: Sequence | None = None) -> ActivationStats:
    """Output statistics of each layer for the batch `x`, in the model's layer order.

    By default every layer except inputs, pure reshapes and dropout; `layers` picks layers by
    name, instance or class. A probe ``keras.Model(model.inputs, [layer.output, ...])`` runs
    once with ``training=False``, so the model must be functional or Sequential (a subclassed
    model raises a TypeError). A shared layer appears once per call ('name#2').
    See `coursekit.diagnostics_report.LayerStats` for the fields (dead-unit fraction etc.).
    """
    inputs, _ = _graph(model, x, "activation_stats")
    chosen = _select_layers(model, layers)
    picked = chosen if chosen is not None else [l for l in model.layers if not isinstance(l, _PASS_THROUGH)]
    names, tensors, kinds = [], [], []
    for layer in picked:
        outs = _layer_outputs(layer)
        for i, t in enumerate(outs):
            names.append(layer.name + (f"#{i + 1}" if i else ""))
            tensors.append(t)
            kinds.append(type(layer).__name__)
    stats = ActivationStats()
    if not tensors:
        return stats
    try:
        probe = keras.Model(inputs, tensors)
    except ValueError as err:
        raise ValueError(
            f"could not read the layer outputs of {model.name} from its inputs ({err}). A layer shared with "
            "another model is not supported; pass layers=[...] with the layers of this model only."
        ) from None
    outs = probe(_feed(_inputs(x)), training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    for name, kind, out in zip(names, kinds, outs):
        stats.append(summarize_values(name, kind, keras.ops.convert_to_numpy(out)))
    return stats


# --------------------------------------------------------------------------------------------
# Branches of a fusion layer
# --------------------------------------------------------------------------------------------


def _find_fusion(model, fusion: Any):
    if isinstance(fusion, str):
        try:
            layer = model.get_layer(fusion)
        except ValueError:
            raise KeyError(
                f"no layer named {fusion!r} in {model.name}; its layers are {[l.name for l in model.layers][:30]}. "
                "Pass the fusion layer's name or the layer itself."
            ) from None
    elif isinstance(fusion, keras.layers.Layer):
        if not any(l is fusion for l in model.layers):
            raise ValueError(f"the fusion layer {fusion.name} is not a layer of {model.name}.")
        layer = fusion
    elif fusion is None:
        layer = next(
            (l for l in model.layers if l._inbound_nodes and len(l._inbound_nodes[0].input_tensors) >= 2), None
        )
        if layer is None:
            raise LookupError(
                f"no fusion layer found in {model.name}: no layer takes >= 2 input tensors. A keras.ops "
                "call on several tensors inside a Lambda or custom layer is found only if the layer gets "
                "them as a list. Fix: fuse with a layer such as keras.layers.Concatenate()([a, b]), or "
                "pass fusion='name'."
            )
    else:
        raise TypeError(f"fusion must be a layer, its name, or None to find it; received a {type(fusion).__name__}.")
    branches = list(layer._inbound_nodes[0].input_tensors) if layer._inbound_nodes else []
    if len(branches) < 2:
        raise LookupError(
            f"{layer.name} ({type(layer).__name__}) takes {len(branches)} input tensor(s); a fusion layer "
            "takes >= 2. Pass fusion= the layer that merges the branches."
        )
    return layer, branches


def branch_report(
    model, x: Any, y: Any, fusion: Any = None, loss: str | Callable = "cross_entropy"
) -> BranchReport:
    """What each input branch brings into the fusion layer: activation mean, std and scale
    (mean |x|), the gradient of the loss with respect to the branch tensor, and the share of
    the parameter gradient held by variables that feed only that branch.

    `fusion` is the fusion layer or its name; None picks the first layer (in graph order)
    called with >= 2 input tensors, e.g. Concatenate or Add. How: a probe
    ``keras.Model(model.inputs, [*fusion.input, model.output])`` runs once under a persistent
    ``tf.GradientTape``; the branch tensors it returns are the ones the fusion layer consumed,
    so ``tape.gradient(loss, branches)`` is d loss / d branch. A variable feeds a branch when
    ``tape.gradient(sum(branch), variable)`` is not None. Runs with ``training=False``. Needs a
    functional or Sequential model.
    """
    inputs, outputs = _graph(model, x, "branch_report")
    if len(outputs) != 1:
        raise TypeError(f"branch_report expects a model with one output; {model.name} has {len(outputs)}.")
    layer, branch_kts = _find_fusion(model, fusion)
    probe = keras.Model(inputs, [*branch_kts, outputs[0]])
    xs = _inputs(x)
    variables = list(model.trainable_variables)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xs)  # a branch may be a raw model input
        outs = probe(_feed(xs), training=False)
        branches, out = list(outs[:-1]), outs[-1]
        value = _loss_value(loss, y, out)
        sums = [tf.reduce_sum(b) for b in branches]
    try:
        branch_grads = tape.gradient(value, branches)
        param_grads = tape.gradient(value, variables) if variables else []
        upstream = []
        for s in sums:
            reach = tape.gradient(s, variables) if variables else []
            upstream.append({i for i, g in enumerate(reach) if g is not None})
    finally:
        del tape
    # Variables feeding several branches (a shared stem) belong to none of them.
    owners = [{i for i in up if sum(i in other for other in upstream) == 1} for up in upstream]
    gnorms = [_norm(g) for g in branch_grads]
    gshare = shares([g * g for g in gnorms])
    pnorm_sq = [sum(_norm(param_grads[i]) ** 2 for i in own) for own in owners]
    pshare = shares(pnorm_sq) if all(owners) else [None] * len(owners)
    report = []
    for i, b in enumerate(branches):
        arr = keras.ops.convert_to_numpy(b).astype(np.float64)
        report.append(
            BranchStats(
                index=i,
                shape=tuple(int(d) for d in arr.shape),
                mean=float(arr.mean()),
                std=float(arr.std()),
                scale=float(np.abs(arr).mean()),
                grad_norm=gnorms[i],
                grad_share=gshare[i],
                param_grad_norm=float(np.sqrt(pnorm_sq[i])) if owners[i] else None,
                param_grad_share=pshare[i],
                n_params=int(sum(np.prod(variables[j].shape) for j in owners[i])),
            )
        )
    return BranchReport(
        fusion=layer.name, kind=type(layer).__name__, branches=report,
        loss=float(keras.ops.convert_to_numpy(value)),
    )


# --------------------------------------------------------------------------------------------
# Collapse
# --------------------------------------------------------------------------------------------


def is_collapsed(model, x: Any, tol: float = 1e-6, *, y: Any = None) -> CollapseReport:
    """Whether `model` gives (nearly) the same output for every sample of `x`.

    Collapsed when the largest std across samples of any output is <= tol * (1 + mean
    |output|) (a constant output), or when every sample gets the same predicted class although
    the batch is diverse (its inputs differ; with `y`, when it holds >= 2 labels). Both
    findings are reported separately (`constant`, `single_class`); see `CollapseReport`.
    """
    out = predict(model, x)
    xs = [np.asarray(a, dtype=np.float64) for a in (x if isinstance(x, (list, tuple)) else [x])]
    spread = max(float(a.reshape(len(a), -1).std(0).max()) for a in xs)
    return collapse_report(out, spread, y=y, tol=tol)


# --------------------------------------------------------------------------------------------
# Variables the optimizer never updates
# --------------------------------------------------------------------------------------------


def _own_variables(layer) -> list:
    inner = {id(v) for sub in _sublayers(layer) for v in sub.variables}
    return [v for v in layer.variables if id(v) not in inner]


def _is_float(v: Any) -> bool:
    return "float" in str(v.dtype)


def _walk(layer, path: str, frozen_above: bool, found: list) -> None:
    """Record (path, layer, frozen) for `layer` and its sublayers, top-down."""
    found.append((path, layer, frozen_above or not layer.trainable))
    for sub in _sublayers(layer):
        _walk(sub, f"{path}/{sub.name}", frozen_above or not layer.trainable, found)


def _global_name(model, var: Any) -> str | None:
    """The global variable holding `var`, looked up where the layers' call() are defined."""
    layers = [model, *(l for _, l, _ in _walked(model))]
    for layer in layers:
        call = getattr(type(layer), "call", None)
        for k, v in getattr(call, "__globals__", {}).items():
            if v is var or (hasattr(v, "value") and _safe_is(v, var)):
                return f"global variable `{k}`"
    return None


def _safe_is(v: Any, var: Any) -> bool:
    with contextlib.suppress(Exception):
        return _tf_var(v) is var
    return False


def _walked(model) -> list:
    found: list = []
    _walk(model, model.name, False, found)
    return found[1:]


def find_untrainable_parameters(
    model,
    x: Any = None,
    y: Any = None,
    *,
    optimizer: Any = None,
    loss: str | Callable = "cross_entropy",
) -> list[str]:
    """Describe every variable that training would not update; [] for a healthy model.

    Finds (a) float variables created with trainable=False in a trainable layer (BatchNorm /
    Normalization statistics excepted); (b) layers with trainable=False that hold weights
    (the top-most frozen layer is named), and layers of a built model that were never called
    (a subclassed model's unused layer has no weights at all); (c) with a built `optimizer`, trainable variables
    it does not track; (d) with `x` (and `y`), after one forward pass under a GradientTape:
    trainable variables the tape saw that are not the model's (created outside the layers,
    e.g. a global ``w = keras.Variable(1.0)`` used in call()), and model variables whose
    gradient is None (unused in call, or used through ``ops.stop_gradient``). Without `y` the
    sum of the outputs stands in for the loss.
    """
    problems = []
    walked = [(model.name, model, not model.trainable)] + _walked(model)
    reported_frozen: list[str] = []
    for path, layer, frozen in walked:
        if frozen:
            if layer.weights and not any(path.startswith(p + "/") for p in reported_frozen):
                reported_frozen.append(path)
                problems.append(
                    f"layer {path} ({type(layer).__name__}) is frozen: trainable=False, so its "
                    f"{len(layer.weights)} weight tensors get no gradient and the optimizer leaves them "
                    f"as they are. Fix, if it should train: model.get_layer({layer.name!r}).trainable = True, "
                    "then compile again."
                )
            continue
        if path != model.name and getattr(model, "built", False) and not layer.built:
            problems.append(
                f"layer {path} ({type(layer).__name__}) was never called, so it has no weights and does not "
                "take part in training. Fix: use it in call(), or delete it."
            )
            continue
        if isinstance(layer, _STATISTICS):
            continue
        for v in _own_variables(layer):
            if not v.trainable and _is_float(v) and not v.path.split("/")[-1].startswith("moving_"):
                problems.append(
                    f"{v.path}: variable of shape {tuple(v.shape)} was created with trainable=False in "
                    f"layer {layer.name} ({type(layer).__name__}), so the optimizer never updates it. Fix, if "
                    "it should learn: add_weight(..., trainable=True)."
                )

    if optimizer is not None and getattr(optimizer, "built", False):
        tracked = {id(_tf_var(v)) for v in getattr(optimizer, "_trainable_variables", [])}
        missing = [v.path for v in model.trainable_variables if id(_tf_var(v)) not in tracked]
        if tracked and missing:
            problems.append(
                f"{len(missing)} variables are not tracked by the optimizer: {', '.join(missing[:8])}"
                f"{' ...' if len(missing) > 8 else ''}. Fix: compile the model again after changing its layers."
            )

    if x is not None:
        xs = _inputs(x)
        variables = list(model.trainable_variables)
        known = {id(_tf_var(v)) for v in model.variables}
        with tf.GradientTape() as tape:
            out = _single_output(model(_feed(xs), training=False), model)
            value = _loss_value(loss, y, out) if y is not None else tf.reduce_sum(tf.cast(out, tf.float32))
        for w in tape.watched_variables():
            if id(w) in known:
                continue
            where = _global_name(model, w)
            origin = f"the {where}, created outside the layers" if where else "created outside the layers"
            problems.append(
                f"a trainable variable of shape {tuple(w.shape)} is used in call() but does not belong to the "
                f"model ({origin}): model.trainable_variables and the optimizer never see it. Fix: create it in "
                "the layer's build() or __init__ with self.add_weight(...)."
            )
        grads = tape.gradient(value, variables) if variables else []
        unused = [v.path for v, g in zip(variables, grads) if g is None]
        if unused:
            problems.append(
                f"{len(unused)} variables get no gradient from the loss: {', '.join(unused[:8])}"
                f"{' ...' if len(unused) > 8 else ''}. They are not used in call(), or only through "
                "keras.ops.stop_gradient. Fix: use the layer in call(), or delete it."
            )
    return problems


# --------------------------------------------------------------------------------------------
# Gradient flow
# --------------------------------------------------------------------------------------------


def gradient_flow(model, x: Any, y: Any, loss: str | Callable = "cross_entropy") -> GradientFlow:
    """Gradient and weight norm of every weight tensor for one batch, in layer order (input
    to output). Frozen or unused weights are listed too, with ``has_grad=False``; running
    statistics (BatchNorm moving mean/variance) are not weights and are left out.
    Runs with ``training=False`` under a GradientTape.
    """
    xs = _inputs(x)
    with tf.GradientTape() as tape:
        out = _single_output(model(_feed(xs), training=False), model)
        value = _loss_value(loss, y, out)
    statistics = {
        id(v) for _, layer, _ in _walked(model) if isinstance(layer, _STATISTICS)
        for v in layer.non_trainable_weights
    }
    weights = [v for v in model.weights if id(v) not in statistics and _is_float(v)]
    trainable_ids = {id(v) for v in model.trainable_weights}
    trainable = [v for v in weights if id(v) in trainable_ids]
    grads = dict(zip(map(id, trainable), tape.gradient(value, trainable))) if trainable else {}
    flow = GradientFlow()
    for v in weights:
        g = grads.get(id(v))
        gn, wn = _norm(g), _norm(v)
        flow.append(GradStats(v.path, tuple(int(d) for d in v.shape), gn, wn, grad_ratio(gn, wn), has_grad=g is not None))
    return flow
