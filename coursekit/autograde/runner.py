"""Autograding a class through nbgrader, serially or with parallel workers.

Every step is nbgrader's own command, run in `coursekit._nbhost` processes that import nbgrader
once and announce each graded student the moment it is done:

- **serial** (`--jobs 1`): one process registers the lesson in the gradebook (nbgrader
  `generate_assignment`) and autogrades every submission to grade (nbgrader `autograde`), read
  from a copy of just those submissions.
- **parallel** (`--jobs N`): N workers each autograde a batch of consecutive students in a
  private copy of the course (config, released lesson, submissions and a snapshot of the
  gradebook holding the lesson), so kernels run side by side and no two processes ever write
  the same SQLite file. A recorder process registers the lesson in the shared gradebook first
  and then, as each worker announces a student, records it with `autograde --no-execute`,
  which restores every locked/test cell from the gradebook again before reading the outputs
  (a notebook cannot smuggle in edited tests between the two steps). The gradebook has one
  writer, grades land while the class is still running, and the last student's recording is
  all that follows the last kernel. All processes start together, so their imports overlap.

On 2 cores, 20 submissions: bench/grade_parallel.py.
"""

from __future__ import annotations

import os
import queue
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .._nbhost import Host
from ..notebooks import (
    DB_ENV_VAR,
    FRAMEWORK_NOTEBOOKS,
    Course,
    CourseError,
    log_error,
    nbgrader_env,
)


EXPECTED_ENV_VAR = "COURSEKIT_EXPECTED_DIR"


def expected_dir(course: Course) -> Path:
    """Where the course keeps its instructor runs (coursekit.autograde.expected)."""
    return Path(os.environ.get(EXPECTED_ENV_VAR) or course.root / ".coursekit" / "expected")


def ensure_instructor_runs(course: Course, lesson: str, framework: str | None) -> list[tuple[str, float | None]]:
    """Make the instructor runs `lesson` needs that are missing or stale: [(notebook, seconds or None
    if it was already recorded)]. Grading compares every student's checks with them."""
    import time

    from traitlets.config.loader import PyFileConfigLoader

    from .expected import ensure_memo, ensure_record, load_record, record_key, record_path

    from .bounds import BoundedExecute

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course.root)).load_config()
    settings = BoundedExecute(config=config)  # the course's memo and sandbox settings, defaults included
    memo_on = settings.memo and settings.sandbox
    made = []
    for source in course.notebooks(lesson, framework):
        if load_record(record_path(expected_dir(course), lesson, source.stem), record_key(source)) is not None:
            made.append((source.stem, None))
            continue
        started = time.monotonic()
        release = course.lessons_dir / lesson / source.name
        memo = ensure_memo(config, expected_dir(course), release, lesson, source.stem) if memo_on else None
        ensure_record(config, expected_dir(course), source, lesson, source.stem, memo=memo)
        made.append((source.stem, time.monotonic() - started))
    return made


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


def locked_message(db_url: str) -> str:
    return (f"the gradebook {db_url} is locked by another program (formgrader, another `coursekit grade`?); "
            "nothing was graded: close it and run this again")


def _notebook_id(framework: str | None) -> str:
    return FRAMEWORK_NOTEBOOKS[framework] if framework else "*"


def already_graded(course: Course, lesson: str) -> set[str]:
    """Students whose submission of `lesson` is in the gradebook and in autograded/."""
    if course.uses_sqlite and not Path(course.db_url.removeprefix("sqlite:///")).is_file():
        return set()  # no gradebook yet: nobody is graded (and none is created just to say so)
    import sqlalchemy
    from nbgrader.api import Gradebook, MissingEntry

    done = set()
    try:
        with Gradebook(course.db_url) as gb:
            try:
                subs = gb.assignment_submissions(lesson)
            except MissingEntry:
                return done
            for sub in subs:
                if (course.root / "autograded" / sub.student_id / lesson).is_dir():
                    done.add(sub.student_id)
    except sqlalchemy.exc.OperationalError as err:
        if "locked" in str(err):
            raise CourseError(locked_message(course.db_url)) from None
        raise
    return done


def _register(host: Host, lesson: str, framework: str | None, release: Path) -> None:
    """Put the lesson's notebooks, cells and points in the host's gradebook (nbgrader needs them to
    autograde), releasing into `release`, never into lessons/."""
    host.send("register", "generate_assignment", lesson, "--force", f"--CourseDirectory.release_directory={release}",
              f"--CourseDirectory.notebook_id={_notebook_id(framework)}")


def _registration_failed(log: str, db_url: str, lesson: str) -> CourseError:
    if "database is locked" in log:
        return CourseError(locked_message(db_url))
    return CourseError(f"could not register {lesson} in the gradebook: {log_error(log)[:300] or 'no output'}")


