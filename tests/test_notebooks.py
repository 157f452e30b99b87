"""Every instructor notebook runs top to bottom, quietly: no error, nothing on stderr.

nbgrader fails a test cell that writes to stderr, so a framework warning anywhere would cost
students points; the first output must be coursekit's one device line.
"""

from __future__ import annotations

import nbformat
import pytest
from conftest import ROOT
from nbclient import NotebookClient

NOTEBOOKS = sorted((ROOT / "solutions").glob("*/*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_solution_notebook_executes_cleanly(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    stderr = [(i, o["text"][:300]) for i, c in enumerate(nb.cells) if c.cell_type == "code"
              for o in c.outputs if o.get("name") == "stderr"]
    assert not stderr, f"cells wrote to stderr: {stderr}"
    first = next(o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("output_type") == "stream")
    assert first["text"].startswith("coursekit: "), first["text"]
    assert " on CPU" in first["text"] or " on CUDA" in first["text"] or " on GPU" in first["text"]
    images = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {}))
    assert images >= 1, "each lesson shows at least one figure"
