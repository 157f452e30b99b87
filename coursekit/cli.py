"""The `coursekit` command line for instructors.

    coursekit open [--headless]     JupyterLab on the course (lessons/ first)
    coursekit doctor                versions, device, nbgrader extensions, lessons in sync
    coursekit build [LESSON ...]    regenerate lessons/ from solutions/ through nbgrader
    coursekit grade LESSON          autograde submitted/<student>/LESSON and print a score table
    coursekit feedback LESSON       HTML feedback for graded students (hidden tests removed)
    coursekit export [--to F]       CSV of scores per student, notebook and exercise
    coursekit site [--out DIR]      static course site: lessons with the outputs of an executed run
    coursekit audit NOTEBOOK ...    check a notebook against the grading rules before handing it in

Every expected failure prints one line starting with 'coursekit: error:' and exits non-zero.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import importlib.metadata as md
import json
import os
import re
import subprocess
import sys
import threading

from ._nbhost import skip_rfc3987_grammar
from .autograde.intake import submission_problem
from .autograde.runner import (
    already_graded,
    ensure_instructor_runs,
    feedback_class,
    grade_parallel,
    grade_serial,
    locked_message,
    progress_bar,
    thread_env,
)
from .autograde.tripwire import changed as changed_since, snapshot
from .autograde.versions import changed_files, lesson_digests, record_digests
from .notebooks import (
    FRAMEWORK_NOTEBOOKS,
    Course,
    CourseError,
    _nbgrader_error,
    build,
    check_framework,
    find_course,
    nbgrader,
)


SANDBOX_ENV_VAR = "COURSEKIT_SANDBOX"
UNSANDBOXED_LINE = ("coursekit: WARNING: graded WITHOUT the OS sandbox (--no-sandbox): submissions ran with "
                    "your rights and could read or change the course; these scores are not protected")


def _course(args) -> Course:
    return find_course(args.root)


# ---------------------------------------------------------------- open
def cmd_open(args) -> int:
    course = _course(args)
    headless = args.headless or os.environ.get("COURSEKIT_HEADLESS", "") not in ("", "0", "false")
    cmd = [
        sys.executable, "-m", "jupyterlab",
        f"--ServerApp.root_dir={course.root}",
        "--LabApp.default_url=/lab/tree/lessons",
        f"--ServerApp.port={args.port}",
        f"--ServerApp.ip={args.ip}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI run as root; Jupyter refuses without this
    if headless:
        cmd.append("--no-browser")
        print(f"coursekit: starting JupyterLab headless on {args.ip}:{args.port}; open the URL it prints "
              "(with its token) in a browser.", flush=True)
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    # coursekit's JupyterLab defaults (labconfig/default_setting_overrides.json): no "get notified about
    # Jupyter news?" prompt, no update checks. Defaults only: a student's own settings still win.
    ours = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jupyter")
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(p for p in (ours, env.get("JUPYTER_CONFIG_PATH", "")) if p)
    os.chdir(course.root)  # nbgrader's lab tools read nbgrader_config.py from the server's directory
    os.execve(sys.executable, cmd, env)
    return 0  # not reached


# ---------------------------------------------------------------- doctor
def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _server_extensions() -> dict[str, bool]:
    """nbgrader's server extensions as jupyter_server sees them (enabled or not)."""
    proc = subprocess.run(
        [sys.executable, "-m", "jupyter", "server", "extension", "list"],
        capture_output=True, text=True, timeout=120,
    )
    text = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)  # drop colour codes
    return {m[1]: m[2] == "enabled" for m in re.finditer(r"^\s*(nbgrader\.server_extensions\.\w+)\s+(enabled|disabled)", text, re.M)}


def _lab_extensions() -> dict[str, bool]:
    """nbgrader's JupyterLab extensions (enabled or not)."""
    proc = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"], capture_output=True, text=True, timeout=120
    )
    text = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    return {m[1]: m[2] == "enabled" for m in re.finditer(r"^\s*(@jupyter/nbgrader\S*)\s+v\S+\s+(enabled|disabled)", text, re.M)}


