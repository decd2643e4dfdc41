"""nbval's run of a notebook, kept for the site build (tests/nbval_cache.py), equals an nbclient run."""
import copy
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_cache import get_cache
from jupyter_cache.executors.utils import single_nb_execution

ROOT = Path(__file__).resolve().parents[1]

CELLS = [
    "import sys\nprint('one'); print('two')\nprint('to stderr', file=sys.stderr)",
    "from IPython.display import display, HTML, clear_output\ndisplay(HTML('<b>gone</b>'))\n"
    "clear_output(wait=True)\ndisplay(HTML('<b>kept</b>'))",
    "handle = display(HTML('<i>first</i>'), display_id=True)\nhandle.update(HTML('<i>updated</i>'))",
    "import ipywidgets\nout = ipywidgets.Output()\nwith out:\n    print('inside the widget')\n"
    "    display(HTML('<p>captured</p>'))\nout",
    "6 * 7",
    "import random\nrandom.seed(0);",  # a trailing `;` silences the result
    "import subprocess, sys\nsubprocess.run([sys.executable, '-c', 'print(\"from a child process\")'])\nNone",
]


def notebook(cells, path: Path) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def run_nbval(path: Path, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.nbval_cache", "--nbval-cache", str(cache), "--nbval-lax",
         "--nbval-current-env", "-p", "no:cacheprovider", "-q", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)


def shown(outputs) -> list:
    """What a page shows of a cell's outputs; widget model ids are random, so only their presence."""
    return [(o.output_type, o.get("name"), o.get("text"),
             {k: ("<widget>" if "widget" in k else v) for k, v in o.get("data", {}).items()}) for o in outputs]


@pytest.mark.slow
def test_stored_notebook_shows_what_an_nbclient_run_shows(tmp_path, monkeypatch):
    path = notebook(CELLS, tmp_path / "probe.ipynb")
    result = run_nbval(path, tmp_path / "cache")
    assert result.returncode == 0, result.stdout + result.stderr

    source = nbformat.read(path, as_version=4)
    _, stored = get_cache(tmp_path / "cache").merge_match_into_notebook(source)  # KeyError if not stored
    fresh = copy.deepcopy(source)
    # the reference kernel as the site build starts it: outside pytest (see tests/nbval_cache.py)
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    assert single_nb_execution(fresh, cwd=str(tmp_path), timeout=120, allow_errors=False).err is None

    for cell_stored, cell_fresh in zip(stored.cells, fresh.cells):
        assert shown(cell_stored.outputs) == shown(cell_fresh.outputs)
    # the cases this checks, seen in the stored notebook: cleared output gone, display updated,
    # the Output widget's captures kept in the widget state, not in the cell
    assert "gone" not in str(stored.cells[1].outputs) and "kept" in str(stored.cells[1].outputs)
    assert "updated" in str(stored.cells[2].outputs)
    assert stored.cells[5].outputs == []
    assert "from a child process" in str(stored.cells[6].outputs)
    assert "captured" not in str(stored.cells[3].outputs) and "captured" in str(stored.metadata["widgets"])


@pytest.mark.slow
def test_notebook_with_a_failing_cell_is_not_stored(tmp_path):
    path = notebook(["x = 1", "raise RuntimeError('broken')", "y = 2"], tmp_path / "broken.ipynb")
    result = run_nbval(path, tmp_path / "cache")
    assert result.returncode != 0
    with pytest.raises(KeyError):
        get_cache(tmp_path / "cache").match_cache_notebook(nbformat.read(path, as_version=4))
