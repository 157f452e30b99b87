"""Course files: finding the course, reading and cleaning notebooks, driving nbgrader.

Imports no framework. nbgrader runs in a subprocess with this interpreter, so a broken
notebook or a failing kernel never takes the instructor's command down with a traceback.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

FRAMEWORK_NOTEBOOKS = {"torch": "pytorch", "keras": "keras"}
LESSON_RE = re.compile(r"^\d\d-[a-z0-9-]+$")
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
# A shared gradebook (PostgreSQL) instead of the course's gradebook.db; nbgrader_config.py reads it too.
DB_ENV_VAR = "COURSEKIT_DB_URL"


class CourseError(Exception):
    """A problem the instructor can fix; the CLI prints it as one line and exits non-zero."""


@dataclass(frozen=True)
class Course:
    """A course directory: nbgrader_config.py, solutions/ (source) and lessons/ (release)."""

    root: Path

    @property
    def solutions(self) -> Path:
        return self.root / "solutions"

    @property
    def lessons_dir(self) -> Path:
        return self.root / "lessons"

    @property
    def db_url(self) -> str:
        """The gradebook: `COURSEKIT_DB_URL` if set (e.g. postgresql://...), else sqlite gradebook.db."""
        return os.environ.get(DB_ENV_VAR) or f"sqlite:///{self.root / 'gradebook.db'}"

    @property
    def uses_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite:")

    def has_gradebook(self) -> bool:
        """Whether the gradebook exists (a file for SQLite; a reachable nbgrader schema otherwise)."""
        if self.uses_sqlite:
            return Path(self.db_url.removeprefix("sqlite:///")).is_file()
        import sqlalchemy

        try:
            engine = sqlalchemy.create_engine(self.db_url)
            with engine.connect():
                return sqlalchemy.inspect(engine).has_table("assignment")
        except sqlalchemy.exc.SQLAlchemyError as err:
            raise CourseError(f"cannot reach the gradebook {self.db_url}: {str(err).splitlines()[0]}") from None

    def lessons(self) -> list[str]:
        """Lesson folder names in solutions/, sorted."""
        if not self.solutions.is_dir():
            return []
        return sorted(p.name for p in self.solutions.iterdir() if p.is_dir() and LESSON_RE.match(p.name))

    def lesson(self, name: str) -> str:
        """Validate a lesson name (a unique prefix such as '01' is accepted) and return it."""
        names = self.lessons()
        if name in names:
            return name
        matches = [n for n in names if n.startswith(name)]
        if len(matches) == 1:
            return matches[0]
        raise CourseError(
            f"no lesson {name!r} in {self.solutions}; lessons are: {', '.join(names) or '(none)'}"
        )

    def notebooks(self, lesson: str, framework: str | None = None) -> list[Path]:
        """Source notebooks of `lesson`, optionally only one framework's."""
        folder = self.solutions / lesson
        stems = [FRAMEWORK_NOTEBOOKS[framework]] if framework else None
        return sorted(p for p in folder.glob("*.ipynb") if stems is None or p.stem in stems)


def find_course(start: str | os.PathLike | None = None) -> Course:
    """The course containing `start` (default: the current directory), searching upwards."""
    here = Path(start or os.getcwd()).resolve()
    if not here.exists():
        raise CourseError(f"directory {here} does not exist")
    for d in (here, *here.parents):
        if (d / "nbgrader_config.py").is_file() and (d / "solutions").is_dir():
            return Course(d)
    raise CourseError(
        f"{here} is not inside a course directory (no nbgrader_config.py with a solutions/ folder "
        "next to it); cd into the course or pass --root"
    )


def check_framework(framework: str | None) -> str | None:
    if framework is not None and framework not in FRAMEWORK_NOTEBOOKS:
        raise CourseError(f"unknown framework {framework!r}; use one of: {', '.join(FRAMEWORK_NOTEBOOKS)}")
    return framework


def read_notebook(path: Path):
    """Read and validate a notebook, turning any parse error into a one-line CourseError."""
    import nbformat

    try:
        with open(path, encoding="utf-8") as f:
            nb = nbformat.read(f, as_version=4)
        nbformat.validate(nb)
    except FileNotFoundError:
        raise CourseError(f"notebook {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError, nbformat.reader.NotJSONError) as err:
        first = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        raise CourseError(f"notebook {path} is not valid JSON ({first}); restore it from git") from None
    except Exception as err:  # nbformat.ValidationError and friends
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CourseError(f"notebook {path} is malformed: {msg}") from None
    return nb


def clean_notebook(nb):
    """Strip outputs, execution counts and volatile metadata so committed files diff cleanly.

    Cell ids are renumbered deterministically; only the `nbgrader` cell metadata (and tags) are
    kept, and the notebook metadata is reduced to the kernelspec and language name.
    """
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:03d}"
        keep = {k: cell.metadata[k] for k in ("nbgrader", "tags") if k in cell.metadata}
        cell["metadata"] = keep
        if cell.cell_type == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    nb["metadata"] = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    nb["nbformat"], nb["nbformat_minor"] = 4, 5
    return nb


def notebook_text(nb) -> str:
    """The exact text coursekit writes for a notebook (nbformat's layout, trailing newline)."""
    import nbformat

    return nbformat.writes(nb) + "\n"


def write_notebook(nb, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(notebook_text(nb), encoding="utf-8")


def nbgrader_env(env: dict | None = None) -> dict:
    """The environment for an nbgrader process: this one, `env` on top."""
    full_env = dict(os.environ)
    # nbgrader runs `alembic` from PATH when it creates a gradebook: make it this venv's.
    full_env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + full_env.get("PATH", "")
    full_env.update(env or {})
    return full_env


def nbgrader(course: Course, *args: str, env: dict | None = None, timeout: float | None = None):
    """Run `nbgrader ARGS` in the course root with this interpreter; return the CompletedProcess.
    (Through `coursekit._nbhost`, which is nbgrader's command line with a faster start.)"""
    return subprocess.run(
        [sys.executable, "-m", "coursekit._nbhost", *args],
        cwd=course.root,
        env=nbgrader_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def log_error(text: str) -> str:
    """The most useful line of an nbgrader log ('' if it is empty)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "[ERROR]" in ln or "Error" in ln:
            return ln
    return lines[-1] if lines else ""


def _nbgrader_error(proc) -> str:
    """The most useful line of a failed nbgrader run."""
    return log_error(proc.stderr + proc.stdout) or f"exit code {proc.returncode}"


def generate(course: Course, lessons: list[str], framework: str | None = None) -> dict[str, dict[str, str]]:
    """Student versions of the `lessons`' notebooks, cleaned: {lesson: {relative path: text}}.

    Runs `nbgrader generate_assignment` for each lesson (all in one nbgrader process) into a
    temporary release directory without the gradebook, so neither lessons/ nor the instructor's
    gradebook is touched. Other files in a lesson folder are included as nbgrader copies them.
    """
    from ._nbhost import CommandFailed, Host

    lessons = [course.lesson(name) for name in lessons]
    for lesson in lessons:
        sources = course.notebooks(lesson, framework)
        if not sources:
            raise CourseError(f"lesson {lesson} has no notebooks for framework {framework or 'any'}")
        for src in sources:  # fail early with one line, before nbgrader prints a traceback
            read_notebook(src)
    notebook_id = FRAMEWORK_NOTEBOOKS[framework] if framework else "*"
    out: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="coursekit-build-") as tmp:
        release = Path(tmp) / "release"
        host = Host(course.root, queue.Queue(), nbgrader_env())
        try:
            for _ in host.run_all([(lesson, ["generate_assignment", lesson, "--force", "--no-db",
                                             f"--CourseDirectory.release_directory={release}",
                                             f"--CourseDirectory.notebook_id={notebook_id}"]) for lesson in lessons]):
                pass
        except CommandFailed as failed:
            raise CourseError(f"nbgrader could not generate {failed.tag}: {log_error(host.close(timeout=0))}") from None
        finally:
            host.close(timeout=0)
        for lesson in lessons:
            files: dict[str, str] = {}
            base = release / lesson
            for path in sorted(base.rglob("*")):
                if not path.is_file():
                    continue
                rel = path.relative_to(base).as_posix()
                if path.suffix == ".ipynb" and path.parent == base:
                    files[rel] = notebook_text(clean_notebook(read_notebook(path)))
                else:
                    files[rel] = path.read_bytes().decode("utf-8", errors="surrogateescape")
            out[lesson] = files
    return out


def build(course: Course, lessons: list[str] | None = None, check: bool = False) -> list[str]:
    """Regenerate lessons/ from solutions/. With `check`, write nothing and return the paths that
    differ from what is committed (empty list: in sync)."""
    names = [course.lesson(n) for n in lessons] if lessons else course.lessons()
    if not names:
        raise CourseError(f"no lessons found in {course.solutions}")
    changed: list[str] = []
    for name, files in generate(course, names).items():
        dest = course.lessons_dir / name
        existing = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()} if dest.is_dir() else set()
        for rel, text in files.items():
            target = dest / rel
            current = target.read_text(encoding="utf-8", errors="surrogateescape") if target.is_file() else None
            if current != text:
                changed.append(f"lessons/{name}/{rel}")
                if not check:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(text, encoding="utf-8", errors="surrogateescape")
        for rel in sorted(existing - set(files)):
            if "__pycache__" in rel or ".ipynb_checkpoints" in rel:
                continue
            changed.append(f"lessons/{name}/{rel} (not in solutions)")
            if not check:
                (dest / rel).unlink()
    if check:
        return changed
    stale = [p.name for p in course.lessons_dir.iterdir() if p.is_dir() and p.name not in course.lessons()] if (
        course.lessons_dir.is_dir() and not lessons
    ) else []
    for name in stale:
        shutil.rmtree(course.lessons_dir / name)
        changed.append(f"lessons/{name}/ (removed: no longer in solutions)")
    return changed
