"""Autograding a class through nbgrader, serially or with parallel workers.

Parallel grading keeps nbgrader's semantics and its gradebook as the one record:

1. each worker runs the real `nbgrader autograde` for a batch of students in a private copy of the
   course (config, released lesson, submissions and a snapshot of the gradebook holding the
   lesson), so kernels run side by side and no two processes ever write the same SQLite file.
   One batch per worker pays nbgrader's start-up once, not once per student;
2. one serial `nbgrader autograde --no-execute` then reads the workers' executed notebooks into the
   shared gradebook. It restores every locked/test cell from the gradebook again before reading
   the outputs, so a notebook cannot smuggle in edited tests between the two steps. Its process
   starts with the workers (`coursekit._record`) so that importing nbgrader, ~2 s, is not added
   at the end.

On 2 cores, 20 submissions (bench/grade_parallel.py): the parallel run's fixed costs (worker
start-up, the recording pass) are a few seconds, so short notebooks gain less than long ones.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from .notebooks import (
    DB_ENV_VAR,
    FRAMEWORK_NOTEBOOKS,
    Course,
    CourseError,
    _nbgrader_error,
    nbgrader,
    nbgrader_env,
)


def thread_env(jobs: int) -> dict[str, str]:
    """Thread caps for `jobs` kernels sharing this machine's cores.

    PyTorch's OpenMP workers spin while they wait: two kernels that each use every core run a
    small notebook 30x slower (measured: 7 s alone, 225 s beside a twin). Splitting the cores
    between the jobs keeps each one as fast as it is alone. Variables already set win.
    """
    per_job = str(max(1, (os.cpu_count() or 1) // max(1, jobs)))
    wanted = {"OMP_NUM_THREADS": per_job, "MKL_NUM_THREADS": per_job,
              "TF_NUM_INTRAOP_THREADS": per_job, "TF_NUM_INTEROP_THREADS": "1"}
    return {k: v for k, v in wanted.items() if not os.environ.get(k)}


@dataclass
class GradeOutcome:
    student: str
    ok: bool
    reason: str = ""


def register_assignment(course: Course, lesson: str, framework: str | None, db_url: str | None = None) -> None:
    """Put the lesson's notebooks, cells and points in the gradebook (nbgrader needs them to
    autograde) without writing to lessons/. `db_url` overrides the course's gradebook."""
    with tempfile.TemporaryDirectory(prefix="coursekit-release-") as tmp:
        proc = nbgrader(
            course, "generate_assignment", lesson, "--force",
            f"--CourseDirectory.release_directory={tmp}",
            f"--CourseDirectory.notebook_id={_notebook_id(framework)}",
            env={DB_ENV_VAR: db_url} if db_url else None,
        )
    if proc.returncode != 0:
        error = _nbgrader_error(proc)
        if "database is locked" in error:
            raise CourseError(f"the gradebook {db_url or course.db_url} is locked by another program (formgrader, "
                              "another `coursekit grade`?); nothing was graded: close it and run this again")
        raise CourseError(f"could not register {lesson} in the gradebook: {error}")


def _notebook_id(framework: str | None) -> str:
    return FRAMEWORK_NOTEBOOKS[framework] if framework else "*"


def already_graded(course: Course, lesson: str) -> set[str]:
    """Students whose submission of `lesson` is in the gradebook and in autograded/."""
    from nbgrader.api import Gradebook, MissingEntry

    done = set()
    with Gradebook(course.db_url) as gb:
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


def _worker(course: Course, lesson: str, batch: list[str], framework: str | None, scratch: Path,
            jobs: int, progress) -> list[GradeOutcome]:
    """Autograde a batch of students in one nbgrader run in a private course copy under `scratch`;
    leaves the executed notebooks in scratch/<first student>/autograded/<student>/<lesson>."""
    private = Course(scratch / batch[0])
    private.root.mkdir(parents=True)
    shutil.copy(course.root / "nbgrader_config.py", private.root / "nbgrader_config.py")
    shutil.copytree(course.solutions / lesson, private.solutions / lesson)
    if (course.lessons_dir / lesson).is_dir():  # the released copy: the tamper audit compares with it
        shutil.copytree(course.lessons_dir / lesson, private.lessons_dir / lesson)
    for student in batch:
        shutil.copytree(course.root / "submitted" / student / lesson, private.root / "submitted" / student / lesson)
    shutil.copy(scratch / "gradebook.db", private.root / "gradebook.db")
    env = {**thread_env(jobs), DB_ENV_VAR: f"sqlite:///{private.root / 'gradebook.db'}"}  # never the shared one
    # nbgrader grades every submission it finds and carries on past a failed one
    proc = nbgrader(private, "autograde", lesson, "--force",
                    f"--CourseDirectory.notebook_id={_notebook_id(framework)}", env=env)
    outcomes = []
    for student in batch:
        produced = private.root / "autograded" / student / lesson
        if produced.is_dir() and any(produced.glob("*.ipynb")):
            outcomes.append(GradeOutcome(student, True))
        else:
            outcomes.append(GradeOutcome(student, False, _student_error(proc, student)))
        progress.update(1)
    return outcomes


