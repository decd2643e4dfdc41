"""The boundary every ``python -m ganlib...`` command shares.

* Options and output paths are checked before any work: option values by argparse types
  (:func:`number_type` ranges such as :data:`POSITIVE_INT`, :data:`COUNT`, :data:`RATE`;
  :class:`CommaList`), output paths by :func:`check_output_folder` and :func:`check_output_file`,
  which make the folder and really write into it, so that a read-only folder, a full disk or a
  file-size limit shows before a run, not after it.
* Errors are one line on stderr, without a traceback: exit status 2 for a wrong command line
  (:class:`UsageError`, argparse's errors through :class:`OneLineParser`), 1 for anything else.
  ``--debug`` or ``GANLIB_DEBUG=1`` shows the traceback.
* A run folder is locked while a run writes into it (:func:`folder_lock`): a second run into the
  same folder is refused, naming the holder; a lock whose process is gone is taken over.
* Ctrl-C (SIGINT) and ``kill`` (SIGTERM) end the command with one line (exit 130 or 143); a command
  that keeps checkpoints raises :class:`Interrupted` with a message naming the one it keeps.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import socket
import time
import signal
import sys
import tempfile
import threading
from pathlib import Path

#: bytes written by the output checks: more than a file-size limit of a few blocks lets through
PROBE_BYTES = 1 << 20


class UsageError(ValueError):
    """The command line asks for something that cannot be done; exit status 2."""


class Interrupted(Exception):
    """A command stopped by SIGINT or SIGTERM; the message says what was kept."""

    def __init__(self, message: str, status: int = 130):
        super().__init__(message)
        self.status = status


class OneLineParser(argparse.ArgumentParser):
    """argparse, with each error printed as one line (no usage block) and exit status 2."""

    def error(self, message):
        """Print ``message`` as one line naming ``--help``, and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def number_type(kind, lowest, inclusive: bool, what: str, highest=None):
    """An argparse type: a finite ``kind`` number above ``lowest`` (or at it, if ``inclusive``), and
    at most ``highest`` if given; ``what`` says what is expected in the error message."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if (not math.isfinite(value) or value < lowest or (value == lowest and not inclusive)
                or (highest is not None and value > highest)):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


POSITIVE_INT = number_type(int, 1, True, "an integer >= 1")
COUNT = number_type(int, 0, True, "an integer >= 0")
RATE = number_type(float, 0.0, False, "a number > 0")
WEIGHT = number_type(float, 0.0, True, "a number >= 0")


class CommaList:
    """An argparse type: a comma-separated list, e.g. ``a,b``, of at least one item, each once; an
    item is a name out of ``choices`` (if given) or what ``item`` (an argparse type) makes of it."""

    def __init__(self, choices=None, item=str):
        self.choices, self.item = (None if choices is None else list(choices)), item
        self.__name__ = "a comma-separated list"

    def __call__(self, text: str) -> list:
        names = [name.strip() for name in text.split(",")]
        if not all(names):
            raise argparse.ArgumentTypeError(f"expected a comma-separated list without empty items, got {text!r}")
        unknown = [name for name in names if self.choices is not None and name not in self.choices]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(map(repr, unknown))} in {text!r}; choose from "
                                             f"{','.join(self.choices)}")
        values = [self.item(name) for name in names]
        if len(set(values)) < len(values):
            raise argparse.ArgumentTypeError(f"expected each item once, got {text!r}")
        return values


def _probe(folder: Path, option: str) -> None:
    for above in (folder, *folder.parents):  # the first part of the path that exists must be a folder
        if above.exists():
            if not above.is_dir():
                raise UsageError(f"{option}: {above} is a file, not a folder, so nothing can be written under it; "
                                 "choose another path")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder) as f:  # a real write, not only a permission bit
            f.write(b"\0" * PROBE_BYTES)
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        raise UsageError(f"{option} {folder} is not writable ({err.strerror or err}); choose another folder, "
                         "or free space there") from None


def check_output_folder(folder: str | Path, option: str = "--out") -> Path:
    """Fail now, not at the first save, if ``folder`` cannot take a run's files (made if missing)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{option} {folder} is a file; give a folder for the run's files")
    _probe(folder, option)
    return folder


