"""Framework-neutral results of the lessons' experiments, so notebooks and tests read the same
numbers and print the same tables in both frameworks."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable, Sequence

import numpy as np

from .data import TwoBranchData, make_two_branch
from .diagnostics_report import format_table
from .history import History
from .seeding import seed_everything


@dataclass
class FusionRun:
    """One training run of a two-branch network on `coursekit.data.make_two_branch` data.

    `accuracy_a` / `accuracy_b` are test accuracies on the samples whose label only branch A /
    branch B carries: a fused model that ignores a branch scores chance on that branch's half.
    """

    label: str
    options: dict[str, Any]
    history: History
    test_loss: float
    test_accuracy: float
    accuracy_a: float
    accuracy_b: float
    n_params: int
    seconds_per_epoch: float
    report: Any = None  # BranchReport after training, when asked for
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        """True when the final loss is not finite."""
        return not (self.test_loss == self.test_loss and abs(self.test_loss) != float("inf"))

    def __str__(self) -> str:
        return (
            f"{self.label}: test loss {self.test_loss:.3f}, accuracy {self.test_accuracy:.1%} "
            f"(A-carried {self.accuracy_a:.1%}, B-carried {self.accuracy_b:.1%})"
        )


def compare(runs: Sequence[FusionRun], columns: Sequence[str] = ()) -> str:
    """A text table of runs: loss, accuracy per branch, gradient share of branch A, parameters, time."""
    headers = ["run", "test loss", "accuracy", "acc A", "acc B", "grad share A", "params", "s/epoch", *columns]
    rows = []
    for r in runs:
        share = "-" if r.report is None else f"{r.report.grad_shares[0]:.1%}"
        rows.append([
            r.label, f"{r.test_loss:.3f}", f"{r.test_accuracy:.1%}", f"{r.accuracy_a:.1%}", f"{r.accuracy_b:.1%}",
            share, str(r.n_params), f"{r.seconds_per_epoch:.2f}", *[str(r.extra.get(c, "")) for c in columns],
        ])
    return format_table(headers, rows)


class RunTable(list):
    """A list of FusionRun that prints as `compare`'s table (also in Jupyter)."""

    def __str__(self) -> str:
        return compare(self)

    def _repr_pretty_(self, p, cycle) -> None:  # IPython display
        p.text(str(self))

    def by_label(self) -> dict[str, FusionRun]:
        return {r.label: r for r in self}


def run_two_branch_with(
    api: Any,
    layout: str,
    data: TwoBranchData | None = None,
    *,
    label: str | None = None,
    scale: float = 1.0,
    distribution: str = "normal",
    n: int = 1024,
    n_classes: int = 4,
    fusion: str = "concat",
    norm: str | None = None,
    branch_norm: str | None = None,
    activations: str | tuple[str, str] = "relu",
    width: int = 8,
    init: str | None = None,
    init_options: dict | None = None,
    optimizer: str = "adam",
    lr: float = 1e-3,
    epochs: int = 8,
    batch_size: int = 64,
    seed: int = 0,
    report: bool = True,
    progress: bool = False,
) -> FusionRun:
    """The body of both halves' `run_two_branch`: `api` is the framework module providing
    two_branch_net, init_model, fit, predict, branch_report and count_params."""
    if data is None:
        data = make_two_branch(n=n, scale=scale, distribution=distribution, n_classes=n_classes,
                               layout=layout, seed=0)
    elif data.layout != layout:
        raise ValueError(f"run_two_branch needs {layout} data here; received layout {data.layout!r}. "
                         f"Make it with make_two_branch(..., layout={layout!r}).")
    train, test = data.split(0.25, seed=0)
    seed_everything(seed)
    model = api.two_branch_net(n_classes=data.n_classes, width=width, activations=activations, fusion=fusion,
                           norm=norm, branch_norm=branch_norm)
    if init is not None:
        api.init_model(model, init, seed=seed, **(init_options or {}))
    history = api.fit(model, (train.inputs, train.y), (test.inputs, test.y), epochs=epochs, optimizer=optimizer,
                  lr=lr, batch_size=batch_size, seed=seed, progress=progress)
    logits = api.predict(model, test.inputs)
    right = np.argmax(logits, axis=1) == test.y if np.isfinite(logits).all() else np.zeros(len(test), bool)
    rep = api.branch_report(model, [x[:256] for x in test.inputs], test.y[:256]) if report else None
    options = dict(scale=data.scale, distribution=data.distribution, fusion=fusion, norm=norm,
                   branch_norm=branch_norm, activations=activations, init=init, optimizer=optimizer, lr=lr,
                   epochs=epochs, seed=seed)
    return FusionRun(
        label=label or f"{fusion}" + (f"+{norm}" if norm else "") + f" x{data.scale:g}",
        options=options,
        history=history,
        test_loss=history.last("val_loss"),
        test_accuracy=float(right.mean()),
        accuracy_a=float(right[test.carrier == 0].mean()),
        accuracy_b=float(right[test.carrier == 1].mean()),
        n_params=api.count_params(model),
        seconds_per_epoch=float(np.median(history.seconds)) if history.seconds else float("nan"),
        report=rep,
        extra={"model": model},
    )


