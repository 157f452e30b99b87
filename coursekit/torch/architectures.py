"""Lesson 09's experiments in PyTorch: a small U-Net, a conditioned classifier, and counters.

Twin of `coursekit.keras.architectures`. The layers themselves are in `coursekit.torch.blocks`;
the arithmetic the counts are checked against is in `coursekit.architectures`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..architectures import ArchRun, boundary_accuracy, iou
from ..data import ConditionedData, make_conditioned, make_shapes
from ..seeding import seed_everything
from ..memo import memoized
from .align import align_spatial
from .blocks import FiLM, GatedFusion
from .models import count_params
from .train import fit, predict

__all__ = ["SKIPS", "CONDITIONINGS", "MiniUNet", "ConditionedNet", "run_unet", "run_conditioned",
           "saved_activation_bytes", "count_flops"]

SKIPS = ("concat", "add", "none")
CONDITIONINGS = ("concat", "film", "gated")


def _choice(name: str, value: Any, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {list(options)}; received {value!r}.")
    return value


class MiniUNet(nn.Module):
    """A one-level U-Net: full-resolution encoder, a half-resolution middle, a decoder that
    upsamples and fuses the encoder's map through the skip connection (`skip`: 'concat', 'add'
    or 'none'), then one logit per pixel. An odd input size makes the upsampled decoder map
    one pixel smaller than the encoder's: `align` ('pad' the decoder or 'crop' the encoder, the
    original U-Net's choice) makes them match; with 'crop' the output is smaller than the input.
    """

    def __init__(self, skip: str = "concat", width: int = 8, align: str = "pad"):
        super().__init__()
        self.skip = _choice("skip", skip, SKIPS)
        self.align = _choice("align", align, ("pad", "crop"))
        self.enc = nn.Conv2d(1, width, 3, padding=1)
        self.mid1 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.mid2 = nn.Conv2d(2 * width, 2 * width, 3, padding=1)
        self.up = nn.Conv2d(2 * width, width, 1)
        self.dec = nn.Conv2d(2 * width if skip == "concat" else width, width, 3, padding=1)
        self.head = nn.Conv2d(width, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = F.relu(self.enc(x))
        m = F.relu(self.mid2(F.relu(self.mid1(F.max_pool2d(e, 2)))))
        u = self.up(align_spatial(m, (2 * m.shape[2], 2 * m.shape[3]), "nearest"))
        if self.align == "pad":
            u = align_spatial(u, tuple(e.shape[2:]), "pad")
        else:
            e = align_spatial(e, tuple(u.shape[2:]), "crop")
        if self.skip == "concat":
            d = torch.cat([e, u], dim=1)
        elif self.skip == "add":
            d = e + u
        else:
            d = u
        return self.head(F.relu(self.dec(d)))


class ConditionedNet(nn.Module):
    """Classify `x` as the condition `c` says: a 3x3 conv stem on `x`, then `c` fused in by
    `fusion` ('concat': c tiled into constant channels and concatenated; 'film': `FiLM`;
    'gated': `GatedFusion`), a 3x3 conv, global average pooling and a linear classifier."""

    def __init__(self, fusion: str = "film", width: int = 16, in_channels: int = 2, cond_dim: int = 2,
                 n_classes: int = 4):
        super().__init__()
        self.fusion = _choice("fusion", fusion, CONDITIONINGS)
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1)
        if fusion == "film":
            self.condition = FiLM(cond_dim, width)
        elif fusion == "gated":
            self.condition = GatedFusion(cond_dim, width)
        self.conv = nn.Conv2d(width + (cond_dim if fusion == "concat" else 0), width, 3, padding=1)
        self.classifier = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.stem(x))
        if self.fusion == "concat":
            h = torch.cat([h, c[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])], dim=1)
        else:
            h = self.condition(h, c)
        return self.classifier(F.relu(self.conv(h)).mean(dim=(2, 3)))


@memoized
def run_unet(skip: str = "concat", *, n: int = 1024, epochs: int = 8, size: int = 25, width: int = 8,
             lr: float = 3e-3, seed: int = 0, label: str | None = None) -> ArchRun:
    """Train `MiniUNet(skip)` on `make_shapes` (75/25 split) with Adam and a per-pixel BCE loss;
    the score is the test IoU, the curve the test pixel accuracy after every epoch,
    and ``extra['boundary']`` the test accuracy on the outlines (`boundary_accuracy`)."""
    x, mask = make_shapes(n=n, size=size, layout="NCHW", seed=seed)
    n_test = n // 4
    seed_everything(seed)
    model = MiniUNet(skip=skip, width=width)
    start = time.perf_counter()
    hist = fit(model, (x[n_test:], mask[n_test:]), (x[:n_test], mask[:n_test]), epochs=epochs, lr=lr, loss="bce",
               seed=seed, progress=False)
    seconds = time.perf_counter() - start
    logits = predict(model, x[:n_test])
    steps = -(-(n - n_test) // 64)
    return ArchRun(label=label or f"U-Net skip={skip}", metric="IoU", score=iou(logits > 0, mask[:n_test]),
                   curve=[float(v) for v in hist["val_accuracy"]], steps_per_point=steps,
                   n_params=count_params(model), seconds=seconds,
                   extra={"model": model, "boundary": boundary_accuracy(logits > 0, mask[:n_test])})


@memoized
def run_conditioned(fusion: str = "film", *, data: ConditionedData | None = None, n: int = 1024, epochs: int = 8,
                    width: int = 16, lr: float = 1e-2, seed: int = 0, label: str | None = None) -> ArchRun:
    """Train `ConditionedNet(fusion)` on `make_conditioned` (75/25 split) with Adam; the score is
    the final test accuracy and the curve the test accuracy after every epoch."""
    data = data if data is not None else make_conditioned(n=n, layout="NCHW", seed=seed)
    train, test = data.split(0.25, seed=seed)
    seed_everything(seed)
    model = ConditionedNet(fusion=fusion, width=width, in_channels=data.c.shape[1], cond_dim=data.c.shape[1])
    start = time.perf_counter()
    hist = fit(model, (train.inputs, train.y), (test.inputs, test.y), epochs=epochs, lr=lr, batch_size=32, seed=seed,
               progress=False)
    seconds = time.perf_counter() - start
    curve = [float(v) for v in hist["val_accuracy"]]
    return ArchRun(label=label or f"{fusion}", metric="accuracy", score=curve[-1], curve=curve,
                   steps_per_point=-(-len(train) // 32), n_params=count_params(model), seconds=seconds,
                   extra={"model": model})


def saved_activation_bytes(module: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the activations autograd keeps for the backward pass of ``module(x)``, counted
    with `torch.autograd.graph.saved_tensors_hooks`: every saved tensor that is not a parameter,
    each storage once (ReLU's output and the next conv's input are one tensor)."""
    params = {p.data_ptr() for p in module.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params and t.dim() == 4:
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    module.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(x).sum()
    return int(sum(seen.values()))


def count_flops(module: nn.Module, *inputs: Any) -> int:
    """Forward FLOPs of ``module(*inputs)`` as `torch.utils.flop_counter.FlopCounterMode` counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    tensors = [torch.as_tensor(np.asarray(i)) if not isinstance(i, torch.Tensor) else i for i in inputs]
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(*tensors)
    return int(counter.get_total_flops())
