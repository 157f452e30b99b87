"""Item statistics of a graded lesson: `coursekit report LESSON` writes an HTML page per notebook and a CSV.

For each exercise (graded test cell) of each notebook: how many students it counts, the mean score,
the share of full marks, the item discrimination (the corrected item-total correlation: the
exercise's score against the student's score on the rest of the notebook; "n/a" when either is
constant or fewer than 3 students count) and the checks it was most often failed on (what the grader
recorded, coursekit.autograde.results); per notebook the score distribution and the submissions a
time, memory, output or kernel limit stopped; per lesson the students of the gradebook who handed in
nothing, and those who handed in both notebooks (the one with the higher share of its points counts,
as in `coursekit export --format canvas|moodle`). Reports are the instructor's: they are written
outside the course's lessons and never go into the course site.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .notebooks import Course, CourseError

__all__ = ["ItemStats", "LessonReport", "NotebookScores", "build_report", "discrimination", "lesson_report",
           "read_lesson", "write_report"]


@dataclass
class NotebookScores:
    """One student's graded notebook: points per exercise (test cell grade id)."""

    student: str
    notebook: str
    scores: dict[str, float]
    maxima: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.scores.values())

    @property
    def max_total(self) -> float:
        return sum(self.maxima.values())

    @property
    def fraction(self) -> float:
        return self.total / self.max_total if self.max_total else 0.0


@dataclass
class ItemStats:
    exercise: str
    max_score: float
    n: int
    mean: float
    full_share: float
    discrimination: float | None
    failing: list[tuple[str, int]] = field(default_factory=list)  # (check label, students), most frequent first


@dataclass
class NotebookReport:
    notebook: str
    students: list[str]
    totals: list[float]
    max_total: float
    items: list[ItemStats]
    limits: dict[str, list[str]]  # kind -> students


@dataclass
class LessonReport:
    lesson: str
    notebooks: list[NotebookReport]
    missing: list[str]  # in the gradebook, nothing graded for this lesson
    both: dict[str, str]  # student -> the notebook that counts (handed in both)


def discrimination(item: list[float], rest: list[float]) -> float | None:
    """Pearson correlation of an exercise's scores with the scores on the rest; None when it is
    undefined (fewer than 3 students, or either side constant)."""
    n = len(item)
    if n < 3 or len(rest) != n:
        return None
    mi, mr = sum(item) / n, sum(rest) / n
    si = sum((x - mi) ** 2 for x in item)
    sr = sum((y - mr) ** 2 for y in rest)
    if si <= 1e-12 or sr <= 1e-12:
        return None
    return sum((x - mi) * (y - mr) for x, y in zip(item, rest)) / math.sqrt(si * sr)


