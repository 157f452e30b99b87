"""Device choice for the Keras half: TensorFlow GPU with memory growth, else CPU."""

from __future__ import annotations

from . import _tf
from .. import runsize as _runsize
from ..device import device_line
from ..seeding import seed_everything

tf, keras = _tf.tf, _tf.keras

__all__ = ["get_device", "describe_device", "run_size", "setup"]


def get_device() -> str:
    """'GPU:0' when TensorFlow sees a GPU, else 'CPU:0' (Keras places ops itself)."""
    return "GPU:0" if _tf.GPUS else "CPU:0"


def describe_device(device: str | None = None) -> str:
    """Human description of `device`, e.g. 'GPU (1 device, memory growth on)' or 'CPU'."""
    device = device or get_device()
    if device.startswith("GPU"):
        return f"GPU ({len(_tf.GPUS)} device(s), memory growth on)"
    return f"CPU ({tf.config.threading.get_inter_op_parallelism_threads() or 'all'} threads; no GPU found)"


def run_size() -> _runsize.RunSize:
    """Run size for lessons: small on CPU and while grading, full on a GPU (see coursekit.runsize)."""
    return _runsize.run_size(gpu=bool(_tf.GPUS))


def setup(seed: int | None = 0) -> str:
    """Seed everything, pick the device and print the one line saying what will be used."""
    if seed is not None:
        seed_everything(seed)
    device = get_device()
    rs = run_size()
    line = device_line(f"Keras {keras.__version__} / TensorFlow", tf.__version__, describe_device(device), rs.describe())
    print(line)
    return device
