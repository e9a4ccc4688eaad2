"""From parsed command-line values to an API call and an exit status: the one error boundary.

Both front-ends hand :func:`run` the values their parser produced; it merges the group-level
``-d/-x`` with the command's own, calls the API function by keyword, and turns a
:class:`~flask_migrate.errors.MigrateError` into ``Error: <sentence>`` on stderr and its exit
status.  Unset values are left out of the call, so the API's own defaults apply.

What a function returns is presented here too, and only here: ``None``, or a :class:`Result`
(the report of ``status``, ``--plan``, ``lint``, ``test`` and ``doctor``, the revisions
``migrate`` wrote, what ``convert-multidb`` did), which the API returns without printing it.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Protocol, TextIO, runtime_checkable

from .errors import MigrateError, RevisionScriptError, mask_passwords, unexpected
from .spec import CommandSpec, Kind

#: Set to 1 to let errors propagate with their full traceback (for debugging).
TRACEBACK_ENV = "FLASK_MIGRATE_TRACEBACK"
#: The closing line of every command's ``--help`` (and of the group's), on both front-ends.
TRACEBACK_HINT = f"Set {TRACEBACK_ENV}=1 to see the full traceback of an error."
#: The migrations folder to use when no -d is given (as in Flask-Migrate 4.1).
DIRECTORY_ENV = "FLASK_DB_DIRECTORY"

#: Set to 1 to see all of Alembic's INFO messages on the command line (the context it runs
#: in, "Will assume transactional DDL", each step it starts, ...).
VERBOSE_ENV = "FLASK_MIGRATE_VERBOSE"

_LOGGERS = ("alembic", "flask_migrate")
#: Alembic's loggers whose INFO messages are what the user asked for: what autogenerate
#: detected, and what an env.py of an older Flask-Migrate says itself ("No changes in schema
#: detected.").  The rest of Alembic's INFO is shown with $FLASK_MIGRATE_VERBOSE only.
_ALEMBIC_ASKED_FOR = ("alembic.autogenerate", "alembic.env")


@runtime_checkable
class Result(Protocol):
    """What an API function returns for the command line to show.

    The API returns it without printing anything; :func:`run` writes :meth:`render` to
    standard output, then :attr:`error` (if any) as the ``Error:`` line, and exits with
    :attr:`exit_code`.
    """

    @property
    def exit_code(self) -> int:
        """The command's exit status for this outcome (0: success)."""

    @property
    def error(self) -> str | None:
        """The one sentence the command line ends with as ``Error: ...``, or None."""

    def render(self, out: TextIO) -> None:
        """Write the report as the command line shows it."""


if TYPE_CHECKING:  # for mypy to check that each report the API returns is a Result
    from .commands import NewRevisions
    from .diagnosis import Diagnosis
    from .linter import LintReport
    from .plan import Plan, StatusReport
    from .repair import Conversion
    from .testing import TestReport

    _REPORTS: tuple[type[Result], ...] = (
        Conversion, Diagnosis, LintReport, NewRevisions, Plan, StatusReport, TestReport,
    )


def _given(value: Any) -> bool:
    return value is not None and value is not False and value != () and value != []


def arguments(
    spec: CommandSpec, values: Mapping[str, Any], group_values: Mapping[str, Any]
) -> dict[str, Any]:
    """The keyword arguments for ``spec.function``: what was given, the command's values first."""
    kwargs: dict[str, Any] = {}
    for option in spec.options:
        value = values.get(option.name)
        if not _given(value):
            value = group_values.get(option.name)
        if not _given(value) and option.name == "directory":
            value = os.environ.get(DIRECTORY_ENV) or None
        if _given(value) and spec.accepts(option.name):
            if option.kind in (Kind.REPEATED, Kind.ARGUMENTS):
                value = list(value or ())
            kwargs[option.name] = value
    return kwargs


