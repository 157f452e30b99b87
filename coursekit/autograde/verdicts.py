"""Verdicts decided outside the student's kernel.

While autograding, a test cell's checks (`coursekit.grading`) only report observations: the values
the student's code produced, as plain JSON. A clean run of the instructor's solution, in its own
sandboxed kernel (`coursekit.autograde.expected`), reported the same checks in the same order. A test
cell passes only when every check of that run was observed exactly once, in order, of the same kind,
and matched it — with the tolerances, labels and hints *of the instructor's run*: the kernel supplies
values, never rules. The verdict replaces everything the kernel put in the cell, so a forged pass
message, a swallowed error or an extra observation is worth nothing.

What a failing verdict says is the grader's own text: the instructor's label and hint, and for a
visible check the values; for a hidden check neither values nor code (those are the instructor's).
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from nbformat.notebooknode import NotebookNode

__all__ = ["Verdict", "decode", "judge", "verdict_outputs", "HIDDEN_BEGIN", "HIDDEN_END", "hidden_lines"]

HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_END = "### END HIDDEN TESTS"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,60}$")


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


@dataclass
class Verdict:
    passed: bool
    checks: int
    message: str = ""  # the first failure, one line
    details: tuple[str, ...] = ()


def hidden_lines(source: str) -> set[int]:
    """1-based line numbers of a cell's source that lie inside its hidden-tests block."""
    inside, out = False, set()
    for i, line in enumerate(source.splitlines(), start=1):
        if HIDDEN_BEGIN in line:
            inside = True
        elif HIDDEN_END in line:
            inside = False
        elif inside:
            out.add(i)
    return out


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


def _compare(kind: str, got: Any, want: Any, atol: float, rtol: float) -> tuple[bool, str]:
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


def judge(expected: list[dict], observed: list[Any], stopped: str | None = None) -> Verdict:
    """Compare a test cell's observations with the instructor's run of the same cell.

    `expected`: the instructor run's records (kind, what, hint, atol, rtol, hidden, value).
    `observed`: the raw observation payloads of the student's run, in order (untrusted).
    `stopped`: the name of the exception that ended the student's cell early, if any."""
    failures: list[str] = []
    for i, want in enumerate(expected):
        label = want.get("what") or f"check {i + 1}"
        hidden = bool(want.get("hidden"))
        where = f"{label} (a hidden test)" if hidden else label
        hint = f" Hint: {want['hint']}" if want.get("hint") else ""
        if i >= len(observed):
            why = f"the test cell stopped with {stopped} before this check" if stopped else "this check was not reached"
            failures.append(f"{where}: {why}.{hint}")
            break
        got = observed[i]
        if not isinstance(got, dict) or got.get("kind") != want["kind"]:
            failures.append(f"{where}: the checks did not run in the test's order (a check was skipped or added).")
            break
        try:
            value = decode(got.get("value"))
        except (DecodeError, ValueError, TypeError) as err:
            failures.append(f"{where}: the reported value is not plain data ({err}).")
            continue
        ok, why = _compare(want["kind"], value, decode(want["value"]), float(want.get("atol", 1e-5)),
                           float(want.get("rtol", 1e-5)))
        if not ok:
            failures.append(f"{where}: wrong.{hint}" if hidden else f"{where} {why}.{hint}")
    if len(observed) > len(expected) and not failures:
        failures.append(f"the test cell reported {len(observed)} checks where the test makes {len(expected)}: "
                        "extra observations were sent from the notebook.")
    if failures:
        return Verdict(False, len(expected), failures[0], tuple(failures))
    return Verdict(True, len(expected))


def stopped_by(outputs: list) -> str | None:
    """The exception name of the kernel's error output in a cell (a bare identifier, nothing more:
    the message is the kernel's text and could carry anything)."""
    for out in outputs:
        if out.get("output_type") == "error":
            name = str(out.get("ename", ""))
            return name if _IDENT.match(name) else "an error"
    return None


def verdict_outputs(verdict: Verdict) -> list[NotebookNode]:
    """The test cell's outputs: the grader's verdict, nothing from the kernel."""
    if verdict.passed:
        return [NotebookNode(output_type="stream", name="stdout",
                             text=f"All {verdict.checks} checks passed (decided by the grader).\n")]
    more = len(verdict.details) - 1
    lines = [f"\x1b[0;31mCheckFailed\x1b[0m: {verdict.message}"]
    lines += [f"  also: {d}" for d in verdict.details[1:4]]
    if more > 3:
        lines.append(f"  ... and {more - 3} more.")
    return [NotebookNode(output_type="error", ename="CheckFailed", evalue=verdict.message, traceback=lines)]