def _student_error(proc, student: str) -> str:
    """The error nbgrader logged for `student`: the last exception line before its
    "... for student 'S'" line, after the previous student's."""
    text = (proc.stderr or "") + "\n" + (proc.stdout or "")
    block: list[str] = []
    for line in text.splitlines():
        if "for student '" in line:
            if f"for student '{student}'" in line:
                errors = [ln.strip() for ln in block if "Error" in ln and not ln.lstrip().startswith("[")]
                return (errors[-1] if errors else line.strip())[:300]
            block = []
        else:
            block.append(line)
    return _nbgrader_error(proc)


def _batches(students: list[str], jobs: int) -> list[list[str]]:
    """One batch of consecutive students per worker: every batch pays nbgrader's start-up (about
    2 s) once. The bounds cap how long one bad submission can hold its batch up."""
    n = min(len(students), max(1, jobs))
    size, extra = divmod(len(students), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(students[start:end])
        start = end
    return [b for b in out if b]


def grade_parallel(course: Course, lesson: str, students: list[str], framework: str | None, jobs: int,
                   progress) -> list[GradeOutcome]:
    """Execute submissions in `jobs` private nbgrader runs, then record them in one serial pass."""
    with tempfile.TemporaryDirectory(prefix="coursekit-grade-") as tmp:
        scratch = Path(tmp)
        # A private SQLite gradebook holding the lesson: workers read its cells and points from it.
        if course.uses_sqlite:
            shutil.copy(course.db_url.removeprefix("sqlite:///"), scratch / "gradebook.db")
        else:
            template = Course(scratch)
            shutil.copy(course.root / "nbgrader_config.py", scratch / "nbgrader_config.py")
            shutil.copytree(course.solutions / lesson, template.solutions / lesson)
            register_assignment(template, lesson, framework, db_url=f"sqlite:///{scratch / 'gradebook.db'}")
        staging = scratch / "executed"
        recorder = _early_nbgrader(
            course, "autograde", lesson, "--force", "--no-execute",
            f"--CourseDirectory.submitted_directory={staging}",
            f"--CourseDirectory.notebook_id={_notebook_id(framework)}",
        )
        try:
            return _execute_and_record(course, lesson, students, framework, jobs, progress, scratch, staging,
                                       recorder)
        finally:
            if recorder.poll() is None:
                recorder.kill()
                recorder.wait()


def _early_nbgrader(course: Course, *args: str) -> subprocess.Popen:
    """`nbgrader ARGS` in a process that imports nbgrader now and runs when sent "go"."""
    return subprocess.Popen([sys.executable, "-m", "coursekit._record", *args], cwd=course.root, env=nbgrader_env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _execute_and_record(course: Course, lesson: str, students: list[str], framework: str | None, jobs: int,
                        progress, scratch: Path, staging: Path, recorder: subprocess.Popen) -> list[GradeOutcome]:
    """Run the batches, gather the executed notebooks in `staging`, and let `recorder` record them."""
    outcomes: dict[str, GradeOutcome] = {}
    batches = _batches(students, jobs)
    where = {s: b[0] for b in batches for s in b}
    with ThreadPoolExecutor(max_workers=jobs) as pool:  # threads only wait on subprocesses
        futures = [pool.submit(_worker, course, lesson, b, framework, scratch, jobs, progress) for b in batches]
        for fut in as_completed(futures):
            for outcome in fut.result():
                outcomes[outcome.student] = outcome
    graded = [s for s in students if outcomes[s].ok]
    for s in graded:
        shutil.copytree(scratch / where[s] / "autograded" / s / lesson, staging / s / lesson)
        stamp = course.root / "submitted" / s / lesson / "timestamp.txt"
        if stamp.is_file():  # keep nbgrader's late-submission bookkeeping
            shutil.copy(stamp, staging / s / lesson / "timestamp.txt")
    out, err = recorder.communicate("go\n" if graded else "stop\n")
    if graded and recorder.returncode != 0:
        proc = subprocess.CompletedProcess(recorder.args, recorder.returncode, out, err)
        raise CourseError(f"recording the grades of {lesson} failed: {_nbgrader_error(proc)}")
    return [outcomes[s] for s in students]


def progress_bar(total: int, enabled: bool):
    """A tqdm bar on stdout (stderr is for errors), or a no-op one."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="grading", unit="student", file=sys.stdout, disable=not enabled, leave=True)
