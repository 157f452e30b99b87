"""The instructor command line: one clear line and a non-zero exit on bad input, nothing changed."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, copy_course
from nbtools import make_submission


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coursekit.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def tree_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def one_error_line(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("coursekit: error: "), proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_build_check_passes_on_the_repo():
    proc = run("build", "--check")
    assert proc.returncode == 0 and "in sync" in proc.stdout, proc.stderr


def test_unknown_lesson(tmp_path):
    course = copy_course(tmp_path / "c")
    before = tree_digest(course)
    one_error_line(run("--root", str(course), "build", "99-nope"), "no lesson '99-nope'", "01-shape-alignment")
    one_error_line(run("--root", str(course), "grade", "99-nope"), "no lesson '99-nope'")
    assert tree_digest(course) == before


def test_wrong_directory(tmp_path):
    one_error_line(run("build", cwd=tmp_path), "not inside a course directory")
    one_error_line(run("--root", str(tmp_path / "missing"), "doctor"), "does not exist")


def test_malformed_notebook_is_reported_and_nothing_changes(tmp_path):
    course = copy_course(tmp_path / "c")
    bad = course / "solutions" / "01-shape-alignment" / "pytorch.ipynb"
    bad.write_text('{"cells": [ this is not json')
    before = tree_digest(course)
    one_error_line(run("--root", str(course), "build"), "pytorch.ipynb", "not valid JSON")
    assert tree_digest(course) == before


def test_out_of_sync_lessons_are_detected_and_rebuilt(tmp_path):
    course = copy_course(tmp_path / "c")
    student = course / "lessons" / "01-shape-alignment" / "keras.ipynb"
    original = student.read_text()
    student.write_text(original.replace("Lesson 01", "Lesson 01 (edited by hand)"))
    proc = run("--root", str(course), "build", "--check")
    assert proc.returncode != 0 and "lessons/01-shape-alignment/keras.ipynb" in proc.stdout
    proc = run("--root", str(course), "build")
    assert proc.returncode == 0, proc.stderr
    assert student.read_text() == original


def test_grade_without_submissions(tmp_path):
    course = copy_course(tmp_path / "c")
    one_error_line(run("--root", str(course), "grade", "01"), "no submissions folder")
    (course / "submitted" / "alice").mkdir(parents=True)
    one_error_line(run("--root", str(course), "grade", "01"), "nobody has submitted 01-shape-alignment")


def test_grade_unknown_student_and_framework(tmp_path):
    course = copy_course(tmp_path / "c")
    (course / "submitted" / "alice" / "01-shape-alignment").mkdir(parents=True)
    one_error_line(run("--root", str(course), "grade", "01", "--student", "bob"), "bob")
    proc = run("--root", str(course), "grade", "01", "--framework", "jax")
    assert proc.returncode != 0 and "invalid choice" in proc.stderr


@pytest.mark.slow
def test_doctor_reports_a_healthy_install():
    proc = run("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "nbgrader.server_extensions.formgrader: enabled" in proc.stdout
    assert "lessons     in sync with solutions" in proc.stdout
    assert "coursekit: PyTorch" in proc.stdout and "coursekit: Keras" in proc.stdout


def test_doctor_fails_when_lessons_are_out_of_sync(tmp_path):
    course = copy_course(tmp_path / "c")
    (course / "lessons" / "01-shape-alignment" / "pytorch.ipynb").unlink()
    proc = run("--root", str(course), "doctor")
    assert proc.returncode != 0
    assert "out of sync" in proc.stderr and "coursekit build" in proc.stderr


@pytest.mark.slow
def test_open_headless_serves_jupyterlab_on_lessons(tmp_path):
    import re
    import socket
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(__import__("os").environ, COURSEKIT_HEADLESS="1", JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"))
    proc = subprocess.Popen([sys.executable, "-m", "coursekit.cli", "open", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        url, seen = None, []
        deadline = time.time() + 90
        while time.time() < deadline and url is None:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            m = re.search(rf"(http://127\.0\.0\.1:{port}/lab\S*token=\w+)", line)
            url = m.group(1) if m else None
        assert url, "JupyterLab printed no URL:\n" + "".join(seen[-20:])
        assert "starting JupyterLab headless" in "".join(seen)
        token = url.split("token=")[1]
        page = None
        for _ in range(60):  # the URL is logged a moment before the socket accepts connections
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/lab/tree/lessons?token={token}", timeout=30)
                break
            except urllib.error.URLError:
                time.sleep(0.5)
        assert page is not None and page.status == 200
        listing = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/lessons?token={token}", timeout=30)
        names = {item["name"] for item in __import__("json").load(listing)["content"]}
        assert "01-shape-alignment" in names
        exts = urllib.request.urlopen(f"http://127.0.0.1:{port}/formgrader?token={token}", timeout=30)
        assert exts.status == 200  # nbgrader's formgrader server extension is live
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_grade_with_a_locked_gradebook_says_so_and_writes_nothing(tmp_path):
    """A gradebook another program holds locked: one line, exit 2, no submission recorded."""
    import sqlite3

    course = copy_course(tmp_path / "course")
    lesson = "01-shape-alignment"
    make_submission(course / "lessons" / lesson / "pytorch.ipynb", {},
                    course / "submitted" / "ann" / lesson / "pytorch.ipynb")
    sqlite3.connect(course / "gradebook.db").close()  # an empty gradebook file, held below
    holder = sqlite3.connect(course / "gradebook.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        proc = run("--root", str(course), "grade", lesson, "--framework", "torch")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "is locked by another program" in lines[0], proc.stderr
    assert not (course / "autograded").exists()
