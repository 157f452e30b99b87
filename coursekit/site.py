"""A static course site: every lesson as students get it, with the outputs of an executed run.

    coursekit site [--out DIR] [--jobs N] [--force]

1. **Execute** every instructor notebook (solutions/<lesson>/<nb>.ipynb) with nbclient, `--jobs` at
   a time, each in its own process with its share of the cores (`grader.thread_env`) and
   `NBGRADER_EXECUTION=autograde` set, so it runs exactly as autograde runs it: the small run size
   (unless `COURSEKIT_RUN_SIZE` says otherwise) and no progress bars. Executed notebooks are kept in
   DIR/executed/ (they hold solutions: build input, never published) and reused on the next build
   while their key (the lesson folder, coursekit's sources, the run size, framework versions) is
   unchanged.
2. **Assemble** one page notebook per lesson and framework: every cell's source from lessons/ (the
   student version: answer stubs, tests without hidden tests), outputs from the executed run for
   every other cell. Answer and test cells show no output (it would come from the solution and the
   hidden tests). Cells are matched by position, type and nbgrader grade_id, and every other cell
   must have the same source in both: any disagreement stops the build (run `coursekit build`).
3. **Render** DIR/source/ (a landing page made from the README's lesson table, and the 16 pages)
   with Sphinx + MyST-NB (the engine of Jupyter Book 1, offline, no execution) into DIR/html/.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from .autograde.runner import thread_env
from .notebooks import FRAMEWORK_NOTEBOOKS, Course, CourseError, read_notebook
from .runsize import ENV_VAR as RUN_SIZE_ENV_VAR
from .runsize import NBGRADER_ENV_VAR

FRAMEWORK_TITLES = {"pytorch": "PyTorch", "keras": "Keras"}
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = ("<p><em>[An interactive panel (ipywidgets): its controls work in JupyterLab. "
               "What follows is the output of its first run.]</em></p>")
CELL_TIMEOUT_S = 600
SITE_TITLE = "Feature fusion in CNNs"


@dataclass(frozen=True)
class Page:
    lesson: str
    notebook: str  # "pytorch" or "keras"

    @property
    def rel(self) -> str:
        """Document name in the site (no suffix): lessons/<lesson>/<notebook>."""
        return f"lessons/{self.lesson}/{self.notebook}"

    @property
    def label(self) -> str:
        return f"{self.lesson}/{self.notebook}"


def pages(course: Course) -> list[Page]:
    out = [Page(lesson, nb.stem) for lesson in course.lessons() for nb in course.notebooks(lesson)]
    if not out:
        raise CourseError(f"no lesson notebooks in {course.solutions}")
    unknown = [p.label for p in out if p.notebook not in FRAMEWORK_TITLES]
    if unknown:
        raise CourseError(f"notebooks named other than {'/'.join(FRAMEWORK_NOTEBOOKS.values())}.ipynb: {unknown}")
    return out


# ---------------------------------------------------------------- 1. execute
def _run_env() -> dict[str, str]:
    """What the kernels see besides the thread caps: autograde's marker (small run size, no bars)."""
    return {NBGRADER_ENV_VAR: os.environ.get(NBGRADER_ENV_VAR) or "autograde"}


