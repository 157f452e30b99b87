"""Helpers that nbgrader test cells call.

The first line of every assertion message is the student's hint: what was checked, what was
received, what was expected, and where to look. Student code is called through `call`, which
keeps framework warnings off stderr: nbgrader fails a test cell that writes to stderr, and a
deprecation notice is not a wrong answer.

The helpers import no framework; tensors are converted by duck typing. Because student code
runs in the same kernel, the helpers accept only genuine values: arrays and tensors whose classes
all come from numpy / torch / TensorFlow / Keras, and plain Python values of the exact built-in
types. A look-alike object (a class of the student's with a `shape` attribute, a subclass of
`torch.Tensor`, an object that compares equal to everything) fails the check instead of faking it.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any, Callable, Sequence

import numpy as np

__all__ = [
    "to_numpy",
    "shape_of",
    "call",
    "check_shape",
    "check_close",
    "check_equal",
    "check_raises",
    "check_true",
]


_LIBRARY_ROOTS = frozenset({"builtins", "numpy", "torch", "tensorflow", "keras", "tf_keras"})
_PLAIN = (bool, int, float, complex, str, bytes, type(None))


def _from_library(x: Any) -> bool:
    """Whether every class in `type(x).__mro__` is defined by numpy/torch/TensorFlow/Keras/builtins."""
    return all(type.__getattribute__(c, "__module__").split(".")[0] in _LIBRARY_ROOTS for c in type(x).__mro__)


def _genuine(x: Any, what: str) -> None:
    if not _from_library(x):
        raise AssertionError(
            f"{what} is a {type(x).__name__} defined in the notebook; return a real tensor or array "
            "(torch.Tensor, a Keras/TensorFlow tensor or numpy.ndarray), or plain Python values."
        )


def _plain(x: Any, what: str) -> None:
    """Plain Python data of the exact built-in types (tuples, lists, dicts, numbers, strings), or
    numpy scalars: nothing that could redefine `==`."""
    t = type(x)
    if t in _PLAIN or isinstance(x, np.generic) and _from_library(x):
        return
    if t in (tuple, list, set, frozenset):
        for item in x:
            _plain(item, what)
        return
    if t is dict:
        for k, v in x.items():
            _plain(k, what)
            _plain(v, what)
        return
    if t is np.ndarray:
        return
    raise AssertionError(f"{what} is a {t.__name__}; expected plain Python values (tuple, int, float, str, ...).")


def to_numpy(x: Any) -> np.ndarray:
    """A numpy copy of a torch tensor, TensorFlow/Keras tensor, numpy array or nested list."""
    if type(x) in (list, tuple):
        _plain(x, "the value")
    else:
        _genuine(x, "the value")
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor
        return x.detach().cpu().numpy()
    if hasattr(x, "numpy"):  # tf.Tensor / tf.Variable (eager)
        return np.asarray(x.numpy())
    return np.asarray(x)


def shape_of(x: Any) -> tuple:
    """The shape of a tensor or array as a plain tuple of ints (None kept for unknown dims)."""
    _genuine(x, "the value")
    shape = getattr(x, "shape", None)
    if shape is None:
        return tuple(np.shape(x))
    return tuple(None if d is None else int(d) for d in shape)


def call(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call the student's `fn`, keeping warnings and stray stderr out of the test cell.

    Raises AssertionError with a hint if `fn` is not callable or still raises
    NotImplementedError (the exercise has not been attempted)."""
    name = getattr(fn, "__name__", repr(fn))
    if not callable(fn):
        raise AssertionError(f"{name} should be a function, but it is a {type(fn).__name__}.")
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            return fn(*args, **kwargs)
        except NotImplementedError:
            raise AssertionError(
                f"{name} still raises NotImplementedError: replace the `raise NotImplementedError()` "
                "line with your code."
            ) from None


def check_shape(actual: Any, expected: Sequence[int | None], what: str = "output", hint: str = "") -> None:
    """Assert `actual` (a tensor or a shape) has shape `expected`."""
    if type(actual) in (tuple, list):
        _plain(actual, what)
        got = tuple(actual)
    else:
        _genuine(actual, what)
        got = shape_of(actual) if hasattr(actual, "shape") else tuple(actual)  # torch.Size, TensorShape
    got = tuple(None if d is None else int(d) for d in got)
    want = tuple(None if d is None else int(d) for d in expected)
    if got != want:
        raise AssertionError(
            f"{what} has shape {got}, expected {want}." + (f" Hint: {hint}" if hint else "")
        )


def check_close(
    actual: Any,
    expected: Any,
    what: str = "output",
    atol: float = 1e-5,
    rtol: float = 1e-5,
    hint: str = "",
) -> None:
    """Assert `actual` equals `expected` numerically (shape first, then values)."""
    a, e = to_numpy(actual), to_numpy(expected)
    if a.shape != e.shape:
        raise AssertionError(
            f"{what} has shape {a.shape}, expected {e.shape}." + (f" Hint: {hint}" if hint else "")
        )
    if not np.allclose(a, e, atol=atol, rtol=rtol, equal_nan=False):
        diff = np.abs(a.astype(np.float64) - e.astype(np.float64))
        worst = np.unravel_index(np.nanargmax(diff), diff.shape) if diff.size else ()
        raise AssertionError(
            f"{what} differs from the expected values: max abs difference {np.nanmax(diff):.3g} "
            f"at index {tuple(int(i) for i in worst)} (tolerance atol={atol}, rtol={rtol})."
            + (f" Hint: {hint}" if hint else "")
        )


def check_equal(actual: Any, expected: Any, what: str = "result", hint: str = "") -> None:
    """Assert `actual == expected` for plain Python values (tuples, ints, strings)."""
    _plain(actual, what)
    if actual != expected:
        raise AssertionError(
            f"{what} is {actual!r}, expected {expected!r}." + (f" Hint: {hint}" if hint else "")
        )


def check_raises(
    fn: Callable, exc_type: type[BaseException], *args: Any, what: str = "", hint: str = "", **kwargs: Any
) -> BaseException:
    """Assert that calling `fn(*args, **kwargs)` raises `exc_type`; return the exception."""
    name = what or f"{getattr(fn, '__name__', 'the function')}{args!r}"
    try:
        call(fn, *args, **kwargs)
    except exc_type as err:
        return err
    except AssertionError:
        raise
    except Exception as err:  # the wrong kind of error is its own hint
        raise AssertionError(
            f"{name} raised {type(err).__name__}: {err}; expected {exc_type.__name__}."
            + (f" Hint: {hint}" if hint else "")
        ) from None
    raise AssertionError(f"{name} did not raise {exc_type.__name__}." + (f" Hint: {hint}" if hint else ""))


def check_true(condition: bool, message: str) -> None:
    """Assert `condition`, with `message` as the student's hint."""
    if type(condition) is not bool:
        if isinstance(condition, np.bool_) or (_from_library(condition) and getattr(condition, "shape", None) == ()):
            condition = bool(to_numpy(condition))
        else:
            raise AssertionError(f"{message} (the check needs True or False, got a {type(condition).__name__})")
    if not condition:
        raise AssertionError(message)
