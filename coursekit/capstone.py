"""The capstone's framework-neutral half (lesson 08): its constants, run records, the reference
input fix and its data. `coursekit.torch.capstone` and `coursekit.keras.capstone` build the broken
network and train it; both re-export these names.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from .data import TwoBranchData, make_two_branch
from .diagnostics_report import CollapseReport, format_table
from .history import History

RAW_SCALE = 1000.0  # branch B's std relative to branch A's, as it arrives
RAW_SHIFT = 500.0  # and its offset
BROKEN_INIT_STD = 1e-3  # "small random weights"
BROKEN_LR = 1.0  # SGD with momentum 0.9
FIXED_LR = 0.1  # inside the band the LR range test on the fixed network points to (lesson 08)
OPTIMIZER = "sgd"
FIXES = ("input", "fusion", "init", "lr")
OUTCOMES = ("learns", "breaks")  # a run's `outcome`: lesson 08's exercise 4 predicts it



@dataclass
class CapstoneRun:
    """One training run: its `history`, final `test_accuracy`, the `collapse` report of the trained
    model on the test inputs, the share of test samples given the most frequent class, and the model.
    `diverged` when the outputs are not finite (NaN logits: argmax calls everything class 0)."""

    label: str
    history: History
    test_accuracy: float
    collapse: CollapseReport
    majority_share: float
    model: Any = field(repr=False, default=None)
    options: dict = field(default_factory=dict)
    diverged: bool = False

    @property
    def collapsed(self) -> bool:
        return bool(self.collapse)

    @property
    def outcome(self) -> str:
        """'learns' when the `verdict` is 'learns', else 'breaks' (constant, one class or NaN)."""
        return "learns" if self.verdict == "learns" else "breaks"

    @property
    def verdict(self) -> str:
        """'diverged (NaN)', 'constant output', 'one class' (see `CollapseReport`) or 'learns'."""
        if self.diverged:
            return "diverged (NaN)"
        if self.collapse.constant:
            return "constant output"
        if self.collapse.single_class:
            return "one class"
        return "learns"

    def __str__(self) -> str:
        return (f"{self.label}: test accuracy {self.test_accuracy:.1%}, {self.verdict} "
                f"(the most frequent class gets {self.majority_share:.0%} of the predictions)")


class RunList(list):
    """A list of `CapstoneRun` that prints as one table (also in Jupyter)."""

    def __str__(self) -> str:
        rows = [(r.label, _fmt_loss(r.history.last("loss")), f"{r.test_accuracy:.1%}", r.verdict,
                 f"{r.majority_share:.0%}") for r in self]
        return format_table(("run", "final train loss", "test acc", "verdict", "top class"), rows)

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(str(self))

    def by_label(self) -> dict[str, CapstoneRun]:
        return {r.label: r for r in self}


def _fmt_loss(v: float) -> str:
    return "nan" if not np.isfinite(v) else f"{v:.3g}"


def _make_run(label: str, history: History, logits: np.ndarray, y: np.ndarray, collapse: CollapseReport,
              model: Any, options: dict) -> CapstoneRun:
    finite = bool(np.isfinite(logits).all())
    preds = logits.argmax(1) if finite else np.zeros(len(y), np.int64)
    acc = float((preds == y).mean())
    share = float(np.bincount(preds, minlength=logits.shape[1]).max() / len(preds))
    return CapstoneRun(label, history, acc, collapse, share, model, options, diverged=not finite)


def pick_lr(result: Any, skip_start: int = 10, skip_end: int = 5) -> float:
    """The LR where the smoothed range-test loss falls fastest, after dropping the first
    `skip_start` points (the smoothing still settles there) and the last `skip_end` (the blow-up):
    torch-lr-finder's rule. Raises ValueError when fewer than 2 points remain or the loss never falls."""
    end = len(result.losses) - int(skip_end)
    losses = np.asarray(result.losses, dtype=float)[int(skip_start):end]
    lrs = np.asarray(result.lrs, dtype=float)[int(skip_start):end]
    if len(losses) < 2:
        raise ValueError(f"pick_lr needs 2 points after skipping {skip_start} + {skip_end}; the range test has "
                         f"{len(result.losses)}. Run it with more steps.")
    slope = np.gradient(losses)
    steepest = int(np.argmin(slope))
    if slope[steepest] >= 0:
        raise ValueError("the loss never falls in this range test; start it at a lower LR.")
    return float(lrs[steepest])


