"""Weight-initialization schemes, framework-neutral: the table, the fans and the formulas.

Both `coursekit.torch.init` and `coursekit.keras.init` draw from `resolve_draw`, so one scheme
gives the same distribution, hence the same variance, in either framework.

Conventions (chosen so the twins agree, and stated because the frameworks' defaults differ):

- Gains follow ``torch.nn.init.calculate_gain``: linear and sigmoid 1, tanh 5/3, relu sqrt(2).
- ``nonlinearity`` sets the gain of the He schemes only, like torch's ``kaiming_*_``. The Xavier
  schemes use gain 1, the default of torch's ``xavier_*_`` and the only choice of Keras'
  ``GlorotUniform``/``GlorotNormal``: Var(w) = 2 / (fan_in + fan_out).
- He: std = gain / sqrt(fan), fan picked by ``mode``. With relu that is sqrt(2 / fan), which is
  what Keras' ``HeNormal``/``HeUniform`` give (they use ``mode='fan_in'`` and a fixed gain).
- Normal schemes draw from an UNTRUNCATED normal with exactly the std of the formula, as
  torch's ``kaiming_normal_``/``xavier_normal_`` do. Keras' ``HeNormal`` and ``GlorotNormal``
  instead draw from a normal truncated at 2 std and widened by 1/0.8796 so the variance still
  matches; the variance is the same but the tails are not, so the Keras half uses
  ``RandomNormal(stddev=...)`` to reproduce torch's distribution exactly.
- Uniform schemes draw from U(-b, b) with b = sqrt(3) * std, which has that std.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "INIT_SCHEMES",
    "LAYOUTS",
    "MODES",
    "NONLINEARITIES",
    "PLAIN_CNN_ACTIVATIONS",
    "SCHEME_ALIASES",
    "InitDraw",
    "InitScheme",
    "canonical_scheme",
    "check_bias",
    "check_options",
    "expected_std",
    "fans",
    "gain",
    "plain_cnn_widths",
    "resolve_draw",
    "residual_stack_arrays",
    "residual_stack_probe",
    "residual_stack_summary",
]


@dataclass(frozen=True)
class InitScheme:
    """One row of the scheme table: how weights are drawn and which options it reads."""

    name: str
    distribution: str  # 'constant', 'normal' or 'uniform'
    variance: str  # the formula, for notebooks and error messages
    options: tuple[str, ...]


_TABLE = (
    InitScheme("zeros", "constant", "w = 0", ()),
    InitScheme("constant", "constant", "w = value", ("value",)),
    InitScheme("normal", "normal", "std = std", ("std",)),
    InitScheme("xavier_uniform", "uniform", "Var = 2 / (fan_in + fan_out)", ()),
    InitScheme("xavier_normal", "normal", "Var = 2 / (fan_in + fan_out)", ()),
    InitScheme("he_uniform", "uniform", "Var = gain**2 / fan", ("mode", "nonlinearity")),
    InitScheme("he_normal", "normal", "Var = gain**2 / fan", ("mode", "nonlinearity")),
)

SCHEME_ALIASES: Mapping[str, str] = MappingProxyType(
    {"kaiming_uniform": "he_uniform", "kaiming_normal": "he_normal"}
)

#: Every accepted name (aliases included) -> its `InitScheme`; the row's `.name` is canonical.
INIT_SCHEMES: Mapping[str, InitScheme] = MappingProxyType(
    {**{s.name: s for s in _TABLE}, **{a: next(s for s in _TABLE if s.name == c) for a, c in SCHEME_ALIASES.items()}}
)

MODES = ("fan_in", "fan_out")
NONLINEARITIES: Mapping[str, float] = MappingProxyType(
    {"relu": math.sqrt(2.0), "tanh": 5.0 / 3.0, "sigmoid": 1.0, "linear": 1.0}
)
#: Weight layouts `fans` understands: torch (out, in, *kernel) and keras (*kernel, in, out).
LAYOUTS = ("torch", "keras")
# Biases have no fan, so only the fan-free schemes make sense for them.
_BIAS_SCHEMES = ("zeros", "constant", "normal", "keep")


@dataclass(frozen=True)
class InitDraw:
    """What to draw for one weight: a `constant` fill, a `normal` (0, std) or a `uniform` (-b, b).

    `param` is the fill value, the std or the bound b; `std` is the std of the result.
    """

    distribution: str
    param: float
    std: float


def canonical_scheme(scheme: str) -> str:
    """The canonical name of `scheme` ('kaiming_normal' -> 'he_normal'); ValueError if unknown."""
    if isinstance(scheme, str) and scheme in INIT_SCHEMES:
        return INIT_SCHEMES[scheme].name
    raise ValueError(
        f"unknown initialization scheme {scheme!r}; valid schemes are {sorted(INIT_SCHEMES)} "
        f"('kaiming_*' are aliases of 'he_*'). Fix: pass one of them, e.g. scheme='he_normal'."
    )


def check_options(mode: str = "fan_in", nonlinearity: str = "relu", std: float = 0.01,
                  value: float = 0.0, seed: int | None = None) -> None:
    """Validate the scheme options; every option is checked even when a scheme ignores it,
    so a typo never passes silently."""
    if seed is not None and not (isinstance(seed, numbers.Integral) and not isinstance(seed, bool)
                                 and seed >= 0):
        raise ValueError(f"seed must be an int >= 0 or None; received {seed!r}. Example: seed=0.")
    if mode not in MODES:
        raise ValueError(
            f"mode must be one of {list(MODES)}; received {mode!r}. 'fan_in' keeps the forward "
            "activations' variance, 'fan_out' the backward gradients'."
        )
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(
            f"nonlinearity must be one of {list(NONLINEARITIES)}; received {nonlinearity!r}. "
            "Name the activation that follows the layer (torch.nn.init's gain conventions)."
        )
    if not _is_real(std) or not math.isfinite(std) or std < 0:
        raise ValueError(f"std must be a finite number >= 0; received {std!r}. Example: std=0.01.")
    if not _is_real(value) or not math.isfinite(value):
        raise ValueError(f"value must be a finite number; received {value!r}. Example: value=0.1.")


def check_bias(bias: str | float) -> str | float:
    """Validate `bias`: a number (constant fill) or one of 'zeros', 'constant' (uses `value`),
    'normal' (uses `std`) or 'keep' (leave biases alone)."""
    if isinstance(bias, str):
        if bias in _BIAS_SCHEMES:
            return bias
    elif _is_real(bias) and math.isfinite(bias):
        return float(bias)
    raise ValueError(
        f"bias must be a finite number or one of {list(_BIAS_SCHEMES)}; received {bias!r}. "
        "Fan-based schemes (xavier/he) do not apply to biases, which have no fan. "
        "Fix: bias=0.0 (the usual choice) or bias='keep'."
    )


def gain(nonlinearity: str) -> float:
    """torch.nn.init.calculate_gain for the supported nonlinearities."""
    check_options(nonlinearity=nonlinearity)
    return NONLINEARITIES[nonlinearity]


def fans(weight_shape: Sequence[int], framework_layout: str) -> tuple[int, int]:
    """(fan_in, fan_out) of a dense or conv weight.

    'torch': (out, in) or (out, in, *kernel); 'keras': (in, out) or (*kernel, in, out).
    A conv's fans are its channels times the kernel's receptive field, as in both frameworks.
    """
    if framework_layout not in LAYOUTS:
        raise ValueError(
            f"framework_layout must be one of {list(LAYOUTS)}; received {framework_layout!r}. "
            "Use 'torch' for (out, in, kh, kw) weights and 'keras' for (kh, kw, in, out) kernels."
        )
    shape = tuple(int(d) for d in weight_shape)
    if len(shape) < 2:
        raise ValueError(
            f"fans needs a weight of rank >= 2 (a dense or conv weight); received shape {shape}. "
            "Biases and other rank-1 tensors have no fan_in/fan_out."
        )
    if framework_layout == "torch":
        n_out, n_in, kernel = shape[0], shape[1], shape[2:]
    else:
        n_in, n_out, kernel = shape[-2], shape[-1], shape[:-2]
    receptive = math.prod(kernel)
    return n_in * receptive, n_out * receptive


def resolve_draw(scheme: str, fan_in: int, fan_out: int, *, mode: str = "fan_in",
                 std: float = 0.01, value: float = 0.0, nonlinearity: str = "relu") -> InitDraw:
    """The distribution `scheme` draws from for a weight with these fans (the one formula
    both halves use)."""
    name = canonical_scheme(scheme)
    check_options(mode, nonlinearity, std, value)
    if name == "zeros":
        return InitDraw("constant", 0.0, 0.0)
    if name == "constant":
        return InitDraw("constant", float(value), 0.0)
    if name == "normal":
        return InitDraw("normal", float(std), float(std))
    for n, what in ((fan_in, "fan_in"), (fan_out, "fan_out")):
        if not _is_real(n) or n <= 0:
            raise ValueError(f"{what} must be a positive number; received {n!r}.")
    if name.startswith("xavier"):
        sigma = math.sqrt(2.0 / (fan_in + fan_out))
    else:
        sigma = NONLINEARITIES[nonlinearity] / math.sqrt(fan_in if mode == "fan_in" else fan_out)
    if name.endswith("uniform"):
        return InitDraw("uniform", math.sqrt(3.0) * sigma, sigma)
    return InitDraw("normal", sigma, sigma)


def expected_std(scheme: str, fan_in: int, fan_out: int, *, mode: str = "fan_in",
                 std: float = 0.01, value: float = 0.0, nonlinearity: str = "relu") -> float:
    """The std of the weights `scheme` draws (0.0 for 'zeros' and 'constant')."""
    return resolve_draw(scheme, fan_in, fan_out, mode=mode, std=std, value=value,
                        nonlinearity=nonlinearity).std


def _is_real(x) -> bool:
    # numbers.Real covers numpy scalars too; bool is an int subclass, but std=True is a mistake.
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


#: The activations both halves' `plain_cnn` accept (the frameworks name them alike).
PLAIN_CNN_ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear")
_PADDINGS = ("same", "valid")


def plain_cnn_widths(depth, width, activation, padding) -> list[int]:
    """Check `plain_cnn`'s options (as both twins take them) and return one width per conv layer."""
    if not isinstance(depth, numbers.Integral) or isinstance(depth, bool) or depth < 1:
        raise ValueError(f"depth must be an int >= 1 (the number of conv layers); received {depth!r}.")
    widths = [width] * int(depth) if isinstance(width, numbers.Integral) and not isinstance(width, bool) else list(width)
    if len(widths) != depth or any(not isinstance(w, numbers.Integral) or isinstance(w, bool) or w < 1 for w in widths):
        raise ValueError(
            f"width must be an int >= 1 or a list of {depth} ints >= 1 (one per conv layer); received "
            f"{width!r}. Example: plain_cnn(depth=4, width=[8, 16, 32, 64])."
        )
    if activation not in PLAIN_CNN_ACTIVATIONS:
        raise ValueError(f"activation must be one of {list(PLAIN_CNN_ACTIVATIONS)}; received {activation!r}.")
    if padding not in _PADDINGS:
        raise ValueError(
            f"padding must be one of {list(_PADDINGS)}; received {padding!r}. 'valid' shrinks the map by "
            "2 pixels per 3x3 layer and keeps every output's fan_in complete (no zero border)."
        )
    return [int(w) for w in widths]


