"""coursekit's PyTorch half: `from coursekit import torch as ck`.

Mirrors `coursekit.keras` name for name; imports no TensorFlow.
"""

from __future__ import annotations

from ..shapes import ShapeMismatchError, concat_output_shape
from .align import *  # noqa: F401,F403
from .align import __all__ as _align_all
from .device import *  # noqa: F401,F403
from .device import __all__ as _device_all

FRAMEWORK = "torch"
DATA_FORMAT = "NCHW"

__all__ = ["FRAMEWORK", "DATA_FORMAT", "ShapeMismatchError", "concat_output_shape", *_align_all, *_device_all]
