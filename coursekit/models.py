"""Framework-neutral descriptions of the small networks the lessons train.

Both halves build `two_branch_net` from the same options, so a torch model and a keras model
made with the same arguments have the same layers in the same order (tests copy weights across
and compare outputs).
"""

from __future__ import annotations

FUSIONS = ("concat", "concat_1x1", "add", "weighted", "se", "attention")
ACTIVATIONS = ("relu", "sigmoid", "tanh", "linear")
NORMS = (None, "batch", "layer", "group")


def check_two_branch_options(fusion: str, activations, norm, branch_norm) -> tuple[str, str]:
    """Validate `two_branch_net` options; return the two activation names."""
    if fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r}; choose one of {FUSIONS}.")
    acts = (activations, activations) if isinstance(activations, str) else tuple(activations)
    if len(acts) != 2 or any(a not in ACTIVATIONS for a in acts):
        raise ValueError(
            f"activations must be one name or a pair of names from {ACTIVATIONS}; received {activations!r}."
        )
    for name, value in (("norm", norm), ("branch_norm", branch_norm)):
        if value not in NORMS:
            raise ValueError(f"{name} must be one of {NORMS}; received {value!r}.")
    if norm is not None and fusion not in ("concat", "concat_1x1"):
        raise ValueError(
            f"norm={norm!r} normalizes the concatenation, so it needs fusion='concat' or 'concat_1x1'; "
            f"received fusion={fusion!r}. Use branch_norm to normalize each branch before any fusion."
        )
    return acts


def fused_channels(fusion: str, width: int) -> int:
    """Channels after the fusion layer for branches of `width` channels each."""
    return 2 * width if fusion in ("concat", "se") else width
