"""Bad input to `coursekit grade` (coursekit.autograde.intake): a submission that is a symbolic
link or holds one, a notebook that is not JSON, a notebook over 20 MiB. Each gets one
`coursekit: error: <student>: ...` line saying what was received and what to do, nbgrader never
sees it, a link's target is never opened, and the rest of the class is graded as usual."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

import pytest
from conftest import copy_course
from nbtools import make_submission, solution_sources
from test_pipeline import LESSONS, coursekit

from coursekit.autograde.intake import MAX_NOTEBOOK_MB, submission_problem

LESSON, NAME = LESSONS[0], "pytorch.ipynb"
WANTED = {NAME}


class PipeWatch:
    """A named pipe that notes whether anything opened it for reading. A reader would block on
    it until a writer comes: the watcher is that writer, so nothing hangs, and it says so."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path, self.opened, self._stop = path, False, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)  # fails (ENXIO) while nobody reads
            except OSError:
                time.sleep(0.02)
                continue
            self.opened = True
            os.close(fd)

    def stop(self) -> bool:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.opened


def tree_state(folder: Path, skip: tuple[str, ...] = ()) -> str:
    """Digest of a folder without following links (a link counts by its text) or opening pipes."""
    h = hashlib.sha256()
    for top, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(dirs + files):
            path = Path(top) / name
            rel = path.relative_to(folder).as_posix()
            if rel in skip or any(rel.startswith(s + "/") for s in skip):
                continue
            h.update(rel.encode() + b"\0")
            if path.is_symlink():
                h.update(b"link:" + os.readlink(path).encode())
            elif path.is_file():
                h.update(path.read_bytes())
    return h.hexdigest()


# ---------------------------------------------------------------- the checks alone
def test_each_problem_is_named_with_what_to_do(tmp_path):
    submitted = tmp_path / "submitted"

    def folder(student: str) -> Path:
        (submitted / student / LESSON).mkdir(parents=True)
        return submitted / student / LESSON

    (folder("ok") / NAME).write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    assert submission_problem(submitted, "ok", LESSON, WANTED) is None

    outside = tmp_path / "outside"
    outside.mkdir()
    watch = PipeWatch(outside / "pipe")
    (submitted / "dir_link").mkdir(parents=True)
    (submitted / "dir_link" / LESSON).symlink_to(outside)
    (submitted / "student_link").symlink_to(outside)
    (folder("nb_link") / NAME).symlink_to(outside / "pipe")
    (folder("data_link") / NAME).write_text("{}")
    (submitted / "data_link" / LESSON / "data.csv").symlink_to("/etc/passwd")
    os.mkfifo(folder("pipe") / NAME)
    (folder("broken") / NAME).write_text('{"cells": [ this is not json')
    (folder("listed") / NAME).write_text("[1, 2]")
    with open(folder("huge") / NAME, "wb") as fh:
        fh.truncate((MAX_NOTEBOOK_MB + 1) * 2**20)  # sparse: takes no disk
    (folder("misnamed") / "my_pytorch.ipynb").write_text("{}")

    def problem(student: str) -> str:
        why = submission_problem(submitted, student, LESSON, WANTED)
        assert why is not None, student
        return why

    assert problem("dir_link").startswith(f"submitted/dir_link/{LESSON} is a symbolic link (to '{outside}')")
    assert problem("student_link").startswith("submitted/student_link is a symbolic link")
    assert problem("nb_link").startswith(f"submitted/nb_link/{LESSON}/{NAME} is a symbolic link")
    assert problem("data_link").startswith(
        f"submitted/data_link/{LESSON}/data.csv is a symbolic link (to '/etc/passwd')")
    for student in ("dir_link", "student_link", "nb_link", "data_link"):
        assert "never follows" in problem(student) and "(copies, not links) and grade again" in problem(student)
    assert "is a named pipe" in problem("pipe")
    assert "is not valid JSON (" in problem("broken") and "hand in the notebook again" in problem("broken")
    assert "not a notebook (a list" in problem("listed")
    assert f"is {MAX_NOTEBOOK_MB + 1}.0 MiB, over the {MAX_NOTEBOOK_MB} MiB" in problem("huge")
    assert "Clear Outputs" in problem("huge")
    assert "no pytorch.ipynb" in problem("misnamed") and "found: my_pytorch.ipynb" in problem("misnamed")
    assert not watch.stop(), "a link's target (a named pipe) was opened"


# ---------------------------------------------------------------- a graded class
@pytest.mark.slow
def test_bad_submissions_are_refused_and_the_class_is_graded(tmp_path):
    course = copy_course(tmp_path / "course")
    release = course / "lessons" / LESSON / NAME
    make_submission(release, solution_sources(course / "solutions" / LESSON / NAME),
                    course / "submitted" / "ann" / LESSON / NAME)
    # eve's "submission" is the instructor's lesson folder: followed, it would score full marks
    (course / "submitted" / "eve").mkdir()
    (course / "submitted" / "eve" / LESSON).symlink_to(course / "solutions" / LESSON)
    # fay's notebook points outside the course, at a pipe that tells whether it was ever opened
    (tmp_path / "outside").mkdir()
    watch = PipeWatch(tmp_path / "outside" / "notebook")
    (course / "submitted" / "fay" / LESSON).mkdir(parents=True)
    (course / "submitted" / "fay" / LESSON / NAME).symlink_to(tmp_path / "outside" / "notebook")
    make_submission(release, {}, course / "submitted" / "gus" / LESSON / NAME)
    gus = course / "submitted" / "gus" / LESSON / NAME
    gus.write_text(gus.read_text()[:5000])  # cut off mid-file
    make_submission(release, {}, course / "submitted" / "hal" / LESSON / NAME)
    hal = course / "submitted" / "hal" / LESSON / NAME
    with open(hal, "r+b") as fh:
        fh.truncate(21 * 2**20)  # 21 MiB (the tail sparse)
    before = tree_state(course)

    proc = coursekit("--root", str(course), "grade", LESSON, "--framework", "torch", "--json", timeout=600)
    opened = watch.stop()

    assert proc.returncode == 1, proc.stderr[-2000:]
    errors = {ln.split(":")[2].strip(): ln for ln in proc.stderr.splitlines() if ln.strip()}
    assert all(ln.startswith("coursekit: error: ") for ln in errors.values()), proc.stderr
    assert sorted(errors) == ["eve", "fay", "gus", "hal"], proc.stderr
    assert f"submitted/eve/{LESSON} is a symbolic link" in errors["eve"]
    assert f"submitted/fay/{LESSON}/{NAME} is a symbolic link" in errors["fay"]
    assert f"submitted/gus/{LESSON}/{NAME} is not valid JSON" in errors["gus"]
    assert f"submitted/hal/{LESSON}/{NAME} is 21.0 MiB, over the 20 MiB" in errors["hal"]
    rows = {r["student"]: r for r in json.loads(proc.stdout)}
    assert rows["ann"]["score"] == rows["ann"]["max_score"] == 9
    assert all(rows[s]["score"] is None for s in ("eve", "fay", "gus", "hal")), rows
    assert not opened, "fay's link target was opened"
    # only ann's graded output and the gradebook are new; solutions, lessons, submissions as they were
    assert sorted(p.name for p in (course / "autograded").iterdir()) == ["ann"]
    assert tree_state(course, skip=("gradebook.db", "autograded")) == before
