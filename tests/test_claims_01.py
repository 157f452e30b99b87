"""Lesson 01's claims, measured: exercise 3's seven lines of fusion code and what each really does
(runs as meant, raises, or silently returns another shape), in both frameworks. The notebook's own
cells are executed up to the cell that runs the seven lines, so the lines tested are the lesson's.
Nothing trains here: the outcomes hold at every run size."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = {  # what the text after the exercise says
    "pytorch": {"pool then concat": "ok", "concat unaligned": "error", "conv, wrong layout": "error",
                "pool, wrong layout": "silent", "1x1 from 64 channels": "error",
                "concat on a spatial axis": "silent", "upsample, wrong layout": "silent"},
    "keras": {"pool then concat": "ok", "concat unaligned": "error", "conv, wrong layout": "silent",
              "pool, wrong layout": "silent", "1x1 from 64 channels": "error",
              "concat on a spatial axis": "silent", "upsample, wrong layout": "silent"},
}


def run_until(framework: str, cell_id: str) -> dict:
    """Execute the solution notebook's code cells, in order, up to and including `cell_id`."""
    import matplotlib

    # this process only: MPLBACKEND in os.environ reached every kernel this xdist worker started
    # later, and the browser test's JupyterLab then drew no figures (CI, when it ran after this)
    matplotlib.use("Agg")
    nb = nbformat.read(ROOT / "solutions" / "01-shape-alignment" / f"{framework}.ipynb", as_version=4)
    ns: dict = {"__name__": "__lesson__"}
    with contextlib.redirect_stdout(io.StringIO()):
        for cell in nb.cells:
            if cell.cell_type == "code":
                exec(compile(cell.source, f"<{framework} {cell.id}>", "exec"), ns)  # noqa: S102 - the lesson's own code
            if cell.id == cell_id:
                return ns
    raise AssertionError(f"no cell {cell_id} in the {framework} notebook")


@pytest.mark.parametrize("framework", ["pytorch", "keras"])
def test_each_line_does_what_the_lesson_says_and_the_solution_predicts(framework):
    from coursekit.shapes import snippet_outcome

    ns = run_until(framework, "ex3-reveal-code")
    measured = {key: snippet_outcome(run, meant)[0] for key, (run, meant) in ns["snippets"].items()}
    assert measured == EXPECTED[framework]
    assert ns["layout_predictions"] == EXPECTED[framework]
    silent = sorted(k for k, v in measured.items() if v == "silent")
    # the prose: PyTorch's conv raises and three lines are silent; in Keras the conv is silent too (four)
    assert len(silent) == (3 if framework == "pytorch" else 4), silent