def read_lesson(course: Course, lesson: str) -> tuple[list[NotebookScores], list[str]]:
    """Every graded notebook of `lesson` in the gradebook, and every student the gradebook knows."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(course.db_url) as gb:
        try:
            assignment = gb.find_assignment(lesson)
        except MissingEntry:
            raise CourseError(f"{lesson} is not in the gradebook: run `coursekit grade {lesson}` first") from None
        cells = {nb.name: {gc.name: float(gc.max_score) for gc in nb.grade_cells if gc.max_score}
                 for nb in assignment.notebooks}
        graded = []
        for sub in assignment.submissions:
            for nb in sub.notebooks:
                scores = {g.name: float(g.score or 0.0) for g in nb.grades if g.name in cells.get(nb.name, {})}
                graded.append(NotebookScores(sub.student.id, nb.name, scores, dict(cells.get(nb.name, {}))))
        roster = sorted(s.id for s in gb.students)
    return graded, roster


def lesson_report(lesson: str, graded: list[NotebookScores], roster: list[str], results: list) -> LessonReport:
    """The statistics of one lesson from its graded notebooks, the gradebook's students and the
    grader's recorded results (coursekit.autograde.results.CheckResult). nbgrader scores a notebook
    a student did not hand in 0: where the grader recorded which notebooks it graded, only those count."""
    from .autograde.results import handed_in

    known = handed_in(results)
    recorded = {s for s, _ in known}
    by_student: dict[str, list[NotebookScores]] = {}
    for g in graded:
        if g.student in recorded and (g.student, g.notebook) not in known:
            continue  # not handed in: nbgrader's 0, not a grade
        by_student.setdefault(g.student, []).append(g)
    counted: dict[str, NotebookScores] = {}
    both = {}
    for student, notebooks in by_student.items():
        best = sorted(notebooks, key=lambda g: (-g.fraction, g.notebook))[0]
        counted[student] = best
        if len(notebooks) > 1:
            both[student] = best.notebook
    reports = []
    for notebook in sorted({g.notebook for g in counted.values()}):
        rows = sorted((g for g in counted.values() if g.notebook == notebook), key=lambda g: g.student)
        names = {g.student for g in rows}
        maxima = rows[0].maxima
        items = []
        for ex in sorted(maxima):
            item = [g.scores.get(ex, 0.0) for g in rows]
            rest = [g.total - g.scores.get(ex, 0.0) for g in rows]
            fails = Counter()
            for r in results:
                if r.kind == "check" and r.notebook == notebook and r.cell == ex and r.student in names:
                    fails[r.label] += 1
            items.append(ItemStats(ex, maxima[ex], len(rows), sum(item) / len(rows),
                                   sum(1 for x in item if x >= maxima[ex]) / len(rows),
                                   discrimination(item, rest), sorted(fails.items(), key=lambda kv: (-kv[1], kv[0]))))
        limits: dict[str, list[str]] = {}
        for r in results:
            if r.kind == "limit" and r.notebook == notebook and r.student in names:
                limits.setdefault(r.label, [])
                if r.student not in limits[r.label]:
                    limits[r.label].append(r.student)
        reports.append(NotebookReport(notebook, [g.student for g in rows], [g.total for g in rows],
                                      sum(maxima.values()), items, {k: sorted(v) for k, v in sorted(limits.items())}))
    missing = sorted(s for s in roster if s not in by_student)
    return LessonReport(lesson, reports, missing, dict(sorted(both.items())))


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _histogram_png(report: NotebookReport, lesson: str) -> str:
    from matplotlib.figure import Figure  # a bare Figure draws with Agg: no pyplot, no backend switch

    fig = Figure(figsize=(6, 2.8))
    ax = fig.add_subplot()
    top = report.max_total
    bins = [x - 0.5 for x in range(int(math.floor(top)) + 2)] if top <= 40 else 20
    ax.hist(report.totals, bins=bins, color="#4c72b0", edgecolor="white")
    ax.set_xlabel(f"score (of {top:g})")
    ax.set_ylabel("students")
    ax.set_title(f"{lesson} / {report.notebook}: {len(report.totals)} students")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode()


def write_report(report: LessonReport, dest: Path) -> list[Path]:
    """index.html, one <notebook>.html per notebook and items.csv in `dest`; returns the files."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    csv_path = dest / "items.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["lesson", "notebook", "exercise", "max_score", "students", "mean", "full_marks_share",
                    "discrimination", "top_failing_checks"])
        for nb in report.notebooks:
            for it in nb.items:
                w.writerow([report.lesson, nb.notebook, it.exercise, f"{it.max_score:g}", it.n, f"{it.mean:.3f}",
                            f"{it.full_share:.3f}", _fmt(it.discrimination, 3),
                            " | ".join(f"{label} ({n})" for label, n in it.failing[:3])])
    written.append(csv_path)
    esc = html.escape
    style = ("<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.3em .6em;vertical-align:top}th{background:#eee}"
             ".num{text-align:right}</style>")
    for nb in report.notebooks:
        rows = []
        for it in nb.items:
            fails = "<br>".join(f"{esc(label)} <b>({n})</b>" for label, n in it.failing[:5]) or "&mdash;"
            rows.append(f"<tr><td>{esc(it.exercise)}</td><td class=num>{it.max_score:g}</td><td class=num>{it.n}</td>"
                        f"<td class=num>{it.mean:.2f}</td><td class=num>{100 * it.full_share:.0f}%</td>"
                        f"<td class=num>{_fmt(it.discrimination)}</td><td>{fails}</td></tr>")
        limits = "".join(f"<li>{esc(kind)} limit: {len(who)} ({esc(', '.join(who))})</li>"
                         for kind, who in nb.limits.items()) or "<li>none</li>"
        mean = sum(nb.totals) / len(nb.totals)
        page = (f"<!DOCTYPE html><html><head><meta charset=utf-8><title>{esc(report.lesson)} / {esc(nb.notebook)}"
                f"</title>{style}</head><body><p><a href=index.html>&larr; {esc(report.lesson)}</a></p>"
                f"<h1>{esc(report.lesson)} / {esc(nb.notebook)}</h1>"
                f"<p>{len(nb.students)} students; mean score {mean:.2f} of {nb.max_total:g}.</p>"
                f"<img alt='score distribution' src='data:image/png;base64,{_histogram_png(nb, report.lesson)}'>"
                "<h2>Exercises</h2><table><tr><th>exercise</th><th>points</th><th>students</th><th>mean</th>"
                "<th>full marks</th><th>discrimination</th><th>most frequent failing checks (students)</th></tr>"
                + "".join(rows) + "</table><p>Discrimination: the correlation of the exercise's score with the score "
                "on the rest of the notebook (n/a when either is constant or fewer than 3 students count).</p>"
                f"<h2>Limits hit</h2><ul>{limits}</ul></body></html>")
        path = dest / f"{nb.notebook}.html"
        path.write_text(page, encoding="utf-8")
        written.append(path)
    links = "".join(f"<li><a href='{esc(nb.notebook)}.html'>{esc(nb.notebook)}</a>: {len(nb.students)} students</li>"
                    for nb in report.notebooks)
    missing = esc(", ".join(report.missing)) or "none"
    both = esc(", ".join(f"{s} ({nb} counts)" for s, nb in report.both.items())) or "none"
    index = (f"<!DOCTYPE html><html><head><meta charset=utf-8><title>{esc(report.lesson)}: report</title>{style}"
             f"</head><body><h1>{esc(report.lesson)}</h1><ul>{links}</ul>"
             f"<h2>Handed in nothing ({len(report.missing)})</h2><p>{missing}</p>"
             f"<h2>Handed in both notebooks ({len(report.both)})</h2><p>The notebook with the higher share of its "
             f"points counts: {both}</p><p>Per exercise: <a href=items.csv>items.csv</a></p></body></html>")
    (dest / "index.html").write_text(index, encoding="utf-8")
    written.insert(0, dest / "index.html")
    return written


def build_report(course: Course, lesson: str, dest: Path) -> tuple[LessonReport, list[Path]]:
    """Read `lesson` from the course's gradebook and write its report to `dest`."""
    from .autograde.results import read_results

    graded, roster = read_lesson(course, lesson)
    if not graded:
        raise CourseError(f"nobody has been graded on {lesson} yet: run `coursekit grade {lesson}` first")
    report = lesson_report(lesson, graded, roster, read_results(course, lesson))
    return report, write_report(report, dest)
