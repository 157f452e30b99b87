"""Submissions checked before nbgrader sees them: one clear line for what cannot be graded.

`coursekit grade` runs every submission's notebook in a sandboxed kernel, but nbgrader itself reads
and copies the submission folder with the grader's own rights. So a submission must be plain files
in a plain folder: a symbolic link (the folder, or anything in it) could make the grader read or
overwrite whatever it points at, including the instructor's solutions or the gradebook, and it is
never followed. A notebook that is not JSON, or is larger than any lesson notebook can honestly
be (`MAX_NOTEBOOK_MB`), fails with a precise reason instead of an nbgrader traceback or minutes of
parsing. Every problem names what was received and what to do; the rest of the class is graded.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

__all__ = ["MAX_NOTEBOOK_MB", "submission_problem"]

# A lesson notebook with its outputs is well under 2 MiB; 20 MiB leaves room for many figures.
MAX_NOTEBOOK_MB = 20


def _link(path: Path, shown: str) -> str:
    # the link's own text, never its target's contents; repr() keeps odd characters harmless
    return f"{shown} is a symbolic link (to {os.readlink(path)!r}), which the grader never follows"


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    return "not a regular file"


def submission_problem(submitted: Path, student: str, lesson: str, wanted: set[str]) -> str | None:
    """Why `submitted/<student>/<lesson>` cannot be graded (one line, starting with what was
    received and ending with what to do), or None. `wanted` are the notebook file names to grade;
    one of them must be there. Nothing is followed or opened but the wanted notebooks themselves,
    and those only as regular files."""
    base = f"submitted/{student}/{lesson}"
    fix = f"replace it with {student}'s real files (copies, not links) and grade again"
    student_dir = submitted / student
    if student_dir.is_symlink():
        return f"{_link(student_dir, f'submitted/{student}')}; {fix}"
    folder = student_dir / lesson
    if folder.is_symlink():
        return f"{_link(folder, base)}; {fix}"
    if not stat.S_ISDIR(os.lstat(folder).st_mode):
        return f"{base} is not a folder; collect {student}'s notebook into {base}/ and grade again"
    for top, dirs, files in os.walk(folder):  # does not descend into linked folders
        for name in sorted(dirs + files):
            path = Path(top) / name
            shown = f"{base}/{path.relative_to(folder).as_posix()}"
            if path.is_symlink():
                return f"{_link(path, shown)}; {fix}"
            mode = os.lstat(path).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                return f"{shown} is {_kind(mode)}, not a file; remove it and grade again"
    found = sorted(p.name for p in folder.glob("*.ipynb"))
    if not wanted & set(found):
        # nbgrader would fail this submission with a cryptic "Did you mean"
        return (f"no {' or '.join(sorted(wanted))} in {base}/ (found: {', '.join(found) or 'no notebook'}); "
                "rename it and grade again")
    for name in sorted(wanted & set(found)):
        problem = _notebook_problem(folder / name, f"{base}/{name}", student)
        if problem:
            return problem
    return None


def _notebook_problem(path: Path, shown: str, student: str) -> str | None:
    again = f"ask {student} to hand in the notebook again"
    size = os.lstat(path).st_size
    if size > MAX_NOTEBOOK_MB * 2**20:
        return (f"{shown} is {size / 2**20:.1f} MiB, over the {MAX_NOTEBOOK_MB} MiB a submitted notebook may have "
                f"(huge printouts or figures saved with it?); {again} with its outputs cleared "
                "(Kernel > Restart Kernel and Clear Outputs of All Cells, then save)")
    try:
        # O_NOFOLLOW: should the file have become a link since the check above, it is not opened
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as fh:
            data = json.loads(fh.read(MAX_NOTEBOOK_MB * 2**20 + 1))
    except OSError as err:
        return f"{shown} cannot be read ({err.strerror}); {again}"
    except (ValueError, UnicodeDecodeError) as err:  # json.JSONDecodeError is a ValueError
        first = (str(err).splitlines() or [type(err).__name__])[0][:120]
        return f"{shown} is not valid JSON ({first}), so not a notebook: the file is damaged; {again}"
    if not isinstance(data, dict):
        return f"{shown} is JSON but not a notebook (a {type(data).__name__}, not an object); {again}"
    return None
