"""The course in a real browser: JupyterLab as `coursekit open --headless` serves it, driven by Chromium.

A student opens lesson 01, runs every cell and sees its figures; the ipywidgets explorer of a lesson
renders and redraws when a slider moves; nbgrader's Validate button passes the solved notebook and
fails the untouched one; the instructor's formgrader lists the lessons and a graded submission; and
the item statistics of `coursekit report` open from disk with their figure.

Everything runs in a throwaway copy of the course with its own Jupyter settings, workspaces and
runtime files; only screenshots (and the server's log) are written to artifacts/browser/ at the
repository root. Debian's Chromium is installed by the test (tests/syspkg.py); Playwright drives it
and never downloads a browser of its own.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, copy_course
from nbtools import graded_cells, make_submission, solution_sources
from syspkg import ensure_debian

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "artifacts" / "browser"
LESSON = "01-shape-alignment"
# Lesson 01 has no explorer; lesson 07's notebook is the quickest whole run that has one (~20 s on
# this 2-core box; lesson 05's takes ~70 s), and its `padding` slider changes the photo Run draws.
EXPLORER_LESSON = "07-input-normalization"
EXPLORER_SLIDER = "padding"
# The newest lesson (real architectures: Inception, DenseNet, U-Net, FPN, FiLM), run whole in the page.
ARCHITECTURES_LESSON = "09-real-architectures"
STUDENT = "alice"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# JupyterLab settings for a quiet, deterministic page: every cell in the DOM (no virtual scrolling),
# no news or update checks (nothing to fetch on a closed network).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI installs the dev extra: pip install -e '.[all,dev]')")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (kernels start in sessions of their own, so killpg misses them)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _stop(proc: subprocess.Popen, grace: float = 15) -> None:
    """SIGTERM the process group (JupyterLab then shuts its kernels down), SIGKILL what is left."""
    if proc.poll() is None:
        below = _descendants(proc.pid)
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        for sig_target in ([("group", proc.pid)] + [("pid", p) for p in below]):
            kind, pid = sig_target
            try:
                (os.killpg if kind == "group" else os.kill)(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _coursekit() -> list[str]:
    script = Path(sys.executable).with_name("coursekit")  # the README's `.venv/bin/coursekit`
    return [str(script)] if script.exists() else [sys.executable, "-m", "coursekit.cli"]


def _quiet_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("COURSEKIT_DB_URL", "COURSEKIT_NOTEBOOK_ID", "COURSEKIT_HEADLESS", "JUPYTER_TOKEN")}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ in the repository's editable coursekit/
    # The kernels, the grader and Chromium share two cores: one OpenMP thread per process, or
    # PyTorch's spinning workers make side-by-side kernels many times slower (see coursekit.autograde.runner).
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        env.setdefault(k, "1")
    env.update(extra)
    return env


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A throwaway course with the solved notebooks in browser/ and one submission to grade."""
    course = copy_course(tmp_path_factory.mktemp("browser") / "course")
    served = course / "browser"
    served.mkdir()
    shutil.copy(ROOT / "solutions" / LESSON / "pytorch.ipynb", served / f"{LESSON}-solution.ipynb")
    shutil.copy(ROOT / "solutions" / EXPLORER_LESSON / "pytorch.ipynb", served / f"{EXPLORER_LESSON}-solution.ipynb")
    shutil.copy(ROOT / "solutions" / ARCHITECTURES_LESSON / "pytorch.ipynb",
                served / f"{ARCHITECTURES_LESSON}-solution.ipynb")
    release = course / "lessons" / LESSON / "pytorch.ipynb"
    make_submission(release, solution_sources(course / "solutions" / LESSON / "pytorch.ipynb"),
                    course / "submitted" / STUDENT / LESSON / "pytorch.ipynb")
    return course


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    return ARTIFACTS


@pytest.fixture(scope="module")
def grading(course):
    """`coursekit grade` of the submission, started at once so it runs while the browser works."""
    with open(course.parent / "grade.log", "w+") as log:
        proc = subprocess.Popen(
            [*_coursekit(), "--root", str(course), "grade", LESSON, "--framework", "torch", "--json"],
            cwd=course, env=_quiet_env({}), stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True,
        )
        try:
            yield proc, log
        finally:
            _stop(proc, grace=5)


