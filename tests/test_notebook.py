"""The walkthrough notebook runs headless on the quick demo of the tiny KB and shows results."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "walkthrough.ipynb"


pytestmark = pytest.mark.usefixtures("one_thread")


def outputs_text(nb) -> str:
    """Every stream and every text, HTML or Markdown output of the executed notebook."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out["output_type"] == "stream":
                parts.append(out["text"])
            for mime in ("text/plain", "text/html", "text/markdown"):
                parts.append(out.get("data", {}).get(mime, ""))
    return "\n".join(parts)


def test_committed_notebook_is_clean():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_walkthrough_runs_on_the_tiny_demo(quick_demo, tiny_kb, tiny_checker, monkeypatch):
    out, _, _ = quick_demo
    # The kernel inherits this process's environment.
    monkeypatch.setenv("GROUNDED_KB", str(tiny_kb.path))
    monkeypatch.setenv("GROUNDED_REPORT", str(out / "report"))
    monkeypatch.setenv("GROUNDED_CHECKER", str(tiny_checker[2]))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()  # raises CellExecutionError naming the cell if one fails

    errors = [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors
    text = outputs_text(nb)
    assert "hallucination" in text
    for variant in ("base", "rag", "sft", "grounded"):
        assert variant in text
    assert str(tiny_checker[2]) in text  # the audit used the checker
    assert "verdict" in text and "decided by" in text  # the verifier's verdicts
    assert "# Audit report" in text and "supported" in text and "refuted" in text
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2
