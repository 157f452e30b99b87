"""The static course site: the README's `coursekit site` command builds a page for every lesson and
framework, with the figures of the executed run, and no page shows a solution, a hidden test or a
traceback.

One test on purpose: the build executes up to 16 notebooks, and pytest-xdist would build it once per
worker if the checks were split over several tests sharing a fixture. The build reuses the
instructor runs that grading records (coursekit.autograde.expected keeps each executed notebook
beside its record; conftest gives the whole test run one folder of them): whichever test needs a
run first makes it, under a lock, and the others read it, so this test is as fast and as right in
any order, without waiting for other tests. Lesson 01's PyTorch notebook is always left for the
build to execute, so its execution path is tested in every run.
"""

from __future__ import annotations

import html
import re
import shlex
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, copy_course

LESSONS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
NOTEBOOKS = ("pytorch", "keras")
IMAGE_MIMES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
MARKER = re.compile(r"^\s*### (BEGIN|END) (SOLUTION|HIDDEN TESTS)\s*$")


def readme_site_command() -> list[str]:
    """The README's `coursekit site` line, as an argv run with this interpreter."""
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    lines = [ln.split("#", 1)[0].strip() for b in blocks for ln in b.splitlines()]
    found = [ln for ln in lines if re.search(r"(^|/)coursekit site\b", ln)]
    assert len(found) == 1, f"the README should show one `coursekit site` command; found {found}"
    argv = shlex.split(found[0])
    assert Path(argv[0]).name == "coursekit" and argv[1] == "site", found[0]
    return [sys.executable, "-m", "coursekit.cli", *argv[1:]]


