"""coursekit: the package behind the feature-fusion course.

The core imports no deep-learning framework, so `import coursekit` is fast and safe anywhere.
Pick a framework by import path, so notebooks read alike::

    from coursekit import torch as ck   # PyTorch half
    from coursekit import keras as ck   # Keras 3 half (TensorFlow backend)
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "seed_everything",
    "run_size",
    "RunSize",
    "ShapeMismatchError",
    "concat_output_shape",
]


def __getattr__(name: str):
    # Lazy so `import coursekit` stays well under its 0.3 s budget.
    if name == "seed_everything":
        from .seeding import seed_everything

        return seed_everything
    if name in ("run_size", "RunSize"):
        from . import runsize

        return getattr(runsize, name)
    if name in ("ShapeMismatchError", "concat_output_shape"):
        from . import shapes

        return getattr(shapes, name)
    raise AttributeError(f"module 'coursekit' has no attribute {name!r}")
