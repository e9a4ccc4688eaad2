"""The exceptions the Python API raises, and the one translation of Alembic's own errors.

Every failure a user can cause is a :class:`MigrateError`: one sentence that names the problem
and what to do, and the exit status a command-line front-end should use.  The API raises these;
only the front-ends (see :mod:`flask_migrate.dispatch`) turn them into ``Error: ...`` and an exit
status.  :func:`translate` is the one place where other exceptions (Alembic's, the database
driver's, the operating system's, those of the user's own revision scripts) become ours.
This module imports nothing else from the package.
"""
from __future__ import annotations

import os
import re
from typing import Any


class MigrateError(Exception):
    """A migration command failed in a way the user can understand and fix.

    ``str(error)`` is the complete message, written to be shown as is.
    """

    #: The exit status a command-line front-end uses for this error.
    exit_code = 1


class UsageError(MigrateError):
    """The command was invoked with arguments that cannot work (exit status 2)."""

    exit_code = 2


class RevisionScriptError(MigrateError):
    """A revision script written by the user raised while it was imported or run.

    :param message: what happened, naming the revision and its file.
    :param original: the exception the script raised; its traceback is the user's to read.
    :param filename: the script's path.
    """

    def __init__(self, message: str, original: BaseException, filename: str) -> None:
        super().__init__(message)
        self.original = original
        self.filename = filename


class ChangesDetected(MigrateError):
    """``check`` found model changes that no revision covers yet."""


# Alembic reports most user mistakes as ``CommandError`` (or ``util.CommandError``) with a
# message written for its own ``alembic`` command.  These rules add what a Flask-Migrate user
# should do next; anything unmatched is passed through unchanged, as one line.
_ALEMBIC_HINTS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"Multiple heads? are present|Multiple head revisions"),
     "several head revisions are present; run 'db heads' to see them and 'db merge heads' "
     "to join them, or name a single target revision"),
    (re.compile(r"Target database is not up to date"),
     "the database is not up to date; run 'db upgrade' first"),
    (re.compile(r"Can't locate revision identified by '([^']*)'"),
     "revision '{0}' is not in the migrations folder; run 'db history' to list the "
     "revisions it has"),
    (re.compile(r"No such revision or branch '([^']*)'"),
     "revision '{0}' is not in the migrations folder; run 'db history' to list the "
     "revisions it has"),
    (re.compile(r"Revision ([0-9a-zA-Z_]+) is not a head revision"),
     "revision {0} is not a head revision; pass a head (see 'db heads') or use --splice"),
    (re.compile(r"Directory (.+) already exists and is not empty"),
     "the folder {0} already exists and is not empty; choose another folder with -d or "
     "remove it"),
    (re.compile(r"Path doesn't exist: (.+?)\.?\s*Please use the 'init' command"),
     "no migrations folder at {0}; run 'db init' to create one, or pass -d with its path"),
]


def from_alembic(error: BaseException) -> MigrateError:
    """Translate one of Alembic's ``CommandError`` exceptions into a :class:`MigrateError`.

    The message keeps Alembic's facts (revision ids, paths) and adds what to do next.
    """
    text = " ".join(str(error).split())
    for pattern, hint in _ALEMBIC_HINTS:
        match = pattern.search(text)
        if match:
            return MigrateError(hint.format(*match.groups()))
    return MigrateError(text or type(error).__name__)


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep

_URL_PASSWORD = re.compile(r"(\w[\w+.-]*://[^:/@\s]*:)[^@\s]+@")


def mask_passwords(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` URL masked."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def describe(error: BaseException) -> str:
    """The first meaningful text of an exception, on one line, passwords masked."""
    original = getattr(error, "orig", None) or error
    text = " ".join(str(original).split()) or type(original).__name__
    return mask_passwords(text)


def _user_frame(error: BaseException, folder: str) -> tuple[str, dict[str, Any]] | None:
    """The innermost frame of ``error`` that runs a file of the migrations folder, if any."""
    found = None
    folder = os.path.abspath(folder) + os.sep
    traceback = error.__traceback__
    while traceback is not None:
        filename = os.path.abspath(traceback.tb_frame.f_code.co_filename)
        if filename.startswith(folder):
            found = filename, traceback.tb_frame.f_globals
        elif filename.startswith(_PACKAGE_DIR) and found and found[0].endswith("env.py"):
            # env.py called into this package: what fails from here on is not env.py's doing
            # (it may still be a revision script's, found further down).
            found = None
        traceback = traceback.tb_next
    syntax_file = getattr(error, "filename", None)
    if isinstance(error, SyntaxError) and syntax_file:
        if os.path.abspath(syntax_file).startswith(folder):
            found = os.path.abspath(syntax_file), {}
    return found


def translate(error: BaseException, folder: str) -> MigrateError | None:
    """The :class:`MigrateError` for an exception a command raised; None if it is a bug of ours.

    :param folder: the migrations folder, to recognise failures of the user's own scripts.
    """
    if isinstance(error, MigrateError):
        return error
    if isinstance(error, BrokenPipeError):
        # The reader of our output went away (``db history | head``): nobody to tell.
        return MigrateError("the output was closed before the command finished")
    user = _user_frame(error, folder)
    if user is not None:
        filename, globals_ = user
        where = os.path.relpath(filename)
        if os.path.basename(filename) == "env.py":
            subject = f"env.py ({where})"
        else:
            revision = globals_.get("revision")
            summary = (globals_.get("__doc__") or "").strip().splitlines()
            subject = f"revision {revision}" if revision else "revision file"
            if summary:
                subject += f' ("{summary[0]}")'
            subject += f" in {where}"
        return RevisionScriptError(
            f"{subject} failed: {type(error).__name__}: {describe(error)}", error, filename
        )
    if _is_alembic_error(error):
        return from_alembic(error)
    if isinstance(error, OSError) and error.filename:
        return MigrateError(
            f"cannot use {error.filename}: {error.strerror or describe(error)}; check that "
            "it exists and that you may write to it"
        )
    if _is_database_error(error):
        return MigrateError(f"the database reported an error: {describe(error)}")
    return None


def _is_alembic_error(error: BaseException) -> bool:
    from alembic.util import CommandError

    return isinstance(error, CommandError)


def _is_database_error(error: BaseException) -> bool:
    from sqlalchemy.exc import DBAPIError

    return isinstance(error, DBAPIError)
