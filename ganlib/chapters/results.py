"""The chapters' results files: where they live, what they record about their run, how they are read.

A chapter's long runs are commands, ``python -m ganlib.chapters.<chapter> <command>``, that write
one JSON file under :data:`RESULTS_DIR` (``book/results/``); the chapter reads it back with
:func:`load_results`. Every such file starts with the record :func:`provenance` builds: the command
that wrote it, the date, the machine and the wall time. :func:`command_parser`,
:func:`add_command`, :func:`run_command` and :func:`save_results` are the command line the
chapters' commands share: the boundary of :mod:`ganlib.command` (one-line errors, exit status 2
for a wrong command line, ``--debug`` on every subcommand), option values checked by argparse
types, and the results file checked (:func:`~ganlib.command.check_output_file`) before any work.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from ..command import COUNT, POSITIVE_INT, RATE, check_output_file, command_parser, run_command  # re-exported
from ..env import RESULTS_DIR, describe_environment  # RESULTS_DIR: the chapters import it from here
from ..env import versions as env_versions



def versions() -> dict:
    """:func:`ganlib.env.versions`, with ``device``: the CPU and torch's thread count."""
    return {"device": f"cpu ({platform.processor() or platform.machine()}), torch threads {torch.get_num_threads()}",
            **env_versions()}


def cpu_machine(threads: bool = True) -> dict:
    """The default machine part of :func:`provenance`: ``{"environment": one line of
    :func:`ganlib.describe_environment` on the CPU, "threads": torch's thread count}`` (without
    ``threads`` when it is False)."""
    machine = {"environment": describe_environment("cpu")}
    if threads:
        machine["threads"] = torch.get_num_threads()
    return machine


def provenance(command: str, start: float | None = None, *, machine: dict | None = None,
               date_format: str | None = None) -> dict:
    """What a results file records about the run that made it: ``{"command", "date", **machine,
    "wall_time_s"}``, in that order.

    Args:
        command: the command line that writes the file.
        start: a ``time.perf_counter()`` reading taken when the run began; ``wall_time_s`` is the
            seconds since, to 0.1 s. ``None`` leaves ``wall_time_s`` out.
        machine: the keys that describe what ran it (default :func:`cpu_machine`: ``environment``
            and ``threads``); e.g. ``{"environment": versions()}``.
        date_format: a ``strftime`` format for the UTC date; default ISO 8601 to the second
            (``2025-01-31T12:00:00+00:00``).
    """
    now = datetime.now(timezone.utc)
    record = {"command": command,
              "date": now.isoformat(timespec="seconds") if date_format is None else now.strftime(date_format)}
    record.update(cpu_machine() if machine is None else machine)
    if start is not None:
        record["wall_time_s"] = round(time.perf_counter() - start, 1)
    return record


def load_results(path: str | Path, command: str, note: str = "") -> dict:
    """A committed results file, or a ``FileNotFoundError`` that names the ``command`` that writes
    it (and ``note``, e.g. how long that takes, in parentheses)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no results at {path}; make them with `{command}`" + (f" ({note})" if note else ""))
    return json.loads(path.read_text())


def save_results(result: dict, path: str | Path, compact: bool = False) -> Path:
    """Write ``result`` as JSON to ``path`` (its folder made if needed): indented one space, or
    without any white space when ``compact`` (for long per-step lists). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, separators=(",", ":")) if compact else json.dumps(result, indent=1)
    path.write_text(text + "\n")
    return path


def add_command(subparsers, name: str, help: str, out: str | Path | None, types: dict | None = None,
                **options) -> argparse.ArgumentParser:
    """A results subcommand: one ``--option`` per keyword (``n_train=256`` adds ``--n-train``), then
    ``--out`` (a :class:`~pathlib.Path`, default ``out``). Returns its parser, to add more.

    An option takes values of its default's kind, checked when the command line is parsed: an int
    whose default is 0 (a seed) integers >= 0, any other int integers >= 1, a float numbers > 0;
    ``types`` gives an option another argparse type (e.g. a :func:`~ganlib.command.number_type` range).
    """
    parser = subparsers.add_parser(name, help=help)
    for key, default in options.items():
        kind = type(default)
        checked = {int: COUNT if default == 0 else POSITIVE_INT, float: RATE}.get(kind, kind)
        parser.add_argument("--" + key.replace("_", "-"), type=(types or {}).get(key, checked), default=default)
    parser.add_argument("--out", type=Path, default=None if out is None else Path(out))
    return parser


def run_one_thread_command(parser: argparse.ArgumentParser, work, argv=None):
    """:func:`~ganlib.command.run_command` for a results command that runs on one torch thread
    (the fastest for the book's small models): ``--out`` is probed, then ``work(args)`` runs."""
    def checked(args):
        check_output_file(args.out, "--out")
        torch.set_num_threads(1)
        return work(args)

    return run_command(parser, checked, argv)