def execution_key(course: Course, page: Page) -> str:
    """Everything an execution's outputs depend on that can change between builds."""
    h = hashlib.sha256()
    for path in sorted((course.solutions / page.lesson).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and ".ipynb_checkpoints" not in path.parts:
            h.update(path.relative_to(course.solutions).as_posix().encode() + b"\0" + path.read_bytes())
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    versions = {d: _version(d) for d in ("numpy", "torch", "tensorflow", "keras", "matplotlib", "scikit-learn")}
    h.update(json.dumps({"python": sys.version, "versions": versions, "run_size": os.environ.get(RUN_SIZE_ENV_VAR, ""),
                         **_run_env()}, sort_keys=True).encode())
    return h.hexdigest()


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _cached(path: Path, key: str) -> bool:
    if not path.is_file():
        return False
    try:
        nb = read_notebook(path)
    except CourseError:
        return False
    return nb.metadata.get("coursekit_site", {}).get("key") == key


def _execute_one(course: Course, page: Page, dest: Path, key: str, jobs: int) -> tuple[Page, float, str]:
    """Execute solutions/<lesson>/<nb>.ipynb into `dest` in a child process; returns (page, seconds,
    error text or '')."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="coursekit-site-") as tmp:
        # Run in a copy of the lesson folder: whatever the notebook writes stays out of solutions/.
        work = Path(tmp) / page.lesson
        shutil.copytree(course.solutions / page.lesson, work,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        out = Path(tmp) / "executed.ipynb"
        env = {**os.environ, **thread_env(jobs), **_run_env()}
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        proc = subprocess.run(
            [sys.executable, "-m", "coursekit.site", "--execute", str(work / f"{page.notebook}.ipynb"), str(out), key],
            env=env, capture_output=True, text=True,
        )
        seconds = time.monotonic() - started
        if proc.returncode != 0 or not out.is_file():
            text = re.sub(r"\x1b\[[0-9;]*m", "", (proc.stderr + proc.stdout).strip())
            return page, seconds, "\n".join(text.splitlines()[-25:]) or f"exit code {proc.returncode}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(out, dest)
    return page, seconds, ""


def _execute_main(src: str, dst: str, key: str) -> int:
    """Child process: execute one notebook with nbclient (no errors allowed) and save it."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(src, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": os.path.dirname(src)}})
    try:
        client.execute()
    except CellExecutionError as err:
        print(f"a cell failed:\n{err}", file=sys.stderr)
        return 1
    nb.metadata["coursekit_site"] = {"key": key}
    nbformat.write(nb, dst)
    return 0


def execute_all(course: Course, todo: list[Page], executed: Path, jobs: int, force: bool,
                log=print) -> dict[str, float]:
    """Execute the pages' instructor notebooks into executed/<lesson>/<nb>.ipynb, `jobs` at a time,
    reusing up-to-date executions unless `force`. Returns {page label: seconds} of those run."""
    keys = {p: execution_key(course, p) for p in todo}
    run = [p for p in todo if force or not _cached(executed / f"{p.rel.removeprefix('lessons/')}.ipynb", keys[p])]
    if len(run) < len(todo):
        log(f"site: reusing {len(todo) - len(run)} up-to-date execution(s) in {executed} (--force runs them again)")
    # Keras notebooks take longest: start them first so the pool's tail is short.
    run.sort(key=lambda p: (p.notebook != "keras", p.lesson))
    jobs = max(1, min(jobs, len(run) or 1))
    times: dict[str, float] = {}
    failed: list[str] = []
    if run:
        log(f"site: executing {len(run)} notebook(s), {jobs} at a time")
    with ThreadPoolExecutor(max_workers=jobs) as pool:  # threads only wait on child processes
        futures = [pool.submit(_execute_one, course, p, executed / p.lesson / f"{p.notebook}.ipynb", keys[p], jobs)
                   for p in run]
        for fut in as_completed(futures):
            page, seconds, error = fut.result()
            times[page.label] = seconds
            if error:
                failed.append(f"{page.label}: {error}")
                log(f"site: {page.label} FAILED after {seconds:.0f} s")
            else:
                log(f"site: executed {page.label} in {seconds:.0f} s")
    if failed:
        raise CourseError("executing the instructor notebooks failed; the site was not built:\n" + "\n\n".join(failed))
    return times


# ---------------------------------------------------------------- 2. assemble
def _clean_outputs(outputs: list) -> list:
    """Outputs as a static page can show them: a widget becomes a note (there is no kernel behind it)."""
    import nbformat

    cleaned = []
    for out in outputs:
        out = nbformat.from_dict(json.loads(json.dumps(out)))
        data = out.get("data")
        if data and WIDGET_MIME in data:
            out["data"] = {"text/html": WIDGET_NOTE}
        cleaned.append(out)
    return cleaned


