"""Helpers that nbgrader test cells call.

The first line of every assertion message is the student's hint: what was checked, what was
received, what was expected, and where to look. Student code is called through `call`, which
keeps framework warnings off stderr: nbgrader fails a test cell that writes to stderr, and a
deprecation notice is not a wrong answer.

The helpers import no framework; tensors are converted by duck typing.
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


def to_numpy(x: Any) -> np.ndarray:
    """A numpy copy of a torch tensor, TensorFlow/Keras tensor, numpy array or nested list."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor
        return x.detach().cpu().numpy()
    if hasattr(x, "numpy"):  # tf.Tensor / tf.Variable (eager)
        return np.asarray(x.numpy())
    return np.asarray(x)


def shape_of(x: Any) -> tuple:
    """The shape of a tensor or array as a plain tuple of ints (None kept for unknown dims)."""
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
    got = shape_of(actual) if hasattr(actual, "shape") else tuple(actual)
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
    if not condition:
        raise AssertionError(message)