def _student_error(log: str, student: str) -> str:
    """The error nbgrader logged for `student`: the last exception line before its
    "... for student 'S'" line, after the previous student's."""
    block: list[str] = []
    for line in log.splitlines():
        if "for student '" in line:
            if f"for student '{student}'" in line:
                errors = [ln.strip() for ln in block if "Error" in ln and not ln.lstrip().startswith("[")]
                return (errors[-1] if errors else line.strip())[:300]
            block = []
        else:
            block.append(line)
    return log_error(log)[:300] or "nbgrader logged no error"


# ---------------------------------------------------------------- serial
def copy_submission(course: Course, lesson: str, student: str, submitted: Path) -> None:
    """Copy `student`'s submission of `lesson` into the submissions folder `submitted`. A link is
    copied as a link, never followed (coursekit.autograde.intake has refused links already)."""
    shutil.copytree(course.root / "submitted" / student / lesson, submitted / student / lesson, symlinks=True)


def grade_serial(course: Course, lesson: str, students: list[str], framework: str | None, progress,
                 ready: Callable[[], None] = lambda: None) -> list[GradeOutcome]:
    """Register the lesson and autograde `students` in one nbgrader process (nbgrader's own way,
    one submission after another). nbgrader reads copies of these students' submissions, so it
    never lists or opens the folder of anyone else (a student not graded now, or one whose
    submission was refused). `ready()` returns once student code may run (see grade_parallel)."""
    events: queue.Queue = queue.Queue()
    with tempfile.TemporaryDirectory(prefix="coursekit-grade-") as tmp:
        staging = Path(tmp) / "submitted"
        staging.mkdir()
        for student in students:
            copy_submission(course, lesson, student, staging)
        host = Host(course.root, events, nbgrader_env())
        try:
            _register(host, lesson, framework, Path(tmp) / "release")
            if students:
                ready()
                host.send("autograde", "autograde", lesson, "--force",
                          f"--CourseDirectory.notebook_id={_notebook_id(framework)}",
                          f"--CourseDirectory.submitted_directory={staging}")
            graded: set[str] = set()
            while host.tags:
                _, message = events.get()
                registering = host.tags[0] == "register"
                tag = host.answered(message)
                if "graded" in message:
                    graded.add(message["graded"])
                    progress.update(1)
                elif registering and (tag and message["rc"] != 0 or "exit" in message):
                    raise _registration_failed(host.close(timeout=0), course.db_url, lesson)
                elif "exit" in message:  # the process died while grading
                    break
        finally:
            log = host.close()
    return [GradeOutcome(s, True) if s in graded else GradeOutcome(s, False, _student_error(log, s)) for s in students]


