"""Parallel grading benchmark (issue 6): N submissions of one lesson notebook, graded by serial
`nbgrader autograde` and by `coursekit grade --jobs J`, in one run.

    .venv/bin/python bench/grade_parallel.py [--students 20] [--jobs 2] [--lesson 01-shape-alignment] [--notebook pytorch]

Prints both wall times and the speed-up ratio, checks both gradebooks hold the same scores, and
saves bench/results/grade_parallel.json. Budget: --jobs 2 >= 1.8x faster than serial on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--lesson", default="01-shape-alignment")
    ap.add_argument("--notebook", default="pytorch", choices=["pytorch", "keras"])
    args = ap.parse_args()
    framework = "torch" if args.notebook == "pytorch" else "keras"
    name = f"{args.notebook}.ipynb"
    with tempfile.TemporaryDirectory() as tmp:
        times, tables = {}, {}
        for mode in ("serial", "parallel"):
            course = copy_course(Path(tmp) / mode)
            release = course / "lessons" / args.lesson / name
            solved = solution_sources(course / "solutions" / args.lesson / name)
            for i in range(args.students):
                make_submission(release, solved if i % 2 == 0 else {},
                                course / "submitted" / f"s{i:03d}" / args.lesson / name)
            env = dict(os.environ, COURSEKIT_NOTEBOOK_ID=args.notebook)
            # Both modes start from a registered lesson, so only grading is timed.
            subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", args.lesson, "--force",
                            f"--CourseDirectory.release_directory={tmp}/release-{mode}"],
                           cwd=course, env=env, check=True, capture_output=True)
            t = time.perf_counter()
            if mode == "serial":
                subprocess.run([sys.executable, "-m", "nbgrader", "autograde", args.lesson, "--force"],
                               cwd=course, env=env, check=True, capture_output=True)
            else:
                subprocess.run([sys.executable, "-m", "coursekit.cli", "grade", args.lesson, "--framework", framework,
                                "--jobs", str(args.jobs), "--force", "--json"], cwd=course, env=env, check=True,
                               capture_output=True)
            times[mode] = time.perf_counter() - t
            from nbgrader.api import Gradebook

            with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
                tables[mode] = {s.student_id: s.score for s in gb.assignment_submissions(args.lesson)}
    same = tables["serial"] == tables["parallel"]
    ratio = times["serial"] / times["parallel"]
    print(f"{args.students} submissions of {args.lesson}/{name}, {os.cpu_count()} CPUs")
    print(f"serial nbgrader autograde   {times['serial']:8.1f} s")
    print(f"coursekit grade --jobs {args.jobs}    {times['parallel']:8.1f} s")
    print(f"speed-up                    {ratio:8.2f} x   (budget >= 1.8x)   same scores: {same}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "grade_parallel.json").write_text(json.dumps(
        {"students": args.students, "jobs": args.jobs, "seconds": times, "speedup": ratio, "same_scores": same}, indent=1))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
