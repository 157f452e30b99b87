"""Framework-neutral device helpers: what is installed, quiet start-up, the one-line report.

The framework halves (`coursekit.torch.setup`, `coursekit.keras.setup`) pick the device; this
module only holds what both share, and imports no framework.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from typing import Iterator

FRAMEWORKS = {"torch": "torch", "keras": "tensorflow"}


def is_installed(module: str) -> bool:
    """True if `module` can be imported, without importing it (einops' rule)."""
    return importlib.util.find_spec(module) is not None


def loaded_frameworks() -> list[str]:
    """Frameworks already imported in this process."""
    return [m for m in ("torch", "tensorflow", "keras") if m in sys.modules]


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence file-descriptor-level stderr, where TensorFlow's C++ start-up messages go.

    TF_CPP_MIN_LOG_LEVEL does not catch the lines printed before absl logging starts, and a
    Jupyter kernel forwards fd 2 into the cell, where nbgrader would count it as a failure.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 at all: nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def device_line(framework: str, version: str, device: str, run: str) -> str:
    """The single line every lesson prints first, e.g.
    'coursekit: PyTorch 2.14.1 on CPU (no CUDA or MPS found) | run size: small: 8 epochs, ...'."""
    return f"coursekit: {framework} {version} on {device} | run size: {run}"
