"""Learning-rate math shared by both halves: the schedules and the LR range test's bookkeeping.

Framework-neutral (numpy only). Every schedule formula is written once, in `formula`, against
a tiny math namespace: `lr_at` evaluates it on python floats (the PyTorch half wraps it in a
``LambdaLR``), and the Keras half evaluates the very same function with ``keras.ops`` so it
runs inside ``tf.function``. That is what makes the two halves give the same LR at every step.

Schedules (step counts optimizer steps, starting at 0):

- ``constant``: base_lr.
- ``step``: base_lr * gamma ** (step // step_size), as ``torch.optim.lr_scheduler.StepLR``.
- ``cosine``: from base_lr at step 0 to final_lr at step total_steps, as ``CosineAnnealingLR``
  (T_max=total_steps, eta_min=final_lr) and Keras' ``CosineDecay``.
- ``warmup_cosine``: linear warmup base_lr * step / warmup_steps (0 at step 0, as Keras'
  ``CosineDecay`` warmup and Hugging Face's cosine-with-warmup), then cosine from base_lr to
  final_lr over the remaining total_steps - warmup_steps steps.
- ``one_cycle``: ``torch.optim.lr_scheduler.OneCycleLR``'s LR with its defaults (pct_start=0.3,
  cosine annealing, div_factor=25, final_div_factor=1e4): from peak/25 up to the peak
  (``max_lr``, or base_lr when max_lr is None) during the first 30 % of the steps, then down to
  peak/25/1e4 (or ``final_lr`` when it is > 0). Only the LR: OneCycleLR also cycles momentum by
  default, which a Keras LR schedule cannot, so neither half does.

After total_steps every schedule stays at its last value (torch's CosineAnnealingLR would rise
again and OneCycleLR would raise), so a few extra steps are harmless.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .history import LRRangeResult

__all__ = [
    "LR_RANGE_LOSSES",
    "SCHEDULE_QUIZ",
    "schedule_quiz_answer",
    "schedule_quiz_table",
    "LR_RANGE_OPTIMIZERS",
    "SCHEDULES",
    "RangeTestRecorder",
    "ScheduleParams",
    "check_range_data",
    "check_range_test",
    "check_schedule",
    "formula",
    "lr_at",
    "progress_bar",
    "range_test_batches",
    "range_test_lrs",
    "schedule_values",
    "suggest_lr",
]

SCHEDULES = ("constant", "step", "cosine", "one_cycle", "warmup_cosine")

# torch.optim.lr_scheduler.OneCycleLR's defaults.
ONE_CYCLE_PCT_START = 0.3
ONE_CYCLE_DIV_FACTOR = 25.0
ONE_CYCLE_FINAL_DIV_FACTOR = 1e4


@dataclass(frozen=True)
class ScheduleParams:
    """Validated arguments of one schedule (see the module docstring for their meaning)."""

    name: str
    base_lr: float
    total_steps: int
    warmup_steps: int = 0
    step_size: int | None = None
    gamma: float = 0.1
    max_lr: float | None = None
    final_lr: float = 0.0

    def as_config(self) -> dict[str, Any]:
        return asdict(self)


def check_schedule(name: str, *, base_lr: float, total_steps: int, warmup_steps: int = 0,
                   step_size: int | None = None, gamma: float = 0.1, max_lr: float | None = None,
                   final_lr: float = 0.0) -> ScheduleParams:
    """Validate schedule arguments. Options a schedule would ignore (step_size, max_lr,
    warmup_steps) are rejected rather than silently dropped."""
    if name not in SCHEDULES:
        raise ValueError(
            f"unknown schedule {name!r}; valid schedules are {list(SCHEDULES)}. "
            "Fix: pass one of them, e.g. make_schedule('cosine', base_lr=0.1, total_steps=1000)."
        )
    _positive(base_lr, "base_lr")
    _positive_int(total_steps, "total_steps")
    _nonnegative(final_lr, "final_lr")
    _positive(gamma, "gamma")
    if name == "warmup_cosine":
        if not _is_int(warmup_steps) or not 0 <= warmup_steps < total_steps:
            raise ValueError(
                f"warmup_cosine needs 0 <= warmup_steps < total_steps; received warmup_steps="
                f"{warmup_steps!r}, total_steps={total_steps!r}. The warmup is part of total_steps."
            )
    elif warmup_steps != 0:
        raise ValueError(
            f"warmup_steps applies to 'warmup_cosine' only; received warmup_steps={warmup_steps!r} "
            f"for {name!r}. Fix: use make_schedule('warmup_cosine', ...) for a warmup."
        )
    if name == "step":
        if step_size is None:
            raise ValueError(
                "the 'step' schedule multiplies the LR by gamma every step_size steps; received "
                "step_size=None. Fix: pass step_size=..., e.g. step_size=total_steps // 3."
            )
        _positive_int(step_size, "step_size")
    elif step_size is not None:
        raise ValueError(
            f"step_size applies to the 'step' schedule only; received step_size={step_size!r} "
            f"for {name!r}. Fix: drop it, or use name='step'."
        )
    if name == "one_cycle":
        if max_lr is not None:
            _positive(max_lr, "max_lr")
    elif max_lr is not None:
        raise ValueError(
            f"max_lr applies to 'one_cycle' only (its peak); received max_lr={max_lr!r} for "
            f"{name!r}. Fix: set base_lr instead, or use name='one_cycle'."
        )
    return ScheduleParams(
        name, float(base_lr), int(total_steps), int(warmup_steps),
        None if step_size is None else int(step_size), float(gamma),
        None if max_lr is None else float(max_lr), float(final_lr),
    )


class _PyMath:
    """The few ``keras.ops`` functions `formula` uses, on python floats."""

    pi = math.pi
    cos = staticmethod(math.cos)
    floor = staticmethod(math.floor)
    minimum = staticmethod(min)
    power = staticmethod(pow)

    @staticmethod
    def where(condition, a, b):
        return a if condition else b


def formula(p: ScheduleParams, step, xp=_PyMath):
    """The LR of schedule `p` at `step`, computed with namespace `xp` (python math or
    ``keras.ops``). Both branches of every `where` are evaluated, so no denominator may be 0."""
    t = float(p.total_steps)
    if p.name == "constant":
        return p.base_lr + 0.0 * step  # keeps a tensor a tensor under keras.ops
    if p.name == "step":
        return p.base_lr * xp.power(p.gamma, xp.floor(step / float(p.step_size)))
    if p.name == "cosine":
        return _cosine(p.base_lr, p.final_lr, xp.minimum(step, t) / t, xp)
    if p.name == "warmup_cosine":
        w = float(p.warmup_steps)
        warm = p.base_lr * step / max(w, 1.0)
        decay = _cosine(p.base_lr, p.final_lr, xp.minimum(step - w, t - w) / (t - w), xp)
        return xp.where(step < w, warm, decay)
    # one_cycle, phase for phase as torch's OneCycleLR (two phases, end steps as it computes them).
    peak = p.base_lr if p.max_lr is None else p.max_lr
    initial = peak / ONE_CYCLE_DIV_FACTOR
    final = p.final_lr if p.final_lr > 0 else initial / ONE_CYCLE_FINAL_DIV_FACTOR
    end_up = float(ONE_CYCLE_PCT_START * p.total_steps) - 1.0
    end_down = t - 1.0
    s = xp.minimum(step, end_down)
    up = _anneal_cos(initial, peak, s / _nonzero(end_up), xp)
    down = _anneal_cos(peak, final, (s - end_up) / _nonzero(end_down - end_up), xp)
    return xp.where(s <= end_up, up, down)


def _cosine(start: float, end: float, fraction, xp):
    return end + (start - end) * (1.0 + xp.cos(xp.pi * fraction)) / 2.0


def _anneal_cos(start: float, end: float, pct, xp):
    # OneCycleLR._annealing_cos, same operation order.
    return end + (start - end) / 2.0 * (xp.cos(xp.pi * pct) + 1.0)


def _nonzero(d: float) -> float:
    # Only reached for a phase of zero length, whose branch `where` then never selects.
    return d if d != 0 else 1.0


def lr_at(name: str, step: int, *, base_lr: float, total_steps: int, warmup_steps: int = 0,
          step_size: int | None = None, gamma: float = 0.1, max_lr: float | None = None,
          final_lr: float = 0.0) -> float:
    """The LR of schedule `name` at optimizer step `step` (0-based), as a python float."""
    p = check_schedule(name, base_lr=base_lr, total_steps=total_steps, warmup_steps=warmup_steps,
                       step_size=step_size, gamma=gamma, max_lr=max_lr, final_lr=final_lr)
    if not _is_int(step) or step < 0:
        raise ValueError(f"step must be an int >= 0; received {step!r}.")
    return float(formula(p, float(step)))


def schedule_values(name: str, **kw) -> list[float]:
    """The LR at every step 0 .. total_steps - 1, e.g. for plotting a schedule."""
    p = check_schedule(name, **kw)
    return [float(formula(p, float(i))) for i in range(p.total_steps)]


# --------------------------------------------------------------------------------------------
# LR range test
# --------------------------------------------------------------------------------------------

LR_RANGE_LOSSES = ("cross_entropy", "mse")
LR_RANGE_OPTIMIZERS = ("sgd", "adam", "adamw")
# The same for both halves; torch's AdamW default (Keras' is 0.004).
ADAMW_WEIGHT_DECAY = 0.01
SGD_MOMENTUM = 0.9


def check_range_test(*, loss, optimizer, start_lr, end_lr, num_steps, batch_size, smooth,
                     diverge_factor, seed) -> None:
    """Validate the framework-independent arguments of `lr_range_test`."""
    if not callable(loss) and loss not in LR_RANGE_LOSSES:
        raise ValueError(
            f"loss must be one of {list(LR_RANGE_LOSSES)} or a callable; received {loss!r}. "
            "'cross_entropy' expects logits (no softmax) and integer labels."
        )
    if not callable(optimizer) and optimizer not in LR_RANGE_OPTIMIZERS:
        raise ValueError(
            f"optimizer must be one of {list(LR_RANGE_OPTIMIZERS)} or a factory lr -> optimizer; "
            f"received {optimizer!r}."
        )
    _positive(start_lr, "start_lr")
    _positive(end_lr, "end_lr")
    if end_lr <= start_lr:
        raise ValueError(
            f"the LR range test sweeps upwards, so end_lr must exceed start_lr; received "
            f"start_lr={start_lr!r}, end_lr={end_lr!r}. Example: start_lr=1e-6, end_lr=1.0."
        )
    if not _is_int(num_steps) or num_steps < 2:
        raise ValueError(f"num_steps must be an int >= 2; received {num_steps!r}. Example: num_steps=100.")
    _positive_int(batch_size, "batch_size")
    if not _is_real(smooth) or not 0 < smooth <= 1:
        raise ValueError(
            f"smooth is the weight of the newest loss in the moving average, in (0, 1]; received "
            f"{smooth!r}. 0.05 averages over about 20 steps; 1 turns smoothing off."
        )
    if not _is_real(diverge_factor) or not diverge_factor > 1:
        raise ValueError(
            f"diverge_factor must be > 1 (stop when the smoothed loss exceeds that many times its "
            f"best); received {diverge_factor!r}. Example: diverge_factor=4.0."
        )
    if not _is_int(seed):
        raise ValueError(f"seed must be an int; received {seed!r}.")


def check_range_data(input_lengths: Sequence[int], n_labels: int) -> None:
    """Every input array and the labels must hold the same, non-zero number of samples."""
    if not input_lengths:
        raise ValueError("x is an empty list; pass one input array, or one array per model input.")
    if n_labels < 1 or any(n != n_labels for n in input_lengths):
        raise ValueError(
            f"x and y must hold the same, non-zero number of samples (axis 0); received "
            f"x lengths {list(input_lengths)} and {n_labels} labels."
        )


def range_test_batches(n: int, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    """Endless index batches of min(batch_size, n) samples, cycling through shuffled epochs.

    Every batch is full, so the loss noise stays the same along the sweep; both halves use
    this, so for one seed they see the same batches in the same order.
    """
    rng = np.random.default_rng(seed)
    size = min(int(batch_size), int(n))
    pending = np.empty(0, dtype=np.int64)
    while True:
        while pending.size < size:
            pending = np.concatenate([pending, rng.permutation(n)])
        yield pending[:size]
        pending = pending[size:]


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **kw) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(enabled: bool, total: int, desc: str = "LR range test"):
    """A tqdm.auto bar (a notebook widget in Jupyter, text on stdout elsewhere, never stderr) when
    `enabled` and nbgrader is not executing the notebook, else a silent stand-in."""
    from .progress import bar, enabled as shown

    if not shown(enabled):
        return _NoBar()
    return bar(total, desc, "step", leave=False)


def range_test_lrs(start_lr: float, end_lr: float, num_steps: int) -> list[float]:
    """`num_steps` LRs growing geometrically from start_lr to end_lr (both included)."""
    ratio = end_lr / start_lr
    return [start_lr * ratio ** (i / (num_steps - 1)) for i in range(num_steps)]


class RangeTestRecorder:
    """The bookkeeping of an LR range test, fed one (lr, raw loss) pair per step.

    Smoothing: avg = (1 - smooth) * avg + smooth * loss, started at 0 and bias-corrected by
    1 - (1 - smooth) ** n (Adam's correction), so the first points are not pulled towards 0.
    smooth=0.05 is torch-lr-finder's smooth_f and fastai's beta=0.95.
    Divergence: a non-finite loss, or a smoothed loss above diverge_factor x the best so far.
    """

    def __init__(self, smooth: float, diverge_factor: float) -> None:
        self.smooth = float(smooth)
        self.diverge_factor = float(diverge_factor)
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.raw_losses: list[float] = []
        self.diverged_at: float | None = None
        self._avg = 0.0
        self._best = math.inf

    def record(self, lr: float, raw_loss: float) -> bool:
        """Add one step; False means stop (the loss diverged)."""
        raw_loss = float(raw_loss)
        if not math.isfinite(raw_loss):
            self.diverged_at = float(lr)  # not recorded: a NaN would poison plots and the EMA
            return False
        self._avg = (1.0 - self.smooth) * self._avg + self.smooth * raw_loss
        smoothed = self._avg / (1.0 - (1.0 - self.smooth) ** (len(self.losses) + 1))
        self.lrs.append(float(lr))
        self.raw_losses.append(raw_loss)
        self.losses.append(smoothed)
        self._best = min(self._best, smoothed)
        # With a best loss <= 0 (a custom loss) a ratio means nothing: only NaN/inf stops then.
        if self._best > 0 and smoothed > self.diverge_factor * self._best:
            self.diverged_at = float(lr)
            return False
        return True

    def result(self) -> LRRangeResult:
        return LRRangeResult(
            lrs=list(self.lrs), losses=list(self.losses), raw_losses=list(self.raw_losses),
            suggested_lr=suggest_lr(self.lrs, self.losses), diverged_at=self.diverged_at,
        )


def suggest_lr(lrs: Sequence[float], losses: Sequence[float]) -> float | None:
    """The LR where the smoothed loss falls fastest per decade of LR, searched before its minimum.

    Chosen over fastai v1's "minimum / 10" because it reads off where training makes the most
    progress per step instead of assuming the best LR always sits one decade below the minimum
    (the minimum of a smoothed curve also lags, by an amount that depends on `smooth` and
    `num_steps`); it is torch-lr-finder's and fastai's 'steep' suggestion. None when the loss
    never fell (its minimum is the first point).
    """
    if len(lrs) < 2:
        return None
    loss = np.asarray(losses, dtype=float)
    lowest = int(np.argmin(loss))
    if lowest == 0:
        return None
    slope = np.gradient(loss[: lowest + 1], np.log10(np.asarray(lrs[: lowest + 1], dtype=float)))
    steepest = int(np.argmin(slope))
    return float(lrs[steepest]) if slope[steepest] < 0 else None


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------

def _is_real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _positive(x, what: str) -> None:
    if not _is_real(x) or not math.isfinite(x) or x <= 0:
        raise ValueError(f"{what} must be a finite number > 0; received {x!r}.")


def _nonnegative(x, what: str) -> None:
    if not _is_real(x) or not math.isfinite(x) or x < 0:
        raise ValueError(f"{what} must be a finite number >= 0; received {x!r}.")


def _positive_int(x, what: str) -> None:
    if not _is_int(x) or x < 1:
        raise ValueError(f"{what} must be an int >= 1; received {x!r}.")


# ------------------------------------------------------------------------- lesson 06, exercise 4
# Five questions about the five schedules over one 200-step run: the answers are computed from the
# schedules themselves (schedule_quiz_answer), so the exercise and its check cannot drift apart.
SCHEDULE_QUIZ_SETUP: dict[str, Any] = {"base_lr": 0.1, "total_steps": 200}
SCHEDULE_QUIZ_OPTIONS: dict[str, dict[str, int]] = {
    "constant": {}, "step": {"step_size": 200 // 3}, "cosine": {}, "warmup_cosine": {"warmup_steps": 200 // 10},
    "one_cycle": {},
}
SCHEDULE_QUIZ: dict[str, str] = {
    "zero at the start": "has an LR of exactly 0 at step 0",
    "peaks last": "reaches its highest LR at the latest step",
    "lowest at step 80": "has the lowest LR at step 80",
    "half at step 100": "is at exactly half of base_lr at step 100",
    "highest at step 150": "has the highest LR at step 150, constant aside",
}


def schedule_quiz_values() -> dict[str, np.ndarray]:
    """The LR of each schedule at every step of the quiz's run."""
    return {name: np.asarray(schedule_values(name, **SCHEDULE_QUIZ_SETUP, **opts))
            for name, opts in SCHEDULE_QUIZ_OPTIONS.items()}


def schedule_quiz_answer(key: str) -> str:
    """The schedule that answers question `key` of `SCHEDULE_QUIZ`, computed from the schedules."""
    if key not in SCHEDULE_QUIZ:
        raise ValueError(f"unknown question {key!r}; the questions are {', '.join(map(repr, SCHEDULE_QUIZ))}.")
    v = schedule_quiz_values()
    half = SCHEDULE_QUIZ_SETUP["base_lr"] / 2
    pick = {
        "zero at the start": lambda: [n for n, lr in v.items() if lr[0] == 0.0],
        "peaks last": lambda: [max(v, key=lambda n: int(np.argmax(v[n])))],
        "lowest at step 80": lambda: [min(v, key=lambda n: v[n][80])],
        "half at step 100": lambda: [n for n, lr in v.items() if abs(lr[100] - half) < 1e-12],
        "highest at step 150": lambda: [max((n for n in v if n != "constant"), key=lambda n: v[n][150])],
    }[key]()
    if len(pick) != 1:  # the questions are written to have one answer each
        raise AssertionError(f"question {key!r} has the answers {pick}, not exactly one.")
    return pick[0]


def schedule_quiz_table() -> str:
    """Each schedule's LR at the steps the quiz asks about, and the step of its peak."""
    v = schedule_quiz_values()
    lines = [f"{'schedule':<14}{'step 0':>9}{'peak at':>9}{'step 80':>9}{'step 100':>10}{'step 150':>10}"]
    for name, lr in v.items():
        lines.append(f"{name:<14}{lr[0]:>9.4g}{int(np.argmax(lr)):>9d}{lr[80]:>9.4g}{lr[100]:>10.4g}{lr[150]:>10.4g}")
    return "\n".join(lines)
