"""Import TensorFlow and Keras once, quietly, with GPU memory growth set before first use.

Every module of coursekit.keras imports the frameworks from here, so the start-up noise
(CUDA probes, oneDNN notices) never reaches a notebook cell, where nbgrader would count the
stderr output as a failed test.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import warnings

from ..device import quiet_stderr

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

if os.environ["KERAS_BACKEND"] != "tensorflow":
    raise ImportError(
        f"coursekit.keras runs Keras 3 on the TensorFlow backend, but KERAS_BACKEND="
        f"{os.environ['KERAS_BACKEND']!r}. Unset it or set KERAS_BACKEND=tensorflow before importing."
    )

with quiet_stderr(), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    if "tensorflow" not in sys.modules and importlib.util.find_spec("triton") is not None:
        # Importing triton (which torch.optim and torchvision.ops pull in) AFTER TensorFlow
        # segfaults with TF 2.21 + the CUDA torch 2.14 wheels; before it, both work. Costs ~0.1 s.
        import triton  # noqa: F401
    import tensorflow as tf
    import keras

    tf.get_logger().setLevel(logging.ERROR)
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:  # absl ships with TensorFlow; stay importable without it
        pass
    GPUS = tf.config.list_physical_devices("GPU")
    for _gpu in GPUS:
        try:
            # Without growth TF grabs all GPU memory at once, starving a second notebook.
            tf.config.experimental.set_memory_growth(_gpu, True)
        except RuntimeError:  # already initialized by the user's own code: keep their choice
            pass

__all__ = ["tf", "keras", "GPUS"]
