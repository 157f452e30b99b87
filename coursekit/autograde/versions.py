"""Which version of a lesson the gradebook's scores were graded against.

`coursekit grade` registers the lesson in the gradebook every time it runs (nbgrader
`generate_assignment` from `solutions/`), and the tamper audit compares submissions with the
released notebook in `lessons/`. If either changed after some students were graded, grading the
others would score one class against two versions. So each grade run records a digest of both
notebooks, per graded notebook, in a small table of the gradebook's own database,
`coursekit_lesson_version` (assignment, notebook, digest, recorded): it lives and dies with the
gradebook, works the same in SQLite and PostgreSQL, and nbgrader never reads it. The next run
compares, and stops unless told to regrade (`--force`).

The digest covers what grading depends on: every cell's type, source and nbgrader metadata, in
order. Outputs, execution counts, cell ids and notebook metadata are left out, so running or
re-saving a notebook without editing it changes nothing.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

from ..notebooks import Course, CourseError

__all__ = ["TABLE", "changed_files", "lesson_digests", "notebook_digest", "record_digests", "recorded_digests"]

TABLE = "coursekit_lesson_version"


def notebook_digest(path: Path) -> str:
    """sha256 of the cells of the notebook at `path` ("missing" if there is none)."""
    if not path.is_file():
        return "missing"
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = [[c.get("cell_type"), "".join(c["source"]) if isinstance(c.get("source"), list) else c.get("source"),
                  c.get("metadata", {}).get("nbgrader")] for c in nb["cells"]]
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as err:
        raise CourseError(f"notebook {path} is not a valid notebook ({type(err).__name__}: "
                          f"{str(err).splitlines()[0][:120] if str(err) else ''}); restore it from git") from None
    return hashlib.sha256(json.dumps(cells, sort_keys=True).encode()).hexdigest()


def lesson_digests(course: Course, lesson: str, notebooks: list[str]) -> dict[str, str]:
    """{notebook name (e.g. "pytorch"): "SOURCE/RELEASE", the digests of its two versions}."""
    return {name: f"{notebook_digest(course.solutions / lesson / f'{name}.ipynb')}/"
                  f"{notebook_digest(course.lessons_dir / lesson / f'{name}.ipynb')}" for name in notebooks}


def _engine(course: Course):
    import sqlalchemy

    return sqlalchemy.create_engine(course.db_url)


def _locked(err: Exception, course: Course) -> Exception:
    from .runner import locked_message

    return CourseError(locked_message(course.db_url)) if "locked" in str(err) else err


def _table(metadata):
    import sqlalchemy as sa

    return sa.Table(TABLE, metadata,
                    sa.Column("assignment", sa.String(128), primary_key=True),
                    sa.Column("notebook", sa.String(128), primary_key=True),
                    sa.Column("digest", sa.String(160), nullable=False),
                    sa.Column("recorded", sa.DateTime()))


def recorded_digests(course: Course, lesson: str) -> dict[str, str]:
    """The digests recorded when `lesson` was last registered ({} if never, or no gradebook yet)."""
    if not course.has_gradebook():
        return {}
    import sqlalchemy as sa

    engine = _engine(course)
    try:
        if not sa.inspect(engine).has_table(TABLE):
            return {}
        table = _table(sa.MetaData())
        with engine.connect() as conn:
            rows = conn.execute(sa.select(table.c.notebook, table.c.digest).where(table.c.assignment == lesson))
            return {notebook: digest for notebook, digest in rows}
    except sa.exc.OperationalError as err:
        raise _locked(err, course) from None
    finally:
        engine.dispose()


def record_digests(course: Course, lesson: str, digests: dict[str, str]) -> None:
    """Record `digests` as the version of `lesson` now registered in the gradebook."""
    import sqlalchemy as sa

    engine = _engine(course)
    try:
        # only beside nbgrader's own tables: in an empty database nbgrader would take a foreign
        # table for an existing gradebook and skip setting it up
        if not sa.inspect(engine).has_table("assignment"):
            return
        metadata = sa.MetaData()
        table = _table(metadata)
        metadata.create_all(engine)
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        with engine.begin() as conn:
            for notebook, digest in digests.items():
                conn.execute(table.delete().where(table.c.assignment == lesson, table.c.notebook == notebook))
                conn.execute(table.insert().values(assignment=lesson, notebook=notebook, digest=digest, recorded=now))
    except sa.exc.OperationalError as err:
        raise _locked(err, course) from None
    finally:
        engine.dispose()


def changed_files(course: Course, lesson: str, digests: dict[str, str]) -> list[str]:
    """The notebook files (relative to the course) that differ from the version recorded for
    `digests`' notebooks; a notebook with no recorded version has not changed."""
    recorded = recorded_digests(course, lesson)
    changed = []
    for name, digest in sorted(digests.items()):
        if name not in recorded:
            continue
        old = recorded[name].split("/")
        for folder, now, then in zip(("solutions", "lessons"), digest.split("/"), old + [""] * (2 - len(old))):
            if now != then:
                changed.append(f"{folder}/{lesson}/{name}.ipynb")
    return changed