def cmd_doctor(args) -> int:
    problems: list[str] = []
    print(f"python      {sys.version.split()[0]} ({sys.executable})")
    for dist in ("coursekit", "nbgrader", "jupyterlab", "torch", "torchvision", "tensorflow", "keras"):
        v = _version(dist)
        print(f"{dist:<11} {v or 'not installed'}")
        if v is None and dist in ("nbgrader", "jupyterlab"):
            problems.append(f"{dist} is not installed: run the README's set-up command")
    if _version("torch") is None and _version("tensorflow") is None:
        problems.append("neither torch nor tensorflow is installed: pip install -e '.[torch]' or '.[keras]'")
    # Device: ask each framework in a subprocess so doctor stays quick and quiet if one is broken.
    for fw, dist in (("torch", "torch"), ("keras", "tensorflow")):
        if _version(dist) is None:
            continue
        proc = subprocess.run(
            [sys.executable, "-c", f"from coursekit import {fw} as ck; ck.setup(seed=None)"],
            capture_output=True, text=True, timeout=300,
        )
        line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
        if proc.returncode != 0:
            err = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
            problems.append(f"coursekit.{fw} failed to start: {err}")
        else:
            print(f"device      {line}")
    server = _server_extensions()
    for name in ("formgrader", "validate_assignment", "assignment_list", "course_list"):
        key = f"nbgrader.server_extensions.{name}"
        ok = server.get(key, False)
        print(f"extension   {key}: {'enabled' if ok else 'MISSING or disabled'}")
        if not ok:
            problems.append(f"nbgrader server extension {name} is not enabled: "
                            f"jupyter server extension enable --sys-prefix {key}")
    lab = _lab_extensions()
    for name, ok in sorted(lab.items()):
        print(f"lab ext     {name}: {'enabled' if ok else 'disabled'}")
    if not any(lab.values()):
        problems.append("nbgrader's JupyterLab extension is missing: pip install nbgrader==0.9.6 in this environment")
    from .autograde.sandbox import sandbox_report

    for what, ok, detail in sandbox_report():
        print(f"sandbox     {what}: {detail}")
        if not ok:
            problems.append(detail)
    try:
        course = _course(args)
        print(f"course      {course.root} ({len(course.lessons())} lessons)")
        changed = build(course, check=True)
        if changed:
            problems.append(f"lessons/ is out of sync with solutions/ ({len(changed)} file(s), e.g. {changed[0]}): "
                            "run `coursekit build`")
        else:
            print("lessons     in sync with solutions")
    except CourseError as err:
        problems.append(str(err))
    for p in problems:
        print(f"coursekit: error: {p}", file=sys.stderr)
    if not problems:
        print("doctor: all checks passed")
    return 1 if problems else 0


# ---------------------------------------------------------------- build
def cmd_build(args) -> int:
    course = _course(args)
    changed = build(course, args.lessons or None, check=args.check)
    if args.check:
        if changed:
            for c in changed:
                print(f"out of sync: {c}")
            raise CourseError(f"{len(changed)} file(s) in lessons/ differ from what `coursekit build` makes")
        print("lessons/ is in sync with solutions/")
        return 0
    for c in changed:
        print(f"wrote {c}")
    print(f"built {len(args.lessons) if args.lessons else len(course.lessons())} lesson(s); {len(changed)} file(s) changed")
    return 0


# ---------------------------------------------------------------- grade
def score_table(course: Course, lesson: str, students: list[str]) -> list[dict]:
    """Scores from the gradebook: one row per student and notebook, with per-exercise points."""
    from nbgrader.api import Gradebook, MissingEntry

    rows = []
    with Gradebook(course.db_url) as gb:
        for student in students:
            try:
                sub = gb.find_submission(lesson, student)
            except MissingEntry:
                rows.append({"student": student, "notebook": "-", "score": None, "max_score": None, "grades": {}})
                continue
            for nb in sorted(sub.notebooks, key=lambda n: n.name):
                grades = {g.name: (g.score, g.max_score) for g in nb.grades}
                rows.append({
                    "student": student, "notebook": nb.name,
                    "score": nb.score, "max_score": nb.max_score, "grades": grades,
                })
    return rows


def _scores(course: Course, lesson: str, students: list[str]) -> dict[tuple[str, str], float]:
    """{(student, notebook): total score} of those of `students` the gradebook has a score for."""
    if not students or not course.has_gradebook():
        return {}
    import sqlalchemy

    try:
        rows = score_table(course, lesson, students)
    except sqlalchemy.exc.OperationalError as err:
        if "locked" in str(err):
            raise CourseError(locked_message(course.db_url)) from None
        raise
    return {(r["student"], r["notebook"]): r["score"] for r in rows if r["score"] is not None}


