"""`coursekit report LESSON` (coursekit.report): item statistics of a graded lesson, on a synthetic
class written straight into an nbgrader gradebook, whose every number is known. The grader's side
(what it records for the report) is tested on a real grading in tests/test_feedback_export.py."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest

from conftest import copy_course

from coursekit.autograde.results import CheckResult, read_results, record_results
from coursekit.notebooks import Course
from coursekit.report import discrimination

LESSON = "01-shape-alignment"
POINTS = {"ex1-tests": 2.0, "ex2-tests": 3.0, "ex3-tests": 4.0}
# pytorch: 10 students; ex1 always full (constant: discrimination n/a), ex2 and ex3 vary
EX2 = [3, 3, 3, 0, 3, 0, 3, 0, 0, 3]
EX3 = [4, 4, 2, 0, 4, 0, 2, 0, 0, 4]
# keras: 3 students (k0 also handed in pytorch, worse there)


def _synthetic_class(root):
    from nbgrader.api import Gradebook

    copy_course(root)  # a real course (solutions/, lessons/), with a gradebook written here
    (root / "submitted").mkdir()
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        gb.add_assignment(LESSON)
        for nb in ("pytorch", "keras"):
            gb.update_or_create_notebook(nb, LESSON)
            for cell, points in POINTS.items():
                gb.update_or_create_grade_cell(cell, nb, LESSON, max_score=points, cell_type="code")
        scores = {("p%d" % i, "pytorch"): {"ex1-tests": 2, "ex2-tests": EX2[i], "ex3-tests": EX3[i]} for i in range(10)}
        scores[("k0", "pytorch")] = {"ex1-tests": 0, "ex2-tests": 0, "ex3-tests": 0}
        scores[("k0", "keras")] = {"ex1-tests": 2, "ex2-tests": 3, "ex3-tests": 4}
        scores[("k1", "keras")] = {"ex1-tests": 2, "ex2-tests": 0, "ex3-tests": 0}
        scores[("k2", "keras")] = {"ex1-tests": 0, "ex2-tests": 3, "ex3-tests": 4}
        students = sorted({s for s, _ in scores} | {"zz-absent"})
        for s in students:
            gb.add_student(s)
        for s in sorted({s for s, _ in scores}):
            gb.add_submission(LESSON, s)
        for (s, nb), by_cell in scores.items():
            for cell, value in by_cell.items():
                grade = gb.find_grade(cell, nb, LESSON, s)
                grade.auto_score = float(value)
        gb.db.commit()
    course = Course(root)
    failing = [CheckResult("p%d" % i, "pytorch", "ex2-tests", "check", "resize_map(...) (a hidden test)")
               for i in (3, 5, 7, 8)]
    failing += [CheckResult("p%d" % i, "pytorch", "ex3-tests", "check", label)
                for i, label in ((3, "make_projection(6, 4) params"), (5, "make_projection(6, 4) params"),
                                 (7, "make_projection(6, 4) params"), (8, "fuse output shape"))]
    failing += [CheckResult("p8", "pytorch", "ex3-tests", "limit", "time"),
                CheckResult("k0", "pytorch", "ex1-tests", "check", "not counted: k0's keras notebook counts")]
    graded = [CheckResult(s, nb, "", "graded", "") for s, nb in scores]
    by_notebook = {}
    for r in graded + failing:
        by_notebook.setdefault((r.student, r.notebook), []).append(r)
    record_results(course, LESSON, by_notebook)
    return course


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return _synthetic_class(tmp_path_factory.mktemp("report") / "course")


def test_discrimination_is_the_corrected_item_total_correlation():
    item, rest = [1.0, 0.0, 1.0, 0.0, 1.0], [5.0, 1.0, 4.0, 2.0, 2.0]
    assert discrimination(item, rest) == pytest.approx(np.corrcoef(item, rest)[0, 1])
    assert discrimination([2.0, 2.0, 2.0], [1.0, 3.0, 0.0]) is None  # constant item
    assert discrimination([1.0, 0.0], [1.0, 0.0]) is None  # too few students


def test_recorded_results_are_replaced_per_student_and_notebook(synthetic):
    before = read_results(synthetic, LESSON)
    assert len(before) == 14 + 10  # 14 graded notebooks, 10 failures and limits
    p3 = CheckResult("p3", "pytorch", "", "graded", "")
    record_results(synthetic, LESSON, {("p3", "pytorch"): [p3]})  # p3 regraded, all passed
    try:
        after = read_results(synthetic, LESSON)
        assert len(after) == 24 - 2 and [r for r in after if r.student == "p3"] == [p3]
    finally:
        record_results(synthetic, LESSON, {("p3", "pytorch"): [r for r in before if r.student == "p3"]})


def test_the_report_gives_the_known_numbers(synthetic, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "coursekit.cli", "--root", str(synthetic.root), "report", LESSON,
                           "--to", str(tmp_path / "rep")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "rep/index.html" in proc.stdout
    with open(tmp_path / "rep" / "items.csv", newline="") as fh:
        rows = {(r["notebook"], r["exercise"]): r for r in csv.DictReader(fh)}
    p = {ex: rows["pytorch", ex] for ex in POINTS}
    assert p["ex1-tests"]["students"] == "10" and p["ex1-tests"]["mean"] == "2.000"
    assert p["ex1-tests"]["full_marks_share"] == "1.000" and p["ex1-tests"]["discrimination"] == "n/a"
    assert float(p["ex2-tests"]["mean"]) == pytest.approx(np.mean(EX2), abs=5e-4)
    assert float(p["ex2-tests"]["full_marks_share"]) == pytest.approx(0.6, abs=5e-4)
    total = np.array(EX2) + np.array(EX3) + 2
    want = np.corrcoef(EX3, total - np.array(EX3))[0, 1]
    assert float(p["ex3-tests"]["discrimination"]) == pytest.approx(want, abs=5e-4)
    assert float(p["ex3-tests"]["full_marks_share"]) == pytest.approx(0.4, abs=5e-4)
    assert p["ex2-tests"]["top_failing_checks"] == "resize_map(...) (a hidden test) (4)"
    assert p["ex3-tests"]["top_failing_checks"] == "make_projection(6, 4) params (3) | fuse output shape (1)"
    assert p["ex1-tests"]["top_failing_checks"] == ""  # k0's pytorch notebook does not count
    k = {ex: rows["keras", ex] for ex in POINTS}
    assert k["ex1-tests"]["students"] == "3" and float(k["ex2-tests"]["mean"]) == pytest.approx(2.0, abs=5e-4)
    index = (tmp_path / "rep" / "index.html").read_text()
    assert "Handed in nothing (1)" in index and "zz-absent" in index
    assert "Handed in both notebooks (1)" in index and "k0 (keras counts)" in index
    page = (tmp_path / "rep" / "pytorch.html").read_text()
    assert "time limit: 1 (p8)" in page and "data:image/png;base64," in page
    assert "10 students; mean score 5.80 of 9." in page


def test_report_refuses_a_lesson_nobody_was_graded_on(synthetic):
    proc = subprocess.run([sys.executable, "-m", "coursekit.cli", "--root", str(synthetic.root), "report",
                           "02-concat-failure-modes"], capture_output=True, text=True, timeout=300)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("coursekit: error:"), proc.stderr
    assert "02-concat-failure-modes" in lines[0]


def test_export_lists_only_the_notebooks_a_student_handed_in(synthetic, tmp_path):
    """nbgrader gives every notebook of a lesson a submission, 0 where nothing was handed in; the
    exports list what the grader recorded as graded (p0: pytorch only; k0: both)."""
    out = tmp_path / "grades.csv"
    proc = subprocess.run([sys.executable, "-m", "coursekit.cli", "--root", str(synthetic.root), "export", "--to",
                           str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(out, newline="") as fh:
        notebooks = {(r["student_id"], r["notebook"]) for r in csv.DictReader(fh)}
    assert {nb for s, nb in notebooks if s == "p0"} == {"pytorch"}
    assert {nb for s, nb in notebooks if s == "k0"} == {"pytorch", "keras"}
    assert {nb for s, nb in notebooks if s == "k1"} == {"keras"}
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,username\n" + "".join(f"{s},{s}\n" for s in sorted({s for s, _ in notebooks})))
    proc = subprocess.run([sys.executable, "-m", "coursekit.cli", "--root", str(synthetic.root), "export", "--format",
                           "moodle", "--roster", str(roster), "--to", str(tmp_path / "m.csv")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "handed in both notebooks, the better one counts: k0/01-shape-alignment" in proc.stdout
    with open(tmp_path / "m.csv", newline="") as fh:
        table = {r["Username"]: r[LESSON] for r in csv.DictReader(fh)}
    assert table["k0"] == "9" and table["k1"] == "2" and table["p3"] == "2"


def test_the_reader_trusts_what_a_graded_notebook_holds(tmp_path):
    """results_of_notebook believes the notes in a notebook: only the grader may write them, so
    BoundedExecute drops a submission's own before it grades (tests/test_feedback_export.py grades one
    that plants them)."""
    import nbformat

    from coursekit.autograde.results import METADATA_KEY, results_of_notebook

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("check()")
    cell.metadata["nbgrader"] = {"grade_id": "ex1-tests", "grade": True, "points": 2}
    cell.metadata[METADATA_KEY] = {"failed": ["FORGED check"]}
    nb.cells.append(cell)
    nb.metadata[METADATA_KEY] = {"limits": ["the kernel used more than 10 MiB of memory and was stopped"]}
    path = tmp_path / "pytorch.ipynb"
    nbformat.write(nb, path)
    assert results_of_notebook(path, "ann", "pytorch") == [
        CheckResult("ann", "pytorch", "", "graded", ""), CheckResult("ann", "pytorch", "", "limit", "memory"),
        CheckResult("ann", "pytorch", "ex1-tests", "check", "FORGED check")]
