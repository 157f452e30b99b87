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

import re
from dataclasses import dataclass
from typing import Any

from nbformat.notebooknode import NotebookNode

from ..observations import DecodeError, compare, decode

__all__ = ["Verdict", "judge", "verdict_outputs", "stopped_by", "HIDDEN_BEGIN", "HIDDEN_END", "hidden_lines"]

HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_END = "### END HIDDEN TESTS"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,60}$")


@dataclass
class Verdict:
    passed: bool
    checks: int
    message: str = ""  # the first failure, one line
    details: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()  # the failing checks' labels: the instructor's words, no student values


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


def judge(expected: list[dict], observed: list[Any], stopped: str | None = None) -> Verdict:
    """Compare a test cell's observations with the instructor's run of the same cell.

    `expected`: the instructor run's records (kind, what, hint, atol, rtol, hidden, value).
    `observed`: the raw observation payloads of the student's run, in order (untrusted).
    `stopped`: the name of the exception that ended the student's cell early, if any."""
    if not expected:  # a record that asks nothing would pass anything: never trust it
        return Verdict(False, 0, "the instructor's run made no check in this test cell; the grader cannot judge it "
                                 "(re-record: delete .coursekit/expected and grade again)",
                       failed=("no check in the instructor's run",))
    failures: list[str] = []
    labels: list[str] = []  # the label of each failure, in step with `failures`
    for i, want in enumerate(expected):
        label = want.get("what") or f"check {i + 1}"
        hidden = bool(want.get("hidden"))
        where = f"{label} (a hidden test)" if hidden else label
        hint = f" Hint: {want['hint']}" if want.get("hint") else ""
        if i >= len(observed):
            why = f"the test cell stopped with {stopped} before this check" if stopped else "this check was not reached"
            labels.append(where)
            failures.append(f"{where}: {why}.{hint}")
            break
        got = observed[i]
        if isinstance(got, dict) and got.get("kind") == "unattempted":
            name = str(got.get("what", ""))
            name = name if _IDENT.match(name) else "the function"
            labels.append(where)
            failures.append(f"{where}: {name} still raises NotImplementedError: replace the "
                            "`raise NotImplementedError()` line with your code.")
            break
        if not isinstance(got, dict) or got.get("kind") != want["kind"]:
            labels.append(where)
            failures.append(f"{where}: the checks did not run in the test's order (a check was skipped or added).")
            break
        try:
            value = decode(got.get("value"))
        except (DecodeError, ValueError, TypeError) as err:
            labels.append(where)
            failures.append(f"{where}: the reported value is not plain data ({err}).")
            continue
        ok, why = compare(want["kind"], value, decode(want["value"]), float(want.get("atol", 1e-5)),
                           float(want.get("rtol", 1e-5)))
        if not ok and want["kind"] == "raises" and _IDENT.match(str(want.get("expects", ""))):
            # the exception's name is the instructor's; what was raised instead is the student's own
            raised = str(got.get("raised", ""))
            why = f"did not raise {want['expects']}" + (f" (it raised {raised})" if _IDENT.match(raised) else "")
        if not ok:
            labels.append(where)
            failures.append(f"{where}: wrong.{hint}" if hidden else f"{where} {why}.{hint}")
    if len(observed) > len(expected) and not failures:
        failures.append(f"the test cell reported {len(observed)} checks where the test makes {len(expected)}: "
                        "extra observations were sent from the notebook.")
        labels.append("extra checks reported")
    if failures:
        return Verdict(False, len(expected), failures[0], tuple(failures), tuple(labels))
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