def check_output_file(path: str | Path, option: str = "--out", suffixes: tuple[str, ...] = ()) -> Path:
    """Fail now, not after the work, if the file ``path`` cannot be written (its folder is made)."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file name, e.g. {path / ('results' + (suffixes or ('.json',))[0])}")
    if suffixes and path.suffix.lower() not in suffixes:
        raise UsageError(f"{option} {path}: the file type {path.suffix or '(none)'!r} is not one of {', '.join(suffixes)}")
    _probe(path.parent, option)
    return path


def _raise_interrupted(signum, frame):
    raise Interrupted("stopped by SIGTERM", status=143)


def run(prog: str, command, args, debug: bool = False):
    """``command(args)`` at the boundary: one-line errors, exit 2 for usage errors and 1 for the
    rest, 130/143 when interrupted; ``debug`` (or ``GANLIB_DEBUG=1``) re-raises with the traceback."""
    # signal handlers can only be set from the main thread (not, say, in a notebook's worker thread)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_interrupted) if main_thread else None
    try:
        return command(args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Interrupted as stop:
        print(f"{prog}: interrupted: {' '.join(str(stop).split())}", file=sys.stderr)
        raise SystemExit(stop.status) from None
    except Exception as err:  # noqa: BLE001 - the commands' one error boundary
        if debug or os.environ.get("GANLIB_DEBUG"):
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2 if isinstance(err, UsageError) else 1) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)



LOCK_NAME = ".ganlib.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, and belongs to another user
        return True
    return True


@contextlib.contextmanager
def folder_lock(folder: str | Path, option: str = "--out"):
    """Hold ``folder/.ganlib.lock`` for the block: one run writes into a run folder at a time.

    The lock file (made atomically, ``O_EXCL``) names its holder: process, host, start time and
    command line. A second holder is refused with :class:`UsageError` naming the first; a lock left
    by a killed run on this host (its process gone) is taken over. The lock is removed at the end.
    """
    folder = Path(folder)
    lock = folder / LOCK_NAME
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
          "command": " ".join(sys.argv)}
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            try:
                holder = json.loads(lock.read_text())
            except (OSError, ValueError):
                holder = {}
            stale = holder.get("host") == me["host"] and isinstance(holder.get("pid"), int) and not _alive(holder["pid"])
            if not stale:
                who = (f"process {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}: "
                       f"{holder.get('command')}") if holder else "a run whose lock file cannot be read"
                raise UsageError(f"{option} {folder} is in use by another run ({who}). Wait for it to end, or "
                                 f"choose another folder; if that run is gone, delete {lock}") from None
            with contextlib.suppress(FileNotFoundError):  # a killed run's lock: take it over
                lock.replace(lock.with_name(f"{LOCK_NAME}.stale.{os.getpid()}"))
                lock.with_name(f"{LOCK_NAME}.stale.{os.getpid()}").unlink()
    else:
        raise UsageError(f"{option} {folder}: could not take the run lock {lock}; delete it if no run uses the folder")
    with os.fdopen(fd, "w") as f:
        json.dump(me, f)
    try:
        yield lock
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()


class _Subcommand(OneLineParser):
    """A subcommand: one-line argparse errors, and ``--debug`` (show the traceback)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true", help="show the traceback of an error")


def command_parser(prog: str, description: str | None = None):
    """A command line with subcommands: returns ``(parser, subparsers)``; the subcommand's name
    is ``args.command``, and every subcommand has ``--debug``. ``description`` (e.g. the module's
    docstring) is shown as written. Errors are one line, exit status 2."""
    parser = OneLineParser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser, parser.add_subparsers(dest="command", required=True, parser_class=_Subcommand)


def run_command(parser: argparse.ArgumentParser, work, argv=None):
    """Parse ``argv`` with a :func:`command_parser` and run ``work(args)`` at the boundary of
    :func:`run`: any error is one line ``PROG COMMAND: error: ...`` (exit 2 for a
    :class:`UsageError`, 1 otherwise), ``--debug`` shows the traceback. ``work``
    checks what argparse cannot (``--out`` with :func:`check_output_file`, say) before its work."""
    args = parser.parse_args(argv)
    return run(f"{parser.prog} {args.command}", work, args, args.debug)
