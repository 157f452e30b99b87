"""Weight initialization for Keras 3 models, by scheme name.

Twin of `coursekit.torch.init`: same names, same signatures, same variances. The formulas live
in `coursekit.init_schemes`; the draws use ``keras.initializers.RandomNormal`` /
``RandomUniform`` with the computed std or bound, so the normal schemes are untruncated like
torch's (Keras' own ``HeNormal``/``GlorotNormal`` truncate at 2 std; same variance, other
tails). This module must never import PyTorch.
"""

from __future__ import annotations

from ..init_schemes import (
    INIT_SCHEMES,
    InitDraw,
    canonical_scheme,
    check_bias,
    check_options,
    expected_std,
    fans,
    resolve_draw,
)
from . import _tf

keras = _tf.keras
layers = keras.layers

__all__ = ["INIT_SCHEMES", "expected_std", "fans", "init_model", "initialized_layers"]

# The layers whose kernels a scheme sets; their kernels are (*kernel, in, out) or (in, out).
_TARGETS = (layers.Conv1D, layers.Conv2D, layers.Conv3D, layers.Dense)


def initialized_layers(model) -> list:
    """The Conv1D/2D/3D and Dense layers `init_model` sets, nested ones included (layers inside
    sub-models and inside custom layers' attributes)."""
    # Keras 3 has no public recursive walk; _flatten_layers is what `Model.summary` relies on.
    return [la for la in model._flatten_layers(include_self=True, recursive=True)
            if isinstance(la, _TARGETS)]


def init_model(model, scheme: str, *, bias: str | float = 0.0, mode: str = "fan_in",
               std: float = 0.01, value: float = 0.0, nonlinearity: str = "relu",
               seed: int | None = None):
    """Initialize every Conv/Dense kernel of `model` with `scheme` and set the biases; returns
    `model` (its variables are assigned in place).

    scheme: one of `INIT_SCHEMES`; mode ('fan_in'/'fan_out') and nonlinearity (the gain) apply
    to the He schemes, `std` to 'normal', `value` to 'constant'. bias: a number, or 'zeros',
    'constant' (uses `value`), 'normal' (uses `std`) or 'keep'. seed: draws come from a
    ``keras.random.SeedGenerator`` seeded with it; None draws fresh seeds from python's
    `random` (so `seed_everything` makes it reproducible). The model must be built.
    """
    scheme = canonical_scheme(scheme)
    check_options(mode, nonlinearity, std, value, seed)
    bias = check_bias(bias)
    if not isinstance(model, layers.Layer):
        raise TypeError(f"init_model expects a keras Model or Layer; received a {type(model).__name__}.")
    targets = initialized_layers(model)
    if not targets:
        raise ValueError(
            f"init_model found no Conv1D/Conv2D/Conv3D/Dense layer in {type(model).__name__}, so "
            "there is nothing to initialize. Fix: pass the model that holds them."
        )
    for layer in targets:
        if not layer.built:
            raise ValueError(
                f"init_model assigns values to existing weights, but layer {layer.name!r} of "
                f"{model.name!r} is not built yet (its input shape is unknown). Fix: start the "
                "model with keras.Input(shape=...), or call it on one input batch first."
            )
        if not isinstance(layer.kernel, keras.Variable):
            raise ValueError(
                f"layer {layer.name!r} has a computed kernel (LoRA or quantization is enabled); "
                "init_model can only set plain kernels. Fix: initialize before enabling LoRA."
            )
    # One generator for the whole model: an int seed per initializer would repeat the same
    # values in every layer of the same shape.
    gen = None if seed is None else keras.random.SeedGenerator(int(seed))
    options = {"mode": mode, "std": std, "value": value, "nonlinearity": nonlinearity}
    for layer in targets:
        fan_in, fan_out = fans(tuple(layer.kernel.shape), "keras")
        _fill(layer.kernel, resolve_draw(scheme, fan_in, fan_out, **options), gen)
        if getattr(layer, "bias", None) is not None and bias != "keep":
            if isinstance(bias, float):
                draw = InitDraw("constant", bias, 0.0)
            else:
                draw = resolve_draw(bias, 1, 1, **options)
            _fill(layer.bias, draw, gen)
    return model


def _fill(variable, draw: InitDraw, gen) -> None:
    if draw.distribution == "constant":
        init = keras.initializers.Constant(draw.param)
    elif draw.distribution == "normal":
        init = keras.initializers.RandomNormal(mean=0.0, stddev=draw.param, seed=gen)
    else:
        init = keras.initializers.RandomUniform(-draw.param, draw.param, seed=gen)
    variable.assign(init(tuple(variable.shape), dtype=variable.dtype))
