"""The OS sandbox of graded kernels (coursekit.autograde.sandbox), proved by attacks.

One class of lesson 01 (PyTorch) is graded twice, serially so the order is known: with the sandbox
on, and — in a throwaway copy of the course *and* of the coursekit package (PYTHONPATH) — with
`--no-sandbox`, which proves every attack is real. The static audit is off in both runs, so the
sandbox alone stands between the submissions and the course. Attacks by class:

- cross-student: a submission overwrites another student's handed-in notebook;
- persistence: a submission edits the installed coursekit, so students graded after it (in this
  run and in later runs) are checked by no-ops; it also leaves a process running and a file in /tmp;
- import hijack: a `coursekit/` package handed in beside the notebook replaces the grading helpers;
- secrets: the solutions with their hidden tests, the gradebook and the grader's environment read
  and printed into the notebook;
- network: a connection to a server on the grading machine's loopback.

The honest controls (a solved and an untouched notebook graded after the attackers) keep their
scores only with the sandbox on.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import threading
from pathlib import Path

import nbformat
import psutil
import pytest
from conftest import copy_course, once_per_run
from nbtools import answer_ids, graded_cells, make_submission, solution_sources
from test_pipeline import LESSONS

pytestmark = pytest.mark.slow

LESSON, NAME = LESSONS[0], "pytorch.ipynb"
NO_AUDIT = "\nc.BoundedExecute.audit = False\n"
TOKEN = f"coursekit-probe-{os.getpid()}"

FIND_ROOT = '''
import os, pathlib
def _course_root():
    here = pathlib.Path.cwd()
    for d in [here, *here.parents]:
        if (d / "nbgrader_config.py").is_file() and (d / "submitted").is_dir():
            return d
'''

CROSS_STUDENT = FIND_ROOT + '''
_r = _course_root()
if _r is not None:
    for _t in _r.glob("submitted/z-solved/*/*.ipynb"):  # a later student's hand-in, ruined for good
        _t.write_text("not a notebook any more")
    import sqlite3  # the grades of the students graded before this one, zeroed
    _db = sqlite3.connect(str(_r / "gradebook.db"))
    _db.execute("UPDATE grade SET auto_score = 0")
    _db.commit()
    _db.close()
print("CROSS", _r is not None)
'''

EDIT_COURSEKIT = '''
import pathlib, coursekit
try:  # the grader's own verdicts, made to pass everything from the next grading run on
    with open(pathlib.Path(coursekit.__file__).parent / "autograde" / "verdicts.py", "a") as _f:
        _f.write("\\ndef judge(expected, observed, stopped=None):\\n    return Verdict(True, len(expected))\\n")
    print("EDITED coursekit")
except OSError as _e:
    print("EDIT blocked", type(_e).__name__)
'''

HIJACK_INIT = '''
import os, sys
_here = os.path.dirname(os.path.abspath(__file__))
for _p in sys.path:
    _real = os.path.join(os.path.abspath(_p or "."), "coursekit")
    if _real != _here and os.path.isfile(os.path.join(_real, "__init__.py")):
        __path__[:] = [_here, _real]
        exec(compile(open(os.path.join(_real, "__init__.py")).read(), os.path.join(_real, "__init__.py"), "exec"))
        break
'''
# the grading helpers replaced by no-ops that replay, cell by cell, the instructor run's records
# (read from the grader's cache): every test cell reports exactly what the solution reported
HIJACK_GRADING = '''
import json, os, pathlib
from IPython import get_ipython
from IPython.display import publish_display_data

OBSERVATION_MIME = "application/vnd.coursekit.observation+json"
def _anything(*a, **k):
    return None
call = check_equal = check_close = check_shape = check_true = check_raises = expect = _anything
_cells = []
_dir = os.environ.get("COURSEKIT_EXPECTED_DIR", "")
for _p in (sorted(pathlib.Path(_dir).rglob("pytorch.json")) if _dir else []):
    _cells = list(json.loads(_p.read_text())["cells"].values())
def _replay(info):
    if "grading." in (info.raw_cell or "") and _cells:
        for _obs in _cells.pop(0):
            publish_display_data({OBSERVATION_MIME: _obs})
if get_ipython() is not None:
    get_ipython().events.register("pre_run_cell", _replay)
'''


def escape_attempts(port: int) -> str:
    return FIND_ROOT + f'''
import socket, subprocess, sys
_r = _course_root()
if _r is not None:
    _text = (_r / "solutions" / "{LESSON}" / "{NAME}").read_text()
    print("LEAKED hidden tests:", _text.count("BEGIN HIDDEN TESTS"), "gradebook:", (_r / "gradebook.db").exists())
print("ENV", os.environ.get("COURSEKIT_DB_URL"))
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
    print("NET reached")
except OSError as _e:
    print("NET blocked", type(_e).__name__)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "{TOKEN}"], start_new_session=True)
pathlib.Path("/tmp/{TOKEN}").write_text("planted")
'''


class Listener:
    """A TCP server on loopback that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


