"""What each graded test cell failed on, kept by the grader for the instructor's item statistics.

nbgrader's gradebook keeps scores, not messages. While a notebook is graded, the host decides each
test cell's verdict (coursekit.autograde.verdicts) and BoundedExecute writes into that cell's
metadata the labels of the checks that failed (the instructor's wording, e.g.
"resize_map(y of shape (3, 9, 12, 2), (12, 15), 'pad') (a hidden test)", never the student's values),
and into the notebook's metadata the limits that stopped it or cut its output. After grading, `coursekit grade` copies this
into a table of the gradebook's own database, `coursekit_check_result` (assignment, student,
notebook, cell, kind, label): one row per graded notebook ('graded': nbgrader gives a notebook a
student did not hand in a score of 0, so the gradebook alone cannot tell it from a graded 0), per
failed check ('check', with its test cell) and per limit hit ('limit': time, memory, output or kernel). It lives
and dies with the gradebook, works the same in SQLite and PostgreSQL, and nbgrader never reads it.
`coursekit report` reads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..notebooks import Course

__all__ = ["METADATA_KEY", "TABLE", "CheckResult", "handed_in", "limit_kind", "read_results", "record_results",
           "results_of_notebook"]

TABLE = "coursekit_check_result"
METADATA_KEY = "coursekit_grader"  # in a test cell's metadata: written by the host, stripped from submissions


@dataclass(frozen=True)
class CheckResult:
    student: str
    notebook: str
    cell: str  # the test cell's grade id, e.g. "ex2-tests"
    kind: str  # "graded" (one per graded notebook), "check" (a failed check) or "limit" (a limit hit)
    label: str


def limit_kind(reason: str) -> str:
    """'time', 'memory', 'output' or 'kernel' for a reason BoundedExecute stopped a notebook with
    (coursekit.autograde.bounds; 'output' is its note for a truncated output)."""
    text = reason.lower()
    if text == "output":
        return "output"
    if "kernel died" in text:
        return "kernel"
    if "memory" in text:
        return "memory"
    if "time limit" in text:
        return "time"
    return "kernel"


def results_of_notebook(path: Path, student: str, notebook: str) -> list[CheckResult]:
    """That the notebook at `path` was graded, and the failed checks and limit hits the grader wrote into it."""
    out = [CheckResult(student, notebook, "", "graded", "")]  # handed in and graded (nbgrader scores a missing notebook 0)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return out
    note = (nb.get("metadata") or {}).get(METADATA_KEY)
    if isinstance(note, dict):
        for reason in note.get("limits", []):
            out.append(CheckResult(student, notebook, "", "limit", limit_kind(str(reason))))
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {})
        note = meta.get(METADATA_KEY)
        gid = (meta.get("nbgrader") or {}).get("grade_id")
        if not isinstance(note, dict) or not isinstance(gid, str):
            continue
        for label in note.get("failed", []):
            out.append(CheckResult(student, notebook, gid, "check", str(label)[:500]))
    return out


def _table(metadata):
    import sqlalchemy as sa

    return sa.Table(TABLE, metadata,
                    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("assignment", sa.String(128), nullable=False, index=True),
                    sa.Column("student", sa.String(128), nullable=False),
                    sa.Column("notebook", sa.String(128), nullable=False),
                    sa.Column("cell", sa.String(128), nullable=False),
                    sa.Column("kind", sa.String(16), nullable=False),
                    sa.Column("label", sa.String(500), nullable=False))


def record_results(course: Course, lesson: str, graded: dict[tuple[str, str], list[CheckResult]]) -> None:
    """Replace the rows of each graded (student, notebook) of `lesson` with `graded`'s results."""
    if not graded:
        return
    import sqlalchemy as sa

    from .versions import _engine, _locked

    engine = _engine(course)
    try:
        if not sa.inspect(engine).has_table("assignment"):  # only beside nbgrader's own tables
            return
        metadata = sa.MetaData()
        table = _table(metadata)
        metadata.create_all(engine)
        with engine.begin() as conn:
            for (student, notebook), results in graded.items():
                conn.execute(table.delete().where(table.c.assignment == lesson, table.c.student == student,
                                                  table.c.notebook == notebook))
                if results:
                    conn.execute(table.insert(), [dict(assignment=lesson, student=r.student, notebook=r.notebook,
                                                       cell=r.cell, kind=r.kind, label=r.label) for r in results])
    except sa.exc.OperationalError as err:
        raise _locked(err, course) from None
    finally:
        engine.dispose()


def handed_in(results: list[CheckResult]) -> set[tuple[str, str]]:
    """{(student, notebook)} graded according to `results`."""
    return {(r.student, r.notebook) for r in results if r.kind == "graded"}


def read_results(course: Course, lesson: str) -> list[CheckResult]:
    """Every recorded result of `lesson` ([] before the first grading that recorded any)."""
    if not course.has_gradebook():
        return []
    import sqlalchemy as sa

    from .versions import _engine, _locked

    engine = _engine(course)
    try:
        if not sa.inspect(engine).has_table(TABLE):
            return []
        table = _table(sa.MetaData())
        with engine.connect() as conn:
            rows = conn.execute(sa.select(table.c.student, table.c.notebook, table.c.cell, table.c.kind, table.c.label)
                                .where(table.c.assignment == lesson).order_by(table.c.id))
            return [CheckResult(*row) for row in rows]
    except sa.exc.OperationalError as err:
        raise _locked(err, course) from None
    finally:
        engine.dispose()
