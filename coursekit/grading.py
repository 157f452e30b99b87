"""Helpers that nbgrader test cells call.

The first line of every assertion message is the student's hint: what was checked, what was
received, what was expected, and where to look. Student code is called through `call`, which
keeps framework warnings off stderr: nbgrader fails a test cell that writes to stderr, and a
deprecation notice is not a wrong answer.

The helpers import no framework; tensors are converted by duck typing.

**Who decides.** While a student works (and under nbgrader's Validate) the helpers compare in the
kernel and raise an AssertionError with the hint, as any test would. While nbgrader *autogrades*
(`NBGRADER_EXECUTION=autograde`) the student's code shares this kernel, so nothing decided here can be
trusted: each check then only *reports an observation* — the value the student's code produced,
as plain JSON data (arrays as dtype, shape and base64 bytes; never pickle) in a display message of
type `OBSERVATION_MIME` — and goes on. The grader (`coursekit.autograde.verdicts`, outside the
kernel) compares every observation of a test cell with what a clean, sandboxed run of the
instructor's solution observed at the same check, with the tolerances of that run, and writes the
verdict into the test cell; whatever the kernel printed or raised there counts for nothing.
Hidden tests therefore call `expect(value, what)` with no expected value at all: what is right
exists only outside the kernel.

Student functions are called through `call`, which gives them copies of the arrays and tensors
they receive (a function that changes its input in place cannot change what later checks see)
and keeps warnings off stderr (nbgrader fails a test cell that writes to stderr).
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import sys
import warnings
from typing import Any, Callable, Sequence

import numpy as np

from .observations import _array_value, _shape_value, _truth, compare, decode, encode

__all__ = [
    "to_numpy",
    "shape_of",
    "call",
    "check_shape",
    "check_close",
    "check_equal",
    "check_raises",
    "check_true",
    "expect",
    "read_choices",
    "read_counts",
    "OBSERVATION_MIME",
    "encode",
]

OBSERVATION_MIME = "application/vnd.coursekit.observation+json"
# "kernel": the grader lets the kernel's checks decide (BoundedExecute.host_verdicts off, only to
# show in tests that attacks on in-kernel checks are real)
VERDICTS_ENV_VAR = "COURSEKIT_VERDICTS"


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

    Arrays and tensors among the arguments (also inside lists, tuples and dicts) are passed as
    copies. Raises AssertionError with a hint if `fn` is not callable or still raises
    NotImplementedError (the exercise has not been attempted)."""
    name = getattr(fn, "__name__", repr(fn))
    if not callable(fn):
        raise AssertionError(f"{name} should be a function, but it is a {type(fn).__name__}.")
    args, kwargs = _copies(args), _copies(kwargs)
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            return fn(*args, **kwargs)
        except NotImplementedError:
            if autograding():  # tells the grader why the checks stop here (see verdicts.judge)
                _observe("unattempted", lambda: None, name, "")
            raise AssertionError(
                f"{name} still raises NotImplementedError: replace the `raise NotImplementedError()` "
                "line with your code."
            ) from None


def check_shape(actual: Any, expected: Sequence[int | None], what: str = "output", hint: str = "") -> None:
    """Assert `actual` (a tensor or a shape) has shape `expected`."""
    if autograding():
        _observe("shape", lambda: _shape_value(actual), what, hint)
        return
    _decide("shape", _shape_value(actual), list(expected), what, hint)


def check_close(
    actual: Any,
    expected: Any,
    what: str = "output",
    atol: float = 1e-5,
    rtol: float = 1e-5,
    hint: str = "",
) -> None:
    """Assert `actual` equals `expected` numerically (shape first, then values)."""
    if autograding():
        _observe("close", lambda: _array_value(actual), what, hint, atol=atol, rtol=rtol)
        return
    _decide("close", _array_value(actual), _array_value(expected), what, hint, atol, rtol)


def check_equal(actual: Any, expected: Any, what: str = "result", hint: str = "") -> None:
    """Assert `actual == expected` for plain Python values (tuples, ints, strings); a list and a
    tuple of the same items count as equal, as they do for the grader."""
    if autograding():
        _observe("equal", lambda: actual, what, hint)
        return
    _decide("equal", actual, expected, what, hint)


def _decide(kind: str, actual: Any, expected: Any, what: str, hint: str, atol: float = 1e-5, rtol: float = 1e-5) -> None:
    """The local verdict: the grader's own comparison (coursekit.observations.compare) on the same data."""
    try:
        got = decode(encode(actual))
    except (TypeError, ValueError) as err:
        raise AssertionError(f"{what} is not a value the grader can read ({err}); return a tensor, an array "
                             "or plain Python values." + (f" Hint: {hint}" if hint else "")) from None
    ok, why = compare(kind, got, decode(encode(expected)), atol, rtol)
    if not ok:
        raise AssertionError(f"{what} {why}." + (f" Hint: {hint}" if hint else ""))


def check_raises(
    fn: Callable, exc_type: type[BaseException], *args: Any, what: str = "", hint: str = "", **kwargs: Any
) -> BaseException:
    """Assert that calling `fn(*args, **kwargs)` raises `exc_type`; return the exception."""
    name = what or f"{getattr(fn, '__name__', 'the function')}{args!r}"
    if autograding():
        raised: BaseException | None = None
        try:
            call(fn, *args, **kwargs)
        except Exception as err:  # noqa: BLE001 - any exception is an observation
            raised = err
        _observe("raises", lambda: isinstance(raised, exc_type), name, hint,
                 expects=exc_type.__name__, raised=type(raised).__name__ if raised is not None else "")
        return raised
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
    if autograding():
        _observe("true", lambda: _truth(condition), message, "")
        return
    if type(condition) is not bool:
        if isinstance(condition, np.bool_) or (_from_library(condition) and getattr(condition, "shape", None) == ()):
            condition = bool(to_numpy(condition))
        else:
            raise AssertionError(f"{message} (the check needs True or False, got a {type(condition).__name__})")
    if not condition:
        raise AssertionError(message)