@contextlib.contextmanager
def _command_line_logging() -> Iterator[None]:
    """Show our INFO messages, and those of Alembic's the user asked for, on stderr for the
    length of one command (all of Alembic's with $FLASK_MIGRATE_VERBOSE=1).

    Only these loggers are touched, and they are restored afterwards: the application's own
    logging configuration is left as it was.
    """
    verbose = os.environ.get(VERBOSE_ENV, "").strip() not in ("", "0")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)-5.5s [%(name)s] %(message)s"))
    saved = []
    levels = {
        "flask_migrate": logging.INFO,
        "alembic": logging.INFO if verbose else logging.WARNING,
    }
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate))
        logger.addHandler(handler)
        logger.setLevel(levels[name])
        logger.propagate = False
    quieter = {name: logging.INFO for name in _ALEMBIC_ASKED_FOR}
    # Alembic >= 1.19 announces each autogenerate plugin at INFO: noise even when verbose.
    quieter["alembic.runtime.plugins"] = logging.WARNING
    for name, level in quieter.items():
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate))
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, level, propagate in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate


class Terminated(BaseException):
    """SIGTERM arrived (a container being stopped): unwinds the command like Ctrl-C does."""


#: The exit status of a command stopped by SIGTERM (128 + 15, as a shell reports it).
TERMINATED_EXIT_CODE = 143


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` for the length of one command.

    Python's default for SIGTERM ends the process at once, in the middle of a revision; raised
    as an exception instead, it rolls back what the database can roll back, releases the
    migration lock, and lets the front-end say so.  Only the main thread can set a handler.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(spec: CommandSpec, values: Mapping[str, Any], group_values: Mapping[str, Any]) -> int:
    """Run one command with parsed command-line values and return its exit status."""
    kwargs = arguments(spec, values, group_values)
    try:
        with _sigterm_unwinds(), _command_line_logging():
            result = spec.function(**kwargs)
            status = _present(spec, result)
    except MigrateError as error:
        if os.environ.get(TRACEBACK_ENV):
            raise
        sys.stdout.flush()
        if isinstance(error, RevisionScriptError):
            _print_script_frames(error)
        print(f"Error: {mask_passwords(str(error))}", file=sys.stderr)
        return error.exit_code
    except Exception as error:
        # The boundary is total: whatever no translation knew (a bug, here or in a library)
        # is one line too.  The user's own scripts fail as RevisionScriptError, above.
        if os.environ.get(TRACEBACK_ENV):
            raise
        sys.stdout.flush()
        print(f"Error: {mask_passwords(unexpected(error))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Ctrl-C: the same answer on both front-ends (click would print "Aborted!", Flask-Script
        # a traceback).  Whatever was not committed has been rolled back by then.
        sys.stdout.flush()
        print(f"Error: {spec.interrupted}", file=sys.stderr)
        return 130
    except Terminated:
        sys.stdout.flush()
        print(f"Error: {spec.terminated}", file=sys.stderr)
        return TERMINATED_EXIT_CODE
    return status


def _present(spec: CommandSpec, result: object) -> int:
    """Show what the API function returned; its exit status.

    A command whose outcome is not all-or-nothing (``status``, ``lint``, ``test``, ``doctor``,
    ``convert-multidb``) returns a :class:`Result` that says which it was.
    """
    if result is None:
        return 0
    if not isinstance(result, Result):
        raise TypeError(f"{spec.function.__name__}() returned a {type(result).__name__}, which "
                        "is no flask_migrate.dispatch.Result")
    result.render(sys.stdout)
    sys.stdout.flush()
    error = result.error
    if error is not None:
        print(f"Error: {mask_passwords(error)}", file=sys.stderr)
    return result.exit_code


def _print_script_frames(error: RevisionScriptError) -> None:
    """The traceback of the user's own script, without the frames of Alembic or ours."""
    frames = [
        frame
        for frame in traceback.extract_tb(error.original.__traceback__)
        if os.path.abspath(frame.filename) == error.filename
    ]
    if frames:
        lines = ["Traceback (frames of your script only):\n", *traceback.format_list(frames)]
        print(mask_passwords("".join(lines)).rstrip(), file=sys.stderr)