def residual_stack_arrays(depth: int, channels: int, *, seed: int = 0, batch: int = 32, size: int = 16):
    """The input and conv weights of lesson 05's residual stack, drawn once in NumPy so both twins'
    `residual_profile` start from the same numbers.

    Returns ``(x, weights)``: `x` is ReLU of a standard normal batch, NCHW ``(batch, channels, size,
    size)`` (non-negative, like the output of a block before it); `weights` holds one ``(w1, w2)`` pair
    per block, each in PyTorch's OIHW layout ``(channels, channels, 3, 3)``, He-normal
    (std sqrt(2 / fan_in), fan_in = 9 * channels)."""
    import numpy as np  # only this helper needs it; the tables above stay import-light

    for name, value, low in (("depth", depth, 1), ("channels", channels, 1), ("batch", batch, 2), ("size", size, 1)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an int >= {low}; received {value!r}.")
    rng = np.random.default_rng(seed)
    x = np.maximum(rng.standard_normal((batch, channels, size, size)), 0).astype(np.float32)
    std = math.sqrt(2.0 / (9 * channels))
    weights = [tuple((rng.standard_normal((channels, channels, 3, 3)) * std).astype(np.float32) for _ in range(2))
               for _ in range(depth)]
    return x, weights


def residual_stack_probe(shape: tuple[int, ...], *, seed: int = 0):
    """The fixed random direction that lesson 05's residual stack is probed along: the loss is the
    mean of the stack's output times this tensor, a loss that reaches every unit with no labels to
    choose. NCHW `shape` (``x.shape`` of `residual_stack_arrays`), float32, drawn from ``seed + 1``
    so it differs from the input."""
    import numpy as np

    return np.random.default_rng(seed + 1).standard_normal(tuple(shape)).astype(np.float32)


def residual_stack_summary(x, outputs, conv_grads, gamma_grads) -> dict:
    """What both twins' `residual_profile` return, computed in NumPy (float64) from arrays.

    `x` is the stack's input and `outputs` each block's output (any layout: only their spread is
    used); `conv_grads` holds one ``(grad_conv1, grad_conv2)`` pair per block and `gamma_grads` the
    gradient of each block's second BatchNorm scale. Returns ``{'forward', 'conv_grad',
    'gamma_grad'}``: the std of each block's output over the std of the input, and the gradient
    norms (the two convs' kernels together)."""
    import numpy as np

    def std(a) -> float:
        return float(np.std(np.asarray(a, dtype=np.float64)))

    def norm(*arrays) -> float:
        return float(np.sqrt(sum(float((np.asarray(a, dtype=np.float64) ** 2).sum()) for a in arrays)))

    x_std = std(x)
    return {
        "forward": np.array([std(o) / x_std for o in outputs]),
        "conv_grad": np.array([norm(g1, g2) for g1, g2 in conv_grads]),
        "gamma_grad": np.array([norm(g) for g in gamma_grads]),
    }
