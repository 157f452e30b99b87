"""Parallel grading benchmark: N submissions of one lesson notebook, graded by serial
`nbgrader autograde` and by `coursekit grade --jobs J`.

    .venv/bin/python bench/grade_parallel.py [--students 20] [--jobs 2] [--repeat 3] [--lesson 01-shape-alignment]
                                            [--notebook pytorch] [--unprotected]

Both use the course's nbgrader_config.py: every kernel in the OS sandbox, test cells judged outside
the kernel against the instructor's run. That run is recorded once before the timed pairs (its cold
time is printed separately; it is one per thread count, so once for the serial grader and once for
--jobs J's capped kernels) and reused warm by every pair. With --unprotected each repeat also times
serial `nbgrader autograde` with the sandbox and the outside verdicts off (the design before them):
the difference per notebook is what protection costs.

Each repeat grades the class each way, one after the other (serial first, so a slow spell of the
machine hits all), from a fresh course copy with the lesson registered, so only grading is timed.
Prints every pair, the median of the per-pair speed-ups and the median times, checks that both
gradebooks hold the same scores in every pair, and saves bench/results/grade_parallel.json.
Budgets: --jobs 2 >= 1.8x faster than serial on 2 cores; protection <= 2 s per notebook.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")

from conftest import copy_course  # noqa: E402
from nbtools import make_submission, solution_sources  # noqa: E402


def grade_once(mode: str, args, tmp: Path) -> tuple[float, dict]:
    """Seconds to grade the class in `mode` ('serial' or 'parallel'), and the gradebook's scores."""
    from nbgrader.api import Gradebook

    framework = "torch" if args.notebook == "pytorch" else "keras"
    name = f"{args.notebook}.ipynb"
    course = copy_course(tmp / mode)
    release = course / "lessons" / args.lesson / name
    solved = solution_sources(course / "solutions" / args.lesson / name)
    for i in range(args.students):
        make_submission(release, solved if i % 2 == 0 else {}, course / "submitted" / f"s{i:03d}" / args.lesson / name)
    env = dict(os.environ, COURSEKIT_NOTEBOOK_ID=args.notebook)
    subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", args.lesson, "--force",
                    f"--CourseDirectory.release_directory={tmp}/release-{mode}"],
                   cwd=course, env=env, check=True, capture_output=True)
    if mode == "serial":
        command = [sys.executable, "-m", "nbgrader", "autograde", args.lesson, "--force"]
    elif mode == "unprotected":
        command = [sys.executable, "-m", "nbgrader", "autograde", args.lesson, "--force",
                   "--BoundedExecute.sandbox=False", "--BoundedExecute.host_verdicts=False"]
    else:
        command = [sys.executable, "-m", "coursekit.cli", "grade", args.lesson, "--framework", framework,
                   "--jobs", str(args.jobs), "--force", "--json"]
    t = time.perf_counter()
    subprocess.run(command, cwd=course, env=env, check=True, capture_output=True)
    seconds = time.perf_counter() - t
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        scores = {s.student_id: s.score for s in gb.assignment_submissions(args.lesson)}
    return seconds, scores


def warm_instructor_runs(args) -> dict[str, float]:
    """Record the instructor runs the timed graders will reuse: seconds per thread setting."""
    from coursekit.autograde.runner import ensure_instructor_runs, thread_env
    from coursekit.notebooks import Course

    framework = "torch" if args.notebook == "pytorch" else "keras"
    cold = {}
    with tempfile.TemporaryDirectory() as tmp:
        course = Course(copy_course(Path(tmp) / "course"))
        for label, caps in (("serial", {}), (f"--jobs {args.jobs}", thread_env(args.jobs))):
            saved = dict(os.environ)
            os.environ.update(caps)
            try:
                t = time.perf_counter()
                ensure_instructor_runs(course, args.lesson, framework)
                cold[label] = time.perf_counter() - t
            finally:
                os.environ.clear()
                os.environ.update(saved)
    return cold


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--lesson", default="01-shape-alignment")
    ap.add_argument("--notebook", default="pytorch", choices=["pytorch", "keras"])
    ap.add_argument("--unprotected", action="store_true",
                    help="also time serial grading without the sandbox and the outside verdicts")
    args = ap.parse_args()
    expected = tempfile.mkdtemp(prefix="coursekit-bench-expected-")
    os.environ["COURSEKIT_EXPECTED_DIR"] = expected  # one warm set of instructor runs for every pair
    cold = warm_instructor_runs(args)
    print(f"{args.students} submissions of {args.lesson}/{args.notebook}.ipynb, {os.cpu_count()} CPUs, "
          f"{args.repeat} repeat(s)", flush=True)
    print(f"cold instructor runs (recorded once, then warm): {', '.join(f'{k} {v:.1f} s' for k, v in cold.items())}")
    pairs, same = [], True
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            pair = {}
            if args.unprotected:
                pair["unprotected"], _ = grade_once("unprotected", args, Path(tmp))
            serial, serial_scores = grade_once("serial", args, Path(tmp))
            parallel, parallel_scores = grade_once("parallel", args, Path(tmp))
        same = same and serial_scores == parallel_scores and len(serial_scores) == args.students
        pair.update(serial=serial, parallel=parallel, speedup=serial / parallel)
        if args.unprotected:
            pair["protection_per_notebook"] = (serial - pair["unprotected"]) / args.students
        pairs.append(pair)
        extra = (f"   unprotected serial {pair['unprotected']:6.1f} s (protection "
                 f"{pair['protection_per_notebook']:+.2f} s/notebook)" if args.unprotected else "")
        print(f"  run {i + 1}: serial nbgrader autograde {serial:6.1f} s   coursekit grade --jobs {args.jobs} "
              f"{parallel:6.1f} s   {serial / parallel:.2f}x   same scores: {serial_scores == parallel_scores}{extra}",
              flush=True)
    median = {k: statistics.median(p[k] for p in pairs) for k in pairs[0]}
    print(f"median: serial {median['serial']:.1f} s, --jobs {args.jobs} {median['parallel']:.1f} s, "
          f"speed-up {median['speedup']:.2f}x (budget >= 1.8x); same scores in every run: {same}"
          + (f"; protection {median['protection_per_notebook']:+.2f} s per notebook (budget <= 2 s)"
             if args.unprotected else ""))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "grade_parallel.json").write_text(json.dumps(
        {"students": args.students, "jobs": args.jobs, "lesson": args.lesson, "notebook": args.notebook,
         "runs": pairs, "median": median, "same_scores": same, "cold_instructor_runs": cold}, indent=1))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
