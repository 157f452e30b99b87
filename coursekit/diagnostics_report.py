"""Framework-neutral results of the training diagnostics, with short text tables for notebooks.

`coursekit.torch.diagnostics` and `coursekit.keras.diagnostics` fill these containers, so
plots (`coursekit.plots_diag`) and tests treat both halves alike. Every report prints as a
small table (`print(report)`); lists of stats print as one table too. Imports no framework.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "VALUES_CAP",
    "ActivationStats",
    "BranchReport",
    "BranchStats",
    "CollapseReport",
    "GradStats",
    "GradientFlow",
    "LayerStats",
    "collapse_report",
    "format_table",
    "grad_ratio",
    "shares",
    "summarize_values",
]

# Histograms need a sample, not every activation: 20k entries draw the same picture.
VALUES_CAP = 20_000


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-3):
            return f"{value:.2e}"
        return f"{value:.4g}"
    if isinstance(value, tuple):
        dims = ["?" if d is None else str(d) for d in value]
        return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
    return str(value)


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain-text table: left-aligned text, right-aligned numbers, one header rule."""
    raw = [list(row) for row in rows]
    cells = [[_fmt(v) for v in row] for row in raw]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for values, row in zip(raw, cells):
        lines.append(
            "  ".join(c.rjust(w) if _is_number(v) else c.ljust(w) for v, c, w in zip(values, row, widths)).rstrip()
        )
    return "\n".join(lines)


def _is_number(value: Any) -> bool:
    # Layer names such as torch's "0" stay left-aligned: only real numbers and percentages go right.
    if isinstance(value, str):
        return value.endswith("%")
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _pct(x: float) -> str:
    return "nan" if math.isnan(x) else f"{100 * x:.1f}%"


def shares(values: Sequence[float]) -> list[float]:
    """`values` normalized to sum to 1 (all equal when every value is 0)."""
    total = float(sum(values))
    if total <= 0 or not math.isfinite(total):
        return [1.0 / len(values)] * len(values) if values else []
    return [float(v) / total for v in values]


# --------------------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------------------


@dataclass
class LayerStats:
    """Statistics of one layer's output over a batch.

    `frac_zero` is the dead-unit fraction: the share of units (entries of one sample's output,
    e.g. one channel at one position of a conv map) that are <= 0 for *every* sample of the
    batch. After a ReLU such a unit passes no gradient: it is dead. `frac_zero_entries` is
    the plain share of entries that are exactly 0. `values` is a sample of at most
    `VALUES_CAP` entries for histograms.
    """

    name: str
    kind: str
    shape: tuple
    mean: float
    std: float
    frac_zero: float
    frac_zero_entries: float
    min: float
    max: float
    values: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.float32))

    @property
    def frac_dead(self) -> float:
        """Alias of `frac_zero`, the dead-unit fraction."""
        return self.frac_zero

    def __str__(self) -> str:
        return (
            f"{self.name} ({self.kind}, {_fmt(self.shape)}): mean {_fmt(self.mean)}, std "
            f"{_fmt(self.std)}, dead {_pct(self.frac_zero)}, zeros {_pct(self.frac_zero_entries)}, "
            f"range [{_fmt(self.min)}, {_fmt(self.max)}]"
        )


class ActivationStats(list):
    """A list of `LayerStats` (what `activation_stats` returns) that prints as one table."""

    def __str__(self) -> str:
        if not self:
            return "(no layers)"
        rows = [
            (s.name, s.kind, s.shape, s.mean, s.std, _pct(s.frac_zero), _pct(s.frac_zero_entries), s.min, s.max)
            for s in self
        ]
        return format_table(("layer", "kind", "shape", "mean", "std", "dead", "zeros", "min", "max"), rows)

    def _repr_pretty_(self, p, cycle) -> None:  # IPython shows the table, not a long repr
        p.text(str(self))

    def by_name(self, name: str) -> LayerStats:
        """The stats of layer `name`."""
        for s in self:
            if s.name == name:
                return s
        raise KeyError(f"no layer {name!r} in these stats; they have {[s.name for s in self]}")


