"""The instructor's run: what every check of a notebook's test cells observes on the solution.

Grading a notebook needs, for each of its test cells, the observations a clean run of the
instructor's *source* notebook (solutions and hidden tests in place) makes — in its own sandboxed
kernel, at the same run size as grading. That run is made once and cached in `expected_dir`
(default `<course>/.coursekit/expected/<lesson>/<notebook>.json`, beside no lesson: students never
receive it), keyed by the source notebook, the coursekit package and the versions of the libraries
that compute the numbers. A stale or missing record is made again, under a lock, by whichever
grading process needs it first. The executed notebook of that run is kept beside its record
(`executed_path`): it holds solutions, so it is instructor material, like the record.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata as md
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

FORMAT = 2  # 2: the executed notebook is kept beside the record
LIBRARIES = ("numpy", "torch", "torchvision", "tensorflow", "keras", "scikit-learn", "ipykernel")

__all__ = ["record_key", "record_path", "executed_path", "load_record", "ensure_record", "memo_path", "ensure_memo",
           "InstructorRunFailed"]


class InstructorRunFailed(RuntimeError):
    """The instructor's own solution fails a test cell: the lesson must be fixed before grading."""


def _package_digest() -> str:
    import coursekit

    h = hashlib.sha256()
    top = Path(coursekit.__file__).parent
    for f in sorted(top.rglob("*.py")):
        h.update(str(f.relative_to(top)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def record_key(source: Path) -> str:
    """What the record depends on: the source notebook's cells, coursekit, the libraries, the run size."""
    import nbformat

    nb = nbformat.read(source, as_version=4)
    h = hashlib.sha256(f"format {FORMAT}\n".encode())
    for cell in nb.cells:
        h.update(cell.cell_type.encode() + b"\0" + cell.source.encode() + b"\0")
    h.update(_package_digest().encode())
    for lib in LIBRARIES:
        try:
            h.update(f"{lib} {md.version(lib)}\n".encode())
        except md.PackageNotFoundError:
            h.update(f"{lib} -\n".encode())
    h.update(f"run size {os.environ.get('COURSEKIT_RUN_SIZE', '')}\n".encode())
    # numbers from training differ in the last bits between thread counts: one record per count
    for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        h.update(f"{var} {os.environ.get(var, '')}\n".encode())
    return h.hexdigest()


def record_path(expected_dir: Path, lesson: str, notebook: str) -> Path:
    return Path(expected_dir) / lesson / f"{notebook}.json"


def executed_path(record: Path) -> Path:
    """The executed instructor notebook kept beside the record at `record` (written before it)."""
    return Path(record).with_suffix(".ipynb")


def load_record(path: Path, key: str) -> dict | None:
    """The record at `path` if it was made for `key` and its executed notebook is there, else None."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    current = data.get("key") == key and data.get("format") == FORMAT
    # the record and its executed notebook are made together: one without the other is stale
    return data if current and executed_path(path).is_file() else None


@contextlib.contextmanager
def _setenv(**values: str):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def memo_path(expected_dir: Path, lesson: str, notebook: str, key: str) -> Path:
    """Where the unanswered run of the release notebook with `key` keeps its memo (coursekit.memo)."""
    return Path(expected_dir) / lesson / f"{notebook}.memo-{key[:24]}"


def ensure_memo(config, expected_dir: Path, release: Path, lesson: str, notebook: str, log=None) -> Path | None:
    """The experiments memo of `release` (the student notebook), made now if missing or stale by
    running it unanswered in a sandboxed kernel; None when there is no release notebook to run.

    The run sees only what every student receives, so the memo holds no solution's and no hidden
    test's call (coursekit.memo). A memo whose notebook, coursekit, libraries, run size or thread
    count changed is another folder; another key's folder is removed once it is a day old."""
    if not Path(release).is_file():
        return None
    key = record_key(release)
    folder = memo_path(expected_dir, lesson, notebook, key)
    if (folder / "DONE").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{notebook}.memo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / "DONE").is_file():
            return folder
        for stale in folder.parent.glob(f"{notebook}.memo-*"):
            # another key's memo: removed once it is a day old, not sooner, since a grader running
            # with another run size or thread count may be reading it right now
            if time.time() - stale.stat().st_mtime > 86400:
                shutil.rmtree(stale, ignore_errors=True)
        if log is not None:
            log.info("coursekit: running %s/%s.ipynb unanswered once, for the experiments every student's "
                     "notebook repeats (coursekit.memo)", lesson, notebook)
        _run_unanswered(config, release, lesson, notebook, folder)
        (folder / "DONE").write_text(f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    return folder


def _run_unanswered(config, release: Path, lesson: str, notebook: str, folder: Path) -> None:
    import nbformat

    from .bounds import BoundedExecute

    folder.mkdir()
    folder.chmod(0o755)
    nb = nbformat.read(release, as_version=4)
    pp = BoundedExecute(config=config, record=True, audit=False, memo_dir=str(folder), memo_write=True)
    try:
        with tempfile.TemporaryDirectory(prefix="coursekit-unanswered-") as cwd, \
                _setenv(NBGRADER_EXECUTION="autograde"):
            pp.preprocess(nb, {"metadata": {"path": cwd}, "nbgrader": {"assignment": lesson, "notebook": notebook}})
    finally:
        if os.geteuid() == 0:  # the kernel wrote as its own uid: the memo is the grader's again
            for path in [folder, *folder.iterdir()]:
                os.chown(path, 0, 0)
        folder.chmod(0o755)


def ensure_record(config, expected_dir: Path, source: Path, lesson: str, notebook: str, log=None,
                  memo: Path | None = None) -> dict:
    """The instructor run's record of `source`, made now (in a sandboxed kernel) if missing or stale.
    With `memo` (`ensure_memo`), its experiments are read from there."""
    key = record_key(source)
    path = record_path(expected_dir, lesson, notebook)
    record = load_record(path, key)
    if record is not None:
        return record
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(path) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another grader may be making it right now
        record = load_record(path, key)
        if record is not None:
            return record
        if log is not None:
            log.info("coursekit: recording the instructor's run of %s/%s.ipynb", lesson, notebook)
        record = _run_instructor(config, source, lesson, notebook, executed_path(path), memo)
        record["key"] = key
        part = path.with_name(f".{path.name}.{os.getpid()}.part")
        part.write_text(json.dumps(record))
        os.replace(part, path)
    return record


def _run_instructor(config, source: Path, lesson: str, notebook: str, keep: Path, memo: Path | None) -> dict:
    import nbformat

    from .bounds import BoundedExecute

    nb = nbformat.read(source, as_version=4)
    pp = BoundedExecute(config=config, record=True, audit=False, memo_dir=str(memo or ""))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="coursekit-instructor-") as cwd, _setenv(NBGRADER_EXECUTION="autograde"):
        pp.preprocess(nb, {"metadata": {"path": cwd}, "nbgrader": {"assignment": lesson, "notebook": notebook}})
    for gid, cell in pp.recorded.items():
        if not cell["checks"] and not cell["error"]:
            cell["error"] = "it made no check (a test cell must call coursekit.grading's checks)"
    failing = sorted(gid for gid, cell in pp.recorded.items() if cell["error"])
    if failing:
        raise InstructorRunFailed(
            f"the instructor's solution of {lesson}/{notebook}.ipynb fails its own test cell(s) {', '.join(failing)} "
            f"({pp.recorded[failing[0]]['error']}); fix the lesson in solutions/ before grading")
    part = keep.with_name(f".{keep.name}.{os.getpid()}.part")
    nbformat.write(nb, str(part))
    os.replace(part, keep)  # before the record, which says that both are current
    return {"format": FORMAT, "lesson": lesson, "notebook": notebook, "made": time.strftime("%Y-%m-%d %H:%M:%S"),
            "seconds": round(time.monotonic() - started, 1),
            "cells": {gid: cell["checks"] for gid, cell in pp.recorded.items()}}