@pytest.fixture(scope="module")
def lab(course, artifacts, grading):
    """JupyterLab started with the README's command on a free loopback port; yields its base URL."""
    state = course.parent / "jupyter"
    for name, settings in LAB_SETTINGS.items():
        path = state / "settings" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    token = secrets.token_hex(16)
    port = _free_port()
    env = _quiet_env({
        "JUPYTER_TOKEN": token,
        "JUPYTER_CONFIG_DIR": str(state / "config"),
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
    })
    log_path = course.parent / "jupyterlab.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([*_coursekit(), "--root", str(course), "open", "--headless", "--port", str(port)],
                                cwd=course, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on {base} within 90 s:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.3)
            yield {"base": base, "token": token, "log": log_path}
        finally:
            _stop(proc)
            shutil.copy(log_path, artifacts / "jupyterlab.log")


@pytest.fixture(scope="module")
def chromium() -> str:
    """Playwright (from the dev extra) and Debian's Chromium (installed here if missing), checked
    before any server starts."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("playwright is not installed: pip install -e '.[dev]'")
    return ensure_debian(["chromium"], CHROMIUM)


@pytest.fixture(scope="module")
def browser(chromium, course, lab):
    """Debian's Chromium, headless, with a fresh profile, driven by Playwright and logged in."""
    from playwright.sync_api import sync_playwright

    executable = chromium
    pw = sync_playwright().start()
    try:
        context = pw.chromium.launch_persistent_context(
            str(course.parent / "chromium-profile"), executable_path=executable, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000}, timeout=60_000,
        )
    except Exception:
        pw.stop()
        raise
    try:
        context.set_default_timeout(60_000)
        for extra in context.pages:  # the persistent context's blank first tab
            extra.close()
        yield context
    finally:
        context.close()
        pw.stop()


# ------------------------------------------------------------------------------------------ helpers
def url(lab, path: str, *query: str) -> str:
    """An address on the server, with the token (the server then also sets its login cookie)."""
    return f"{lab['base']}{path}?" + "&".join([*query, f"token={lab['token']}"])


def open_notebook(page, lab, path: str, workspace: str):
    """Open `path` alone in a workspace of its own, wait for its kernel; return the notebook panel."""
    from playwright.sync_api import expect

    page.goto(url(lab, f"/lab/workspaces/{workspace}/tree/{path}", "reset"))
    panel = page.locator(".jp-NotebookPanel").filter(has=page.locator(".jp-Notebook")).last
    expect(panel.locator(".jp-CodeCell").first).to_be_visible(timeout=60_000)
    # the status bar says "Python 3 (ipykernel) | Idle" once the kernel has started and connected
    expect(page.locator(".jp-StatusBar-Widget").get_by_text(re.compile(r"\| Idle$"))).to_be_visible(timeout=90_000)
    return panel


def run_all(page, panel, timeout_ms: int = 150_000) -> None:
    """Run > Run All Cells, then wait until no cell is queued or running."""
    panel.locator(".jp-Notebook").click(position={"x": 5, "y": 5})
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    page.wait_for_function(
        """() => { const p = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')];
                   return p.length > 0 && p.some(e => /\\[\\d+\\]/.test(e.textContent))
                          && !p.some(e => e.textContent.includes('*')); }""",
        timeout=timeout_ms,
    )


def validate(page, panel, artifacts: Path, shot: str) -> str:
    """Press nbgrader's Validate button and return the text of its result dialog."""
    from playwright.sync_api import expect

    button = panel.locator(".jp-Toolbar-item").filter(has_text=re.compile(r"^\s*Validate\s*$"))
    expect(button).to_be_visible()
    button.click()
    dialog = page.locator(".jp-Dialog").filter(has_text="Validation Results")
    expect(dialog).to_be_visible(timeout=150_000)
    page.screenshot(path=str(artifacts / shot))
    text = dialog.inner_text()
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    expect(dialog).to_be_hidden()
    return text