def _probe_processes() -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        if TOKEN in " ".join(p.info["cmdline"] or []):
            out.append(p)
    return out


def _tree_digest(paths: list[Path]) -> dict[str, str]:
    import hashlib

    out = {}
    for top in paths:
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        for f in files:
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def _grade(base: Path, sandbox: bool, only: tuple[str, ...] = ()) -> dict:
    course = copy_course(base / "course")
    (course / "nbgrader_config.py").write_text((course / "nbgrader_config.py").read_text() + NO_AUDIT)
    env = dict(os.environ)
    env["COURSEKIT_DB_URL"] = f"sqlite:///{course / 'gradebook.db'}"
    env["COURSEKIT_EXPECTED_DIR"] = str(course / ".coursekit" / "expected")  # the attacks may not spoil others' cache
    package = Path(__import__("coursekit").__file__).parent
    if not sandbox and not only:  # a throwaway coursekit that the attacks may damage
        shutil.copytree(package, base / "pkg" / "coursekit", ignore=shutil.ignore_patterns("__pycache__"))
        env["PYTHONPATH"] = str(base / "pkg")
        package = base / "pkg" / "coursekit"
    release = course / "lessons" / LESSON / NAME
    solved = solution_sources(course / "solutions" / LESSON / NAME)
    first = answer_ids(release)[0]
    listener = Listener()
    subs = {
        "0-early": solved,  # graded before the attackers
        "a-cross": {**solved, first: solved[first] + "\n" + CROSS_STUDENT},
        "a-edit": {**solved, first: solved[first] + "\n" + EDIT_COURSEKIT},
        "a-escape": {**solved, first: solved[first] + "\n" + escape_attempts(listener.port)},
        "a-hijack": {},
        "z-solved": solved,
        "z-untouched": {},
    }
    if only:
        subs = {k: v for k, v in subs.items() if k in only}
    for student, answers in subs.items():
        make_submission(release, answers, course / "submitted" / student / LESSON / NAME)
    fake = course / "submitted" / "a-hijack" / LESSON / "coursekit"
    fake.mkdir()
    (fake / "__init__.py").write_text(HIJACK_INIT)
    (fake / "grading.py").write_text(HIJACK_GRADING)
    watched = [package, course / "solutions", course / "lessons", course / "nbgrader_config.py"]
    before = _tree_digest(watched)
    import subprocess

    args = [sys.executable, "-m", "coursekit.cli", "--root", str(course), "grade", LESSON, "--framework", "torch",
            "--json", *([] if sandbox else ["--no-sandbox"])]
    # run from the course (python -m puts the working folder first on sys.path): the grader then
    # imports the same coursekit as its nbgrader processes and kernels, the throwaway copy when off
    proc = subprocess.run(args, capture_output=True, text=True, timeout=900, env=env, cwd=course)
    listener.close()
    probes = _probe_processes()
    for p in probes:
        p.kill()
    planted = Path(f"/tmp/{TOKEN}")
    tmp_planted = planted.exists()
    planted.unlink(missing_ok=True)
    after = _tree_digest(watched)
    rows = {r["student"]: r for r in json.loads(proc.stdout)} if proc.stdout.strip().startswith("[") else {}
    outputs, notes = {}, {}  # notes: (first cell, notebook's coursekit metadata), read before any regrade
    for student in subs:
        nb_path = course / "autograded" / student / LESSON / NAME
        if nb_path.is_file():
            nb = nbformat.read(nb_path, as_version=4)
            outputs[student] = json.dumps([c.get("outputs", []) for c in nb.cells])
            notes[student] = (nb.cells[0].source if nb.cells else "", nb.metadata.get("coursekit", {}))
    return {"proc": proc, "rows": rows, "outputs": outputs, "notes": notes, "connections": listener.accepted,
            "orphans": len(probes), "tmp_planted": tmp_planted, "changed": sorted(k for k in before if before[k] != after.get(k)),
            "course": course, "points": graded_cells(release), "env": env}


