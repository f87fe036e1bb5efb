"""Every notebook in notebooks/ runs top to bottom without an error (executed with nbclient).

The kernel is this interpreter (`sys.executable`, the project's venv), registered as a
throw-away kernel spec, so the notebooks see the same installed `interp` as the tests.
A notebook that takes more than a minute declares it in its metadata,
``{"interp": {"slow": true}}``, and is then only run with ``-m slow``.
"""

import json
import sys
import time
import warnings
from pathlib import Path

import pytest

nbformat = pytest.importorskip(
    "nbformat", reason="nbformat is a dev extra: pip install -e '.[dev]'"
)
nbclient = pytest.importorskip(
    "nbclient", reason="nbclient is a dev extra: pip install -e '.[dev]'"
)
pytest.importorskip("ipykernel", reason="ipykernel is a dev extra: pip install -e '.[dev]'")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CELL_TIMEOUT_S = 600
SLOW_AFTER_S = 60


def _params():
    params = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("interp", {})
        marks = [pytest.mark.slow] if meta.get("slow") else []
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory):
    """A kernel spec that launches this interpreter (no global Jupyter config touched)."""
    root = tmp_path_factory.mktemp("kernels")
    spec = root / "interp-venv"
    spec.mkdir()
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "interp venv",
                "language": "python",
            }
        )
    )
    return root


def test_notebooks_exist():
    assert (NOTEBOOKS / "quickstart.ipynb").is_file()


@pytest.mark.parametrize("path", _params())
def test_notebook_runs(path, kernel_dir, tmp_path):
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    nb = nbformat.read(path, as_version=4)
    km = KernelManager(
        kernel_name="interp-venv",
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)]),
    )
    client = nbclient.NotebookClient(
        nb, km=km, timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(tmp_path)}}
    )
    start = time.perf_counter()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:  # names the cell and the traceback
        pytest.fail(f"{path.name} failed:\n{err}", pytrace=False)
    seconds = time.perf_counter() - start
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors, f"{path.name}: error outputs {errors}"
    figures = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if "application/vnd.plotly.v1+json" in out.get("data", {})
    ]
    assert figures, f"{path.name} shows no interactive plotly figure"
    if seconds > SLOW_AFTER_S and not nb.metadata.get("interp", {}).get("slow"):
        warnings.warn(
            f"{path.name} took {seconds:.0f} s; mark it slow in its metadata "
            f'({{"interp": {{"slow": true}}}})',
            stacklevel=1,
        )