# ------------------------------------------------------------------------------------------ the test
def test_course_in_a_browser(chromium, browser, lab, grading, course, artifacts):
    """One test, one server and one browser (xdist would give separate tests separate servers):
    the student's lesson, Validate both ways, the explorer, then the instructor's formgrader."""
    steps = [lesson_runs_all_cells_and_draws_its_figures, validate_fails_the_untouched_student_notebook,
             explorer_renders_and_redraws_after_a_slider_move, architectures_lesson_runs_with_its_figures]
    for step in steps:
        page = browser.new_page()
        started = time.monotonic()
        try:
            step(page, lab, artifacts)
            print(f"{step.__name__}: {time.monotonic() - started:.1f} s")
        except Exception:
            page.screenshot(path=str(artifacts / f"failed-{step.__name__}.png"))
            raise
        finally:
            page.close()
    page = browser.new_page()
    try:
        formgrader_lists_lessons_and_the_graded_submission(page, lab, grading, course, artifacts)
    except Exception:
        page.screenshot(path=str(artifacts / "failed-formgrader.png"))
        raise
    finally:
        page.close()


def lesson_runs_all_cells_and_draws_its_figures(page, lab, artifacts):
    """Lesson 01 (solved) in JupyterLab: Run All executes every cell without an error and the
    feature-map grid renders as an image; the Validate button then passes it."""
    panel = open_notebook(page, lab, f"browser/{LESSON}-solution.ipynb", "lesson")
    run_all(page, panel)
    every_cell_ran_cleanly_with_a_figure(page, panel)
    page.screenshot(path=str(artifacts / "01-lesson-figure.png"))

    text = validate(page, panel, artifacts, "02-validate-solution.png")
    assert "Success! Your notebook passes all the tests." in text, text[:2000]


def every_cell_ran_cleanly_with_a_figure(page, panel):
    """Every code cell has an execution count, nothing went to stderr or raised, and the first
    figure is a decoded image of a readable size; returns that image."""
    from playwright.sync_api import expect

    prompts = panel.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
    assert prompts and all(re.search(r"\[\d+\]", p) for p in prompts), f"cells not all run: {prompts}"
    expect(panel.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")).to_have_count(0)
    errors = panel.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']")
    assert errors.count() == 0, errors.first.inner_text()[:2000]
    expect(panel.locator(".jp-OutputArea-output").first).to_contain_text("coursekit: ")
    image = panel.locator(".jp-OutputArea-output img").first
    expect(image).to_be_visible()
    image.scroll_into_view_if_needed()
    box = image.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 100, f"figure too small: {box}"
    assert image.evaluate("img => img.complete && img.naturalWidth > 0"), "the figure did not decode"
    return image


def architectures_lesson_runs_with_its_figures(page, lab, artifacts):
    """Lesson 09 (solved) in JupyterLab: Run All, no error or stderr, its figures (DenseNet memory,
    U-Net masks, conditioning curves) all render."""
    panel = open_notebook(page, lab, f"browser/{ARCHITECTURES_LESSON}-solution.ipynb", "architectures")
    run_all(page, panel, timeout_ms=180_000)
    every_cell_ran_cleanly_with_a_figure(page, panel)
    images = panel.locator(".jp-OutputArea-output img")
    assert images.count() >= 4, f"expected lesson 09's figures, found {images.count()} images"
    page.screenshot(path=str(artifacts / "04b-architectures-lesson.png"), full_page=True)


def validate_fails_the_untouched_student_notebook(page, lab, artifacts):
    """The student version as released: Validate reports its failing test cells."""
    panel = open_notebook(page, lab, f"lessons/{LESSON}/pytorch.ipynb", "student")
    text = validate(page, panel, artifacts, "03-validate-student.png")
    assert "Success!" not in text, text[:2000]
    assert "The following cell failed:" in text and "NotImplementedError" in text, text[:2000]


def explorer_renders_and_redraws_after_a_slider_move(page, lab, artifacts):
    """The lesson's ipywidgets explorer: controls and Run button render; after the slider moves
    (keyboard on its handle, as a student would) Run draws a different figure."""
    from playwright.sync_api import expect

    panel = open_notebook(page, lab, f"browser/{EXPLORER_LESSON}-solution.ipynb", "explorer")
    run_all(page, panel, timeout_ms=180_000)
    cell = panel.locator(".jp-CodeCell").filter(has=page.locator(".widget-slider"))
    expect(cell).to_have_count(1)
    slider = cell.locator(".widget-slider").filter(has=page.locator(".widget-label", has_text=EXPLORER_SLIDER))
    readout = slider.locator(".widget-readout")
    expect(readout).to_be_visible()
    before_value = int(readout.inner_text())
    run_button = cell.locator("button.widget-button", has_text="Run")
    expect(run_button).to_be_visible()
    widget_images = cell.locator(".jupyter-widgets img")
    expect(widget_images).to_have_count(0)  # a manual explorer draws nothing inside itself before Run
    first = cell.locator(".jp-OutputArea-output img")  # so the one image is panel.run()'s, below the panel
    expect(first).to_have_count(1)
    expect(first).to_be_visible()
    before_src = first.get_attribute("src")

    slider.locator(".noUi-handle").focus()
    page.keyboard.press("ArrowRight")  # one step of the slider, as a student would with the keyboard
    expect(readout).not_to_have_text(str(before_value))
    after_value = int(readout.inner_text())
    assert after_value > before_value, (before_value, after_value)
    run_button.click()
    expect(widget_images).to_have_count(1, timeout=120_000)
    redrawn = widget_images.first
    expect(redrawn).to_be_visible()
    assert redrawn.evaluate("img => img.complete && img.naturalWidth > 0"), "the redrawn figure did not decode"
    assert redrawn.get_attribute("src") != before_src, "the figure did not change after the slider moved"
    redrawn.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "04-explorer-after-slider.png"))