def summarize_values(
    name: str, kind: str, arr: np.ndarray, cap: int = VALUES_CAP, seed: int = 0
) -> LayerStats:
    """`LayerStats` of one batch of outputs `arr` (axis 0 = samples), computed in numpy."""
    arr = np.asarray(arr)
    n = arr.shape[0] if arr.ndim else 1
    flat = arr.reshape(n, -1).astype(np.float64, copy=False)
    if flat.size == 0:
        nan = float("nan")
        return LayerStats(name, kind, tuple(arr.shape), nan, nan, nan, nan, nan, nan, np.zeros(0, np.float32))
    dead = float(np.mean(np.all(flat <= 0, axis=0)))
    values = flat.ravel()
    if values.size > cap:
        values = np.random.default_rng(seed).choice(values, size=cap, replace=False)
    return LayerStats(
        name=name,
        kind=kind,
        shape=tuple(int(d) for d in arr.shape),
        mean=float(flat.mean()),
        std=float(flat.std()),
        frac_zero=dead,
        frac_zero_entries=float(np.mean(flat == 0)),
        min=float(flat.min()),
        max=float(flat.max()),
        values=values.astype(np.float32),
    )


# --------------------------------------------------------------------------------------------
# Branches of a fusion layer
# --------------------------------------------------------------------------------------------


@dataclass
class BranchStats:
    """One input of a fusion layer: its activation statistics and gradient shares.

    `scale` is mean |x|. `grad_norm` is ||d loss / d branch||; `grad_share` that branch's
    share of the summed squared norms (for a concatenation: exactly its part of the fused
    tensor's squared gradient norm). `param_grad_share` is the share of the squared
    parameter-gradient norm held by parameters that feed only this branch (None when no
    parameter belongs to this branch alone).
    """

    index: int
    shape: tuple
    mean: float
    std: float
    scale: float
    grad_norm: float
    grad_share: float
    param_grad_norm: float | None = None
    param_grad_share: float | None = None
    n_params: int = 0


@dataclass
class BranchReport:
    """What each branch brings into a fusion layer (see `BranchStats`)."""

    fusion: str
    kind: str
    branches: list[BranchStats]
    loss: float = float("nan")

    @property
    def scales(self) -> list[float]:
        return [b.scale for b in self.branches]

    @property
    def scale_shares(self) -> list[float]:
        """Each branch's share of the summed activation scales (sums to 1)."""
        return shares(self.scales)

    @property
    def grad_shares(self) -> list[float]:
        return [b.grad_share for b in self.branches]

    @property
    def param_grad_shares(self) -> list[float] | None:
        values = [b.param_grad_share for b in self.branches]
        return None if any(v is None for v in values) else values

    @property
    def scale_ratio(self) -> float:
        """Largest over smallest branch scale (1 = balanced)."""
        lo, hi = min(self.scales), max(self.scales)
        return float("inf") if lo == 0 else hi / lo

    @property
    def dominant(self) -> int:
        """Index of the branch with the largest activation scale."""
        return int(np.argmax(self.scales))

    def __str__(self) -> str:
        rows = [
            (
                f"branch {b.index}", b.shape, b.mean, b.std, b.scale, _pct(s), b.grad_norm, _pct(b.grad_share),
                "-" if b.param_grad_share is None else _pct(b.param_grad_share),
            )
            for b, s in zip(self.branches, self.scale_shares)
        ]
        table = format_table(
            ("input", "shape", "mean", "std", "scale", "scale%", "grad", "grad%", "param grad%"), rows
        )
        ratio = self.scale_ratio
        if ratio >= 10:
            verdict = (
                f"branch {self.dominant} dominates: its scale is {_fmt(ratio)}x the smallest. "
                "Normalize the branches before fusing (e.g. BatchNorm or LayerNorm per branch)."
            )
        else:
            verdict = f"scales within {_fmt(ratio)}x of each other."
        return f"fusion {self.fusion} ({self.kind}), loss {_fmt(self.loss)}\n{table}\n{verdict}"

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(str(self))


# --------------------------------------------------------------------------------------------
# Collapse
# --------------------------------------------------------------------------------------------


@dataclass
class CollapseReport:
    """Whether a model's outputs ignore its inputs.

    `spread` is the largest standard deviation across samples of any output dimension;
    `scale` the mean |output|. `constant` when spread <= tol * (1 + scale). `single_class`
    when every sample gets the same argmax class (for one output column: the same sign)
    although the batch is diverse (its inputs differ, or `y` holds >= 2 labels).
    `collapsed` = constant or single_class; `reason` names which rule fired.
    """

    collapsed: bool
    spread: float
    n_distinct_predictions: int
    message: str
    scale: float = float("nan")
    n_samples: int = 0
    constant: bool = False
    single_class: bool = False
    reason: str | None = None

    def __bool__(self) -> bool:
        return self.collapsed

    def __str__(self) -> str:
        return self.message