def cmd_grade(args) -> int:
    course = _course(args)
    framework = check_framework(args.framework)
    lesson = course.lesson(args.lesson)
    submitted = course.root / "submitted"
    if not submitted.is_dir():
        raise CourseError(f"no submissions folder {submitted}: collect submissions into submitted/<student>/{lesson}/")
    # a link counts as a submission here, so that it is refused with a reason below, not skipped
    students = sorted(d.name for d in submitted.iterdir() if (d / lesson).is_dir() or (d / lesson).is_symlink())
    if args.student:
        missing = [s for s in args.student if s not in students]
        if missing:
            raise CourseError(f"no submission of {lesson} for student(s) {', '.join(missing)} in {submitted}")
        students = args.student
    if not students:
        raise CourseError(f"nobody has submitted {lesson}: {submitted} has no <student>/{lesson}/ folder")
    if args.jobs < 1:
        raise CourseError(f"--jobs must be at least 1; received {args.jobs}")
    # Scores already in the gradebook were graded against the lesson as it was registered then:
    # grading on against an edited lesson would score one class against two versions.
    notebooks = [FRAMEWORK_NOTEBOOKS[framework]] if framework else [p.stem for p in course.notebooks(lesson)]
    digests = lesson_digests(course, lesson, notebooks)
    if not args.force:
        changed = changed_files(course, lesson, digests)
        if changed:
            again = f"coursekit grade {lesson}" + (f" --framework {framework}" if framework else "") + " --force"
            raise CourseError(f"{lesson} changed since it was registered in the gradebook ({', '.join(changed)} "
                              "edited), so its scores so far were graded against the old version: pass --force to "
                              f"regrade the class against the new version ({again})")
    if args.no_sandbox:
        os.environ[SANDBOX_ENV_VAR] = "0"  # read by nbgrader_config.py in every nbgrader process
    elif os.environ.get(SANDBOX_ENV_VAR, "1") != "0":
        from .autograde.sandbox import sandbox_problem

        problem = sandbox_problem()
        if problem is not None:
            raise CourseError(problem)
    unprotected = os.environ.get(SANDBOX_ENV_VAR, "1") == "0"
    if unprotected:
        print(UNSANDBOXED_LINE, file=sys.stderr if args.json else sys.stdout, flush=True)
    # the score table needs nbgrader's gradebook API: import it while the kernels run
    api_import = threading.Thread(target=importlib.import_module, args=("nbgrader.api",), daemon=True)
    api_import.start()
    todo = students if args.force else [s for s in students if s not in already_graded(course, lesson)]
    skipped = len(students) - len(todo)
    previous = _scores(course, lesson, todo) if args.force else {}
    # Submissions nbgrader must not see (links, a missing, damaged or oversized notebook): one
    # line each, and the others are graded.
    wanted = {f"{name}.ipynb" for name in notebooks}
    refused = {s: why for s in todo if (why := submission_problem(submitted, s, lesson, wanted))}
    todo = [s for s in todo if s not in refused]
    if skipped:
        print(f"{skipped} already graded (use --force to grade them again)",
              file=sys.stderr if args.json else sys.stdout, flush=True)
    # what grading must not change, read while the instructor runs are made (no student code runs yet)
    before: dict[str, str] = {}
    watch = threading.Thread(target=lambda: before.update(snapshot(course.root, _package_dir())), daemon=True)
    watch.start()
    if todo:
        api_import.join()  # nbgrader's modules import each other: never two threads at once
        _instructor_runs(course, lesson, framework, args.json, args.jobs if len(todo) > 1 else 1)
    # the graders' nbgrader processes start and register the lesson while the snapshot is read;
    # no student's kernel starts before it is complete (ready=watch.join)
    with progress_bar(len(todo), enabled=not args.json) as bar:
        if args.jobs == 1 or len(todo) <= 1:
            outcomes = grade_serial(course, lesson, todo, framework, bar, ready=watch.join)
        else:
            outcomes = grade_parallel(course, lesson, todo, framework, args.jobs, bar, ready=watch.join)
    watch.join()
    tripped = changed_since(before, snapshot(course.root, _package_dir()))
    record_digests(course, lesson, digests)  # the lesson as registered by this run
    _record_check_results(course, lesson, [o.student for o in outcomes if o.ok], notebooks)
    failed = [f"{o.student}: {o.reason}" for o in outcomes if not o.ok]
    rows = score_table(course, lesson, students)
    if unprotected:
        for r in rows:
            r["sandbox"] = False
    # a regrade (--force) says whose score it changed
    changes = []
    for r in rows:
        old = previous.get((r["student"], r["notebook"]))
        if old is not None and r["score"] != old:
            r["previous_score"] = old
            changes.append(f"{r['student']} {r['notebook']}: {old:g} -> "
                           + ("-" if r["score"] is None else f"{r['score']:g}"))
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        if unprotected:
            print(f"\n{UNSANDBOXED_LINE}")
        print(f"\n{'student':<20} {'notebook':<10} {'score':>7} {'max':>5}  exercises")
        for r in rows:
            ex = " ".join(f"{k}={v[0]:g}/{v[1]:g}" for k, v in sorted(r["grades"].items()) if v[1])
            score = "-" if r["score"] is None else f"{r['score']:g}"
            mx = "-" if r["max_score"] is None else f"{r['max_score']:g}"
            print(f"{r['student']:<20} {r['notebook']:<10} {score:>7} {mx:>5}  {ex}")
        if changes:
            print()
            for line in changes:
                print(line)
    for student, why in refused.items():
        print(f"coursekit: error: {student}: {why}", file=sys.stderr)
    for f in failed:
        print(f"coursekit: error: autograde failed for {f}", file=sys.stderr)
    if tripped:
        shown = ", ".join(tripped[:5]) + (f" and {len(tripped) - 5} more" if len(tripped) > 5 else "")
        print(f"coursekit: error: grading changed {len(tripped)} file(s) it must never change ({shown}); "
              "the scores of this run cannot be trusted: restore the course and the environment "
              "(git status, pip install), then grade again with --force", file=sys.stderr)
        return 3
    return 1 if failed or refused else 0


