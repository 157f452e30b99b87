"""Framework-neutral result containers, so plots and tests treat torch and keras runs alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class History:
    """Per-epoch metrics of a training run.

    `metrics` maps a name to one value per epoch: 'loss' and, when measured, 'accuracy',
    'val_loss', 'val_accuracy' (Keras' naming, used by both halves). `seconds` holds the
    wall time of each epoch.
    """

    metrics: dict[str, list[float]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)

    def append(self, values: dict[str, float], seconds: float | None = None) -> None:
        for k, v in values.items():
            self.metrics.setdefault(k, []).append(float(v))
        if seconds is not None:
            self.seconds.append(float(seconds))

    def __getitem__(self, name: str) -> list[float]:
        try:
            return self.metrics[name]
        except KeyError:
            raise KeyError(f"no metric {name!r} in this history; it has {sorted(self.metrics)}") from None

    def __contains__(self, name: str) -> bool:
        return name in self.metrics

    @property
    def epochs(self) -> int:
        return len(self.metrics.get("loss", []))

    def last(self, name: str) -> float:
        """The final epoch's value of `name`."""
        values = self[name]
        if not values:
            raise ValueError(f"metric {name!r} has no values yet")
        return values[-1]

    def as_dict(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self.metrics.items()}


@dataclass
class LRRangeResult:
    """Outcome of an LR range test: the learning rates tried, the smoothed loss at each,
    the raw loss, and the suggested learning rate (None if no usable minimum was found)."""

    lrs: list[float]
    losses: list[float]
    raw_losses: list[float]
    suggested_lr: float | None
    diverged_at: float | None = None


def epochs_to_reach(history: Any, threshold: float, metric: str = "val_accuracy") -> int | None:
    """The first epoch (counting from 1) at which `history[metric]` reaches `threshold`, or
    None if it never does: "how fast did it converge", in epochs."""
    values = history[metric]
    return next((i + 1 for i, v in enumerate(values) if v >= threshold), None)
