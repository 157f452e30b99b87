"""Device choice for the PyTorch half: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import torch

from .. import runsize as _runsize
from ..device import device_line
from ..seeding import seed_everything

__all__ = ["get_device", "describe_device", "run_size", "setup"]


def get_device() -> torch.device:
    """The best device available: CUDA, then Apple MPS, then CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device(device: torch.device | None = None) -> str:
    """Human description of `device`, e.g. 'CUDA (NVIDIA H100, 79 GiB)' or 'CPU (2 threads)'."""
    device = device or get_device()
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"CUDA ({props.name}, {props.total_memory / 2**30:.0f} GiB)"
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU ({torch.get_num_threads()} threads; no CUDA or MPS found)"


def run_size() -> _runsize.RunSize:
    """Run size for lessons: small on CPU and while grading, full on a GPU (see coursekit.runsize)."""
    return _runsize.run_size(gpu=get_device().type in ("cuda", "mps"))


def setup(seed: int | None = 0) -> torch.device:
    """Seed everything, pick the device and print the one line saying what will be used."""
    if seed is not None:
        seed_everything(seed)
    device = get_device()
    rs = run_size()
    print(device_line("PyTorch", torch.__version__.split("+")[0], describe_device(device), rs.describe()))
    return device
