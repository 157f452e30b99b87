"""Grades for a learning-management system: the CSV that Canvas or Moodle imports, one column per lesson.

`coursekit export --format canvas|moodle --roster roster.csv` reads the per-exercise export of the
gradebook (coursekit.export) and writes one row per student of the roster. The roster maps the
course's student ids (the folder names under submitted/) to the LMS's own ids; it is a CSV with a
`student_id` column and, for Canvas, `name`, `canvas_id`, `sis_user_id`, `sis_login_id`, `section`
(at least one of the three ids per student), for Moodle one of `email`, `username`, `idnumber`.

Rules an instructor should know:
- a lesson has a PyTorch and a Keras notebook and a student hands in one; if a student handed in
  both, the notebook with the higher share of its points counts (the other is ignored);
- a student on the roster with nothing graded for a lesson gets an empty cell, not 0: the LMS keeps
  what it has (an excused or a manually entered grade is not overwritten);
- a graded student missing from the roster is an error, never a silently dropped grade.

Canvas: the columns of Canvas' own gradebook export (Student, ID, SIS User ID, SIS Login ID,
Section), then one column per lesson, and a "Points Possible" row. A new column name creates that
assignment on the first import; `--canvas-assignment LESSON=ID` heads it "LESSON (ID)" instead, as
Canvas heads an existing assignment, so the import updates that one. Moodle: the user-identifying column, then one column per lesson;
map them on Moodle's "Import grades from CSV" page. This module imports no framework and no nbgrader.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FORMATS", "LessonScore", "RosterError", "canvas_assignment_ids", "lesson_scores", "read_roster",
           "write_lms_csv"]

FORMATS = ("canvas", "moodle")
CANVAS_IDS = ("canvas_id", "sis_user_id", "sis_login_id")
MOODLE_IDS = ("email", "username", "idnumber")
MOODLE_HEADERS = {"email": "Email address", "username": "Username", "idnumber": "ID number"}


class RosterError(ValueError):
    """A roster or gradebook that cannot give a correct LMS file (the message says what to fix)."""


@dataclass(frozen=True)
class LessonScore:
    """The grade that counts for one student and lesson: the notebook handed in, its points."""

    notebook: str
    score: float
    max_score: float
    ignored: tuple[str, ...] = ()  # other notebooks of the lesson this student handed in

    @property
    def fraction(self) -> float:
        return self.score / self.max_score if self.max_score else 0.0


def lesson_scores(rows: Iterable[Mapping[str, str]],
                  graded: set[tuple[str, str, str]] | None = None) -> dict[str, dict[str, LessonScore]]:
    """{student: {lesson: LessonScore}} from rows of the per-exercise export (coursekit.export.COLUMNS).

    Each notebook's total is read from its `notebook_score` / `notebook_max_score`; when a student
    handed in several notebooks of a lesson, the one with the higher share of its points counts
    (on a tie, the first by name). nbgrader scores a notebook a student did not hand in 0: with
    `graded`, the (student, lesson, notebook) the grader recorded as graded
    (coursekit.autograde.results), a student's other notebooks of that lesson are left out."""
    recorded = {(s, a) for s, a, _ in graded or ()}
    totals: dict[tuple[str, str], dict[str, tuple[float, float]]] = {}
    for row in rows:
        key = (row["student_id"], row["assignment"])
        if key in recorded and (*key, row["notebook"]) not in graded:
            continue
        totals.setdefault(key, {})[row["notebook"]] = (float(row["notebook_score"] or 0.0),
                                                       float(row["notebook_max_score"] or 0.0))
    out: dict[str, dict[str, LessonScore]] = {}
    for (student, lesson), notebooks in totals.items():
        ranked = sorted(notebooks, key=lambda nb: (-(notebooks[nb][0] / notebooks[nb][1] if notebooks[nb][1] else 0.0), nb))
        best = ranked[0]
        score, max_score = notebooks[best]
        out.setdefault(student, {})[lesson] = LessonScore(best, score, max_score, tuple(ranked[1:]))
    return out


