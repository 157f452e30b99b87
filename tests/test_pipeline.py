"""The nbgrader pipeline end to end: lessons/ in sync, no solutions leaked, and autograde scores.

For every lesson and framework, one `coursekit grade` run (which drives `nbgrader autograde`) must
give the solution full marks, the untouched student notebook 0, a planted wrong answer exactly the
full marks minus its exercise's points, and every honest correct answer of the corpus (tests/honest/)
full marks. Wrong answers are planted in alternate exercises of two submissions whose other
exercises hold the corpus' first honest answers, so each wrong answer's neighbours are checked
unharmed and every first honest answer is graded once without a notebook execution of its own; the
corpus' further answers fill one submission per style. The solved notebook, as autograde executed
it, and the instructor run the grader compared it with must also run cleanly (no error, nothing on
stderr, the device line, a figure); that replaces a separate execution of every instructor notebook,
and test_site builds its pages from those instructor runs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest
from conftest import ROOT, copy_course
from coursekit.autograde.expected import executed_path, record_path
from coursekit.autograde.runner import expected_dir
from coursekit.notebooks import Course
from honest import corpus
from nbtools import answer_ids, make_submission, solution_sources, graded_cells, grade_cell_for
from planted import WRONG

LESSONS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
FRAMEWORKS = {"torch": "pytorch", "keras": "keras"}
HONEST = corpus()
CASES = [(lesson, fw) for lesson in LESSONS for fw in FRAMEWORKS if (ROOT / "solutions" / lesson / f"{FRAMEWORKS[fw]}.ipynb").exists()]


def coursekit(*args: str, cwd=ROOT, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coursekit.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def test_every_lesson_has_both_frameworks():
    assert LESSONS, "no lessons in solutions/"
    for lesson in LESSONS:
        names = sorted(p.name for p in (ROOT / "solutions" / lesson).glob("*.ipynb"))
        assert names == ["keras.ipynb", "pytorch.ipynb"], f"{lesson} has {names}"


def test_lessons_are_what_build_makes():
    proc = coursekit("build", "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "in sync" in proc.stdout


@pytest.mark.parametrize("lesson", LESSONS)
def test_student_notebooks_leak_no_solution_or_hidden_test(lesson):
    for release in sorted((ROOT / "lessons" / lesson).glob("*.ipynb")):
        text = release.read_text()
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert marker not in text, f"{release} contains {marker}"
        solutions = solution_sources(ROOT / "solutions" / lesson / release.name)
        student = {c.metadata["nbgrader"]["grade_id"]: c.source
                   for c in nbformat.read(release, as_version=4).cells if "nbgrader" in c.metadata}
        for gid, code in solutions.items():
            assert "raise NotImplementedError()" in student[gid], f"{release}:{gid} is not blanked"
            body = [ln.strip() for ln in code.splitlines()[2:] if ln.strip()]  # skip def + docstring
            leaked = [ln for ln in body if ln in student[gid] and ln not in ("return", "pass")]
            assert not leaked, f"{release}:{gid} leaks solution lines {leaked}"
        assert len(graded_cells(release)) >= 3, f"{release} needs at least 3 graded exercises"


@pytest.mark.parametrize("lesson", LESSONS)
def test_notebooks_are_committed_clean(lesson):
    for folder in ("solutions", "lessons"):
        for nb_path in sorted((ROOT / folder / lesson).glob("*.ipynb")):
            nb = nbformat.read(nb_path, as_version=4)
            dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
            assert not dirty, f"{nb_path} has outputs in cells {dirty}"
            assert set(nb.metadata) <= {"kernelspec", "language_info"}, f"{nb_path} metadata {sorted(nb.metadata)}"


@pytest.mark.slow
@pytest.mark.parametrize("lesson,framework", CASES)
def test_autograde_solution_untouched_and_planted(lesson, framework, tmp_path):
    course = copy_course(tmp_path / "course")
    name = f"{FRAMEWORKS[framework]}.ipynb"
    release = course / "lessons" / lesson / name
    solved = solution_sources(course / "solutions" / lesson / name)
    planted = WRONG[lesson][FRAMEWORKS[framework]]
    honest = HONEST[lesson][FRAMEWORKS[framework]]
    assert set(planted) == set(answer_ids(release)), "plant one wrong answer for every exercise"
    assert set(honest) == set(answer_ids(release)), "give every exercise at least one honest answer (tests/honest/)"
    points = graded_cells(release)

    # Planted wrong answers go in two submissions, alternate exercises in each (1, 3, 5 | 2, 4), and
    # the other exercises of each hold their first honest answer: every wrong answer must zero its own
    # test cell and leave the neighbours it could break (the exercises right before and after it,
    # honestly answered in that submission) at full marks, and every first honest answer is graded once.
    order = answer_ids(release)
    groups = {"wrong-odd": order[0::2], "wrong-even": order[1::2]}
    first = {gid: codes[0] for gid, codes in honest.items()}
    submissions = {"solution": solved, "untouched": {}}
    for student, gids in groups.items():
        submissions[student] = {**solved, **first, **{gid: planted[gid] for gid in gids}}
    for k in range(1, max(len(codes) for codes in honest.values())):  # the further honest answers
        submissions[f"honest-{k}"] = {**solved, **{gid: codes[k] for gid, codes in honest.items() if len(codes) > k}}
    for student, answers in submissions.items():
        make_submission(release, answers, course / "submitted" / student / lesson / name)

    # a class of 5-8 notebooks, each up to the 900 s notebook limit: the run itself may take longer
    # (lesson 05 Keras, whose notebook trains models it builds itself: 901 s on CI's 2 cores)
    proc = coursekit("--root", str(course), "grade", lesson, "--framework", framework, "--json", timeout=2400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["student"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == set(submissions)

    full = sum(points.values())
    for student, row in rows.items():
        assert row["notebook"] == FRAMEWORKS[framework]
        assert row["max_score"] == pytest.approx(full)
        grades = {gid: tuple(v) for gid, v in row["grades"].items() if gid in points}
        assert set(grades) == set(points), f"{student}: graded cells {sorted(grades)}"
        if student == "untouched":
            expected = {gid: 0.0 for gid in points}
        elif student in groups:
            lost = {grade_cell_for(gid) for gid in groups[student]}
            expected = {gid: (0.0 if gid in lost else p) for gid, p in points.items()}
        else:
            expected = dict(points)
        got = {gid: score for gid, (score, _) in grades.items()}
        if got != expected and student != "solution":
            honest_cells = {grade_cell_for(gid) for gid in submissions[student] if submissions[student][gid] != solved[gid]}
            short = sorted(g for g in expected if got[g] < expected[g] and g in honest_cells
                           and g not in {grade_cell_for(x) for x in groups.get(student, ())})
            assert not short, (f"{lesson}/{framework} {student}: honest answers lost points in {short} "
                               f"(tests/honest/): scores {got}, expected {expected}")
        assert got == expected, f"{lesson}/{framework} {student}: scores {got}, expected {expected}"
    check_runs_cleanly(course / "autograded" / "solution" / lesson / name)
    # the instructor run the grader compared with, whose executed notebook test_site's pages show
    check_runs_cleanly(executed_path(record_path(expected_dir(Course(course)), lesson, FRAMEWORKS[framework])))


def check_runs_cleanly(executed_nb) -> None:
    """The solved notebook, as autograde executed it: no error, nothing on stderr (nbgrader fails a
    test cell that writes there, so a framework warning would cost students points), coursekit's
    one device line first, and at least one figure."""
    nb = nbformat.read(executed_nb, as_version=4)
    outputs = [(i, o) for i, c in enumerate(nb.cells) if c.cell_type == "code" for o in c.outputs]
    errors = [(i, o.get("ename"), o.get("evalue", "")[:200]) for i, o in outputs if o.get("output_type") == "error"]
    assert not errors, f"{executed_nb}: cells raised {errors}"
    stderr = [(i, o["text"][:300]) for i, o in outputs if o.get("name") == "stderr"]
    assert not stderr, f"{executed_nb}: cells wrote to stderr: {stderr}"
    first = next(o for _, o in outputs if o.get("output_type") == "stream")
    assert first["text"].startswith("coursekit: "), first["text"]
    assert " on CPU" in first["text"] or " on CUDA" in first["text"] or " on GPU" in first["text"]
    images = sum(1 for _, o in outputs if "image/png" in o.get("data", {}))
    assert images >= 1, f"{executed_nb}: each lesson shows at least one figure"


@pytest.mark.parametrize("notebook", ["pytorch", "keras"])
def test_single_framework_release(notebook, tmp_path):
    """A torch-only (or keras-only) class releases just that notebook (COURSEKIT_NOTEBOOK_ID)."""
    import os

    course = copy_course(tmp_path / "course")
    env = dict(os.environ, COURSEKIT_NOTEBOOK_ID=notebook)
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", LESSONS[0], "--no-db",
                           f"--CourseDirectory.release_directory={tmp_path / 'release'}"],
                          cwd=course, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    released = sorted(p.name for p in (tmp_path / "release" / LESSONS[0]).glob("*.ipynb"))
    assert released == [f"{notebook}.ipynb"]


@pytest.mark.slow
def test_nbgrader_validate_passes_solution_and_fails_untouched(tmp_path):
    """What the student's Validate button runs. nbgrader validate exits 0 either way: read its verdict."""
    lesson, name = LESSONS[0], "pytorch.ipynb"
    release = ROOT / "lessons" / lesson / name
    solved, untouched = tmp_path / "solved" / name, tmp_path / "untouched" / name
    make_submission(release, solution_sources(ROOT / "solutions" / lesson / name), solved)
    make_submission(release, {}, untouched)
    verdicts = {}
    for path in (solved, untouched):
        proc = subprocess.run([sys.executable, "-m", "nbgrader", "validate", str(path)], cwd=path.parent,
                              capture_output=True, text=True, timeout=300)
        verdicts[path.parent.name] = proc.stdout + proc.stderr
    assert "Success! Your notebook passes all the tests." in verdicts["solved"], verdicts["solved"][-2000:]
    assert "VALIDATION FAILED" in verdicts["untouched"], verdicts["untouched"][-2000:]
    assert "NotImplementedError" in verdicts["untouched"]


