"""Build submissions from the committed notebooks: solved, untouched, or with one planted error."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

MARKER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")


def solution_sources(source_nb: Path) -> dict[str, str]:
    """{grade_id: answer code} from an instructor notebook, solution markers removed."""
    nb = nbformat.read(source_nb, as_version=4)
    out = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            out[meta["grade_id"]] = "\n".join(ln for ln in cell.source.splitlines() if not MARKER.match(ln))
    return out


def answer_ids(release_nb: Path) -> list[str]:
    nb = nbformat.read(release_nb, as_version=4)
    return [c.metadata["nbgrader"]["grade_id"] for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"]


def graded_cells(release_nb: Path) -> dict[str, float]:
    """{grade_id: points} of the autograded test cells."""
    nb = nbformat.read(release_nb, as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: float(c.metadata["nbgrader"]["points"]) for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"}


def make_submission(release_nb: Path, answers: dict[str, str], dest: Path) -> None:
    """Fill the student notebook's answer cells with `answers` (grade_id -> code) and save it."""
    nb = nbformat.read(release_nb, as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers and cell.metadata["nbgrader"].get("solution"):
            cell.source = answers[gid]
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)


def grade_cell_for(answer_id: str) -> str:
    """The test cell that grades an answer cell: 'ex2-answer' -> 'ex2-tests'."""
    return answer_id.replace("-answer", "-tests")
