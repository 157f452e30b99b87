"""Regrading visibly: `coursekit grade --force` says whose score it changed, and a lesson edited
since it was registered in the gradebook is not graded on without --force
(coursekit.autograde.versions)."""

from __future__ import annotations

import json
import shutil
import sqlite3

import nbformat
import pytest
from conftest import ROOT, copy_course
from nbtools import make_submission, solution_sources
from planted import WRONG
from test_cli import one_error_line, tree_digest
from test_pipeline import LESSONS, coursekit

from coursekit.autograde.versions import TABLE, notebook_digest

LESSON, NAME = LESSONS[0], "pytorch.ipynb"


def _edit(path, grade_id: str | None = None, points: int | None = None, markdown: str | None = None) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if grade_id and cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            cell.metadata["nbgrader"]["points"] = points
        if markdown and cell.cell_type == "markdown":
            cell.source += markdown
            markdown = None
    nbformat.write(nb, path)


def test_digest_sees_what_grading_reads_and_nothing_else(tmp_path):
    nb_path = tmp_path / NAME
    shutil.copy(ROOT / "solutions" / LESSON / NAME, nb_path)
    digest = notebook_digest(nb_path)
    nb = nbformat.read(nb_path, as_version=4)  # run and re-saved: outputs, counts, ids, metadata
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ran\n")]
    code.execution_count = 7
    code.id = "renamed-id"
    nb.metadata["widgets"] = {"state": {}}
    nbformat.write(nb, nb_path)
    assert notebook_digest(nb_path) == digest
    _edit(nb_path, grade_id="ex1-tests", points=5)
    assert notebook_digest(nb_path) != digest
    assert notebook_digest(tmp_path / "absent.ipynb") == "missing"


@pytest.mark.slow
def test_regrade_prints_changed_scores_and_an_edited_lesson_needs_force(tmp_path):
    course = copy_course(tmp_path / "course")
    release, source = course / "lessons" / LESSON / NAME, course / "solutions" / LESSON / NAME
    solved = solution_sources(source)
    make_submission(release, solved, course / "submitted" / "ann" / LESSON / NAME)
    make_submission(release, {**solved, "ex1-answer": WRONG[LESSON]["pytorch"]["ex1-answer"]},
                    course / "submitted" / "bo" / LESSON / NAME)
    grade = ("--root", str(course), "grade", LESSON, "--framework", "torch")

    proc = coursekit(*grade, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["student"]: r for r in json.loads(proc.stdout)}
    assert (rows["ann"]["score"], rows["bo"]["score"]) == (9, 7)
    assert not any("previous_score" in r for r in rows.values())
    with sqlite3.connect(course / "gradebook.db") as db:  # the version is recorded beside nbgrader's tables
        assert db.execute(f"SELECT assignment, notebook FROM {TABLE}").fetchall() == [(LESSON, "pytorch")]

    # the released notebook edited (a markdown cell): refused, nothing changes
    kept = release.read_bytes()
    _edit(release, markdown="\n\nEdited after grading.")
    before = tree_digest(course)
    one_error_line(coursekit(*grade), f"{LESSON} changed since it was registered", f"(lessons/{LESSON}/{NAME} edited)",
                   "pass --force to regrade", f"coursekit grade {LESSON} --framework torch --force")
    assert tree_digest(course) == before
    release.write_bytes(kept)
    proc = coursekit(*grade)  # back as registered: nothing to do, no error
    assert proc.returncode == 0 and "2 already graded" in proc.stdout, proc.stderr[-2000:]

    # exercise 1 worth 5 points instead of 2 in the source notebook: refused without --force;
    # with it, ann's score changes (9 -> 12) and gets a line, bo's (7, ex1 failed) does not
    _edit(source, grade_id="ex1-tests", points=5)
    one_error_line(coursekit(*grade, "--json"), f"{LESSON} changed", f"(solutions/{LESSON}/{NAME} edited)", "--force")
    proc = coursekit(*grade, "--force")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert "ann pytorch: 9 -> 12" in lines, proc.stdout
    assert not [ln for ln in lines if ln.startswith("bo pytorch:")], proc.stdout
    assert "2 already graded" not in proc.stdout

    # JSON: the changed row carries its previous score; stdout stays pure JSON
    _edit(source, grade_id="ex1-tests", points=3)
    proc = coursekit(*grade, "--force", "--json", "--student", "ann")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (row,) = json.loads(proc.stdout)
    assert (row["student"], row["score"], row["previous_score"]) == ("ann", 10, 12)
    proc = coursekit(*grade)  # the forced run recorded the new version
    assert proc.returncode == 0, proc.stderr[-2000:]