@pytest.mark.slow
def test_parallel_grading_matches_serial_and_resumes(tmp_path):
    """`coursekit grade --jobs 2` gives nbgrader's serial scores, writes one gradebook without lock
    errors, and a second run skips what is graded unless --force."""
    lesson, name = LESSONS[0], "pytorch.ipynb"
    courses = {mode: copy_course(tmp_path / mode) for mode in ("serial", "parallel")}
    for course in courses.values():
        release = course / "lessons" / lesson / name
        solved = solution_sources(course / "solutions" / lesson / name)
        wrong_id = answer_ids(release)[1]
        for student, answers in {"ann": solved, "bo": {}, "cy": {**solved, wrong_id: WRONG[lesson]["pytorch"][wrong_id]}}.items():
            make_submission(release, answers, course / "submitted" / student / lesson / name)
    serial = coursekit("--root", str(courses["serial"]), "grade", lesson, "--framework", "torch", "--json")
    parallel = coursekit("--root", str(courses["parallel"]), "grade", lesson, "--framework", "torch", "--json", "--jobs", "2")
    assert serial.returncode == 0, serial.stderr[-2000:]
    assert parallel.returncode == 0, parallel.stderr[-2000:]
    assert "locked" not in parallel.stderr.lower()
    assert json.loads(parallel.stdout) == json.loads(serial.stdout)
    # what the grader keeps for `coursekit report` is the same either way (the recorder passes it on)
    from coursekit.autograde.results import read_results
    from coursekit.notebooks import Course

    kept = {mode: sorted(read_results(Course(course), lesson), key=repr) for mode, course in courses.items()}
    assert kept["parallel"] == kept["serial"]
    assert {(r.student, r.kind) for r in kept["serial"]} == {("ann", "graded"), ("bo", "graded"), ("cy", "graded"),
                                                            ("bo", "check"), ("cy", "check")}
    scores = {r["student"]: r["score"] for r in json.loads(parallel.stdout)}
    assert scores["ann"] == max(scores.values()) and scores["bo"] == 0 and 0 < scores["cy"] < scores["ann"]

    again = coursekit("--root", str(courses["parallel"]), "grade", lesson, "--framework", "torch", "--json", "--jobs", "2")
    assert again.returncode == 0 and "3 already graded" in again.stderr
    assert json.loads(again.stdout) == json.loads(serial.stdout)
