"""The example notebooks (one per course text, ``examples/notebooks/``) run: their code cells in order in one
namespace here, and headless through a Jupyter kernel with nbclient when it is installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "examples" / "notebooks").glob("*.ipynb"))


def test_one_notebook_per_course_text():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_cells_run_in_order(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    namespace: dict = {"__name__": "__notebook__"}
    for i, cell in enumerate(c for c in cells if c["cell_type"] == "code"):
        exec(compile("".join(cell["source"]), f"{path.name}[{i}]", "exec"), namespace)  # noqa: S102


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_headless(path, tmp_path):
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed: the notebooks cannot run headless")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed: the notebooks cannot run headless")
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": tmp_path}}).execute()
    assert all(o.get("output_type") != "error" for c in notebook.cells for o in c.get("outputs", []))