def assemble(lesson_nb, executed_nb, where: str):
    """The page notebook: sources from the student notebook, outputs from the executed solution.

    Raises CourseError when the two do not correspond cell by cell."""
    import nbformat

    cells_l, cells_e = lesson_nb.cells, executed_nb.cells
    if len(cells_l) != len(cells_e):
        raise CourseError(f"{where}: lessons/ has {len(cells_l)} cells, the executed solution {len(cells_e)}; "
                          "run `coursekit build`")
    page = nbformat.v4.new_notebook()
    page.metadata = {"kernelspec": dict(lesson_nb.metadata.get("kernelspec", {})),
                     "language_info": {"name": "python", "pygments_lexer": "ipython3"}}
    for i, (lc, ec) in enumerate(zip(cells_l, cells_e)):
        lg, eg = lc.metadata.get("nbgrader", {}), ec.metadata.get("nbgrader", {})
        if lc.cell_type != ec.cell_type or lg.get("grade_id") != eg.get("grade_id"):
            raise CourseError(
                f"{where}: cell {i} is a {lc.cell_type} cell (grade_id {lg.get('grade_id')}) in lessons/ but a "
                f"{ec.cell_type} cell (grade_id {eg.get('grade_id')}) in solutions/; run `coursekit build`")
        exercise = bool(lg.get("solution") or lg.get("grade") or eg.get("solution") or eg.get("grade"))
        if not exercise and lc.source != ec.source:
            raise CourseError(f"{where}: cell {i} differs between lessons/ and solutions/; run `coursekit build`")
        meta = {"tags": list(lc.metadata["tags"])} if lc.metadata.get("tags") else {}
        if lc.cell_type == "code":
            cell = nbformat.v4.new_code_cell(lc.source, metadata=meta)
            if not exercise:  # an answer or test cell's output comes from the solution / hidden tests
                cell.outputs = _clean_outputs(ec.outputs)
                cell.execution_count = ec.execution_count
        elif lc.cell_type == "markdown":
            cell = nbformat.v4.new_markdown_cell(lc.source, metadata=meta)
        else:
            cell = nbformat.v4.new_raw_cell(lc.source, metadata=meta)
        cell["id"] = f"cell-{i:03d}"
        page.cells.append(cell)
    errors = [i for i, c in enumerate(page.cells) if c.cell_type == "code"
              for o in c.outputs if o.get("output_type") == "error"]
    if errors:
        raise CourseError(f"{where}: the instructor run shows errors in cells {errors}")
    return page


# ---------------------------------------------------------------- 3. render
def lesson_table(readme: Path, lessons: list[str]) -> list[list[str]]:
    """Rows [lesson, what it shows, graded] of the README's lesson table; lessons it misses get a row
    with empty cells, so every lesson is on the landing page."""
    rows: dict[str, list[str]] = {}
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    for line in text.splitlines():
        m = re.match(r"^\|\s*`?(\d\d-[a-z0-9-]+)`?\s*\|(.*)\|\s*$", line)
        if m and m[1] in lessons:
            rows[m[1]] = [c.strip() for c in m[2].split("|")]
    return [[name, *(rows.get(name) or ["", ""])[:2]] for name in lessons]


def _intro(readme: Path) -> str:
    """The README's first paragraph (what the course is)."""
    if not readme.is_file():
        return ""
    paras = re.split(r"\n\s*\n", readme.read_text(encoding="utf-8"))
    for p in paras:
        if p.strip() and not p.lstrip().startswith(("#", "|", "```")):
            return p.strip()
    return ""


def index_page(course: Course, all_pages: list[Page]) -> str:
    lessons = sorted({p.lesson for p in all_pages})
    by_lesson = {n: [p for p in all_pages if p.lesson == n] for n in lessons}
    run_size = os.environ.get(RUN_SIZE_ENV_VAR) or "small"
    how = ", as nbgrader runs it" if run_size == "small" else ""
    about = ("Each page is a lesson notebook as students get it (exercises blank, hidden tests removed) "
             "with the outputs of one executed run of the instructor notebook "
             f"(run size **{run_size}**{how}). To run a lesson yourself, open it in JupyterLab (`coursekit open`).")
    lines = [f"# {SITE_TITLE}", "", _intro(course.root / "README.md"), "", about, "",
             "| lesson | what it shows (by experiment) | graded | pages |", "|---|---|---|---|"]
    for name, shows, graded in lesson_table(course.root / "README.md", lessons):
        links = " · ".join(f"{{doc}}`{FRAMEWORK_TITLES[p.notebook]} <{p.rel}>`"
                           for p in sorted(by_lesson[name], key=lambda p: p.notebook != "pytorch"))
        lines.append(f"| `{name}` | {shows} | {graded} | {links} |")
    for nb in ("pytorch", "keras"):
        entries = [p.rel for p in all_pages if p.notebook == nb]
        if entries:
            lines += ["", "```{toctree}", ":hidden:", ":maxdepth: 1", f":caption: {FRAMEWORK_TITLES[nb]}", "",
                      *entries, "```"]
    return "\n".join(lines) + "\n"


