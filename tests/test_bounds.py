"""Grading bounds (coursekit.autograde.bounds.BoundedExecute): submissions that misbehave keep the points they
earned before the misbehaviour, get the reason in their notebook and feedback, cost nobody else a
point, and let `coursekit grade` finish with exit 0.

The course copy tightens the limits (30 s per cell, 3 GiB of memory) so the suite runs in about two minutes.
The cell limit leaves the memory bomb time to reach its 3 GiB on a loaded machine: at 10 s, one CI run
beside a Keras autograde stopped it at the cell limit first, below the memory limit (so the reason
named the time limit, not memory).
"""

from __future__ import annotations

import json

import nbformat
import pytest
from conftest import copy_course, once_per_run
from nbtools import answer_ids, grade_cell_for, graded_cells, make_submission, solution_sources
from test_pipeline import LESSONS, coursekit

pytestmark = pytest.mark.slow

LESSON, NAME = LESSONS[0], "pytorch.ipynb"
# The tamper audit (tests/test_tamper.py) would refuse to run `import os` or `import signal`; it is
# off here so that these submissions reach the kernel and the bounds are what stops them.
LIMITS = """
c.BoundedExecute.audit = False
c.Execute.timeout = 30
c.BoundedExecute.probe_timeout = 5
c.BoundedExecute.memory_limit_mb = 3072
c.BoundedExecute.max_output_chars = 100_000
"""