@dataclass
class BranchCurve:
    """How fast a two-branch net learns branch A's half: the test accuracy on the A-carried samples
    after each epoch of one run (`branch_a_curve`). With branch B on a larger scale this is the half
    that drowns, so the steps it needs measure what the scale gap costs at any budget."""

    scale: float
    seed: int
    steps_per_epoch: int
    accuracy_a: list[float]
    label: str = ""  # what differs between the curves of one figure; "x<scale>" when empty

    @property
    def name(self) -> str:
        return self.label or f"x{self.scale:g}"

    @property
    def steps(self) -> list[int]:
        """The training steps done at the end of each epoch."""
        return [(i + 1) * self.steps_per_epoch for i in range(len(self.accuracy_a))]

    def steps_to(self, threshold: float = 0.9) -> int | None:
        """Training steps until branch A's half first reaches `threshold` test accuracy (checked
        after each epoch), or None when the run ends first: "not within the budget", not "never"."""
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold is an accuracy in (0, 1]; received {threshold!r}. Example: steps_to(0.9).")
        return next((step for step, acc in zip(self.steps, self.accuracy_a) if acc >= threshold), None)

    def describe(self, threshold: float = 0.9) -> str:
        """One line: when branch A's half reached `threshold`, or how far it got."""
        reached = self.steps_to(threshold)
        if reached is not None:
            return f"{self.name:<6} branch A's half reaches {threshold:.0%} after {reached} steps"
        return (f"{self.name:<6} branch A's half is at {self.accuracy_a[-1]:.1%} after {self.steps[-1]} steps: "
                f"{threshold:.0%} not reached within this budget")


