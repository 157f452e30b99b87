"""Seed every random number generator a lesson might use, without importing any framework.

torch, tensorflow and keras are seeded only when they are already in `sys.modules`: seeding
must not cost a multi-second framework import, and a framework imported after seeding would
not be affected anyway (call `seed_everything` again after importing it).
"""

from __future__ import annotations

import os
import random
import sys
from typing import Any

import numpy as np

__all__ = ["MAX_SEED", "numpy_rng", "seed_everything"]

# numpy's legacy global RNG (np.random.seed) accepts at most 2**32 - 1.
MAX_SEED = 2**32 - 1


def _check_seed(seed: Any) -> int:
    if (
        not isinstance(seed, (int, np.integer))
        or isinstance(seed, (bool, np.bool_))
        or not 0 <= seed <= MAX_SEED
    ):
        raise ValueError(
            f"seed must be an int between 0 and {MAX_SEED}; received {seed!r} "
            f"of type {type(seed).__name__}. Example: seed_everything(0)."
        )
    return int(seed)


def seed_everything(seed: int) -> int:
    """Seed python's `random`, numpy's global RNG and `PYTHONHASHSEED`, plus torch (CPU and
    CUDA), tensorflow and keras if they are already imported. Returns `seed`.

    `PYTHONHASHSEED` only affects Python processes started afterwards (e.g. DataLoader
    workers or subprocesses), not the current one. Keras' own `set_random_seed` may import
    TensorFlow to seed tf.data when TensorFlow is installed.
    """
    seed = _check_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)

    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "manual_seed"):
        torch.manual_seed(seed)  # also seeds every CUDA device
        cuda = getattr(torch, "cuda", None)
        if cuda is not None and cuda.is_available():
            cuda.manual_seed_all(seed)

    tf = sys.modules.get("tensorflow")
    if tf is not None and hasattr(getattr(tf, "random", None), "set_seed"):
        tf.random.set_seed(seed)

    keras = sys.modules.get("keras")
    if keras is not None:
        # Resets keras' global SeedGenerator too, so keras.random.* and initializers repeat.
        set_random_seed = getattr(getattr(keras, "utils", None), "set_random_seed", None)
        if set_random_seed is not None:
            set_random_seed(seed)
    return seed


def numpy_rng(seed: int) -> np.random.Generator:
    """A fresh `np.random.Generator` for `seed`, independent of the global RNG."""
    return np.random.default_rng(_check_seed(seed))
