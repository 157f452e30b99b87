"""Course benchmarks: import times, notebook execution, autograde time per notebook.

    .venv/bin/python bench/run.py [--repeat 3] [--lesson 01] [--skip-grade]

Each figure is the median of `--repeat` runs, printed as a table and saved as JSON in
bench/results/latest.json. Budgets (issue 2): `import coursekit` <= 0.3 s and no framework
loaded; each notebook <= 60 s; autograde of one notebook <= its execution time + 10 s.
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


def _median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def import_time(module: str, repeat: int) -> tuple[float, list[str]]:
    """Median wall time of `import module` in a fresh interpreter, and frameworks it loaded."""
    code = (
        "import sys, time; t = time.perf_counter(); import " + module + "; dt = time.perf_counter() - t; "
        "print(dt); print(','.join(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))"
    )
    times, loaded = [], []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
        times.append(float(out[0]))
        loaded = [m for m in out[1].split(",") if m]
    return statistics.median(times), loaded


def execute_notebook(path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()


def autograde_once(lesson: str, notebook: str) -> float:
    """Seconds for `nbgrader autograde` of one solved submission (gradebook set up beforehand)."""
    from conftest import copy_course
    from nbtools import make_submission, solution_sources

    with tempfile.TemporaryDirectory() as tmp:
        course = copy_course(Path(tmp) / "course")
        release = course / "lessons" / lesson / f"{notebook}.ipynb"
        make_submission(release, solution_sources(course / "solutions" / lesson / f"{notebook}.ipynb"),
                        course / "submitted" / "bench" / lesson / f"{notebook}.ipynb")
        env = dict(os.environ, COURSEKIT_NOTEBOOK_ID=notebook)
        run = lambda *a: subprocess.run([sys.executable, "-m", "nbgrader", *a], cwd=course, env=env,  # noqa: E731
                                        capture_output=True, text=True)
        run("generate_assignment", lesson, "--force", f"--CourseDirectory.release_directory={tmp}/release")
        t = time.perf_counter()
        proc = run("autograde", lesson, "--force")
        dt = time.perf_counter() - t
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        return dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--lesson", default=None, help="only lessons starting with this")
    ap.add_argument("--skip-grade", action="store_true")
    args = ap.parse_args()

    rows: list[dict] = []
    # Interleaved (one run of each module per round) so machine load hits every module alike.
    modules = ("coursekit", "torch", "coursekit.torch", "keras", "coursekit.keras")
    samples: dict[str, list[float]] = {m: [] for m in modules}
    loaded: dict[str, list[str]] = {}
    for _ in range(args.repeat):
        for module in modules:
            dt, loaded[module] = import_time(module, 1)
            samples[module].append(dt)
    for module in modules:
        rows.append({"what": f"import {module}", "seconds": statistics.median(samples[module]),
                     "note": f"loads {','.join(loaded[module]) or 'no framework'}"})
    times = {r["what"]: r["seconds"] for r in rows}
    for half, base in (("coursekit.torch", "torch"), ("coursekit.keras", "keras")):
        delta = times[f"import {half}"] - times[f"import {base}"]
        rows.append({"what": f"import {half} - import {base}", "seconds": delta, "note": "budget +0.30 s"})

    lessons = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
    if args.lesson:
        lessons = [n for n in lessons if n.startswith(args.lesson)]
    for lesson in lessons:
        for nb in sorted((ROOT / "solutions" / lesson).glob("*.ipynb")):
            ex = _median_time(lambda: execute_notebook(nb), args.repeat)
            rows.append({"what": f"execute {lesson}/{nb.name}", "seconds": ex, "note": "budget 60 s"})
            if not args.skip_grade:
                times = [autograde_once(lesson, nb.stem) for _ in range(args.repeat)]
                ag = statistics.median(times)
                rows.append({"what": f"autograde {lesson}/{nb.name}", "seconds": ag,
                             "note": f"overhead {ag - ex:+.1f} s over execution (budget +10 s)"})

    print(f"{'what':<52} {'median s':>9}  note")
    for r in rows:
        print(f"{r['what']:<52} {r['seconds']:>9.2f}  {r['note']}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    payload = {"repeat": args.repeat, "python": sys.version.split()[0], "cpus": os.cpu_count(), "rows": rows}
    (out / "latest.json").write_text(json.dumps(payload, indent=1))
    print(f"saved {out / 'latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
