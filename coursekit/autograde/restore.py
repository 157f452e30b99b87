"""Put back what a student deleted from a graded notebook before nbgrader grades it.

nbgrader restores the source of locked cells (tests, read-only cells) that a student edited, and,
with `OverwriteCells.add_missing_cells`, re-adds deleted test cells. It places a re-added test
cell after the cell that preceded it in the instructor's copy, assuming that cell is still there:
when a student deleted an exercise's answer cell *and* its test cell, nbgrader 0.9.6 fails with a
KeyError and the whole notebook is left ungraded. `RestoreCells` first puts back every missing
nbgrader cell (answer cells as the released stub, test cells as nbgrader does) in the
instructor's order, so a deleted test always runs, and scores what the answer deserves.
"""

from __future__ import annotations

from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor, OverwriteCells
from traitlets import Bool

__all__ = ["CleanMetadata", "RestoreCells"]

_FLAGS = ("grade", "solution", "locked", "task")


class CleanMetadata(NbGraderPreprocessor):
    """Drop nbgrader metadata that a student broke, so nbgrader treats the cell as an ordinary one
    (and RestoreCells puts the instructor's cell back). nbgrader's own preprocessors index
    `grade_id` and `points` directly: a test cell whose `grade_id` was deleted stops the whole
    notebook with a KeyError."""

    def preprocess_cell(self, cell, resources, index):
        md = cell.get("metadata", {})
        if "nbgrader" not in md:
            return cell, resources
        nbg = md["nbgrader"]
        ok = isinstance(nbg, dict) and all(isinstance(nbg.get(k, False), bool) for k in _FLAGS)
        if ok and any(nbg.get(k) for k in _FLAGS):
            ok = isinstance(nbg.get("grade_id"), str) and bool(nbg["grade_id"])
        if ok and nbg.get("grade"):
            points = nbg.get("points")
            ok = isinstance(points, (int, float)) and not isinstance(points, bool)
        if not ok:
            self.log.warning("Cell %d has broken nbgrader metadata; treated as an ordinary cell", index)
            del md["nbgrader"]
        return cell, resources


class RestoreCells(OverwriteCells):
    """nbgrader's OverwriteCells, re-adding deleted answer and test cells in the instructor's order."""

    add_missing_cells = Bool(True, help="Re-add deleted answer and test cells (always on here).").tag(config=True)

    def preprocess(self, nb, resources):
        self._roles = None
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        """Before nbgrader's checks: a cell keeps the role (test, answer) the instructor gave its
        id, whatever its metadata now says; an id the gradebook does not know is dropped."""
        nbg = cell.metadata.get("nbgrader")
        if nbg and nbg.get("grade_id"):
            if self._roles is None:
                source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
                self._roles = {
                    "grade": {c.name for c in source_nb.grade_cells},
                    "solution": {c.name for c in source_nb.solution_cells},
                    "known": {c.name for c in source_nb.source_cells},
                }
            gid = nbg["grade_id"]
            if gid not in self._roles["known"]:
                self.log.warning("Cell %s is not in the gradebook; treated as an ordinary cell", gid)
                del cell.metadata["nbgrader"]
                return cell, resources
            for role in ("grade", "solution"):
                if bool(nbg.get(role)) != (gid in self._roles[role]):
                    self.report_change(gid, role, gid in self._roles[role], nbg.get(role))
                    nbg[role] = gid in self._roles[role]
            if not nbg["grade"]:
                nbg.pop("points", None)
        return super().preprocess_cell(cell, resources, cell_index)

    def add_missing_grade_cells(self, nb, resources):
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        grade_cells = {cell.name: cell for cell in source_nb.grade_cells}
        solution_ids = {cell.name for cell in source_nb.solution_cells}
        present = {
            cell.metadata.nbgrader["grade_id"]: cell
            for cell in nb.cells
            if (utils.is_grade(cell) or utils.is_solution(cell) or utils.is_locked(cell))
            and "grade_id" in cell.metadata.get("nbgrader", {})
        }
        position = -1  # index in nb.cells after which the next missing cell goes
        for source_cell in source_nb.source_cells:
            name = source_cell.name
            if name in present:
                position = _index_of(nb.cells, present[name])
                continue
            if name in grade_cells:
                cell = self.missing_cell_transform(source_cell, grade_cells[name].max_score,
                                                   is_solution=name in solution_ids)
            elif name in solution_ids:
                cell = _answer_cell(source_cell, self.missing_cell_notification.format(cell_id=name))
            else:
                continue  # read-only cells without points: nothing to grade
            self.log.warning("Cell %s was missing from the submission; added back", name)
            nb.cells.insert(position + 1, cell)
            present[name] = cell
            position += 1
        return nb, resources


    def add_missing_task_cells(self, nb, resources):
        # nbgrader's version reads `grade_id` of every cell with nbgrader metadata, but
        # DeduplicateIds leaves an empty dict on a duplicated cell: a KeyError for the notebook
        for cell in nb.cells:
            if "nbgrader" in cell.metadata and not cell.metadata["nbgrader"].get("grade_id"):
                del cell.metadata["nbgrader"]
        return super().add_missing_task_cells(nb, resources)


def _index_of(cells, cell) -> int:
    for i, c in enumerate(cells):
        if c is cell:
            return i
    raise ValueError("cell not in notebook")


def _answer_cell(source_cell, note: str) -> NotebookNode:
    """A deleted answer cell, back as the released stub (with nbgrader's note as a comment)."""
    comment = "".join("# " + line + "\n" for line in note.strip().splitlines())
    return NotebookNode({
        "cell_type": "code",
        "execution_count": None,
        "outputs": [],
        "metadata": {"nbgrader": {
            "grade": False, "grade_id": source_cell.name, "locked": False, "solution": True,
            "checksum": source_cell.checksum, "schema_version": 3,
        }},
        "source": comment + source_cell.source,
    })