def collapse_report(outputs: np.ndarray, input_spread: float, y: Any = None, tol: float = 1e-6) -> CollapseReport:
    """Apply the `CollapseReport` rules to model `outputs` (axis 0 = samples)."""
    if not (isinstance(tol, (int, float)) and not isinstance(tol, bool) and tol >= 0):
        raise ValueError(f"tol must be a number >= 0; received {tol!r}. The default is 1e-6.")
    out = np.asarray(outputs, dtype=np.float64)
    n = out.shape[0] if out.ndim else 1
    if n < 2:
        raise ValueError(
            f"is_collapsed needs at least 2 samples to compare outputs across inputs; received "
            f"outputs of shape {out.shape}. Pass a batch, e.g. x[:64]."
        )
    flat = out.reshape(n, -1)
    spread = float(flat.std(axis=0).max())
    scale = float(np.abs(flat).mean())
    constant = bool(spread <= tol * (1.0 + scale))
    preds = flat.argmax(axis=1) if flat.shape[1] > 1 else (flat[:, 0] > 0).astype(np.int64)
    n_distinct = int(np.unique(preds).size)
    if y is not None:
        diverse = np.unique(np.asarray(y).reshape(n, -1), axis=0).shape[0] >= 2
    else:
        diverse = input_spread > 0
    single = bool(n_distinct == 1 and diverse and not constant)
    if constant:
        reason = "constant"
        msg = (
            f"collapsed: every sample gets the same output (spread {_fmt(spread)} <= tol * (1 + mean "
            f"|output| {_fmt(scale)})). Look for zero or dead last-layer weights, a saturated "
            "activation, or a learning rate that diverged."
        )
    elif single:
        reason = "single_class"
        msg = (
            f"collapsed: all {n} samples are predicted as class {int(preds[0])} although the batch "
            f"is diverse (outputs vary, spread {_fmt(spread)}). An untrained network may do this; "
            "after training it means the model learned only the class prior. Check the labels, "
            "the loss and the learning rate."
        )
    else:
        reason = None
        msg = (
            f"not collapsed: outputs vary across samples (spread {_fmt(spread)}, mean |output| "
            f"{_fmt(scale)}), {n_distinct} distinct predicted classes over {n} samples."
        )
    return CollapseReport(
        collapsed=constant or single, spread=spread, n_distinct_predictions=n_distinct, message=msg,
        scale=scale, n_samples=n, constant=constant, single_class=single, reason=reason,
    )


# --------------------------------------------------------------------------------------------
# Gradient flow
# --------------------------------------------------------------------------------------------


@dataclass
class GradStats:
    """Gradient of one parameter tensor: norms and their ratio (grad / weight).

    `has_grad` is False when the loss does not depend on the tensor (its grad is None);
    `grad_norm` is then 0.
    """

    name: str
    shape: tuple
    grad_norm: float
    weight_norm: float
    ratio: float
    has_grad: bool = True

    def __str__(self) -> str:
        return (
            f"{self.name} {_fmt(self.shape)}: |grad| {_fmt(self.grad_norm)}, |w| "
            f"{_fmt(self.weight_norm)}, ratio {_fmt(self.ratio)}" + ("" if self.has_grad else " (no gradient)")
        )


def grad_ratio(grad_norm: float, weight_norm: float) -> float:
    """grad_norm / weight_norm; inf for a zero weight that gets a gradient, 0 for neither."""
    if weight_norm > 0:
        return grad_norm / weight_norm
    return float("inf") if grad_norm > 0 else 0.0


class GradientFlow(list):
    """A list of `GradStats` (what `gradient_flow` returns), ordered from input to output,
    that prints as one table."""

    def __str__(self) -> str:
        if not self:
            return "(no parameters)"
        rows = [
            (g.name, g.shape, g.grad_norm if g.has_grad else "none", g.weight_norm, g.ratio) for g in self
        ]
        return format_table(("parameter", "shape", "|grad|", "|w|", "|grad|/|w|"), rows)

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(str(self))