def formgrader_lists_lessons_and_the_graded_submission(page, lab, grading, course, artifacts):
    """The instructor's view: after `coursekit grade`, formgrader lists every lesson, counts the
    submission, and shows the student's autograded score."""
    from playwright.sync_api import expect

    proc, log = grading
    try:
        out, _ = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        pytest.fail("coursekit grade did not finish within 600 s")
    log.seek(0)
    assert proc.returncode == 0, f"coursekit grade failed:\n{log.read()[-3000:]}"
    rows = json.loads(out)
    assert [(r["student"], r["notebook"]) for r in rows] == [(STUDENT, "pytorch")], rows
    score, max_score = rows[0]["score"], rows[0]["max_score"]
    assert score == max_score > 0, rows

    page.goto(url(lab, "/formgrader"))
    expect(page).to_have_url(re.compile(r"/formgrader/manage_assignments/?$"))
    lessons = sorted(p.name for p in (course / "solutions").iterdir() if p.is_dir())
    names = page.locator("td.name")
    expect(names).to_have_count(len(lessons), timeout=60_000)
    assert sorted(n.strip() for n in names.all_inner_texts()) == lessons
    row = page.locator("tr").filter(has=page.locator("td.name", has_text=LESSON))
    expect(row.locator("td.num-submissions")).to_have_text("1")
    page.screenshot(path=str(artifacts / "05-formgrader-assignments.png"), full_page=True)

    page.goto(url(lab, "/formgrader/manage_students"))
    student = page.locator("tr").filter(has=page.locator("td.id", has_text=STUDENT))
    expect(student.locator("td.score")).to_have_text(f"{score:g} / {max_score:g}", timeout=60_000)
    page.screenshot(path=str(artifacts / "06-formgrader-students.png"), full_page=True)

    page.goto(url(lab, f"/formgrader/gradebook/{LESSON}/pytorch"))
    expect(page.locator("td.score").first).to_have_text(f"{score:g} / {max_score:g}", timeout=60_000)
    page.screenshot(path=str(artifacts / "07-formgrader-gradebook.png"), full_page=True)

    # the instructor's item statistics (`coursekit report`), opened from disk as an instructor would
    proc = subprocess.run([*_coursekit(), "--root", str(course), "report", LESSON], cwd=course, env=_quiet_env({}),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    page.goto((course / "reports" / LESSON / "index.html").as_uri())
    expect(page.locator("h1")).to_have_text(LESSON)
    page.locator("a", has_text="pytorch").click()
    expect(page.locator("h1")).to_have_text(f"{LESSON} / pytorch")
    figure = page.locator("img[alt='score distribution']")
    expect(figure).to_be_visible()
    assert figure.evaluate("img => img.complete && img.naturalWidth > 0"), "the score distribution did not load"
    exercises = len(graded_cells(course / "lessons" / LESSON / "pytorch.ipynb"))
    expect(page.locator("table tr")).to_have_count(1 + exercises)
    page.screenshot(path=str(artifacts / "08-report.png"), full_page=True)