def _record_check_results(course: Course, lesson: str, students: list[str], notebooks: list[str]) -> None:
    """What each notebook graded in this run failed on, kept for `coursekit report`
    (coursekit.autograde.results: the grader wrote it into the graded notebook)."""
    from .autograde.results import record_results, results_of_notebook

    graded = {}
    for student in students:
        for name in notebooks:
            path = course.root / "autograded" / student / lesson / f"{name}.ipynb"
            if path.is_file():
                graded[(student, name)] = results_of_notebook(path, student, name)
    record_results(course, lesson, graded)


def _package_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent


def _instructor_runs(course: Course, lesson: str, framework: str | None, quiet: bool, jobs: int) -> None:
    """Record the instructor's run of each notebook once (the checks of every submission are
    compared with it), with the thread caps the graders will have, saying how long the cold run took."""
    from .autograde.expected import InstructorRunFailed
    from .autograde.sandbox import SandboxUnavailable

    out = sys.stderr if quiet else sys.stdout
    caps = thread_env(jobs) if jobs > 1 else {}
    saved = {k: os.environ.get(k) for k in caps}
    os.environ.update(caps)
    try:
        for notebook, seconds in ensure_instructor_runs(course, lesson, framework):
            if seconds is not None:
                print(f"recorded the instructor's run of {lesson}/{notebook}.ipynb in {seconds:.1f} s "
                      "(once per solution, coursekit and library version)", file=out, flush=True)
    except (InstructorRunFailed, SandboxUnavailable) as err:
        raise CourseError(str(err).removeprefix("coursekit: ")) from None
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def _graded_students(course: Course, lesson: str) -> list[str]:
    done = sorted(already_graded(course, lesson)) if course.has_gradebook() else []
    if not done:
        raise CourseError(f"nobody has been graded on {lesson} yet: run `coursekit grade {lesson}` first")
    return done


def cmd_feedback(args) -> int:
    course = _course(args)
    lesson = course.lesson(args.lesson)
    graded = _graded_students(course, lesson)
    students = args.student or graded
    missing = [s for s in students if s not in graded]
    if missing:
        raise CourseError(f"no graded submission of {lesson} for student(s) {', '.join(missing)}; "
                          f"graded: {', '.join(graded)}")
    # nbgrader's own feedback, every student in one nbgrader process; nbgrader_config.py adds
    # coursekit.autograde.feedback's preprocessors so hidden tests stay hidden. One student's
    # failure is reported and nobody else's feedback is lost.
    outcomes = feedback_class(course, lesson, students)
    for outcome in outcomes:
        if outcome.ok:
            for path in sorted((course.root / "feedback" / outcome.student / lesson).glob("*.html")):
                print(path.relative_to(course.root))
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        print(f"coursekit: error: feedback for {o.student} failed ({o.reason}); the others' feedback was "
              f"written: run `nbgrader generate_feedback {lesson} --student={o.student}` in {course.root} "
              "for nbgrader's full log", file=sys.stderr)
    return 1 if failed else 0