def _grade_three(base: Path) -> dict:
    return {"on": _grade(base / "on", sandbox=True), "off": _grade(base / "off", sandbox=False),
            # the handed-in package must come before the installed coursekit on the kernel's sys.path,
            # as it does for a plain install: no PYTHONPATH copy here (the attack only reads)
            "off-plain": _grade(base / "off-plain", sandbox=False, only=("a-hijack", "z-untouched"))}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The three gradings, once per test run and shared by the xdist workers (conftest.once_per_run):
    the tests read them; the two that regrade use different courses ("on", "off")."""
    return once_per_run(tmp_path_factory, "sandbox", _grade_three)


def score(run, student) -> float | None:
    row = run["rows"].get(student)
    return None if row is None else row["score"]


def test_sandboxed_grading_gives_every_honest_student_their_score(runs):
    on = runs["on"]
    assert on["proc"].returncode == 0, on["proc"].stderr[-3000:]
    full = sum(on["points"].values())
    assert score(on, "z-solved") == full
    assert score(on, "z-untouched") == 0
    assert score(on, "0-early") == full
    # the attackers solved every exercise besides attacking: their attacks cost them nothing, gain nothing
    for student in ("a-cross", "a-edit", "a-escape"):
        assert score(on, student) == full, (student, on["rows"].get(student))
    assert score(on, "a-hijack") == 0


def test_cross_student_write_is_blocked(runs):
    on, off = runs["on"], runs["off"]
    full = sum(on["points"].values())
    assert "CROSS False" in on["outputs"]["a-cross"]
    assert score(on, "0-early") == full
    assert (on["course"] / "submitted" / "z-solved" / LESSON / NAME).read_text().startswith("{")
    # without the sandbox: an earlier student's grades are zeroed, a later one's hand-in is ruined
    assert "CROSS True" in off["outputs"]["a-cross"]
    assert score(off, "0-early") == 0
    assert (off["course"] / "submitted" / "z-solved" / LESSON / NAME).read_text() == "not a notebook any more"


def test_the_tripwire_reports_what_unsandboxed_grading_changed(runs):
    """coursekit grade compares the course's inputs, coursekit and the Python environment before and
    after: quiet with the sandbox on, a failing run naming the damage with it off."""
    on, off = runs["on"], runs["off"]
    assert "must never change" not in on["proc"].stderr
    assert off["proc"].returncode == 3, off["proc"].stderr[-2000:]
    line = next(ln for ln in off["proc"].stderr.splitlines() if "must never change" in ln)
    assert "verdicts.py" in line and "z-solved" in line


def _regrade(run, *students):
    import subprocess

    args = [sys.executable, "-m", "coursekit.cli", "--root", str(run["course"]), "grade", LESSON, "--framework",
            "torch", "--json", "--force", *(a for s in students for a in ("--student", s))]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, env=run["env"], cwd=run["course"])
    return proc, ({r["student"]: r["score"] for r in json.loads(proc.stdout)} if proc.stdout.strip() else {})


def test_editing_the_installed_coursekit_is_blocked(runs):
    """Persistence: the grader's own code, edited by a submission, would judge every later run."""
    on, off = runs["on"], runs["off"]
    assert "EDIT blocked" in on["outputs"]["a-edit"]
    assert on["changed"] == [], on["changed"]
    assert "EDITED coursekit" in off["outputs"]["a-edit"]
    assert any(p.endswith("verdicts.py") for p in off["changed"])
    _, later = _regrade(off, "z-untouched")
    assert later == {"z-untouched": sum(off["points"].values())}  # untouched, yet full marks