def read_roster(path: str | Path, fmt: str) -> list[dict[str, str]]:
    """The roster's rows (stripped strings), checked for `fmt` ('canvas' or 'moodle')."""
    if fmt not in FORMATS:
        raise RosterError(f"format must be one of {FORMATS}; received {fmt!r}.")
    path = Path(path)
    if not path.is_file():
        raise RosterError(f"roster {path} is not a file; pass --roster with a CSV that has a student_id column "
                          f"and the LMS ids ({_id_columns(fmt)}).")
    with open(path, newline="", encoding="utf-8-sig") as fh:  # utf-8-sig: spreadsheets write a BOM
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    if "student_id" not in columns:
        raise RosterError(f"roster {path} needs a student_id column (the folder names under submitted/); its "
                          f"columns are {columns}. Add one, e.g. student_id,{_id_columns(fmt).split(', ')[0]}.")
    wanted = CANVAS_IDS if fmt == "canvas" else MOODLE_IDS
    present = [c for c in wanted if c in columns]
    if not present:
        raise RosterError(f"a {fmt} roster needs one of the columns {_id_columns(fmt)} to match students in "
                          f"{fmt.capitalize()}; {path} has {columns}.")
    seen: dict[str, int] = {}
    for i, row in enumerate(rows, start=2):  # line 1 is the header
        sid = row["student_id"]
        if not sid:
            raise RosterError(f"roster {path}, line {i}: empty student_id. Fill it in or delete the line.")
        if sid in seen:
            raise RosterError(f"roster {path}: student_id {sid!r} appears on lines {seen[sid]} and {i}; "
                              "each student needs exactly one line.")
        seen[sid] = i
        if fmt == "canvas" and not any(row.get(c) for c in present):
            raise RosterError(f"roster {path}, line {i} ({sid}): no Canvas id; fill in one of {present}.")
        if fmt == "moodle" and not row.get(present[0]):
            raise RosterError(f"roster {path}, line {i} ({sid}): empty {present[0]}; Moodle matches students by it.")
    return rows


def canvas_assignment_ids(pairs: list[str], lessons: list[str]) -> dict[str, str]:
    """{lesson: Canvas assignment id} from `LESSON=ID` strings (`--canvas-assignment`)."""
    out = {}
    for pair in pairs:
        lesson, sep, ident = pair.partition("=")
        if not sep or not lesson or not ident.strip().isdigit():
            raise RosterError(f"--canvas-assignment takes LESSON=ID with the number from the assignment's Canvas URL "
                              f"(.../assignments/ID); received {pair!r}. Example: --canvas-assignment "
                              "01-shape-alignment=12345")
        if lesson not in lessons:
            raise RosterError(f"--canvas-assignment names {lesson!r}, which is not among the exported lessons "
                              f"{lessons}.")
        out[lesson] = ident.strip()
    return out


def write_lms_csv(dest: str | Path, fmt: str, roster: list[dict[str, str]],
                  scores: Mapping[str, Mapping[str, LessonScore]], lessons: list[str], *,
                  percent: bool = False, canvas_ids: Mapping[str, str] | None = None) -> int:
    """Write the LMS import file; return the number of student rows. Scores are points (or, with
    `percent`, percentages of each lesson's points), rounded to 2 decimals. With `canvas_ids`, a
    lesson's Canvas column is headed "LESSON (ID)", as Canvas' own export heads an existing assignment,
    so an import updates that assignment instead of creating one."""
    listed = {row["student_id"] for row in roster}
    unlisted = sorted(s for s in scores if s not in listed)
    if unlisted:
        shown = ", ".join(unlisted[:5]) + (f" and {len(unlisted) - 5} more" if len(unlisted) > 5 else "")
        raise RosterError(f"graded students missing from the roster: {shown}. Add them (student_id is the folder "
                          "name under submitted/) so that no grade is dropped.")
    maxima = {}
    for lesson in lessons:
        seen = {s[lesson].max_score for s in scores.values() if lesson in s}
        maxima[lesson] = max(seen) if seen else 0.0

    def cell(student: str, lesson: str) -> str:
        got = scores.get(student, {}).get(lesson)
        if got is None:
            return ""
        value = 100.0 * got.fraction if percent else got.fraction * maxima[lesson]
        return f"{round(value, 2):g}"

    with open(dest, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        if fmt == "canvas":
            ids = canvas_ids or {}
            writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                             *((f"{lesson} ({ids[lesson]})" if lesson in ids else lesson) for lesson in lessons)])
            writer.writerow(["Points Possible", "", "", "", "",
                             *(("100" if percent else f"{maxima[lesson]:g}") for lesson in lessons)])
            for row in roster:
                writer.writerow([row.get("name", ""), row.get("canvas_id", ""), row.get("sis_user_id", ""),
                                 row.get("sis_login_id", ""), row.get("section", ""),
                                 *(cell(row["student_id"], lesson) for lesson in lessons)])
        elif fmt == "moodle":
            key = next(c for c in MOODLE_IDS if c in roster[0]) if roster else "email"
            writer.writerow([MOODLE_HEADERS[key], *lessons])
            for row in roster:
                writer.writerow([row[key], *(cell(row["student_id"], lesson) for lesson in lessons)])
        else:
            raise RosterError(f"format must be one of {FORMATS}; received {fmt!r}.")
    return len(roster)


def _id_columns(fmt: str) -> str:
    return ", ".join(CANVAS_IDS if fmt == "canvas" else MOODLE_IDS)
