"""The exceptions the Python API raises, and the one translation of Alembic's own errors.

Every failure a user can cause is a :class:`MigrateError`: one sentence that names the problem
and what to do, and the exit status a command-line front-end should use.  The API raises these;
only the front-ends (see :mod:`flask_migrate.dispatch`) turn them into ``Error: ...`` and an exit
status.  This module imports nothing else from the package.
"""
from __future__ import annotations

import re


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
    """

    def __init__(self, message: str, original: BaseException) -> None:
        super().__init__(message)
        self.original = original


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
