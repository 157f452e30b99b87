"""Autograding a class through nbgrader, serially or with parallel workers.

Parallel grading keeps nbgrader's semantics and its gradebook as the one record:

1. each worker runs the real `nbgrader autograde` for one student in a private copy of the course
   (config, submission and a snapshot of the gradebook holding the lesson), so kernels run side by
   side and no two processes ever write the same SQLite file;
2. one serial `nbgrader autograde --no-execute` then reads the workers' executed notebooks into the
   shared gradebook. It restores every locked/test cell from the gradebook again before reading
   the outputs, so a notebook cannot smuggle in edited tests between the two steps.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from .notebooks import FRAMEWORK_NOTEBOOKS, Course, CourseError, _nbgrader_error, nbgrader


@dataclass
class GradeOutcome:
    student: str
    ok: bool
    reason: str = ""


def register_assignment(course: Course, lesson: str, framework: str | None) -> None:
    """Put the lesson's notebooks, cells and points in the gradebook (nbgrader needs them to
    autograde) without writing to lessons/."""
    with tempfile.TemporaryDirectory(prefix="coursekit-release-") as tmp:
        proc = nbgrader(
            course, "generate_assignment", lesson, "--force",
            f"--CourseDirectory.release_directory={tmp}",
            f"--CourseDirectory.notebook_id={_notebook_id(framework)}",
        )
    if proc.returncode != 0:
        raise CourseError(f"could not register {lesson} in the gradebook: {_nbgrader_error(proc)}")


def _notebook_id(framework: str | None) -> str:
    return FRAMEWORK_NOTEBOOKS[framework] if framework else "*"


def already_graded(course: Course, lesson: str) -> set[str]:
    """Students whose submission of `lesson` is in the gradebook and in autograded/."""
    from nbgrader.api import Gradebook, MissingEntry

    done = set()
    with Gradebook(f"sqlite:///{course.root / 'gradebook.db'}") as gb:
        try:
            subs = gb.assignment_submissions(lesson)
        except MissingEntry:
            return done
        for sub in subs:
            if (course.root / "autograded" / sub.student_id / lesson).is_dir():
                done.add(sub.student_id)
    return done


def grade_serial(course: Course, lesson: str, students: list[str], framework: str | None, progress) -> list[GradeOutcome]:
    """One `nbgrader autograde --student S` after another (nbgrader's own way)."""
    outcomes = []
    for student in students:
        proc = nbgrader(course, "autograde", lesson, f"--student={student}", "--force",
                        f"--CourseDirectory.notebook_id={_notebook_id(framework)}")
        outcomes.append(GradeOutcome(student, proc.returncode == 0, "" if proc.returncode == 0 else _nbgrader_error(proc)))
        progress.update(1)
    return outcomes


def _worker(course: Course, lesson: str, student: str, framework: str | None, scratch: Path) -> GradeOutcome:
    """Autograde one student in a private course copy under `scratch`; leaves the executed
    notebooks in scratch/<student>/autograded/<student>/<lesson>."""
    private = Course(scratch / student)
    private.root.mkdir(parents=True)
    shutil.copy(course.root / "nbgrader_config.py", private.root / "nbgrader_config.py")
    shutil.copytree(course.solutions / lesson, private.solutions / lesson)
    shutil.copytree(course.root / "submitted" / student / lesson, private.root / "submitted" / student / lesson)
    shutil.copy(scratch / "gradebook.db", private.root / "gradebook.db")
    proc = nbgrader(private, "autograde", lesson, f"--student={student}", "--force",
                    f"--CourseDirectory.notebook_id={_notebook_id(framework)}")
    produced = private.root / "autograded" / student / lesson
    if proc.returncode != 0 or not produced.is_dir():
        return GradeOutcome(student, False, _nbgrader_error(proc))
    return GradeOutcome(student, True)


def grade_parallel(course: Course, lesson: str, students: list[str], framework: str | None, jobs: int,
                   progress) -> list[GradeOutcome]:
    """Execute submissions in `jobs` private nbgrader runs, then record them in one serial pass."""
    with tempfile.TemporaryDirectory(prefix="coursekit-grade-") as tmp:
        scratch = Path(tmp)
        # A snapshot taken after registration: workers read the lesson's cells and points from it.
        shutil.copy(course.root / "gradebook.db", scratch / "gradebook.db")
        outcomes: dict[str, GradeOutcome] = {}
        with ThreadPoolExecutor(max_workers=jobs) as pool:  # threads only wait on subprocesses
            futures = {pool.submit(_worker, course, lesson, s, framework, scratch): s for s in students}
            for fut in as_completed(futures):
                outcome = fut.result()
                outcomes[outcome.student] = outcome
                progress.update(1)
        staging = scratch / "executed"
        graded = [s for s in students if outcomes[s].ok]
        for s in graded:
            shutil.copytree(scratch / s / "autograded" / s / lesson, staging / s / lesson)
            stamp = course.root / "submitted" / s / lesson / "timestamp.txt"
            if stamp.is_file():  # keep nbgrader's late-submission bookkeeping
                shutil.copy(stamp, staging / s / lesson / "timestamp.txt")
        if graded:
            proc = nbgrader(
                course, "autograde", lesson, "--force", "--no-execute",
                f"--CourseDirectory.submitted_directory={staging}",
                f"--CourseDirectory.notebook_id={_notebook_id(framework)}",
            )
            if proc.returncode != 0:
                raise CourseError(f"recording the grades of {lesson} failed: {_nbgrader_error(proc)}")
        return [outcomes[s] for s in students]


def progress_bar(total: int, enabled: bool):
    """A tqdm bar on stdout (stderr is for errors), or a no-op one."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="grading", unit="student", file=sys.stdout, disable=not enabled, leave=True)
