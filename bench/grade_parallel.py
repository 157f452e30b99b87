"""Parallel grading benchmark (issue 6): N submissions of one lesson notebook, graded by serial
`nbgrader autograde` and by `coursekit grade --jobs J`.

    .venv/bin/python bench/grade_parallel.py [--students 20] [--jobs 2] [--repeat 3] [--lesson 01-shape-alignment] [--notebook pytorch]

Each repeat grades the class both ways, one after the other (serial first, then parallel, so a
slow spell of the machine hits both), from a fresh course copy with the lesson registered, so
only grading is timed. Prints every pair, the median of the per-pair speed-ups and the median
times, checks that both gradebooks hold the same scores in every pair, and saves
bench/results/grade_parallel.json. Budget: --jobs 2 >= 1.8x faster than serial on 2 cores.
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
    else:
        command = [sys.executable, "-m", "coursekit.cli", "grade", args.lesson, "--framework", framework,
                   "--jobs", str(args.jobs), "--force", "--json"]
    t = time.perf_counter()
    subprocess.run(command, cwd=course, env=env, check=True, capture_output=True)
    seconds = time.perf_counter() - t
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        scores = {s.student_id: s.score for s in gb.assignment_submissions(args.lesson)}
    return seconds, scores


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--lesson", default="01-shape-alignment")
    ap.add_argument("--notebook", default="pytorch", choices=["pytorch", "keras"])
    args = ap.parse_args()
    print(f"{args.students} submissions of {args.lesson}/{args.notebook}.ipynb, {os.cpu_count()} CPUs, "
          f"{args.repeat} repeat(s)", flush=True)
    pairs, same = [], True
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            serial, serial_scores = grade_once("serial", args, Path(tmp))
            parallel, parallel_scores = grade_once("parallel", args, Path(tmp))
        same = same and serial_scores == parallel_scores and len(serial_scores) == args.students
        pairs.append({"serial": serial, "parallel": parallel, "speedup": serial / parallel})
        print(f"  run {i + 1}: serial nbgrader autograde {serial:6.1f} s   coursekit grade --jobs {args.jobs} "
              f"{parallel:6.1f} s   {serial / parallel:.2f}x   same scores: {serial_scores == parallel_scores}", flush=True)
    median = {k: statistics.median(p[k] for p in pairs) for k in ("serial", "parallel", "speedup")}
    print(f"median: serial {median['serial']:.1f} s, --jobs {args.jobs} {median['parallel']:.1f} s, "
          f"speed-up {median['speedup']:.2f}x (budget >= 1.8x); same scores in every run: {same}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "grade_parallel.json").write_text(json.dumps(
        {"students": args.students, "jobs": args.jobs, "lesson": args.lesson, "notebook": args.notebook,
         "runs": pairs, "median": median, "same_scores": same}, indent=1))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