STUBBORN_LOOP = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
MEMORY_BOMB = "blocks = []\nwhile True:\n    blocks.append(bytearray(200 * 2**20))"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Graded once per test run, shared by the xdist workers (conftest.once_per_run)."""
    return once_per_run(tmp_path_factory, "bounds", _grade_all)


def _grade_all(base):
    course = copy_course(base / "course")
    (course / "nbgrader_config.py").write_text((course / "nbgrader_config.py").read_text() + LIMITS)
    release = course / "lessons" / LESSON / NAME
    solved = solution_sources(course / "solutions" / LESSON / NAME)
    ids = answer_ids(release)
    first, last = ids[0], ids[-1]
    submissions = {
        "good": solved,
        # a plain endless loop is interrupted at the cell limit; the cells after it run as usual
        "loop": {**solved, first: "while True:\n    pass"},
        # a loop that ignores the interrupt: the kernel is stopped, later cells are not run
        "stubborn": {**solved, last: STUBBORN_LOOP},
        "exit": {**solved, last: "import os\nos._exit(3)"},
        "segfault": {**solved, last: "import ctypes\nctypes.string_at(0)"},
        "bomb": {**solved, last: MEMORY_BOMB},
        # a correct answer that also prints 50 MB: full marks, the output is cut
        "chatty": {**solved, first: solved[first] + "\nprint('x' * 50_000_000)"},
    }
    for student, answers in submissions.items():
        make_submission(release, answers, course / "submitted" / student / LESSON / NAME)
    proc = coursekit("--root", str(course), "grade", LESSON, "--framework", "torch", "--json", "--jobs", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["student"]: r for r in json.loads(proc.stdout)}
    return course, rows, graded_cells(release), ids


def scores(row) -> dict[str, float]:
    return {gid: v[0] for gid, v in row["grades"].items() if v[1]}


def autograded_text(course, student) -> str:
    nb = nbformat.read(course / "autograded" / student / LESSON / NAME, as_version=4)
    return json.dumps([c.get("outputs", []) for c in nb.cells])


def test_well_behaved_submission_is_untouched_by_the_bounds(graded):
    course, rows, points, _ = graded
    assert scores(rows["good"]) == points


def test_interruptible_loop_loses_only_its_exercise(graded):
    course, rows, points, ids = graded
    lost = grade_cell_for(ids[0])
    assert scores(rows["loop"]) == {g: (0.0 if g == lost else p) for g, p in points.items()}
    assert "CellTimeoutError" in autograded_text(course, "loop")


@pytest.mark.parametrize("student,reason", [
    ("stubborn", "ignored the interrupt"),
    ("exit", "the kernel died"),
    ("segfault", "the kernel died"),
    ("bomb", "MiB of memory"),
])
def test_a_stopped_kernel_keeps_earlier_points_and_says_why(graded, student, reason):
    course, rows, points, ids = graded
    lost = grade_cell_for(ids[-1])
    assert scores(rows[student]) == {g: (0.0 if g == lost else p) for g, p in points.items()}, student
    text = autograded_text(course, student)
    assert reason in text and "not run" in text, f"{student}: reason missing from the autograded notebook"


def test_huge_output_is_cut_and_costs_nothing(graded):
    course, rows, points, _ = graded
    assert scores(rows["chatty"]) == points
    path = course / "autograded" / "chatty" / LESSON / NAME
    assert path.stat().st_size < 2_000_000, f"autograded notebook is {path.stat().st_size} bytes"
    assert "output beyond 100000 characters was dropped" in autograded_text(course, "chatty")


def test_feedback_tells_the_student_why(graded):
    course, _, _, _ = graded
    proc = coursekit("--root", str(course), "feedback", LESSON, "--student", "bomb")
    assert proc.returncode == 0, proc.stderr[-2000:]
    html = (course / "feedback" / "bomb" / LESSON / "pytorch.html").read_text()
    assert "LimitReached" in html and "MiB of memory" in html


def test_corrupt_or_misnamed_submissions_cost_nobody_else(tmp_path):
    """A notebook that is not JSON, or one under the wrong file name, cannot be graded: one clear
    error line each and exit 1; the good submission beside them is graded as usual."""
    course = copy_course(tmp_path / "course")
    release = course / "lessons" / LESSON / NAME
    solved = solution_sources(course / "solutions" / LESSON / NAME)
    make_submission(release, solved, course / "submitted" / "good" / LESSON / NAME)
    broken = course / "submitted" / "broken" / LESSON / NAME
    make_submission(release, solved, broken)
    broken.write_text(broken.read_text()[: len(broken.read_text()) // 2])  # truncated mid-file
    make_submission(release, solved, course / "submitted" / "misnamed" / LESSON / "my_pytorch.ipynb")
    proc = coursekit("--root", str(course), "grade", LESSON, "--framework", "torch", "--json", "--jobs", "2")
    assert proc.returncode == 1, proc.stderr[-2000:]
    errors = sorted(ln for ln in proc.stderr.splitlines() if ln.startswith("coursekit: error:"))
    assert len(errors) == 2, proc.stderr[-2000:]
    assert "broken" in errors[0] and "JSON" in errors[0], errors
    assert "misnamed: no pytorch.ipynb" in errors[1] and "found: my_pytorch.ipynb" in errors[1], errors
    rows = {r["student"]: r for r in json.loads(proc.stdout)}
    assert rows["good"]["score"] == rows["good"]["max_score"] > 0
    assert rows["misnamed"]["score"] in (None, 0)
    assert rows["broken"]["score"] in (None, 0)


def test_a_kernel_stalled_at_its_memory_limit_is_told_it_was_memory(tmp_path):
    """Near its cgroup limit the OS reclaims pages before it OOM-kills; on a loaded machine a memory
    bomb can stall past the cell limit first. The reason must then name memory, not an ignored
    interrupt (CI once reported the bomb as 'ignored the interrupt')."""
    import threading
    from types import SimpleNamespace

    from coursekit.autograde.bounds import BoundedExecute
    from coursekit.autograde.sandbox import _Cgroup

    v1 = tmp_path / "v1"
    v1.mkdir()
    (v1 / "memory.failcnt").write_text("0\n")
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.events").write_text("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n")
    old, new = _Cgroup([v1], v2=False), _Cgroup([v2], v2=True)
    assert not old.reached_memory_limit() and not new.reached_memory_limit()
    (v1 / "memory.failcnt").write_text("12\n")
    (v2 / "memory.events").write_text("low 0\nhigh 0\nmax 5\noom 0\noom_kill 0\n")
    assert old.reached_memory_limit() and new.reached_memory_limit()
    # reaching the limit is not being killed for it: only an oom_kill count says that
    assert not new.oom_killed()
    (v2 / "memory.events").write_text("low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n")
    (v1 / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert new.oom_killed() and old.oom_killed()

    ex = BoundedExecute(memory_limit_mb=3072)
    ex._killed_for_memory = threading.Event()  # per-notebook state, made by preprocess()
    ex.km = SimpleNamespace(reached_memory_limit=lambda: True)
    assert "3072 MiB of memory" in ex._stalled_reason(10)
    ex.km = SimpleNamespace(reached_memory_limit=lambda: False)
    assert ex._stalled_reason(10) == "this cell ran past the 10 s cell time limit and ignored the interrupt"