def cmd_export(args) -> int:
    course = _course(args)
    if not course.has_gradebook():
        raise CourseError(f"no gradebook at {course.db_url}: grade a lesson first")
    lessons = [course.lesson(name) for name in args.lesson or []]
    fmt = args.format
    if fmt == "csv" and (args.roster or args.percent):
        raise CourseError("--roster and --percent go with --format canvas or moodle; the csv format lists "
                          "points per exercise. Example: coursekit export --format canvas --roster roster.csv")
    if args.canvas_assignment and fmt != "canvas":
        raise CourseError("--canvas-assignment goes with --format canvas; received --format " + fmt)
    if fmt != "csv" and not args.roster:
        raise CourseError(f"--format {fmt} needs --roster FILE: a CSV mapping student_id (the folder names under "
                          "submitted/) to the LMS's ids; see `coursekit export --help`")
    to = os.path.abspath(args.to or ("grades.csv" if fmt == "csv" else f"{fmt}-grades.csv"))
    if os.path.isdir(to):
        raise CourseError(f"--to must be a file path; {to} is a directory")
    if fmt != "csv":
        from . import lms

        try:  # the roster first: a mistake in it is found before the gradebook is read
            roster = lms.read_roster(args.roster, fmt)
        except lms.RosterError as exc:
            raise CourseError(str(exc)) from None
    extra = [f"--ExportPlugin.assignment={name}" for name in lessons]
    per_exercise = to if fmt == "csv" else to + ".exercises.part"
    proc = nbgrader(course, "export", "--exporter=coursekit.export.ExerciseCsvExport", f"--to={per_exercise}", *extra)
    if proc.returncode != 0 or not os.path.isfile(per_exercise):
        raise CourseError(f"export failed: {_nbgrader_error(proc)}")
    if fmt == "csv":
        with open(to) as fh:
            n = sum(1 for _ in fh) - 1
        print(f"wrote {n} exercise scores to {to}")
        return 0

    try:
        with open(per_exercise, newline="") as fh:
            rows = list(csv.DictReader(fh))
    finally:
        os.unlink(per_exercise)
    columns = lessons or sorted({r["assignment"] for r in rows})
    from .autograde.results import handed_in, read_results

    graded = {(s, lesson, nb) for lesson in columns for s, nb in handed_in(read_results(course, lesson))}
    scores = lms.lesson_scores(rows, graded)
    try:
        ids = lms.canvas_assignment_ids(args.canvas_assignment or [], columns)
        n = lms.write_lms_csv(to, fmt, roster, scores, columns, percent=args.percent, canvas_ids=ids)
    except lms.RosterError as exc:
        raise CourseError(str(exc)) from None
    both = sorted(f"{s}/{lesson}" for s, by in scores.items() for lesson, got in by.items() if got.ignored)
    print(f"wrote {n} students x {len(columns)} lessons ({'percent' if args.percent else 'points'}) for {fmt} to {to}")
    if both:
        print(f"handed in both notebooks, the better one counts: {', '.join(both)}")
    return 0


# ---------------------------------------------------------------- report
def cmd_report(args) -> int:
    from .report import build_report

    course = _course(args)
    if not course.has_gradebook():
        raise CourseError(f"no gradebook at {course.db_url}: grade a lesson first")
    lesson = course.lesson(args.lesson)
    _, files = build_report(course, lesson, _reports_dir(course, lesson, args.to))
    for path in files:
        print(os.path.relpath(path))
    return 0


def _reports_dir(course: Course, lesson: str, to: str | None):
    """Where `coursekit report` and `coursekit similarity` write: --to, or reports/LESSON/ in the course."""
    from pathlib import Path

    dest = Path(os.path.abspath(to)) if to else course.root / "reports" / lesson
    if dest.exists() and not dest.is_dir():
        raise CourseError(f"--to must be a folder; {dest} is a file")
    return dest


