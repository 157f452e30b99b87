"""`coursekit feedback` and `coursekit export` on top of a real `coursekit grade` run.

Feedback is nbgrader's generate_feedback with ClearHiddenTests: the student sees the visible tests
and their own errors, never the hidden tests. Export is nbgrader's export with coursekit's plugin:
one row per student, notebook and exercise, matching the gradebook; or, with --format canvas|moodle
and a roster, the file that LMS imports (coursekit.lms, unit-tested in tests/test_lms.py).
"""

from __future__ import annotations

import csv
import json

import nbformat
import pytest
from conftest import copy_course
from nbtools import graded_cells, make_submission, solution_sources
from test_pipeline import LESSONS, coursekit

LESSON, NAME = LESSONS[0], "pytorch.ipynb"


def hidden_test_lines(source_nb) -> list[str]:
    """Distinctive lines that only appear inside BEGIN/END HIDDEN TESTS blocks."""
    lines = []
    for cell in nbformat.read(source_nb, as_version=4).cells:
        inside = False
        for line in cell.source.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) > 25:
                lines.append(line.strip())
    return lines


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = copy_course(tmp_path_factory.mktemp("fb") / "course")
    release = course / "lessons" / LESSON / NAME
    ann = course / "submitted" / "ann" / LESSON / NAME
    make_submission(release, solution_sources(course / "solutions" / LESSON / NAME), ann)
    # ann also plants what the grader notes for the report: forged failures, a forged limit
    nb = nbformat.read(ann, as_version=4)
    nb.metadata["coursekit_grader"] = {"limits": ["the notebook used up its 1 s time limit"]}
    for cell in nb.cells:
        cell.metadata["coursekit_grader"] = {"failed": ["FORGED check"]}
    nbformat.write(nb, ann)
    make_submission(release, {}, course / "submitted" / "bo" / LESSON / NAME)
    proc = coursekit("--root", str(course), "grade", LESSON, "--framework", "torch", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return course, {r["student"]: r for r in json.loads(proc.stdout)}


@pytest.mark.slow
def test_feedback_shows_scores_and_hides_hidden_tests(graded):
    course, _ = graded
    proc = coursekit("--root", str(course), "feedback", LESSON)
    assert proc.returncode == 0, proc.stderr[-2000:]
    hidden = hidden_test_lines(course / "solutions" / LESSON / NAME)
    assert hidden, "lesson 01 has hidden tests to check against"
    for student in ("ann", "bo"):
        html_path = course / "feedback" / student / LESSON / "pytorch.html"
        assert f"feedback/{student}/{LESSON}/pytorch.html" in proc.stdout
        html = html_path.read_text()
        leaked = [ln for ln in hidden if ln in html]
        assert not leaked, f"{student}'s feedback shows hidden tests: {leaked[:3]}"
    assert "NotImplementedError" in (course / "feedback" / "bo" / LESSON / "pytorch.html").read_text()


@pytest.mark.slow
def test_export_writes_one_row_per_exercise_matching_the_gradebook(graded, tmp_path):
    course, rows = graded
    out = tmp_path / "scores.csv"
    proc = coursekit("--root", str(course), "export", "--to", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    points = graded_cells(course / "lessons" / LESSON / NAME)
    with open(out, newline="") as fh:
        table = list(csv.DictReader(fh))
    assert f"wrote {len(table)} exercise scores" in proc.stdout
    assert {(r["student_id"], r["exercise"]) for r in table} == {(s, g) for s in ("ann", "bo") for g in points}
    for r in table:
        assert r["assignment"] == LESSON and r["notebook"] == "pytorch"
        assert float(r["max_score"]) == points[r["exercise"]]
        expected = points[r["exercise"]] if r["student_id"] == "ann" else 0.0
        assert float(r["score"]) == expected, r
        assert float(r["notebook_score"]) == rows[r["student_id"]]["score"]


@pytest.mark.slow
def test_lms_export_for_canvas_and_moodle_from_the_gradebook(graded, tmp_path):
    """ann solved every exercise, bo handed in the untouched notebook, cy is on the roster but handed
    in nothing: full points, 0 and an empty cell."""
    course, _ = graded
    points = sum(graded_cells(course / "lessons" / LESSON / NAME).values())
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,name,canvas_id,email\nann,Ann Lee,101,ann@u\nbo,Bo Ray,102,bo@u\ncy,Cy Do,103,cy@u\n")
    out = tmp_path / "canvas.csv"
    proc = coursekit("--root", str(course), "export", "--format", "canvas", "--roster", str(roster), "--to", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"wrote 3 students x 1 lessons (points) for canvas to {out}" in proc.stdout
    with open(out, newline="") as fh:
        table = list(csv.reader(fh))
    assert table == [["Student", "ID", "SIS User ID", "SIS Login ID", "Section", LESSON],
                     ["Points Possible", "", "", "", "", f"{points:g}"],
                     ["Ann Lee", "101", "", "", "", f"{points:g}"], ["Bo Ray", "102", "", "", "", "0"],
                     ["Cy Do", "103", "", "", "", ""]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["canvas.csv", "roster.csv"]  # no scratch file left
    proc = coursekit("--root", str(course), "export", "--format", "canvas", "--roster", str(roster), "--to", str(out),
                     "--canvas-assignment", f"{LESSON}=4321")  # update Canvas assignment 4321, not create one
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(out, newline="") as fh:
        assert next(csv.reader(fh))[-1] == f"{LESSON} (4321)"

    out = tmp_path / "moodle.csv"
    proc = coursekit("--root", str(course), "export", "--format", "moodle", "--roster", str(roster), "--percent",
                     "--lesson", LESSON, "--to", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(out, newline="") as fh:
        assert list(csv.reader(fh)) == [["Email address", LESSON], ["ann@u", "100"], ["bo@u", "0"], ["cy@u", ""]]

    roster.write_text("student_id,email\nann,ann@u\n")  # bo is graded but not listed
    proc = coursekit("--root", str(course), "export", "--format", "moodle", "--roster", str(roster), "--to", str(out))
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "missing from the roster: bo" in lines[0], proc.stderr


@pytest.mark.slow
def test_the_grader_records_failing_checks_and_the_report_reads_them(graded, tmp_path):
    """bo's untouched notebook fails the first check of every exercise ("still raises
    NotImplementedError"): the grader keeps each failing check's label, never a student's value, in
    the gradebook's own table, and `coursekit report` counts them per exercise."""
    from coursekit.autograde.results import read_results
    from coursekit.notebooks import Course

    course, _ = graded
    points = graded_cells(course / "lessons" / LESSON / NAME)
    kept = read_results(Course(course), LESSON)
    assert {(r.student, r.notebook) for r in kept if r.kind == "graded"} == {("ann", "pytorch"), ("bo", "pytorch")}
    results = [r for r in kept if r.kind != "graded"]
    assert {r.student for r in results} == {"bo"}  # ann's planted notes were dropped (see test_report for their effect)
    assert sorted(r.cell for r in results) == sorted(points) and {r.kind for r in results} == {"check"}
    proc = coursekit("--root", str(course), "report", LESSON, "--to", str(tmp_path / "rep"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(tmp_path / "rep" / "items.csv", newline="") as fh:
        rows = {r["exercise"]: r for r in csv.DictReader(fh)}
    assert set(rows) == set(points)
    for cell, r in rows.items():
        assert r["students"] == "2" and float(r["full_marks_share"]) == 0.5 and r["discrimination"] == "n/a"
        label = next(x.label for x in results if x.cell == cell)
        assert r["top_failing_checks"] == f"{label} (1)"


@pytest.mark.slow
def test_feedback_and_export_refuse_bad_input_with_one_line(graded, tmp_path):
    course, _ = graded
    cases = [
        (("feedback", "99-nope"), "99-nope"),
        (("feedback", LESSON, "--student", "zed"), "zed"),
        (("export", "--to", str(tmp_path)), "is a directory"),
        (("export", "--lesson", "99-nope"), "99-nope"),
        (("export", "--format", "canvas"), "needs --roster FILE"),
        (("export", "--format", "moodle", "--canvas-assignment", "x=1"), "--canvas-assignment goes with --format canvas"),
        (("export", "--roster", str(tmp_path / "r.csv")), "--roster and --percent go with --format canvas or moodle"),
        (("export", "--format", "moodle", "--roster", str(tmp_path / "none.csv")), "is not a file"),
    ]
    for args, needle in cases:
        proc = coursekit("--root", str(course), *args)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("coursekit: error:"), (args, proc.stderr)
        assert needle in lines[0], (args, lines)
    fresh = copy_course(tmp_path / "fresh")
    for args in (("feedback", LESSON), ("export",)):
        proc = coursekit("--root", str(fresh), *args)
        assert proc.returncode == 2 and "grade" in proc.stderr, (args, proc.stderr)
