"""A tripwire around a grading run: what grading must never change, compared before and after.

The sandbox keeps submissions away from the course and the Python environment; this checks that
it did. Before the first student's kernel starts and after the last one ends, `snapshot` reads the
content of the course's inputs (`nbgrader_config.py`, `solutions/`, `lessons/`, `submitted/`) and of
the `coursekit` package that grades, and the size and modification time of every file of this
Python environment (its own prefix and the base interpreter's). Anything that differs afterwards is
reported by `coursekit grade`, which then fails: that run's scores cannot be trusted. What grading
writes (`autograded/`, `feedback/`, the gradebook, `.coursekit/`) is not watched.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

__all__ = ["snapshot", "changed"]

COURSE_INPUTS = ("nbgrader_config.py", "solutions", "lessons", "submitted")


def _files(top: Path):
    if top.is_file() or top.is_symlink():
        yield top
        return
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            yield Path(folder) / name


def _digest(path: Path) -> str:
    if path.is_symlink():
        return "link:" + os.readlink(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def snapshot(course_root: Path, package: Path) -> dict[str, str]:
    """{path: fingerprint} of what grading must leave as it is."""
    out: dict[str, str] = {}
    for top in [*(Path(course_root) / name for name in COURSE_INPUTS), Path(package)]:
        if top.exists() or top.is_symlink():
            for f in _files(top):
                try:
                    out[str(f)] = _digest(f)
                except OSError as err:
                    out[str(f)] = f"unreadable: {err.strerror}"
    for prefix in sorted({os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}):
        for path, fingerprint in _stats(prefix):
            out.setdefault(path, fingerprint)
    return out


def _stats(top: str):
    """(path, "size:mtime") of every file under `top`, links not followed. Plain strings and
    scandir: the environment holds ~100k files, and Path objects made this walk twice as slow."""
    stack = [top]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        stack.append(entry.path)
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                yield entry.path, f"{st.st_size}:{st.st_mtime_ns}"


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Paths added, removed or changed between two snapshots, sorted."""
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
