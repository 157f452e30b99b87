"""Lesson 09's framework-neutral arithmetic: what fusion in real architectures costs.

Parameter, FLOP and memory counts computed by hand (the notebooks compare them with what the
frameworks count), the IoU of a segmentation, and "steps until a threshold" read off a
training curve. Imports no framework; `coursekit.torch.architectures` and
`coursekit.keras.architectures` run the experiments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

__all__ = [
    "ArchRun",
    "conv_params",
    "conv_flops",
    "inception_costs",
    "dense_block_channels",
    "dense_block_saved_floats",
    "concat_fan_in_variance",
    "iou",
    "boundary_accuracy",
    "steps_to_threshold",
    "runs_table",
]


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int; received {value!r}.")
    return int(value)


def conv_params(c_in: int, c_out: int, kernel: int, bias: bool = True) -> int:
    """Parameters of a `kernel` x `kernel` conv: c_out * c_in * k * k weights (+ c_out biases)."""
    c_in, c_out, kernel = (_positive_int(n, v) for n, v in (("c_in", c_in), ("c_out", c_out), ("kernel", kernel)))
    return c_out * c_in * kernel * kernel + (c_out if bias else 0)


def conv_flops(c_in: int, c_out: int, kernel: int, out_hw: tuple[int, int], batch: int = 1) -> int:
    """FLOPs of a conv's forward pass, counted as `torch.utils.flop_counter` counts them:
    2 (a multiply and an add) x batch x c_out x H_out x W_out x c_in x k x k; the bias is free."""
    h, w = (_positive_int("out_hw", v) for v in out_hw)
    return 2 * _positive_int("batch", batch) * c_out * h * w * c_in * kernel * kernel


# The branches of an Inception block, as (name, [(c_in key, c_out key, kernel), ...]).
_INCEPTION = {
    True: [("1x1", [("in", "c1", 1)]),
           ("3x3", [("in", "c3_reduce", 1), ("c3_reduce", "c3", 3)]),
           ("5x5", [("in", "c5_reduce", 1), ("c5_reduce", "c5", 5)]),
           ("pool", [("in", "pool_proj", 1)])],
    False: [("1x1", [("in", "c1", 1)]),
            ("3x3", [("in", "c3", 3)]),
            ("5x5", [("in", "c5", 5)]),
            ("pool", [])],
}


def inception_costs(in_channels: int, c1: int, c3_reduce: int, c3: int, c5_reduce: int, c5: int,
                    pool_proj: int, hw: tuple[int, int], reduce: bool = True) -> dict[str, dict[str, int]]:
    """Per-branch parameters and forward FLOPs (batch 1, 'same' padding) of an Inception block.

    With `reduce=False` it is the paper's *naive* block: the 3x3 and 5x5 convs read all
    `in_channels` and the pool branch passes its input through (no projection). Returns
    ``{branch: {"params": .., "flops": .., "out_channels": ..}, ..., "total": {...}}``.
    """
    ch = dict(**{"in": in_channels}, c1=c1, c3_reduce=c3_reduce, c3=c3, c5_reduce=c5_reduce, c5=c5,
              pool_proj=pool_proj)
    out: dict[str, dict[str, int]] = {}
    for name, convs in _INCEPTION[bool(reduce)]:
        params = sum(conv_params(ch[a], ch[b], k) for a, b, k in convs)
        flops = sum(conv_flops(ch[a], ch[b], k, hw) for a, b, k in convs)
        out_ch = ch[convs[-1][1]] if convs else in_channels
        out[name] = {"params": params, "flops": flops, "out_channels": out_ch}
    out["total"] = {key: sum(v[key] for v in out.values()) for key in ("params", "flops", "out_channels")}
    return out


def dense_block_channels(in_channels: int, growth: int, num_layers: int) -> list[int]:
    """The channels each layer of a DenseNet block reads, then the block's output:
    [c0, c0 + k, ..., c0 + k * L]."""
    c0, k, n = (_positive_int(a, b) for a, b in (("in_channels", in_channels), ("growth", growth),
                                                  ("num_layers", num_layers)))
    return [c0 + k * i for i in range(n + 1)]


def dense_block_saved_floats(in_channels: int, growth: int, num_layers: int, hw: tuple[int, int],
                             batch: int = 1) -> int:
    """Activation floats a naive DenseNet block (per layer: concatenate everything before it,
    then BatchNorm -> ReLU -> 3x3 conv) keeps for the backward pass.

    Layer l reads c_l = c0 + l k channels. BatchNorm keeps its input (the fresh concatenation,
    c_l maps) and ReLU its output, which is also the conv's input (c_l more); `torch.cat`
    keeps nothing. So 2 * sum(c_l) maps: the total grows with L^2, although the block only
    ever computes c0 + k L distinct channels — each concatenation is a new copy.
    """
    h, w = (_positive_int("hw", v) for v in hw)
    per_map = _positive_int("batch", batch) * h * w
    return per_map * 2 * sum(dense_block_channels(in_channels, growth, num_layers)[:-1])


def concat_fan_in_variance(second_moments: Sequence[float], channels: Sequence[int]) -> dict[str, float]:
    """He-initialized conv reading a concatenation of groups with different second moments.

    Each output's variance is 2 / fan_in * sum over inputs of E[x^2] * k^2 = 2 * the
    channel-weighted mean of the groups' second moments. Returns that variance and the share
    each group contributes to it (He's derivation assumes every input has the same moment).
    """
    m = np.asarray(second_moments, dtype=float)
    c = np.asarray(channels, dtype=float)
    if m.shape != c.shape or m.ndim != 1 or m.size == 0:
        raise ValueError(f"second_moments and channels must be equal-length lists; received {list(m)} and {list(c)}.")
    total = float((m * c).sum())
    return {"variance": 2.0 * total / float(c.sum()),
            **{f"share_{i}": float(m[i] * c[i] / total) for i in range(m.size)}}


def iou(pred_mask: Any, true_mask: Any) -> float:
    """Intersection over union of two binary masks (any shapes that match), over all pixels."""
    p = np.asarray(pred_mask) > 0.5
    t = np.asarray(true_mask) > 0.5
    if p.shape != t.shape:
        raise ValueError(f"iou needs masks of the same shape; received {p.shape} and {t.shape}.")
    union = np.logical_or(p, t).sum()
    return float(np.logical_and(p, t).sum() / union) if union else 1.0


def _hw_last(mask: np.ndarray) -> np.ndarray:
    # (N, 1, H, W) or (N, H, W, 1) -> (N, H, W)
    if mask.ndim == 4:
        return mask[:, 0] if mask.shape[1] == 1 else mask[..., 0]
    return mask


def boundary_accuracy(pred_mask: Any, true_mask: Any) -> float:
    """Pixel accuracy on the outlines only: the pixels whose 3x3 neighbourhood in `true_mask`
    holds both classes. This is where a decoder without full-resolution features fails."""
    p = _hw_last(np.asarray(pred_mask) > 0.5)
    t = _hw_last(np.asarray(true_mask) > 0.5)
    if p.shape != t.shape:
        raise ValueError(f"boundary_accuracy needs masks of the same shape; received {p.shape} and {t.shape}.")
    padded = np.pad(t, ((0, 0), (1, 1), (1, 1)), mode="edge")
    h, w = t.shape[1:]
    windows = [padded[:, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)]
    edge = np.any(windows, axis=0) & ~np.all(windows, axis=0)
    return float((p == t)[edge].mean()) if edge.any() else 1.0


def steps_to_threshold(curve: Sequence[float], steps_per_point: int, threshold: float) -> int | None:
    """Training steps until `curve` (a metric measured every `steps_per_point` steps, first
    point after `steps_per_point` steps) first reaches `threshold`; None if it never does
    within the budget the curve covers."""
    for i, value in enumerate(curve):
        if value >= threshold:
            return (i + 1) * steps_per_point
    return None


@dataclass
class ArchRun:
    """One training run of lesson 09: what was trained, its score, and how fast it got there."""

    label: str
    metric: str
    score: float
    curve: list[float]
    steps_per_point: int
    n_params: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def steps_to(self, threshold: float) -> int | None:
        """Training steps until the curve first reached `threshold` (None: not within budget)."""
        return steps_to_threshold(self.curve, self.steps_per_point, threshold)

    @property
    def budget_steps(self) -> int:
        """Training steps the run had."""
        return len(self.curve) * self.steps_per_point

    def __str__(self) -> str:
        return (f"{self.label:<22} {self.metric} {self.score:6.3f}   params {self.n_params:6d}   "
                f"{self.budget_steps} steps in {self.seconds:5.1f} s")


def runs_table(runs: Sequence[ArchRun], threshold: float) -> str:
    """A plain-text table of runs with the steps each took to reach `threshold`."""
    lines = [f"{'run':<22} {'final':>7} {'steps to ' + format(threshold, '.2f'):>14} {'params':>7}"]
    for r in runs:
        steps = r.steps_to(threshold)
        reached = f"{steps}" if steps is not None else f"> {r.budget_steps}"
        lines.append(f"{r.label:<22} {r.score:7.3f} {reached:>14} {r.n_params:7d}")
    return "\n".join(lines)