def _check_fixes(fixes: Sequence[str]) -> tuple[str, ...]:
    fixes = (fixes,) if isinstance(fixes, str) else tuple(fixes)
    bad = [f for f in fixes if f not in FIXES]
    if bad:
        raise ValueError(f"unknown fixes {bad}; choose from {FIXES}, e.g. fixes=('input', 'lr').")
    return fixes


def _standardize(train: TwoBranchData, test: TwoBranchData) -> tuple[TwoBranchData, TwoBranchData]:
    """Reference input fix: each branch minus its training mean, over its training std."""
    (ma, sa), (mb, sb) = [(float(x.mean()), float(x.std())) for x in train.inputs]

    def apply(d: TwoBranchData) -> TwoBranchData:
        return replace(d, x_a=((d.x_a - ma) / sa).astype(np.float32), x_b=((d.x_b - mb) / sb).astype(np.float32))

    return apply(train), apply(test)


def capstone_data(layout: str, n: int = 1024, seed: int = 0) -> tuple[TwoBranchData, TwoBranchData]:
    """The capstone's raw data in `layout` ('NCHW' or 'NHWC'): `coursekit.data.make_two_branch` with
    4 classes and branch B at ``RAW_SCALE`` times A's std, shifted by ``RAW_SHIFT``; split 75/25."""
    data = make_two_branch(n=n, scale=RAW_SCALE, shift=RAW_SHIFT, n_classes=4, layout=layout, seed=seed)
    return data.split(0.25, seed=0)


# --------------------------------------------------------------------------------------------
# Pipelines: the bodies of both halves' build_pipeline / train_and_report / run_pipeline. `api` is
# the framework's capstone module: capstone_data, capstone_net, fixed_fusion (the reference fusion
# fix, a new layer each call), init_model, fit, predict, is_collapsed and run_size.
# --------------------------------------------------------------------------------------------


@dataclass
class Pipeline:
    """A capstone pipeline ready to train: `train`/`test` data, the `model`, the `lr` and
    `optimizer` to train it with, and the `fixes` applied (none: the broken setup)."""

    train: TwoBranchData
    test: TwoBranchData
    model: Any
    lr: float = BROKEN_LR
    optimizer: str = OPTIMIZER
    fixes: tuple[str, ...] = ()


def build_pipeline_with(api: Any, fixes: Sequence[str], *, seed: int, n: int | None, lr: float | None,
                        init: Any, optimizer: str) -> Pipeline:
    from .seeding import seed_everything

    fixes = _check_fixes(fixes)
    train, test = api.capstone_data(api.run_size().n_train if n is None else int(n))
    if "input" in fixes:
        train, test = _standardize(train, test)
    seed_everything(seed)
    model = api.capstone_net(api.fixed_fusion() if "fusion" in fixes else None)
    if init is None:
        init = dict(scheme="he_normal") if "init" in fixes else dict(scheme="normal", std=BROKEN_INIT_STD)
    elif isinstance(init, str):
        init = dict(scheme=init)
    if callable(init):
        init(model)
    elif init.get("scheme") != "default":
        api.init_model(model, **init, seed=seed)
    if lr is None:
        lr = FIXED_LR if "lr" in fixes else BROKEN_LR
    return Pipeline(train, test, model, float(lr), optimizer, fixes)


def train_and_report_with(api: Any, model: Any, train: TwoBranchData, test: TwoBranchData, *, lr: float,
                          optimizer: str, epochs: int | None, batch_size: int, seed: int, label: str,
                          progress: bool) -> CapstoneRun:
    epochs = api.run_size().epochs if epochs is None else int(epochs)
    history = api.fit(model, (train.inputs, train.y), (test.inputs, test.y), epochs=epochs, optimizer=optimizer,
                      lr=lr, batch_size=batch_size, seed=seed, progress=progress)
    return _make_run(label, history, api.predict(model, test.inputs), test.y, api.is_collapsed(model, test.inputs),
                     model, dict(lr=lr, optimizer=optimizer))


def run_pipeline_with(api: Any, fixes: Sequence[str], *, seed: int, n: int | None, epochs: int | None,
                      lr: float | None, init: Any, optimizer: str, label: str | None, progress: bool) -> CapstoneRun:
    p = api.build_pipeline(fixes, seed=seed, n=n, lr=lr, init=init, optimizer=optimizer)
    label = label or ("fixed: " + ", ".join(p.fixes) if p.fixes else "broken")
    run = api.train_and_report(p.model, p.train, p.test, lr=p.lr, optimizer=optimizer, epochs=epochs, seed=seed,
                               label=label, progress=progress)
    run.options.update(fixes=p.fixes, seed=seed)
    return run