CONF_PY = '''\
# Written by `coursekit site`; edits are overwritten.
project = {title!r}
author = "coursekit"
extensions = ["myst_nb"]
html_theme = "sphinx_book_theme"
html_title = {title!r}
html_theme_options = {{"show_toc_level": 2, "home_page_in_toc": True}}
html_show_sourcelink = False
html_copy_source = False
nb_execution_mode = "off"           # outputs come from coursekit's executed run
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type", "misc.highlighting_failure"]
'''


def write_source(course: Course, all_pages: list[Page], executed: Path, source: Path) -> None:
    import nbformat

    if source.exists():
        shutil.rmtree(source)
    source.mkdir(parents=True)
    (source / "conf.py").write_text(CONF_PY.format(title=SITE_TITLE), encoding="utf-8")
    (source / "index.md").write_text(index_page(course, all_pages), encoding="utf-8")
    for p in all_pages:
        lesson_nb = read_notebook(course.lessons_dir / p.lesson / f"{p.notebook}.ipynb")
        executed_nb = read_notebook(executed / p.lesson / f"{p.notebook}.ipynb")
        page = assemble(lesson_nb, executed_nb, p.label)
        dest = source / f"{p.rel}.ipynb"
        dest.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(page, dest)


def render(source: Path, html: Path, doctrees: Path, jobs: int) -> list[str]:
    """sphinx-build; returns its warnings."""
    for d in (html, doctrees):
        if d.exists():
            shutil.rmtree(d)
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-E", "-q", "-j", str(max(1, jobs)),
         "-d", str(doctrees), str(source), str(html)],
        capture_output=True, text=True,
    )
    if proc.returncode != 0 or not (html / "index.html").is_file():
        tail = "\n".join((proc.stderr + proc.stdout).strip().splitlines()[-20:])
        raise CourseError(f"sphinx could not render the site (is the 'site' extra installed? "
                          f"pip install -e '.[site]'):\n{tail}")
    return [ln for ln in proc.stderr.splitlines() if "WARNING" in ln or "ERROR" in ln]


def build_site(course: Course, out: Path, jobs: int = 2, force: bool = False, log=print) -> Path:
    """Execute, assemble and render the site into `out`; returns out/html/index.html."""
    for mod in ("sphinx", "myst_nb", "sphinx_book_theme", "nbclient"):
        try:
            __import__(mod)
        except ImportError:
            raise CourseError(f"{mod} is not installed: pip install -e '.[site]'") from None
    if jobs < 1:
        raise CourseError(f"--jobs must be at least 1; received {jobs}")
    out = out.resolve()
    all_pages = pages(course)
    missing = [p.label for p in all_pages if not (course.lessons_dir / p.lesson / f"{p.notebook}.ipynb").is_file()]
    if missing:
        raise CourseError(f"lessons/ lacks {', '.join(missing)}: run `coursekit build`")
    started = time.monotonic()
    executed = out / "executed"
    times = execute_all(course, all_pages, executed, jobs, force, log)
    exec_s = time.monotonic() - started
    write_source(course, all_pages, executed, out / "source")
    warnings = render(out / "source", out / "html", out / "doctrees", jobs)
    for w in warnings:
        log(f"site: sphinx: {w}")
    total = time.monotonic() - started
    if times:
        log(f"site: executing took {exec_s:.0f} s ({sum(times.values()):.0f} s of notebook time, "
            f"longest {max(times, key=times.get)} {max(times.values()):.0f} s)")
    log(f"site: {len(all_pages)} lesson pages in {total:.0f} s; open {out / 'html' / 'index.html'}")
    return out / "html" / "index.html"


if __name__ == "__main__":  # the child process of _execute_one
    if len(sys.argv) == 5 and sys.argv[1] == "--execute":
        sys.exit(_execute_main(*sys.argv[2:]))
    sys.exit("usage: coursekit site [--out DIR] [--jobs N]")