def cmd_similarity(args) -> int:
    from .similarity import similar_pairs, write_page

    course = _course(args)
    lesson = course.lesson(args.lesson)
    if not 0 < args.threshold <= 1:
        raise CourseError(f"--threshold must be in (0, 1]; received {args.threshold}")
    if args.min_tokens < 1:
        raise CourseError(f"--min-tokens must be at least 1; received {args.min_tokens}")
    pairs, answers = similar_pairs(course, lesson, threshold=args.threshold, min_tokens=args.min_tokens)
    if not answers:
        raise CourseError(f"nobody has submitted {lesson}: {course.root / 'submitted'} has no <student>/{lesson}/ notebook")
    page = write_page(lesson, pairs, answers, _reports_dir(course, lesson, args.to))
    students = len({s for codes in answers.values() for s in codes})
    print(f"{len(pairs)} pair(s) at or above {args.threshold:g} among {students} students' answers "
          f"({len(answers)} exercise cells); details: {os.path.relpath(page)}")
    for p in pairs:
        print(f"{p.similarity:5.0%}  {p.notebook:<8} {p.exercise:<12} {p.a}  {p.b}")
    return 0


# ---------------------------------------------------------------- site
def cmd_site(args) -> int:
    from pathlib import Path

    from .site import build_site

    course = _course(args)
    out = Path(args.out) if args.out else course.root / "_build" / "site"
    build_site(course, out, jobs=args.jobs, force=args.force, log=lambda m: print(m, flush=True))
    return 0


# ---------------------------------------------------------------- audit
def cmd_audit(args) -> int:
    """Cells the grader would refuse to run (coursekit.autograde.audit), for students and instructors."""
    from pathlib import Path

    from .autograde.audit import audit_notebook
    from .notebooks import read_notebook

    course = _course(args)
    flagged = 0
    for name in args.notebooks:
        path = Path(name).resolve()
        if not path.is_file():
            raise CourseError(f"no notebook at {name}")
        lesson = args.lesson or path.parent.name
        release = course.lessons_dir / lesson / path.name
        if not release.is_file():
            raise CourseError(f"{path.name} of lesson {lesson!r} is not in {course.lessons_dir}: "
                              "pass --lesson, and keep the notebook's file name (pytorch.ipynb or keras.ipynb)")
        findings = audit_notebook(read_notebook(path), read_notebook(release))
        for index, cell_findings in sorted(findings.items()):
            flagged += 1
            for finding in cell_findings:
                print(f"{name}: cell {index + 1}, {finding}")
        if not findings:
            print(f"{name}: ok (every cell follows the grading rules)")
    return 1 if flagged else 0