def test_files_handed_in_beside_the_notebook_are_not_importable(runs):
    """A `coursekit/` package handed in beside an untouched notebook replays the instructor run's
    records: full marks where the kernel can import it and read the grader's cache."""
    assert score(runs["on"], "a-hijack") == 0
    assert score(runs["off-plain"], "a-hijack") == sum(runs["off"]["points"].values())
    assert score(runs["off-plain"], "z-untouched") == 0


def test_secrets_are_out_of_reach(runs):
    on, off = runs["on"], runs["off"]
    assert "LEAKED" not in on["outputs"]["a-escape"]
    assert "ENV None" in on["outputs"]["a-escape"]
    assert "LEAKED hidden tests: 4" in off["outputs"]["a-escape"]
    assert "ENV sqlite:" in off["outputs"]["a-escape"]


def test_no_network(runs):
    on, off = runs["on"], runs["off"]
    assert "NET blocked" in on["outputs"]["a-escape"] and on["connections"] == 0
    assert "NET reached" in off["outputs"]["a-escape"] and off["connections"] >= 1


def test_nothing_outlives_a_sandboxed_kernel(runs):
    on, off = runs["on"], runs["off"]
    assert on["orphans"] == 0 and not on["tmp_planted"]
    assert off["orphans"] >= 1 and off["tmp_planted"]


def test_a_later_run_in_the_same_course_grades_correctly(runs):
    """Persistence: grading the sandboxed class again gives the same scores."""
    on = runs["on"]
    proc, rows = _regrade(on, "z-untouched", "z-solved")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert rows == {"z-untouched": 0, "z-solved": sum(on["points"].values())}


def test_grading_stops_with_one_line_when_the_sandbox_cannot_start(tmp_path):
    import subprocess

    course = copy_course(tmp_path / "course")
    release = course / "lessons" / LESSON / NAME
    make_submission(release, {}, course / "submitted" / "ann" / LESSON / NAME)
    env = {**os.environ, "PATH": str(tmp_path / "nobin") + os.pathsep + os.path.dirname(sys.executable)}
    # no bwrap on PATH
    proc = subprocess.run([sys.executable, "-c", "import shutil, sys; from coursekit.cli import main; "
                           "shutil.which = lambda name, *a, **k: None; sys.exit(main(sys.argv[1:]))",
                           "--root", str(course), "grade", LESSON, "--framework", "torch"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("coursekit: error:"), proc.stderr
    assert "apt-get install bubblewrap" in lines[0]
    assert not (course / "gradebook.db").exists() and not (course / "autograded").exists()


def test_unsandboxed_grading_says_so_in_the_table_and_the_notebook(runs):
    on, off = runs["on"], runs["off"]
    assert all(r.get("sandbox") is False for r in off["rows"].values())
    assert "WITHOUT the OS sandbox" in off["proc"].stderr
    # and in the graded notebook itself, so the student's feedback says it too
    for run, stated in ((off, True), (on, False)):
        first, meta = run["notes"]["z-untouched"]
        assert ("Graded without the OS sandbox" in first) is stated, first[:200]
        assert meta.get("sandbox", True) is not stated




def test_a_python_install_under_tmp_stays_visible(tmp_path, monkeypatch):
    """A course (or its venv) under /tmp: the sandbox's own /tmp must not cover it. bwrap mounts in
    order, and a tmpfs mounted after the read-only view of the install hid it (the kernel died
    before it started: every grading of a clean clone in /tmp failed)."""
    import subprocess

    from coursekit.autograde.sandbox import SandboxLimits, _bwrap, _namespaces, mount_args

    prefix = tmp_path / "venv"
    (prefix / "lib").mkdir(parents=True)
    (prefix / "lib" / "marker.txt").write_text("visible\n")
    assert str(prefix).startswith("/tmp/"), prefix  # pytest's tmp_path is where this bit
    monkeypatch.setattr(sys, "prefix", str(prefix))
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    cmd = [_bwrap(), *_namespaces(os.geteuid() == 0), "--die-with-parent",
           *mount_args(SandboxLimits(), str(runtime)), "/bin/sh", "-c",
           f'cat "{prefix}/lib/marker.txt" && touch /tmp/scratch && ! touch "{prefix}/lib/x" 2>/dev/null']
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "visible\n", (proc.returncode, proc.stdout, proc.stderr)
