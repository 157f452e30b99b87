"""Copy weights from a coursekit.torch layer into its coursekit.keras twin, and compare them.

The twins mirror attribute names (``.conv``, ``.norm``, ``.proj``, ``.fc1``, ``.gates`` ...), so
one walk over the torch module's children finds every keras counterpart by name. Layout rules:
a torch Conv2d weight is (out, in, kh, kw), a keras Conv2D kernel (kh, kw, in, out); BatchNorm's
(weight, bias, running_mean, running_var) are keras' (gamma, beta, moving_mean,
moving_variance); GroupNorm's (weight, bias) are (gamma, beta); a parameter registered directly
on a module (e.g. WeightedSumFusion.weight) is the keras variable of the same name.

Convention: torch tensors are NCHW and keras tensors NHWC unless a test says otherwise.
Imports torch and numpy only; keras objects are handled through their own methods.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import nn


def rand_nchw(*shape: int, seed: int = 0) -> np.ndarray:
    """A float32 standard-normal array of `shape`."""
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def nhwc(a: np.ndarray) -> np.ndarray:
    """NCHW numpy array -> NHWC."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def nchw(a: np.ndarray) -> np.ndarray:
    """NHWC numpy array -> NCHW."""
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def to_numpy(x) -> np.ndarray:
    """A torch tensor or keras/TF tensor as a numpy array."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def randomize_(module: nn.Module, seed: int = 0, scale: float = 0.5) -> nn.Module:
    """Overwrite every float parameter and buffer with random values, in place.

    Default inits hide bugs (BatchNorm's gamma=1/beta=0, zero logits), so parity tests start
    from arbitrary weights. Running variances stay positive.
    """
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for name, t in [*module.named_parameters(), *module.named_buffers()]:
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                values = rng.uniform(0.5, 1.5, t.shape)
            else:
                values = rng.normal(0.0, scale, t.shape)
            t.copy_(torch.as_tensor(values, dtype=t.dtype))
    return module


def _pairs(t_module: nn.Module, k_layer, path: str = "") -> Iterator[tuple[str, object, object]]:
    """(path, torch leaf, keras leaf) for every parameterized piece of the twins."""
    for name, p in t_module.named_parameters(recurse=False):
        yield f"{path}{name}", p, getattr(k_layer, name)
    for name, child in t_module.named_children():
        k_child = getattr(k_layer, name, None)
        if k_child is None:
            raise AttributeError(
                f"the keras twin has no attribute {path}{name}; the torch module has "
                f"{type(child).__name__} there. Twins must mirror attribute names."
            )
        if isinstance(child, nn.ModuleList):
            if len(child) != len(k_child):
                raise ValueError(f"{path}{name}: {len(child)} torch modules vs {len(k_child)} keras layers")
            for i, (t_sub, k_sub) in enumerate(zip(child, k_child)):
                yield from _leaf_or_walk(t_sub, k_sub, f"{path}{name}.{i}")
        else:
            yield from _leaf_or_walk(child, k_child, f"{path}{name}")


def _leaf_or_walk(t_mod: nn.Module, k_layer, path: str):
    if isinstance(t_mod, (nn.Conv2d, nn.BatchNorm2d, nn.GroupNorm, nn.Linear)):
        yield path, t_mod, k_layer
    else:
        yield from _pairs(t_mod, k_layer, f"{path}.")


def keras_weights_for(t_leaf) -> list[np.ndarray]:
    """The keras ``set_weights`` list equal to a torch Conv2d / Linear / BatchNorm2d / GroupNorm."""
    if isinstance(t_leaf, nn.Conv2d):
        weights = [to_numpy(t_leaf.weight).transpose(2, 3, 1, 0)]
        if t_leaf.bias is not None:
            weights.append(to_numpy(t_leaf.bias))
        return weights
    if isinstance(t_leaf, nn.Linear):  # keras Dense: kernel (in, out), torch weight (out, in)
        return [to_numpy(t_leaf.weight).T] + ([to_numpy(t_leaf.bias)] if t_leaf.bias is not None else [])
    if isinstance(t_leaf, nn.BatchNorm2d):
        return [to_numpy(t_leaf.weight), to_numpy(t_leaf.bias),
                to_numpy(t_leaf.running_mean), to_numpy(t_leaf.running_var)]
    if isinstance(t_leaf, nn.GroupNorm):
        return [to_numpy(t_leaf.weight), to_numpy(t_leaf.bias)]
    return [to_numpy(t_leaf)]  # a bare nn.Parameter


def copy_torch_to_keras(t_module: nn.Module, k_layer) -> None:
    """Load `t_module`'s weights (and BatchNorm statistics) into its keras twin `k_layer`."""
    for _, t_leaf, k_leaf in _pairs(t_module, k_layer):
        weights = keras_weights_for(t_leaf)
        if isinstance(t_leaf, nn.Parameter):
            k_leaf.assign(weights[0])
        else:
            k_leaf.set_weights(weights)


def assert_same_state(t_module: nn.Module, k_layer, atol: float = 1e-5, rtol: float = 1e-5) -> None:
    """Assert the twins hold the same weights and moving statistics (e.g. after a train step)."""
    for path, t_leaf, k_leaf in _pairs(t_module, k_layer):
        expected = keras_weights_for(t_leaf)
        got = [np.asarray(k_leaf.numpy())] if isinstance(t_leaf, nn.Parameter) else k_leaf.get_weights()
        assert len(got) == len(expected), f"{path}: {len(got)} keras arrays vs {len(expected)} torch"
        for i, (g, e) in enumerate(zip(got, expected)):
            np.testing.assert_allclose(g, e, atol=atol, rtol=rtol, err_msg=f"{path}[{i}] differs")