def expect(actual: Any, what: str = "result", atol: float = 1e-5, rtol: float = 1e-5, hint: str = "") -> None:
    """Report `actual` for the grader to compare with the instructor's run (hidden tests use this:
    the right value never enters the kernel). Arrays and numbers are compared with `atol`/`rtol`,
    everything else exactly. Outside autograding there is nothing to compare with: a no-op."""
    if autograding():
        _observe("value", lambda: actual, what, hint, atol=atol, rtol=rtol)


def _squash(text: str) -> str:
    return "".join(text.lower().split())


def read_choices(answers: Any, keys: Sequence[str], choices: Sequence[str], what: str = "answers") -> dict[str, str]:
    """A student's predictions as ``{key: choice}``, for a test cell to check one by one.

    `answers` is a dict (any mapping) with an entry for every one of `keys`, each one of `choices`.
    Case and spacing do not matter, in keys or values ("neither", " Neither" and "NEITHER" are one
    answer): a right prediction never fails on its spelling. Extra keys are ignored. Raises an
    AssertionError that names every missing key and every value that is not a choice.
    """
    canon = {_squash(c): c for c in choices}

    def choice(value: Any) -> str | None:
        return canon.get(_squash(value)) if isinstance(value, str) else None

    return _read(answers, keys, what, choice, f"one of {', '.join(map(repr, choices))}")


def _read(answers: Any, keys: Sequence[str], what: str, convert: Callable[[Any], Any], wanted: str) -> dict:
    """`answers[key]` for every key (matched in any case and spacing), converted; None from `convert`
    means the value is not what the question asks for."""
    example = ", ".join(f"{k!r}: ..." for k in list(keys)[:2])
    if not (hasattr(answers, "keys") and hasattr(answers, "__getitem__")):
        raise AssertionError(f"{what} should be a dict like {{{example}}}; received a {type(answers).__name__}.")
    given: dict[str, Any] = {}
    for k in list(answers.keys()):
        given.setdefault(_squash(str(k)), answers[k])
    out, missing, wrong = {}, [], []
    for key in keys:
        if _squash(key) not in given:
            missing.append(repr(key))
            continue
        value = convert(given[_squash(key)])
        if value is None:
            wrong.append(f"{key!r}: {given[_squash(key)]!r}")
        else:
            out[key] = value
    problems = []
    if missing:
        problems.append(f"no entry for {', '.join(missing)}")
    if wrong:
        problems.append(f"not {wanted}: {', '.join(wrong)}")
    if problems:
        raise AssertionError(f"{what}: {'; '.join(problems)}. Write {wanted} for each of {', '.join(map(repr, keys))}.")
    return out


def read_counts(answers: Any, keys: Sequence[str], what: str = "answers") -> dict[str, int]:
    """A student's predicted counts as ``{key: int}``: like `read_choices`, but each value is a whole
    number (an int, a numpy integer, or a float such as ``29.0``). Keys match in any case and spacing."""
    return _read(answers, keys, what, _whole, "a whole number")


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    return None


# ---------------------------------------------------------------- observations (autograding)
def autograding() -> bool:
    """Whether nbgrader is autograding this kernel (then checks report instead of deciding)."""
    return os.environ.get("NBGRADER_EXECUTION") == "autograde" and os.environ.get(VERDICTS_ENV_VAR) != "kernel"


def _observe(kind: str, value: Callable[[], Any], what: str, hint: str, **fields: float | str) -> None:
    try:
        data = encode(value())
    except Exception as err:  # noqa: BLE001 - whatever the student's value is, the check must report
        data = {"__unencodable__": f"{type(err).__name__}"}
    obs = {"kind": kind, "what": str(what), "hint": str(hint), "line": _cell_line(), "value": data,
           **{k: v if isinstance(v, str) else float(v) for k, v in fields.items()}}
    from IPython.display import publish_display_data

    publish_display_data({OBSERVATION_MIME: obs})


def _cell_line() -> int:
    """The line of the test cell that made the check: the line of the cell's own top-level code
    (its innermost ``<module>`` frame) that is running. A check inside a helper function, defined
    in the visible part of a cell and called from its hidden block, is on the hidden block's line,
    so the grader treats it as hidden; without a ``<module>`` frame, the first frame outside this
    module."""
    frame = sys._getframe(1)
    here = frame.f_code.co_filename
    while frame is not None and frame.f_code.co_filename == here:
        frame = frame.f_back
    first = frame
    while frame is not None and frame.f_code.co_name != "<module>":
        frame = frame.f_back
    frame = frame or first
    return frame.f_lineno if frame is not None else 0


def _copies(x: Any) -> Any:
    """Copies of the arrays and tensors in `x` (also inside lists, tuples and dicts)."""
    if isinstance(x, np.ndarray):
        return x.copy()
    if hasattr(x, "clone") and hasattr(x, "detach"):  # torch.Tensor: same requires_grad, new storage
        return x.clone()
    if type(x).__module__.startswith(("tensorflow", "keras")) and hasattr(x, "shape") and hasattr(x, "numpy"):
        return copy.copy(x) if not hasattr(x, "assign") else x  # tf tensors are immutable; variables stay shared
    if type(x) in (list, tuple):
        return type(x)(_copies(v) for v in x)
    if type(x) is dict:
        return {k: _copies(v) for k, v in x.items()}
    return x
