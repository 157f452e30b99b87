"""Feedback never leaks hidden tests, and one student's feedback never stops the class's
(coursekit.autograde.feedback, `coursekit feedback`).

A failing visible check is the last line before `### BEGIN HIDDEN TESTS` in its cell, so
IPython's traceback, which prints the source around the failing line, showed the marker, the
first hidden test and the grader's file paths. A student's cell that merely contains the marker
text made nbgrader's ClearHiddenTests raise, and with it `coursekit feedback` for everyone.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, copy_course
from nbformat.v4 import new_code_cell, new_notebook, new_output
from nbtools import make_submission, solution_sources
from planted import WRONG
from test_feedback_export import hidden_test_lines
from test_pipeline import LESSONS, coursekit

import coursekit as coursekit_pkg
from coursekit.autograde.feedback import AFTER_HIDDEN_NOTE, REDACTED_NOTE, ClearHiddenTests, RedactOutputs

LESSON, NAME = LESSONS[0], "pytorch.ipynb"
# exercise 1's typical wrong answer: never raises, so the last visible check fails with this hint
HINT = ("concat_shape([(4, 64, 28, 28), (4, 128, 14, 14)], 1) did not raise ValueError. "
        "Hint: 28x28 and 14x14 maps cannot be joined along channels: raise ValueError.")
MARKER = "### BEGIN HIDDEN TESTS"
PRINT_HISTORY = 'print("\\n".join(In))  # every cell run so far, hidden tests included'


# ---------------------------------------------------------------- the preprocessors alone
def _cell(source: str, nbgrader: dict | None = None, outputs=()):
    cell = new_code_cell(source, outputs=list(outputs))
    if nbgrader is not None:
        cell.metadata["nbgrader"] = {"grade_id": "x", "locked": False, "schema_version": 3, "task": False, **nbgrader}
    return cell


def _feedback(nb):
    resources = {}
    for pre in (RedactOutputs(), ClearHiddenTests()):
        nb, resources = pre.preprocess(nb, resources)
    return nb


def test_test_cells_keep_only_the_exception_line_and_student_cells_keep_their_text():
    hidden = "grading.check_equal(secret_case(), 42, 'hidden case')"
    test_source = f"grading.check_true(ok, 'visible hint')\n{MARKER}\n{hidden}\n### END HIDDEN TESTS"
    traceback = ["\x1b[31mAssertionError\x1b[39m  Traceback (most recent call last)",
                 f"----> 1 grading.check_true(ok, 'visible hint')\n      2 {MARKER}\n      3 {hidden}",
                 f"File {ROOT}/coursekit/grading.py:192, in check_true(condition, message)",
                 "\x1b[31mAssertionError\x1b[39m: visible hint"]
    test = _cell(test_source, {"grade": True, "solution": False, "points": 1}, [
        new_output("stream", name="stdout", text="printed by the kernel"),
        new_output("error", ename="AssertionError", evalue="visible hint", traceback=traceback),
        new_output("execute_result", data={"text/plain": "'a value'"}, execution_count=1),
    ])
    answer = _cell(f"# {MARKER} (a student's note)\nx = 1", {"grade": False, "solution": True},
                   [new_output("stream", name="stdout", text="the student's own print\n")])
    added = _cell(PRINT_HISTORY, None, [new_output("stream", name="stdout", text=test_source)])
    early = _cell(PRINT_HISTORY, None, [new_output("stream", name="stdout", text=hidden)])
    nb = _feedback(new_notebook(cells=[early, answer, test, added]))
    early, answer, test, added = nb.cells
    only_the_hint = {"output_type": "error", "ename": "AssertionError", "evalue": "visible hint",
                     "traceback": ["AssertionError: visible hint"]}
    assert [dict(o) for o in test.outputs] == [only_the_hint]
    assert MARKER not in test.source and hidden not in test.source and "visible hint" in test.source
    assert answer.source.startswith(f"# {MARKER}") and answer.outputs[0].text == "the student's own print\n"
    # before any hidden test ran, only an output quoting one goes; after, every output does
    assert early.outputs[0].text == REDACTED_NOTE + "\n"
    assert added.outputs[0].text == AFTER_HIDDEN_NOTE + "\n"


def test_a_message_quoting_hidden_tests_is_replaced():
    """A student's function called by a hidden test can raise with any message, IPython's input
    history included: that message goes, the exception name stays."""
    hidden = "grading.check_equal(secret_case(), 42, 'hidden case')"
    test = _cell(f"{MARKER}\n{hidden}\n### END HIDDEN TESTS", {"grade": True, "solution": False, "points": 1}, [
        new_output("error", ename="ValueError", evalue=f"look: {hidden}", traceback=["..."])])
    (test,) = _feedback(new_notebook(cells=[test])).cells
    assert test.outputs[0].traceback == [f"ValueError: {REDACTED_NOTE}"]


# ---------------------------------------------------------------- a graded class
@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """amy: every answer right, the marker text in her ex2 answer and a last cell printing the
    input history; cal: exercise 1's typical wrong answer (fails the last visible check)."""
    course = copy_course(tmp_path_factory.mktemp("fbsafe") / "course")
    release = course / "lessons" / LESSON / NAME
    solved = solution_sources(course / "solutions" / LESSON / NAME)
    amy = course / "submitted" / "amy" / LESSON / NAME
    make_submission(release, {**solved, "ex2-answer": f"{MARKER}  (amy's note to self)\n{solved['ex2-answer']}"}, amy)
    nb = nbformat.read(amy, as_version=4)
    nb.cells.append(new_code_cell(PRINT_HISTORY))
    nbformat.write(nb, amy)
    make_submission(release, {**solved, "ex1-answer": WRONG[LESSON]["pytorch"]["ex1-answer"]},
                    course / "submitted" / "cal" / LESSON / NAME)
    proc = coursekit("--root", str(course), "grade", LESSON, "--framework", "torch", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    # the leaks are real: the graded notebooks hold what the feedback must not show
    cal = (course / "autograded" / "cal" / LESSON / NAME).read_text()
    assert MARKER in cal
    last = nbformat.read(course / "autograded" / "amy" / LESSON / NAME, as_version=4).cells[-1]
    assert any(line in last.outputs[0].text for line in hidden_test_lines(course / "solutions" / LESSON / NAME))
    return course


def _html(course: Path, student: str) -> str:
    return (course / "feedback" / student / LESSON / "pytorch.html").read_text()


@pytest.mark.slow
def test_feedback_shows_the_hint_and_nothing_hidden(graded):
    course = graded
    proc = coursekit("--root", str(course), "feedback", LESSON)
    assert proc.returncode == 0, proc.stderr[-2000:]
    hidden = hidden_test_lines(course / "solutions" / LESSON / NAME)
    cal, amy = _html(course, "cal"), _html(course, "amy")
    assert HINT in cal
    for text in (cal, amy):
        leaked = [ln for ln in hidden if ln in text]
        assert not leaked, leaked[:3]
        for path in (str(course), str(Path(coursekit_pkg.__file__).parent), "site-packages", "grading.py"):
            assert path not in text
    assert MARKER not in cal
    # amy's marker text is hers and stays; her history printout (after the hidden tests) is replaced,
    # her points are shown
    assert f"{MARKER}  (amy&#39;s note to self)" in amy or f"{MARKER}  (amy's note to self)" in amy
    assert AFTER_HIDDEN_NOTE in amy
    assert "Score: 9.0 / 9.0" in amy or "9.0 / 9.0" in amy


@pytest.mark.slow
def test_one_failing_feedback_costs_nobody_else_theirs(graded):
    """Feedback that still fails (here: amy's graded notebook was damaged after grading) is one
    error line naming her; cal, after her in the class, gets his feedback; exit 1."""
    course = graded
    damaged = course / "autograded" / "amy" / LESSON / NAME
    kept = damaged.read_bytes()
    damaged.write_text('{"cells": [ not json')
    try:
        for folder in (course / "feedback").glob("*"):
            for html in folder.rglob("*.html"):
                html.unlink()
        proc = coursekit("--root", str(course), "feedback", LESSON)
    finally:
        damaged.write_bytes(kept)
    assert proc.returncode == 1, proc.stderr[-2000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1 and errors[0].startswith("coursekit: error: feedback for amy failed"), errors
    assert "NotJSONError" in errors[0] and "the others' feedback was written" in errors[0]
    assert proc.stdout.split() == [f"feedback/cal/{LESSON}/pytorch.html"]
    assert HINT in _html(course, "cal")
    assert not (course / "feedback" / "amy" / LESSON / "pytorch.html").exists()