class _Page(HTMLParser):
    """The <img> sources and the visible text of a page (markup dropped), all of it and without
    the cells' outputs (`code`: what the page shows as the notebook's own text)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.images: list[str] = []
        self.chunks: list[str] = []
        self.code_chunks: list[str] = []
        self._skip = 0
        self._divs = 0
        self._output_at: int | None = None  # div depth of the cell output being read

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "img":
            self.images.append(attrs.get("src", ""))
        elif tag == "div":
            self._divs += 1
            if self._output_at is None and "cell_output" in (attrs.get("class") or "").split():
                self._output_at = self._divs

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        elif tag == "div":
            if self._output_at == self._divs:
                self._output_at = None
            self._divs -= 1

    def handle_data(self, data):
        if not self._skip:
            self.chunks.append(data)
            if self._output_at is None:
                self.code_chunks.append(data)

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    @property
    def lines(self) -> set[str]:
        """Stripped lines of the page outside cell outputs (code cells and prose)."""
        return {ln.strip() for ln in "".join(self.code_chunks).splitlines()}


def parse_page(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def exercise_cell(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("solution") or meta.get("grade"))


def image_outputs(executed: Path) -> int:
    """Figures the executed run shows outside answer and test cells (those cells show no output)."""
    nb = nbformat.read(executed, as_version=4)
    return sum(1 for c in nb.cells if c.cell_type == "code" and not exercise_cell(c)
               for o in c.outputs if any(m in o.get("data", {}) for m in IMAGE_MIMES))


def hidden_lines(solution: Path, student: Path) -> list[str]:
    """Lines of the instructor notebook's answer and test cells (solutions, hidden tests) that the
    student notebook does not contain anywhere: none of them may be a line of a page's cells or
    prose (outputs aside: a cell may print library source that shares a line with a solution)."""
    student_text = "\n".join(c.source for c in nbformat.read(student, as_version=4).cells)
    student_lines = {ln.strip() for ln in student_text.splitlines()}
    out = []
    for cell in nbformat.read(solution, as_version=4).cells:
        if cell.cell_type != "code" or not exercise_cell(cell):
            continue
        for ln in cell.source.splitlines():
            s = ln.strip()
            if len(s) >= 8 and not MARKER.match(ln) and s not in student_lines and not s.startswith("#"):
                out.append(s)
    return out


def seed_executions(out: Path, course_dir: Path) -> int:
    """Put the instructor runs of this test run (made now where no test has made them yet) in the
    site's execution cache, stamped with the key the build checks; all but lesson 01's PyTorch
    notebook. How many."""
    from coursekit.autograde.expected import executed_path, record_path
    from coursekit.autograde.runner import ensure_instructor_runs, expected_dir
    from coursekit.notebooks import Course
    from coursekit.site import Page, execution_key

    course = Course(copy_course(course_dir))
    seeded = 0
    for lesson in LESSONS:
        for framework, nb in (("torch", "pytorch"), ("keras", "keras")):
            if (lesson, nb) == (LESSONS[0], "pytorch"):
                continue
            ensure_instructor_runs(course, lesson, framework)
            run = executed_path(record_path(expected_dir(course), lesson, nb))
            executed = nbformat.read(run, as_version=4)
            executed.metadata["coursekit_site"] = {"key": execution_key(Course(ROOT), Page(lesson, nb))}
            (out / "executed" / lesson).mkdir(parents=True, exist_ok=True)
            nbformat.write(executed, out / "executed" / lesson / f"{nb}.ipynb")
            seeded += 1
    return seeded


@pytest.mark.slow
def test_site_has_every_lesson_page_with_its_figures_and_no_solutions(tmp_path):
    out = tmp_path / "site"
    started = time.monotonic()
    seeded = seed_executions(out, tmp_path / "course")
    print(f"instructor runs ready in {time.monotonic() - started:.0f} s")
    started = time.monotonic()
    proc = subprocess.run([*readme_site_command(), "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=1800)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    print(f"coursekit site took {elapsed:.0f} s ({seeded} instructor runs reused)\n{proc.stdout}")
    if seeded:
        assert f"site: reusing {seeded} up-to-date execution(s)" in proc.stdout, proc.stdout
    executed_here = len(LESSONS) * len(NOTEBOOKS) - seeded
    assert f"site: executing {executed_here} notebook(s)" in proc.stdout, proc.stdout
    assert f"site: executed {LESSONS[0]}/pytorch in" in proc.stdout, proc.stdout
    site = out / "html"
    index = site / "index.html"
    assert index.is_file(), f"no landing page; {sorted(p.name for p in site.iterdir())}"
    index_page = parse_page(index)

    problems: list[str] = []
    for lesson in LESSONS:
        if f"{lesson}" not in index_page.text:
            problems.append(f"the landing page does not list {lesson}")
        for nb in NOTEBOOKS:
            where = f"{lesson}/{nb}"
            page_path = site / "lessons" / lesson / f"{nb}.html"
            if not page_path.is_file():
                problems.append(f"{where}: no page {page_path.relative_to(out)}")
                continue
            if f'href="lessons/{lesson}/{nb}.html"' not in index.read_text(encoding="utf-8"):
                problems.append(f"{where}: the landing page does not link to it")
            page = parse_page(page_path)
            raw = page_path.read_text(encoding="utf-8")

            # figures: every image output of the executed run is an <img> whose file is there
            figures = [src for src in page.images if "_images/" in src]
            wanted = image_outputs(out / "executed" / lesson / f"{nb}.ipynb")
            if wanted < 1:
                problems.append(f"{where}: the executed run shows no figure")
            if len(figures) < wanted:
                problems.append(f"{where}: {len(figures)} <img> for {wanted} figures of the executed run")
            for src in figures:
                img = (page_path.parent / html.unescape(src)).resolve()
                if not img.is_file() or img.stat().st_size == 0:
                    problems.append(f"{where}: image {src} is missing or empty")

            # the student's notebook, not the instructor's
            for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
                if marker in page.text or marker in raw:
                    problems.append(f"{where}: shows {marker!r}")
            leaked = [ln for ln in hidden_lines(ROOT / "solutions" / lesson / f"{nb}.ipynb",
                                                ROOT / "lessons" / lesson / f"{nb}.ipynb") if ln in page.lines]
            if leaked:
                problems.append(f"{where}: shows solution or hidden-test lines {leaked[:5]}")
            if "raise NotImplementedError()" not in page.text:
                problems.append(f"{where}: the answer stubs are missing")

            # and the instructor run went through: no traceback, no error output
            for sign in ("Traceback (most recent call last)", "Cell In[", "CellExecutionError"):
                if sign in page.text:
                    problems.append(f"{where}: shows a traceback ({sign!r})")
            if re.search(r'class="[^"]*\btraceback\b', raw):
                problems.append(f"{where}: has a rendered error output")
    assert not problems, "\n".join(problems)


def _executed_copy(lesson: str, nb: str):
    """The instructor notebook with a made-up output in every code cell (no kernel needed)."""
    executed = nbformat.read(ROOT / "solutions" / lesson / f"{nb}.ipynb", as_version=4)
    for i, cell in enumerate(executed.cells):
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"output of cell {i}\n")]
    return executed


def test_pages_take_sources_from_lessons_and_outputs_from_the_run():
    from coursekit.site import WIDGET_MIME, assemble

    lesson, nb = LESSONS[0], "pytorch"
    student = nbformat.read(ROOT / "lessons" / lesson / f"{nb}.ipynb", as_version=4)
    executed = _executed_copy(lesson, nb)
    plain = next(i for i, c in enumerate(executed.cells) if c.cell_type == "code" and not exercise_cell(c))
    executed.cells[plain].outputs.append(nbformat.v4.new_output(
        "display_data", data={WIDGET_MIME: {"model_id": "x"}, "text/plain": "VBox(...)"}))
    page = assemble(student, executed, f"{lesson}/{nb}")
    assert [c.source for c in page.cells] == [c.source for c in student.cells]
    for i, cell in enumerate(page.cells):
        if cell.cell_type != "code":
            continue
        if exercise_cell(student.cells[i]):
            assert cell.outputs == [], f"answer/test cell {i} shows the instructor run's output"
        else:
            assert cell.outputs[0]["text"] == f"output of cell {i}\n"
    widget = page.cells[plain].outputs[-1]
    assert WIDGET_MIME not in widget["data"] and "text/plain" not in widget["data"]


def test_pages_refuse_notebooks_that_do_not_correspond():
    from coursekit.notebooks import CourseError
    from coursekit.site import assemble

    lesson, nb = LESSONS[0], "pytorch"
    student = nbformat.read(ROOT / "lessons" / lesson / f"{nb}.ipynb", as_version=4)
    dropped = _executed_copy(lesson, nb)
    del dropped.cells[3]
    with pytest.raises(CourseError, match="cells"):
        assemble(student, dropped, "x")
    moved = _executed_copy(lesson, nb)
    ids = [i for i, c in enumerate(moved.cells) if "nbgrader" in c.metadata]
    moved.cells[ids[0]].metadata["nbgrader"]["grade_id"] = "renamed"
    with pytest.raises(CourseError, match="grade_id"):
        assemble(student, moved, "x")
    edited = _executed_copy(lesson, nb)
    plain = next(i for i, c in enumerate(edited.cells) if c.cell_type == "code" and not exercise_cell(c))
    edited.cells[plain].source += "\nprint('edited in solutions/ only')"
    with pytest.raises(CourseError, match="differs"):
        assemble(student, edited, "x")
