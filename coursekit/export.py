"""A grade export for nbgrader: one CSV row per student, notebook and graded exercise.

nbgrader's own `CsvExportPlugin` writes one total per assignment. A lesson here holds a PyTorch and
a Keras notebook and each student submits one of them, so the useful unit is the exercise of the
notebook the student handed in. This plugin reads the same gradebook through nbgrader's API:

    nbgrader export --exporter=coursekit.export.ExerciseCsvExport --to grades.csv

(`coursekit export` runs exactly that.)
"""

from __future__ import annotations

import csv

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import ExportPlugin

__all__ = ["COLUMNS", "ExerciseCsvExport"]

COLUMNS = ("assignment", "student_id", "notebook", "exercise", "score", "max_score",
           "notebook_score", "notebook_max_score", "timestamp")


class ExerciseCsvExport(ExportPlugin):
    """Scores per student and exercise, for the notebooks each student submitted."""

    def export(self, gradebook: Gradebook) -> None:
        dest = self.to or "grades.csv"
        only_students = {str(s) for s in self.student}
        only_assignments = {str(a) for a in self.assignment}
        rows = []
        for assignment in gradebook.assignments:
            if only_assignments and assignment.name not in only_assignments:
                continue
            graded = _graded(gradebook, assignment.name)
            recorded = {s for s, _ in graded}  # students the grader kept a record of
            for student in gradebook.students:
                if only_students and student.id not in only_students:
                    continue
                try:
                    sub = gradebook.find_submission(assignment.name, student.id)
                except MissingEntry:
                    continue  # nothing handed in: no row rather than a fake zero per exercise
                for nb in sorted(sub.notebooks, key=lambda n: n.name):
                    if student.id in recorded and (student.id, nb.name) not in graded:
                        continue  # a notebook not handed in: nbgrader's 0, not a grade
                    for grade in sorted(nb.grades, key=lambda g: g.name):
                        if not grade.max_score:
                            continue  # task cells and ungraded markers carry no points
                        rows.append({
                            "assignment": assignment.name, "student_id": student.id, "notebook": nb.name,
                            "exercise": grade.name, "score": _num(grade.score), "max_score": _num(grade.max_score),
                            "notebook_score": _num(nb.score), "notebook_max_score": _num(nb.max_score),
                            "timestamp": "" if sub.timestamp is None else sub.timestamp.isoformat(),
                        })
        self.log.info("Exporting %d exercise scores to %s", len(rows), dest)
        with open(dest, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)


def _graded(gradebook: Gradebook, assignment: str) -> set[tuple[str, str]]:
    """{(student, notebook)} the grader recorded as graded (coursekit.autograde.results; nbgrader
    gives a notebook the student did not hand in a score of 0). Empty for grades made before it kept
    that record: then every notebook of a submission is listed, as nbgrader has it."""
    import sqlalchemy as sa

    from .autograde.results import TABLE

    bind = gradebook.db.get_bind()
    if not sa.inspect(bind).has_table(TABLE):
        return set()
    rows = gradebook.db.execute(sa.text(f"SELECT student, notebook FROM {TABLE} WHERE assignment = :a AND kind = 'graded'"),
                                {"a": assignment})
    return {(student, notebook) for student, notebook in rows}


def _num(value) -> str:
    return "" if value is None else f"{float(value):g}"
