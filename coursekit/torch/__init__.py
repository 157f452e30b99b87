"""coursekit's PyTorch half: `from coursekit import torch as ck`.

Mirrors `coursekit.keras` name for name; imports no TensorFlow.
"""

from __future__ import annotations

from ..shapes import ShapeMismatchError, concat_output_shape
from .align import *  # noqa: F401,F403
from .align import __all__ as _align_all
from .blocks import *  # noqa: F401,F403
from .blocks import __all__ as _blocks_all
from .device import *  # noqa: F401,F403
from .device import __all__ as _device_all
from .diagnostics import *  # noqa: F401,F403
from .diagnostics import __all__ as _diagnostics_all
from .experiments import *  # noqa: F401,F403
from .experiments import __all__ as _experiments_all
from .fusion import *  # noqa: F401,F403
from .fusion import __all__ as _fusion_all
from .init import *  # noqa: F401,F403
from .init import __all__ as _init_all
from .lr import *  # noqa: F401,F403
from .lr import __all__ as _lr_all
from .models import *  # noqa: F401,F403
from .models import __all__ as _models_all
from .train import *  # noqa: F401,F403
from .train import __all__ as _train_all

FRAMEWORK = "torch"
DATA_FORMAT = "NCHW"

__all__ = [
    "FRAMEWORK", "DATA_FORMAT", "ShapeMismatchError", "concat_output_shape",
    *_align_all, *_blocks_all, *_device_all, *_diagnostics_all, *_experiments_all, *_fusion_all, *_init_all, *_lr_all, *_models_all, *_train_all,
]
