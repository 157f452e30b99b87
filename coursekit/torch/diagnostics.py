"""Training diagnostics for PyTorch models: dead units, unbalanced fusion branches, collapsed
outputs, parameters the optimizer never updates, and gradient flow.

Twin of `coursekit.keras.diagnostics`: same names, same signatures, same report classes
(`coursekit.diagnostics_report`). Every function runs the model in ``eval()`` mode and puts
the mode back, so diagnosing never changes the model (no BatchNorm statistics update, no
dropout draw) and never touches ``param.grad`` (gradients come from ``torch.autograd.grad``).
This module must never import TensorFlow or Keras.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

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
from .train import _as_tensor, _model_device, _resolve_loss, predict

__all__ = [
    "activation_stats",
    "branch_report",
    "find_untrainable_parameters",
    "gradient_flow",
    "is_collapsed",
]

# Layers that only reshape or pass values through: their stats repeat the previous layer's.
_PASS_THROUGH = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def _inputs(x: Any, device: torch.device) -> list[torch.Tensor]:
    xs = list(x) if isinstance(x, (list, tuple)) else [x]
    if not xs:
        raise ValueError("x is an empty list; pass one array per model input, e.g. [x_a, x_b].")
    return [_as_tensor(a, "x").to(device) for a in xs]


def _target(y: Any, device: torch.device) -> torch.Tensor:
    return _as_tensor(y, "y").to(device)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@contextlib.contextmanager
def _hooks(handles: list) -> Iterator[None]:
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _first_tensor(out: Any) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (list, tuple)):
        for o in out:
            if isinstance(o, torch.Tensor):
                return o
    return None


def _multi_tensor_args(args: tuple) -> list[torch.Tensor] | None:
    """The branch tensors when a module is called with a list of >= 2 tensors, or with
    >= 2 tensor arguments; None otherwise."""
    if len(args) >= 1 and isinstance(args[0], (list, tuple)):
        ts = [a for a in args[0] if isinstance(a, torch.Tensor)]
        return ts if len(ts) >= 2 and len(ts) == len(args[0]) else None
    ts = [a for a in args if isinstance(a, torch.Tensor)]
    return ts if len(ts) >= 2 else None


def _output(model: nn.Module, xs: list[torch.Tensor]) -> torch.Tensor:
    out = model(*xs)
    if not isinstance(out, torch.Tensor):
        raise TypeError(
            f"{type(model).__name__}.forward must return one tensor (the logits) for this diagnostic; "
            f"it returned a {type(out).__name__}."
        )
    return out


def _loss_value(model: nn.Module, xs: list[torch.Tensor], y: Any, loss: Any) -> torch.Tensor:
    _, loss_fn = _resolve_loss(loss)
    out = _output(model, xs)
    value = loss_fn(out, _target(y, out.device))
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise ValueError(
            f"the loss must be one scalar tensor; received {type(value).__name__}"
            f"{'' if not isinstance(value, torch.Tensor) else ' of shape ' + str(tuple(value.shape))}."
        )
    return value


def _module_names(model: nn.Module) -> dict[int, str]:
    return {id(m): (name or type(model).__name__) for name, m in model.named_modules()}


def _norm(t: torch.Tensor | None) -> float:
    return 0.0 if t is None else float(t.detach().double().norm())


# --------------------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------------------


def _select_layers(model: nn.Module, layers: Any) -> dict[int, str] | None:
    """ids -> names of the modules asked for, or None for the default choice."""
    if layers is None:
        return None
    if isinstance(layers, (str, nn.Module, type)):
        layers = [layers]
    named = dict(model.named_modules())
    chosen: dict[int, str] = {}
    for item in layers:
        if isinstance(item, str):
            if item not in named or item == "":
                valid = [n for n in named if n]
                raise KeyError(
                    f"no layer named {item!r} in {type(model).__name__}; its layers are {valid[:30]}"
                    f"{' ...' if len(valid) > 30 else ''}. Use the names of model.named_modules()."
                )
            chosen[id(named[item])] = item
        elif isinstance(item, nn.Module):
            names = [n for n, m in named.items() if m is item and n]
            if not names:
                raise ValueError(f"the module {type(item).__name__} passed in layers is not part of the model.")
            chosen[id(item)] = names[0]
        elif isinstance(item, type) and issubclass(item, nn.Module):
            chosen.update({id(m): n for n, m in named.items() if n and isinstance(m, item)})
        else:
            raise TypeError(
                f"layers must hold layer names, modules or module classes (e.g. ['conv1', nn.ReLU]); "
                f"received a {type(item).__name__}."
            )
    return chosen


def activation_stats(model: nn.Module, x: Any, layers: Sequence | None = None) -> ActivationStats:
    """Output statistics of each layer for the batch `x`, in the order the layers run.

    By default: every leaf module (Conv2d, Linear, ReLU, BatchNorm, pooling, ...) except
    pure reshapes and dropout, plus every fusion module (one called with a list of tensors
    or with several tensor arguments). `layers` picks modules by name
    (``model.named_modules()``), by instance or by class. Uses forward hooks, in ``eval()``
    mode under ``torch.no_grad()``. A module called twice appears twice ('name#2').
    See `coursekit.diagnostics_report.LayerStats` for the fields (dead-unit fraction etc.).
    """
    device = _model_device(model)
    xs = _inputs(x, device)
    chosen = _select_layers(model, layers)
    names = _module_names(model)
    stats = ActivationStats()
    calls: dict[int, int] = {}
    fusion_ids: set[int] = set()

    def pre_hook(module, args):
        if _multi_tensor_args(args) is not None:
            fusion_ids.add(id(module))

    def hook(module, args, out):
        mid = id(module)
        wanted = mid in chosen if chosen is not None else (
            mid in fusion_ids or (not any(True for _ in module.children()) and not isinstance(module, _PASS_THROUGH))
        )
        t = _first_tensor(out)
        if not wanted or t is None:
            return
        calls[mid] = calls.get(mid, 0) + 1
        name = names[mid] + (f"#{calls[mid]}" if calls[mid] > 1 else "")
        stats.append(summarize_values(name, type(module).__name__, t.detach().float().cpu().numpy()))

    handles = []
    for name, m in model.named_modules():
        if name:
            handles.append(m.register_forward_pre_hook(pre_hook))
            handles.append(m.register_forward_hook(hook))
    with _hooks(handles), _eval_mode(model), torch.no_grad():
        model(*xs)
    return stats


# --------------------------------------------------------------------------------------------
# Branches of a fusion layer
# --------------------------------------------------------------------------------------------


def _find_fusion(model: nn.Module, xs: list[torch.Tensor], fusion: Any) -> tuple[nn.Module, str]:
    named = dict(model.named_modules())
    if isinstance(fusion, str):
        if fusion not in named or fusion == "":
            raise KeyError(
                f"no module named {fusion!r} in {type(model).__name__}; its modules are "
                f"{[n for n in named if n][:30]}. Pass the fusion layer's name or the module itself."
            )
        return named[fusion], fusion
    if isinstance(fusion, nn.Module):
        for n, m in named.items():
            if m is fusion and n:
                return m, n
        raise ValueError(f"the fusion module {type(fusion).__name__} is not a submodule of the model.")
    if fusion is not None:
        raise TypeError(f"fusion must be a module, its name, or None to find it; received a {type(fusion).__name__}.")

    found: list[nn.Module] = []

    def pre_hook(module, args):
        if not found and _multi_tensor_args(args) is not None:
            found.append(module)

    handles = [m.register_forward_pre_hook(pre_hook) for n, m in named.items() if n]
    with _hooks(handles), _eval_mode(model), torch.no_grad():
        model(*xs)
    if not found:
        raise LookupError(
            f"no fusion layer found in {type(model).__name__}: no submodule was called with a list of "
            "tensors or with several tensors. A torch.cat inside forward is invisible to hooks. Fix: "
            "fuse with a module (e.g. one whose forward takes [a, b]) or pass fusion='name'."
        )
    return found[0], _module_names(model)[id(found[0])]


def branch_report(
    model: nn.Module, x: Any, y: Any, fusion: Any = None, loss: str | Callable = "cross_entropy"
) -> BranchReport:
    """What each input branch brings into the fusion layer: activation mean, std and scale
    (mean |x|), the gradient of the loss with respect to the branch tensor, and the share of
    the parameter gradient held by parameters that feed only that branch.

    `fusion` is the fusion module or its name; None finds the first submodule called with a
    list of >= 2 tensors (or with >= 2 tensor arguments) through forward pre-hooks. The same
    kind of pre-hook swaps in branch tensors that autograd can differentiate (a branch that is
    a raw input gets a ``requires_grad`` copy). Which parameters feed a branch is read off the
    autograd graph (``autograd.grad`` of the branch with respect to every parameter).
    Runs in ``eval()`` mode; ``param.grad`` is left untouched.
    """
    device = _model_device(model)
    xs = _inputs(x, device)
    module, name = _find_fusion(model, xs, fusion)
    captured: list[torch.Tensor] = []

    def pre_hook(mod, args):
        if captured:
            return None  # a shared fusion module: report its first call
        listed = len(args) >= 1 and isinstance(args[0], (list, tuple))
        items = list(args[0]) if listed else list(args)
        for i, a in enumerate(items):
            if isinstance(a, torch.Tensor):
                if not a.requires_grad:
                    a = a.detach().requires_grad_(True)
                    items[i] = a
                captured.append(a)
        if len(captured) < 2:
            raise LookupError(
                f"{name} ({type(mod).__name__}) was called with {len(captured)} tensor(s); a fusion layer "
                "takes a list of >= 2 tensors. Pass fusion= the module that merges the branches."
            )
        return (type(args[0])(items), *args[1:]) if listed else tuple(items)

    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    handle = module.register_forward_pre_hook(pre_hook)
    with _hooks([handle]), _eval_mode(model):
        value = _loss_value(model, xs, y, loss)
        grads = torch.autograd.grad(
            value, captured + [p for _, p in params], allow_unused=True, retain_graph=True
        )
        branch_grads, param_grads = grads[: len(captured)], grads[len(captured) :]
        upstream: list[set[int]] = []
        for b in captured:
            if b.grad_fn is None or not params:
                upstream.append(set())
                continue
            reach = torch.autograd.grad(
                b, [p for _, p in params], grad_outputs=torch.ones_like(b), allow_unused=True, retain_graph=True
            )
            upstream.append({i for i, g in enumerate(reach) if g is not None})

    # Parameters feeding several branches (a shared stem) belong to none of them.
    owners = [
        {i for i in up if sum(i in other for other in upstream) == 1} for up in upstream
    ]
    gnorms = [_norm(g) for g in branch_grads]
    gshare = shares([g * g for g in gnorms])
    pnorm_sq = [sum(_norm(param_grads[i]) ** 2 for i in own) for own in owners]
    have_params = all(owners)
    pshare = shares(pnorm_sq) if have_params else [None] * len(owners)
    branches = []
    for i, b in enumerate(captured):
        t = b.detach().double()
        branches.append(
            BranchStats(
                index=i,
                shape=tuple(b.shape),
                mean=float(t.mean()),
                std=float(t.std(unbiased=False)),
                scale=float(t.abs().mean()),
                grad_norm=gnorms[i],
                grad_share=gshare[i],
                param_grad_norm=float(np.sqrt(pnorm_sq[i])) if owners[i] else None,
                param_grad_share=pshare[i],
                n_params=sum(params[j][1].numel() for j in owners[i]),
            )
        )
    return BranchReport(fusion=name, kind=type(module).__name__, branches=branches, loss=float(value.detach()))


# --------------------------------------------------------------------------------------------
# Collapse
# --------------------------------------------------------------------------------------------


def is_collapsed(model: nn.Module, x: Any, tol: float = 1e-6, *, y: Any = None) -> CollapseReport:
    """Whether `model` gives (nearly) the same output for every sample of `x`.

    Collapsed when the largest std across samples of any output is <= tol * (1 + mean
    |output|) (a constant output), or when every sample gets the same predicted class although
    the batch is diverse (its inputs differ; with `y`, when it holds >= 2 labels). Both
    findings are reported separately (`constant`, `single_class`); see `CollapseReport`.
    """
    out = predict(model, x)
    xs = list(x) if isinstance(x, (list, tuple)) else [x]
    spread = max(float(_as_tensor(a, "x").double().reshape(len(a), -1).std(0, unbiased=False).max()) for a in xs)
    return collapse_report(out, spread, y=y, tol=tol)


# --------------------------------------------------------------------------------------------
# Parameters the optimizer never updates
# --------------------------------------------------------------------------------------------

_REGISTRIES = ("_parameters", "_buffers", "_modules")


def _scan(value: Any, path: str, how: str, depth: int, seen: set[int], found: list) -> None:
    """Collect (path, tensor-or-module, how) for trainable tensors hidden from nn.Module."""
    if id(value) in seen or depth > 3:
        return
    seen.add(id(value))
    if isinstance(value, torch.Tensor):
        if isinstance(value, nn.Parameter) or value.requires_grad:
            found.append((path, value, how))
    elif isinstance(value, nn.Module):
        if how != "attribute":
            found.append((path, value, how))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _scan(v, f"{path}[{i}]", f"plain {type(value).__name__}", depth + 1, seen, found)
    elif isinstance(value, dict):
        for k, v in value.items():
            _scan(v, f"{path}[{k!r}]", "plain dict", depth + 1, seen, found)
    elif hasattr(value, "__dict__") and not isinstance(value, type) and not callable(value):
        for k, v in vars(value).items():
            _scan(v, f"{path}.{k}", f"{type(value).__name__} object (not a Module)", depth + 1, seen, found)


def _hidden_tensors(model: nn.Module, registered: set[int]) -> tuple[list[str], set[int]]:
    problems, hidden_ids = [], set()
    seen: set[int] = set()
    for mname, module in model.named_modules():
        prefix = f"model.{mname}" if mname else "model"
        for attr, value in vars(module).items():
            if attr in _REGISTRIES:
                continue
            found: list = []
            _scan(value, f"{prefix}.{attr}", "attribute", 0, seen, found)
            for path, obj, how in found:
                if isinstance(obj, nn.Module):
                    hidden = [(n, p) for n, p in obj.named_parameters() if id(p) not in registered]
                    hidden_ids.update(id(p) for _, p in hidden)
                    if hidden:
                        problems.append(
                            f"{path} ({type(obj).__name__}, {len(hidden)} parameter tensors) is kept in a {how}, "
                            "so it is not registered: model.parameters() and the optimizer never see it. "
                            "Fix: use nn.ModuleList / nn.ModuleDict, or assign it directly as an attribute."
                        )
                elif id(obj) not in registered:
                    hidden_ids.add(id(obj))
                    kind = "nn.Parameter" if isinstance(obj, nn.Parameter) else "tensor with requires_grad=True"
                    if how == "attribute":
                        fix = "Fix: wrap it, self.w = nn.Parameter(...), so the module registers it."
                    elif how.startswith("plain"):
                        fix = "Fix: use nn.ParameterList / nn.ParameterDict, or assign each as an attribute."
                    else:
                        fix = "Fix: assign it directly to the module (self.w = nn.Parameter(...))."
                    where = "is a plain attribute" if how == "attribute" else f"is kept in a {how}"
                    problems.append(
                        f"{path}: {kind} of shape {tuple(obj.shape)} {where}, so it is not registered: "
                        f"model.parameters() and the optimizer never see it. {fix}"
                    )
    return problems, hidden_ids


def _graph_leaves(root: torch.Tensor) -> list[torch.Tensor]:
    """Leaf tensors that require grad and that `root` depends on (AccumulateGrad nodes)."""
    leaves, seen, stack = [], set(), [root.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        var = getattr(fn, "variable", None)
        if isinstance(var, torch.Tensor):
            leaves.append(var)
        stack.extend(f for f, _ in fn.next_functions)
    return leaves


def _global_name(model: nn.Module, obj: torch.Tensor) -> str | None:
    """The global or closure variable holding `obj`, looked up where the forwards are defined."""
    for module in model.modules():
        fwd = getattr(type(module).forward, "__func__", type(module).forward)
        for k, v in getattr(fwd, "__globals__", {}).items():
            if v is obj:
                return f"global variable `{k}`"
        for cell_name, cell in zip(getattr(fwd.__code__, "co_freevars", ()), fwd.__closure__ or ()):
            with contextlib.suppress(ValueError):
                if cell.cell_contents is obj:
                    return f"closure variable `{cell_name}`"
    return None


def _frozen(model: nn.Module) -> list[str]:
    problems = []
    for mname, module in model.named_modules():
        own = list(module.named_parameters(recurse=False))
        frozen = [n for n, p in own if not p.requires_grad]
        if not frozen:
            continue
        label = mname or type(model).__name__
        full = [f"{mname}.{n}" if mname else n for n in frozen]
        scope = f"layer {label} ({type(module).__name__}) is frozen" if len(frozen) == len(own) else f"in {label}, some parameters are frozen"
        problems.append(
            f"{scope}: {', '.join(full)} have requires_grad=False, so no gradient reaches them and the "
            "optimizer leaves them as they are. Fix, if they should train: p.requires_grad_(True)."
        )
    return problems


def find_untrainable_parameters(
    model: nn.Module,
    x: Any = None,
    y: Any = None,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    loss: str | Callable = "cross_entropy",
) -> list[str]:
    """Describe every parameter that training would not update; [] for a healthy model.

    Finds (a) nn.Parameters, tensors with requires_grad=True and modules kept where
    nn.Module does not register them (a plain list, dict or tuple, a non-Module object, or a
    requires_grad tensor that is not an nn.Parameter); (b) frozen parameters
    (requires_grad=False); (c) with `optimizer`, parameters missing from its param_groups;
    (d) with `x` (and `y`), after one forward and backward pass: tensors that require grad
    and are used in forward but are not registered (a parameter created outside the module,
    such as a global ``w = nn.Parameter(torch.rand(1))``, or inside forward), and registered
    parameters that get no gradient (unused, or used only through ``.detach()``). Without `y`
    the sum of the outputs stands in for the loss.
    """
    registered = {id(p) for p in model.parameters()}
    problems, hidden_ids = _hidden_tensors(model, registered)
    problems += _frozen(model)

    if optimizer is not None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer; received a {type(optimizer).__name__}.")
        in_opt = {id(p) for g in optimizer.param_groups for p in g["params"]}
        missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in in_opt]
        if missing:
            problems.append(
                f"{len(missing)} parameter tensors are not in the optimizer: {', '.join(missing[:8])}"
                f"{' ...' if len(missing) > 8 else ''}. It never updates them. Fix: build the optimizer "
                "after the model is complete, from model.parameters()."
            )

    if x is not None:
        device = _model_device(model)
        xs = _inputs(x, device)
        known = {id(t) for t in xs} | registered | hidden_ids  # hidden ones are reported already
        with _eval_mode(model):
            if y is not None:
                value = _loss_value(model, xs, y, loss)
            else:
                value = _output(model, xs).float().sum()
            reported = set()
            for leaf in _graph_leaves(value):
                if id(leaf) in known or id(leaf) in reported:
                    continue
                reported.add(id(leaf))
                where = _global_name(model, leaf)
                origin = f"the {where}, created outside the module" if where else "created outside the module or inside forward"
                problems.append(
                    f"a tensor of shape {tuple(leaf.shape)} that requires grad is used in forward but is not a "
                    f"registered parameter ({origin}): model.parameters() and the optimizer never see it. "
                    "Fix: create it in __init__ as self.w = nn.Parameter(...)."
                )
            trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
            if trainable and value.requires_grad:
                grads = torch.autograd.grad(value, [p for _, p in trainable], allow_unused=True)
                unused = [n for (n, _), g in zip(trainable, grads) if g is None]
            else:
                unused = [n for n, _ in trainable]
            if unused:
                problems.append(
                    f"{len(unused)} parameter tensors get no gradient from the loss: {', '.join(unused[:8])}"
                    f"{' ...' if len(unused) > 8 else ''}. They are not used in forward, or only through "
                    ".detach() / .data. Fix: use the layer in forward, or delete it."
                )
    return problems


# --------------------------------------------------------------------------------------------
# Gradient flow
# --------------------------------------------------------------------------------------------


def gradient_flow(model: nn.Module, x: Any, y: Any, loss: str | Callable = "cross_entropy") -> GradientFlow:
    """Gradient and weight norm of every parameter tensor for one batch, ordered from input
    to output (by the order in which their modules first run; unused ones last).

    Frozen or unused parameters are listed too, with ``has_grad=False``. Runs in ``eval()``
    mode through ``torch.autograd.grad``; ``param.grad`` is left untouched.
    """
    device = _model_device(model)
    xs = _inputs(x, device)
    order: dict[int, int] = {}

    def hook(module, args, out):
        order.setdefault(id(module), len(order))

    handles = [m.register_forward_hook(hook) for m in model.modules() if m._parameters]
    with _hooks(handles), _eval_mode(model):
        value = _loss_value(model, xs, y, loss)
    owner = {}  # id(param) -> (name, the module that holds it directly)
    for mname, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            owner.setdefault(id(p), (f"{mname}.{pname}" if mname else pname, module))
    entries = []
    for rank, (name, p) in enumerate(model.named_parameters()):
        module = owner.get(id(p), (name, model))[1]
        entries.append((order.get(id(module), len(order) + rank), rank, name, p))
    entries.sort(key=lambda e: (e[0], e[1]))
    trainable = [p for *_, p in entries if p.requires_grad]
    grads = iter(torch.autograd.grad(value, trainable, allow_unused=True) if trainable and value.requires_grad else [None] * len(trainable))
    flow = GradientFlow()
    for _, _, name, p in entries:
        g = next(grads) if p.requires_grad else None
        gn, wn = _norm(g), _norm(p)
        flow.append(GradStats(name, tuple(p.shape), gn, wn, grad_ratio(gn, wn), has_grad=g is not None))
    return flow
