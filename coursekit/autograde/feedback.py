"""What students see of the grader in their feedback: their hints, never the hidden tests.

Two preprocessors for `nbgrader generate_feedback` (`GenerateFeedback.preprocessors` in
`nbgrader_config.py`, in this order):

- `RedactOutputs`: a failed test cell shows the exception's name and message (the hint the check
  wrote) and nothing else. IPython's traceback prints the source lines around the failing line,
  which for the last visible check of a cell include `### BEGIN HIDDEN TESTS` and the first hidden
  test, plus the paths of the grader's own files; the kernel's printouts in a test cell could carry
  anything, so they go too. Outputs of any other cell that quote a hidden test line verbatim (a
  student cell printing IPython's input history, `In` or `_ih`) are replaced by a note, and so are
  all outputs of cells that ran after the first hidden test: from then on the kernel has seen hidden
  code and may carry it, encoded, in anything it prints. (With verdicts decided by the grader, a test
  cell's outputs are the grader's own text.)
- `ClearHiddenTests`: nbgrader's, applied to instructor test cells only. A student's own cell that
  contains the marker text is just text: nbgrader's version raises on it ("Hidden test region
  detected in a non-grade cell"), which would stop the feedback of the whole class.

Test cells are recognised by their nbgrader metadata (`grade` and not `solution`); the autograded
notebook got that metadata, and the test cells their source, back from the gradebook
(`coursekit.autograde.restore`), so a student cannot make a cell pass for one or hide one.
"""

from __future__ import annotations

import html
import re

from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import ClearHiddenTests as NbgraderClearHiddenTests
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Integer

__all__ = ["ClearHiddenTests", "RedactOutputs", "is_test_cell", "hidden_test_lines"]

BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
REDACTED_NOTE = "[coursekit: this output was removed from the feedback: it showed hidden test code]"
AFTER_HIDDEN_NOTE = ("[coursekit: outputs of cells that ran after the hidden tests are not part of the feedback; "
                     "your own notebook has them]")


def is_test_cell(cell) -> bool:
    """An instructor's autograder test cell: graded, not an answer."""
    nbg = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(nbg.get("grade")) and not nbg.get("solution")


def hidden_test_lines(cells, min_chars: int = 16) -> set[str]:
    """Lines inside the hidden test blocks of the test cells (stripped; short ones such as `)` or
    `else:` are left out, they would match ordinary output), and the two markers."""
    lines = {BEGIN, END}
    for cell in cells:
        if not is_test_cell(cell):
            continue
        inside = False
        for line in cell.source.splitlines():
            if BEGIN in line:
                inside = True
            elif END in line:
                inside = False
            elif inside and len(line.strip()) >= min_chars:
                lines.add(line.strip())
    return lines


def _texts(value) -> list[str]:
    """Every string inside an output (stream text, rich data, traceback, evalue)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _texts(v)]
    return []


def _quotes(text: str, lines: set[str]) -> bool:
    plain = _ANSI.sub("", text)
    unescaped = html.unescape(plain)
    return any(line in plain or line in unescaped for line in lines)


class RedactOutputs(NbGraderPreprocessor):
    """Test cells keep only `ExceptionName: message` of their errors; no output of any cell may
    quote a hidden test line."""

    max_message_chars = Integer(
        2000, help="Characters of an error message kept in a test cell's feedback (the rest is cut)."
    ).tag(config=True)

    def preprocess(self, nb, resources):
        # read before ClearHiddenTests (next in the list) removes the hidden blocks from the sources
        self._hidden = hidden_test_lines(nb.cells)
        self._after_hidden = False
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if cell.get("cell_type") != "code":
            return cell, resources
        if is_test_cell(cell):
            cell.outputs = [self._short_error(o) for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            self._after_hidden = self._after_hidden or BEGIN in cell.source
        elif self._after_hidden:
            cell.outputs = [self._note(AFTER_HIDDEN_NOTE)] if cell.get("outputs") else []
        else:
            cell.outputs = [self._note() if any(_quotes(t, self._hidden) for t in _texts(o)) else o
                            for o in cell.get("outputs", [])]
        return cell, resources

    def _short_error(self, output) -> NotebookNode:
        ename = _ANSI.sub("", str(output.get("ename") or "Error"))
        evalue = _ANSI.sub("", str(output.get("evalue") or ""))
        if _quotes(evalue, self._hidden):  # a student's function called by a hidden test can raise anything
            evalue = REDACTED_NOTE
        if len(evalue) > self.max_message_chars:
            evalue = evalue[: self.max_message_chars] + " [...]"
        line = f"{ename}: {evalue}" if evalue else ename
        return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[line])

    @staticmethod
    def _note(text: str = REDACTED_NOTE) -> NotebookNode:
        return NotebookNode(output_type="stream", name="stdout", text=text + "\n")


class ClearHiddenTests(NbgraderClearHiddenTests):
    """nbgrader's ClearHiddenTests for the instructor's test cells; every other cell is left as the
    student wrote it (marker text included)."""

    def preprocess_cell(self, cell, resources, index):
        if not is_test_cell(cell):
            return cell, resources
        return super().preprocess_cell(cell, resources, index)
