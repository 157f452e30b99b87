"""Observations: the plain data a check reports, and the one set of rules that compares them.

`coursekit.grading` (in the student's kernel) encodes what a check observed; while autograding the
grader (`coursekit.autograde.verdicts`, outside the kernel) decodes it and compares it with the
instructor's run. Outside autograding the kernel compares with the same `compare`, so what a
student sees before handing in is what the grader will decide for the visible tests.

Encoded values are JSON: numbers, strings, lists (a tuple and a list of the same items are the same
answer), dicts as key/value pairs, and arrays or tensors as {"__array__": dtype, "shape", "b64"}:
no pickle, nothing that runs code when read. Imports no framework.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np

__all__ = ["encode", "decode", "compare", "DecodeError", "MAX_ELEMENTS"]

# An observation carries at most this many array elements (a check on a bigger array is a test to
# rewrite with a smaller input).
MAX_ELEMENTS = 2**22


def _shape_value(x: Any) -> list:
    if type(x) in (tuple, list):
        return [None if d is None else int(d) for d in x]
    shape = getattr(x, "shape", None)
    if shape is None:
        return [None if d is None else int(d) for d in x]  # torch.Size, TensorShape
    return [None if d is None else int(d) for d in shape]


def _array_value(x: Any) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    elif hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        x = x.numpy()
    return np.asarray(x)


def _truth(x: Any) -> bool:
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return bool(np.asarray(_array_value(x)).all())
    return bool(x)


def encode(x: Any) -> Any:
    """Plain JSON for a value: numbers, strings, lists (tuples too), dicts with string keys, and
    arrays/tensors as {"__array__": dtype, "shape", "b64"}; no pickle, nothing executable."""
    if x is None or isinstance(x, (bool, str)):
        return x if not isinstance(x, str) else str(x)
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return int(x)
    if isinstance(x, (float, np.floating)):
        f = float(x)
        return f if math.isfinite(f) else {"__float__": repr(f)}
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, (list, tuple)):
        return [encode(v) for v in x]
    if isinstance(x, dict):
        return {"__dict__": [[encode(k), encode(v)] for k, v in x.items()]}
    if hasattr(x, "shape") or isinstance(x, np.ndarray):
        a = np.ascontiguousarray(_array_value(x))
        if a.dtype == object or a.dtype.kind not in "biufc":
            raise TypeError(f"an array of {a.dtype}")
        if a.size > MAX_ELEMENTS:
            raise ValueError(f"an array of {a.size} elements")
        return {"__array__": a.dtype.str, "shape": list(a.shape), "b64": base64.b64encode(a.tobytes()).decode()}
    raise TypeError(type(x).__name__)


class DecodeError(ValueError):
    """An observation that is not the plain data `coursekit.grading.encode` writes."""


def decode(x: Any) -> Any:
    """The value `coursekit.grading.encode` wrote: lists stay lists (a tuple and a list of the same
    items are the same answer), arrays come back as numpy arrays."""
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, list):
        return [decode(v) for v in x]
    if isinstance(x, dict):
        if "__array__" in x:
            dtype = np.dtype(str(x["__array__"]))
            if dtype.kind not in "biufc":
                raise DecodeError(f"array of {dtype}")
            shape = tuple(int(d) for d in x.get("shape", []))
            raw = base64.b64decode(str(x.get("b64", "")), validate=True)
            if len(raw) != dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
                raise DecodeError("array bytes do not match its shape")
            return np.frombuffer(raw, dtype=dtype).reshape(shape)
        if "__float__" in x:
            return float(str(x["__float__"]))
        if "__dict__" in x:
            return {_hashable(decode(k)): decode(v) for k, v in x["__dict__"]}
        if "__unencodable__" in x:
            return _Unencodable(str(x["__unencodable__"])[:60])
    raise DecodeError(f"not an observation value: {type(x).__name__}")


class _Unencodable:
    """A value the kernel could not report (an object of the student's own class, say)."""

    def __init__(self, why: str) -> None:
        self.why = why

    def __repr__(self) -> str:
        return f"<a value that is not data ({self.why})>"


def _hashable(x: Any) -> Any:
    return tuple(_hashable(v) for v in x) if isinstance(x, list) else x


def _numeric(x: Any) -> np.ndarray | None:
    """`x` as a float array if it is numbers (an array, a number, or nested lists of numbers)."""
    if isinstance(x, np.ndarray):
        return x.astype(np.float64) if x.dtype.kind in "biuf" else None
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return None
    if isinstance(x, (int, float)):
        return np.asarray(float(x))
    if isinstance(x, list):
        try:
            a = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            return None
        return a
    return None


def _close(got: Any, want: Any, atol: float, rtol: float) -> tuple[bool, str]:
    g, w = _numeric(got), _numeric(want)
    if w is None:
        return _equal(got, want)
    if g is None:
        return False, f"is {_short(got)}, expected numbers of shape {tuple(w.shape)}"
    if g.shape != w.shape:
        return False, f"has shape {tuple(g.shape)}, expected {tuple(w.shape)}"
    if g.size == 0 or np.allclose(g, w, atol=atol, rtol=rtol, equal_nan=False):
        return True, ""
    diff = np.abs(g - w)
    worst = np.unravel_index(np.nanargmax(np.where(np.isnan(diff), np.inf, diff)), diff.shape) if diff.ndim else ()
    return False, (f"differs from the expected values: max abs difference {np.nanmax(diff):.3g} at index "
                   f"{tuple(int(i) for i in worst)} (tolerance atol={atol:g}, rtol={rtol:g})")


def _equal(got: Any, want: Any) -> tuple[bool, str]:
    if isinstance(want, np.ndarray) or isinstance(got, np.ndarray):
        g, w = _numeric(got), _numeric(want)
        ok = g is not None and w is not None and g.shape == w.shape and bool(np.array_equal(g, w))
        return ok, "" if ok else f"is {_short(got)}, expected {_short(want)}"
    if type(got) is bool or type(want) is bool:  # True == 1 in Python; not as an answer
        ok = type(got) is type(want) and got == want
    elif isinstance(got, float) and isinstance(want, float) and math.isnan(got) and math.isnan(want):
        ok = True
    else:
        ok = not isinstance(got, _Unencodable) and _plain_equal(got, want)
    return ok, "" if ok else f"is {_short(got)}, expected {_short(want)}"


def _plain_equal(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_plain_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_plain_equal(a[k], b[k]) for k in a)
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _short(x: Any, limit: int = 120) -> str:
    if isinstance(x, np.ndarray):
        text = f"an array of shape {tuple(x.shape)}"
    else:
        text = repr(x)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def compare(kind: str, got: Any, want: Any, atol: float = 1e-5, rtol: float = 1e-5) -> tuple[bool, str]:
    """(whether `got` passes a check of `kind` against `want`, why not: a phrase after the label)."""
    if kind in ("close", "value"):
        return _close(got, want, atol, rtol)
    if kind == "shape":
        ok = isinstance(got, list) and _plain_equal(got, want)
        return ok, "" if ok else f"has shape {_short(tuple(got) if isinstance(got, list) else got)}, expected {tuple(want)}"
    if kind == "true":
        ok = got is True
        return ok, "" if ok else "is not the case"
    if kind == "raises":
        ok = got is True
        return ok, "" if ok else "did not raise the expected error"
    return _equal(got, want)  # "equal"


