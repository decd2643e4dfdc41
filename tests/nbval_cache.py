"""A pytest plugin: keep nbval's run of each notebook as the site build's execution.

``make test`` checks every notebook with nbval and then builds the site, which shows each
notebook executed. Executing everything twice cost about seven minutes of a CI run. With
``-p tests.nbval_cache --nbval-cache DIR``, each notebook whose cells all pass under nbval is
stored, outputs included, in the jupyter-cache at ``DIR``; the site build
(``execute_notebooks: cache`` in ``_config.yml``) finds it there by the hash of its code cells
and executes only what it does not find.

The plugin has nbval run each cell as a notebook does: in the kernel's history (nbval alone
leaves it out, so a trailing ``;`` would not silence a result), in a kernel that forwards what
child processes write to its stdout and stderr. The outputs are built from nbval's
own kernel messages by nbclient's message handling, the code
that executes notebooks for the site build (myst-nb through jupyter-cache): streams, rich
displays, ``clear_output``, display updates, and the Output widgets whose captured displays
belong to the widget and not to the cell. So the stored notebook is the one the site build would
have made from the same run. A notebook with a failing cell is never stored.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import nbval.kernel
import pytest
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionComplete
from nbval.plugin import IPyNbCell


def pytest_addoption(parser):
    parser.addoption("--nbval-cache", metavar="DIR", default=None,
                     help="store each notebook that passes nbval, with its outputs, in the jupyter-cache at DIR")


def pytest_configure(config):
    if not config.getoption("nbval_cache"):
        return
    # ipykernel forwards what child processes and C code write to its file descriptors (a spawned
    # worker's traceback, say) unless it sees PYTEST_CURRENT_TEST in its environment; a notebook's
    # kernel, and the site build's, forward it, so nbval's kernel starts without that variable
    start_new_kernel = nbval.kernel.start_new_kernel

    def start_as_a_notebook_kernel(*args, **kwargs):
        env = {key: value for key, value in os.environ.items() if key != "PYTEST_CURRENT_TEST"}
        return start_new_kernel(*args, env=env, **kwargs)

    nbval.kernel.start_new_kernel = start_as_a_notebook_kernel


class NotebookRecord:
    """The outputs of one notebook, recorded from the messages of nbval's kernel as they arrive."""

    def __init__(self, notebook_item):
        self.path = Path(str(notebook_item.fspath))
        self.nb = nbformat.read(self.path, as_version=4)  # the source as the site build reads it
        self.code_cells = [cell for cell in self.nb.cells if cell.cell_type == "code"]
        for cell in self.code_cells:
            cell.outputs, cell.execution_count = [], None
        # record_timing=False as jupyter-cache executes: no timing metadata, so the hash matches
        self.client = NotebookClient(self.nb, record_timing=False)
        self.client.kc = notebook_item.kernel.kc  # an Output widget sends its state back through it
        self.cell_index, self.msg_id, self.passed = None, None, set()
        self.start = time.perf_counter()

        kernel, read = notebook_item.kernel, notebook_item.get_kernel_message

        def execute_and_note(cell_input, allow_stdin=None):
            # in the history, as nbclient and Jupyter run a cell (nbval's own call leaves it out):
            # only then does a trailing `;` silence the cell's result, and `_` hold the last one
            self.msg_id = kernel.kc.execute(cell_input, store_history=True, allow_stdin=allow_stdin,
                                            stop_on_error=False)
            return self.msg_id

        def read_and_record(*args, **kwargs):
            msg = read(*args, **kwargs)
            self.record(msg)
            return msg

        kernel.execute_cell_input, notebook_item.get_kernel_message = execute_and_note, read_and_record

    def start_cell(self, index: int) -> None:
        """Record the messages of code cell ``index`` from now on (as nbclient starts a cell)."""
        self.cell_index, self.msg_id = index, None
        self.code_cells[index].outputs = []
        self.client.clear_before_next_output = False

    def record(self, msg: dict) -> None:
        """Add one iopub message of the running cell to that cell, as nbclient would."""
        if self.cell_index is None or msg["parent_header"].get("msg_id") != self.msg_id:
            return
        try:
            self.client.process_message(msg, self.code_cells[self.cell_index], self.cell_index)
        except CellExecutionComplete:  # the kernel went idle: nbval ends the cell on the same message
            pass

    def store(self, cache_dir: str) -> None:
        """Put the executed notebook in the jupyter-cache, if every code cell passed."""
        if len(self.passed) != len(self.code_cells):
            return
        self.client.set_widgets_metadata()
        get_cache(cache_dir).cache_notebook_bundle(
            CacheBundleIn(self.nb, str(self.path), data={"execution_seconds": time.perf_counter() - self.start}),
            check_validity=False, overwrite=True)


def _record_of(item) -> NotebookRecord:
    notebook_item = item.parent
    if not hasattr(notebook_item, "_output_record"):
        notebook_item._output_record = NotebookRecord(notebook_item)
    return notebook_item._output_record


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    if not (isinstance(item, IPyNbCell) and item.config.getoption("nbval_cache")):
        yield
        return
    record = _record_of(item)
    record.start_cell(item.cell_num)
    outcome = yield
    if outcome.excinfo is None:
        record.passed.add(item.cell_num)
    record.cell_index = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    # the last cell of a notebook: store it before nbval's teardown stops the kernel
    if isinstance(item, IPyNbCell) and item.config.getoption("nbval_cache") and (
            nextitem is None or nextitem.parent is not item.parent):
        _record_of(item).store(item.config.getoption("nbval_cache"))
    yield
