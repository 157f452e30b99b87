"""coursekit's Keras 3 half (TensorFlow backend): `from coursekit import keras as ck`.

Mirrors `coursekit.torch` name for name; imports no PyTorch.
"""

from __future__ import annotations

from . import _tf  # noqa: F401  (quiet TensorFlow start-up before anything else)
from ..shapes import ShapeMismatchError, concat_output_shape
from .align import *  # noqa: F401,F403
from .align import __all__ as _align_all
from .device import *  # noqa: F401,F403
from .device import __all__ as _device_all

FRAMEWORK = "keras"
DATA_FORMAT = "NHWC"

__all__ = ["FRAMEWORK", "DATA_FORMAT", "ShapeMismatchError", "concat_output_shape", *_align_all, *_device_all]
