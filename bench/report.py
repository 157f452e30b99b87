"""`coursekit report` on a synthetic class: how long the report of one lesson takes.

    .venv/bin/python bench/report.py [--students 200] [--repeat 3]

Writes a gradebook for a class of N students (lesson 01's real notebooks and points, random scores,
a failing check recorded for every exercise a student missed, a few limit hits, some students with
both notebooks, some with none), then times the whole command (`python -m coursekit.cli report`,
process start included) --repeat times and prints every time and the median.
Budget (issue 17): <= 30 s for one lesson of a 200-student class.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import copy_course  # noqa: E402
from nbtools import graded_cells  # noqa: E402

from coursekit.autograde.results import CheckResult, record_results  # noqa: E402
from coursekit.notebooks import Course  # noqa: E402

LESSON = "01-shape-alignment"


def synthetic_class(root: Path, students: int, seed: int = 0) -> None:
    from nbgrader.api import Gradebook

    copy_course(root)
    rng = random.Random(seed)
    points = {nb: graded_cells(root / "lessons" / LESSON / f"{nb}.ipynb") for nb in ("pytorch", "keras")}
    results: dict[tuple[str, str], list[CheckResult]] = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        gb.add_assignment(LESSON)
        for nb, cells in points.items():
            gb.update_or_create_notebook(nb, LESSON)
            for cell, p in cells.items():
                gb.update_or_create_grade_cell(cell, nb, LESSON, max_score=p, cell_type="code")
        for i in range(students):
            sid = f"s{i:04d}"
            gb.add_student(sid)
            if i % 25 == 24:
                continue  # handed in nothing
            gb.add_submission(LESSON, sid)
            handed = ["pytorch", "keras"] if i % 20 == 0 else [("pytorch", "keras")[i % 3 == 0]]
            skill = rng.random()
            for nb in ("pytorch", "keras"):
                got = []
                for cell, p in points[nb].items():
                    full = nb in handed and rng.random() < 0.3 + 0.6 * skill
                    gb.find_grade(cell, nb, LESSON, sid).auto_score = float(p) if full else 0.0
                    if nb in handed and not full:
                        got.append(CheckResult(sid, nb, cell, "check", f"{cell} check {rng.randint(1, 4)}"))
                if nb in handed and rng.random() < 0.02:
                    got.append(CheckResult(sid, nb, "", "limit", rng.choice(["time", "memory"])))
                if nb in handed:
                    results[(sid, nb)] = got
        gb.db.commit()
    record_results(Course(root), LESSON, results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "course"
        t0 = time.perf_counter()
        synthetic_class(root, args.students)
        print(f"synthetic class of {args.students} written in {time.perf_counter() - t0:.1f} s")
        times = []
        for i in range(args.repeat):
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "coursekit.cli", "--root", str(root), "report", LESSON,
                                   "--to", str(Path(tmp) / f"rep{i}")], capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return 1
            print(f"run {i + 1}: {times[-1]:.2f} s")
    median = statistics.median(times)
    print(f"median {median:.2f} s for {args.students} students (budget 30 s)")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "report.json").write_text(json.dumps({"students": args.students, "seconds": times, "median": median}, indent=1))
    return 0 if median <= 30 else 1


if __name__ == "__main__":
    sys.exit(main())
