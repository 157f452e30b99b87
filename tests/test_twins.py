"""Every twin pair (coursekit.torch.X and coursekit.keras.X) exports the same names, in the same order,
with the same signatures and a docstring on both sides: a learner who switches framework finds every
name where the other lesson had it (issue 18)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import coursekit.keras
import coursekit.torch

TWINS = sorted({m.name for m in pkgutil.iter_modules(coursekit.torch.__path__) if not m.name.startswith("_")}
               & {m.name for m in pkgutil.iter_modules(coursekit.keras.__path__)})
# Deliberate differences, each the framework's own convention.
SIGNATURE_EXCEPTIONS = {
    # BatchNorm momentum: PyTorch's 0.1 weighs the new batch, Keras' 0.9 the running value: the same update
    ("normalization", "run_two_branch_bn"): "momentum",
}


def test_every_twin_module_has_both_halves():
    torch_only = {m.name for m in pkgutil.iter_modules(coursekit.torch.__path__)} - set(TWINS)
    keras_only = {m.name for m in pkgutil.iter_modules(coursekit.keras.__path__)} - set(TWINS) - {"_tf"}
    assert not torch_only and not keras_only, (torch_only, keras_only)


@pytest.mark.parametrize("name", TWINS)
def test_twins_export_the_same_names_and_signatures(name):
    mt = importlib.import_module(f"coursekit.torch.{name}")
    mk = importlib.import_module(f"coursekit.keras.{name}")
    assert mt.__all__ == mk.__all__, (name, set(mt.__all__) ^ set(mk.__all__))
    for public in mt.__all__:
        ft, fk = getattr(mt, public), getattr(mk, public)
        if not (inspect.isfunction(ft) or inspect.isclass(ft)):
            continue
        assert ft.__doc__ and fk.__doc__, f"{name}.{public} needs a docstring on both sides"
        if inspect.isfunction(ft):
            skip = SIGNATURE_EXCEPTIONS.get((name, public))
            pt = [(p.name, p.kind, p.default) for p in inspect.signature(ft).parameters.values() if p.name != skip]
            pk = [(p.name, p.kind, p.default) for p in inspect.signature(fk).parameters.values() if p.name != skip]
            assert pt == pk, f"{name}.{public}: {pt} != {pk}"


def test_each_framework_has_one_backend_with_every_field_callable():
    """The neutral bodies receive a `Backend`, never a module (no `sys.modules[__name__]` anywhere)."""
    from dataclasses import fields
    from pathlib import Path

    from coursekit.backend import Backend
    from coursekit.keras.backend import BACKEND as KERAS
    from coursekit.torch.backend import BACKEND as TORCH

    assert (TORCH.name, TORCH.layout, KERAS.name, KERAS.layout) == ("torch", "NCHW", "keras", "NHWC")
    for backend in (TORCH, KERAS):
        assert isinstance(backend, Backend)
        for f in fields(Backend):
            if f.name not in ("name", "layout"):
                assert callable(getattr(backend, f.name)), (backend.name, f.name)
    assert TORCH.extended(fit=len).fit is len and TORCH.extended(small_cnn=abs).small_cnn is abs
    root = Path(__file__).resolve().parents[1] / "coursekit"
    callbacks = [str(p) for p in root.rglob("*.py") if "sys.modules[__name__]" in p.read_text()]
    assert not callbacks, callbacks