def branch_a_curve_with(api: Any, layout: str, *, scale: float = 100.0, fusion: str = "concat",
                        norm: str | None = None, branch_norm: str | None = None, label: str = "", n: int = 1024,
                        epochs: int = 8,
                        batch_size: int = 64, lr: float = 1e-3, seed: int = 0) -> BranchCurve:
    """The body of both halves' `branch_a_curve`: `api` as for `run_two_branch_with`. The same data,
    split, initial weights and batches as `run_two_branch` with the same `fusion`, `norm`, `branch_norm`
    (validation does not change training), so after `epochs` of ``run_two_branch`` its accuracy on
    the A half is this curve's value there."""
    data = make_two_branch(n=n, scale=scale, n_classes=4, layout=layout, seed=0)
    train, test = data.split(0.25, seed=0)
    a_half = test.carrier == 0
    seed_everything(seed)
    model = api.two_branch_net(n_classes=data.n_classes, fusion=fusion, norm=norm, branch_norm=branch_norm)
    history = api.fit(model, (train.inputs, train.y), ([x[a_half] for x in test.inputs], test.y[a_half]),
                      epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, progress=False)
    return BranchCurve(scale=float(scale), seed=seed, steps_per_epoch=-(-len(train.y) // batch_size),
                       accuracy_a=[float(v) for v in history["val_accuracy"]], label=label)


# Lesson 02's "which branch is drowned at initialization?" settings: keyword arguments of
# `init_share_inputs` and the net's activations. Each one's answer holds with a wide margin in both
# frameworks and for seeds 0-2 (tests/test_claims_02.py), so a prediction is right or wrong, not lucky.
INIT_SHARE_SETTINGS: dict[str, dict[str, Any]] = {
    "x10": dict(scale=10.0),
    "both x100": dict(scale=100.0, a_scale=100.0),
    "x100, B standardized": dict(scale=100.0, standardize_b=True),
    "A x100": dict(scale=1.0, a_scale=100.0),
    "x100, both sigmoid": dict(scale=100.0, activations="sigmoid"),
    "x100, A sigmoid": dict(scale=100.0, activations=("sigmoid", "relu")),
}


def init_share_setting(setting: str) -> dict[str, Any]:
    """The options of one of `INIT_SHARE_SETTINGS` (ValueError naming the known ones)."""
    if setting not in INIT_SHARE_SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; the settings are {', '.join(map(repr, INIT_SHARE_SETTINGS))}.")
    return dict(INIT_SHARE_SETTINGS[setting])


def init_share_inputs(setting: str, layout: str, n: int = 256, seed: int = 0) -> list[np.ndarray]:
    """``[x_a, x_b]`` of the task's data for `setting`: branch B at ``scale``, branch A multiplied by
    ``a_scale``, and with ``standardize_b`` branch B divided back by its own mean and std."""
    opts = init_share_setting(setting)
    data = make_two_branch(n=n, scale=opts.get("scale", 100.0), n_classes=4, layout=layout, seed=seed)
    x_a, x_b = data.x_a * np.float32(opts.get("a_scale", 1.0)), data.x_b
    if opts.get("standardize_b"):
        x_b = ((x_b - x_b.mean()) / x_b.std()).astype(np.float32)
    return [x_a, x_b]


def init_head_shares_with(setting: str, layout: str, *, build: Callable[..., Any],
                          head_input_shares: Callable[[Any, list[np.ndarray]], list[float]], n: int = 256,
                          seed: int = 0) -> list[float]:
    """The body of both halves' `failure.init_head_shares`: `build(activations=...)` makes the
    framework's untrained two-branch net (after seeding), `head_input_shares` measures it."""
    x = init_share_inputs(setting, layout, n=n, seed=seed)
    seed_everything(seed)
    return head_input_shares(build(activations=init_share_setting(setting).get("activations", "relu")), x)


def drowned_branch(head_shares: Sequence[float], threshold: float = 0.1) -> str:
    """"A" or "B" when that branch moves less than `threshold` of the head's input (its share of the
    squared norm, `head_input_shares`), else "neither"."""
    if len(head_shares) != 2:
        raise ValueError(f"drowned_branch needs the two shares [A, B]; received {list(head_shares)!r}.")
    if head_shares[0] < threshold:
        return "A"
    return "B" if head_shares[1] < threshold else "neither"


# Lesson 04's exercise 3: how a fusion layer decides how much of each branch passes.
WEIGHTING_CHOICES = ("nothing", "fixed", "input")


@dataclass(frozen=True)
class FusionWeighting:
    """How a fusion layer weighs its branches (`strategies.fusion_weighting`): `kind` is "nothing"
    (no parameters), "fixed" (learned weights, the same for every input: the layer is affine) or
    "input" (weights computed from the input); `nonlinearity` is how far the layer is from affine,
    ``max |f(a + b) + f(0) - f(a) - f(b)| / max |f(a) + f(b)|`` on random maps (0 up to rounding)."""

    fusion: str
    kind: str
    n_params: int
    nonlinearity: float

    def describe(self) -> str:
        return (f"{self.fusion:<11} {self.n_params:4d} parameters, distance from affine {self.nonlinearity:.1e}"
                f"  -> {self.kind}")


def fusion_weighting_of(fusion: str, n_params: int, parts: Sequence[np.ndarray]) -> FusionWeighting:
    """The verdict from a layer's parameter count and ``parts = [f(a + b), f(0), f(a), f(b)]``."""
    lhs = np.asarray(parts[0], np.float64) + np.asarray(parts[1], np.float64)
    rhs = np.asarray(parts[2], np.float64) + np.asarray(parts[3], np.float64)
    nonlinearity = float(np.abs(lhs - rhs).max() / max(np.abs(rhs).max(), 1e-30))
    kind = "nothing" if n_params == 0 else ("fixed" if nonlinearity < 1e-4 else "input")
    return FusionWeighting(fusion=fusion, kind=kind, n_params=int(n_params), nonlinearity=nonlinearity)


def fusion_weighting_with(fusion: str, layout: str, *, build: Callable[[str], Any],
                          apply: Callable[[Any, list[np.ndarray]], np.ndarray], n_params: Callable[[Any], int],
                          seed: int = 0) -> FusionWeighting:
    """The body of both halves' `strategies.fusion_weighting`: `build(fusion)` returns the untrained
    fusion layer of the framework's two-branch net (after seeding), `apply(layer, [a, b])` its output
    on two numpy branch maps as numpy, `n_params(layer)` its parameter count."""
    from .models import FUSIONS

    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {FUSIONS}; received {fusion!r}.")
    seed_everything(seed)
    layer = build(fusion)
    (a1, b1), (a2, b2) = weighting_probe_maps(layout, seed)
    pairs = [[a1 + a2, b1 + b2], [0 * a1, 0 * b1], [a1, b1], [a2, b2]]
    return fusion_weighting_of(fusion, n_params(layer), [apply(layer, pair) for pair in pairs])


def weighting_probe_maps(layout: str, seed: int = 0, width: int = 8) -> list[list[np.ndarray]]:
    """Two random pairs of branch maps ``[[a1, b1], [a2, b2]]`` (std 3, 4 samples of 6x6) for
    `fusion_weighting`."""
    rng = np.random.default_rng(seed)
    shape = (4, width, 6, 6) if layout == "NCHW" else (4, 6, 6, width)
    return [[(3 * rng.standard_normal(shape)).astype(np.float32) for _ in range(2)] for _ in range(2)]


def fusion_weights(layer: Any) -> np.ndarray | None:
    """The per-branch weights a weighting fusion layer applies (its ``branch_weights()``), or
    None for a layer without them."""
    get = getattr(layer, "branch_weights", None)
    return None if get is None else np.asarray(get(), dtype=np.float64).copy()


def api_with(api: Any, **overrides: Any) -> SimpleNamespace:
    """What `run_two_branch_with` takes as `api` (two_branch_net, init_model, fit, predict,
    branch_report, count_params), taken from the framework module `api` except `overrides`: how
    the lessons train their own models, or with an LR schedule, the same way."""
    names = ("two_branch_net", "init_model", "fit", "predict", "branch_report", "count_params")
    return SimpleNamespace(**{name: overrides[name] if name in overrides else getattr(api, name) for name in names})


def run_custom_fusion_with(api: Any, layout: str, layer_type: type, layer_name: str, *, build_around: Any,
                           fusion: Any, **options: Any) -> FusionRun:
    """The body of both halves' `run_custom_fusion`: `api` as for `run_two_branch_with` (its
    `two_branch_net` is replaced), `layer_type` the framework's layer class (`layer_name` as
    students write it), `build_around(make, options)` the two-branch model around the layer
    that `make()` returns; `options` are `run_two_branch_with`'s, `label` included."""
    made: dict[str, Any] = {}

    def make() -> Any:
        layer = fusion if isinstance(fusion, layer_type) else fusion()
        if not isinstance(layer, layer_type):
            raise TypeError(f"run_custom_fusion: the fusion factory returned a {type(layer).__name__}, not a "
                            f"{layer_name}. Pass the layer, or a function of no arguments that returns one.")
        made["fusion"] = layer
        made["weights_before"] = fusion_weights(layer)
        return layer

    custom = api_with(api, two_branch_net=lambda **opts: build_around(make, opts))
    run = run_two_branch_with(custom, layout, fusion=options["label"], **options)
    run.extra.update(fusion=made["fusion"], weights_before=made["weights_before"],
                     weights_after=fusion_weights(made["fusion"]))
    return run


def by_carrier(per_sample: np.ndarray, carrier: np.ndarray) -> dict[str, np.ndarray]:
    """Means of `per_sample` rows over the samples whose label branch A / branch B carries."""
    return {"A-carried": per_sample[carrier == 0].mean(axis=0), "B-carried": per_sample[carrier == 1].mean(axis=0)}