# ---------------------------------------------------------------- main
def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coursekit", description="Instructor tools for the feature-fusion course.")
    p.add_argument("--root", default=None, help="course directory (default: search upwards from here)")
    sub = p.add_subparsers(dest="command", required=True)

    o = sub.add_parser("open", help="start JupyterLab on the course")
    o.add_argument("--headless", action="store_true", help="no browser; print the URL (or COURSEKIT_HEADLESS=1)")
    o.add_argument("--port", type=int, default=int(os.environ.get("COURSEKIT_PORT", "8888")))
    o.add_argument("--ip", default="127.0.0.1")
    o.set_defaults(func=cmd_open)

    d = sub.add_parser("doctor", help="check the installation and the course")
    d.set_defaults(func=cmd_doctor)

    b = sub.add_parser("build", help="regenerate lessons/ from solutions/")
    b.add_argument("lessons", nargs="*", help="lesson names (default: all)")
    b.add_argument("--check", action="store_true", help="write nothing; fail if lessons/ is out of sync")
    b.set_defaults(func=cmd_build)

    g = sub.add_parser("grade", help="autograde submitted/<student>/LESSON through nbgrader")
    g.add_argument("lesson")
    g.add_argument("--framework", choices=sorted(FRAMEWORK_NOTEBOOKS), default=None,
                   help="grade only this framework's notebook (a torch-only or keras-only class)")
    g.add_argument("--student", action="append", help="grade only this student (repeatable)")
    g.add_argument("--json", action="store_true", help="print the scores as JSON")
    g.add_argument("--jobs", "-j", type=int, default=1,
                   help="grade this many submissions at once (each in its own nbgrader run; default 1)")
    g.add_argument("--force", action="store_true", help="grade again students already in the gradebook")
    g.add_argument("--no-sandbox", action="store_true",
                   help="run submissions without the OS sandbox (unprotected; every score table and feedback says so)")
    g.set_defaults(func=cmd_grade)

    f = sub.add_parser("feedback", help="HTML feedback (hidden tests removed) for graded students")
    f.add_argument("lesson")
    f.add_argument("--student", action="append", help="only this student (repeatable)")
    f.set_defaults(func=cmd_feedback)

    e = sub.add_parser("export", help="CSV of scores per student, notebook and exercise; or an LMS import file",
                       description="--format csv (default): one row per student, notebook and exercise. "
                       "--format canvas|moodle: the CSV that Canvas or Moodle imports, one row per student of "
                       "--roster and one column per lesson; when a student handed in both notebooks of a lesson, "
                       "the one with the higher share of its points counts; nothing graded: an empty cell. "
                       "The roster is a CSV with student_id (the folder names under submitted/) and, for Canvas, "
                       "name, canvas_id, sis_user_id, sis_login_id, section (one id at least); for Moodle, one of "
                       "email, username, idnumber.")
    e.add_argument("--lesson", action="append", help="only this lesson (repeatable; default: all graded)")
    e.add_argument("--format", choices=("csv", "canvas", "moodle"), default="csv",
                   help="csv (per exercise, default), canvas or moodle (per lesson, needs --roster)")
    e.add_argument("--roster", help="CSV mapping student_id to the LMS's user ids (canvas, moodle)")
    e.add_argument("--percent", action="store_true", help="percent of each lesson's points instead of points")
    e.add_argument("--canvas-assignment", action="append", metavar="LESSON=ID",
                   help="with --format canvas: head LESSON's column 'LESSON (ID)' to update Canvas assignment ID "
                   "(from its URL) instead of creating one (repeatable)")
    e.add_argument("--to", help="file to write (default: grades.csv, canvas-grades.csv or moodle-grades.csv)")
    e.set_defaults(func=cmd_export)

    r = sub.add_parser("report", help="item statistics of a graded lesson: HTML pages and a CSV (reports/LESSON/)",
                       description="Per exercise of each notebook: students, mean, share of full marks, item "
                       "discrimination (corrected item-total correlation) and the most frequent failing checks; "
                       "per notebook the score distribution and the limits hit; the gradebook's students who "
                       "handed in nothing, and who handed in both notebooks (the better one counts). Written to "
                       "reports/LESSON/ (git-ignored: it names students), never into the course site.")
    r.add_argument("lesson")
    r.add_argument("--to", help="folder to write (default: reports/LESSON/ in the course)")
    r.set_defaults(func=cmd_report)

    m = sub.add_parser("similarity", help="pairs of submissions whose answers are near copies (reports/LESSON/)",
                       description="Per exercise, every pair of answers compared by copydetect's fingerprints (MOSS) after "
                       "normalizing names, strings, comments and formatting; the released cell and what much of "
                       "the class writes alike are left out, and short answers are not compared. Pairs at or "
                       "above --threshold are printed, most similar first, and shown side by side in "
                       "reports/LESSON/similarity.html. A pair is a place to look, not a verdict.")
    m.add_argument("lesson")
    m.add_argument("--threshold", type=float, default=0.7, help="list pairs at or above this similarity (default 0.7)")
    m.add_argument("--min-tokens", type=int, default=40, help="compare answers of at least this many tokens (default 40)")
    m.add_argument("--to", help="folder for similarity.html (default: reports/LESSON/ in the course)")
    m.set_defaults(func=cmd_similarity)

    s = sub.add_parser("site", help="static course site (Sphinx + MyST-NB) with outputs of an executed run")
    s.add_argument("--out", default=None, help="output folder (default: _build/site); the site is OUT/html/")
    s.add_argument("--jobs", "-j", type=int, default=2,
                   help="execute this many notebooks at once, each with its share of the cores (default 2)")
    s.add_argument("--force", action="store_true", help="execute every notebook again, even if up to date")
    s.set_defaults(func=cmd_site)

    a = sub.add_parser("audit", help="list cells that the grader would not run (tampering with grading)")
    a.add_argument("notebooks", nargs="+", help="notebook files (e.g. submitted/ann/01-shape-alignment/pytorch.ipynb)")
    a.add_argument("--lesson", default=None, help="the lesson (default: the notebook's folder name)")
    a.set_defaults(func=cmd_audit)
    return p


def main(argv: list[str] | None = None) -> int:
    skip_rfc3987_grammar()  # reading notebooks imports jsonschema: 1.1 s less per command
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except CourseError as err:
        print(f"coursekit: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("coursekit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