# ---------------------------------------------------------------- parallel
def _batches(students: list[str], jobs: int) -> list[list[str]]:
    """One batch of consecutive students per worker: every batch pays nbgrader's start-up once.
    The bounds cap how long one bad submission can hold its batch up."""
    n = min(len(students), max(1, jobs))
    size, extra = divmod(len(students), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(students[start:end])
        start = end
    return [b for b in out if b]


def _private_course(course: Course, lesson: str, batch: list[str], root: Path) -> Course:
    """A course copy for one worker: config, the lesson's source and released notebooks (the
    tamper audit compares with the release) and the batch's submissions; no gradebook yet."""
    private = Course(root)
    private.root.mkdir(parents=True)
    shutil.copy(course.root / "nbgrader_config.py", private.root / "nbgrader_config.py")
    shutil.copytree(course.solutions / lesson, private.solutions / lesson)
    if (course.lessons_dir / lesson).is_dir():
        shutil.copytree(course.lessons_dir / lesson, private.lessons_dir / lesson)
    for student in batch:
        copy_submission(course, lesson, student, private.root / "submitted")
    return private


def grade_parallel(course: Course, lesson: str, students: list[str], framework: str | None, jobs: int,
                   progress, ready: Callable[[], None] = lambda: None) -> list[GradeOutcome]:
    """Autograde `students` in `jobs` private workers while a recorder writes the shared gradebook.

    `ready()` returns once student code may run (coursekit grade's tripwire has read the course
    and the environment): the nbgrader processes start and register the lesson meanwhile, since
    they run no student code, and the first kernel waits for it. On 2 cores that start-up left
    about half the CPU idle for ~10 s."""
    with tempfile.TemporaryDirectory(prefix="coursekit-grade-") as tmp:
        scratch = Path(tmp)
        events: queue.Queue = queue.Queue()
        recorder = Host(course.root, events, nbgrader_env())
        workers: dict[Host, list[str]] = {}
        try:
            for batch in _batches(students, jobs):
                private = _private_course(course, lesson, batch, scratch / "workers" / batch[0])
                # never the shared gradebook: each worker writes a private SQLite file
                env = {**thread_env(jobs), DB_ENV_VAR: f"sqlite:///{private.root / 'gradebook.db'}",
                       EXPECTED_ENV_VAR: str(expected_dir(course))}
                workers[Host(private.root, events, nbgrader_env(env))] = batch
            _register(recorder, lesson, framework, scratch / "release")
            if not course.uses_sqlite:  # no file to snapshot: each worker registers the lesson itself
                for worker in workers:
                    _register(worker, lesson, framework, scratch / "release" / worker.root.name)
                ready()
                for worker in workers:
                    _autograde_batch(worker, lesson, framework)
            return _run_class(course, lesson, students, framework, progress, scratch / "executed", events,
                              recorder, workers, ready)
        finally:
            for host in (recorder, *workers):
                host.close(timeout=0)


def _autograde_batch(worker: Host, lesson: str, framework: str | None) -> None:
    # The grades a worker would save go to its private gradebook, which is thrown away: the recorder
    # saves them (and any late penalty) in the shared one. Skipping them saves ~0.1 s a student.
    worker.send("autograde", "autograde", lesson, "--force", f"--CourseDirectory.notebook_id={_notebook_id(framework)}",
                "--SaveAutoGrades.enabled=False", "--AssignLatePenalties.enabled=False")


def _run_class(course: Course, lesson: str, students: list[str], framework: str | None, progress, staging: Path,
               events: queue.Queue, recorder: Host, workers: dict[Host, list[str]],
               ready: Callable[[], None]) -> list[GradeOutcome]:
    """React to the processes' messages until every student is recorded or has failed."""
    outcomes: dict[str, GradeOutcome] = {}
    running = set(workers)
    while running or recorder.tags:
        host, message = events.get()
        tag = host.answered(message)
        if host is recorder:
            if "graded" in message:  # its own `autograde --no-execute` announcing; the rc follows
                continue
            if "exit" in message:
                raise CourseError(f"recording the grades of {lesson} failed: {log_error(recorder.close())[:300]}")
            if tag == "register":
                if message["rc"] != 0:
                    raise _registration_failed(recorder.close(timeout=0), course.db_url, lesson)
                if course.uses_sqlite:  # the workers read the lesson from a snapshot of the gradebook
                    ready()
                    for worker in workers:
                        shutil.copy(course.db_url.removeprefix("sqlite:///"), worker.root / "gradebook.db")
                        _autograde_batch(worker, lesson, framework)
            else:  # ("record", student)
                student = tag[1]
                outcomes[student] = (GradeOutcome(student, True) if message["rc"] == 0 else
                                     GradeOutcome(student, False, "recording failed: " + _student_error(
                                         recorder.log(), student)))
                progress.update(1)
        elif "graded" in message:
            student = message["graded"]
            shutil.copytree(host.root / "autograded" / student / lesson, staging / student / lesson)
            stamp = course.root / "submitted" / student / lesson / "timestamp.txt"
            if stamp.is_file():  # keep nbgrader's late-submission bookkeeping
                shutil.copy(stamp, staging / student / lesson / "timestamp.txt")
            recorder.send(("record", student), "autograde", lesson, "--force", "--no-execute", f"--student={student}",
                          f"--CourseDirectory.submitted_directory={staging}",
                          f"--CourseDirectory.notebook_id={_notebook_id(framework)}")
        elif host in running and (tag == "autograde" or "exit" in message or message.get("rc")):
            # the batch is done (or its process ended, or its private registration failed)
            running.discard(host)
            log = host.close(timeout=60 if tag == "autograde" else 0)
            for student in workers[host]:
                if student not in outcomes and not any(t == ("record", student) for t in recorder.tags):
                    outcomes[student] = GradeOutcome(student, False, _student_error(log, student))
                    progress.update(1)
    recorder.close()
    return [outcomes[s] for s in students]


# ---------------------------------------------------------------- feedback
def feedback_class(course: Course, lesson: str, students: list[str]) -> list[GradeOutcome]:
    """nbgrader `generate_feedback` for each of `students`, all in one nbgrader process. A student
    whose feedback fails costs nobody else theirs: nbgrader answers each command on its own, and if
    the process itself ends, the students after the one it was working on go to a fresh one."""
    outcomes: dict[str, GradeOutcome] = {}
    todo = list(students)
    while todo:
        events: queue.Queue = queue.Queue()
        host = Host(course.root, events, nbgrader_env())
        failed: list[str] = []
        died: str | None = None
        try:
            for student in todo:
                host.send(student, "generate_feedback", lesson, f"--student={student}", "--force")
            while host.tags:
                _, message = events.get()
                if "exit" in message:  # the process ended while working on host.tags[0]
                    died = host.tags[0]
                    break
                tag = host.answered(message)
                if tag is not None:
                    if message["rc"] == 0:
                        outcomes[tag] = GradeOutcome(tag, True)
                    else:
                        failed.append(tag)
        finally:
            log = host.close(timeout=0 if died else 60)
        for student in failed:
            outcomes[student] = GradeOutcome(student, False, _student_error(log, student))
        if died is not None:
            outcomes[died] = GradeOutcome(died, False, "nbgrader ended while making this feedback: "
                                          + (log_error(log)[:300] or "no output"))
        todo = [s for s in todo if s not in outcomes]
    return [outcomes[s] for s in students]


def progress_bar(total: int, enabled: bool):
    """A tqdm bar on stdout (stderr is for errors), or a no-op one."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="grading", unit="student", file=sys.stdout, disable=not enabled, leave=True)
