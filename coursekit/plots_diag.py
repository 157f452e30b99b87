"""Matplotlib figures for training runs and diagnostics. Framework-neutral: they draw the
containers of `coursekit.history` and `coursekit.diagnostics_report`, which both halves fill,
and matplotlib is imported only when a figure is drawn. Every function returns the Figure."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .diagnostics_report import BranchReport, GradStats, LayerStats
from .history import History, LRRangeResult

__all__ = [
    "plot_activation_histograms",
    "plot_branch_curves",
    "plot_branch_report",
    "plot_gradient_flow",
    "plot_history",
    "plot_lr_range",
    "plot_lr_ranges",
]


def _as_runs(histories: Any) -> dict[str, History]:
    if isinstance(histories, History):
        return {"run": histories}
    if isinstance(histories, Mapping) and histories and all(isinstance(h, History) for h in histories.values()):
        return {str(k): h for k, h in histories.items()}
    raise TypeError(
        "plot_history expects a History or a non-empty dict of name -> History, e.g. "
        f"plot_history({{'concat': h1, 'add': h2}}); received {type(histories).__name__}"
        + (f" with values {sorted({type(v).__name__ for v in histories.values()})}" if isinstance(histories, Mapping) else "")
        + "."
    )


def plot_history(
    histories: Mapping[str, History] | History,
    metrics: Sequence[str] = ("loss", "val_loss"),
    log_scale: bool = False,
    title: str | None = None,
):
    """Curves of `metrics` per epoch, one panel per metric, every run overlaid.

    `histories` is one `History` or a dict name -> History (e.g. several fusion methods).
    Metrics a run lacks are skipped for that run; a metric no run has raises KeyError.
    `log_scale` puts the y axis on a log scale (for losses over several decades).
    """
    import matplotlib.pyplot as plt

    runs = _as_runs(histories)
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if not metrics:
        raise ValueError("plot_history needs at least one metric, e.g. metrics=('loss', 'val_loss').")
    known = sorted({k for h in runs.values() for k in h.metrics})
    missing = [m for m in metrics if not any(m in h for h in runs.values())]
    if missing:
        raise KeyError(f"no run has metric(s) {missing}; the runs have {known}.")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for ax, metric in zip(axes[0], metrics):
        for i, (name, h) in enumerate(runs.items()):
            if metric not in h:
                continue
            values = h[metric]
            epochs = np.arange(1, len(values) + 1)
            ax.plot(epochs, values, marker="o", ms=3, color=colors[i % len(colors)], label=name)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("epoch")
        if log_scale:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if len(runs) > 1:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_activation_histograms(stats: Sequence[LayerStats], bins: int = 50, cols: int = 4):
    """One small histogram per layer of the values sampled by `activation_stats`, titled with
    the layer's mean, std and dead-unit percentage (in red when more than half are dead)."""
    import matplotlib.pyplot as plt

    stats = list(stats)
    if not stats:
        raise ValueError("plot_activation_histograms needs at least one LayerStats; received an empty list.")
    cols = max(1, min(cols, len(stats)))
    rows = math.ceil(len(stats) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.4 * rows), squeeze=False)
    for ax, s in zip(axes.flat, stats):
        values = np.asarray(s.values, dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size:
            lo, hi = float(values.min()), float(values.max())
            ax.hist(values, bins=bins, range=(lo, hi) if hi > lo else (lo - 0.5, hi + 0.5), color="C0", alpha=0.8)
        ax.set_title(
            f"{s.name} ({s.kind})\nmean {s.mean:.3g}, std {s.std:.3g}, dead {100 * s.frac_zero:.0f}%",
            fontsize=8, color="C3" if s.frac_zero > 0.5 else "black",
        )
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(stats):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_branch_report(report: BranchReport):
    """Two bar charts per branch: activation scale (mean |x|, log axis) and the gradient
    shares (d loss / d branch, and the branch's own parameters when known)."""
    import matplotlib.pyplot as plt

    if not isinstance(report, BranchReport):
        raise TypeError(
            f"plot_branch_report expects the BranchReport of branch_report(...); received a {type(report).__name__}."
        )
    labels = [f"branch {b.index}" for b in report.branches]
    x = np.arange(len(labels))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.4, 3.2))
    scales = np.array(report.scales, dtype=np.float64)
    ax1.bar(x, scales, color=[f"C{i}" for i in range(len(labels))])
    if np.all(scales > 0) and scales.max() / scales.min() >= 10:
        ax1.set_yscale("log")
    ax1.set_xticks(x, labels)
    ax1.set_title(f"activation scale into {report.fusion}", fontsize=10)
    ax1.set_ylabel("mean |x|")

    width = 0.38
    params = report.param_grad_shares
    offset = width / 2 if params is not None else 0.0
    ax2.bar(x - offset, report.grad_shares, width, label="d loss / d branch", color="C0")
    if params is not None:
        ax2.bar(x + offset, params, width, label="branch parameters", color="C1")
    ax2.axhline(1 / len(labels), color="gray", lw=0.8, ls="--", label="even share")
    ax2.set_ylim(0, 1)
    ax2.set_xticks(x, labels)
    ax2.set_title("share of the squared gradient norm", fontsize=10)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_gradient_flow(stats: Sequence[GradStats], title: str | None = None):
    """Gradient norm and grad/weight ratio per parameter tensor, input to output, on a log
    axis. Tensors without a gradient are marked with an x at the bottom."""
    import matplotlib.pyplot as plt

    stats = list(stats)
    if not stats:
        raise ValueError("plot_gradient_flow needs at least one GradStats; received an empty list.")
    x = np.arange(len(stats))
    grad = np.array([s.grad_norm if s.has_grad else np.nan for s in stats], dtype=np.float64)
    ratio = np.array([s.ratio if s.has_grad else np.nan for s in stats], dtype=np.float64)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.45 * len(stats) + 2), 3.6))
    positive = lambda a: np.where(np.isfinite(a) & (a > 0), a, np.nan)
    ax.plot(x, positive(grad), marker="o", label="|grad|")
    ax.plot(x, positive(ratio), marker="s", ls="--", label="|grad| / |w|")
    finite = np.concatenate([positive(grad), positive(ratio)])
    floor = np.nanmin(finite) if np.any(np.isfinite(finite)) else 1e-8
    missing = [i for i, s in enumerate(stats) if not s.has_grad or s.grad_norm == 0]
    if missing:
        ax.scatter(missing, [floor] * len(missing), marker="x", color="C3", zorder=3, label="no gradient")
    ax.set_yscale("log")
    ax.set_xticks(x, [s.name for s in stats], rotation=60, ha="right", fontsize=7)
    ax.set_title(title or "gradient flow (input -> output)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_lr_range(result: LRRangeResult, show_raw: bool = True):
    """Loss against learning rate (log x) from an LR range test, with the suggested learning
    rate marked (and where the loss diverged, when known)."""
    import matplotlib.pyplot as plt

    if not isinstance(result, LRRangeResult):
        raise TypeError(f"plot_lr_range expects an LRRangeResult; received a {type(result).__name__}.")
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    if show_raw and result.raw_losses:
        ax.plot(result.lrs, result.raw_losses, color="C0", alpha=0.3, lw=1, label="raw loss")
    ax.plot(result.lrs, result.losses, color="C0", label="smoothed loss")
    ax.set_xscale("log")
    if result.suggested_lr is not None:
        ax.axvline(result.suggested_lr, color="C2", ls="--", label=f"suggested lr {result.suggested_lr:.2e}")
    if result.diverged_at is not None:
        ax.axvline(result.diverged_at, color="C3", ls=":", label=f"diverged at {result.diverged_at:.2e}")
    finite = np.asarray([v for v in result.losses if np.isfinite(v)], dtype=np.float64)
    if finite.size:
        # Divergence sends the loss far up; keep the interesting region readable.
        lo, hi = finite.min(), min(finite.max(), finite[0] * 4 if finite[0] > 0 else finite.max())
        if hi > lo:
            ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title("LR range test", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_lr_ranges(results: Mapping[str, LRRangeResult]):
    """Several LR range tests side by side, one panel each, titled by its key: the raw and the
    smoothed loss against the LR, on shared log axes and with no suggestion marked, so that the
    panels are read by their shapes and spans alone."""
    import matplotlib.pyplot as plt

    items = list(dict(results).items()) if isinstance(results, Mapping) else []
    if not items or not all(isinstance(r, LRRangeResult) for _, r in items):
        raise TypeError("plot_lr_ranges expects a non-empty dict of LRRangeResult (e.g. lrlab.range_fault_curves()); "
                        f"received {type(results).__name__}.")
    fig, axes = plt.subplots(1, len(items), figsize=(3.0 * len(items), 3.0), sharex=True, sharey=True, squeeze=False)
    for ax, (name, result) in zip(axes[0], items):
        ax.plot(result.lrs, result.raw_losses, color="C0", alpha=0.3, lw=1, label="raw")
        ax.plot(result.lrs, result.losses, color="C0", label="smoothed")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(str(name), fontsize=10)
        ax.set_xlabel("learning rate")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("loss")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_branch_curves(curves: Sequence[Any], budget: int | None = None, threshold: float = 0.9,
                       title: str = "branch A's half: test accuracy against training steps"):
    """Branch A's test accuracy against training steps, one line per `BranchCurve` (labelled by its
    `name`: its label, or its scale), with the `threshold` as a dotted line and, if given, the run's `budget` in steps as a
    dashed one."""
    import matplotlib.pyplot as plt

    curves = list(curves)
    if not curves or not all(hasattr(c, "accuracy_a") and hasattr(c, "steps") for c in curves):
        raise TypeError("plot_branch_curves expects a non-empty list of BranchCurve (from branch_a_curve); "
                        f"received {[type(c).__name__ for c in curves] or curves!r}.")
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for c in curves:
        ax.plot(c.steps, c.accuracy_a, marker=".", label=c.name)
    ax.axhline(threshold, color="grey", linestyle=":", linewidth=1)
    if budget is not None:
        ax.axvline(budget, color="black", linestyle="--", linewidth=1, label=f"the run's budget ({budget} steps)")
    ax.set(xlabel="training steps", ylabel="test accuracy on branch A's half", ylim=(0, 1.02), title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
